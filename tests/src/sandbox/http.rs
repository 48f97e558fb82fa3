//! Routing: every path WeChat serves goes to the API pipeline (`apis.rs` says which API a path
//! is), the browser pages to `pages.rs`, `/sandbox/…` to the control API. Anything else answers
//! like WeChat does for a URL it does not serve: errcode 40066 "invalid url" (HTTP 404).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method as HttpMethod, StatusCode, Uri, header};
use axum::response::{IntoResponse, Json, Response};
use axum::routing::any;
use serde_json::json;

use super::api::{self, Effect, Reply};
use super::apis::{Api, Method};
use super::{Shared, code, control, pages, push};

/// Longest a fault holds a response (latency or drop).
const MAX_HOLD: Duration = Duration::from_secs(3600);

pub fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/sandbox/{*rest}", any(control::handle))
        .fallback(wechat)
        .with_state(shared)
}

/// Query parameters (first value wins); never fails.
pub fn parse_query(query: Option<&str>) -> HashMap<String, String> {
    let mut out = HashMap::new();
    for (k, v) in url::form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        out.entry(k.into_owned()).or_insert_with(|| v.into_owned());
    }
    out
}

/// A path WeChat does not serve: 40066 "invalid url", with HTTP 404 so that a plain HTTP
/// client sees it too.
fn unknown_path(path: &str) -> Response {
    (
        StatusCode::NOT_FOUND,
        Json(json!({
            "errcode": 40066,
            "errmsg": format!("invalid url: the WeChat sandbox does not serve {path}"),
        })),
    )
        .into_response()
}

/// Every path outside the control API: the browser pages, then the API table.
async fn wechat(
    State(shared): State<Arc<Shared>>,
    method: HttpMethod,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().trim_end_matches('/');
    let query = parse_query(uri.query());
    match path {
        "/cgi-bin/componentloginpage" => {
            return pages::login_page(&shared, "PC (componentloginpage)", &query);
        }
        "/wxaopen/safe/bindcomponent" => {
            return pages::login_page(&shared, "mobile (bindcomponent)", &query);
        }
        "/cgi-bin/showqrcode" => return pages::showqrcode(&shared, &query),
        "/connect/oauth2/authorize" => return pages::oauth_page(&query),
        _ => {}
    }
    match Api::from_path(path) {
        Some(api) => {
            let content_type = headers
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok());
            call(&shared, api, &method, &query, &body, content_type).await
        }
        None => unknown_path(uri.path()),
    }
}

/// One WeChat API call: the method, faults, the pipeline, effects, the answer.
async fn call(
    shared: &Arc<Shared>,
    api: Api,
    method: &HttpMethod,
    query: &HashMap<String, String>,
    body: &[u8],
    content_type: Option<&str>,
) -> Response {
    let (kind, token_appid, fault, current) = {
        let mut st = shared.lock();
        let token = api
            .token()
            .wants(st.config.template_token_param)
            .and_then(|(_, param)| query.get(param).cloned());
        let (kind, appid) = st.token_kind(token.as_deref());
        let current = st.token_is_current(token.as_deref());
        // A wrong method is WeChat's own answer, before any fault.
        let method_err = match (api.method(), method) {
            (Method::Get, m) if *m != HttpMethod::GET => Some(43001),
            (Method::Post | Method::Upload, m) if *m != HttpMethod::POST => Some(43002),
            _ => None,
        };
        if let Some(code) = method_err {
            api::log_call(&mut st, api, kind, appid, code, current);
            return wechat_json(api::err_json(code));
        }
        (kind, appid, st.take_fault(api), current)
    };
    if let Some(ms) = fault.as_ref().and_then(|f| f.latency_ms) {
        tokio::time::sleep(Duration::from_millis(ms).min(MAX_HOLD)).await;
    }
    if let Some(code) = fault.as_ref().and_then(|f| f.errcode) {
        api::log_call(&mut shared.lock(), api, kind, token_appid, code, current);
        return wechat_json(api::err_json(code));
    }
    let (answer, drop_delay) = {
        let mut st = shared.lock();
        let answer = api::process(&mut st, api, query, body, content_type);
        let appid = answer.authorizer_appid.clone().or(token_appid);
        api::log_call(&mut st, api, kind, appid, answer.errcode, current);
        (answer, st.config.drop_delay)
    };
    match answer.effect {
        Some(Effect::PushTicket) => {
            let shared = shared.clone();
            tokio::spawn(async move {
                push::push_ticket(&shared).await;
            });
        }
        Some(Effect::AuditPushes) => {
            let shared = shared.clone();
            tokio::spawn(async move {
                code::run_audits(&shared, false).await;
            });
        }
        None => {}
    }
    if fault.as_ref().is_some_and(|f| f.drop) {
        // Processed (state changed), but the answer is held until the client has given up.
        tokio::time::sleep(drop_delay.min(MAX_HOLD)).await;
    }
    match answer.reply {
        Reply::Json(value) => wechat_json(value),
        Reply::Bytes {
            content_type,
            filename,
            bytes,
        } => binary(&content_type, &filename, bytes),
    }
}

fn wechat_json(value: serde_json::Value) -> Response {
    (StatusCode::OK, Json(value)).into_response()
}

/// A binary answer as WeChat sends it: the bytes, their type, and an attachment name.
fn binary(content_type: &str, filename: &str, bytes: Vec<u8>) -> Response {
    let disposition = format!("attachment; filename=\"{}\"", filename.replace('"', ""));
    let disposition = HeaderValue::from_str(&disposition)
        .unwrap_or_else(|_| HeaderValue::from_static("attachment"));
    (
        StatusCode::OK,
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_str(content_type)
                    .unwrap_or_else(|_| HeaderValue::from_static("application/octet-stream")),
            ),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        bytes,
    )
        .into_response()
}
