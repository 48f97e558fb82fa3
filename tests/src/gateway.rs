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
];

/// Every function's state, built by the function's own constructor (`App::from_runtime`, as its
/// `main.rs` does), sharing one store, one credentials provider and one WeChat client.
pub struct Apps<C> {
    pub component_events: component_events::App<DynamoStore, Arc<C>, SystemClock>,
    pub message_events: message_events::App<DynamoStore, Arc<C>, SystemClock>,
    pub authorize_link: authorize_link::App<DynamoStore, Arc<C>, SystemClock>,
    pub authorize_callback: authorize_callback::App<DynamoStore, Arc<C>, SystemClock>,
    pub authorizers: authorizers::App<DynamoStore>,
    pub access_token: access_token::App<DynamoStore, Arc<C>, SystemClock>,
    pub open_account: open_account::App<DynamoStore, Arc<C>, SystemClock>,
    pub login_create: login_session_create::App<DynamoStore, Arc<C>, SystemClock>,
    pub login_status: login_session_status::App<DynamoStore, SystemClock>,
    /// The shared dependencies, for tests that drive the domain directly.
    pub deps: Deps<DynamoStore, Arc<C>, SystemClock>,
}

/// What the gateway needs to know that API Gateway and the template would otherwise supply.
#[derive(Debug, Clone)]
pub struct GatewayConfig {
    pub push_window: Duration,
    pub hosts: LinkHosts,
    /// The gateway's own URL (for the authorization redirect).
    pub public_base: Option<String>,
    pub login: LoginSettings,
    /// The AWS configuration the functions build their clients from (moto).
    pub aws: aws_config::SdkConfig,
    /// Events out: the bus the functions publish to (`EVENT_BUS_NAME`).
    pub event_bus_name: String,
    /// The reply hook URL (`REPLY_HOOK_URL`; the secret is in the credentials).
    pub reply_hook_url: Option<String>,
    /// `REPLY_HOOK_BUDGET_MS`.
    pub reply_hook_budget: Duration,
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
        ]);
        if let Some(base) = &self.public_base {
            env.insert("PUBLIC_BASE_URL", base.clone());
        }
        env.insert("EVENT_BUS_NAME", self.event_bus_name.clone());
        env.insert(
            "REPLY_HOOK_BUDGET_MS",
            self.reply_hook_budget.as_millis().to_string(),
        );
        if let Some(url) = &self.reply_hook_url {
            env.insert("REPLY_HOOK_URL", url.clone());
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
            access_token: FromRuntime::from_runtime(rt()),
            open_account: FromRuntime::from_runtime(rt()),
            login_create: FromRuntime::from_runtime(rt()),
            login_status: FromRuntime::from_runtime(rt()),
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
            "access-token" => access_token::handle(&self.access_token, req).await,
            "open-account" => open_account::handle(&self.open_account, req).await,
            "login-session-create" => login_session_create::handle(&self.login_create, req).await,
            "login-session-status" => login_session_status::handle(&self.login_status, req).await,
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

/// Converts what axum received into what API Gateway (HTTP API, payload v2) hands a function.
fn to_lambda(
    method: Method,
    uri: &Uri,
    headers: HeaderMap,
    query: Option<String>,
    path: HashMap<String, String>,
    body: Bytes,
) -> Request {
    let mut req = lambda_http::http::Request::builder()
        .method(method)
        .uri(uri.path())
        .body(if body.is_empty() {
            Body::Empty
        } else {
            match String::from_utf8(body.to_vec()) {
                Ok(text) => Body::Text(text),
                Err(e) => Body::Binary(e.into_bytes()),
            }
        })
        .unwrap_or_default();
    *req.headers_mut() = headers;
    let mut params: HashMap<String, Vec<String>> = HashMap::new();
    for (k, v) in url::form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        params
            .entry(k.into_owned())
            .or_default()
            .push(v.into_owned());
    }
    req.with_query_string_parameters(params)
        .with_path_parameters(path)
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

/// A running gateway.
pub struct Gateway {
    pub base_url: String,
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
    let mut router = axum::Router::new();
    for &(method, path, function) in ROUTES {
        let filter = match method {
            "GET" => MethodFilter::GET,
            "POST" => MethodFilter::POST,
            "PUT" => MethodFilter::PUT,
            "DELETE" => MethodFilter::DELETE,
            _ => continue,
        };
        router = router.route(
            path,
            on(
                filter,
                move |State(apps): State<Arc<Apps<C>>>,
                      method: Method,
                      uri: Uri,
                      headers: HeaderMap,
                      Path(path): Path<HashMap<String, String>>,
                      RawQuery(query): RawQuery,
                      body: Bytes| async move {
                    let req = to_lambda(method, &uri, headers, query, path, body);
                    to_axum(apps.dispatch(function, req).await)
                },
            ),
        );
    }
    // Like API Gateway: a method or path the template does not route never reaches a function.
    let router = router
        .method_not_allowed_fallback(|| async { to_axum(not_found()) })
        .fallback(|| async { to_axum(not_found()) })
        .with_state(apps);
    let task = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, router).await {
            tracing::error!(error = %e, "gateway stopped");
        }
    });
    Ok(Gateway { base_url, task })
}
