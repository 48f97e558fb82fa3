//! A local stand-in for WeChat's Open Platform service, for end-to-end tests of wxopen and for
//! providers testing their own integrations.
//!
//! One HTTP server plays all three WeChat hosts (API, `mp.weixin.qq.com`, `open.weixin.qq.com`):
//! the WeChat APIs at WeChat's exact paths (`/cgi-bin/…`, `/wxa/…`, `/sns/…`; see the API table
//! in `apis.rs`, which also says how to add one) with WeChat's JSON or binary answers, plus a
//! control API under `/sandbox/…` that drives the other actors (`actors/`: merchants
//! authorizing, users scanning, messaging and signing in; `release.rs`: WeChat's release-test
//! robot; WeChat pushing tickets) and injects faults. State lives in memory; time is a virtual
//! clock (real time plus an offset the control API moves), used for every expiry.
//!
//! Layout: `http.rs` routes (WeChat paths, pages, control API); `apis.rs` is the API table;
//! `api.rs` the pipeline every API call goes through (token, quota, body, rule, call log);
//! `rules/` each API's rules by area; `state.rs` the world; `control.rs` the control API's
//! route table; `actors/` and `release.rs` the actors; `push.rs` outbound pushes; `pages.rs`
//! the browser pages (authorization page, QR code image); `code.rs` mini program code (drafts,
//! the template library, audits finishing after a delay and pushed as `weapp_audit_*` events,
//! releases; its control routes under `/sandbox/code/…`). `GET /sandbox/calls/counts` counts
//! calls per account per API (what a fleet test asserts per target).
//!
//! Robustness: no input makes a handler panic. WeChat APIs answer `{"errcode", "errmsg"}` (HTTP
//! 200, as WeChat does); the control API answers `{"error": "…"}` with a 4xx status.
//!
//! Pushes are encrypted with wxopen's own crypto (`wxopen::crypto::seal`). The `timestamp` query
//! parameter of a push is *real* time (it is transport freshness, checked against the receiver's
//! own clock), while `CreateTime` and every expiry inside the sandbox use sandbox time.

mod actors;
mod api;
mod apis;
mod code;
mod control;
mod http;
mod pages;
mod push;
mod qr_image;
mod release;
mod reply;
mod rules;
mod state;
mod util;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::{AES_KEY, APPID, APPSECRET, TOKEN};
use state::State;

pub use apis::{APIS, Api, ApiSpec, Method, Token, api_names};
pub use code::{AuditDelivery, DEV_APPID};

/// Per-API daily call limits (per acting account and sandbox day).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DailyQuota {
    /// Limit for APIs not named in `per_api`.
    pub default: u64,
    pub per_api: BTreeMap<String, u64>,
}

impl DailyQuota {
    pub fn limit(&self, api: &str) -> u64 {
        self.per_api.get(api).copied().unwrap_or(self.default)
    }
}

impl Default for DailyQuota {
    fn default() -> Self {
        Self {
            default: 100_000,
            per_api: BTreeMap::from([("api_component_token".to_string(), 2000)]),
        }
    }
}

/// The sandbox's configuration. `Default` uses the test component's credentials.
#[derive(Debug, Clone)]
pub struct SandboxConfig {
    pub component_appid: String,
    pub component_appsecret: String,
    pub token: String,
    pub encoding_aes_key: String,
    /// Authorization event URL (tickets and authorization pushes go here).
    pub component_callback_url: Option<String>,
    /// Message URL base: pushes for an account go to `{base}/{authorizer_appid}`.
    pub message_callback_base: Option<String>,
    pub token_ttl_secs: i64,
    /// How long the previous token keeps working after a new one is issued.
    pub token_overlap_secs: i64,
    pub pre_auth_code_ttl_secs: i64,
    pub auth_code_ttl_secs: i64,
    pub ticket_ttl_secs: i64,
    /// Lifetime of a mini program login code (`wx.login`; WeChat: 5 minutes).
    pub js_code_ttl_secs: i64,
    pub daily_quota: DailyQuota,
    pub open_account_bind_limit: usize,
    /// Per-attempt deadline of a push (WeChat: 5 s).
    pub push_deadline: Duration,
    pub push_attempts: u32,
    /// How long a "drop" fault holds the response.
    pub drop_delay: Duration,
    /// Sandbox seconds from `submit_audit` to the audit's result (and from a delay to its end).
    pub audit_delay_secs: i64,
    /// The platform's audits per (30-day sandbox) month, shared by all its mini programs
    /// (`queryquota`'s `limit`; 85085 when used up).
    pub audit_quota: i64,
    /// Speed-ups per month (`speedup_limit`).
    pub speedup_quota: i64,
    /// Deliver audit pushes by themselves (after each submit and clock move) instead of on
    /// `POST /sandbox/code/audits/run`.
    pub audit_auto_push: bool,
    /// The query parameter carrying the component token on the template-library APIs
    /// (`access_token` or `component_access_token`).
    pub template_token_param: &'static str,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        Self {
            component_appid: APPID.to_string(),
            component_appsecret: APPSECRET.to_string(),
            token: TOKEN.to_string(),
            encoding_aes_key: AES_KEY.to_string(),
            component_callback_url: None,
            message_callback_base: None,
            token_ttl_secs: 7200,
            token_overlap_secs: 300,
            pre_auth_code_ttl_secs: 600,
            auth_code_ttl_secs: 3600,
            ticket_ttl_secs: 43200,
            js_code_ttl_secs: 300,
            daily_quota: DailyQuota::default(),
            open_account_bind_limit: 100,
            push_deadline: Duration::from_secs(5),
            push_attempts: 3,
            drop_delay: Duration::from_secs(30),
            audit_delay_secs: 3600,
            audit_quota: 100,
            speedup_quota: 10,
            audit_auto_push: false,
            template_token_param: "access_token",
        }
    }
}

/// One call to a WeChat API, as the sandbox answered it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallRecord {
    /// The API's name ([`Api::name`]), e.g. `"api_component_token"`, `"open/create"`,
    /// `"wxa/commit"`.
    pub api: String,
    /// `"component"`, `"authorizer"`, `"none"` (no token sent) or `"unknown"`.
    pub token_kind: String,
    pub authorizer_appid: Option<String>,
    pub errcode: i64,
    /// Sandbox time.
    pub at: i64,
    /// The call carried its owner's newest token (not a superseded, revoked or unknown one).
    #[serde(default)]
    pub token_current: bool,
}

/// Calls of one API for one account (its appid, or the component's for component-token APIs).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallCount {
    pub calls: u64,
    /// Of which answered errcode 0.
    pub ok: u64,
}

/// A customer-service message sent through `message/custom/send`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomMessage {
    pub appid: String,
    pub touser: String,
    pub content: String,
    pub at: i64,
}

/// One delivery attempt of a push (component callback or message URL).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushRecord {
    /// Shared by all attempts of one push.
    pub push_id: u64,
    /// `component_verify_ticket`, `authorized`, … or `event:subscribe`, `text`, …
    pub kind: String,
    /// `"component"` or `"message"`.
    pub target: String,
    pub url: String,
    /// 1-based.
    pub attempt: u32,
    pub status: Option<u16>,
    pub body: String,
    pub error: Option<String>,
    /// This attempt counted as delivered.
    pub delivered: bool,
    pub elapsed_ms: u64,
    /// Sandbox time.
    pub at: i64,
    /// The XML before encryption (a test tool: shown for debugging).
    pub plaintext: String,
}

/// The outcome of a push after all attempts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivery {
    pub attempts: u32,
    /// HTTP status of the last attempt (none on timeout or connection error).
    pub status: Option<u16>,
    pub body: String,
    pub delivered: bool,
    pub error: Option<String>,
}

pub(crate) struct Shared {
    state: Mutex<State>,
    /// For pushes and redirects: no proxy, no redirects followed.
    http: reqwest::Client,
}

impl Shared {
    /// Never poisoned in practice (no handler panics); recover the data if it ever is.
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A running sandbox. Dropping it stops the server.
pub struct SandboxHandle {
    addr: SocketAddr,
    shared: Arc<Shared>,
    shutdown: watch::Sender<bool>,
}

impl SandboxHandle {
    /// `http://127.0.0.1:PORT` (no trailing slash): the base URL for all three WeChat hosts.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting connections; requests in flight finish.
    pub fn stop(&self) {
        let _ = self.shutdown.send(true);
    }

    /// Every WeChat API call so far, oldest first.
    pub fn calls(&self) -> Vec<CallRecord> {
        self.shared.lock().calls.iter().cloned().collect()
    }

    pub fn clear_calls(&self) {
        let mut st = self.shared.lock();
        st.calls.clear();
        st.call_counts.clear();
    }

    /// Calls per account per API (never trimmed, unlike the call log): account → API name →
    /// count. Template-library calls count under the component's appid.
    pub fn call_counts(&self) -> BTreeMap<String, BTreeMap<String, CallCount>> {
        self.shared.lock().call_counts.clone()
    }

    /// Calls of `api` (e.g. `"wxa/commit"`) for `appid` so far.
    pub fn call_count(&self, appid: &str, api: &str) -> CallCount {
        self.shared
            .lock()
            .call_counts
            .get(appid)
            .and_then(|m| m.get(api))
            .copied()
            .unwrap_or_default()
    }

    /// Settles due audits (`all`: every audit in review finishes now) and delivers their pushes.
    pub async fn run_audits(&self, all: bool) -> Vec<AuditDelivery> {
        code::run_audits(&self.shared, all).await
    }

    pub fn custom_messages(&self) -> Vec<CustomMessage> {
        self.shared.lock().custom_messages.iter().cloned().collect()
    }

    /// Every push attempt so far, oldest first.
    pub fn pushes(&self) -> Vec<PushRecord> {
        self.shared.lock().pushes.iter().cloned().collect()
    }

    /// Sets both callback URLs (`None` clears one).
    pub fn set_callbacks(&self, component_url: Option<String>, message_base: Option<String>) {
        let mut st = self.shared.lock();
        st.config.component_callback_url = component_url;
        st.config.message_callback_base = message_base;
    }

    /// Sandbox time (unix seconds).
    pub fn now(&self) -> i64 {
        self.shared.lock().now()
    }

    /// Moves the virtual clock; returns the new sandbox time.
    pub fn advance_clock(&self, seconds: i64) -> i64 {
        let mut st = self.shared.lock();
        st.clock_offset = st.clock_offset.saturating_add(seconds);
        st.now()
    }

    /// The summary `GET /sandbox/state` answers (merchants, authorizations, open accounts,
    /// current tokens, counts).
    pub fn state(&self) -> serde_json::Value {
        self.shared.lock().summary()
    }

    /// A copy of the current configuration.
    pub fn config(&self) -> SandboxConfig {
        self.shared.lock().config.clone()
    }
}

impl Drop for SandboxHandle {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Starts a sandbox on `127.0.0.1` with an ephemeral port.
pub async fn start(config: SandboxConfig) -> std::io::Result<SandboxHandle> {
    start_on(config, SocketAddr::from(([127, 0, 0, 1], 0))).await
}

/// Starts a sandbox on the given address (port 0 picks a free one).
pub async fn start_on(config: SandboxConfig, addr: SocketAddr) -> std::io::Result<SandboxHandle> {
    let invalid = |msg: String| std::io::Error::new(std::io::ErrorKind::InvalidInput, msg);
    wxopen::crypto::AesKey::from_encoding_aes_key(&config.encoding_aes_key)
        .map_err(|e| invalid(format!("encoding_aes_key: {e}")))?;
    let http = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| std::io::Error::other(format!("HTTP client: {e}")))?;
    let shared = Arc::new(Shared {
        state: Mutex::new(State::new(config)),
        http,
    });
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let addr = listener.local_addr()?;
    let (shutdown, mut rx) = watch::channel(false);
    let app = http::router(shared.clone());
    tokio::spawn(async move {
        let signal = async move {
            while !*rx.borrow_and_update() {
                if rx.changed().await.is_err() {
                    break;
                }
            }
        };
        if let Err(e) = axum::serve(listener, app)
            .with_graceful_shutdown(signal)
            .await
        {
            tracing::warn!(error = %e, "wechat sandbox server stopped");
        }
    });
    Ok(SandboxHandle {
        addr,
        shared,
        shutdown,
    })
}
