//! The provider's website in tests: the allowlisted `return_to` every sign-in flow sends the
//! browser back to. It records each visit (path and query, when) so a test can await the
//! browser's arrival with its `login_code`.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::Uri;
use axum::response::Html;
use tokio::sync::Notify;

/// One visit: the path with its query, and when it arrived.
#[derive(Debug, Clone)]
pub struct Visit {
    pub path_and_query: String,
    pub at: Instant,
}

impl Visit {
    /// A query parameter of the visit.
    pub fn param(&self, name: &str) -> Option<String> {
        let url = url::Url::parse(&format!("http://site{}", self.path_and_query)).ok()?;
        url.query_pairs()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    }
}

#[derive(Default)]
struct Inner {
    visits: Mutex<Vec<Visit>>,
    arrived: Notify,
}

pub struct ProviderSite {
    /// `http://127.0.0.1:<port>`: the origin to allowlist.
    pub base_url: String,
    inner: Arc<Inner>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for ProviderSite {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn visit(State(inner): State<Arc<Inner>>, uri: Uri) -> Html<&'static str> {
    let path_and_query = uri
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_default();
    if let Ok(mut v) = inner.visits.lock() {
        v.push(Visit {
            path_and_query,
            at: Instant::now(),
        });
    }
    inner.arrived.notify_waiters();
    Html(
        "<!doctype html><html lang=\"zh-CN\"><head><meta charset=\"utf-8\"><title>provider site</title></head><body><h1>已返回服务商网站 · Back on the provider's site</h1></body></html>",
    )
}

impl ProviderSite {
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
            .await
            .expect("site binds");
        let base_url = format!("http://{}", listener.local_addr().expect("address"));
        let inner = Arc::new(Inner::default());
        let router = axum::Router::new()
            .fallback(visit)
            .with_state(inner.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Self {
            base_url,
            inner,
            task,
        }
    }

    pub fn visits(&self) -> Vec<Visit> {
        self.inner
            .visits
            .lock()
            .map(|v| v.clone())
            .unwrap_or_default()
    }

    /// Waits until a visit whose path starts with `path` has arrived (or `timeout` passes).
    pub async fn wait_for(&self, path: &str, timeout: Duration) -> Option<Visit> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.inner.arrived.notified();
            if let Some(v) = self
                .visits()
                .into_iter()
                .find(|v| v.path_and_query.starts_with(path))
            {
                return Some(v);
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return None;
            }
        }
    }
}
