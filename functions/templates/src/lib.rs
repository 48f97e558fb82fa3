//! The template library (IAM), with the component token:
//!
//! * `GET /templates[?template_type=0|1]`: 200 `{templates: [...]}`.
//! * `POST /templates {draft_id, template_type?}`: adds a draft of the development mini program
//!   (`template_type` 0 normal, the default, or 1 standard); 201 `{templates: [...]}` (WeChat
//!   answers no id: the library afterwards). Unknown draft → 404 `template_not_found`.
//! * `GET /templates/drafts`: 200 `{drafts: [...]}`.
//! * `DELETE /templates/{id}`: 204; unknown → 404 `template_not_found`.

use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, Error, Request, Response};
pub use wxopen::app::Deps as App;
use wxopen::clock::Clock;
use wxopen::code::{CodeError, templates};
use wxopen::http::{ApiError, json_object, json_response, path_param, query_param};
use wxopen::secrets::CredentialsProvider;
use wxopen::store::TokenServiceStore;

pub async fn handle<S, C, K>(app: &App<S, C, K>, req: Request) -> Result<Response<Body>, Error>
where
    S: TokenServiceStore,
    C: CredentialsProvider,
    K: Clock,
{
    Ok(process(app, &req)
        .await
        .unwrap_or_else(ApiError::into_response))
}

fn failed(op: &str, e: CodeError) -> ApiError {
    tracing::warn!(error = %e, "{op} not done");
    ApiError::from(&e)
}

/// A non-negative integer id (WeChat's ids are numbers; a quoted one finds nothing there).
fn id_of(value: Option<&serde_json::Value>, name: &str) -> Result<i64, ApiError> {
    match value {
        None | Some(serde_json::Value::Null) => Err(ApiError::new(
            400,
            "missing_field",
            format!("{name} is required"),
        )),
        Some(v) => v.as_i64().filter(|i| *i >= 0).ok_or_else(|| {
            ApiError::new(
                400,
                "invalid_field",
                format!("{name} must be a non-negative integer"),
            )
        }),
    }
}

fn template_type(value: Option<&serde_json::Value>) -> Result<i64, ApiError> {
    match value {
        None | Some(serde_json::Value::Null) => Ok(0),
        Some(v) => v
            .as_i64()
            .filter(|t| templates::TEMPLATE_TYPES.contains(t))
            .ok_or_else(|| ApiError::new(400, "invalid_field", "template_type must be 0 or 1")),
    }
}

async fn process<S, C, K>(app: &App<S, C, K>, req: &Request) -> Result<Response<Body>, ApiError>
where
    S: TokenServiceStore,
    C: CredentialsProvider,
    K: Clock,
{
    let path = req.uri().path().trim_end_matches('/').to_string();
    let svc = app.tokens();
    let method = req.method().clone();
    if path.ends_with("/templates/drafts") {
        if method != Method::GET {
            return Err(ApiError::method_not_allowed("GET"));
        }
        let drafts = templates::drafts(&svc)
            .await
            .map_err(|e| failed("gettemplatedraftlist", e))?;
        return Ok(json_response(200, &serde_json::json!({ "drafts": drafts })));
    }
    if let Some(id) = path_param(req, "id") {
        if method != Method::DELETE {
            return Err(ApiError::method_not_allowed("DELETE"));
        }
        let id = id
            .trim()
            .parse::<i64>()
            .ok()
            .filter(|i| *i >= 0)
            .ok_or_else(|| {
                ApiError::new(400, "invalid_parameter", "the template id must be a number")
            })?;
        templates::delete(&svc, id)
            .await
            .map_err(|e| failed("deletetemplate", e))?;
        let mut resp = Response::new(Body::Empty);
        *resp.status_mut() = StatusCode::NO_CONTENT;
        return Ok(resp);
    }
    match method {
        Method::GET => {
            let kind = match query_param(req, "template_type") {
                None => None,
                Some(t) => Some(
                    t.trim()
                        .parse::<i64>()
                        .ok()
                        .filter(|t| templates::TEMPLATE_TYPES.contains(t))
                        .ok_or_else(|| {
                            ApiError::new(400, "invalid_parameter", "template_type must be 0 or 1")
                        })?,
                ),
            };
            let list = templates::list(&svc, kind)
                .await
                .map_err(|e| failed("gettemplatelist", e))?;
            Ok(json_response(
                200,
                &serde_json::json!({ "templates": list }),
            ))
        }
        Method::POST => {
            let body = json_object(req)?.ok_or_else(|| {
                ApiError::new(
                    400,
                    "missing_field",
                    "the body must be {\"draft_id\": 1, \"template_type\": 0}",
                )
            })?;
            let draft_id = id_of(body.get("draft_id"), "draft_id")?;
            let kind = template_type(body.get("template_type"))?;
            let list = templates::add(&svc, draft_id, kind)
                .await
                .map_err(|e| failed("addtotemplate", e))?;
            Ok(json_response(
                201,
                &serde_json::json!({ "templates": list }),
            ))
        }
        _ => Err(ApiError::method_not_allowed("GET or POST")),
    }
}
