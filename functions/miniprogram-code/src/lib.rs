//! `/authorizers/{appid}/code…` (IAM): one mini program's code, with its authorizer token
//! (permission set 18; an official account → 409 `not_a_mini_program`). Every route answers
//! the code record (`GET /authorizers/{appid}/code`'s shape) unless it says otherwise:
//!
//! * `POST …/code {template_id, ext_json: {…}, user_version, user_desc?}`: commit (the trial
//!   version). `GET …/code`: the record.
//! * `GET …/code/qrcode?path=`: the trial QR image (bytes, `image/jpeg`).
//! * `GET …/code/categories` → `{categories}`, `GET …/code/pages` → `{pages}`,
//!   `GET …/code/quota` → `{rest, limit, speedup_rest, speedup_limit}`.
//! * `POST …/code/audit {item_list?, feedback_info?, feedback_stuff?, ugc_declare?,
//!   privacy_api_not_use?, preview_info?, version_desc?, order_path?}` (passed through): submit;
//!   `GET …/code/audit`: the status from WeChat, recorded; `DELETE …/code/audit`: undo
//!   (withdrawn); `POST …/code/audit/speedup`.
//! * `POST …/code/release`, `POST …/code/revert {app_version?}`,
//!   `POST …/code/gray {gray_percentage, support_experiencer_first?, support_debuger_first?}`.
//!
//! Bad input is refused before WeChat is called (no quota spent).

use lambda_http::http::Method;
use lambda_http::{Body, Error, Request, Response};
use serde_json::{Map, Value};
pub use wxopen::app::Deps as App;
use wxopen::clock::Clock;
use wxopen::code::{self, CodeError, CommitRequest};
use wxopen::http::views::code_json;
use wxopen::http::{
    ApiError, appid_param, image_response, json_object_within, json_response, query_param,
};
use wxopen::secrets::CredentialsProvider;
use wxopen::store::{CodeStore, TokenServiceStore};
use wxopen::wechat::{AuditSubmission, GrayRelease};

/// Largest request body (a commit's `ext_json`, an audit's fields).
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// Longest `path` (page and query) of a trial QR code.
const MAX_QR_PATH: usize = 1024;

pub async fn handle<S, C, K>(app: &App<S, C, K>, req: Request) -> Result<Response<Body>, Error>
where
    S: TokenServiceStore + CodeStore,
    C: CredentialsProvider,
    K: Clock,
{
    Ok(process(app, &req)
        .await
        .unwrap_or_else(ApiError::into_response))
}

fn bad(code: &'static str, message: impl Into<String>) -> ApiError {
    ApiError::new(400, code, message)
}

/// The request body as an object (none → empty).
fn body(req: &Request) -> Result<Map<String, Value>, ApiError> {
    Ok(json_object_within(req, MAX_BODY_BYTES)?.unwrap_or_default())
}

fn commit_request(b: &Map<String, Value>) -> Result<CommitRequest, ApiError> {
    let template_id = match b.get("template_id") {
        None | Some(Value::Null) => return Err(bad("missing_field", "template_id is required")),
        Some(v) => v.as_i64().filter(|i| *i >= 0).ok_or_else(|| {
            bad(
                "invalid_field",
                "template_id must be a non-negative integer",
            )
        })?,
    };
    let ext_json = match b.get("ext_json") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(o)) => o.clone(),
        Some(_) => {
            return Err(bad(
                "invalid_field",
                "ext_json must be a JSON object (wxopen serialises it for WeChat)",
            ));
        }
    };
    let text = |key: &str, required: bool| -> Result<String, ApiError> {
        match b.get(key) {
            None | Some(Value::Null) if required => {
                Err(bad("missing_field", format!("{key} is required")))
            }
            None | Some(Value::Null) => Ok(String::new()),
            Some(Value::String(s)) => Ok(s.clone()),
            Some(_) => Err(bad("invalid_field", format!("{key} must be a string"))),
        }
    };
    let req = CommitRequest {
        template_id,
        ext_json,
        user_version: text("user_version", true)?,
        user_desc: text("user_desc", false)?,
    };
    code::check_commit(&req).map_err(|m| bad("invalid_field", m))?;
    Ok(req)
}

fn submission(b: Map<String, Value>) -> Result<AuditSubmission, ApiError> {
    if let Some(unknown) = b
        .keys()
        .find(|k| !AuditSubmission::FIELDS.contains(&k.as_str()))
    {
        return Err(bad(
            "invalid_field",
            format!(
                "unknown field {unknown}; submit_audit takes {}",
                AuditSubmission::FIELDS.join(", ")
            ),
        ));
    }
    if let Some(items) = b.get("item_list")
        && !items
            .as_array()
            .is_some_and(|a| (1..=5).contains(&a.len()) && a.iter().all(Value::is_object))
    {
        return Err(bad("invalid_field", "item_list must be 1 to 5 objects"));
    }
    serde_json::from_value(Value::Object(b))
        .map_err(|_| bad("invalid_field", "invalid audit fields"))
}

fn gray_request(b: &Map<String, Value>) -> Result<GrayRelease, ApiError> {
    let pct = b
        .get("gray_percentage")
        .and_then(Value::as_u64)
        .filter(|p| *p <= 100)
        .and_then(|p| u8::try_from(p).ok())
        .ok_or_else(|| {
            bad(
                "invalid_field",
                "gray_percentage must be an integer 0 to 100",
            )
        })?;
    let flag = |k: &str| match b.get(k) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(v)) => Ok(Some(*v)),
        Some(_) => Err(bad("invalid_field", format!("{k} must be a boolean"))),
    };
    let gray = GrayRelease {
        gray_percentage: pct,
        support_experiencer_first: flag("support_experiencer_first")?,
        support_debuger_first: flag("support_debuger_first")?,
    };
    if pct == 0
        && gray.support_experiencer_first != Some(true)
        && gray.support_debuger_first != Some(true)
    {
        return Err(bad(
            "invalid_field",
            "gray_percentage 0 needs support_experiencer_first or support_debuger_first",
        ));
    }
    Ok(gray)
}

async fn process<S, C, K>(app: &App<S, C, K>, req: &Request) -> Result<Response<Body>, ApiError>
where
    S: TokenServiceStore + CodeStore,
    C: CredentialsProvider,
    K: Clock,
{
    let appid = appid_param(req)?;
    let path = req.uri().path().trim_end_matches('/').to_string();
    let rest = path
        .rsplit_once("/code")
        .map(|(_, r)| r.to_string())
        .unwrap_or_default();
    // `…/code/audit/speedup` ends in neither of the others.
    let rest = if path.ends_with("/code/audit/speedup") {
        "/audit/speedup".to_string()
    } else {
        rest
    };
    let svc = app.tokens();
    let method = req.method().clone();
    let failed = |op: &str, e: CodeError| {
        tracing::warn!(error = %e, authorizer = %appid, "{op} not done");
        ApiError::from(&e)
    };
    let record = |r: wxopen::model::CodeRecord| Ok(json_response(200, &code_json(&r)));
    match (rest.as_str(), method) {
        ("", Method::POST) => {
            let c = commit_request(&body(req)?)?;
            let r = code::commit(&svc, &appid, &c)
                .await
                .map_err(|e| failed("commit", e))?;
            record(r)
        }
        ("", Method::GET) => record(
            code::record(svc.store, &appid)
                .await
                .map_err(|e| failed("code record", e))?,
        ),
        ("", _) => Err(ApiError::method_not_allowed("GET or POST")),
        ("/qrcode", Method::GET) => {
            let qr_path = query_param(req, "path");
            if qr_path
                .as_ref()
                .is_some_and(|p| p.len() > MAX_QR_PATH || p.chars().any(char::is_control))
            {
                return Err(bad(
                    "invalid_parameter",
                    "path must be a page path of at most 1024 characters",
                ));
            }
            let image = code::qrcode(&svc, &appid, qr_path.as_deref())
                .await
                .map_err(|e| failed("get_qrcode", e))?;
            Ok(image_response(&image.content_type, image.bytes))
        }
        ("/categories", Method::GET) => {
            let list = code::categories(&svc, &appid)
                .await
                .map_err(|e| failed("get_category", e))?;
            Ok(json_response(
                200,
                &serde_json::json!({ "categories": list }),
            ))
        }
        ("/pages", Method::GET) => {
            let list = code::pages(&svc, &appid)
                .await
                .map_err(|e| failed("get_page", e))?;
            Ok(json_response(200, &serde_json::json!({ "pages": list })))
        }
        ("/quota", Method::GET) => {
            let q = code::quota(&svc, &appid)
                .await
                .map_err(|e| failed("queryquota", e))?;
            Ok(json_response(200, &serde_json::json!(q)))
        }
        ("/audit", Method::POST) => {
            let s = submission(body(req)?)?;
            record(
                code::submit(&svc, &appid, &s)
                    .await
                    .map_err(|e| failed("submit_audit", e))?,
            )
        }
        ("/audit", Method::GET) => record(
            code::refresh_audit(&svc, &appid)
                .await
                .map_err(|e| failed("get_auditstatus", e))?,
        ),
        ("/audit", Method::DELETE) => record(
            code::undo(&svc, &appid)
                .await
                .map_err(|e| failed("undocodeaudit", e))?,
        ),
        ("/audit", _) => Err(ApiError::method_not_allowed("GET, POST or DELETE")),
        ("/audit/speedup", Method::POST) => {
            body(req)?;
            record(
                code::speedup(&svc, &appid)
                    .await
                    .map_err(|e| failed("speedupaudit", e))?,
            )
        }
        ("/release", Method::POST) => {
            body(req)?;
            record(
                code::release(&svc, &appid)
                    .await
                    .map_err(|e| failed("release", e))?,
            )
        }
        ("/revert", Method::POST) => {
            let b = body(req)?;
            let version = match b.get("app_version") {
                None | Some(Value::Null) => None,
                Some(v) => Some(v.as_i64().filter(|v| *v > 0).ok_or_else(|| {
                    bad("invalid_field", "app_version must be a positive integer")
                })?),
            };
            record(
                code::revert(&svc, &appid, version)
                    .await
                    .map_err(|e| failed("revertcoderelease", e))?,
            )
        }
        ("/gray", Method::POST) => {
            let g = gray_request(&body(req)?)?;
            record(
                code::gray(&svc, &appid, &g)
                    .await
                    .map_err(|e| failed("grayrelease", e))?,
            )
        }
        (r, _) if ["/qrcode", "/categories", "/pages", "/quota"].contains(&r) => {
            Err(ApiError::method_not_allowed("GET"))
        }
        (r, _) if ["/audit/speedup", "/release", "/revert", "/gray"].contains(&r) => {
            Err(ApiError::method_not_allowed("POST"))
        }
        _ => Err(ApiError::new(404, "not_found", "no such code route")),
    }
}
