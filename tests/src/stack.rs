//! The whole system on loopback for end-to-end tests: moto (DynamoDB), the WeChat sandbox, and
//! the local gateway serving every function, wired as a deployment would be.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use wxopen::app::Deps;
use wxopen::authorization::LinkHosts;
use wxopen::clock::{Clock, SystemClock};
use wxopen::login::LoginSettings;
use wxopen::secrets::{ComponentCredentials, StaticCredentials};
use wxopen::store::DynamoStore;
use wxopen::wechat::WeChatClient;

use crate::gateway::{self, Apps, Gateway, GatewayConfig};
use crate::sandbox::{self, SandboxConfig, SandboxHandle};
use crate::{AES_KEY, APPID, APPSECRET, OpCounter, TOKEN, fresh_counted_store};

pub struct Stack {
    pub sandbox: SandboxHandle,
    /// Every DynamoDB request the stack's store makes, by operation.
    pub ops: OpCounter,
    pub store: DynamoStore,
    pub wechat: WeChatClient,
    pub credentials: Arc<StaticCredentials>,
    pub gateway: Gateway,
    pub http: reqwest::Client,
}

pub fn test_credentials() -> Arc<StaticCredentials> {
    Arc::new(StaticCredentials(Arc::new(
        ComponentCredentials::new(APPID, APPSECRET, TOKEN, AES_KEY).expect("test credentials"),
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
        let hosts = LinkHosts {
            mp_base: sandbox.base_url(),
            open_base: sandbox.base_url(),
        };
        let gw = {
            let (store, credentials, wechat) = (store.clone(), credentials.clone(), wechat.clone());
            let mp_base = sandbox.base_url();
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
                .timeout(Duration::from_secs(20))
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("http client"),
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
        }
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
        let (status, body) = self
            .api(reqwest::Method::POST, "/authorize/links", Some(options))
            .await;
        assert_eq!(status, 200, "{body}");
        body["pc_url"].as_str().expect("pc_url").to_string()
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
