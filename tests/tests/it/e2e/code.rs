//! Mini program code end to end: gateway → templates / miniprogram-code → sandbox → moto, and
//! the sandbox's audit pushes through the message URL updating the code record.

use crate::common::{MP1, OA1, stack_with};
use reqwest::Method;
use serde_json::{Value, json};
use wxopen_tests::stack::Stack;

fn code(appid: &str, rest: &str) -> String {
    format!("/authorizers/{appid}/code{rest}")
}

/// A template from the sandbox's first draft: its id.
async fn template(stack: &Stack) -> i64 {
    let (s, drafts) = stack.api(Method::GET, "/templates/drafts", None).await;
    assert_eq!(s, 200, "{drafts}");
    let draft = drafts["drafts"][0]["draft_id"].as_i64().unwrap();
    let (s, added) = stack
        .api(
            Method::POST,
            "/templates",
            Some(json!({ "draft_id": draft })),
        )
        .await;
    assert_eq!(s, 201, "{added}");
    let (s, list) = stack.api(Method::GET, "/templates", None).await;
    assert_eq!(s, 200, "{list}");
    list["templates"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["draft_id"] == draft)
        .and_then(|t| t["template_id"].as_i64())
        .unwrap()
}

async fn commit(stack: &Stack, appid: &str, template_id: i64, version: &str) -> (u16, Value) {
    stack
        .api(
            Method::POST,
            &code(appid, ""),
            Some(json!({
                "template_id": template_id,
                "ext_json": { "extAppid": appid, "ext": { "shop": "s-1" } },
                "user_version": version,
                "user_desc": "e2e",
            })),
        )
        .await
}

async fn submit(stack: &Stack, appid: &str) -> (u16, Value) {
    stack
        .api(
            Method::POST,
            &code(appid, "/audit"),
            Some(json!({ "version_desc": "e2e", "privacy_api_not_use": true })),
        )
        .await
}

async fn record(stack: &Stack, appid: &str) -> Value {
    let (s, r) = stack.api(Method::GET, &code(appid, ""), None).await;
    assert_eq!(s, 200, "{r}");
    r
}

#[tokio::test]
async fn template_commit_qrcode_audit_pushed_release() {
    let stack = stack_with(&[MP1]).await;
    let template_id = template(&stack).await;
    let (s, r) = commit(&stack, MP1, template_id, "1.0.0").await;
    assert_eq!(s, 200, "{r}");
    assert_eq!(r["committed"]["template_id"], template_id);
    assert_eq!(r["committed"]["user_version"], "1.0.0");

    // The trial QR code: image bytes through the gateway.
    let resp = stack
        .http
        .get(format!(
            "{}{}?path=pages%2Findex%2Findex",
            stack.gateway.base_url,
            code(MP1, "/qrcode")
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(
        resp.headers()["content-type"].to_str().unwrap(),
        "image/jpeg"
    );
    let bytes = resp.bytes().await.unwrap();
    assert_eq!(bytes[..2], [0xFF, 0xD8]);

    let (s, cats) = stack
        .api(Method::GET, &code(MP1, "/categories"), None)
        .await;
    assert_eq!(
        (s, cats["categories"][0]["first_id"].as_i64()),
        (200, Some(287))
    );
    let (s, quota) = stack.api(Method::GET, &code(MP1, "/quota"), None).await;
    assert_eq!((s, quota["rest"].as_i64()), (200, Some(100)), "{quota}");

    let (s, r) = submit(&stack, MP1).await;
    assert_eq!(s, 200, "{r}");
    assert_eq!(r["audit"]["state"], "auditing");
    let auditid = r["audit"]["auditid"].as_i64().unwrap();
    let (s, again) = submit(&stack, MP1).await;
    assert_eq!(
        (s, again["error"].as_str(), again["wechat_errcode"].as_i64()),
        (409, Some("audit_in_progress"), Some(85009))
    );
    let (s, early) = stack.api(Method::POST, &code(MP1, "/release"), None).await;
    assert_eq!(
        (s, early["error"].as_str()),
        (409, Some("no_approved_version"))
    );

    // WeChat finishes the audit and pushes it to the message URL: the record follows.
    let pushed = stack.sandbox.run_audits(true).await;
    assert_eq!(pushed.len(), 1);
    assert!(pushed[0].delivery.delivered, "{pushed:?}");
    let r = record(&stack, MP1).await;
    assert_eq!(
        (r["audit"]["auditid"].as_i64(), r["audit"]["state"].as_str()),
        (Some(auditid), Some("approved")),
        "{r}"
    );

    let (s, r) = stack.api(Method::POST, &code(MP1, "/release"), None).await;
    assert_eq!(s, 200, "{r}");
    assert_eq!(r["released"]["user_version"], "1.0.0");
    assert_eq!(r["released"]["template_id"], template_id);

    // One commit, one submit (plus the refused second), one release (plus the early one).
    let count = |api: &str| stack.sandbox.call_count(MP1, api).ok;
    assert_eq!(
        (
            count("wxa/commit"),
            count("wxa/submit_audit"),
            count("wxa/release")
        ),
        (1, 1, 1)
    );
    assert_eq!(
        stack.sandbox.call_count(MP1, "wxa/get_auditstatus").calls,
        0
    );
}

#[tokio::test]
async fn a_rejection_a_lost_push_and_an_undo() {
    let stack = stack_with(&[MP1]).await;
    let template_id = template(&stack).await;
    commit(&stack, MP1, template_id, "1.0.0").await;
    let (s, _) = stack
        .control(
            Method::POST,
            &format!("code/programs/{MP1}"),
            json!({ "outcome": "reject", "reason": "内容不符<br>", "screenshot": "m1|m2" }),
        )
        .await;
    assert_eq!(s, 200);
    submit(&stack, MP1).await;
    stack.sandbox.run_audits(true).await;
    let r = record(&stack, MP1).await;
    assert_eq!(r["audit"]["state"], "rejected", "{r}");
    assert_eq!(r["audit"]["reason"], "内容不符<br>");
    assert_eq!(r["audit"]["screenshots"], json!(["m1", "m2"]));

    // Approved next time, but the push is lost: the status poll finds it.
    stack
        .control(
            Method::POST,
            &format!("code/programs/{MP1}"),
            json!({ "outcome": "approve", "lose_push": true }),
        )
        .await;
    let (s, r) = submit(&stack, MP1).await;
    assert_eq!((s, r["audit"]["state"].as_str()), (200, Some("auditing")));
    stack.sandbox.run_audits(true).await;
    assert_eq!(record(&stack, MP1).await["audit"]["state"], "auditing");
    let (s, r) = stack.api(Method::GET, &code(MP1, "/audit"), None).await;
    assert_eq!(
        (s, r["audit"]["state"].as_str()),
        (200, Some("approved")),
        "{r}"
    );

    // A new version in review, withdrawn.
    commit(&stack, MP1, template_id, "1.1.0").await;
    submit(&stack, MP1).await;
    let (s, r) = stack.api(Method::DELETE, &code(MP1, "/audit"), None).await;
    assert_eq!(
        (s, r["audit"]["state"].as_str()),
        (200, Some("withdrawn")),
        "{r}"
    );
    assert_eq!(r["audit"]["user_version"], "1.1.0");
}

#[tokio::test]
async fn an_official_account_and_bad_input_never_reach_wechat() {
    let stack = stack_with(&[OA1, MP1]).await;
    let (s, r) = commit(&stack, OA1, 1, "1.0.0").await;
    assert_eq!(
        (s, r["error"].as_str()),
        (409, Some("not_a_mini_program")),
        "{r}"
    );
    let (s, r) = stack.api(Method::GET, &code(OA1, ""), None).await;
    assert_eq!((s, r["error"].as_str()), (409, Some("not_a_mini_program")));
    let (s, r) = stack
        .api(
            Method::POST,
            &code(MP1, ""),
            Some(json!({ "template_id": 1, "ext_json": "{}", "user_version": "1" })),
        )
        .await;
    assert_eq!(
        (s, r["error"].as_str()),
        (400, Some("invalid_field")),
        "{r}"
    );
    let (s, r) = stack
        .api(
            Method::POST,
            &code(MP1, "/audit"),
            Some(json!({ "nope": 1 })),
        )
        .await;
    assert_eq!(
        (s, r["error"].as_str()),
        (400, Some("invalid_field")),
        "{r}"
    );
    let (s, r) = stack
        .api(Method::GET, "/authorizers/wxmp00000000000099/code", None)
        .await;
    assert_eq!((s, r["error"].as_str()), (404, Some("unknown_authorizer")));
    let calls: Vec<_> = stack
        .sandbox
        .calls()
        .into_iter()
        .filter(|c| c.api.starts_with("wxa/"))
        .collect();
    assert!(calls.is_empty(), "{calls:?}");
}
