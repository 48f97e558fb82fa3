//! The WeChat sandbox's own rules, exercised over real HTTP against an in-process sandbox.
//! This file is the harness (`Sb`, push receivers, helpers); the tests are in one file per topic.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::common::{MP1, OA1, OA2, OA3, OA4};
use axum::Router;
use axum::http::{StatusCode, Uri};
use serde_json::{Value, json};
use wxopen::crypto::{self, AesKey};
use wxopen_tests::sandbox::{self, CallRecord, SandboxConfig, SandboxHandle};
use wxopen_tests::{AES_KEY, APPID, APPSECRET, TOKEN};

struct Sb {
    handle: SandboxHandle,
    http: reqwest::Client,
}

fn client(timeout: Duration) -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(timeout)
        .build()
        .expect("client")
}

impl Sb {
    async fn start() -> Self {
        Self::with(SandboxConfig::default()).await
    }

    async fn with(config: SandboxConfig) -> Self {
        let started = Instant::now();
        let handle = sandbox::start(config).await.expect("sandbox starts");
        assert!(started.elapsed() < Duration::from_secs(1), "starts quickly");
        Self {
            handle,
            http: client(Duration::from_secs(20)),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.handle.base_url())
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> (u16, Value) {
        let resp = req.send().await.expect("request");
        let status = resp.status().as_u16();
        let text = resp.text().await.expect("body");
        let value = serde_json::from_str(&text)
            .unwrap_or_else(|_| panic!("JSON body expected, got {status} {text:?}"));
        (status, value)
    }

    /// POST with a JSON body; returns (HTTP status, JSON).
    async fn post_status(&self, path: &str, body: Value) -> (u16, Value) {
        self.send(self.http.post(self.url(path)).json(&body)).await
    }

    /// POST expecting HTTP 200.
    async fn post(&self, path: &str, body: Value) -> Value {
        let (status, value) = self.post_status(path, body).await;
        assert_eq!(status, 200, "POST {path}: {value}");
        value
    }

    async fn get(&self, path: &str) -> Value {
        let (status, value) = self.send(self.http.get(self.url(path))).await;
        assert_eq!(status, 200, "GET {path}: {value}");
        value
    }

    async fn config(&self, body: Value) {
        self.post("/sandbox/config", body).await;
    }

    async fn advance(&self, seconds: i64) {
        self.post("/sandbox/clock/advance", json!({ "seconds": seconds }))
            .await;
    }

    async fn ticket(&self) -> String {
        let v = self.post("/sandbox/push/ticket", json!({})).await;
        v["ticket"].as_str().expect("ticket").to_string()
    }

    async fn component_token_with(&self, ticket: &str) -> Value {
        self.post(
            "/cgi-bin/component/api_component_token",
            json!({
                "component_appid": APPID,
                "component_appsecret": APPSECRET,
                "component_verify_ticket": ticket,
            }),
        )
        .await
    }

    async fn component_token(&self) -> String {
        let ticket = self.ticket().await;
        let v = self.component_token_with(&ticket).await;
        v["component_access_token"]
            .as_str()
            .unwrap_or_else(|| panic!("token: {v}"))
            .to_string()
    }

    /// A component API call with the component token.
    async fn component(&self, api: &str, token: &str, mut body: Value) -> Value {
        body["component_appid"] = json!(APPID);
        self.post(
            &format!("/cgi-bin/component/{api}?component_access_token={token}"),
            body,
        )
        .await
    }

    /// An authorizer API call (`/cgi-bin/{api}?access_token=`).
    async fn authorizer_api(&self, api: &str, token: &str, body: Value) -> Value {
        self.post(&format!("/cgi-bin/{api}?access_token={token}"), body)
            .await
    }

    async fn preauthcode(&self, ct: &str) -> String {
        let v = self
            .component("api_create_preauthcode", ct, json!({}))
            .await;
        assert_eq!(v["expires_in"], 600, "{v}");
        v["pre_auth_code"].as_str().expect("code").to_string()
    }

    fn link(&self, pre: &str, auth_type: u8, redirect: &str) -> String {
        let mut url = url::Url::parse(&self.url("/cgi-bin/componentloginpage")).unwrap();
        url.query_pairs_mut()
            .append_pair("component_appid", APPID)
            .append_pair("pre_auth_code", pre)
            .append_pair("redirect_uri", redirect)
            .append_pair("auth_type", &auth_type.to_string());
        url.to_string()
    }

    /// The merchant authorizes (push only, no callback needed); returns the authorization code.
    async fn authorize(&self, ct: &str, appid: &str, func_info: Option<Value>) -> String {
        let pre = self.preauthcode(ct).await;
        let mut body = json!({
            "link": self.link(&pre, 3, "https://wxopen.example/cb"),
            "order": "push_only",
        });
        if let Some(f) = func_info {
            body["func_info"] = f;
        }
        let v = self
            .post(&format!("/sandbox/merchants/{appid}/authorize"), body)
            .await;
        v["auth_code"].as_str().expect("auth_code").to_string()
    }

    /// Authorizes and exchanges the code: (authorizer access token, refresh token).
    async fn authorizer(
        &self,
        ct: &str,
        appid: &str,
        func_info: Option<Value>,
    ) -> (String, String) {
        let code = self.authorize(ct, appid, func_info).await;
        let v = self
            .component("api_query_auth", ct, json!({ "authorization_code": code }))
            .await;
        let info = &v["authorization_info"];
        assert_eq!(info["authorizer_appid"], appid, "{v}");
        (
            info["authorizer_access_token"]
                .as_str()
                .unwrap()
                .to_string(),
            info["authorizer_refresh_token"]
                .as_str()
                .unwrap()
                .to_string(),
        )
    }

    async fn refresh(&self, ct: &str, appid: &str, refresh: &str) -> Value {
        self.component(
            "api_authorizer_token",
            ct,
            json!({ "authorizer_appid": appid, "authorizer_refresh_token": refresh }),
        )
        .await
    }

    async fn qrcode(&self, at: &str, scene: &str) -> Value {
        self.authorizer_api(
            "qrcode/create",
            at,
            json!({
                "expire_seconds": 300,
                "action_name": "QR_STR_SCENE",
                "action_info": { "scene": { "scene_str": scene } },
            }),
        )
        .await
    }
}

fn errcode(v: &Value) -> i64 {
    v["errcode"].as_i64().unwrap_or(0)
}

/// A tiny HTTP receiver: every request goes to `f`, which answers (status, body).
#[derive(Debug, Clone)]
struct Captured {
    path: String,
    query: HashMap<String, String>,
    body: String,
}

async fn receiver<F, Fut>(f: F) -> String
where
    F: Fn(Captured) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = (u16, String)> + Send + 'static,
{
    let app = Router::new().fallback(move |uri: Uri, body: String| {
        let f = f.clone();
        async move {
            let query = url::form_urlencoded::parse(uri.query().unwrap_or_default().as_bytes())
                .into_owned()
                .collect();
            let (status, body) = f(Captured {
                path: uri.path().to_string(),
                query,
                body,
            })
            .await;
            (StatusCode::from_u16(status).unwrap(), body)
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, app).await.ok();
    });
    format!("http://{addr}")
}

fn field(xml: &str, tag: &str) -> Option<String> {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    let start = xml.find(&open)? + open.len();
    let end = start + xml[start..].find(&close)?;
    let raw = &xml[start..end];
    Some(
        raw.strip_prefix("<![CDATA[")
            .and_then(|r| r.strip_suffix("]]>"))
            .unwrap_or(raw)
            .to_string(),
    )
}

/// Verifies the push's signatures and decrypts it with the project's crypto.
fn open_push(c: &Captured) -> String {
    assert_eq!(c.query["encrypt_type"], "aes");
    let encrypt = field(&c.body, "Encrypt").expect("Encrypt");
    crypto::verify_msg_signature(
        TOKEN,
        &c.query["timestamp"],
        &c.query["nonce"],
        &encrypt,
        &c.query["msg_signature"],
    )
    .expect("msg_signature verifies");
    crypto::verify_url_signature(
        TOKEN,
        &c.query["timestamp"],
        &c.query["nonce"],
        &c.query["signature"],
    )
    .expect("signature verifies");
    let key = AesKey::from_encoding_aes_key(AES_KEY).unwrap();
    secrecy::ExposeSecret::expose_secret(&key.decrypt(&encrypt, APPID).expect("decrypts"))
        .to_string()
}

type Log = Arc<Mutex<Vec<Captured>>>;

/// A component callback that records pushes and answers `success`.
async fn component_receiver() -> (String, Log) {
    let log: Log = Arc::default();
    let l = log.clone();
    let url = receiver(move |c| {
        let l = l.clone();
        async move {
            l.lock().unwrap().push(c);
            (200, "success".to_string())
        }
    })
    .await;
    (url, log)
}

/// A message URL that decrypts each push and answers an encrypted passive text reply
/// `got <Event or Content>`.
async fn message_receiver() -> (String, Log) {
    let log: Log = Arc::default();
    let l = log.clone();
    let url = receiver(move |c| {
        let l = l.clone();
        async move {
            let plain = open_push(&c);
            l.lock().unwrap().push(Captured {
                body: plain.clone(),
                ..c
            });
            let what = field(&plain, "Event")
                .or_else(|| field(&plain, "Content"))
                .unwrap_or_default();
            let reply = format!(
                "<xml><ToUserName><![CDATA[{}]]></ToUserName><FromUserName><![CDATA[{}]]></FromUserName><CreateTime>1</CreateTime><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[got {what}]]></Content></xml>",
                field(&plain, "FromUserName").unwrap_or_default(),
                field(&plain, "ToUserName").unwrap_or_default(),
            );
            let key = AesKey::from_encoding_aes_key(AES_KEY).unwrap();
            let sealed = crypto::seal(&key, TOKEN, APPID, &reply, "1700000000", "n1").unwrap();
            (
                200,
                crypto::reply_envelope(&sealed.encrypt, &sealed.msg_signature, "1700000000", "n1"),
            )
        }
    })
    .await;
    (url, log)
}

fn calls_of(calls: &[CallRecord], api: &str) -> Vec<CallRecord> {
    calls.iter().filter(|c| c.api == api).cloned().collect()
}

// The rules, one file per topic; the harness above is shared by all of them.
mod authorization;
mod business;
mod code;
mod control;
mod faults;
mod mini_program;
mod open_account;
mod pushes;
mod release;
mod routing;
mod sign_in;
mod tokens;
mod users;
mod web_oauth;
