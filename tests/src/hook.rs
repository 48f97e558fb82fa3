//! The local reply hook: an HTTP server on 127.0.0.1 playing a provider's HTTPS hook (moto
//! cannot invoke Lambda without Docker). It checks the `x-wxopen-signature` of every call with
//! the hook secret, records the calls, and answers as its [`HookMode`] says; by default it echoes
//! a user's text message as a text reply.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::post;
use secrecy::SecretString;
use serde_json::{Value, json};
use wxopen::reply::hook::{EVENT_ID_HEADER, SIGNATURE_HEADER, verify_signature};

/// How the hook answers.
#[derive(Debug, Clone, PartialEq)]
pub enum HookMode {
    /// A text message gets `you said: <Content>`; anything else gets no reply.
    Echo,
    /// This JSON answer, whatever the message.
    Answer(Value),
    /// Sleeps, then answers no reply.
    Sleep(Duration),
    /// Sleeps, then answers as `Echo`.
    SlowEcho(Duration),
    /// Answers bytes that are no reply.
    Garbage,
}

/// One call the hook received.
#[derive(Debug, Clone)]
pub struct HookCall {
    pub event_id: String,
    pub detail: Value,
    pub signature_valid: bool,
}

struct HookState {
    secret: SecretString,
    mode: Mutex<HookMode>,
    calls: Mutex<Vec<HookCall>>,
}

/// A running hook.
pub struct HookServer {
    pub url: String,
    state: Arc<HookState>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for HookServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl HookServer {
    /// Serves `POST /hook` on 127.0.0.1 (`port` 0 picks a free one).
    pub async fn start(port: u16, secret: &str) -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
        let url = format!("http://{}/hook", listener.local_addr()?);
        let state = Arc::new(HookState {
            secret: secret.into(),
            mode: Mutex::new(HookMode::Echo),
            calls: Mutex::new(Vec::new()),
        });
        let app = Router::new()
            .route("/hook", post(answer))
            .with_state(state.clone());
        let task = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::error!(error = %e, "reply hook stopped");
            }
        });
        Ok(Self { url, state, task })
    }

    pub fn set_mode(&self, mode: HookMode) {
        if let Ok(mut m) = self.state.mode.lock() {
            *m = mode;
        }
    }

    /// The calls so far, forgetting them (a long run reads them as it goes).
    pub fn take_calls(&self) -> Vec<HookCall> {
        self.state
            .calls
            .lock()
            .map(|mut c| std::mem::take(&mut *c))
            .unwrap_or_default()
    }

    pub fn calls(&self) -> Vec<HookCall> {
        self.state
            .calls
            .lock()
            .map(|c| c.clone())
            .unwrap_or_default()
    }
}

fn echo(detail: &Value) -> axum::response::Response {
    match (
        detail["msg_type"].as_str(),
        detail["fields"]["Content"].as_str(),
    ) {
        (Some("text"), Some(content)) => {
            axum::Json(json!({"type": "text", "content": format!("you said: {content}")}))
                .into_response()
        }
        _ => StatusCode::NO_CONTENT.into_response(),
    }
}

async fn answer(
    State(state): State<Arc<HookState>>,
    headers: HeaderMap,
    body: Bytes,
) -> axum::response::Response {
    let text = String::from_utf8_lossy(&body).to_string();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    let signature_valid = verify_signature(
        &state.secret,
        &header(SIGNATURE_HEADER),
        &text,
        now,
        Duration::from_secs(300),
    );
    let detail: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    if let Ok(mut calls) = state.calls.lock() {
        calls.push(HookCall {
            event_id: header(EVENT_ID_HEADER),
            detail: detail.clone(),
            signature_valid,
        });
    }
    if !signature_valid {
        return (StatusCode::UNAUTHORIZED, "bad signature").into_response();
    }
    let mode = state
        .mode
        .lock()
        .map(|m| m.clone())
        .unwrap_or(HookMode::Echo);
    match mode {
        HookMode::Echo => echo(&detail),
        HookMode::SlowEcho(d) => {
            tokio::time::sleep(d).await;
            echo(&detail)
        }
        HookMode::Answer(v) => axum::Json(v).into_response(),
        HookMode::Sleep(d) => {
            tokio::time::sleep(d).await;
            StatusCode::NO_CONTENT.into_response()
        }
        HookMode::Garbage => (StatusCode::OK, "<html>not a reply</html>").into_response(),
    }
}
