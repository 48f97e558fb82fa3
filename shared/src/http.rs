//! The HTTP edge: JSON responses, the one error shape, request helpers for lambda_http.
//!
//! Error body: `{"error": "<snake_case_code>", "message": "<for a human>"}` plus
//! `"wechat_errcode"` when WeChat said no. Messages never carry internal error text or secrets.

use lambda_http::http::header::{CONTENT_TYPE, HeaderValue};
use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, Request, RequestExt, Response};

use crate::push::OpenedPush;
use crate::push::{PushError, PushQuery};
use crate::secrets::{ComponentCredentials, CredentialsProvider, SecretsError};
use crate::store::StoreError;
use crate::model::AuthorizerState;
use crate::tokens::TokenError;
use crate::wechat::{ErrorKind, WeChatError};
use crate::xml::XmlError;

/// An error as the caller sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: u16,
    pub code: &'static str,
    pub message: String,
    pub wechat_errcode: Option<i64>,
    /// Extra fields merged into the body (e.g. the bound `open_appid` of a 409).
    pub extra: Option<serde_json::Value>,
}

impl ApiError {
    pub fn new(status: u16, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            wechat_errcode: None,
            extra: None,
        }
    }

    pub fn internal() -> Self {
        Self::new(
            500,
            "internal_error",
            "an internal error occurred; it has been logged",
        )
    }

    pub fn method_not_allowed(allowed: &str) -> Self {
        Self::new(
            405,
            "method_not_allowed",
            format!("this route accepts {allowed} only"),
        )
    }

    pub fn body(&self) -> serde_json::Value {
        let mut v = serde_json::json!({"error": self.code, "message": self.message});
        if let Some(obj) = v.as_object_mut() {
            if let Some(code) = self.wechat_errcode {
                obj.insert("wechat_errcode".into(), code.into());
            }
            if let Some(serde_json::Value::Object(extra)) = &self.extra {
                for (k, val) in extra {
                    obj.entry(k.clone()).or_insert_with(|| val.clone());
                }
            }
        }
        v
    }

    pub fn into_response(self) -> Response<Body> {
        json_response(self.status, &self.body())
    }
}

fn response(status: u16, content_type: &'static str, body: Body) -> Response<Body> {
    let mut r = Response::new(body);
    *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

pub fn json_response(status: u16, body: &serde_json::Value) -> Response<Body> {
    response(status, "application/json", Body::from(body.to_string()))
}

pub fn html_response(status: u16, html: String) -> Response<Body> {
    response(status, "text/html; charset=utf-8", Body::from(html))
}

pub fn text_response(status: u16, text: impl Into<String>) -> Response<Body> {
    response(status, "text/plain; charset=utf-8", Body::from(text.into()))
}

/// `success`: what WeChat expects from a callback that accepted a push.
pub fn wechat_success() -> Response<Body> {
    text_response(200, "success")
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

/// An appid as WeChat issues them: `wx` and 16 characters (hex in practice; lowercase
/// alphanumerics are accepted to stay on the safe side).
pub fn valid_appid(appid: &str) -> bool {
    appid.strip_prefix("wx").is_some_and(|rest| {
        rest.len() == 16
            && rest
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    })
}

/// The `{appid}` path parameter, validated.
pub fn appid_param(req: &Request) -> Result<String, ApiError> {
    match path_param(req, "appid") {
        Some(a) if valid_appid(&a) => Ok(a),
        Some(_) => Err(ApiError::new(
            400,
            "invalid_appid",
            "appid must be \"wx\" followed by 16 lowercase letters or digits",
        )),
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
    let body = body_bytes(req);
    if body.len() > MAX_JSON_BODY_BYTES {
        return Err(ApiError::new(
            413,
            "body_too_large",
            format!("the body exceeds {MAX_JSON_BODY_BYTES} bytes"),
        ));
    }
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    let is_json = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.trim_start()
                .to_ascii_lowercase()
                .starts_with("application/json")
        });
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

impl From<&StoreError> for ApiError {
    fn from(_: &StoreError) -> Self {
        ApiError::new(
            503,
            "store_unavailable",
            "the state store failed; try again",
        )
    }
}

/// Logs a state-store failure and maps it to the one error shape (no internal text in the body).
pub fn store_failed(e: StoreError) -> ApiError {
    tracing::error!(error = %e, "state store request failed");
    ApiError::from(&e)
}

impl From<&SecretsError> for ApiError {
    fn from(e: &SecretsError) -> Self {
        match e {
            SecretsError::NotConfigured => ApiError::new(
                503,
                "not_configured",
                "the component credentials are not configured yet",
            ),
            _ => ApiError::new(
                503,
                "credentials_unavailable",
                "the component credentials could not be loaded",
            ),
        }
    }
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

impl From<&TokenError> for ApiError {
    fn from(e: &TokenError) -> Self {
        match e {
            TokenError::NoTicket => ApiError::new(
                503,
                "no_ticket",
                "no component_verify_ticket has been received from WeChat yet; tickets arrive every 10 minutes",
            ),
            TokenError::UnknownAuthorizer => {
                ApiError::new(404, "unknown_authorizer", "no authorizer with this appid")
            }
            TokenError::NotAuthorized(AuthorizerState::NeedsReauth) => {
                ApiError::new(409, "authorizer_needs_reauth", e.to_string())
            }
            TokenError::NotAuthorized(_) => {
                ApiError::new(409, "authorizer_unauthorized", e.to_string())
            }
            TokenError::Busy => ApiError::new(503, "busy", e.to_string()),
            TokenError::WeChat(w) => ApiError::from(w),
            TokenError::Store(s) => ApiError::from(s),
            TokenError::Secrets(SecretsError::NotConfigured) => ApiError::new(
                503,
                "not_configured",
                "the component credentials are not configured yet",
            ),
            TokenError::Secrets(_) => ApiError::new(
                503,
                "credentials_unavailable",
                "the component credentials could not be loaded",
            ),
        }
    }
}

impl From<&WeChatError> for ApiError {
    fn from(e: &WeChatError) -> Self {
        let mut api = match e.kind() {
            Some(ErrorKind::QuotaReached) => ApiError::new(
                503,
                "wechat_quota_reached",
                "WeChat's daily quota for this API is used up",
            ),
            Some(ErrorKind::IpNotWhitelisted) => ApiError::new(
                502,
                "wechat_ip_not_whitelisted",
                "WeChat refused the caller IP: add the egress IP to the platform's whitelist",
            ),
            Some(ErrorKind::TicketInvalid) => ApiError::new(
                503,
                "ticket_invalid",
                "WeChat rejected the component ticket; a new one was requested",
            ),
            _ => match e {
                WeChatError::Timeout { .. } => {
                    ApiError::new(504, "wechat_timeout", "WeChat did not answer in time")
                }
                _ => ApiError::new(502, "wechat_error", e.to_string()),
            },
        };
        api.wechat_errcode = e.errcode();
        api
    }
}

impl From<&PushError> for ApiError {
    fn from(e: &PushError) -> Self {
        let msg = e.to_string();
        match e {
            PushError::TooLarge => ApiError::new(413, "body_too_large", msg),
            PushError::EmptyBody => ApiError::new(400, "empty_body", msg),
            PushError::MissingParameter(_) => ApiError::new(400, "missing_parameter", msg),
            PushError::InvalidParameter(_) => ApiError::new(400, "invalid_parameter", msg),
            PushError::StaleTimestamp => ApiError::new(401, "stale_timestamp", msg),
            PushError::Xml(XmlError::Doctype) => ApiError::new(400, "forbidden_xml", msg),
            PushError::Xml(XmlError::MissingField(_)) => ApiError::new(400, "missing_field", msg),
            PushError::Xml(_) => ApiError::new(400, "malformed_xml", msg),
            PushError::Crypto(crate::crypto::CryptoError::BadSignature) => {
                ApiError::new(401, "invalid_signature", msg)
            }
            PushError::Crypto(crate::crypto::CryptoError::WrongAppId) => {
                ApiError::new(401, "wrong_appid", msg)
            }
            PushError::Crypto(_) => ApiError::new(
                400,
                "decrypt_failed",
                format!("the message could not be decrypted: {msg}"),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
