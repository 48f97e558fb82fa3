//! The soak's sign-ins, one function per flow, each driven as a user and the provider's backend
//! drive it against the sandbox: web OAuth through `/oauth/{appid}/…` (the browser's redirects
//! followed by hand), follow-to-log-in (a session with the hosted page, the sandbox user's
//! scan, the page sending the browser on), mini program login (`wx.login`, then
//! `POST /authorizers/{appid}/miniprogram/sessions`). Every flow that completes ends in a login
//! code redeemed once (`POST /login/codes/{code}`) for the flow it came from.

use reqwest::Method;
use serde_json::{Value, json};

use crate::stack::Stack;

/// How one sign-in ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Completed,
    /// Reported failed to the user or the provider: an error in the edge's shape, a refusal
    /// page (4xx, or 502/503 for WeChat), or `return_to` with `login_error`. The code.
    Failed(String),
    /// Neither (a 500, a lost answer, a code that would not redeem): what happened.
    Neither(String),
}

/// The flows, as the report names them.
pub const FLOWS: [&str; 3] = ["miniprogram", "oauth", "follow"];

fn param(url: &str, name: &str) -> Option<String> {
    url::Url::parse(url)
        .ok()?
        .query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// A browser's `GET` (no redirects followed): status, `Location`, body.
async fn get(stack: &Stack, url: &str) -> Option<(u16, String, String)> {
    let resp = stack.http.get(url).send().await.ok()?;
    let status = resp.status().as_u16();
    let location = resp
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    Some((status, location, resp.text().await.unwrap_or_default()))
}

/// A page that refused clearly (never a 500).
fn refused_page(status: u16) -> bool {
    (400..600).contains(&status) && status != 500
}

/// An error answer's code, with WeChat's errcode when it said no (`wechat_error:-1`).
fn code_of(body: &Value) -> String {
    let error = body["error"].as_str().unwrap_or_default();
    match body["wechat_errcode"].as_i64() {
        Some(e) => format!("{error}:{e}"),
        None => error.to_string(),
    }
}

/// A refusal page's code: the error it names (`<main data-error="…">`), else its status.
fn page_code(status: u16, body: &str) -> String {
    let named = body
        .split("data-error=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .map(str::trim)
        .filter(|c| !c.is_empty() && c.len() < 64);
    match named {
        Some(c) => format!("{status}:{c}"),
        None => format!("{status}:{}", body.chars().take(60).collect::<String>()),
    }
}

/// Where the browser landed on `return_to`: the code redeemed, or the error reported.
async fn landed(stack: &Stack, location: &str, flow: &str) -> Outcome {
    if let Some(e) = param(location, "login_error") {
        return Outcome::Failed(format!("login_error={e}"));
    }
    let Some(code) = param(location, "login_code") else {
        return Outcome::Neither(format!("return_to without a login code: {location}"));
    };
    let (s, who) = stack
        .api(Method::POST, &format!("/login/codes/{code}"), None)
        .await;
    match s {
        200 if who["flow"] == flow => Outcome::Completed,
        200 => Outcome::Neither(format!("a {flow} code redeemed as {}", who["flow"])),
        _ => Outcome::Neither(format!("code not redeemed: {s} {who}")),
    }
}

fn return_to(stack: &Stack) -> String {
    format!("{}/signed-in", stack.site.base_url)
}

/// Web OAuth (`snsapi_base`) inside WeChat for an official account.
pub async fn oauth(stack: &Stack, appid: &str, user: &str, n: usize) -> Outcome {
    let url = format!(
        "{}/oauth/{appid}/authorize?scope=snsapi_base&return_to={}&state=soak-{n}",
        stack.gateway.base_url,
        url::form_urlencoded::byte_serialize(return_to(stack).as_bytes()).collect::<String>()
    );
    let Some((s, to_wechat, _)) = get(stack, &url).await else {
        return Outcome::Neither("authorize page unanswered".into());
    };
    if s != 302 {
        return if refused_page(s) {
            Outcome::Failed(format!("oauth_authorize_{s}"))
        } else {
            Outcome::Neither(format!("authorize page answered {s}"))
        };
    }
    let (s, approved) = stack
        .control(
            Method::POST,
            "users/oauth",
            json!({ "user": user, "url": to_wechat }),
        )
        .await;
    let Some(callback) = approved["redirect"].as_str().filter(|_| s == 200) else {
        return Outcome::Neither(format!("WeChat's consent page: {s} {approved}"));
    };
    match get(stack, callback).await {
        Some((302, location, _)) if location.starts_with(&return_to(stack)) => {
            landed(stack, &location, "oauth").await
        }
        Some((s, _, body)) if refused_page(s) => {
            Outcome::Failed(format!("callback {}", page_code(s, &body)))
        }
        Some((s, location, _)) => Outcome::Neither(format!("callback answered {s} to {location}")),
        None => Outcome::Neither("callback unanswered".into()),
    }
}

/// Follow-to-log-in with the hosted page: a session, the user's scan (a `subscribe` or `SCAN`
/// push to the message URL), the page sending the browser to `return_to`.
pub async fn follow(stack: &Stack, appid: &str, user: &str, n: usize) -> Outcome {
    let (s, session) = stack
        .api(
            Method::POST,
            "/login/sessions",
            Some(json!({ "appid": appid, "return_to": return_to(stack), "state": format!("soak-{n}") })),
        )
        .await;
    if s != 201 {
        return if super::report::error_shaped(s, &session) {
            Outcome::Failed(code_of(&session))
        } else {
            Outcome::Neither(format!("session: {s} {session}"))
        };
    }
    let page = session["page_url"].as_str().unwrap_or_default();
    let page = if page.starts_with("http") {
        page.to_string()
    } else {
        format!("{}{page}", stack.gateway.base_url)
    };
    let Some(ticket) = session["qr_url"].as_str().and_then(|u| param(u, "ticket")) else {
        return Outcome::Neither(format!("no QR ticket: {session}"));
    };
    let (s, scan) = stack
        .control(
            Method::POST,
            "users/scan",
            json!({ "user": user, "ticket": ticket }),
        )
        .await;
    if s != 200 {
        return Outcome::Neither(format!("scan: {s} {scan}"));
    }
    match get(stack, &page).await {
        Some((s, location, _)) if (300..400).contains(&s) => {
            landed(stack, &location, "follow").await
        }
        Some((s, _, _)) if refused_page(s) => Outcome::Failed(format!("login_page_{s}")),
        Some((s, _, body)) => Outcome::Neither(format!(
            "the page still answers {s} after the scan (scan delivery {}): {}",
            scan["status"],
            body.chars().take(80).collect::<String>()
        )),
        None => Outcome::Neither("page unanswered".into()),
    }
}

/// Mini program login: `wx.login`'s code, exchanged on the merchant's behalf.
pub async fn miniprogram(stack: &Stack, appid: &str, user: &str) -> Outcome {
    let (s, login) = stack
        .control(
            Method::POST,
            "users/login",
            json!({"appid": appid, "user": user}),
        )
        .await;
    if s != 200 {
        return Outcome::Neither(format!("wx.login: {s} {login}"));
    }
    let (s, body): (u16, Value) = stack
        .api(
            Method::POST,
            &format!("/authorizers/{appid}/miniprogram/sessions"),
            Some(json!({"js_code": login["js_code"]})),
        )
        .await;
    match s {
        200 if body["openid"].is_string() => Outcome::Completed,
        _ if super::report::error_shaped(s, &body) => Outcome::Failed(code_of(&body)),
        _ => Outcome::Neither(format!("{s} {body}")),
    }
}
