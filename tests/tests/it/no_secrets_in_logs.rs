//! Runs the demo story with every log captured at TRACE (through the same logging setup the
//! functions use) and asserts that no token, ticket, refresh token, auth code, appsecret,
//! EncodingAESKey or decrypted body appears anywhere in it.

use aws_sdk_dynamodb::types::AttributeValue;
use wxopen_tests::story::{run_story, start};
use wxopen_tests::{AES_KEY, APPSECRET, TOKEN};

/// Every secret value the story produced: from the table's items and the sandbox's records.
async fn secrets(local: &wxopen_tests::story::Local) -> Vec<String> {
    let mut out = vec![
        APPSECRET.to_string(),
        TOKEN.to_string(),
        AES_KEY.to_string(),
    ];
    let scan = local
        .store
        .client()
        .scan()
        .table_name(local.store.table())
        .send()
        .await
        .unwrap();
    for item in scan.items.unwrap_or_default() {
        for attr in [
            "access_token",
            "refresh_token",
            "ticket",
            "authorization_code",
        ] {
            if let Some(AttributeValue::S(v)) = item.get(attr) {
                out.push(v.clone());
            }
        }
    }
    for push in local.sandbox.pushes() {
        // The whole decrypted body, and each CDATA value in it that is secret.
        out.push(push.plaintext.clone());
        for tag in ["ComponentVerifyTicket", "AuthorizationCode", "Content"] {
            for part in push.plaintext.split(&format!("<{tag}><![CDATA[")).skip(1) {
                if let Some(v) = part.split("]]>").next()
                    && v.contains("@@@")
                {
                    out.push(v.to_string());
                }
            }
        }
    }
    let state = local.sandbox.state().to_string();
    for prefix in [
        "ticket@@@",
        "componentaccesstoken@@@",
        "authorizeraccesstoken@@@",
        "refreshtoken@@@",
        "queryauthcode@@@",
        "preauthcode@@@",
    ] {
        for part in state.split(prefix).skip(1) {
            let v: String = part
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
                .collect();
            if !v.is_empty() {
                out.push(format!("{prefix}{v}"));
            }
        }
    }
    out.retain(|s| s.len() >= 8);
    out.sort();
    out.dedup();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_story_logs_no_secret_at_trace() {
    let capture = wxopen_tests::LogCapture::global();
    let local = start(0).await.expect("local stack");
    let results = run_story(&local, false).await;
    assert!(results.iter().all(|r| r.1), "the story ran: {results:?}");
    let secrets = secrets(&local).await;
    assert!(
        secrets.len() > 10,
        "found the story's secrets to look for: {}",
        secrets.len()
    );
    let logs = capture.text();
    assert!(
        logs.contains("push accepted") && logs.contains("token refreshed"),
        "logs were captured at TRACE"
    );
    assert!(logs.lines().count() > 20);
    for secret in &secrets {
        assert!(
            !logs.contains(secret.as_str()),
            "a secret appears in the logs: {}…",
            &secret[..8.min(secret.len())]
        );
    }
    local.gateway.stop();
    local.sandbox.stop();
}
