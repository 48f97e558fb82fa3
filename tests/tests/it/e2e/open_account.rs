//! Open-account operations end to end: gateway → functions → sandbox (WeChat's rules) → moto.

use crate::common::{MP1, OA1, OA2, OA3, age_token, stack_with};
use reqwest::Method;
use serde_json::{Value, json};
use wxopen::store::AuthorizerStore;
use wxopen_tests::stack::Stack;

fn path(appid: &str) -> String {
    format!("/authorizers/{appid}/open-account")
}

async fn create(stack: &Stack, appid: &str) -> (u16, Value) {
    stack.api(Method::POST, &path(appid), None).await
}

async fn get(stack: &Stack, appid: &str) -> (u16, Value) {
    stack.api(Method::GET, &path(appid), None).await
}

async fn bind(stack: &Stack, appid: &str, open_appid: &str) -> (u16, Value) {
    stack
        .api(
            Method::PUT,
            &path(appid),
            Some(json!({ "open_appid": open_appid })),
        )
        .await
}

async fn unbind(stack: &Stack, appid: &str, open_appid: &str) -> (u16, Value) {
    stack
        .api(
            Method::DELETE,
            &format!("{}?open_appid={open_appid}", path(appid)),
            None,
        )
        .await
}

async fn stored_open_appid(stack: &Stack, appid: &str) -> Option<String> {
    stack
        .store
        .get_authorizer(appid)
        .await
        .unwrap()
        .unwrap()
        .open_appid
}

#[tokio::test]
async fn create_get_bind_unbind_get() {
    let stack = stack_with(&[OA1, OA2, MP1]).await;
    let (status, created) = create(&stack, OA1).await;
    assert_eq!(status, 201, "{created}");
    let open_appid = created["open_appid"].as_str().unwrap().to_string();
    assert_eq!(
        stored_open_appid(&stack, OA1).await.as_deref(),
        Some(open_appid.as_str())
    );

    let (status, got) = get(&stack, OA1).await;
    assert_eq!(
        (status, got["open_appid"].as_str()),
        (200, Some(open_appid.as_str()))
    );

    // A second authorizer of the same subject binds to it; so does the mini program.
    let (status, bound) = bind(&stack, OA2, &open_appid).await;
    assert_eq!(
        (status, bound["changed"].as_bool()),
        (200, Some(true)),
        "{bound}"
    );
    let (status, bound) = bind(&stack, MP1, &open_appid).await;
    assert_eq!(status, 200, "{bound}");
    assert_eq!(
        stored_open_appid(&stack, OA2).await.as_deref(),
        Some(open_appid.as_str())
    );
    // Binding again to the same account is a no-op.
    let (status, again) = bind(&stack, OA2, &open_appid).await;
    assert_eq!(
        (status, again["changed"].as_bool()),
        (200, Some(false)),
        "{again}"
    );

    let (status, body) = unbind(&stack, OA2, &open_appid).await;
    assert_eq!(status, 204, "{body}");
    assert_eq!(stored_open_appid(&stack, OA2).await, None);
    let (status, body) = get(&stack, OA2).await;
    assert_eq!(
        (
            status,
            body["error"].as_str(),
            body["wechat_errcode"].as_i64()
        ),
        (404, Some("not_bound"), Some(89002))
    );

    // Every open-account call carried the authorizer's token, never the component token.
    let open_calls: Vec<_> = stack
        .sandbox
        .calls()
        .into_iter()
        .filter(|c| c.api.starts_with("open/"))
        .collect();
    assert!(open_calls.len() >= 7);
    assert!(
        open_calls.iter().all(|c| c.token_kind == "authorizer"),
        "{open_calls:?}"
    );
}

#[tokio::test]
async fn a_retried_create_never_makes_a_second_account() {
    let stack = stack_with(&[OA1]).await;
    let (_, created) = create(&stack, OA1).await;
    let (status, again) = create(&stack, OA1).await;
    assert_eq!(status, 409, "{again}");
    assert_eq!(again["error"], "already_bound");
    assert_eq!(again["wechat_errcode"], 89000);
    assert_eq!(
        again["open_appid"], created["open_appid"],
        "the bound account is named"
    );
    let (_, accounts) = stack.control(Method::GET, "open-accounts", json!({})).await;
    assert_eq!(accounts.as_array().unwrap().len(), 1, "{accounts}");
}

#[tokio::test]
async fn wechat_rules_reach_the_caller_with_status_and_errcode() {
    let stack = stack_with(&[OA1, OA2, OA3]).await;
    let (_, created) = create(&stack, OA1).await;
    let open_appid = created["open_appid"].as_str().unwrap().to_string();

    // 89000: already bound elsewhere.
    let (_, other) = create(&stack, OA2).await;
    let other_open = other["open_appid"].as_str().unwrap().to_string();
    let (status, body) = bind(&stack, OA2, &open_appid).await;
    assert_eq!(
        (
            status,
            body["wechat_errcode"].as_i64(),
            body["open_appid"].as_str()
        ),
        (409, Some(89000), Some(other_open.as_str())),
        "{body}"
    );
    // 89001: another subject.
    let (status, body) = bind(&stack, OA3, &open_appid).await;
    assert_eq!(
        (
            status,
            body["error"].as_str(),
            body["wechat_errcode"].as_i64()
        ),
        (409, Some("not_same_subject"), Some(89001)),
        "{body}"
    );
    // 89002: not bound.
    let (status, body) = unbind(&stack, OA3, &open_appid).await;
    assert_eq!(
        (
            status,
            body["error"].as_str(),
            body["wechat_errcode"].as_i64()
        ),
        (404, Some("not_bound"), Some(89002)),
        "{body}"
    );
    // 89003: an open account registered on the website.
    let (_, web) = stack
        .control(
            Method::POST,
            "open-accounts",
            json!({"subject": "Other Co", "created_by_api": false}),
        )
        .await;
    let web_open = web["open_appid"].as_str().unwrap().to_string();
    let (status, body) = bind(&stack, OA3, &web_open).await;
    assert_eq!(
        (
            status,
            body["error"].as_str(),
            body["wechat_errcode"].as_i64()
        ),
        (409, Some("not_created_by_api"), Some(89003)),
        "{body}"
    );
    // 89004: the open account is full.
    let (status, _) = stack
        .control(
            Method::POST,
            "config",
            json!({"open_account_bind_limit": 1}),
        )
        .await;
    assert_eq!(status, 200);
    let (_, unb) = unbind(&stack, OA2, &other_open).await;
    assert_eq!(unb, Value::String(String::new()));
    let (status, body) = bind(&stack, OA2, &open_appid).await;
    assert_eq!(
        (
            status,
            body["error"].as_str(),
            body["wechat_errcode"].as_i64()
        ),
        (409, Some("limit_reached"), Some(89004)),
        "{body}"
    );
    // Every error has the one shape, with a message a person can act on.
    assert!(body["message"].as_str().unwrap().contains("limit"));
}

#[tokio::test]
async fn a_stale_token_is_recovered_by_exactly_one_retry() {
    let stack = stack_with(&[OA1]).await;
    create(&stack, OA1).await;
    // WeChat rejects a token issued an hour ago (a token refreshed moments ago is not
    // refreshed again: forced refreshes are bounded).
    age_token(&stack, OA1, 3600).await;
    stack.sandbox.clear_calls();
    let (status, b) = stack
        .control(
            Method::POST,
            "faults",
            json!({"api": "open/get", "errcode": 40001, "count": 1}),
        )
        .await;
    assert_eq!(status, 200, "{b}");
    let (status, body) = get(&stack, OA1).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(stack.calls_to("open/get"), 2, "one retry");
    assert_eq!(
        stack.calls_to("api_authorizer_token"),
        1,
        "one refresh of the rejected version"
    );
    // Twice stale in a row: no loop, the error reaches the caller.
    let (_, _) = stack
        .control(
            Method::POST,
            "faults",
            json!({"api": "open/get", "errcode": 40001, "count": 2}),
        )
        .await;
    stack.sandbox.clear_calls();
    let (status, body) = get(&stack, OA1).await;
    assert_eq!(
        (status, body["wechat_errcode"].as_i64()),
        (502, Some(40001)),
        "{body}"
    );
    assert_eq!(stack.calls_to("open/get"), 2);
}

#[tokio::test]
async fn permissions_state_and_input_are_checked_before_wechat() {
    let stack = stack_with(&[OA1, OA2]).await;
    // The merchant withdraws permission set 24.
    let (status, _) = stack
        .control(
            Method::POST,
            &format!("merchants/{OA2}/update"),
            json!({"func_info": [1, 2]}),
        )
        .await;
    assert_eq!(status, 200);
    stack.sandbox.clear_calls();
    let (status, body) = create(&stack, OA2).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (403, Some("permission_not_granted")),
        "{body}"
    );
    assert!(body["message"].as_str().unwrap().contains("24"));
    // Unknown and cancelled authorizers.
    let (status, body) = create(&stack, "wx0000000000000009").await;
    assert_eq!(
        (status, body["error"].as_str()),
        (404, Some("unknown_authorizer"))
    );
    stack
        .control(Method::POST, &format!("merchants/{OA1}/cancel"), json!({}))
        .await;
    let (status, body) = get(&stack, OA1).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (409, Some("authorizer_unauthorized")),
        "{body}"
    );
    // Bad input: 400 before any WeChat call.
    for (method, p, body, code) in [
        (Method::POST, path("wxBAD"), None, "invalid_appid"),
        (Method::PUT, path(OA2), Some(json!({})), "missing_field"),
        (
            Method::PUT,
            path(OA2),
            Some(json!({"open_appid": "nope"})),
            "invalid_parameter",
        ),
        (
            Method::PUT,
            path(OA2),
            Some(json!({"open_appid": 5})),
            "invalid_parameter",
        ),
        (Method::PUT, path(OA2), None, "missing_field"),
        (Method::DELETE, path(OA2), None, "missing_parameter"),
        (
            Method::DELETE,
            format!("{}?open_appid=x", path(OA2)),
            None,
            "invalid_parameter",
        ),
    ] {
        let (status, b) = stack.api(method.clone(), &p, body.clone()).await;
        assert_eq!(
            (status, b["error"].as_str()),
            (400, Some(code)),
            "{method} {p} {body:?}: {b}"
        );
    }
    assert!(
        stack
            .sandbox
            .calls()
            .iter()
            .all(|c| !c.api.starts_with("open/")),
        "no WeChat call for bad input"
    );
}
