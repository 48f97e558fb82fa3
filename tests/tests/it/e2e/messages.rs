//! The message URL end to end: follow-to-log-in with UnionID linking, and what must not change
//! state (expired sessions, unknown scenes, replays, wrong-appid paths).

use crate::common::{MP1, OA1, OA2, OA4, stack_with};
use reqwest::Method;
use serde_json::{Value, json};
use wxopen::clock::{Clock, FixedClock, SystemClock};
use wxopen::login::LoginSettings;
use wxopen_tests::stack::Stack;
use wxopen_tests::{SignedPush, body_text, request};

pub(crate) async fn new_session(stack: &Stack, appid: &str) -> Value {
    let (status, body) = stack
        .api(
            Method::POST,
            "/login/sessions",
            Some(json!({ "appid": appid })),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    body
}

pub(crate) async fn scan(stack: &Stack, user: &str, session: &Value) -> (u16, Value) {
    stack
        .control(
            Method::POST,
            "users/scan",
            json!({ "user": user, "ticket": wxopen_tests::ticket_of(session).unwrap() }),
        )
        .await
}

async fn status(stack: &Stack, session: &Value) -> Value {
    let (s, body) = stack
        .api(
            Method::GET,
            &format!("/login/sessions/{}", session["id"].as_str().unwrap()),
            None,
        )
        .await;
    assert_eq!(s, 200, "{body}");
    body
}

#[tokio::test]
async fn new_and_existing_followers_log_in_and_unionid_links_accounts() {
    let stack = stack_with(&[OA1, OA2]).await;
    // Bind both official accounts to one open account so WeChat gives UnionIDs.
    let (_, created) = stack
        .api(
            Method::POST,
            &format!("/authorizers/{OA1}/open-account"),
            None,
        )
        .await;
    let open_appid = created["open_appid"].as_str().unwrap();
    let (s, _) = stack
        .api(
            Method::PUT,
            &format!("/authorizers/{OA2}/open-account"),
            Some(json!({ "open_appid": open_appid })),
        )
        .await;
    assert_eq!(s, 200);

    // alice is new to OA1: she follows by scanning (subscribe + qrscene_).
    let first = new_session(&stack, OA1).await;
    assert_eq!(status(&stack, &first).await["status"], "pending");
    let (s, scanned) = scan(&stack, "alice", &first).await;
    assert_eq!(s, 200, "{scanned}");
    assert_eq!(scanned["event"], "subscribe");
    assert!(
        scanned["reply"]
            .as_str()
            .unwrap_or_default()
            .contains("登录成功"),
        "{scanned}"
    );
    let one = status(&stack, &first).await;
    assert_eq!(one["status"], "confirmed", "{one}");
    assert_eq!(one["openid"], scanned["openid"]);
    let unionid = one["unionid"].as_str().expect("unionid").to_string();
    assert_eq!(one["known_user"], false);
    assert_eq!(one["linked_appids"], json!([OA1]));

    // She scans again later: an existing follower (SCAN).
    let second = new_session(&stack, OA1).await;
    let (_, scanned) = scan(&stack, "alice", &second).await;
    assert_eq!(scanned["event"], "SCAN");
    let two = status(&stack, &second).await;
    assert_eq!(
        (two["status"].as_str(), two["unionid"].as_str()),
        (Some("confirmed"), Some(unionid.as_str()))
    );
    assert_eq!(two["known_user"], true);

    // Through the other official account of the same open account: same UnionID, both appids.
    let third = new_session(&stack, OA2).await;
    let (_, scanned) = scan(&stack, "alice", &third).await;
    assert_ne!(
        scanned["openid"], one["openid"],
        "openids differ per account"
    );
    let three = status(&stack, &third).await;
    assert_eq!(three["unionid"].as_str(), Some(unionid.as_str()));
    assert_eq!(three["known_user"], true);
    let mut linked: Vec<String> = serde_json::from_value(three["linked_appids"].clone()).unwrap();
    linked.sort();
    assert_eq!(linked, vec![OA1.to_string(), OA2.to_string()]);
    // Every login used the authorizer's token for user/info and qrcode/create.
    let calls = stack.sandbox.calls();
    assert!(
        calls
            .iter()
            .filter(|c| c.api == "user/info" || c.api == "qrcode/create")
            .all(|c| c.token_kind == "authorizer")
    );
}

#[tokio::test]
async fn without_an_open_account_the_unionid_is_null_with_a_reason() {
    let stack = stack_with(&[OA1]).await;
    let session = new_session(&stack, OA1).await;
    scan(&stack, "bob", &session).await;
    let s = status(&stack, &session).await;
    assert_eq!(s["status"], "confirmed");
    assert!(s["unionid"].is_null());
    assert!(
        s["unionid_missing_reason"]
            .as_str()
            .unwrap()
            .contains("open account")
    );
    assert_eq!(s["linked_appids"], json!([]));
}

#[tokio::test]
async fn only_verified_service_accounts_with_permissions_make_login_codes() {
    let stack = stack_with(&[OA4, MP1, OA2]).await;
    for (appid, code) in [
        (OA4, "not_verified_service_account"),
        (MP1, "not_official_account"),
    ] {
        let (s, body) = stack
            .api(
                Method::POST,
                "/login/sessions",
                Some(json!({ "appid": appid })),
            )
            .await;
        assert_eq!(
            (s, body["error"].as_str()),
            (409, Some(code)),
            "{appid}: {body}"
        );
    }
    stack
        .control(
            Method::POST,
            &format!("merchants/{OA2}/update"),
            json!({"func_info": [1, 24]}),
        )
        .await;
    let (s, body) = stack
        .api(
            Method::POST,
            "/login/sessions",
            Some(json!({ "appid": OA2 })),
        )
        .await;
    assert_eq!(
        (s, body["error"].as_str()),
        (403, Some("permission_not_granted")),
        "{body}"
    );
    for (body, code) in [
        (json!({}), "missing_field"),
        (json!({"appid": "x"}), "invalid_appid"),
    ] {
        let (s, b) = stack.api(Method::POST, "/login/sessions", Some(body)).await;
        assert_eq!((s, b["error"].as_str()), (400, Some(code)), "{b}");
    }
    let (s, b) = stack
        .api(
            Method::POST,
            "/login/sessions",
            Some(json!({"appid": "wx0000000000000009"})),
        )
        .await;
    assert_eq!((s, b["error"].as_str()), (404, Some("unknown_authorizer")));
    for (p, s_expected, code) in [
        ("/login/sessions/nothex", 400, "invalid_session_id"),
        (
            "/login/sessions/0123456789abcdef0123456789abcdef",
            404,
            "unknown_session",
        ),
    ] {
        let (s, b) = stack.api(Method::GET, p, None).await;
        assert_eq!((s, b["error"].as_str()), (s_expected, Some(code)), "{p}");
    }
}

#[tokio::test]
async fn expired_sessions_replays_and_other_accounts_change_nothing() {
    let stack = stack_with(&[OA1, OA2]).await;
    // Another authorizer's session: OA2's scene scanned at OA1 confirms nothing.
    let oa2_session = new_session(&stack, OA2).await;
    let oa1_session = new_session(&stack, OA1).await;
    let scene = oa2_session["id"].as_str().unwrap();
    let (_, r) = stack
        .control(
            Method::POST,
            "users/event",
            json!({"appid": OA1, "user": "carol", "event": "SCAN", "event_key": scene}),
        )
        .await;
    assert_eq!(r["reply"].as_str().unwrap_or("success"), "success", "{r}");
    assert_eq!(status(&stack, &oa2_session).await["status"], "pending");

    // A scan delivered twice (WeChat retries): the second answer is the same reply (from the
    // event record), nothing changes.
    let (_, first) = scan(&stack, "carol", &oa1_session).await;
    let confirmed = status(&stack, &oa1_session).await;
    assert_eq!(confirmed["status"], "confirmed", "{first}");
    let fresh = new_session(&stack, OA1).await;
    let push = scan_push(&fresh, first["openid"].as_str().unwrap());
    let (s1, b1) = post_message(&stack, OA1, &push).await;
    assert_eq!(s1, 200);
    assert!(
        b1.contains("<Encrypt>"),
        "the first delivery gets the encrypted reply: {b1}"
    );
    let after_first = status(&stack, &fresh).await;
    assert_eq!(after_first["status"], "confirmed");
    let (s2, b2) = post_message(&stack, OA1, &push).await;
    assert_eq!(s2, 200);
    assert!(
        b2.contains("<Encrypt>"),
        "the retry gets the recorded reply again: {b2}"
    );
    assert_eq!(
        status(&stack, &fresh).await,
        after_first,
        "replay changed nothing"
    );

    // Expired: a scan arriving after the session's expiry confirms nothing, and the status says so.
    let late = new_session(&stack, OA1).await;
    let expires_at = late["expires_at"].as_i64().unwrap();
    let deps = stack.deps_with_clock(FixedClock::new(expires_at + 1));
    let app = message_events::App {
        deps,
        push_window: std::time::Duration::from_secs(100_000),
        login: LoginSettings::default(),
        publisher: stack.publisher(),
        hook: wxopen::reply::hook::ConfiguredHook::None,
        hook_budget: wxopen::reply::hook::DEFAULT_BUDGET,
        metrics: wxopen::events::metrics::MetricSink::memory(),
    };
    let push = scan_push(&late, "o_late_user");
    let resp = message_events::handle(
        &app,
        push.request_to(&format!("/wechat/messages/{OA1}"), OA1),
    )
    .await
    .unwrap();
    assert_eq!(body_text(&resp), "success");
    let status_app = login_session_status::App {
        store: stack.store.clone(),
        clock: FixedClock::new(expires_at + 1),
    };
    let mut req = request(
        "GET",
        "/login/sessions/x",
        &Default::default(),
        lambda_http::Body::Empty,
    );
    req = lambda_http::RequestExt::with_path_parameters(
        req,
        std::collections::HashMap::from([(
            "id".to_string(),
            late["id"].as_str().unwrap().to_string(),
        )]),
    );
    let resp = login_session_status::handle(&status_app, req)
        .await
        .unwrap();
    let body: Value = serde_json::from_str(&body_text(&resp)).unwrap();
    assert_eq!(body["status"], "expired", "{body}");
    // The sandbox, too, refuses to deliver a scan of an expired code.
    stack.sandbox.advance_clock(400);
    let (s, body) = scan(&stack, "carol", &late).await;
    assert_eq!(s, 400, "{body}");
}

/// A signed SCAN event for `session` from `openid` at OA1.
fn scan_push(session: &Value, openid: &str) -> SignedPush {
    let id = session["id"].as_str().unwrap();
    let xml = format!(
        "<xml><ToUserName><![CDATA[gh_oa000000000001]]></ToUserName><FromUserName><![CDATA[{openid}]]></FromUserName><CreateTime>1</CreateTime><MsgType><![CDATA[event]]></MsgType><Event><![CDATA[SCAN]]></Event><EventKey><![CDATA[{id}]]></EventKey></xml>"
    );
    SignedPush::new(
        &xml,
        wxopen_tests::APPID,
        SystemClock.now(),
        &format!("n-{id}"),
    )
}

pub(crate) async fn post_message(stack: &Stack, appid: &str, push: &SignedPush) -> (u16, String) {
    let resp = stack
        .http
        .post(format!(
            "{}/wechat/messages/{appid}",
            stack.gateway.base_url
        ))
        .query(&push.query.iter().collect::<Vec<_>>())
        .body(push.body.clone())
        .send()
        .await
        .unwrap();
    (resp.status().as_u16(), resp.text().await.unwrap())
}

#[tokio::test]
async fn message_url_checks_the_path_against_the_message_account() {
    let stack = stack_with(&[OA1, OA2]).await;
    let session = new_session(&stack, OA1).await;
    let id = session["id"].as_str().unwrap();
    // A scan event for OA1 posted at OA2's path: 401, the session stays pending.
    let xml = format!(
        "<xml><ToUserName><![CDATA[gh_oa000000000001]]></ToUserName><FromUserName><![CDATA[o_x]]></FromUserName><CreateTime>1</CreateTime><MsgType><![CDATA[event]]></MsgType><Event><![CDATA[SCAN]]></Event><EventKey><![CDATA[{id}]]></EventKey></xml>"
    );
    let now = SystemClock.now();
    let push = SignedPush::new(&xml, wxopen_tests::APPID, now, "n-wrong-path");
    let resp = stack
        .http
        .post(format!("{}/wechat/messages/{OA2}", stack.gateway.base_url))
        .query(&push.query.iter().collect::<Vec<_>>())
        .body(push.body.clone())
        .send()
        .await
        .unwrap();
    let status_code = resp.status().as_u16();
    let body: Value = resp.json().await.unwrap();
    assert_eq!(
        (status_code, body["error"].as_str()),
        (401, Some("wrong_account")),
        "{body}"
    );
    assert_eq!(status(&stack, &session).await["status"], "pending");
    // Unknown appid at the path: `success` (published with authorizer_known: false; a 404 would
    // make WeChat tell the user the account cannot serve). Bad appid: 400.
    for (p, code) in [("wx0000000000000009", 200), ("bad", 400)] {
        let resp = stack
            .http
            .post(format!("{}/wechat/messages/{p}", stack.gateway.base_url))
            .query(&push.query.iter().collect::<Vec<_>>())
            .body(push.body.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), code, "{p}");
    }
}

#[tokio::test]
async fn ordinary_messages_go_to_the_hook_or_get_success() {
    let stack = stack_with(&[OA1]).await;
    let (_, r) = stack
        .control(
            Method::POST,
            "users/message",
            json!({"appid": OA1, "user": "dave", "content": "hi"}),
        )
        .await;
    assert_eq!(r["status"], 200, "{r}");
    assert!(
        r["reply"]
            .as_str()
            .unwrap_or_default()
            .contains("you said: hi"),
        "a text message goes to the reply hook, whose echo reaches the user: {r}"
    );
    let (_, r) = stack
        .control(
            Method::POST,
            "users/event",
            json!({"appid": OA1, "user": "dave", "event": "LOCATION"}),
        )
        .await;
    assert_eq!(
        r["delivery"]["body"], "success",
        "non-test accounts get no release-test replies: {r}"
    );
}

#[tokio::test]
async fn wechat_full_network_release_test_passes_with_no_configuration() {
    let stack = stack_with(&[]).await;
    for appid in ["wx570bc396a51b8ff8", "wxd101a85aa106f53e"] {
        let (s, report) = stack
            .control(Method::POST, "release-test/run", json!({ "appid": appid }))
            .await;
        assert_eq!(s, 200, "{report}");
        assert_eq!(report["passed"], true, "{appid}: {report:#}");
        assert_eq!(report["cases"].as_array().unwrap().len(), 3);
    }
    let sends: Vec<_> = stack
        .sandbox
        .calls()
        .into_iter()
        .filter(|c| c.api == "message/custom/send")
        .collect();
    assert_eq!(sends.len(), 2);
    assert!(
        sends
            .iter()
            .all(|c| c.token_kind == "authorizer" && c.errcode == 0),
        "{sends:?}"
    );
    // The release-test replies go to the test accounts only (checked in ordinary_messages_get_success).
}
