//! The whole system on loopback for end-to-end tests: moto (DynamoDB), the WeChat sandbox, and
//! the local gateway serving every function, wired as a deployment would be.

use std::sync::Arc;
use std::time::Duration;

use secrecy::SecretString;
use serde_json::{Value, json};
use wxopen::app::Deps;
use wxopen::authorization::LinkHosts;
use wxopen::clock::{Clock, SystemClock};
use wxopen::config::{Config, ConfigError};
use wxopen::login::LoginSettings;
use wxopen::secrets::{ComponentCredentials, SecretsError, StaticCredentials};
use wxopen::store::DynamoStore;
use wxopen::wechat::WeChatClient;

use crate::bus::LocalBus;
use crate::gateway::{self, Apps, Gateway, GatewayConfig};
use crate::hook::HookServer;
use crate::releases::{CountedQueue, ReleaseQueue, SqsCounts};
use crate::sandbox::{self, SandboxConfig, SandboxHandle};
use crate::{
    AES_KEY, APPID, APPSECRET, HOOK_SECRET, OpCounter, TOKEN, aws_config, fresh_counted_store,
    unique,
};
use wxopen::releases::{NoHook, ReleaseSettings, StepHook};

pub struct Stack {
    pub sandbox: SandboxHandle,
    /// Every DynamoDB request the stack's store makes, by operation.
    pub ops: OpCounter,
    pub store: DynamoStore,
    pub wechat: WeChatClient,
    pub credentials: Arc<StaticCredentials>,
    pub gateway: Gateway,
    pub http: reqwest::Client,
    /// The provider's website: the allowlisted `return_to` of every sign-in flow.
    pub site: crate::site::ProviderSite,
    /// The stack's own event bus (moto) with a rule to a queue: every event published.
    pub bus: LocalBus,
    /// The reply hook the message URL calls (echoes text by default).
    pub hook: HookServer,
    /// Fleet releases: the work queue (audit events from the bus reach it).
    pub releases: ReleaseQueue,
}

/// The release worker as the stack runs it in tests (its queue counts SQS sends).
pub type TestWorker<H = NoHook> = release_worker::App<
    DynamoStore,
    Arc<StaticCredentials>,
    SystemClock,
    CountedQueue,
    wxopen::events::EventBridgePublisher,
    H,
>;

pub fn test_credentials() -> Arc<StaticCredentials> {
    Arc::new(StaticCredentials(Arc::new(
        ComponentCredentials::new(APPID, APPSECRET, TOKEN, AES_KEY)
            .expect("test credentials")
            .with_reply_hook_secret(HOOK_SECRET),
    )))
}

impl Stack {
    pub async fn start() -> Self {
        Self::start_with(SandboxConfig::default()).await
    }

    pub async fn start_with(config: SandboxConfig) -> Self {
        let (store, ops) = fresh_counted_store().await;
        let sandbox = sandbox::start(config).await.expect("sandbox starts");
        let wechat =
            WeChatClient::new(&sandbox.base_url(), Duration::from_secs(2)).expect("client");
        let credentials = test_credentials();
        let aws = aws_config().await;
        let bus = LocalBus::create(&aws, &unique("wxopen-bus"), &unique("wxopen-events"))
            .await
            .expect("bus and queue on moto");
        let hook = HookServer::start(0, HOOK_SECRET)
            .await
            .expect("reply hook starts");
        let releases = ReleaseQueue::create(&aws, &bus.bus_name, &unique("wxopen-releases"), 2)
            .await
            .expect("release queue on moto");
        let hosts = LinkHosts {
            mp_base: sandbox.base_url(),
            open_base: sandbox.base_url(),
        };
        let site = crate::site::ProviderSite::start().await;
        let gw = {
            let (store, credentials, wechat) = (store.clone(), credentials.clone(), wechat.clone());
            let mp_base = sandbox.base_url();
            let sign_in_origins = vec![site.base_url.clone()];
            let (bus_name, hook_url) = (bus.bus_name.clone(), hook.url.clone());
            let release_queue_url = releases.url.clone();
            gateway::start(0, move |base| {
                Apps::new(
                    store,
                    credentials,
                    wechat,
                    GatewayConfig {
                        push_window: Duration::from_secs(300),
                        hosts,
                        public_base: Some(base.to_string()),
                        login: LoginSettings {
                            mp_base,
                            ..LoginSettings::default()
                        },
                        sign_in_origins,
                        aws,
                        event_bus_name: bus_name,
                        reply_hook_url: Some(hook_url),
                        reply_hook_budget: wxopen::reply::hook::DEFAULT_BUDGET,
                        release_queue_url: Some(release_queue_url),
                    },
                )
            })
            .await
            .expect("gateway starts")
        };
        sandbox.set_callbacks(
            Some(format!("{}/wechat/component", gw.base_url)),
            Some(format!("{}/wechat/messages", gw.base_url)),
        );
        Self {
            sandbox,
            ops,
            store,
            wechat,
            credentials,
            gateway: gw,
            http: reqwest::Client::builder()
                .timeout(http_timeout())
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("http client"),
            site,
            bus,
            hook,
            releases,
        }
    }

    /// Engine settings for tests: no wait before submitting, short leases and backoffs.
    pub fn release_settings() -> ReleaseSettings {
        ReleaseSettings {
            step_lease_secs: 1,
            submit_delay_secs: 0,
            backoff_secs: 1,
            max_attempts: 12,
            audit_poll_after_secs: 3600,
            reconcile_slack_secs: 300,
        }
    }

    /// The release worker on the stack's store, sandbox, bus and release queue.
    pub fn release_worker<H: StepHook>(
        &self,
        settings: ReleaseSettings,
        hook: H,
        counts: Arc<SqsCounts>,
    ) -> TestWorker<H> {
        release_worker::App {
            deps: self.deps(),
            queue: CountedQueue {
                inner: self.releases.queue(),
                counts,
            },
            publisher: self.publisher(),
            settings,
            hook,
        }
    }

    /// The scheduled run (`token-refresh`, as EventBridge invokes it) on the stack's store,
    /// sandbox, bus and release queue, on the system clock.
    pub fn scheduled_run(
        &self,
        release_settings: ReleaseSettings,
    ) -> token_refresh::App<DynamoStore, Arc<StaticCredentials>, SystemClock> {
        self.scheduled_run_with_clock(SystemClock, release_settings)
    }

    /// [`Stack::scheduled_run`] on any clock (default refresh settings).
    pub fn scheduled_run_with_clock<K: Clock>(
        &self,
        clock: K,
        release_settings: ReleaseSettings,
    ) -> token_refresh::App<DynamoStore, Arc<StaticCredentials>, K> {
        token_refresh::App {
            deps: self.deps_with_clock(clock),
            settings: Default::default(),
            publisher: self.publisher(),
            release_queue: self.releases.queue(),
            release_settings,
        }
    }

    /// In-process dependencies sharing the stack's store and sandbox, with any clock.
    pub fn deps_with_clock<K: Clock>(
        &self,
        clock: K,
    ) -> Deps<DynamoStore, Arc<StaticCredentials>, K> {
        Deps {
            store: self.store.clone(),
            credentials: self.credentials.clone(),
            clock,
            wechat: self.wechat.clone(),
            tuning: Default::default(),
        }
    }

    /// A publisher to the stack's bus (what the functions use), for the scheduled run's sweep.
    pub fn publisher(&self) -> wxopen::events::EventBridgePublisher {
        wxopen::events::EventBridgePublisher::new(self.bus.events.clone(), &self.bus.bus_name)
    }

    pub fn deps(&self) -> Deps<DynamoStore, Arc<StaticCredentials>, SystemClock> {
        self.deps_with_clock(SystemClock)
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> (u16, Value) {
        let resp = req.send().await.expect("request answered");
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap_or_default();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    /// Calls the sandbox's control API.
    pub async fn control(&self, method: reqwest::Method, path: &str, body: Value) -> (u16, Value) {
        let url = format!(
            "{}/sandbox/{}",
            self.sandbox.base_url(),
            path.trim_start_matches('/')
        );
        self.send(self.http.request(method, url).json(&body)).await
    }

    /// Calls a route of the local gateway (as an IAM-signed caller would through API Gateway).
    pub async fn api(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut req = self
            .http
            .request(method, format!("{}{}", self.gateway.base_url, path));
        if let Some(b) = body {
            req = req.json(&b);
        }
        self.send(req).await
    }

    /// Changes the sandbox's settings (`POST /sandbox/config`), which must accept them.
    pub async fn configure(&self, settings: Value) {
        let (status, body) = self
            .control(reqwest::Method::POST, "config", settings)
            .await;
        assert_eq!(status, 200, "sandbox config: {body}");
    }

    /// The sandbox pushes a fresh ticket to the authorization event URL.
    pub async fn push_ticket(&self) -> Value {
        let (status, body) = self
            .control(reqwest::Method::POST, "push/ticket", json!({}))
            .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(
            body["delivery"]["delivered"], true,
            "ticket delivered: {body}"
        );
        body
    }

    /// An authorization link from `POST /authorize/links`.
    pub async fn authorization_link(&self, options: Value) -> String {
        let body = self.create_link(options).await;
        body["pc_url"].as_str().expect("pc_url").to_string()
    }

    /// `POST /authorize/links` (a `customer_ref` of `test-customer` unless `options` has one);
    /// the whole answer.
    pub async fn create_link(&self, mut options: Value) -> Value {
        if let Some(o) = options.as_object_mut() {
            o.entry("customer_ref").or_insert(json!("test-customer"));
        }
        let (status, body) = self
            .api(reqwest::Method::POST, "/authorize/links", Some(options))
            .await;
        assert_eq!(status, 201, "{body}");
        body
    }

    /// The sandbox merchant `appid` opens a fresh link and authorizes (`order` as the sandbox
    /// takes it: push_first, redirect_first, concurrent, push_only, redirect_only, none).
    pub async fn authorize(&self, appid: &str, order: &str) -> Value {
        let link = self.authorization_link(json!({})).await;
        let (status, body) = self
            .control(
                reqwest::Method::POST,
                &format!("merchants/{appid}/authorize"),
                json!({ "link": link, "order": order }),
            )
            .await;
        assert_eq!(status, 200, "authorize {appid}: {body}");
        body
    }

    /// Number of sandbox calls to `api` so far.
    pub fn calls_to(&self, api: &str) -> usize {
        self.sandbox.calls().iter().filter(|c| c.api == api).count()
    }
}

// ---------------------------------------------------------------------------------------------
// Where the local stack (`make dev`, `wxopen-local serve`) sends its WeChat calls.

/// The environment variables that aim the local stack away from the sandbox.
pub const AIM_VARIABLES: &[&str] = &[
    "WECHAT_API_BASE",
    "WECHAT_MP_BASE",
    "WECHAT_OPEN_BASE",
    "WXOPEN_CREDENTIALS_JSON",
    "WXOPEN_CREDENTIALS_FILE",
];

/// The three WeChat hosts a deployment is configured with (no trailing slash).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WeChatBases {
    /// API calls (`WECHAT_API_BASE`).
    pub api: String,
    /// The authorization page and QR images (`WECHAT_MP_BASE`).
    pub mp: String,
    /// The mobile authorization link (`WECHAT_OPEN_BASE`).
    pub open: String,
}

impl WeChatBases {
    /// All three hosts at one server (the sandbox serves them all).
    pub fn all(base: &str) -> Self {
        Self {
            api: base.to_string(),
            mp: base.to_string(),
            open: base.to_string(),
        }
    }
}

/// A WeChat other than the sandbox: its hosts and the component credentials it knows.
#[derive(Clone)]
pub struct Aim {
    pub bases: WeChatBases,
    /// Where the credentials came from (`WXOPEN_CREDENTIALS_JSON` or the file's path).
    pub credentials_source: String,
    /// The component appid in the credentials (not a secret; printed at startup).
    pub component_appid: String,
    /// The provider's `PUBLIC_BASE_URL` (a tunnel's address), if set: the redirect URI uses it.
    pub public_base: Option<String>,
    credentials_json: SecretString,
}

impl std::fmt::Debug for Aim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Aim")
            .field("bases", &self.bases)
            .field("credentials_source", &self.credentials_source)
            .field("component_appid", &self.component_appid)
            .field("public_base", &self.public_base)
            .finish_non_exhaustive()
    }
}

impl Aim {
    /// The validated credentials JSON, as it goes into the stack's secret.
    pub fn credentials_json(&self) -> &SecretString {
        &self.credentials_json
    }
}

/// What the local stack talks to.
#[derive(Debug, Clone)]
pub enum WeChatTarget {
    /// The project's WeChat sandbox, started with the stack, with the test component (default).
    Sandbox,
    /// The server(s) named in the environment; the sandbox is not started.
    Aimed(Aim),
}

/// A bad aim variable. The message names the variable and never quotes a credential.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AimError(pub String);

impl std::fmt::Display for AimError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for AimError {}

impl WeChatTarget {
    pub fn from_env() -> Result<Self, AimError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// Reads the aim from any lookup (the environment, or a map in tests). Empty values count as
    /// unset. None of [`AIM_VARIABLES`] set: the sandbox. Any of them set: the credentials are
    /// required (exactly one of `WXOPEN_CREDENTIALS_JSON` / `WXOPEN_CREDENTIALS_FILE`) and each
    /// base not given is WeChat's own host, as in a deployed stack. Base URLs (and
    /// `PUBLIC_BASE_URL`) are validated by the same rules as a deployed function's config.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, AimError> {
        let get = |k: &str| get(k).filter(|v| !v.trim().is_empty());
        if AIM_VARIABLES.iter().all(|k| get(k).is_none()) {
            return Ok(Self::Sandbox);
        }
        let bases = bases(&get)?;
        let (credentials_source, json) = match (
            get("WXOPEN_CREDENTIALS_JSON"),
            get("WXOPEN_CREDENTIALS_FILE"),
        ) {
            (Some(_), Some(_)) => {
                return Err(AimError(
                    "set WXOPEN_CREDENTIALS_JSON or WXOPEN_CREDENTIALS_FILE, not both".into(),
                ));
            }
            (None, None) => {
                return Err(AimError(format!(
                    "the local stack is aimed at {} but has no component credentials: set \
                         WXOPEN_CREDENTIALS_JSON (a JSON object with component_appid, \
                         component_appsecret, token, encoding_aes_key) or \
                         WXOPEN_CREDENTIALS_FILE (a path to one)",
                    bases.api
                )));
            }
            (Some(json), None) => ("WXOPEN_CREDENTIALS_JSON".to_string(), json),
            (None, Some(path)) => {
                let path = path.trim().to_string();
                let json = std::fs::read_to_string(&path).map_err(|e| {
                    AimError(format!(
                        "WXOPEN_CREDENTIALS_FILE {path:?} cannot be read: {e}"
                    ))
                })?;
                (format!("WXOPEN_CREDENTIALS_FILE {path}"), json)
            }
        };
        let parsed = ComponentCredentials::from_json(&json).map_err(|e| {
            AimError(match e {
                SecretsError::NotConfigured => format!(
                    "{credentials_source}: component_appid is missing or still the placeholder"
                ),
                // `Invalid` names the field, never its value.
                SecretsError::Invalid(what) => {
                    format!("{credentials_source}: invalid credentials: {what}")
                }
                other => format!("{credentials_source}: {other}"),
            })
        })?;
        Ok(Self::Aimed(Aim {
            bases,
            credentials_source,
            component_appid: parsed.component_appid.clone(),
            public_base: public_base(&get)?,
            credentials_json: SecretString::from(json),
        }))
    }
}

/// Only these keys reach the config parser, with placeholders for the two it requires.
fn config_lookup<'a>(
    get: &'a impl Fn(&str) -> Option<String>,
) -> impl Fn(&str) -> Option<String> + 'a {
    move |k: &str| match k {
        "TABLE_NAME" | "SECRET_ID" => Some("local".to_string()),
        "WECHAT_API_BASE" | "WECHAT_MP_BASE" | "WECHAT_OPEN_BASE" | "PUBLIC_BASE_URL" => get(k),
        _ => None,
    }
}

fn bases(get: &impl Fn(&str) -> Option<String>) -> Result<WeChatBases, AimError> {
    let config = Config::from_lookup(config_lookup(get)).map_err(aim_config_error)?;
    Ok(WeChatBases {
        api: config.wechat_api_base,
        mp: config.wechat_mp_base,
        open: config.wechat_open_base,
    })
}

fn public_base(get: &impl Fn(&str) -> Option<String>) -> Result<Option<String>, AimError> {
    Ok(Config::from_lookup(config_lookup(get))
        .map_err(aim_config_error)?
        .public_base_url)
}

fn aim_config_error(e: ConfigError) -> AimError {
    match e {
        ConfigError::Invalid(key, why) => AimError(format!(
            "{key} is not a usable base URL ({why}); expected e.g. http://127.0.0.1:9000"
        )),
        other => AimError(other.to_string()),
    }
}

/// The stack's HTTP client timeout: 20 s, or `WXOPEN_TEST_HTTP_TIMEOUT_SECS` (the 2,000-target
/// bench raises it: creating such a job on moto takes longer than 20 s).
fn http_timeout() -> Duration {
    let secs = std::env::var("WXOPEN_TEST_HTTP_TIMEOUT_SECS")
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .filter(|s| *s > 0)
        .unwrap_or(20);
    Duration::from_secs(secs)
}

#[cfg(test)]
mod aim_tests {
    use super::*;
    use secrecy::ExposeSecret;
    use std::collections::HashMap;

    const CREDS: &str = r#"{"component_appid":"wxaimed00000000001","component_appsecret":"s3cret-appsecret","token":"aim-token","encoding_aes_key":"abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"}"#;

    fn target(vars: &[(&str, &str)]) -> Result<WeChatTarget, AimError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        WeChatTarget::from_lookup(|k| map.get(k).cloned())
    }

    fn aimed(vars: &[(&str, &str)]) -> Aim {
        match target(vars) {
            Ok(WeChatTarget::Aimed(aim)) => aim,
            other => panic!("expected an aim, got {other:?}"),
        }
    }

    fn error(vars: &[(&str, &str)]) -> String {
        match target(vars) {
            Err(e) => e.to_string(),
            Ok(t) => panic!("expected an error, got {t:?}"),
        }
    }

    #[test]
    fn nothing_set_or_all_empty_is_the_sandbox() {
        assert!(matches!(target(&[]), Ok(WeChatTarget::Sandbox)));
        let empty: Vec<(&str, &str)> = AIM_VARIABLES.iter().map(|k| (*k, " ")).collect();
        assert!(matches!(target(&empty), Ok(WeChatTarget::Sandbox)));
        // PUBLIC_BASE_URL alone does not aim anything.
        assert!(matches!(
            target(&[("PUBLIC_BASE_URL", "https://tunnel.example")]),
            Ok(WeChatTarget::Sandbox)
        ));
    }

    #[test]
    fn bases_and_json_credentials() {
        let aim = aimed(&[
            ("WECHAT_API_BASE", "http://127.0.0.1:9000/"),
            ("WECHAT_MP_BASE", "http://127.0.0.1:9001"),
            ("WECHAT_OPEN_BASE", "http://127.0.0.1:9002"),
            ("WXOPEN_CREDENTIALS_JSON", CREDS),
        ]);
        assert_eq!(
            aim.bases,
            WeChatBases {
                api: "http://127.0.0.1:9000".into(),
                mp: "http://127.0.0.1:9001".into(),
                open: "http://127.0.0.1:9002".into(),
            }
        );
        assert_eq!(aim.component_appid, "wxaimed00000000001");
        assert_eq!(aim.credentials_source, "WXOPEN_CREDENTIALS_JSON");
        assert_eq!(aim.credentials_json().expose_secret(), CREDS);
        assert_eq!(aim.public_base, None);
        let debug = format!("{aim:?}");
        assert!(!debug.contains("s3cret-appsecret"), "{debug}");
        assert!(!debug.contains("aim-token"), "{debug}");
    }

    #[test]
    fn bases_not_given_are_wechats_own_hosts() {
        let aim = aimed(&[
            ("WXOPEN_CREDENTIALS_JSON", CREDS),
            ("PUBLIC_BASE_URL", "https://tunnel.example/"),
        ]);
        assert_eq!(
            aim.bases,
            WeChatBases {
                api: "https://api.weixin.qq.com".into(),
                mp: "https://mp.weixin.qq.com".into(),
                open: "https://open.weixin.qq.com".into(),
            }
        );
        assert_eq!(aim.public_base.as_deref(), Some("https://tunnel.example"));
    }

    #[test]
    fn credentials_from_a_file() {
        let path = std::env::temp_dir().join(format!("wxopen-aim-{}.json", std::process::id()));
        std::fs::write(&path, CREDS).unwrap();
        let path_str = path.to_string_lossy().to_string();
        let aim = aimed(&[
            ("WECHAT_API_BASE", "http://127.0.0.1:9000"),
            ("WXOPEN_CREDENTIALS_FILE", &path_str),
        ]);
        std::fs::remove_file(&path).unwrap();
        assert_eq!(aim.component_appid, "wxaimed00000000001");
        assert_eq!(
            aim.credentials_source,
            format!("WXOPEN_CREDENTIALS_FILE {path_str}")
        );
    }

    #[test]
    fn bad_values_are_clear_errors() {
        let api = ("WECHAT_API_BASE", "http://127.0.0.1:9000");
        let creds = ("WXOPEN_CREDENTIALS_JSON", CREDS);
        let e = error(&[("WECHAT_API_BASE", "not a url"), creds]);
        assert!(e.contains("WECHAT_API_BASE"), "{e}");
        let e = error(&[("WECHAT_MP_BASE", "ftp://127.0.0.1"), creds]);
        assert!(e.contains("WECHAT_MP_BASE"), "{e}");
        let e = error(&[creds, ("PUBLIC_BASE_URL", "nowhere")]);
        assert!(e.contains("PUBLIC_BASE_URL"), "{e}");
        let e = error(&[api]);
        assert!(
            e.contains("WXOPEN_CREDENTIALS_JSON") && e.contains("WXOPEN_CREDENTIALS_FILE"),
            "{e}"
        );
        let e = error(&[api, creds, ("WXOPEN_CREDENTIALS_FILE", "/x")]);
        assert!(e.contains("not both"), "{e}");
        let e = error(&[
            api,
            ("WXOPEN_CREDENTIALS_FILE", "/no/such/wxopen-creds.json"),
        ]);
        assert!(e.contains("/no/such/wxopen-creds.json"), "{e}");
        let e = error(&[api, ("WXOPEN_CREDENTIALS_JSON", "{not json s3cret")]);
        assert!(e.contains("WXOPEN_CREDENTIALS_JSON"), "{e}");
        assert!(!e.contains("s3cret"), "the value is never quoted: {e}");
        let e = error(&[
            api,
            (
                "WXOPEN_CREDENTIALS_JSON",
                r#"{"component_appid":"REPLACE_ME"}"#,
            ),
        ]);
        assert!(e.contains("placeholder"), "{e}");
        let e = error(&[
            api,
            (
                "WXOPEN_CREDENTIALS_JSON",
                r#"{"component_appid":"wx1","component_appsecret":"s3cret","token":"t","encoding_aes_key":"short"}"#,
            ),
        ]);
        assert!(e.contains("encoding_aes_key"), "{e}");
        assert!(!e.contains("s3cret"), "{e}");
    }
}
