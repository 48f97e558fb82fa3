//! Control-API answers: JSON, or `{"error": "…"}` with a 4xx status, and the body helpers the
//! control routes and the actors share.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Json, Response};
use serde_json::{Map, Value, json};

use super::util::{json_object, str_field};

/// What a control route answers.
pub type Outcome = Result<Response, Fail>;

/// A control-API error: `{"error": "…"}` with a 4xx status.
pub struct Fail {
    status: StatusCode,
    pub error: String,
}

impl IntoResponse for Fail {
    fn into_response(self) -> Response {
        (self.status, Json(json!({ "error": self.error }))).into_response()
    }
}

pub fn ok(value: Value) -> Outcome {
    Ok((StatusCode::OK, Json(value)).into_response())
}

pub fn bad(status: StatusCode, error: impl Into<String>) -> Fail {
    Fail {
        status,
        error: error.into(),
    }
}

pub fn bad_request(error: impl Into<String>) -> Fail {
    bad(StatusCode::BAD_REQUEST, error)
}

pub fn body_object(body: &[u8]) -> Result<Map<String, Value>, Fail> {
    json_object(body).ok_or_else(|| bad_request("body must be a JSON object"))
}

pub fn required(obj: &Map<String, Value>, key: &str) -> Result<String, Fail> {
    str_field(obj, key)
        .filter(|s| !s.trim().is_empty())
        .ok_or_else(|| bad_request(format!("{key} is required")))
}
