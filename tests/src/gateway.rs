//! The local gateway: serves the template's HTTP routes on 127.0.0.1 by calling the same
//! function handlers API Gateway would invoke, so `curl` works against the whole system.
//!
//! [`ROUTES`] must match template.yaml (a test checks both directions).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodFilter, on};
use lambda_http::{Body, Request, RequestExt};
use wxopen::app::Deps;
use wxopen::authorization::LinkHosts;
use wxopen::clock::SystemClock;
use wxopen::config::{Config, ConfigError};
use wxopen::login::LoginSettings;
use wxopen::runtime::{FromRuntime, Runtime};
use wxopen::secrets::CredentialsProvider;
use wxopen::store::DynamoStore;
use wxopen::wechat::WeChatClient;

/// (method, path as in template.yaml, function package)
pub const ROUTES: &[(&str, &str, &str)] = &[
    ("POST", "/wechat/component", "component-events"),
    ("POST", "/wechat/messages/{appid}", "message-events"),
    ("GET", "/authorize", "authorize-link"),
    ("POST", "/authorize/links", "authorize-link"),
    ("GET", "/authorize/links/{id}", "authorize-link"),
    ("GET", "/authorize/callback", "authorize-callback"),
    ("GET", "/authorizers", "authorizers"),
    ("GET", "/authorizers/{appid}", "authorizers"),
    ("GET", "/component/access-token", "access-token"),
    ("GET", "/authorizers/{appid}/access-token", "access-token"),
    ("POST", "/authorizers/{appid}/open-account", "open-account"),
    ("PUT", "/authorizers/{appid}/open-account", "open-account"),
    (
        "DELETE",
        "/authorizers/{appid}/open-account",
        "open-account",
    ),
    ("GET", "/authorizers/{appid}/open-account", "open-account"),
    ("POST", "/login/sessions", "login-session-create"),
    ("GET", "/login/sessions/{id}", "login-session-status"),
    (
        "ANY",
        "/authorizers/{appid}/wechat/{path+}",
        "wechat-gateway",
    ),
    ("ANY", "/component/wechat/{path+}", "wechat-gateway"),
    ("POST", "/component/clear-quota", "wechat-gateway"),
    ("POST", "/authorizers/{appid}/clear-quota", "wechat-gateway"),
    ("GET", "/authorizers/{appid}/quota", "wechat-gateway"),
    ("GET", "/login/{id}", "sign-in-pages"),
    ("GET", "/login/{id}/status", "sign-in-pages"),
    ("GET", "/oauth/{appid}/authorize", "sign-in-pages"),
    ("GET", "/oauth/{appid}/callback", "sign-in-pages"),
    ("POST", "/login/codes/{code}", "identities"),
    ("GET", "/identities/{id}", "identities"),
    ("GET", "/identities", "identities"),
    ("PUT", "/identities/{id}/user", "identities"),
    ("DELETE", "/identities/{id}/user", "identities"),
    (
        "POST",
        "/authorizers/{appid}/miniprogram/sessions",
        "miniprogram-sessions",
    ),
    // Fast registration (issue 19).
    ("POST", "/fast-registrations", "fast-registrations"),
    ("GET", "/fast-registrations/{id}", "fast-registrations"),
    (
        "GET",
        "/fast-registrations/{id}/callback",
        "fast-registrations",
    ),
    ("GET", "/templates", "templates"),
    ("POST", "/templates", "templates"),
    ("GET", "/templates/drafts", "templates"),
    ("DELETE", "/templates/{id}", "templates"),
    ("POST", "/authorizers/{appid}/code", "miniprogram-code"),
    ("GET", "/authorizers/{appid}/code", "miniprogram-code"),
    (
        "GET",
        "/authorizers/{appid}/code/qrcode",
        "miniprogram-code",
    ),
    (
        "GET",
        "/authorizers/{appid}/code/categories",
        "miniprogram-code",
    ),
    ("GET", "/authorizers/{appid}/code/pages", "miniprogram-code"),
    ("GET", "/authorizers/{appid}/code/quota", "miniprogram-code"),
    (
        "POST",
        "/authorizers/{appid}/code/audit",
        "miniprogram-code",
    ),
    ("GET", "/authorizers/{appid}/code/audit", "miniprogram-code"),
    (
        "DELETE",
        "/authorizers/{appid}/code/audit",
        "miniprogram-code",
    ),
    (
        "POST",
        "/authorizers/{appid}/code/audit/speedup",
        "miniprogram-code",
    ),
    (
        "POST",
        "/authorizers/{appid}/code/release",
        "miniprogram-code",
    ),
    (
        "POST",
        "/authorizers/{appid}/code/revert",
        "miniprogram-code",
    ),
    ("POST", "/authorizers/{appid}/code/gray", "miniprogram-code"),
    // The operator's view (`wxopen status`), served by the read-only authorizers function.
    ("GET", "/status", "status"),
    ("POST", "/releases", "releases"),
    ("GET", "/releases/{id}", "releases"),
    ("POST", "/releases/{id}/cancel", "releases"),
];

/// Every function's state, built by the function's own constructor (`App::from_runtime`, as its
/// `main.rs` does), sharing one store, one credentials provider and one WeChat client.
pub struct Apps<C> {
    pub component_events: component_events::App<DynamoStore, Arc<C>, SystemClock>,
    pub message_events: message_events::App<DynamoStore, Arc<C>, SystemClock>,
    pub authorize_link: authorize_link::App<DynamoStore, Arc<C>, SystemClock>,
    pub authorize_callback: authorize_callback::App<DynamoStore, Arc<C>, SystemClock>,
    pub authorizers: authorizers::App<DynamoStore>,
    pub status: status::App<DynamoStore>,
    pub access_token: access_token::App<DynamoStore, Arc<C>, SystemClock>,
    pub open_account: open_account::App<DynamoStore, Arc<C>, SystemClock>,
    pub login_create: login_session_create::App<DynamoStore, Arc<C>, SystemClock>,
    pub login_status: login_session_status::App<DynamoStore, SystemClock>,
    pub wechat_gateway: wechat_gateway::App<DynamoStore, Arc<C>, SystemClock>,
    pub sign_in_pages: sign_in_pages::App<DynamoStore, Arc<C>, SystemClock>,
    pub identities: identities::App<DynamoStore, SystemClock>,
    pub miniprogram_sessions: miniprogram_sessions::App<DynamoStore, Arc<C>, SystemClock>,
    pub fast_registrations: fast_registrations::App<DynamoStore, Arc<C>, SystemClock>,
    pub templates: templates::App<DynamoStore, Arc<C>, SystemClock>,
    pub miniprogram_code: miniprogram_code::App<DynamoStore, Arc<C>, SystemClock>,
    pub releases: releases::App<DynamoStore, wxopen::queue::SqsQueue, SystemClock>,
    /// The shared dependencies, for tests that drive the domain directly.
    pub deps: Deps<DynamoStore, Arc<C>, SystemClock>,
}

/// The local stack's `return_to` allow-list (override with `AUTHORIZE_RETURN_TO_ALLOWLIST`).
pub const LOCAL_RETURN_TO_ALLOWLIST: &str = "https://provider.example/onboarded";

/// What the gateway needs to know that API Gateway and the template would otherwise supply.
#[derive(Debug, Clone)]
pub struct GatewayConfig {
    pub push_window: Duration,
    pub hosts: LinkHosts,
    /// The gateway's own URL (for the authorization redirect).
    pub public_base: Option<String>,
    pub login: LoginSettings,
    /// Origins sign-in may return a browser to (`SIGN_IN_RETURN_TO_ORIGINS`).
    pub sign_in_origins: Vec<String>,
    /// The AWS configuration the functions build their clients from (moto).
    pub aws: aws_config::SdkConfig,
    /// Events out: the bus the functions publish to (`EVENT_BUS_NAME`).
    pub event_bus_name: String,
    /// The reply hook URL (`REPLY_HOOK_URL`; the secret is in the credentials).
    pub reply_hook_url: Option<String>,
    /// `REPLY_HOOK_BUDGET_MS`.
    pub reply_hook_budget: Duration,
    /// Fleet releases: the work queue (`RELEASE_QUEUE_URL`).
    pub release_queue_url: Option<String>,
}

impl GatewayConfig {
    /// The functions' configuration, as template.yaml's environment would give it.
    pub fn to_config(&self) -> Result<Config, ConfigError> {
        let mut env: HashMap<&str, String> = HashMap::from([
            ("TABLE_NAME", "local".to_string()),
            ("SECRET_ID", "local".to_string()),
            (
                "PUSH_TIMESTAMP_WINDOW_SECONDS",
                self.push_window.as_secs().to_string(),
            ),
            ("WECHAT_MP_BASE", self.hosts.mp_base.clone()),
            ("WECHAT_OPEN_BASE", self.hosts.open_base.clone()),
            (
                "LOGIN_QR_EXPIRE_SECONDS",
                self.login.qr_expire_secs.to_string(),
            ),
            ("LOGIN_REPLY_TEXT", self.login.reply_text.clone()),
            (
                "AUTHORIZE_RETURN_TO_ALLOWLIST",
                std::env::var("AUTHORIZE_RETURN_TO_ALLOWLIST")
                    .unwrap_or_else(|_| LOCAL_RETURN_TO_ALLOWLIST.to_string()),
            ),
        ]);
        if let Some(base) = &self.public_base {
            env.insert("PUBLIC_BASE_URL", base.clone());
        }
        env.insert("SIGN_IN_RETURN_TO_ORIGINS", self.sign_in_origins.join(","));
        env.insert("EVENT_BUS_NAME", self.event_bus_name.clone());
        env.insert(
            "REPLY_HOOK_BUDGET_MS",
            self.reply_hook_budget.as_millis().to_string(),
        );
        if let Some(url) = &self.reply_hook_url {
            env.insert("REPLY_HOOK_URL", url.clone());
        }
        if let Some(url) = &self.release_queue_url {
            env.insert("RELEASE_QUEUE_URL", url.clone());
        }
        // One WeChat web host serves the authorization page and the QR images, as in production.
        Config::from_lookup(|k| env.get(k).cloned())
    }
}

impl<C: CredentialsProvider> Apps<C> {
    pub fn new(
        store: DynamoStore,
        credentials: Arc<C>,
        wechat: WeChatClient,
        config: GatewayConfig,
    ) -> Self {
        let aws = config.aws.clone();
        let config = match config.to_config() {
            Ok(c) => c,
            Err(e) => panic!("the local gateway's configuration is invalid: {e}"),
        };
        let rt = || Runtime {
            config: config.clone(),
            store: store.clone(),
            credentials: credentials.clone(),
            wechat: wechat.clone(),
            aws: aws.clone(),
            // Metric lines stay in memory (the local stack prints no EMF).
            metrics: wxopen::events::metrics::MetricSink::memory(),
        };
        Self {
            component_events: FromRuntime::from_runtime(rt()),
            message_events: FromRuntime::from_runtime(rt()),
            authorize_link: FromRuntime::from_runtime(rt()),
            authorize_callback: FromRuntime::from_runtime(rt()),
            authorizers: FromRuntime::from_runtime(rt()),
            status: FromRuntime::from_runtime(rt()),
            access_token: FromRuntime::from_runtime(rt()),
            open_account: FromRuntime::from_runtime(rt()),
            login_create: FromRuntime::from_runtime(rt()),
            login_status: FromRuntime::from_runtime(rt()),
            wechat_gateway: FromRuntime::from_runtime(rt()),
            sign_in_pages: FromRuntime::from_runtime(rt()),
            identities: FromRuntime::from_runtime(rt()),
            miniprogram_sessions: FromRuntime::from_runtime(rt()),
            fast_registrations: FromRuntime::from_runtime(rt()),
            templates: FromRuntime::from_runtime(rt()),
            miniprogram_code: FromRuntime::from_runtime(rt()),
            releases: FromRuntime::from_runtime(rt()),
            deps: rt().into_deps(),
        }
    }

    async fn dispatch(&self, function: &str, req: Request) -> lambda_http::Response<Body> {
        let result = match function {
            "component-events" => component_events::handle(&self.component_events, req).await,
            "message-events" => message_events::handle(&self.message_events, req).await,
            "authorize-link" => authorize_link::handle(&self.authorize_link, req).await,
            "authorize-callback" => authorize_callback::handle(&self.authorize_callback, req).await,
            "authorizers" => authorizers::handle(&self.authorizers, req).await,
            "status" => status::handle(&self.status, req).await,
            "access-token" => access_token::handle(&self.access_token, req).await,
            "open-account" => open_account::handle(&self.open_account, req).await,
            "login-session-create" => login_session_create::handle(&self.login_create, req).await,
            "login-session-status" => login_session_status::handle(&self.login_status, req).await,
            // The function's `handle` prints one EMF line per call for CloudWatch; locally the
            // line goes to stderr only when WXOPEN_LOCAL_EMF is set (the demo's output stays
            // readable).
            "wechat-gateway" => {
                let (resp, record) = wechat_gateway::process(&self.wechat_gateway, &req).await;
                if std::env::var_os("WXOPEN_LOCAL_EMF").is_some() {
                    use wxopen::clock::Clock;
                    eprintln!(
                        "{}",
                        record.emf_line("wechat-gateway", SystemClock.now().saturating_mul(1000))
                    );
                }
                Ok(resp)
            }
            "sign-in-pages" => sign_in_pages::handle(&self.sign_in_pages, req).await,
            "identities" => identities::handle(&self.identities, req).await,
            "miniprogram-sessions" => {
                miniprogram_sessions::handle(&self.miniprogram_sessions, req).await
            }
            "fast-registrations" => fast_registrations::handle(&self.fast_registrations, req).await,
            "templates" => templates::handle(&self.templates, req).await,
            "miniprogram-code" => miniprogram_code::handle(&self.miniprogram_code, req).await,
            "releases" => releases::handle(&self.releases, req).await,
            _ => return not_found(),
        };
        // Lambda would turn an Err into a 500 from API Gateway; do the same.
        result.unwrap_or_else(|e| {
            tracing::error!(error = %e, function, "handler returned an error");
            let mut r =
                lambda_http::Response::new(Body::from(r#"{"message":"Internal Server Error"}"#));
            *r.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
            r
        })
    }
}

fn not_found() -> lambda_http::Response<Body> {
    let mut r = lambda_http::Response::new(Body::from(r#"{"message":"Not Found"}"#));
    *r.status_mut() = StatusCode::NOT_FOUND;
    r
}

/// Converts what axum received into what API Gateway (HTTP API, payload v2) hands a function:
/// the raw path (`rawPath`, still percent-encoded, `..` kept), the raw query (`rawQueryString`)
/// and its parsed pairs, and the body as text or, for binary content, as the bytes lambda_http
/// decodes from `isBase64Encoded` ([`request_body`]).
fn to_lambda(
    method: Method,
    uri: &Uri,
    headers: HeaderMap,
    query: Option<String>,
    path: HashMap<String, String>,
    body: Bytes,
) -> Request {
    let body = request_body(&headers, body);
    let target = uri.path_and_query().map_or(uri.path(), |pq| pq.as_str());
    let mut req = lambda_http::http::Request::builder()
        .method(method)
        .uri(target)
        .body(body)
        .unwrap_or_default();
    *req.headers_mut() = headers;
    let mut params: HashMap<String, Vec<String>> = HashMap::new();
    for (k, v) in url::form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        params
            .entry(k.into_owned())
            .or_default()
            .push(v.into_owned());
    }
    req.with_raw_http_path(uri.path())
        .with_query_string_parameters(params)
        .with_path_parameters(path)
}

/// The body as API Gateway passes it: text for textual content types (`text/*`, JSON, XML,
/// JavaScript, form posts) that are UTF-8, base64 (`Body::Binary` once lambda_http has decoded
/// it) for anything else: multipart uploads, images, octet streams.
pub fn request_body(headers: &HeaderMap, body: Bytes) -> Body {
    if body.is_empty() {
        return Body::Empty;
    }
    let content_type = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    let essence = content_type.split(';').next().unwrap_or("").trim();
    let textual = essence.is_empty()
        || essence.starts_with("text/")
        || essence.ends_with("/json")
        || essence.ends_with("+json")
        || essence.ends_with("/xml")
        || essence.ends_with("+xml")
        || essence == "application/javascript"
        || essence == "application/x-www-form-urlencoded";
    if !textual {
        return Body::Binary(body.to_vec());
    }
    match String::from_utf8(body.to_vec()) {
        Ok(text) => Body::Text(text),
        Err(e) => Body::Binary(e.into_bytes()),
    }
}

fn to_axum(resp: lambda_http::Response<Body>) -> Response {
    let (parts, body) = resp.into_parts();
    let bytes: Vec<u8> = match body {
        Body::Text(t) => t.into_bytes(),
        Body::Binary(b) => b,
        _ => Vec::new(),
    };
    let mut out = (parts.status, bytes).into_response();
    *out.headers_mut() = parts.headers;
    out
}

/// Largest request body API Gateway (HTTP API) accepts.
pub const API_GATEWAY_PAYLOAD_LIMIT: usize = 10 * 1024 * 1024;

/// How long each handler call took (the function's own time: no network, no axum), by
/// function; the soak reads its callback latency from here. Bounded: the oldest half is dropped
/// when [`HandlerTimings::CAP`] samples are held.
#[derive(Debug, Clone, Default)]
pub struct HandlerTimings(Arc<std::sync::Mutex<Vec<(&'static str, u32)>>>);

impl HandlerTimings {
    pub const CAP: usize = 1 << 20;

    fn record(&self, function: &'static str, elapsed: Duration) {
        if let Ok(mut v) = self.0.lock() {
            if v.len() >= Self::CAP {
                v.drain(..Self::CAP / 2);
            }
            v.push((
                function,
                u32::try_from(elapsed.as_micros()).unwrap_or(u32::MAX),
            ));
        }
    }

    /// The samples of `function`, in microseconds.
    pub fn micros(&self, function: &str) -> Vec<u32> {
        self.0
            .lock()
            .map(|v| {
                v.iter()
                    .filter(|(f, _)| *f == function)
                    .map(|(_, m)| *m)
                    .collect()
            })
            .unwrap_or_default()
    }

    pub fn clear(&self) {
        if let Ok(mut v) = self.0.lock() {
            v.clear();
        }
    }
}

/// Handler invocations to cut short, as a Lambda timeout would: a planned abort for a function
/// lets its next invocation run until it has waited `after` times (each a store, WeChat, hook
/// or bus call in flight), then drops it there, mid-way, and answers what API Gateway answers
/// for a timed-out function (503). The soak plans them; nothing else does.
///
/// One request (the same body: WeChat resends a push byte for byte) is cut short at most once:
/// a timeout is one invocation's fate, not an outage, and WeChat's next attempt finds a
/// function that runs. Without this rule the planned aborts, taken by whatever invocations come
/// first, could take all of one push's attempts and WeChat would give the push up, which no
/// deployment can survive.
#[derive(Debug, Clone, Default)]
pub struct HandlerAborts(Arc<std::sync::Mutex<Aborts>>);

/// Planned aborts (function, waits before the cut), how many happened, and the requests cut
/// short (hashes of their bodies).
type Aborts = (
    Vec<(&'static str, u32)>,
    HashMap<String, u64>,
    std::collections::HashSet<u64>,
);

impl HandlerAborts {
    /// The next invocation of `function` is dropped at its `after`-th wait (at least the first).
    pub fn plan(&self, function: &'static str, after: u32) {
        if let Ok(mut g) = self.0.lock() {
            g.0.push((function, after.max(1)));
        }
    }

    /// Forgets the planned aborts that have not happened.
    pub fn clear(&self) {
        if let Ok(mut g) = self.0.lock() {
            g.0.clear();
        }
    }

    /// Invocations of `function` dropped so far.
    pub fn fired(&self, function: &str) -> u64 {
        self.0
            .lock()
            .map(|g| g.1.get(function).copied().unwrap_or_default())
            .unwrap_or_default()
    }

    /// The planned abort for this invocation of `function`, if any: none for a request already
    /// cut short once.
    fn take(&self, function: &str, body: &[u8]) -> Option<u32> {
        use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
        let mut g = self.0.lock().ok()?;
        let i = g.0.iter().position(|(f, _)| *f == function)?;
        let hash = BuildHasherDefault::<DefaultHasher>::default().hash_one(body);
        if !g.2.insert(hash) {
            return None;
        }
        Some(g.0.remove(i).1)
    }

    fn count(&self, function: &str) {
        if let Ok(mut g) = self.0.lock() {
            *g.1.entry(function.to_string()).or_default() += 1;
        }
    }
}

/// `fut` polled until it completes or has been pending `after` times; `None` when cut short
/// (the future is dropped where it waited).
async fn cut_short<F: std::future::Future>(after: u32, fut: F) -> Option<F::Output> {
    let mut fut = std::pin::pin!(fut);
    let mut waits = 0u32;
    std::future::poll_fn(|cx| match fut.as_mut().poll(cx) {
        std::task::Poll::Ready(v) => std::task::Poll::Ready(Some(v)),
        std::task::Poll::Pending => {
            waits += 1;
            if waits >= after {
                std::task::Poll::Ready(None)
            } else {
                std::task::Poll::Pending
            }
        }
    })
    .await
}

/// What API Gateway answers when the function timed out.
fn timed_out() -> lambda_http::Response<Body> {
    let mut r = lambda_http::Response::new(Body::from(r#"{"message":"Service Unavailable"}"#));
    *r.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
    r
}

/// A running gateway.
pub struct Gateway {
    pub base_url: String,
    /// Every handler call's duration.
    pub timings: HandlerTimings,
    /// Invocations to cut short (a Lambda timeout).
    pub aborts: HandlerAborts,
    task: tokio::task::JoinHandle<()>,
}

impl Gateway {
    pub fn stop(&self) {
        self.task.abort();
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Serves every route of [`ROUTES`] on 127.0.0.1 (`port` 0 picks a free one); `make` builds the
/// apps once the gateway's own URL is known.
pub async fn start<C: CredentialsProvider + 'static>(
    port: u16,
    make: impl FnOnce(&str) -> Apps<C>,
) -> std::io::Result<Gateway> {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    let base_url = format!("http://{}", listener.local_addr()?);
    let apps = Arc::new(make(&base_url));
    let timings = HandlerTimings::default();
    let aborts = HandlerAborts::default();
    let mut router = axum::Router::new();
    for &(method, path, function) in ROUTES {
        let timings = timings.clone();
        let aborts = aborts.clone();
        let handler = move |State(apps): State<Arc<Apps<C>>>,
                            method: Method,
                            uri: Uri,
                            headers: HeaderMap,
                            Path(path): Path<HashMap<String, String>>,
                            RawQuery(query): RawQuery,
                            body: Bytes| {
            let (timings, aborts) = (timings.clone(), aborts.clone());
            async move {
                let abort = aborts.take(function, &body);
                let req = to_lambda(method, &uri, headers, query, path, body);
                if let Some(after) = abort {
                    let resp = cut_short(after, apps.dispatch(function, req)).await;
                    return to_axum(resp.unwrap_or_else(|| {
                        aborts.count(function);
                        timed_out()
                    }));
                }
                let started = std::time::Instant::now();
                let resp = apps.dispatch(function, req).await;
                timings.record(function, started.elapsed());
                to_axum(resp)
            }
        };
        let filter = match method {
            "GET" => MethodFilter::GET,
            "POST" => MethodFilter::POST,
            "PUT" => MethodFilter::PUT,
            "DELETE" => MethodFilter::DELETE,
            "ANY" => MethodFilter::GET
                .or(MethodFilter::POST)
                .or(MethodFilter::PUT)
                .or(MethodFilter::DELETE)
                .or(MethodFilter::PATCH)
                .or(MethodFilter::HEAD)
                .or(MethodFilter::OPTIONS),
            _ => continue,
        };
        // The template's greedy `{path+}` is axum's wildcard; its parameter keeps the name.
        let path = path.replace("{path+}", "{*path}");
        router = router.route(&path, on(filter, handler));
    }
    // Like API Gateway: a method or path the template does not route never reaches a function.
    let router = router
        .method_not_allowed_fallback(|| async { to_axum(not_found()) })
        .fallback(|| async { to_axum(not_found()) })
        // API Gateway (HTTP API) takes payloads up to 10 MB; the function applies its own limits.
        .layer(axum::extract::DefaultBodyLimit::max(
            API_GATEWAY_PAYLOAD_LIMIT,
        ))
        .with_state(apps);
    let task = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, router).await {
            tracing::error!(error = %e, "gateway stopped");
        }
    });
    Ok(Gateway {
        base_url,
        timings,
        aborts,
        task,
    })
}
