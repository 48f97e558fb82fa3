//! Routing and the WeChat-facing HTTP handlers.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Json, Response};
use axum::routing::any;
use serde_json::json;

use super::api::{self, Effect};
use super::control;
use super::state::Kind;
use super::util::html_escape;
use super::{Shared, push};

/// Longest a fault holds a response (latency or drop).
const MAX_HOLD: Duration = Duration::from_secs(3600);

pub fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/cgi-bin/{*rest}", any(cgi_bin))
        .route("/wxaopen/safe/bindcomponent", any(bindcomponent_page))
        .route("/sandbox/{*rest}", any(control::handle))
        .fallback(not_found)
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

async fn not_found(uri: Uri) -> Response {
    (
        StatusCode::NOT_FOUND,
        Json(json!({
            "errcode": -1,
            "errmsg": format!("the WeChat sandbox does not serve {}", uri.path()),
        })),
    )
        .into_response()
}

async fn cgi_bin(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    body: Bytes,
) -> Response {
    let rest = uri.path().strip_prefix("/cgi-bin/").unwrap_or_default();
    let query = parse_query(uri.query());
    match rest.trim_end_matches('/') {
        "componentloginpage" => return login_page(&shared, "PC (componentloginpage)", &query),
        "showqrcode" => return showqrcode(&shared, &query),
        _ => {}
    }
    let Some((api, is_get)) = api::api_for_path(rest) else {
        return not_found(uri).await;
    };
    let token = api::token_param(api).and_then(|(_, param)| query.get(param).cloned());
    let (kind, token_appid, fault) = {
        let mut st = shared.lock();
        let (kind, appid) = st.token_kind(token.as_deref());
        // A wrong method is WeChat's own answer, before any fault.
        let method_err = match (is_get, &method) {
            (true, m) if *m != Method::GET => Some(43001),
            (false, m) if *m != Method::POST => Some(43002),
            _ => None,
        };
        if let Some(code) = method_err {
            api::log_call(&mut st, api, kind, appid, code);
            return wechat_json(api::err_json(code));
        }
        (kind, appid, st.take_fault(api))
    };
    if let Some(ms) = fault.as_ref().and_then(|f| f.latency_ms) {
        tokio::time::sleep(Duration::from_millis(ms).min(MAX_HOLD)).await;
    }
    if let Some(code) = fault.as_ref().and_then(|f| f.errcode) {
        api::log_call(&mut shared.lock(), api, kind, token_appid, code);
        return wechat_json(api::err_json(code));
    }
    let (answer, drop_delay) = {
        let mut st = shared.lock();
        let answer = api::process(&mut st, api, &query, &body);
        let appid = answer.authorizer_appid.clone().or(token_appid);
        api::log_call(&mut st, api, kind, appid, answer.errcode);
        (answer, st.config.drop_delay)
    };
    if answer.effect == Some(Effect::PushTicket) {
        let shared = shared.clone();
        tokio::spawn(async move {
            control::push_ticket(&shared).await;
        });
    }
    if fault.as_ref().is_some_and(|f| f.drop) {
        // Processed (state changed), but the answer is held until the client has given up.
        tokio::time::sleep(drop_delay.min(MAX_HOLD)).await;
    }
    wechat_json(answer.json)
}

fn wechat_json(value: serde_json::Value) -> Response {
    (StatusCode::OK, Json(value)).into_response()
}

/// A 1×1 GIF standing in for a QR code image.
const GIF: &[u8] = &[
    0x47, 0x49, 0x46, 0x38, 0x39, 0x61, 0x01, 0x00, 0x01, 0x00, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00,
    0xff, 0xff, 0xff, 0x21, 0xf9, 0x04, 0x01, 0x00, 0x00, 0x00, 0x00, 0x2c, 0x00, 0x00, 0x00, 0x00,
    0x01, 0x00, 0x01, 0x00, 0x00, 0x02, 0x02, 0x44, 0x01, 0x00, 0x3b,
];

fn showqrcode(shared: &Shared, query: &HashMap<String, String>) -> Response {
    let st = shared.lock();
    let now = st.now();
    let live = query
        .get("ticket")
        .and_then(|t| st.qrcodes.get(t))
        .filter(|q| q.expires_at > now);
    match live {
        Some(q) => (
            StatusCode::OK,
            [
                (header::CONTENT_TYPE, "image/gif".to_string()),
                (
                    header::HeaderName::from_static("x-sandbox-appid"),
                    q.appid.clone(),
                ),
            ],
            GIF,
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "QR code not found or expired").into_response(),
    }
}

async fn bindcomponent_page(State(shared): State<Arc<Shared>>, uri: Uri) -> Response {
    login_page(&shared, "mobile (bindcomponent)", &parse_query(uri.query()))
}

/// Informational page for an authorization link: the merchant actor does the real work.
fn login_page(shared: &Shared, flow: &str, query: &HashMap<String, String>) -> Response {
    let st = shared.lock();
    let now = st.now();
    let get = |k: &str| query.get(k).cloned().unwrap_or_default();
    let pre = get("pre_auth_code");
    let pre_state = match st.pre_auth_codes.get(&pre) {
        None => "unknown",
        Some(c) if c.used => "already used",
        Some(c) if c.expires_at <= now => "expired",
        Some(_) => "valid",
    };
    let auth_type = get("auth_type");
    let biz = get("biz_appid");
    let eligible: Vec<String> = st
        .merchants
        .values()
        .filter(|m| {
            if !biz.is_empty() {
                return m.appid == biz;
            }
            match auth_type.as_str() {
                "1" => m.kind == Kind::OfficialAccount,
                "2" => m.kind == Kind::MiniProgram,
                _ => true,
            }
        })
        .map(|m| {
            format!(
                "<li>{} ({})</li>",
                html_escape(&m.appid),
                html_escape(&m.nick_name)
            )
        })
        .collect();
    let component_ok = get("component_appid") == st.config.component_appid;
    let html = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>WeChat sandbox authorization</title></head><body>\
<h1>WeChat sandbox: authorization page</h1>\
<p>Flow: {flow}</p>\
<p>component_appid: {} ({})</p>\
<p>pre_auth_code: {}</p>\
<p>auth_type: {} biz_appid: {}</p>\
<p>redirect_uri: {}</p>\
<p>Accounts this link admits:</p><ul>{}</ul>\
<p>To authorize, POST this link to <code>/sandbox/merchants/{{appid}}/authorize</code> as <code>{{\"link\": \"…\"}}</code>.</p>\
</body></html>",
        html_escape(&get("component_appid")),
        if component_ok {
            "matches"
        } else {
            "does not match the sandbox component"
        },
        pre_state,
        html_escape(&auth_type),
        html_escape(&biz),
        html_escape(&get("redirect_uri")),
        eligible.join(""),
    );
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        html,
    )
        .into_response()
}

/// Convenience for control handlers: the component URL push of a fresh ticket.
pub async fn deliver_component(
    shared: &Arc<Shared>,
    kind: &str,
    plaintext: String,
) -> super::Delivery {
    let (url, appid) = {
        let st = shared.lock();
        (
            st.config.component_callback_url.clone(),
            st.config.component_appid.clone(),
        )
    };
    push::deliver(
        shared,
        push::Outgoing {
            kind: kind.to_string(),
            target: "component",
            url,
            plaintext,
            outer_tag: "AppId",
            outer_value: appid,
            require_success: true,
        },
    )
    .await
}
