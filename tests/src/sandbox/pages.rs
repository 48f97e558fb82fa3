//! The browser pages the sandbox serves for WeChat's web hosts: the authorization page
//! (`componentloginpage`, `bindcomponent`; informational: the merchant actor does the real
//! work) and the QR code image (`showqrcode`, a PNG drawn from the ticket).

use std::collections::HashMap;

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::Shared;
use super::state::Kind;
use super::util::html_escape;

/// The QR code image of a live ticket: a QR-like PNG drawn from the ticket (`qr_image`).
pub fn showqrcode(shared: &Shared, query: &HashMap<String, String>) -> Response {
    let st = shared.lock();
    let now = st.now();
    let live = query
        .get("ticket")
        .and_then(|t| st.qrcodes.get(t).map(|q| (t, q)))
        .filter(|(_, q)| q.expires_at > now);
    match live {
        Some((ticket, q)) => (
            StatusCode::OK,
            [
                (header::CONTENT_TYPE, "image/png".to_string()),
                (
                    header::HeaderName::from_static("x-sandbox-appid"),
                    q.appid.clone(),
                ),
            ],
            super::qr_image::png(ticket),
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "QR code not found or expired").into_response(),
    }
}

/// Informational page for an authorization link: the merchant actor does the real work.
pub fn login_page(shared: &Shared, flow: &str, query: &HashMap<String, String>) -> Response {
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

/// Informational page for a web OAuth link: the user actor (`/sandbox/users/oauth`) approves.
pub fn oauth_page(query: &HashMap<String, String>) -> Response {
    let get = |k: &str| html_escape(query.get(k).map(String::as_str).unwrap_or_default());
    let html = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>WeChat sandbox web OAuth</title></head><body>\
<h1>WeChat sandbox: web OAuth</h1><p>appid: {} scope: {} component_appid: {}</p><p>redirect_uri: {}</p>\
<p>To approve as a user, POST this link to <code>/sandbox/users/oauth</code> as <code>{{\"user\": \"alice\", \"url\": \"…\"}}</code>.</p></body></html>",
        get("appid"),
        get("scope"),
        get("component_appid"),
        get("redirect_uri"),
    );
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        html,
    )
        .into_response()
}
