//! The WeChat sandbox's own rules, exercised over real HTTP against an in-process sandbox.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::http::{StatusCode, Uri};
use serde_json::{Value, json};
use wxopen::crypto::{self, AesKey};
use wxopen_tests::sandbox::{self, CallRecord, SandboxConfig, SandboxHandle};
use wxopen_tests::{AES_KEY, APPID, APPSECRET, TOKEN};

const OA1: &str = "wxoa00000000000001";
const OA2: &str = "wxoa00000000000002";
const OA3: &str = "wxoa00000000000003";
const OA4: &str = "wxoa00000000000004";
const MP1: &str = "wxmp00000000000001";

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

// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn component_token_overlap_then_40001_and_older_tokens_die_at_once() {
    let sb = Sb::start().await;
    let a = sb.component_token().await;
    let b = sb.component_token().await;
    // Within the overlap both work.
    assert_eq!(
        errcode(&sb.component("api_create_preauthcode", &a, json!({})).await),
        0
    );
    assert_eq!(
        errcode(&sb.component("api_create_preauthcode", &b, json!({})).await),
        0
    );
    sb.advance(301).await;
    let v = sb.component("api_create_preauthcode", &a, json!({})).await;
    assert_eq!(errcode(&v), 40001, "{v}");
    assert_eq!(
        errcode(&sb.component("api_create_preauthcode", &b, json!({})).await),
        0
    );

    // Two refreshes in a row: the oldest is invalid immediately, the middle one overlaps.
    let c = sb.component_token().await;
    let d = sb.component_token().await;
    assert_eq!(
        errcode(&sb.component("api_create_preauthcode", &b, json!({})).await),
        40001
    );
    assert_eq!(
        errcode(&sb.component("api_create_preauthcode", &c, json!({})).await),
        0
    );
    assert_eq!(
        errcode(&sb.component("api_create_preauthcode", &d, json!({})).await),
        0
    );

    // The log names the token kind of each call.
    let calls = calls_of(&sb.handle.calls(), "api_create_preauthcode");
    assert!(calls.iter().all(|c| c.token_kind == "component"));
    assert_eq!(calls.iter().filter(|c| c.errcode == 40001).count(), 2);
}

#[tokio::test]
async fn expired_missing_and_unknown_tokens() {
    let sb = Sb::start().await;
    let ct = sb.component_token().await;
    let (at, _) = sb.authorizer(&ct, OA1, None).await;
    sb.advance(7200).await;
    assert_eq!(
        errcode(&sb.component("api_create_preauthcode", &ct, json!({})).await),
        42001
    );
    let v = sb
        .authorizer_api("open/get", &at, json!({ "appid": OA1 }))
        .await;
    assert_eq!(errcode(&v), 42001, "{v}");
    let v = sb
        .post(
            "/cgi-bin/component/api_create_preauthcode",
            json!({ "component_appid": APPID }),
        )
        .await;
    assert_eq!(errcode(&v), 41001);
    let v = sb
        .component("api_create_preauthcode", "not-a-token", json!({}))
        .await;
    assert_eq!(errcode(&v), 40001);
    let kinds: Vec<String> = calls_of(&sb.handle.calls(), "api_create_preauthcode")
        .into_iter()
        .map(|c| c.token_kind)
        .collect();
    assert!(kinds.ends_with(&["component".into(), "none".into(), "unknown".into()]));
}

#[tokio::test]
async fn ticket_and_credential_rules() {
    let sb = Sb::start().await;
    let v = sb.component_token_with("ticket@@@never-pushed").await;
    assert_eq!(errcode(&v), 61006, "{v}");
    let ticket = sb.ticket().await;
    let wrong_appid = sb
        .post(
            "/cgi-bin/component/api_component_token",
            json!({ "component_appid": "wx0000000000000000", "component_appsecret": APPSECRET, "component_verify_ticket": ticket }),
        )
        .await;
    assert_eq!(errcode(&wrong_appid), 40013);
    let wrong_secret = sb
        .post(
            "/cgi-bin/component/api_component_token",
            json!({ "component_appid": APPID, "component_appsecret": "nope", "component_verify_ticket": ticket }),
        )
        .await;
    assert_eq!(errcode(&wrong_secret), 40125);
    let v = sb.component_token_with(&ticket).await;
    assert_eq!(v["expires_in"], 7200, "{v}");
    sb.advance(43_201).await;
    assert_eq!(errcode(&sb.component_token_with(&ticket).await), 61005);
    let fresh = sb.ticket().await;
    assert_eq!(errcode(&sb.component_token_with(&fresh).await), 0);
}

#[tokio::test]
async fn start_push_ticket_pushes_a_usable_ticket() {
    let (url, log) = component_receiver().await;
    let sb = Sb::start().await;
    sb.handle.set_callbacks(Some(url), None);
    let v = sb
        .post(
            "/cgi-bin/component/api_start_push_ticket",
            json!({ "component_appid": APPID, "component_secret": APPSECRET }),
        )
        .await;
    assert_eq!(v, json!({ "errcode": 0, "errmsg": "ok" }));
    let bad = sb
        .post(
            "/cgi-bin/component/api_start_push_ticket",
            json!({ "component_appid": APPID, "component_secret": "nope" }),
        )
        .await;
    assert_eq!(errcode(&bad), 40125);
    let deadline = Instant::now() + Duration::from_secs(5);
    while log.lock().unwrap().is_empty() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let captured = log.lock().unwrap()[0].clone();
    assert_eq!(field(&captured.body, "AppId").as_deref(), Some(APPID));
    let plain = open_push(&captured);
    assert_eq!(
        field(&plain, "InfoType").as_deref(),
        Some("component_verify_ticket")
    );
    let ticket = field(&plain, "ComponentVerifyTicket").unwrap();
    let v = sb.component_token_with(&ticket).await;
    assert!(v["component_access_token"].is_string(), "{v}");
}

#[tokio::test]
async fn pre_auth_code_is_single_use_and_expires() {
    let sb = Sb::start().await;
    let ct = sb.component_token().await;
    let pre = sb.preauthcode(&ct).await;
    let body =
        json!({ "link": sb.link(&pre, 3, "https://wxopen.example/cb"), "order": "push_only" });
    let v = sb
        .post(&format!("/sandbox/merchants/{OA1}/authorize"), body.clone())
        .await;
    assert!(v["auth_code"].is_string());
    let (status, v) = sb
        .post_status(&format!("/sandbox/merchants/{OA2}/authorize"), body)
        .await;
    assert_eq!(
        (status, v["error"].as_str()),
        (400, Some("pre_auth_code already used"))
    );

    let pre = sb.preauthcode(&ct).await;
    sb.advance(601).await;
    let ct = sb.component_token().await;
    let (status, v) = sb
        .post_status(
            &format!("/sandbox/merchants/{OA2}/authorize"),
            json!({ "link": sb.link(&pre, 3, "https://wxopen.example/cb"), "order": "push_only" }),
        )
        .await;
    assert_eq!(
        (status, v["error"].as_str()),
        (400, Some("pre_auth_code expired"))
    );
    let state = sb.get(&format!("/sandbox/merchants/{OA2}")).await;
    assert!(state["authorization"].is_null(), "nothing changed: {state}");
    let _ = ct;
}

#[tokio::test]
async fn authorization_link_rules() {
    let sb = Sb::start().await;
    let ct = sb.component_token().await;
    let pre = sb.preauthcode(&ct).await;
    let try_link = |appid: &'static str, link: String| {
        let sb = &sb;
        async move {
            sb.post_status(
                &format!("/sandbox/merchants/{appid}/authorize"),
                json!({ "link": link, "order": "push_only" }),
            )
            .await
        }
    };
    let (s, v) = try_link(MP1, sb.link(&pre, 1, "https://x.example/")).await;
    assert_eq!(
        (s, v["error"].as_str()),
        (400, Some("auth_type 1 excludes this merchant"))
    );
    let (s, _) = try_link(OA1, sb.link(&pre, 2, "https://x.example/")).await;
    assert_eq!(s, 400);
    let wrong_component = sb
        .link(&pre, 3, "https://x.example/")
        .replace(APPID, "wx0000000000000000");
    let (s, v) = try_link(OA1, wrong_component).await;
    assert_eq!(s, 400, "{v}");
    let (s, _) = try_link(
        OA1,
        format!("{}&biz_appid={OA2}", sb.link(&pre, 3, "https://x.example/")),
    )
    .await;
    assert_eq!(s, 400);
    let (s, _) = try_link(
        OA1,
        sb.link("preauthcode@@@unknown", 3, "https://x.example/"),
    )
    .await;
    assert_eq!(s, 400);
    // Nothing was consumed: the mobile link with biz_appid for the right merchant works.
    let mobile = format!(
        "{}/wxaopen/safe/bindcomponent?action=bindcomponent&no_scan=1&component_appid={APPID}&pre_auth_code={}&redirect_uri=https%3A%2F%2Fx.example%2F&auth_type=3&biz_appid={MP1}#wechat_redirect",
        sb.handle.base_url(),
        url::form_urlencoded::byte_serialize(pre.as_bytes()).collect::<String>()
    );
    let (s, v) = try_link(MP1, mobile).await;
    assert_eq!(s, 200, "{v}");
    // The informational pages answer.
    let page = sb
        .http
        .get(sb.link(&pre, 3, "https://x.example/"))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("already used"));
}

#[tokio::test]
async fn authorization_push_and_redirect_then_reauthorization() {
    let (cb, pushes) = component_receiver().await;
    let redirects: Log = Arc::default();
    let r = redirects.clone();
    let redirect_base = receiver(move |c| {
        let r = r.clone();
        async move {
            r.lock().unwrap().push(c);
            (200, "welcome".to_string())
        }
    })
    .await;
    let sb = Sb::start().await;
    sb.handle.set_callbacks(Some(cb), None);
    let ct = sb.component_token().await;
    let pre = sb.preauthcode(&ct).await;
    let v = sb
        .post(
            &format!("/sandbox/merchants/{OA1}/authorize"),
            json!({ "link": sb.link(&pre, 1, &format!("{redirect_base}/done?x=1")), "order": "concurrent" }),
        )
        .await;
    let code = v["auth_code"].as_str().unwrap().to_string();
    assert_eq!(v["push"]["delivered"], true, "{v}");
    assert_eq!(v["redirect"]["status"], 200, "{v}");
    assert_eq!(v["redirect"]["body"], "welcome");
    let hit = redirects.lock().unwrap()[0].clone();
    assert_eq!(hit.path, "/done");
    assert_eq!(hit.query["x"], "1");
    assert_eq!(hit.query["auth_code"], code);
    assert_eq!(hit.query["expires_in"], "3600");
    let push = pushes
        .lock()
        .unwrap()
        .iter()
        .map(open_push)
        .find(|p| p.contains("<InfoType><![CDATA[authorized]]>"))
        .expect("authorized push");
    assert_eq!(field(&push, "AuthorizationCode"), Some(code.clone()));
    assert_eq!(field(&push, "AuthorizerAppid").as_deref(), Some(OA1));
    assert_eq!(field(&push, "PreAuthCode"), Some(pre));

    let q = sb
        .component("api_query_auth", &ct, json!({ "authorization_code": code }))
        .await;
    let refresh1 = q["authorization_info"]["authorizer_refresh_token"]
        .as_str()
        .unwrap()
        .to_string();
    let ids: Vec<i64> = q["authorization_info"]["func_info"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["funcscope_category"]["id"].as_i64().unwrap())
        .collect();
    assert!(ids.contains(&24));

    // Re-authorization: updateauthorized, and a new refresh token replaces the old one.
    let code2 = sb.authorize(&ct, OA1, Some(json!([1, 2]))).await;
    let q2 = sb
        .component(
            "api_query_auth",
            &ct,
            json!({ "authorization_code": code2 }),
        )
        .await;
    let refresh2 = q2["authorization_info"]["authorizer_refresh_token"]
        .as_str()
        .unwrap()
        .to_string();
    assert_ne!(refresh1, refresh2);
    assert_eq!(errcode(&sb.refresh(&ct, OA1, &refresh1).await), 61023);
    let v = sb.refresh(&ct, OA1, &refresh2).await;
    assert_eq!(v["authorizer_refresh_token"], refresh2.as_str(), "{v}");
    let kinds: Vec<String> = pushes
        .lock()
        .unwrap()
        .iter()
        .map(|c| field(&open_push(c), "InfoType").unwrap())
        .collect();
    assert!(kinds.contains(&"updateauthorized".to_string()), "{kinds:?}");
}

#[tokio::test]
async fn auth_code_single_use_unknown_and_expired() {
    let sb = Sb::start().await;
    let ct = sb.component_token().await;
    let code = sb.authorize(&ct, OA1, None).await;
    let v = sb
        .component("api_query_auth", &ct, json!({ "authorization_code": code }))
        .await;
    assert_eq!(errcode(&v), 0, "{v}");
    let v = sb
        .component("api_query_auth", &ct, json!({ "authorization_code": code }))
        .await;
    assert_eq!(errcode(&v), 40163);
    let v = sb
        .component(
            "api_query_auth",
            &ct,
            json!({ "authorization_code": "queryauthcode@@@nope" }),
        )
        .await;
    assert_eq!(errcode(&v), 40029);
    let code = sb.authorize(&ct, OA2, None).await;
    sb.advance(3601).await;
    let ct = sb.component_token().await;
    let v = sb
        .component("api_query_auth", &ct, json!({ "authorization_code": code }))
        .await;
    assert_eq!(errcode(&v), 61010);
}

#[tokio::test]
async fn cancel_invalidates_refresh_and_access_tokens() {
    let (cb, pushes) = component_receiver().await;
    let sb = Sb::start().await;
    sb.handle.set_callbacks(Some(cb), None);
    let ct = sb.component_token().await;
    let (at, refresh) = sb.authorizer(&ct, OA1, None).await;
    assert_eq!(errcode(&sb.refresh(&ct, OA1, &refresh).await), 0);
    let v = sb
        .post(&format!("/sandbox/merchants/{OA1}/cancel"), json!({}))
        .await;
    assert_eq!(v["push"]["delivered"], true, "{v}");
    assert_eq!(errcode(&sb.refresh(&ct, OA1, &refresh).await), 61023);
    let v = sb
        .authorizer_api("open/get", &at, json!({ "appid": OA1 }))
        .await;
    assert_eq!(errcode(&v), 40001);
    let v = sb
        .component(
            "api_get_authorizer_info",
            &ct,
            json!({ "authorizer_appid": OA1 }),
        )
        .await;
    assert_eq!(errcode(&v), 61003);
    let last = pushes.lock().unwrap().last().cloned().unwrap();
    let plain = open_push(&last);
    assert_eq!(field(&plain, "InfoType").as_deref(), Some("unauthorized"));
    assert_eq!(field(&plain, "AuthorizerAppid").as_deref(), Some(OA1));
    let (status, _) = sb
        .post_status(&format!("/sandbox/merchants/{OA1}/cancel"), json!({}))
        .await;
    assert_eq!(status, 409);
}

#[tokio::test]
async fn authorizer_list_and_info() {
    let sb = Sb::start().await;
    let ct = sb.component_token().await;
    sb.authorize(&ct, OA2, None).await;
    sb.authorize(&ct, MP1, None).await;
    sb.authorize(&ct, OA1, None).await;
    let v = sb
        .component(
            "api_get_authorizer_list",
            &ct,
            json!({ "offset": 0, "count": 2 }),
        )
        .await;
    assert_eq!(v["total_count"], 3);
    let list: Vec<&str> = v["list"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["authorizer_appid"].as_str().unwrap())
        .collect();
    assert_eq!(list, [OA2, MP1]);
    let v = sb
        .component(
            "api_get_authorizer_list",
            &ct,
            json!({ "offset": 2, "count": 2 }),
        )
        .await;
    assert_eq!(v["list"][0]["authorizer_appid"], OA1);
    assert!(v["list"][0]["refresh_token"].is_string());
    let v = sb
        .component(
            "api_get_authorizer_list",
            &ct,
            json!({ "offset": 0, "count": 501 }),
        )
        .await;
    assert_eq!(errcode(&v), 47001);

    let mp = sb
        .component(
            "api_get_authorizer_info",
            &ct,
            json!({ "authorizer_appid": MP1 }),
        )
        .await;
    assert!(mp["authorizer_info"]["MiniProgramInfo"].is_object(), "{mp}");
    let oa = sb
        .component(
            "api_get_authorizer_info",
            &ct,
            json!({ "authorizer_appid": OA1 }),
        )
        .await;
    assert!(oa["authorizer_info"].get("MiniProgramInfo").is_none());
    assert_eq!(oa["authorizer_info"]["user_name"], "gh_oa000000000001");
    assert_eq!(oa["authorizer_info"]["service_type_info"]["id"], 2);
    assert_eq!(oa["authorizer_info"]["principal_name"], "Acme Ltd");
    assert_eq!(oa["authorization_info"]["authorizer_appid"], OA1);
    let v = sb
        .component(
            "api_get_authorizer_info",
            &ct,
            json!({ "authorizer_appid": OA3 }),
        )
        .await;
    assert_eq!(errcode(&v), 61003);
}

#[tokio::test]
async fn open_account_rules() {
    let sb = Sb::start().await;
    let ct = sb.component_token().await;
    let (at1, _) = sb.authorizer(&ct, OA1, None).await;
    let (at2, _) = sb.authorizer(&ct, OA2, None).await;
    let (at3, _) = sb.authorizer(&ct, OA3, None).await;
    let (atm, _) = sb.authorizer(&ct, MP1, None).await;

    // 89002: not bound yet.
    let v = sb
        .authorizer_api("open/get", &at1, json!({ "appid": OA1 }))
        .await;
    assert_eq!(errcode(&v), 89002);
    // 40013: the body appid must be the token's account.
    let v = sb
        .authorizer_api("open/create", &at1, json!({ "appid": OA2 }))
        .await;
    assert_eq!(errcode(&v), 40013);

    let v = sb
        .authorizer_api("open/create", &at1, json!({ "appid": OA1 }))
        .await;
    let open = v["open_appid"].as_str().expect("open_appid").to_string();
    assert_eq!(errcode(&v), 0);
    let v = sb
        .authorizer_api("open/get", &at1, json!({ "appid": OA1 }))
        .await;
    assert_eq!(v["open_appid"], open.as_str());
    // 89000: already bound (create again, or bind anything).
    let v = sb
        .authorizer_api("open/create", &at1, json!({ "appid": OA1 }))
        .await;
    assert_eq!(errcode(&v), 89000);
    let v = sb
        .authorizer_api(
            "open/bind",
            &at1,
            json!({ "appid": OA1, "open_appid": open }),
        )
        .await;
    assert_eq!(errcode(&v), 89000);
    // 89001: another subject.
    let v = sb
        .authorizer_api(
            "open/bind",
            &at3,
            json!({ "appid": OA3, "open_appid": open }),
        )
        .await;
    assert_eq!(errcode(&v), 89001);
    // 40013: unknown open account.
    let v = sb
        .authorizer_api(
            "open/bind",
            &at2,
            json!({ "appid": OA2, "open_appid": "wx00000000000000ff" }),
        )
        .await;
    assert_eq!(errcode(&v), 40013);
    // 89004: the bind limit (lowered to 2).
    sb.config(json!({ "open_account_bind_limit": 2 })).await;
    let v = sb
        .authorizer_api(
            "open/bind",
            &at2,
            json!({ "appid": OA2, "open_appid": open }),
        )
        .await;
    assert_eq!(errcode(&v), 0, "{v}");
    let v = sb
        .authorizer_api(
            "open/bind",
            &atm,
            json!({ "appid": MP1, "open_appid": open }),
        )
        .await;
    assert_eq!(errcode(&v), 89004);
    let bound = sb.get(&format!("/sandbox/open-accounts/{open}")).await;
    assert_eq!(bound["bound"], json!([OA1, OA2]));
    // 89002 on unbind from an account not bound to it.
    let v = sb
        .authorizer_api(
            "open/unbind",
            &atm,
            json!({ "appid": MP1, "open_appid": open }),
        )
        .await;
    assert_eq!(errcode(&v), 89002);
    let v = sb
        .authorizer_api(
            "open/unbind",
            &at2,
            json!({ "appid": OA2, "open_appid": open }),
        )
        .await;
    assert_eq!(errcode(&v), 0);

    // 89003: an open account registered on the website (not through the API).
    let web = sb
        .post(
            "/sandbox/open-accounts",
            json!({ "subject": "Other Co", "created_by_api": false }),
        )
        .await["open_appid"]
        .as_str()
        .unwrap()
        .to_string();
    let v = sb
        .authorizer_api(
            "open/bind",
            &at3,
            json!({ "appid": OA3, "open_appid": web }),
        )
        .await;
    assert_eq!(errcode(&v), 89003);
    let web2 = sb
        .post(
            "/sandbox/open-accounts",
            json!({ "subject": "Acme Ltd", "bind": [MP1] }),
        )
        .await["open_appid"]
        .as_str()
        .unwrap()
        .to_string();
    let v = sb
        .authorizer_api(
            "open/unbind",
            &atm,
            json!({ "appid": MP1, "open_appid": web2 }),
        )
        .await;
    assert_eq!(errcode(&v), 89003);
    let v = sb
        .authorizer_api("open/get", &atm, json!({ "appid": MP1 }))
        .await;
    assert_eq!(v["open_appid"], web2.as_str());
}

#[tokio::test]
async fn permission_sets_and_token_kinds() {
    let sb = Sb::start().await;
    let ct = sb.component_token().await;
    // Without permission set 24 the official account cannot manage open accounts.
    let (at, _) = sb.authorizer(&ct, OA1, Some(json!([1, 2, 3]))).await;
    let v = sb
        .authorizer_api("open/create", &at, json!({ "appid": OA1 }))
        .await;
    assert_eq!(errcode(&v), 48001);
    // A mini program needs 25, not 24.
    let (atm, _) = sb.authorizer(&ct, MP1, Some(json!([17, 24]))).await;
    let v = sb
        .authorizer_api("open/create", &atm, json!({ "appid": MP1 }))
        .await;
    assert_eq!(errcode(&v), 48001);
    // Parametric QR codes need a verified service account.
    let (at4, _) = sb.authorizer(&ct, OA4, None).await;
    assert_eq!(errcode(&sb.qrcode(&at4, "login-1").await), 48001);
    assert_eq!(errcode(&sb.qrcode(&at, "login-1").await), 0);
    assert_eq!(errcode(&sb.qrcode(&at, &"x".repeat(65)).await), 47001);
    assert_eq!(errcode(&sb.qrcode(&at, "").await), 47001);
    // The component token on an authorizer API, and the reverse: 40001, logged with its kind.
    let v = sb
        .authorizer_api("open/get", &ct, json!({ "appid": OA1 }))
        .await;
    assert_eq!(errcode(&v), 40001);
    let v = sb.component("api_create_preauthcode", &at, json!({})).await;
    assert_eq!(errcode(&v), 40001);
    let calls = sb.handle.calls();
    let get = calls_of(&calls, "open/get");
    assert_eq!(get.last().unwrap().token_kind, "component");
    let pre = calls_of(&calls, "api_create_preauthcode");
    let last = pre.last().unwrap();
    assert_eq!(
        (
            last.token_kind.as_str(),
            last.authorizer_appid.as_deref(),
            last.errcode
        ),
        ("authorizer", Some(OA1), 40001)
    );
}

#[tokio::test]
async fn daily_quota_gives_45009() {
    let sb = Sb::start().await;
    sb.config(json!({ "daily_quota": { "api_create_preauthcode": 2 } }))
        .await;
    let ct = sb.component_token().await;
    for _ in 0..2 {
        assert_eq!(
            errcode(&sb.component("api_create_preauthcode", &ct, json!({})).await),
            0
        );
    }
    assert_eq!(
        errcode(&sb.component("api_create_preauthcode", &ct, json!({})).await),
        45009
    );
    // A new sandbox day resets it.
    sb.advance(86_400).await;
    let ct = sb.component_token().await;
    assert_eq!(
        errcode(&sb.component("api_create_preauthcode", &ct, json!({})).await),
        0
    );
}

#[tokio::test]
async fn fault_errcode_answers_then_clears() {
    let sb = Sb::start().await;
    let ticket = sb.ticket().await;
    sb.post(
        "/sandbox/faults",
        json!({ "api": "api_component_token", "count": 2, "errcode": 61004 }),
    )
    .await;
    for _ in 0..2 {
        let v = sb.component_token_with(&ticket).await;
        assert_eq!(errcode(&v), 61004);
        assert_eq!(
            v["errmsg"],
            "invalid ip 203.0.113.7 ipv6 ::ffff:203.0.113.7, not in whitelist"
        );
    }
    assert!(sb.component_token_with(&ticket).await["component_access_token"].is_string());
    // DELETE clears pending faults.
    sb.post(
        "/sandbox/faults",
        json!({ "api": "api_component_token", "count": 5 }),
    )
    .await;
    let resp = sb
        .http
        .delete(sb.url("/sandbox/faults"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(errcode(&sb.component_token_with(&ticket).await), 0);
    let codes: Vec<i64> = calls_of(&sb.handle.calls(), "api_component_token")
        .iter()
        .map(|c| c.errcode)
        .collect();
    assert_eq!(codes, [61004, 61004, 0, 0]);
}

#[tokio::test]
async fn fault_latency_delays_the_answer() {
    let sb = Sb::start().await;
    let ct = sb.component_token().await;
    sb.post(
        "/sandbox/faults",
        json!({ "api": "api_create_preauthcode", "count": 1, "latency_ms": 800 }),
    )
    .await;
    let started = Instant::now();
    let v = sb.component("api_create_preauthcode", &ct, json!({})).await;
    assert!(started.elapsed() >= Duration::from_millis(800));
    assert!(v["pre_auth_code"].is_string(), "{v}");
    let started = Instant::now();
    sb.component("api_create_preauthcode", &ct, json!({})).await;
    assert!(started.elapsed() < Duration::from_millis(800));
}

#[tokio::test]
async fn fault_drop_times_out_the_client_but_changes_state() {
    let sb = Sb::with(SandboxConfig {
        drop_delay: Duration::from_secs(3),
        ..SandboxConfig::default()
    })
    .await;
    let ct = sb.component_token().await;
    let (at, _) = sb.authorizer(&ct, OA1, None).await;
    sb.post(
        "/sandbox/faults",
        json!({ "api": "open/create", "count": 1, "drop": true }),
    )
    .await;
    let impatient = client(Duration::from_millis(300));
    let err = impatient
        .post(sb.url(&format!("/cgi-bin/open/create?access_token={at}")))
        .json(&json!({ "appid": OA1 }))
        .send()
        .await
        .expect_err("client times out");
    assert!(err.is_timeout(), "{err}");
    // The create happened: the account is bound now.
    let v = sb
        .authorizer_api("open/get", &at, json!({ "appid": OA1 }))
        .await;
    assert!(v["open_appid"].is_string(), "{v}");
    let v = sb
        .authorizer_api("open/create", &at, json!({ "appid": OA1 }))
        .await;
    assert_eq!(errcode(&v), 89000);
}

#[tokio::test]
async fn push_is_retried_after_a_slow_first_attempt() {
    let hits = Arc::new(AtomicU32::new(0));
    let h = hits.clone();
    let log: Log = Arc::default();
    let l = log.clone();
    let url = receiver(move |c| {
        let h = h.clone();
        let l = l.clone();
        async move {
            l.lock().unwrap().push(c);
            if h.fetch_add(1, Ordering::SeqCst) == 0 {
                tokio::time::sleep(Duration::from_millis(2000)).await;
            }
            (200, "success".to_string())
        }
    })
    .await;
    let sb = Sb::with(SandboxConfig {
        component_callback_url: Some(url),
        push_deadline: Duration::from_millis(500),
        ..SandboxConfig::default()
    })
    .await;
    let v = sb.post("/sandbox/push/ticket", json!({})).await;
    assert_eq!(v["delivery"]["attempts"], 2, "{v}");
    assert_eq!(v["delivery"]["delivered"], true);
    let pushes = sb.get("/sandbox/pushes").await;
    let pushes = pushes.as_array().unwrap();
    assert_eq!(pushes.len(), 2);
    assert_eq!(pushes[0]["error"], "timeout");
    assert_eq!(pushes[0]["delivered"], false);
    assert_eq!(pushes[1]["delivered"], true);
    assert_eq!(pushes[0]["push_id"], pushes[1]["push_id"]);
    let second = log.lock().unwrap()[1].clone();
    let plain = open_push(&second);
    assert_eq!(
        field(&plain, "ComponentVerifyTicket"),
        v["ticket"].as_str().map(String::from)
    );
}

#[tokio::test]
async fn push_gives_up_after_the_configured_attempts() {
    let url = receiver(|_| async { (200, "not success".to_string()) }).await;
    let sb = Sb::start().await;
    sb.handle.set_callbacks(Some(url), None);
    let v = sb.post("/sandbox/push/ticket", json!({})).await;
    assert_eq!(v["delivery"]["attempts"], 3);
    assert_eq!(v["delivery"]["delivered"], false);
    assert_eq!(v["delivery"]["body"], "not success");
    assert_eq!(sb.handle.pushes().len(), 3);
}

#[tokio::test]
async fn scan_subscribes_a_new_follower_then_scans() {
    let (base, log) = message_receiver().await;
    let sb = Sb::start().await;
    sb.handle
        .set_callbacks(None, Some(format!("{base}/wechat/message")));
    let ct = sb.component_token().await;
    let (at, _) = sb.authorizer(&ct, OA1, None).await;
    let qr = sb.qrcode(&at, "login-42").await;
    assert_eq!(qr["expire_seconds"], 300);
    let ticket = qr["ticket"].as_str().unwrap().to_string();
    let image = sb
        .http
        .get(sb.url("/cgi-bin/showqrcode"))
        .query(&[("ticket", &ticket)])
        .send()
        .await
        .unwrap();
    assert_eq!(image.status(), 200);

    let v = sb
        .post(
            "/sandbox/users/scan",
            json!({ "user": "alice", "ticket": ticket }),
        )
        .await;
    assert_eq!(v["event"], "subscribe", "{v}");
    assert_eq!(v["status"], 200);
    assert!(
        v["reply"].as_str().unwrap().contains("got subscribe"),
        "{v}"
    );
    assert!(v["reply_error"].is_null(), "{v}");
    let first = log.lock().unwrap()[0].clone();
    assert_eq!(first.path, format!("/wechat/message/{OA1}"));
    assert_eq!(
        field(&first.body, "EventKey").as_deref(),
        Some("qrscene_login-42")
    );
    assert_eq!(field(&first.body, "Ticket"), Some(ticket.clone()));
    assert_eq!(
        field(&first.body, "ToUserName").as_deref(),
        Some("gh_oa000000000001")
    );
    let openid = field(&first.body, "FromUserName").unwrap();

    let v = sb
        .post(
            "/sandbox/users/scan",
            json!({ "user": "alice", "ticket": ticket }),
        )
        .await;
    assert_eq!(v["event"], "SCAN");
    let second = log.lock().unwrap()[1].clone();
    assert_eq!(field(&second.body, "EventKey").as_deref(), Some("login-42"));
    assert_eq!(field(&second.body, "FromUserName"), Some(openid.clone()));

    let info = sb
        .http
        .get(sb.url("/cgi-bin/user/info"))
        .query(&[
            ("access_token", at.as_str()),
            ("openid", &openid),
            ("lang", "zh_CN"),
        ])
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    assert_eq!(info["subscribe"], 1);
    assert_eq!(info["qr_scene_str"], "login-42");
    assert!(info.get("unionid").is_none(), "not bound: {info}");

    // Expired QR codes are refused and nothing is sent.
    sb.advance(301).await;
    let (status, v) = sb
        .post_status(
            "/sandbox/users/scan",
            json!({ "user": "bob", "ticket": ticket }),
        )
        .await;
    assert_eq!((status, v["error"].as_str()), (400, Some("qr_expired")));
    assert_eq!(log.lock().unwrap().len(), 2);
    let image = sb
        .http
        .get(sb.url("/cgi-bin/showqrcode"))
        .query(&[("ticket", &ticket)])
        .send()
        .await
        .unwrap();
    assert_eq!(image.status(), 404);
}

#[tokio::test]
async fn unionid_is_shared_across_bound_accounts_and_absent_when_unbound() {
    let (base, _log) = message_receiver().await;
    let sb = Sb::start().await;
    sb.handle.set_callbacks(None, Some(base));
    let ct = sb.component_token().await;
    let (at1, _) = sb.authorizer(&ct, OA1, None).await;
    let (at2, _) = sb.authorizer(&ct, OA2, None).await;
    let open = sb
        .authorizer_api("open/create", &at1, json!({ "appid": OA1 }))
        .await["open_appid"]
        .as_str()
        .unwrap()
        .to_string();
    let v = sb
        .authorizer_api(
            "open/bind",
            &at2,
            json!({ "appid": OA2, "open_appid": open }),
        )
        .await;
    assert_eq!(errcode(&v), 0);

    let mut ids = Vec::new();
    for at in [&at1, &at2] {
        let ticket = sb.qrcode(at, "s").await["ticket"]
            .as_str()
            .unwrap()
            .to_string();
        let v = sb
            .post(
                "/sandbox/users/scan",
                json!({ "user": "alice", "ticket": ticket }),
            )
            .await;
        ids.push(v["openid"].as_str().unwrap().to_string());
    }
    assert_ne!(ids[0], ids[1], "openids are per account");
    let info = |at: String, openid: String| {
        let sb = &sb;
        async move {
            sb.http
                .get(sb.url("/cgi-bin/user/info"))
                .query(&[("access_token", at.as_str()), ("openid", openid.as_str())])
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()
        }
    };
    let i1 = info(at1.clone(), ids[0].clone()).await;
    let i2 = info(at2.clone(), ids[1].clone()).await;
    assert!(i1["unionid"].is_string(), "{i1}");
    assert_eq!(i1["unionid"], i2["unionid"]);
    // Another user has another unionid.
    let ticket = sb.qrcode(&at1, "s").await["ticket"]
        .as_str()
        .unwrap()
        .to_string();
    let bob = sb
        .post(
            "/sandbox/users/scan",
            json!({ "user": "bob", "ticket": ticket }),
        )
        .await["openid"]
        .as_str()
        .unwrap()
        .to_string();
    assert_ne!(info(at1.clone(), bob).await["unionid"], i1["unionid"]);
    // An openid of another account is unknown here.
    assert_eq!(errcode(&info(at1.clone(), ids[1].clone()).await), 40003);

    let v = sb
        .authorizer_api(
            "open/unbind",
            &at2,
            json!({ "appid": OA2, "open_appid": open }),
        )
        .await;
    assert_eq!(errcode(&v), 0);
    let i2 = info(at2, ids[1].clone()).await;
    assert!(i2.get("unionid").is_none(), "{i2}");
    assert!(info(at1, ids[0].clone()).await["unionid"].is_string());
}

#[tokio::test]
async fn user_messages_events_and_custom_messages() {
    let (base, log) = message_receiver().await;
    let sb = Sb::start().await;
    sb.handle.set_callbacks(None, Some(base));
    let ct = sb.component_token().await;
    let (at, _) = sb.authorizer(&ct, "wx570bc396a51b8ff8", None).await;
    let v = sb
        .post(
            "/sandbox/users/message",
            json!({ "appid": "wx570bc396a51b8ff8", "user": "robot", "content": "TESTCOMPONENT_MSG_TYPE_TEXT" }),
        )
        .await;
    assert!(
        v["reply"]
            .as_str()
            .unwrap()
            .contains("got TESTCOMPONENT_MSG_TYPE_TEXT"),
        "{v}"
    );
    let v = sb
        .post(
            "/sandbox/users/event",
            json!({ "appid": "wx570bc396a51b8ff8", "user": "robot", "event": "LOCATION" }),
        )
        .await;
    assert!(v["reply"].as_str().unwrap().contains("got LOCATION"), "{v}");
    assert!(log.lock().unwrap()[1].body.contains("<Latitude>"));
    let openid = v["openid"].as_str().unwrap().to_string();
    let v = sb
        .authorizer_api(
            "message/custom/send",
            &at,
            json!({ "touser": openid, "msgtype": "text", "text": { "content": "code_from_api" } }),
        )
        .await;
    assert_eq!(errcode(&v), 0, "{v}");
    let v = sb
        .authorizer_api(
            "message/custom/send",
            &at,
            json!({ "touser": "o-unknown", "msgtype": "text", "text": { "content": "x" } }),
        )
        .await;
    assert_eq!(errcode(&v), 40003);
    let msgs = sb.handle.custom_messages();
    assert_eq!(msgs.len(), 1);
    assert_eq!(
        (
            msgs[0].appid.as_str(),
            msgs[0].touser.as_str(),
            msgs[0].content.as_str()
        ),
        ("wx570bc396a51b8ff8", openid.as_str(), "code_from_api")
    );
    let listed = sb.get("/sandbox/custom-messages").await;
    assert_eq!(listed[0]["content"], "code_from_api");
    // A user can act only on an authorized account.
    let (status, _) = sb
        .post_status(
            "/sandbox/users/message",
            json!({ "appid": OA3, "user": "robot", "content": "hi" }),
        )
        .await;
    assert_eq!(status, 409);
}

#[tokio::test]
async fn bad_input_gets_wechat_style_errors() {
    let sb = Sb::start().await;
    let ct = sb.component_token().await;
    let raw = |path: String, body: &'static str| {
        let sb = &sb;
        async move {
            sb.send(
                sb.http
                    .post(sb.url(&path))
                    .header("content-type", "application/json")
                    .body(body),
            )
            .await
        }
    };
    let (s, v) = raw(
        format!("/cgi-bin/component/api_create_preauthcode?component_access_token={ct}"),
        "{not json",
    )
    .await;
    assert_eq!((s, errcode(&v)), (200, 47001));
    let (_, v) = raw("/cgi-bin/component/api_component_token".into(), "[1,2]").await;
    assert_eq!(errcode(&v), 47001);
    let (_, v) = raw(
        "/cgi-bin/component/api_component_token".into(),
        "{\"component_appid\": {\"deep\": [null]}}",
    )
    .await;
    assert_eq!(errcode(&v), 41002);
    let (_, v) = sb
        .send(
            sb.http
                .get(sb.url("/cgi-bin/component/api_component_token")),
        )
        .await;
    assert_eq!(errcode(&v), 43002);
    let (s, v) = sb.send(sb.http.get(sb.url("/cgi-bin/no/such/api"))).await;
    assert_eq!(s, 404);
    assert!(v["errcode"].is_i64());
    let (s, v) = raw("/sandbox/config".into(), "nope").await;
    assert_eq!(s, 400);
    assert!(v["error"].is_string());
    let (s, _) = sb
        .post_status("/sandbox/config", json!({ "no_such_key": 1 }))
        .await;
    assert_eq!(s, 400);
    let (s, _) = sb
        .post_status("/sandbox/faults", json!({ "api": "no/such/api" }))
        .await;
    assert_eq!(s, 400);
    let (s, _) = sb
        .post_status(
            &format!("/sandbox/merchants/{OA1}/authorize"),
            json!({ "link": "::::" }),
        )
        .await;
    assert_eq!(s, 400);
    let (s, _) = sb.send(sb.http.get(sb.url("/sandbox/nothing/here"))).await;
    assert_eq!(s, 404);
    let (s, _) = sb
        .post_status(
            "/sandbox/users/scan",
            json!({ "user": "alice", "ticket": 5 }),
        )
        .await;
    assert_eq!(s, 400);
    // Still serving.
    let state = sb.get("/sandbox/state").await;
    assert!(state["merchants"].as_array().unwrap().len() >= 7);
}

#[tokio::test]
async fn control_api_merchants_and_clock() {
    let sb = Sb::start().await;
    let now = sb.get("/sandbox/clock").await["now"].as_i64().unwrap();
    sb.advance(1000).await;
    let later = sb.get("/sandbox/clock").await["now"].as_i64().unwrap();
    assert!((1000..1005).contains(&(later - now)));
    let m = sb
        .post(
            "/sandbox/merchants",
            json!({
                "appid": "wxnew0000000000001", "kind": "official_account", "subject": "Acme Ltd",
                "nick_name": "New", "user_name": "gh_new000000001", "service_type": 2,
                "verify_type": 0, "func_info": [1, 24],
            }),
        )
        .await;
    assert_eq!(m["user_name"], "gh_new000000001");
    let ct = sb.component_token().await;
    let (at, _) = sb.authorizer(&ct, "wxnew0000000000001", None).await;
    let v = sb
        .authorizer_api("open/create", &at, json!({ "appid": "wxnew0000000000001" }))
        .await;
    assert_eq!(errcode(&v), 0, "{v}");
    let state = sb.get("/sandbox/state").await;
    assert!(
        state["authorized"]
            .as_array()
            .unwrap()
            .contains(&json!("wxnew0000000000001"))
    );
    let cfg = sb.get("/sandbox/config").await;
    assert_eq!(cfg["token_overlap_secs"], 300);
    assert_eq!(cfg["daily_quota"]["per_api"]["api_component_token"], 2000);
}
