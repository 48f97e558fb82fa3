//! The bad-input catalogue for every HTTP route: missing or invalid parameters, wrong methods,
//! wrong content types, oversize bodies → the documented 4xx with the one error shape, and the
//! table is unchanged afterwards (a full scan compared before and after).

use std::collections::HashMap;

use crate::common::OA1 as OA;
use lambda_http::Body;
use reqwest::Method;
use serde_json::{Value, json};
use wxopen_tests::stack::Stack;
use wxopen_tests::{body_text, request, scan_all};

struct Case {
    method: Method,
    path: String,
    content_type: Option<&'static str>,
    body: Option<String>,
    status: u16,
    /// `None`: an HTML page (public merchant-facing routes).
    code: Option<&'static str>,
}

fn case(
    method: Method,
    path: impl Into<String>,
    body: Option<Value>,
    status: u16,
    code: &'static str,
) -> Case {
    Case {
        method,
        path: path.into(),
        content_type: body.as_ref().map(|_| "application/json"),
        body: body.map(|b| b.to_string()),
        status,
        code: Some(code),
    }
}

fn raw(
    method: Method,
    path: &str,
    content_type: Option<&'static str>,
    body: String,
    status: u16,
    code: &'static str,
) -> Case {
    Case {
        method,
        path: path.into(),
        content_type,
        body: Some(body),
        status,
        code: Some(code),
    }
}

fn page(path: &str, status: u16) -> Case {
    Case {
        method: Method::GET,
        path: path.into(),
        content_type: None,
        body: None,
        status,
        code: None,
    }
}

fn catalogue() -> Vec<Case> {
    let big = "x".repeat(5000);
    let oa = format!("/authorizers/{OA}");
    vec![
        // The two WeChat callbacks (the full push catalogue is in component_events.rs).
        raw(
            Method::POST,
            "/wechat/component",
            Some("text/xml"),
            "<xml/>".into(),
            400,
            "missing_parameter",
        ),
        raw(
            Method::POST,
            "/wechat/component?timestamp=1&nonce=n&msg_signature=x",
            Some("text/xml"),
            "<xml/>".into(),
            401,
            "stale_timestamp",
        ),
        raw(
            Method::POST,
            "/wechat/messages/bad",
            Some("text/xml"),
            "<xml/>".into(),
            400,
            "invalid_appid",
        ),
        raw(
            Method::POST,
            &format!("/wechat/messages/{OA}"),
            Some("text/xml"),
            String::new(),
            400,
            "missing_parameter",
        ),
        raw(
            Method::POST,
            &format!("/wechat/messages/{OA}"),
            Some("text/xml"),
            "x".repeat(70_000),
            413,
            "body_too_large",
        ),
        // The merchant's pages.
        // Without a live link the page is a 404 and the callback a 400: nothing is called.
        page("/authorize", 404),
        page("/authorize?auth_type=7", 404),
        page("/authorize?link=nope", 404),
        page("/authorize?link=0123456789abcdef0123456789abcdef", 404),
        page("/authorize/callback", 400),
        page("/authorize/callback?auth_code=queryauthcode@@@x", 400),
        page(
            "/authorize/callback?link=0123456789abcdef0123456789abcdef&auth_code=queryauthcode@@@x",
            400,
        ),
        page(
            "/authorize/callback?link=zz&auth_code=queryauthcode@@@x",
            400,
        ),
        page("/authorize/callback?auth_code=", 400),
        page(
            &format!("/authorize/callback?auth_code={}", "c".repeat(600)),
            400,
        ),
        // Links.
        case(
            Method::POST,
            "/authorize/links",
            Some(json!({})),
            400,
            "invalid_parameter",
        ),
        case(
            Method::POST,
            "/authorize/links",
            Some(json!({"customer_ref": "c".repeat(129)})),
            400,
            "invalid_parameter",
        ),
        case(
            Method::POST,
            "/authorize/links",
            Some(json!({"customer_ref": "bad\u{1}ref"})),
            400,
            "invalid_parameter",
        ),
        case(
            Method::POST,
            "/authorize/links",
            Some(json!({"customer_ref": ["c"]})),
            400,
            "invalid_parameter",
        ),
        case(
            Method::POST,
            "/authorize/links",
            Some(json!({"customer_ref": "c", "return_to": "https://evil.example/onboarded"})),
            400,
            "invalid_parameter",
        ),
        case(
            Method::POST,
            "/authorize/links",
            Some(json!({"customer_ref": "c", "return_to": "javascript:alert(1)"})),
            400,
            "invalid_parameter",
        ),
        case(
            Method::GET,
            "/authorize/links/nope",
            None,
            404,
            "unknown_link",
        ),
        case(
            Method::GET,
            "/authorize/links/0123456789abcdef0123456789abcdef",
            None,
            404,
            "unknown_link",
        ),
        case(
            Method::POST,
            "/authorize/links",
            Some(json!({"customer_ref": "c", "auth_type": 0})),
            400,
            "invalid_parameter",
        ),
        case(
            Method::POST,
            "/authorize/links",
            Some(json!({"customer_ref": "c", "auth_type": [1]})),
            400,
            "invalid_parameter",
        ),
        case(
            Method::POST,
            "/authorize/links",
            Some(json!("auth_type")),
            400,
            "invalid_json",
        ),
        raw(
            Method::POST,
            "/authorize/links",
            Some("application/json"),
            "{nope".into(),
            400,
            "invalid_json",
        ),
        raw(
            Method::POST,
            "/authorize/links",
            Some("application/x-www-form-urlencoded"),
            "auth_type=1".into(),
            415,
            "unsupported_media_type",
        ),
        raw(
            Method::POST,
            "/authorize/links",
            None,
            "{}".into(),
            415,
            "unsupported_media_type",
        ),
        raw(
            Method::POST,
            "/authorize/links",
            Some("application/json"),
            format!("{{\"x\":\"{big}\"}}"),
            413,
            "body_too_large",
        ),
        // Authorizers.
        case(
            Method::GET,
            "/authorizers?state=gone",
            None,
            400,
            "invalid_parameter",
        ),
        case(
            Method::GET,
            "/authorizers?limit=0",
            None,
            400,
            "invalid_parameter",
        ),
        case(
            Method::GET,
            "/authorizers?limit=101",
            None,
            400,
            "invalid_parameter",
        ),
        case(
            Method::GET,
            "/authorizers?limit=ten",
            None,
            400,
            "invalid_parameter",
        ),
        case(
            Method::GET,
            "/authorizers?customer_ref=",
            None,
            400,
            "invalid_parameter",
        ),
        case(
            Method::GET,
            format!("/authorizers?customer_ref={}", "c".repeat(129)),
            None,
            400,
            "invalid_parameter",
        ),
        case(
            Method::GET,
            "/authorizers?cursor=zzz",
            None,
            400,
            "invalid_parameter",
        ),
        case(
            Method::GET,
            "/authorizers/WXUPPER0000000001",
            None,
            400,
            "invalid_appid",
        ),
        case(
            Method::GET,
            "/authorizers/wx0000000000000009",
            None,
            404,
            "unknown_authorizer",
        ),
        // Tokens.
        case(
            Method::GET,
            "/component/access-token?stale_version=x",
            None,
            400,
            "invalid_parameter",
        ),
        case(
            Method::GET,
            "/authorizers/wx00/access-token",
            None,
            400,
            "invalid_appid",
        ),
        case(
            Method::GET,
            "/authorizers/wx0000000000000009/access-token",
            None,
            404,
            "unknown_authorizer",
        ),
        case(
            Method::GET,
            "/component/access-token?stale_version=999999",
            None,
            400,
            "invalid_parameter",
        ),
        case(
            Method::GET,
            format!("{oa}/access-token?stale_version=1.5"),
            None,
            400,
            "invalid_parameter",
        ),
        // Open accounts.
        case(
            Method::POST,
            "/authorizers/x/open-account",
            None,
            400,
            "invalid_appid",
        ),
        raw(
            Method::POST,
            &format!("{oa}/open-account"),
            Some("text/plain"),
            "hello".into(),
            415,
            "unsupported_media_type",
        ),
        raw(
            Method::POST,
            &format!("{oa}/open-account"),
            Some("application/json"),
            "[]".into(),
            400,
            "invalid_json",
        ),
        case(
            Method::POST,
            "/authorizers/wx0000000000000009/open-account",
            None,
            404,
            "unknown_authorizer",
        ),
        case(
            Method::PUT,
            format!("{oa}/open-account"),
            Some(json!({})),
            400,
            "missing_field",
        ),
        case(
            Method::PUT,
            format!("{oa}/open-account"),
            Some(json!({"open_appid": null})),
            400,
            "missing_field",
        ),
        case(
            Method::PUT,
            format!("{oa}/open-account"),
            Some(json!({"open_appid": {"a": 1}})),
            400,
            "invalid_parameter",
        ),
        case(
            Method::PUT,
            format!("{oa}/open-account"),
            Some(json!({"open_appid": "wx1"})),
            400,
            "invalid_parameter",
        ),
        raw(
            Method::PUT,
            &format!("{oa}/open-account"),
            Some("application/json"),
            format!("{{\"open_appid\":\"{big}\"}}"),
            413,
            "body_too_large",
        ),
        raw(
            Method::PUT,
            &format!("{oa}/open-account"),
            Some("text/xml"),
            "<x/>".into(),
            415,
            "unsupported_media_type",
        ),
        case(
            Method::DELETE,
            format!("{oa}/open-account"),
            None,
            400,
            "missing_parameter",
        ),
        case(
            Method::DELETE,
            format!("{oa}/open-account?open_appid="),
            None,
            400,
            "invalid_parameter",
        ),
        case(
            Method::DELETE,
            format!("{oa}/open-account?open_appid=wx%27%3B--"),
            None,
            400,
            "invalid_parameter",
        ),
        case(
            Method::GET,
            "/authorizers/wx/open-account",
            None,
            400,
            "invalid_appid",
        ),
        // Login sessions.
        case(Method::POST, "/login/sessions", None, 400, "missing_field"),
        case(
            Method::POST,
            "/login/sessions",
            Some(json!({"appid": 42})),
            400,
            "invalid_appid",
        ),
        case(
            Method::POST,
            "/login/sessions",
            Some(json!({"appid": ["wx"]})),
            400,
            "invalid_parameter",
        ),
        raw(
            Method::POST,
            "/login/sessions",
            Some("text/plain"),
            "appid=wx".into(),
            415,
            "unsupported_media_type",
        ),
        case(
            Method::POST,
            "/login/sessions",
            Some(json!({"appid": "wx0000000000000009"})),
            404,
            "unknown_authorizer",
        ),
        case(
            Method::GET,
            "/login/sessions/abc",
            None,
            400,
            "invalid_session_id",
        ),
        case(
            Method::GET,
            "/login/sessions/0123456789ABCDEF0123456789ABCDEF",
            None,
            400,
            "invalid_session_id",
        ),
        case(
            Method::GET,
            "/login/sessions/0123456789abcdef0123456789abcdef",
            None,
            404,
            "unknown_session",
        ),
        // Routes and methods the template does not have never reach a function (API Gateway: 404).
        Case {
            method: Method::PATCH,
            path: format!("{oa}/open-account"),
            content_type: None,
            body: None,
            status: 404,
            code: None,
        },
        Case {
            method: Method::GET,
            path: "/wechat/component".into(),
            content_type: None,
            body: None,
            status: 404,
            code: None,
        },
        Case {
            method: Method::GET,
            path: "/nope".into(),
            content_type: None,
            body: None,
            status: 404,
            code: None,
        },
    ]
}

#[tokio::test]
async fn every_route_rejects_bad_input_with_its_4xx_and_changes_nothing() {
    let stack = Stack::start().await;
    stack.push_ticket().await;
    stack.authorize(OA, "push_only").await;
    let (s, _) = stack
        .api(Method::GET, "/component/access-token", None)
        .await;
    assert_eq!(s, 200);
    let before = scan_all(&stack.store).await;
    stack.sandbox.clear_calls();

    for c in catalogue() {
        let mut req = stack.http.request(
            c.method.clone(),
            format!("{}{}", stack.gateway.base_url, c.path),
        );
        if let Some(ct) = c.content_type {
            req = req.header("content-type", ct);
        }
        if let Some(b) = &c.body {
            req = req.body(b.clone());
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let content_type = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let text = resp.text().await.unwrap();
        let what = format!("{} {}", c.method, &c.path[..c.path.len().min(80)]);
        assert_eq!(status, c.status, "{what}: {text}");
        match c.code {
            Some(code) => {
                assert!(
                    content_type.starts_with("application/json"),
                    "{what}: {content_type}"
                );
                let v: Value = serde_json::from_str(&text)
                    .unwrap_or_else(|_| panic!("{what}: not JSON: {text}"));
                assert_eq!(v["error"], code, "{what}: {v}");
                assert!(
                    v["message"].as_str().is_some_and(|m| !m.is_empty()),
                    "{what}: {v}"
                );
            }
            // The gateway's own 404 for an unknown route, or a merchant page's 404.
            None if status == 404 && !content_type.starts_with("text/html") => {
                assert!(text.contains("Not Found"), "{what}: {text}")
            }
            None => assert!(
                content_type.starts_with("text/html") && text.contains("<html"),
                "{what}: {content_type}"
            ),
        }
    }
    assert_eq!(
        scan_all(&stack.store).await,
        before,
        "bad input changed nothing in the table"
    );
    assert!(
        stack.sandbox.calls().is_empty(),
        "bad input reached WeChat: {:?}",
        stack.sandbox.calls()
    );
}

/// Every handler refuses a wrong method itself (API Gateway routes by method, but a function
/// must not trust that).
#[tokio::test]
async fn handlers_refuse_wrong_methods_with_the_error_shape() {
    let stack = Stack::start().await;
    let deps = stack.deps();
    let q = HashMap::new();
    let appid = HashMap::from([("appid".to_string(), OA.to_string())]);
    let with_appid = |m: &str| {
        lambda_http::RequestExt::with_path_parameters(
            request(m, "/", &q, Body::Empty),
            appid.clone(),
        )
    };
    let checks: Vec<(&str, lambda_http::Response<Body>)> = vec![
        (
            "access-token",
            access_token::handle(
                &deps,
                request("DELETE", "/component/access-token", &q, Body::Empty),
            )
            .await
            .unwrap(),
        ),
        (
            "open-account",
            open_account::handle(&deps, with_appid("PATCH"))
                .await
                .unwrap(),
        ),
        (
            "open-account",
            open_account::handle(&deps, with_appid("HEAD"))
                .await
                .unwrap(),
        ),
        (
            "authorizers",
            authorizers::handle(
                &authorizers::App {
                    store: stack.store.clone(),
                },
                request("POST", "/authorizers", &q, Body::Empty),
            )
            .await
            .unwrap(),
        ),
        (
            "login-session-status",
            login_session_status::handle(
                &login_session_status::App {
                    store: stack.store.clone(),
                    clock: wxopen::clock::SystemClock,
                },
                request("DELETE", "/login/sessions/x", &q, Body::Empty),
            )
            .await
            .unwrap(),
        ),
        (
            "authorize-callback",
            authorize_callback::handle(
                &deps,
                request("POST", "/authorize/callback", &q, Body::Empty),
            )
            .await
            .unwrap(),
        ),
    ];
    for (name, resp) in checks {
        assert_eq!(resp.status().as_u16(), 405, "{name}");
        let body = body_text(&resp);
        if name != "authorize-callback" {
            let v: Value = serde_json::from_str(&body).unwrap();
            assert_eq!(v["error"], "method_not_allowed", "{name}");
        }
    }
}
