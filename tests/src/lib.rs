//! Test support for wxopen: moto-backed AWS clients, unique tables and secrets, signed push
//! requests, and the wechatpy interop shim.
//!
//! moto is required: `make test` starts it and sets `AWS_ENDPOINT_URL`. A test that needs it and
//! does not find it fails; it never passes silently.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

use aws_sdk_dynamodb::types::AttributeValue;
use lambda_http::{Body, Request, RequestExt};
use wxopen::crypto::{self, AesKey};
use wxopen::store::DynamoStore;

pub const APPID: &str = "wx1234567890abcdef";
pub const APPSECRET: &str = "component-appsecret-for-tests";
pub const TOKEN: &str = "wxopen-test-token";
pub const AES_KEY: &str = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG";
/// The HMAC key of the local reply hook (`reply_hook_secret` in the credentials secret).
pub const HOOK_SECRET: &str = "local-reply-hook-secret";

/// The credentials secret JSON for the test component.
pub fn credentials_json() -> String {
    serde_json::json!({
        "component_appid": APPID,
        "component_appsecret": APPSECRET,
        "token": TOKEN,
        "encoding_aes_key": AES_KEY,
        "reply_hook_secret": HOOK_SECRET,
    })
    .to_string()
}

/// Shared AWS config pointed at moto. Panics (fails the test) if moto is not configured.
pub async fn aws_config() -> aws_config::SdkConfig {
    let endpoint = std::env::var("AWS_ENDPOINT_URL").unwrap_or_default();
    assert!(
        endpoint.starts_with("http://127.0.0.1") || endpoint.starts_with("http://localhost"),
        "AWS_ENDPOINT_URL must point at a local moto server (got {endpoint:?}); run `make test`, which starts moto"
    );
    aws_config::load_from_env().await
}

/// A publisher to moto's `default` bus (for handler tests that do not read the events).
pub async fn default_bus_publisher() -> wxopen::events::EventBridgePublisher {
    wxopen::events::EventBridgePublisher::new(
        aws_sdk_eventbridge::Client::new(&aws_config().await),
        "default",
    )
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A name unique to this process and call, so parallel tests never collide.
pub fn unique(prefix: &str) -> String {
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::SeqCst)
    )
}

/// Counts DynamoDB requests by operation name (an SDK interceptor: every real request counts).
#[derive(Debug, Clone, Default)]
pub struct OpCounter(
    std::sync::Arc<std::sync::Mutex<BTreeMap<String, u64>>>,
    /// Throttling and transient errors injected into this client's requests (off by default).
    pub DynamoFaults,
);

impl OpCounter {
    pub fn snapshot(&self) -> BTreeMap<String, u64> {
        self.0.lock().map(|m| m.clone()).unwrap_or_default()
    }
    pub fn total(&self) -> u64 {
        self.snapshot().values().sum()
    }
    pub fn reset(&self) {
        if let Ok(mut m) = self.0.lock() {
            m.clear();
        }
    }
}

impl aws_sdk_dynamodb::config::Intercept for OpCounter {
    fn name(&self) -> &'static str {
        "OpCounter"
    }

    /// Counts each request put on the wire (retries included), named by its `X-Amz-Target`.
    fn read_before_transmit(
        &self,
        context: &aws_sdk_dynamodb::config::interceptors::BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &aws_sdk_dynamodb::config::RuntimeComponents,
        _cfg: &mut aws_sdk_dynamodb::config::ConfigBag,
    ) -> Result<(), aws_smithy_runtime_api::box_error::BoxError> {
        let op = context
            .request()
            .headers()
            .get("x-amz-target")
            .and_then(|t| t.rsplit('.').next())
            .unwrap_or("unknown")
            .to_string();
        if let Ok(mut m) = self.0.lock() {
            *m.entry(op).or_default() += 1;
        }
        Ok(())
    }
}

/// DynamoDB throttling and transient errors, injected by an SDK interceptor (issue 21).
///
/// A request chosen (seeded, `rate_ppm` per million) never reaches the table: in
/// `modify_before_transmit` it is rewritten into a harmless `ListTables`, and in
/// `modify_before_deserialization` moto's answer is replaced by a modelled DynamoDB error
/// (`400 ProvisionedThroughputExceededException` or `500 InternalServerError`), so the SDK's
/// retry classifier sees exactly what DynamoDB sends when it throttles: a retryable error and
/// nothing written. Each attempt decides afresh (retries can be throttled too).
#[derive(Debug, Clone, Default)]
pub struct DynamoFaults(std::sync::Arc<DynamoFaultState>);

#[derive(Debug, Default)]
pub struct DynamoFaultState {
    seed: std::sync::atomic::AtomicU64,
    rate_ppm: std::sync::atomic::AtomicU64,
    seq: std::sync::atomic::AtomicU64,
    throttled: std::sync::atomic::AtomicU64,
    internal_errors: std::sync::atomic::AtomicU64,
}

/// This attempt's injected fault, from `modify_before_transmit` to `modify_before_deserialization`.
#[derive(Debug, Clone)]
struct InjectedFault(Option<bool>);

impl aws_smithy_types::config_bag::Storable for InjectedFault {
    type Storer = aws_smithy_types::config_bag::StoreReplace<Self>;
}

impl DynamoFaults {
    /// Turns `rate_ppm` of the requests from now on into throttling (two thirds) or a 500.
    pub fn set(&self, seed: u64, rate_ppm: u64) {
        use std::sync::atomic::Ordering::SeqCst;
        self.0.seed.store(seed, SeqCst);
        self.0.rate_ppm.store(rate_ppm, SeqCst);
    }
    /// (throttled, internal errors) injected so far.
    pub fn injected(&self) -> (u64, u64) {
        use std::sync::atomic::Ordering::SeqCst;
        (
            self.0.throttled.load(SeqCst),
            self.0.internal_errors.load(SeqCst),
        )
    }
    fn draw(&self) -> Option<bool> {
        use std::sync::atomic::Ordering::SeqCst;
        let rate = self.0.rate_ppm.load(SeqCst);
        if rate == 0 {
            return None;
        }
        let n = self.0.seq.fetch_add(1, SeqCst);
        // splitmix64 of (seed, n): deterministic for a given order of requests.
        let mut z = self.0.seed.load(SeqCst) ^ n.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        (z % 1_000_000 < rate).then_some(!z.is_multiple_of(3))
    }
}

impl aws_sdk_dynamodb::config::Intercept for DynamoFaults {
    fn name(&self) -> &'static str {
        "DynamoFaults"
    }

    fn modify_before_transmit(
        &self,
        context: &mut aws_sdk_dynamodb::config::interceptors::BeforeTransmitInterceptorContextMut<
            '_,
        >,
        _runtime_components: &aws_sdk_dynamodb::config::RuntimeComponents,
        cfg: &mut aws_sdk_dynamodb::config::ConfigBag,
    ) -> Result<(), aws_smithy_runtime_api::box_error::BoxError> {
        let fault = self.draw();
        if fault.is_some() {
            let request = context.request_mut();
            request
                .headers_mut()
                .insert("x-amz-target", "DynamoDB_20120810.ListTables");
            request.headers_mut().insert("content-length", "11");
            *request.body_mut() = aws_smithy_types::body::SdkBody::from(r#"{"Limit":1}"#);
        }
        cfg.interceptor_state().store_put(InjectedFault(fault));
        Ok(())
    }

    fn modify_before_deserialization(
        &self,
        context: &mut aws_sdk_dynamodb::config::interceptors::BeforeDeserializationInterceptorContextMut<'_>,
        _runtime_components: &aws_sdk_dynamodb::config::RuntimeComponents,
        cfg: &mut aws_sdk_dynamodb::config::ConfigBag,
    ) -> Result<(), aws_smithy_runtime_api::box_error::BoxError> {
        use std::sync::atomic::Ordering::SeqCst;
        let Some(InjectedFault(Some(throttle))) = cfg.load::<InjectedFault>().cloned() else {
            return Ok(());
        };
        let (status, kind) = if throttle {
            self.0.throttled.fetch_add(1, SeqCst);
            (400u16, "ProvisionedThroughputExceededException")
        } else {
            self.0.internal_errors.fetch_add(1, SeqCst);
            (500u16, "InternalServerError")
        };
        let body = format!(
            r#"{{"__type":"com.amazonaws.dynamodb.v20120810#{kind}","message":"injected by the soak"}}"#
        );
        let mut response = aws_smithy_runtime_api::http::Response::new(
            aws_smithy_runtime_api::http::StatusCode::try_from(status)?,
            aws_smithy_types::body::SdkBody::from(body),
        );
        response
            .headers_mut()
            .insert("content-type", "application/x-amz-json-1.0");
        *context.response_mut() = response;
        Ok(())
    }
}

/// A fresh table whose client counts every DynamoDB request.
pub async fn fresh_counted_store() -> (DynamoStore, OpCounter) {
    let config = aws_config().await;
    let counter = OpCounter::default();
    let client = aws_sdk_dynamodb::Client::from_conf(
        aws_sdk_dynamodb::config::Builder::from(&config)
            .interceptor(counter.1.clone())
            .interceptor(counter.clone())
            .build(),
    );
    let table = unique("wxopen-test");
    wxopen::store::dynamo::create_table(&client, &table)
        .await
        .expect("create table on moto");
    counter.reset();
    (DynamoStore::new(client, table), counter)
}

/// A fresh table (as template.yaml declares it) on moto.
pub async fn fresh_store() -> DynamoStore {
    let config = aws_config().await;
    let client = aws_sdk_dynamodb::Client::new(&config);
    let table = unique("wxopen-test");
    wxopen::store::dynamo::create_table(&client, &table)
        .await
        .expect("create table on moto");
    DynamoStore::new(client, table)
}

/// A fresh secret on moto holding `json`; returns its ARN.
pub async fn fresh_secret(json: &str) -> (aws_sdk_secretsmanager::Client, String) {
    let config = aws_config().await;
    let client = aws_sdk_secretsmanager::Client::new(&config);
    let out = client
        .create_secret()
        .name(unique("wxopen-test-secret"))
        .secret_string(json)
        .send()
        .await
        .expect("create secret on moto");
    let arn = out.arn().expect("secret ARN").to_string();
    (client, arn)
}

/// Every item of the table, keyed by (pk, sk), as canonical JSON: for "nothing changed" checks.
pub async fn scan_all(store: &DynamoStore) -> BTreeMap<(String, String), String> {
    let mut out = BTreeMap::new();
    let mut start = None;
    loop {
        let page = store
            .client()
            .scan()
            .table_name(store.table())
            .consistent_read(true)
            .set_exclusive_start_key(start)
            .send()
            .await
            .expect("scan");
        for item in page.items.unwrap_or_default() {
            let key = |k: &str| match item.get(k) {
                Some(AttributeValue::S(s)) => s.clone(),
                other => format!("{other:?}"),
            };
            // As JSON: nested maps sorted, so equal items compare equal.
            let (pk, sk) = (key("pk"), key("sk"));
            let json: serde_json::Value = serde_dynamo::from_item(item).expect("item as JSON");
            out.insert((pk, sk), json.to_string());
        }
        start = page.last_evaluated_key;
        if start.is_none() {
            return out;
        }
    }
}

/// The QR ticket of a login session (`POST /login/sessions`): the `ticket` query parameter of
/// its `qr_url`, which the sandbox's user scans.
pub fn ticket_of(session: &serde_json::Value) -> Result<String, String> {
    let qr = session["qr_url"]
        .as_str()
        .ok_or_else(|| format!("no qr_url in {session}"))?;
    url::Url::parse(qr)
        .map_err(|e| format!("qr_url {qr}: {e}"))?
        .query_pairs()
        .find(|(k, _)| k == "ticket")
        .map(|(_, v)| v.into_owned())
        .ok_or_else(|| format!("no ticket in qr_url {qr}"))
}

/// Builds the XML of a component push.
pub fn ticket_xml(ticket: &str, create_time: i64) -> String {
    format!(
        "<xml><AppId><![CDATA[{APPID}]]></AppId><CreateTime>{create_time}</CreateTime><InfoType><![CDATA[component_verify_ticket]]></InfoType><ComponentVerifyTicket><![CDATA[{ticket}]]></ComponentVerifyTicket></xml>"
    )
}

pub fn authorized_xml(kind: &str, authorizer: &str, code: &str, create_time: i64) -> String {
    format!(
        "<xml><AppId><![CDATA[{APPID}]]></AppId><CreateTime>{create_time}</CreateTime><InfoType><![CDATA[{kind}]]></InfoType><AuthorizerAppid><![CDATA[{authorizer}]]></AuthorizerAppid><AuthorizationCode><![CDATA[{code}]]></AuthorizationCode><AuthorizationCodeExpiredTime>{}</AuthorizationCodeExpiredTime><PreAuthCode><![CDATA[preauthcode@@@x]]></PreAuthCode></xml>",
        create_time + 3600
    )
}

pub fn unauthorized_xml(authorizer: &str, create_time: i64) -> String {
    format!(
        "<xml><AppId><![CDATA[{APPID}]]></AppId><CreateTime>{create_time}</CreateTime><InfoType><![CDATA[unauthorized]]></InfoType><AuthorizerAppid><![CDATA[{authorizer}]]></AuthorizerAppid></xml>"
    )
}

/// A push as WeChat would send it: encrypted body plus signed query parameters.
#[derive(Debug, Clone)]
pub struct SignedPush {
    pub query: HashMap<String, String>,
    pub body: String,
}

impl SignedPush {
    /// Encrypts `plain` for `appid` with the test key and signs it with the test token.
    pub fn new(plain: &str, appid: &str, timestamp: i64, nonce: &str) -> Self {
        Self::with_key(plain, appid, timestamp, nonce, AES_KEY)
    }

    /// Encrypts with another EncodingAESKey (a key rotation: WeChat still using the old one).
    pub fn with_key(
        plain: &str,
        appid: &str,
        timestamp: i64,
        nonce: &str,
        encoding_aes_key: &str,
    ) -> Self {
        let key = AesKey::from_encoding_aes_key(encoding_aes_key).expect("test key");
        let ts = timestamp.to_string();
        let sealed = crypto::seal(&key, TOKEN, appid, plain, &ts, nonce).expect("seal");
        let body = format!(
            "<xml><AppId><![CDATA[{appid}]]></AppId><Encrypt><![CDATA[{}]]></Encrypt></xml>",
            sealed.encrypt
        );
        let query = HashMap::from([
            ("timestamp".to_string(), ts.clone()),
            ("nonce".to_string(), nonce.to_string()),
            ("encrypt_type".to_string(), "aes".to_string()),
            ("msg_signature".to_string(), sealed.msg_signature),
            (
                "signature".to_string(),
                crypto::url_signature(TOKEN, &ts, nonce),
            ),
        ]);
        Self { query, body }
    }

    pub fn component(plain: &str, timestamp: i64, nonce: &str) -> Self {
        Self::new(plain, APPID, timestamp, nonce)
    }

    pub fn request(&self) -> Request {
        request(
            "POST",
            "/wechat/component",
            &self.query,
            Body::from(self.body.clone()),
        )
    }

    /// The push as a message-URL request for `appid` (path parameter set as API Gateway would).
    pub fn request_to(&self, path: &str, appid: &str) -> Request {
        request("POST", path, &self.query, Body::from(self.body.clone()))
            .with_path_parameters(HashMap::from([("appid".to_string(), appid.to_string())]))
    }
}

/// A lambda_http request as API Gateway would hand it to a handler.
pub fn request(method: &str, path: &str, query: &HashMap<String, String>, body: Body) -> Request {
    let req = lambda_http::http::Request::builder()
        .method(method)
        .uri(path)
        .body(body)
        .expect("static request parts");
    req.with_query_string_parameters(query.clone())
}

/// Runs a Python shim of `tests/py/` with one JSON request on stdin; its JSON answer. Fails the
/// test if Python (the venv's, with wechatpy) is missing or the shim fails.
fn python_shim(script: &str, req: &serde_json::Value) -> serde_json::Value {
    let python = std::env::var("WXOPEN_PYTHON").unwrap_or_else(|_| {
        panic!("WXOPEN_PYTHON must name the venv's python with wechatpy installed; run `make test`")
    });
    let script = format!("{}/py/{script}", env!("CARGO_MANIFEST_DIR"));
    let mut child = Command::new(python)
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start python");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(req.to_string().as_bytes())
        .expect("write request");
    let out = child.wait_with_output().expect("python finished");
    assert!(
        out.status.success(),
        "wechatpy shim failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("shim JSON")
}

/// Runs the wechatpy interop shim (`py/wechatpy_interop.py`) with one JSON request.
pub fn wechatpy(req: &serde_json::Value) -> serde_json::Value {
    python_shim("wechatpy_interop.py", req)
}

/// Runs the wechatpy replies shim (`py/wechatpy_replies.py`): decrypts a reply envelope and
/// compares it with wechatpy's own rendering.
pub fn wechatpy_replies(req: &serde_json::Value) -> serde_json::Value {
    python_shim("wechatpy_replies.py", req)
}

/// The text of `<name>…</name>` in a small XML document (CDATA unwrapped), or "".
pub fn xml_tag(xml: &str, name: &str) -> String {
    xml.split(&format!("<{name}>"))
        .nth(1)
        .and_then(|r| r.split(&format!("</{name}>")).next())
        .unwrap_or_default()
        .trim_start_matches("<![CDATA[")
        .trim_end_matches("]]>")
        .to_string()
}

/// Every credential value a run produced, to look for where none may appear (events, logs):
/// the component's secrets, the tokens, tickets and codes in the table, the tickets and codes
/// the sandbox pushed, and every token, ticket, code and QR ticket in the sandbox's state.
pub async fn credential_values(
    store: &DynamoStore,
    sandbox: &sandbox::SandboxHandle,
) -> Vec<String> {
    let mut out = vec![
        APPSECRET.to_string(),
        TOKEN.to_string(),
        AES_KEY.to_string(),
        HOOK_SECRET.to_string(),
    ];
    let items = store
        .client()
        .scan()
        .table_name(store.table())
        .send()
        .await
        .map(|s| s.items.unwrap_or_default())
        .unwrap_or_default();
    for item in items {
        for attr in [
            "access_token",
            "refresh_token",
            "ticket",
            "authorization_code",
        ] {
            if let Some(AttributeValue::S(v)) = item.get(attr) {
                out.push(v.clone());
            }
        }
    }
    for push in sandbox.pushes() {
        for tag in [
            "ComponentVerifyTicket",
            "AuthorizationCode",
            "PreAuthCode",
            "Ticket",
        ] {
            for part in push.plaintext.split(&format!("<{tag}><![CDATA[")).skip(1) {
                if let Some(v) = part.split("]]>").next() {
                    out.push(v.to_string());
                }
            }
        }
    }
    let state = sandbox.state().to_string();
    for prefix in [
        "ticket@@@",
        "componentaccesstoken@@@",
        "authorizeraccesstoken@@@",
        "refreshtoken@@@",
        "queryauthcode@@@",
        "preauthcode@@@",
        "\"gQ",
    ] {
        for part in state.split(prefix).skip(1) {
            let v: String = part
                .chars()
                .take_while(|c| {
                    c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '=' | '+' | '/')
                })
                .collect();
            if !v.is_empty() {
                out.push(format!("{}{v}", prefix.trim_start_matches('"')));
            }
        }
    }
    out.retain(|s| s.len() >= 8);
    out.sort();
    out.dedup();
    out
}

/// A WeChat client pointed at a closed loopback port (for tests that must not reach WeChat).
pub fn unreachable_wechat() -> wxopen::wechat::WeChatClient {
    wxopen::wechat::WeChatClient::new("http://127.0.0.1:9", std::time::Duration::from_millis(500))
        .expect("client")
}

/// Body of a handler response as text.
pub fn body_text(resp: &lambda_http::Response<Body>) -> String {
    match resp.body() {
        Body::Text(t) => t.clone(),
        Body::Binary(b) => String::from_utf8_lossy(b).into_owned(),
        _ => String::new(),
    }
}
pub mod bus;
pub mod gateway;
pub mod hook;
pub mod iam;
pub mod releases;
pub mod sandbox;
pub mod site;
pub mod soak;
pub mod stack;
pub mod story;

/// Everything the process logs, at TRACE, as JSON lines: one global subscriber for the whole test
/// binary (a process has one), so every test that checks log lines reads the same capture and
/// looks for its own markers. Installed by the first caller.
#[derive(Clone, Default)]
pub struct LogCapture(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl LogCapture {
    /// The global capture, installing it on first use.
    pub fn global() -> LogCapture {
        static CAPTURE: std::sync::OnceLock<LogCapture> = std::sync::OnceLock::new();
        CAPTURE
            .get_or_init(|| {
                let c = LogCapture::default();
                wxopen::logging::init_with_writer("trace", true, c.clone());
                c
            })
            .clone()
    }

    /// What was logged so far.
    pub fn text(&self) -> String {
        self.0
            .lock()
            .map(|v| String::from_utf8_lossy(&v).into_owned())
            .unwrap_or_default()
    }
}

impl Write for LogCapture {
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

impl<'a> lambda_http::tracing::subscriber::fmt::MakeWriter<'a> for LogCapture {
    type Writer = LogCapture;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

/// A `multipart/form-data` body with one file part `media` (`logo.png`, `image/png`), as WeChat's
/// media uploads take it; send it with `content-type: multipart/form-data; boundary={boundary}`.
pub fn media_multipart(boundary: &str, bytes: &[u8]) -> Vec<u8> {
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"media\"; filename=\"logo.png\"\r\nContent-Type: image/png\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(bytes);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    body
}
