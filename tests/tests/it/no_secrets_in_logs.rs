//! Runs the demo story with every log captured at TRACE (through the same logging setup the
//! functions use) and asserts that no token, ticket, refresh token, auth code, appsecret,
//! EncodingAESKey or decrypted body appears anywhere in it.

use std::io::Write;
use std::sync::{Arc, Mutex};

use lambda_http::tracing::subscriber::fmt::MakeWriter;
use wxopen_tests::credential_values;
use wxopen_tests::story::{run_story, start};

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Ok(mut v) = self.0.lock() {
            v.extend_from_slice(buf);
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Capture {
    type Writer = Capture;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

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
    let capture = Capture::default();
    wxopen::logging::init_with_writer("trace", true, capture.clone());
    let local = start(0).await.expect("local stack");
    let results = run_story(&local, false).await;
    assert!(results.iter().all(|r| r.1), "the story ran: {results:?}");
    let secrets = secrets(&local).await;
    assert!(
        secrets.len() > 10,
        "found the story's secrets to look for: {}",
        secrets.len()
    );
    let logs = String::from_utf8_lossy(&capture.0.lock().unwrap()).into_owned();
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
