//! Runs the demo story with every log captured at TRACE (through the same logging setup the
//! functions use) and asserts that no token, ticket, refresh token, auth code, appsecret,
//! EncodingAESKey or decrypted body appears anywhere in it.

use wxopen_tests::credential_values;
use wxopen_tests::story::{run_story, start};

/// Every secret value the story produced: the credentials (table, sandbox, pushes) and, for
/// logs, the whole decrypted bodies too.
async fn secrets(local: &wxopen_tests::story::Local) -> Vec<String> {
    let mut out = credential_values(&local.store, &local.sandbox).await;
    for push in local.sandbox.pushes() {
        // The whole decrypted body, and each secret-looking CDATA value in it.
        out.push(push.plaintext.clone());
        for part in push.plaintext.split("<Content><![CDATA[").skip(1) {
            if let Some(v) = part.split("]]>").next()
                && v.contains("@@@")
            {
                out.push(v.to_string());
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
