//! The HTTP edge: JSON and HTML responses, request helpers for lambda_http, the callback checks.
//! The error shape and the mapping of domain errors are in [`errors`]; JSON views in [`views`].
//!
//! Error body: `{"error": "<snake_case_code>", "message": "<for a human>"}` plus
//! `"wechat_errcode"` when WeChat said no. Messages never carry internal error text or secrets.

use lambda_http::http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, HeaderValue, LOCATION, REFERRER_POLICY,
    X_FRAME_OPTIONS,
};
use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, Request, RequestExt, Response};

pub mod errors;
pub mod views;

pub use errors::ApiError;

use crate::appid::Appid;
use crate::push::{OpenedPush, PushError, PushQuery};
use crate::secrets::{ComponentCredentials, CredentialsProvider};
use crate::store::StoreError;

fn response(status: u16, content_type: &'static str, body: Body) -> Response<Body> {
    let mut r = Response::new(body);
    *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

/// An image (a QR code) as a binary body (API Gateway base64-encodes it); a media type other
/// than `image/*` goes out as `application/octet-stream`. Never cached: it can open a trial.
pub fn image_response(content_type: &str, bytes: Vec<u8>) -> Response<Body> {
    let mut r = Response::new(Body::Binary(bytes));
    *r.status_mut() = StatusCode::OK;
    let value = if content_type.starts_with("image/") {
        HeaderValue::from_str(content_type).ok()
    } else {
        None
    };
    r.headers_mut().insert(
        CONTENT_TYPE,
        value.unwrap_or_else(|| HeaderValue::from_static("application/octet-stream")),
    );
    r.headers_mut()
        .insert("cache-control", HeaderValue::from_static("no-store"));
    r
}

pub fn json_response(status: u16, body: &serde_json::Value) -> Response<Body> {
    response(status, "application/json", Body::from(body.to_string()))
}

/// An HTML page: never cached (it can carry a single-use authorization link) and never framed
/// (clickjacking of the authorization button).
pub fn html_response(status: u16, html: String) -> Response<Body> {
    let mut r = response(status, "text/html; charset=utf-8", Body::from(html));
    let h = r.headers_mut();
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("frame-ancestors 'none'"),
    );
    h.insert(REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    r
}

/// A `302` to `location` (an allow-listed `return_to`), uncached.
pub fn redirect_response(location: &str) -> Response<Body> {
    let mut r = response(302, "text/html; charset=utf-8", Body::Empty);
    if let Ok(v) = HeaderValue::from_str(location) {
        r.headers_mut().insert(LOCATION, v);
    }
    r.headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r.headers_mut()
        .insert(REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    r
}

pub fn text_response(status: u16, text: impl Into<String>) -> Response<Body> {
    response(status, "text/plain; charset=utf-8", Body::from(text.into()))
}

/// `success`: what WeChat expects from a callback that accepted a push.
pub fn wechat_success() -> Response<Body> {
    text_response(200, "success")
}

/// The public base URL of the API: the configured one, else from the request's Host header (and
/// `x-forwarded-proto`, default https).
pub fn public_base(configured: Option<&str>, req: &Request) -> Option<String> {
    if let Some(base) = configured {
        return Some(base.trim_end_matches('/').to_string());
    }
    let host = req
        .headers()
        .get(lambda_http::http::header::HOST)?
        .to_str()
        .ok()?;
    let proto = req
        .headers()
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("https");
    Some(format!("{proto}://{host}"))
}

/// An HTML page a browser shows: never cached, never framed, only the sources `csp` names.
pub fn page_response(status: u16, html: String, csp: &str) -> Response<Body> {
    let mut r = html_response(status, html);
    let h = r.headers_mut();
    h.insert(
        lambda_http::http::header::CACHE_CONTROL,
        HeaderValue::from_static("no-store"),
    );
    h.insert("x-frame-options", HeaderValue::from_static("DENY"));
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    h.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    if let Ok(v) = HeaderValue::from_str(csp) {
        h.insert("content-security-policy", v);
    }
    r
}

/// The raw body bytes, however lambda_http delivered them.
pub fn body_bytes(req: &Request) -> &[u8] {
    match req.body() {
        Body::Empty => &[],
        Body::Text(t) => t.as_bytes(),
        Body::Binary(b) => b,
        _ => &[],
    }
}

pub fn path_param(req: &Request, name: &str) -> Option<String> {
    req.path_parameters_ref()
        .and_then(|p| p.first(name))
        .map(str::to_string)
}

/// Whether `s` is an appid (see [`Appid`]).
pub fn valid_appid(s: &str) -> bool {
    crate::appid::is_valid(s)
}

/// The 400 for a malformed appid.
pub fn invalid_appid() -> ApiError {
    ApiError::new(
        400,
        "invalid_appid",
        "appid must be \"wx\" followed by 16 lowercase letters or digits",
    )
}

/// The `{appid}` path parameter, validated.
pub fn appid_param(req: &Request) -> Result<Appid, ApiError> {
    match path_param(req, "appid") {
        Some(a) => Appid::parse(&a).map_err(|_| invalid_appid()),
        None => Err(ApiError::new(
            400,
            "missing_parameter",
            "the appid path parameter is missing",
        )),
    }
}

pub fn query_param(req: &Request, name: &str) -> Option<String> {
    req.query_string_parameters_ref()
        .and_then(|q| q.first(name))
        .map(str::to_string)
}

/// The push query parameters of a callback request.
pub fn push_query(req: &Request) -> PushQuery {
    PushQuery {
        timestamp: query_param(req, "timestamp"),
        nonce: query_param(req, "nonce"),
        msg_signature: query_param(req, "msg_signature"),
        encrypt_type: query_param(req, "encrypt_type"),
    }
}

/// Largest JSON body any internal route accepts.
pub const MAX_JSON_BODY_BYTES: usize = 4096;

/// The request's JSON object body; `None` when the body is empty. Oversize → 413, a non-JSON
/// content type → 415, invalid JSON or not an object → 400.
pub fn json_object(
    req: &Request,
) -> Result<Option<serde_json::Map<String, serde_json::Value>>, ApiError> {
    json_object_within(req, MAX_JSON_BODY_BYTES)
}

/// [`json_object`] with a larger bound, for the routes whose bodies carry the caller's own data
/// (a mini program's `ext_json`, an audit's item list).
pub fn json_object_within(
    req: &Request,
    max: usize,
) -> Result<Option<serde_json::Map<String, serde_json::Value>>, ApiError> {
    let body = body_bytes(req);
    if body.len() > max {
        return Err(ApiError::new(
            413,
            "body_too_large",
            format!("the body exceeds {max} bytes"),
        ));
    }
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    let is_json = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(is_json_media_type);
    if !is_json {
        return Err(ApiError::new(
            415,
            "unsupported_media_type",
            "send the body as application/json",
        ));
    }
    match serde_json::from_slice(body) {
        Ok(serde_json::Value::Object(map)) => Ok(Some(map)),
        Ok(_) => Err(ApiError::new(
            400,
            "invalid_json",
            "the body must be a JSON object",
        )),
        Err(_) => Err(ApiError::new(
            400,
            "invalid_json",
            "the body is not valid JSON",
        )),
    }
}

/// `application/json`, any case, with or without parameters (`; charset=utf-8`); not
/// `application/jsonx` or `application/json-patch+json`.
fn is_json_media_type(value: &str) -> bool {
    value
        .split(';')
        .next()
        .is_some_and(|essence| essence.trim().eq_ignore_ascii_case("application/json"))
}

/// A string (or number) field of a JSON object body; other types → 400.
pub fn json_text(
    obj: &serde_json::Map<String, serde_json::Value>,
    key: &str,
) -> Result<Option<String>, ApiError> {
    match obj.get(key) {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::String(s)) => Ok(Some(s.clone())),
        Some(serde_json::Value::Number(n)) => Ok(Some(n.to_string())),
        Some(_) => Err(ApiError::new(
            400,
            "invalid_parameter",
            format!("{key} must be a string"),
        )),
    }
}

/// Rejects any method but `allowed`.
pub fn require_method(req: &Request, allowed: Method) -> Result<(), ApiError> {
    if req.method() == allowed {
        Ok(())
    } else {
        Err(ApiError::method_not_allowed(allowed.as_str()))
    }
}

/// Logs a state-store failure and maps it to the one error shape (no internal text in the body).
pub fn store_failed(e: StoreError) -> ApiError {
    tracing::error!(error = %e, "state store request failed");
    ApiError::from(&e)
}

/// Loads the credentials and runs every push check on a callback request.
pub async fn open_push<'r, C: CredentialsProvider>(
    req: &'r Request,
    credentials: &C,
    now: i64,
    window: std::time::Duration,
) -> Result<(std::sync::Arc<ComponentCredentials>, OpenedPush<'r>), ApiError> {
    require_method(req, Method::POST)?;
    let creds = credentials.credentials().await.map_err(|e| {
        tracing::error!(error = %e, "component credentials unavailable");
        ApiError::from(&e)
    })?;
    let opened = crate::push::open(&creds, &push_query(req), body_bytes(req), now, window)
        .map_err(|e| {
            tracing::warn!(reason = %e, "rejected push");
            ApiError::from(&e)
        })?;
    Ok((creds, opened))
}

/// The plaintext of an opened push didn't parse.
pub fn rejected_plaintext(e: crate::xml::XmlError) -> ApiError {
    tracing::warn!(reason = %e, "rejected push plaintext");
    ApiError::from(&PushError::Xml(e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_application_json_is_json() {
        for ok in [
            "application/json",
            "Application/JSON",
            " application/json ; charset=utf-8",
            "application/json;charset=UTF-8",
        ] {
            assert!(is_json_media_type(ok), "{ok}");
        }
        for bad in [
            "application/jsonx",
            "application/json-patch+json",
            "text/json",
            "application/x-www-form-urlencoded",
            "",
        ] {
            assert!(!is_json_media_type(bad), "{bad}");
        }
    }

    #[test]
    fn error_shape() {
        let mut e = ApiError::new(409, "already_bound", "bound elsewhere");
        assert_eq!(
            e.body(),
            serde_json::json!({"error": "already_bound", "message": "bound elsewhere"})
        );
        e.wechat_errcode = Some(89000);
        assert_eq!(e.body()["wechat_errcode"], 89000);
        let r = e.into_response();
        assert_eq!(r.status(), 409);
        assert_eq!(r.headers()[CONTENT_TYPE], "application/json");
    }
}
