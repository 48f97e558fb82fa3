//! The WeChat API gateway end to end: a caller → the local gateway over HTTP → the
//! `wechat-gateway` function → the sandbox (WeChat's rules) and moto. What the caller gets is
//! what the sandbox served, byte for byte, and the sandbox's call log shows the token each call
//! carried.

use std::time::Duration;

use crate::common::{OA1, OA2, age_token, stack_with};
use reqwest::Method;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use wxopen_tests::sandbox::CallRecord;
use wxopen_tests::stack::Stack;

const PNG: &[u8] =
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\xff\xfe\r\n--not-a-boundary";

/// An answer as the caller sees it: status, headers, the exact body bytes.
struct Raw {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: Vec<u8>,
}

impl Raw {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

async fn raw(req: reqwest::RequestBuilder) -> Raw {
    let resp = req.send().await.expect("answered");
    Raw {
        status: resp.status().as_u16(),
        headers: resp.headers().clone(),
        body: resp.bytes().await.expect("body").to_vec(),
    }
}

fn gateway(stack: &Stack, appid: &str, api: &str) -> String {
    format!(
        "{}/authorizers/{appid}/wechat/{api}",
        stack.gateway.base_url
    )
}

fn direct(stack: &Stack, api: &str) -> String {
    format!("{}/{api}", stack.sandbox.base_url())
}

/// The sandbox's current authorizer token of `appid`.
fn current_token(stack: &Stack, appid: &str) -> String {
    let state = stack.sandbox.state();
    state["merchants"]
        .as_array()
        .and_then(|ms| ms.iter().find(|m| m["appid"] == appid))
        .and_then(|m| m["authorizer_access_token"].as_str())
        .expect("a current token")
        .to_string()
}

use wxopen_tests::media_multipart as multipart;

async fn follow(stack: &Stack, appid: &str, users: &[&str]) {
    for user in users {
        let (s, v) = stack
            .control(
                Method::POST,
                "users/event",
                json!({ "appid": appid, "user": user, "event": "subscribe" }),
            )
            .await;
        assert_eq!(s, 200, "{v}");
    }
}

fn calls_to(calls: &[CallRecord], api: &str) -> Vec<CallRecord> {
    calls.iter().filter(|c| c.api == api).cloned().collect()
}

#[tokio::test]
async fn json_get_multipart_and_binary_pass_through_byte_identical_with_the_current_token() {
    let stack = stack_with(&[OA1]).await;
    follow(&stack, OA1, &["alice", "bob", "carol"]).await;
    stack.sandbox.clear_calls();
    let http = &stack.http;
    let boundary = "wxopen-e2e-boundary";

    // A JSON POST, a GET with a query, a multipart upload, a binary download.
    let menu =
        json!({ "button": [{ "type": "click", "name": "今日歌曲", "key": "V1001_TODAY_MUSIC" }] });
    let menu_body = serde_json::to_vec(&menu).unwrap();
    let created = raw(http
        .post(gateway(&stack, OA1, "cgi-bin/menu/create"))
        .header("content-type", "application/json")
        .body(menu_body.clone()))
    .await;
    let listed = raw(http.get(gateway(&stack, OA1, "cgi-bin/user/get"))).await;
    let first = listed.json()["data"]["openid"][0]
        .as_str()
        .expect("a follower")
        .to_string();
    let page = raw(http.get(format!(
        "{}?next_openid={first}",
        gateway(&stack, OA1, "cgi-bin/user/get")
    )))
    .await;
    let uploaded = raw(http
        .post(format!(
            "{}?type=image",
            gateway(&stack, OA1, "cgi-bin/media/upload")
        ))
        .header(
            "content-type",
            format!("multipart/form-data; boundary={boundary}"),
        )
        .body(multipart(boundary, PNG)))
    .await;
    let media_id = uploaded.json()["media_id"]
        .as_str()
        .unwrap_or_else(|| panic!("uploaded: {}", String::from_utf8_lossy(&uploaded.body)))
        .to_string();
    let downloaded = raw(http.get(format!(
        "{}?media_id={media_id}",
        gateway(&stack, OA1, "cgi-bin/media/get")
    )))
    .await;

    // Every call carried the authorizer's current token, and WeChat said yes.
    let calls = stack.sandbox.calls();
    for api in ["menu/create", "user/get", "media/upload", "media/get"] {
        let made = calls_to(&calls, api);
        assert!(!made.is_empty(), "{api} reached the sandbox");
        for c in made {
            assert_eq!(c.token_kind, "authorizer", "{api}: {c:?}");
            assert_eq!(c.authorizer_appid.as_deref(), Some(OA1), "{api}: {c:?}");
            assert!(c.token_current, "{api} carried the current token: {c:?}");
            assert_eq!(c.errcode, 0, "{api}: {c:?}");
        }
    }
    assert_eq!(
        calls.len(),
        5,
        "one WeChat call per gateway call: {calls:?}"
    );
    let menu_recorded = stack
        .control(Method::GET, &format!("merchants/{OA1}/menu"), json!({}))
        .await
        .1;
    assert_eq!(
        menu_recorded["menu"], menu,
        "the body reached WeChat unchanged"
    );

    for r in [&created, &listed, &page, &uploaded, &downloaded] {
        assert_eq!(r.status, 200);
        assert_eq!(r.header("x-wxopen-authorizer"), Some(OA1));
        assert_eq!(r.header("x-wxopen-token-version"), Some("1"));
        assert_eq!(r.header("x-wxopen-errcode"), None);
    }
    // The binary download: the uploaded bytes, WeChat's content type and disposition.
    assert_eq!(downloaded.body, PNG);
    assert_eq!(downloaded.header("content-type"), Some("image/png"));
    assert_eq!(
        downloaded.header("content-disposition"),
        Some("attachment; filename=\"logo.png\"")
    );
    // The upload's answer as the sandbox serialised it (its fields are its own).
    assert_eq!(
        uploaded.body,
        serde_json::to_vec(&uploaded.json()).unwrap(),
        "the upload's answer is WeChat's JSON as sent"
    );
    assert_eq!(uploaded.json()["type"], "image");

    // Byte-identical to what the sandbox serves the same calls made directly with the token.
    let token = current_token(&stack, OA1);
    let q = |extra: &[(&str, &str)]| {
        let mut v = vec![("access_token".to_string(), token.clone())];
        v.extend(extra.iter().map(|(k, x)| (k.to_string(), x.to_string())));
        v
    };
    let direct_created = raw(http
        .post(direct(&stack, "cgi-bin/menu/create"))
        .query(&q(&[]))
        .header("content-type", "application/json")
        .body(menu_body))
    .await;
    let direct_listed = raw(http.get(direct(&stack, "cgi-bin/user/get")).query(&q(&[]))).await;
    let direct_page = raw(http
        .get(direct(&stack, "cgi-bin/user/get"))
        .query(&q(&[("next_openid", &first)])))
    .await;
    let direct_downloaded = raw(http
        .get(direct(&stack, "cgi-bin/media/get"))
        .query(&q(&[("media_id", &media_id)])))
    .await;
    for (what, via, straight) in [
        ("menu/create", &created, &direct_created),
        ("user/get", &listed, &direct_listed),
        ("user/get?next_openid", &page, &direct_page),
        ("media/get", &downloaded, &direct_downloaded),
    ] {
        assert_eq!(via.body, straight.body, "{what}: byte-identical");
        assert_eq!(
            via.header("content-type"),
            straight.header("content-type"),
            "{what}"
        );
        assert_eq!(
            via.header("content-disposition"),
            straight.header("content-disposition"),
            "{what}"
        );
    }
    assert_eq!(listed.json()["total"], 3);
    assert_eq!(page.json()["count"], 2);

    // Warm: more proxied calls read nothing from DynamoDB.
    stack.ops.reset();
    for _ in 0..10 {
        let r = raw(http.get(gateway(&stack, OA1, "cgi-bin/user/get"))).await;
        assert_eq!(r.status, 200);
    }
    assert_eq!(
        stack.ops.total(),
        0,
        "steady state: no DynamoDB request per proxied call: {:?}",
        stack.ops.snapshot()
    );
}

#[tokio::test]
async fn the_sandbox_invalidates_the_token_mid_run_and_twenty_concurrent_calls_make_one_refresh() {
    let stack = stack_with(&[OA1]).await;
    follow(&stack, OA1, &["alice"]).await;
    let url = gateway(&stack, OA1, "cgi-bin/user/get");
    // Warm: the gateway holds version 1 in its cache.
    let warm = raw(stack.http.get(&url)).await;
    assert_eq!(
        (warm.status, warm.header("x-wxopen-token-version")),
        (200, Some("1"))
    );
    // Forced refreshes of a token younger than the bound (30 s) are refused by design.
    age_token(&stack, OA1, 60).await;
    let (s, v) = stack
        .control(
            Method::POST,
            &format!("merchants/{OA1}/invalidate-token"),
            json!({}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    stack.sandbox.clear_calls();

    let answers = futures_util::future::join_all((0..20).map(|_| raw(stack.http.get(&url)))).await;
    for a in &answers {
        assert_eq!(a.status, 200, "{}", String::from_utf8_lossy(&a.body));
        assert_eq!(a.json()["total"], 1, "WeChat's answer: {}", a.json());
        assert_eq!(a.header("x-wxopen-errcode"), None);
        assert_eq!(a.header("x-wxopen-token-version"), Some("2"));
        let attempts: u32 = a.header("x-wxopen-attempts").unwrap().parse().unwrap();
        assert!((1..=2).contains(&attempts), "at most one retry: {attempts}");
    }
    let calls = stack.sandbox.calls();
    let refreshes = calls_to(&calls, "api_authorizer_token");
    assert_eq!(refreshes.len(), 1, "exactly one refresh: {refreshes:?}");
    assert_eq!(refreshes[0].errcode, 0);
    let user_gets = calls_to(&calls, "user/get");
    let stale = user_gets.iter().filter(|c| c.errcode == 40001).count();
    let ok = user_gets.iter().filter(|c| c.errcode == 0).count();
    assert_eq!(ok, 20, "every call succeeded: {user_gets:?}");
    assert!(
        (1..=20).contains(&stale),
        "the stale token was seen: {stale}"
    );
    assert_eq!(stale + ok, user_gets.len());
    assert!(
        user_gets
            .iter()
            .filter(|c| c.errcode == 0)
            .all(|c| c.token_current),
        "every successful call carried the new token"
    );
}

/// One request over a plain socket, the path exactly as given (an HTTP client would resolve
/// `..` and `//` before sending).
async fn raw_path(stack: &Stack, method: &str, path: &str) -> (u16, Value) {
    let addr = stack.gateway.base_url.trim_start_matches("http://");
    let mut sock = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
    );
    sock.write_all(req.as_bytes()).await.expect("send");
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), sock.read_to_end(&mut out))
        .await
        .expect("answered in time")
        .expect("read");
    let text = String::from_utf8_lossy(&out).to_string();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

#[tokio::test]
async fn hostile_paths_are_a_4xx_and_reach_nothing() {
    let stack = stack_with(&[OA1]).await;
    let oa = format!("/authorizers/{OA1}/wechat");
    let cases: Vec<(String, u16, &str)> = vec![
        (
            format!("{oa}/cgi-bin/../cgi-bin/token"),
            400,
            "invalid_path",
        ),
        (
            format!("{oa}/cgi-bin/user/../../../component/access-token"),
            400,
            "invalid_path",
        ),
        (format!("{oa}/cgi-bin/./user/get"), 400, "invalid_path"),
        (format!("{oa}/cgi-bin%2Fuser%2Fget"), 400, "invalid_path"),
        (format!("{oa}/cgi-bin%2fuser/get"), 400, "invalid_path"),
        (format!("{oa}/cgi-bin/%2e%2e/token"), 400, "invalid_path"),
        (format!("{oa}/cgi-bin%5Cuser%5Cget"), 400, "invalid_path"),
        (
            format!("{oa}/https://evil.example/cgi-bin/user/get"),
            400,
            "invalid_path",
        ),
        (
            format!("{oa}//evil.example/cgi-bin/user/get"),
            400,
            "invalid_path",
        ),
        (
            format!("{oa}/cgi-bin@evil.example/user/get"),
            400,
            "invalid_path",
        ),
        (
            format!("{oa}/@evil.example/cgi-bin/user/get"),
            400,
            "invalid_path",
        ),
        (
            format!("{oa}/evil.example:443/cgi-bin/user/get"),
            400,
            "invalid_path",
        ),
        (format!("{oa}/pay/orderquery"), 403, "path_not_allowed"),
        (format!("{oa}/sns/userinfo"), 403, "path_not_allowed"),
        (format!("{oa}/CGI-BIN/user/get"), 403, "path_not_allowed"),
        (format!("{oa}/cgi-bin/token"), 403, "token_api_refused"),
        (
            format!("{oa}/cgi-bin/stable_token"),
            403,
            "token_api_refused",
        ),
        (
            format!("{oa}/cgi-bin/component/api_authorizer_token"),
            403,
            "token_api_refused",
        ),
        (
            format!("{oa}/cgi-bin/Component/API_Query_Auth"),
            403,
            "token_api_refused",
        ),
        (
            "/component/wechat/cgi-bin/component/api_component_token".into(),
            403,
            "token_api_refused",
        ),
        (
            "/component/wechat/cgi-bin/component/api_get_authorizer_list".into(),
            403,
            "token_api_refused",
        ),
    ];
    stack.sandbox.clear_calls();
    stack.ops.reset();
    for (path, status, code) in &cases {
        let (s, v) = raw_path(&stack, "GET", path).await;
        assert_eq!(
            (s, v["error"].as_str()),
            (*status, Some(*code)),
            "{path}: {v}"
        );
        assert!(
            v["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{path}: {v}"
        );
    }
    assert!(
        stack.sandbox.calls().is_empty(),
        "the sandbox saw nothing: {:?}",
        stack.sandbox.calls()
    );
    assert_eq!(
        stack.ops.total(),
        0,
        "no token was even read: {:?}",
        stack.ops.snapshot()
    );
}

#[tokio::test]
async fn an_authorizer_that_is_not_authorized_gets_409_without_a_wechat_call() {
    let stack = stack_with(&[OA1, OA2]).await;
    let (s, v) = stack
        .control(Method::POST, &format!("merchants/{OA2}/cancel"), json!({}))
        .await;
    assert_eq!(s, 200, "{v}");
    let (s, v) = stack
        .api(Method::GET, &format!("/authorizers/{OA2}"), None)
        .await;
    assert_eq!((s, v["state"].as_str()), (200, Some("unauthorized")), "{v}");
    stack.sandbox.clear_calls();
    let r = raw(stack.http.get(gateway(&stack, OA2, "cgi-bin/user/get"))).await;
    assert_eq!(r.status, 409);
    assert_eq!(r.json()["error"], "authorizer_unauthorized", "{}", r.json());
    assert!(
        stack.sandbox.calls().is_empty(),
        "no WeChat call: {:?}",
        stack.sandbox.calls()
    );
}

#[tokio::test]
async fn quota_routes_read_and_reset_through_the_gateway() {
    let stack = stack_with(&[OA1]).await;
    for _ in 0..2 {
        let r = raw(stack.http.get(gateway(&stack, OA1, "cgi-bin/user/get"))).await;
        assert_eq!(r.status, 200);
    }
    let (s, v) = stack
        .api(
            Method::GET,
            &format!("/authorizers/{OA1}/quota?cgi_path=/cgi-bin/user/get"),
            None,
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["quota"]["used"], 2, "{v}");
    let (s, v) = stack
        .api(
            Method::POST,
            &format!("/authorizers/{OA1}/clear-quota"),
            None,
        )
        .await;
    assert_eq!((s, v["cleared"].as_bool()), (200, Some(true)), "{v}");
    let (_, v) = stack
        .api(
            Method::GET,
            &format!("/authorizers/{OA1}/quota?cgi_path=/cgi-bin/user/get"),
            None,
        )
        .await;
    assert_eq!(v["quota"]["used"], 0, "{v}");
    let (s, v) = stack
        .api(Method::POST, "/component/clear-quota", None)
        .await;
    assert_eq!((s, v["scope"].as_str()), (200, Some("component")), "{v}");
    let v2 = calls_to(&stack.sandbox.calls(), "component/clear_quota/v2");
    assert_eq!(v2.len(), 1);
    assert_eq!(v2[0].token_kind, "none", "the v2 reset takes no token");
    // An unknown cgi_path is WeChat's 76021, as a 400.
    let (s, v) = stack
        .api(
            Method::GET,
            &format!("/authorizers/{OA1}/quota?cgi_path=/cgi-bin/nope"),
            None,
        )
        .await;
    assert_eq!(
        (s, v["error"].as_str(), v["wechat_errcode"].as_i64()),
        (400, Some("invalid_cgi_path"), Some(76021)),
        "{v}"
    );
}
