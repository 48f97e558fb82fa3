//! The WeChat API gateway's handler against moto (tokens in DynamoDB, credentials), the sandbox
//! (token issue, refresh and invalidation, over real HTTP) and a stand-in WeChat API host started
//! here, which records every request it receives.
//!
//! The stand-in serves the business APIs itself (`cgi-bin/menu/create`, `user/get`, `media/…`,
//! quota APIs) and passes the token APIs (`/cgi-bin/component/…`) through to the sandbox, so the
//! token service refreshes against the real sandbox. It accepts a token only if it is the one
//! the sandbox currently holds for that account *and* the sandbox still accepts it (expiry):
//! "the call carried the current token" is checked by WeChat's stand-in itself.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use futures_util::future::join_all;
use lambda_http::{Body, Request, RequestExt};
use secrecy::ExposeSecret;
use serde_json::{Value, json};
use wechat_gateway::App;
use wxopen::app::Deps;
use wxopen::clock::SystemClock;
use wxopen::gateway::GatewaySettings;
use wxopen::gateway::metrics::CallRecord;
use wxopen::model::TokenKey;
use wxopen::secrets::StaticCredentials;
use wxopen::store::{DynamoStore, TokenStore};
use wxopen::wechat::WeChatClient;
use wxopen_tests::stack::Stack;
use wxopen_tests::{APPID, APPSECRET};

const OA1: &str = "wxoa00000000000001";
const OA2: &str = "wxoa00000000000002";

// ------------------------------------------------------------------------------ the stand-in

/// One request the stand-in received.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    path: String,
    raw_query: String,
    query: Vec<(String, String)>,
    headers: HeaderMap,
    body: Vec<u8>,
    /// Passed through to the sandbox (token APIs) rather than served here.
    passed_through: bool,
    /// The token was the sandbox's current one and the sandbox accepted it.
    token_current: bool,
}

impl Seen {
    fn param(&self, name: &str) -> Vec<&str> {
        self.query
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

struct StandIn {
    sandbox: String,
    http: reqwest::Client,
    log: Mutex<Vec<Seen>>,
    /// Keys of `cgi-bin/flaky` calls answered once already.
    flaky: Mutex<HashSet<String>>,
}

/// Bytes that are not UTF-8 (so they must travel as binary end to end).
fn media_bytes(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 7 % 256) as u8).rev().collect()
}

const MEDIA_DISPOSITION: &str = "attachment; filename=\"MEDIA_ID.jpg\"";

impl StandIn {
    async fn sandbox_state(&self) -> Value {
        self.http
            .get(format!("{}/sandbox/state", self.sandbox))
            .send()
            .await
            .expect("sandbox state")
            .json()
            .await
            .expect("state JSON")
    }

    /// The sandbox's verdict on a token it issued (expiry, revocation), by a read-only call.
    async fn sandbox_accepts(&self, token: &str, owner: Option<&str>) -> bool {
        let (url, body) = match owner {
            Some(appid) => (
                format!("{}/cgi-bin/open/get?access_token={token}", self.sandbox),
                json!({ "appid": appid }),
            ),
            None => (
                format!(
                    "{}/cgi-bin/component/api_get_authorizer_info?component_access_token={token}",
                    self.sandbox
                ),
                json!({ "component_appid": APPID, "authorizer_appid": OA1 }),
            ),
        };
        let answer: Value = self
            .http
            .post(url)
            .json(&body)
            .send()
            .await
            .expect("sandbox")
            .json()
            .await
            .expect("sandbox JSON");
        !matches!(
            answer["errcode"].as_i64(),
            Some(40001 | 40014 | 41001 | 42001)
        )
    }

    /// Whether `token` (access_token or component_access_token) is the current one.
    async fn token_current(&self, seen: &Seen) -> bool {
        let state = self.sandbox_state().await;
        if let Some(t) = seen.param("access_token").first().copied() {
            if state["component_access_token"] == t {
                return self.sandbox_accepts(t, None).await;
            }
            let owner = state["merchants"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|m| m["authorizer_access_token"] == t)
                .and_then(|m| m["appid"].as_str())
                .map(str::to_string);
            return match owner {
                Some(appid) => self.sandbox_accepts(t, Some(&appid)).await,
                None => false,
            };
        }
        match seen.param("component_access_token").first().copied() {
            Some(t) => state["component_access_token"] == t && self.sandbox_accepts(t, None).await,
            None => false,
        }
    }

    fn seen(&self) -> Vec<Seen> {
        self.log.lock().unwrap().clone()
    }

    /// Requests the stand-in served itself (not the token APIs it passed on).
    fn served(&self) -> Vec<Seen> {
        self.seen()
            .into_iter()
            .filter(|s| !s.passed_through)
            .collect()
    }
}

fn json_answer(v: Value) -> Response {
    (
        StatusCode::OK,
        [("content-type", "application/json; encoding=utf-8")],
        v.to_string(),
    )
        .into_response()
}

async fn serve(
    State(s): State<Arc<StandIn>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_string();
    let raw_query = uri.query().unwrap_or_default().to_string();
    let query: Vec<(String, String)> = url::form_urlencoded::parse(raw_query.as_bytes())
        .into_owned()
        .collect();
    let mut seen = Seen {
        method: method.to_string(),
        path: path.clone(),
        raw_query: raw_query.clone(),
        query,
        headers: headers.clone(),
        body: body.to_vec(),
        passed_through: false,
        token_current: false,
    };
    // Token and component APIs: the sandbox's (except the secret-bearing quota reset, served here).
    if path.starts_with("/cgi-bin/component/") && path != "/cgi-bin/component/clear_quota/v2" {
        seen.passed_through = true;
        s.log.lock().unwrap().push(seen);
        let mut req = s
            .http
            .request(method, format!("{}{}?{}", s.sandbox, path, raw_query))
            .body(body.to_vec());
        if let Some(ct) = headers.get("content-type") {
            req = req.header("content-type", ct.as_bytes());
        }
        let resp = req.send().await.expect("sandbox answers");
        let status = resp.status().as_u16();
        let bytes = resp.bytes().await.unwrap_or_default();
        return (
            StatusCode::from_u16(status).unwrap(),
            [("content-type", "application/json; encoding=utf-8")],
            bytes.to_vec(),
        )
            .into_response();
    }
    seen.token_current =
        path == "/cgi-bin/component/clear_quota/v2" || s.token_current(&seen).await;
    s.log.lock().unwrap().push(seen.clone());
    if !seen.token_current {
        return json_answer(json!({"errcode": 40001, "errmsg": "invalid credential"}));
    }
    let body_json: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    match (seen.method.as_str(), path.as_str()) {
        ("POST", "/cgi-bin/menu/create") if body_json["button"].is_array() => {
            json_answer(json!({"errcode": 0, "errmsg": "ok"}))
        }
        ("POST", "/cgi-bin/menu/create") => {
            json_answer(json!({"errcode": 47001, "errmsg": "data format error"}))
        }
        ("GET", "/cgi-bin/user/get") => json_answer(json!({
            "total": 2,
            "count": 2,
            "data": {"openid": ["o_alice", "o_bob"]},
            "next_openid": seen.param("next_openid").first().copied().unwrap_or(""),
        })),
        ("POST", "/cgi-bin/media/upload") => json_answer(json!({
            "type": seen.param("type").first().copied().unwrap_or(""),
            "media_id": format!("MEDIA_{}", body.len()),
            "created_at": 1_700_000_000,
        })),
        ("GET", "/cgi-bin/media/get") => {
            let n: usize = seen
                .param("size")
                .first()
                .and_then(|s| s.parse().ok())
                .unwrap_or(4096);
            (
                StatusCode::OK,
                [
                    ("content-type", "image/jpeg"),
                    ("content-disposition", MEDIA_DISPOSITION),
                    ("cache-control", "no-cache"),
                ],
                media_bytes(n),
            )
                .into_response()
        }
        ("POST", "/cgi-bin/message/custom/send") => {
            json_answer(json!({"errcode": 45009, "errmsg": "reach max api daily quota limit"}))
        }
        (_, "/cgi-bin/flaky") => {
            let key = format!("{}:{}", seen.method, seen.param("key").join(","));
            if s.flaky.lock().unwrap().insert(key) {
                json_answer(json!({"errcode": -1, "errmsg": "system error"}))
            } else {
                json_answer(json!({"errcode": 0, "errmsg": "ok"}))
            }
        }
        ("GET", "/cgi-bin/redirect") => {
            let host = headers
                .get("host")
                .and_then(|h| h.to_str().ok())
                .unwrap_or_default();
            (
                StatusCode::FOUND,
                [("location", format!("http://{host}/evil/steal"))],
            )
                .into_response()
        }
        ("GET", "/wxa/gettemplatelist") => {
            json_answer(json!({"errcode": 0, "errmsg": "ok", "template_list": []}))
        }
        ("POST", "/cgi-bin/openapi/quota/get") => json_answer(json!({
            "errcode": 0,
            "errmsg": "ok",
            "quota": {"daily_limit": 100, "used": 3, "remain": 97},
            "rate_limit": {"call_count": 10, "refresh_second": 60},
            "component_rate_limit": {"call_count": 5, "refresh_second": 60},
        })),
        ("POST", "/cgi-bin/clear_quota") if body_json["appid"].is_string() => {
            json_answer(json!({"errcode": 0, "errmsg": "ok"}))
        }
        ("POST", "/cgi-bin/openapi/quota/clear") => json_answer(
            json!({"errcode": 48006, "errmsg": "forbid to clear quota because of reaching the limit"}),
        ),
        ("POST", "/cgi-bin/component/clear_quota/v2")
            if body_json["component_appid"] == APPID && body_json["appsecret"] == APPSECRET =>
        {
            json_answer(json!({"errcode": 0, "errmsg": "ok"}))
        }
        _ => json_answer(json!({"errcode": 48001, "errmsg": "api unauthorized"})),
    }
}

async fn start_stand_in(sandbox: String) -> (Arc<StandIn>, String) {
    let state = Arc::new(StandIn {
        sandbox,
        http: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
        log: Mutex::new(Vec::new()),
        flaky: Mutex::new(HashSet::new()),
    });
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let router = axum::Router::new()
        .fallback(serve)
        .with_state(state.clone());
    tokio::spawn(async move {
        axum::serve(listener, router).await.unwrap();
    });
    (state, base)
}

// ------------------------------------------------------------------------------ the world

type GatewayApp = App<DynamoStore, Arc<StaticCredentials>, SystemClock>;

struct World {
    stack: Stack,
    stand_in: Arc<StandIn>,
    stand_in_base: String,
}

impl World {
    /// moto, the sandbox with a ticket and `OA1` authorized, and the stand-in.
    async fn start() -> Self {
        let stack = Stack::start().await;
        stack.push_ticket().await;
        stack.authorize(OA1, "push_only").await;
        let (stand_in, stand_in_base) = start_stand_in(stack.sandbox.base_url()).await;
        Self {
            stack,
            stand_in,
            stand_in_base,
        }
    }

    /// A gateway function instance (its own warm cache) whose WeChat host is the stand-in.
    fn app_with(&self, settings: GatewaySettings) -> GatewayApp {
        App::new(
            Deps {
                store: self.stack.store.clone(),
                credentials: self.stack.credentials.clone(),
                clock: SystemClock,
                wechat: WeChatClient::new(&self.stand_in_base, Duration::from_secs(5)).unwrap(),
                tuning: Default::default(),
            },
            settings,
        )
    }

    fn app(&self) -> GatewayApp {
        self.app_with(GatewaySettings::default())
    }

    async fn stored_token(&self, key: TokenKey) -> (String, u64) {
        let t = self.stack.store.get_token(&key).await.unwrap().unwrap();
        (
            t.access_token.unwrap().expose_secret().to_string(),
            t.version,
        )
    }
}

/// A request as API Gateway hands it to the function: raw path and query in the URI, the
/// parsed query as the extension, the caller's headers (SigV4 ones included).
fn request(method: &str, path_and_query: &str, headers: &[(&str, &str)], body: Body) -> Request {
    let mut b = lambda_http::http::Request::builder()
        .method(method)
        .uri(path_and_query)
        .header("authorization", "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20260101/us-east-1/execute-api/aws4_request, Signature=abc")
        .header("x-amz-date", "20260101T000000Z")
        .header("x-amz-security-token", "session-token")
        .header("cookie", "a=b");
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    let req = b.body(body).unwrap();
    let mut params: HashMap<String, Vec<String>> = HashMap::new();
    if let Some(q) = req.uri().query() {
        for (k, v) in url::form_urlencoded::parse(q.as_bytes()).into_owned() {
            params.entry(k).or_default().push(v);
        }
    }
    req.with_query_string_parameters(params)
}

fn bytes(resp: &lambda_http::Response<Body>) -> Vec<u8> {
    match resp.body() {
        Body::Text(t) => t.as_bytes().to_vec(),
        Body::Binary(b) => b.clone(),
        _ => Vec::new(),
    }
}

fn header<'r>(resp: &'r lambda_http::Response<Body>, name: &str) -> Option<&'r str> {
    resp.headers().get(name).and_then(|v| v.to_str().ok())
}

fn json_body(resp: &lambda_http::Response<Body>) -> Value {
    serde_json::from_slice(&bytes(resp)).unwrap_or(Value::Null)
}

async fn call(app: &GatewayApp, req: Request) -> (lambda_http::Response<Body>, CallRecord) {
    wechat_gateway::process(app, &req).await
}

// ------------------------------------------------------------------------------ the tests

#[tokio::test]
async fn json_get_multipart_and_binary_pass_through_with_the_current_token() {
    let w = World::start().await;
    let app = w.app();
    let (current, version) = w.stored_token(TokenKey::Authorizer(OA1.into())).await;
    let base = format!("/authorizers/{OA1}/wechat");

    // JSON POST; the caller's own access_token is dropped.
    let menu = json!({"button": [{"type": "click", "name": "Hi", "key": "K1"}]}).to_string();
    let (resp, rec) = call(
        &app,
        request(
            "POST",
            &format!("{base}/cgi-bin/menu/create?access_token=stolen"),
            &[("content-type", "application/json")],
            Body::Text(menu.clone()),
        ),
    )
    .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(bytes(&resp), br#"{"errcode":0,"errmsg":"ok"}"#);
    assert_eq!(
        header(&resp, "content-type"),
        Some("application/json; encoding=utf-8")
    );
    assert_eq!(header(&resp, "x-wxopen-authorizer"), Some(OA1));
    assert_eq!(
        header(&resp, "x-wxopen-token-version"),
        Some(version.to_string().as_str())
    );
    assert_eq!(header(&resp, "x-wxopen-errcode"), None);
    assert_eq!(
        (rec.outcome, rec.errcode, rec.attempts),
        ("answered", Some(0), 1)
    );

    // GET with a query (encoded `+` kept as the caller encoded it).
    let (resp, _) = call(
        &app,
        request(
            "GET",
            &format!("{base}/cgi-bin/user/get?next_openid=o%2Babc&component_access_token=x"),
            &[],
            Body::Empty,
        ),
    )
    .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(json_body(&resp)["next_openid"], "o+abc");

    // multipart upload with bytes that are not UTF-8.
    let boundary = "----wxopen-boundary-7d1";
    let mut upload = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"media\"; filename=\"a.jpg\"\r\nContent-Type: image/jpeg\r\n\r\n"
    )
    .into_bytes();
    upload.extend(media_bytes(3000));
    upload.extend(format!("\r\n--{boundary}--\r\n").into_bytes());
    let ct = format!("multipart/form-data; boundary={boundary}");
    let (resp, _) = call(
        &app,
        request(
            "POST",
            &format!("{base}/cgi-bin/media/upload?type=image"),
            &[("content-type", &ct)],
            Body::Binary(upload.clone()),
        ),
    )
    .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(
        json_body(&resp)["media_id"],
        format!("MEDIA_{}", upload.len())
    );

    // binary download: byte-identical, as binary (API Gateway base64-encodes it).
    let (resp, _) = call(
        &app,
        request(
            "GET",
            &format!("{base}/cgi-bin/media/get?media_id=M1"),
            &[],
            Body::Empty,
        ),
    )
    .await;
    assert_eq!(resp.status(), 200);
    assert!(
        matches!(resp.body(), Body::Binary(_)),
        "binary answer stays binary"
    );
    assert_eq!(bytes(&resp), media_bytes(4096));
    assert_eq!(header(&resp, "content-type"), Some("image/jpeg"));
    assert_eq!(
        header(&resp, "content-disposition"),
        Some(MEDIA_DISPOSITION)
    );
    assert_eq!(
        header(&resp, "cache-control"),
        None,
        "only the named headers come back"
    );

    // What WeChat's stand-in saw.
    let served = w.stand_in.served();
    assert_eq!(served.len(), 4, "{served:#?}");
    for s in &served {
        assert!(s.token_current, "{} carried the current token", s.path);
        assert_eq!(
            s.param("access_token"),
            vec![current.as_str()],
            "{}",
            s.path
        );
        assert!(s.param("component_access_token").is_empty());
        for h in [
            "authorization",
            "x-amz-date",
            "x-amz-security-token",
            "cookie",
            "x-wxopen-token-param",
        ] {
            assert!(s.headers.get(h).is_none(), "{h} must not be forwarded");
        }
    }
    assert_eq!(served[0].method, "POST");
    assert_eq!(served[0].path, "/cgi-bin/menu/create");
    assert_eq!(served[0].body, menu.as_bytes());
    assert_eq!(served[0].headers["content-type"], "application/json");
    assert_eq!(served[1].method, "GET");
    assert!(
        served[1].raw_query.ends_with("&next_openid=o%2Babc"),
        "{}",
        served[1].raw_query
    );
    assert_eq!(served[2].body, upload, "multipart body byte-identical");
    assert_eq!(served[2].headers["content-type"], ct.as_str());
    assert_eq!(served[2].param("type"), vec!["image"]);
    assert!(served[3].body.is_empty());
}

#[tokio::test]
async fn twenty_concurrent_calls_after_the_sandbox_expires_the_token_make_one_refresh() {
    let w = World::start().await;
    // Five warm function instances, each with its own cache holding version 1.
    let apps: Vec<GatewayApp> = (0..5).map(|_| w.app()).collect();
    for app in &apps {
        let (resp, _) = call(
            app,
            request(
                "GET",
                &format!("/authorizers/{OA1}/wechat/cgi-bin/user/get"),
                &[],
                Body::Empty,
            ),
        )
        .await;
        assert_eq!(header(&resp, "x-wxopen-token-version"), Some("1"));
    }
    let (_, v1) = w.stored_token(TokenKey::Authorizer(OA1.into())).await;
    assert_eq!(v1, 1);

    // Mid-run, WeChat's time passes every token's expiry: the sandbox answers 42001 to v1
    // (and to the component token) while wxopen's records still look valid.
    let (status, _) = w
        .stack
        .control(
            reqwest::Method::POST,
            "clock/advance",
            json!({"seconds": 7300}),
        )
        .await;
    assert_eq!(status, 200);
    // As WeChat's clock says: the tokens were issued 7300 s ago (a token refreshed moments ago
    // is never force-refreshed again).
    crate::common::age_token(&w.stack, OA1, 7300).await;
    crate::common::age_component_token(&w.stack, 7300).await;
    w.stack.sandbox.clear_calls();

    let calls = (0..20).map(|i| {
        let app = &apps[i % apps.len()];
        async move {
            call(
                app,
                request(
                    "GET",
                    &format!("/authorizers/{OA1}/wechat/cgi-bin/user/get?next_openid=call-{i}"),
                    &[],
                    Body::Empty,
                ),
            )
            .await
        }
    });
    let results = join_all(calls).await;

    let (current, v2) = w.stored_token(TokenKey::Authorizer(OA1.into())).await;
    assert_eq!(v2, 2, "refreshed exactly once");
    let refreshes: Vec<_> = w
        .stack
        .sandbox
        .calls()
        .into_iter()
        .filter(|c| c.api == "api_authorizer_token" && c.errcode == 0)
        .collect();
    assert_eq!(
        refreshes.len(),
        1,
        "one api_authorizer_token for 20 calls: {:?}",
        w.stack
            .sandbox
            .calls()
            .iter()
            .map(|c| (c.api.clone(), c.errcode))
            .collect::<Vec<_>>()
    );
    for (i, (resp, rec)) in results.iter().enumerate() {
        assert_eq!(
            resp.status(),
            200,
            "call {i}: {}",
            String::from_utf8_lossy(&bytes(resp))
        );
        assert_eq!(json_body(resp)["next_openid"], format!("call-{i}"));
        assert_eq!(header(resp, "x-wxopen-token-version"), Some("2"));
        assert!(rec.attempts <= 2, "call {i}: at most one retry");
    }
    // Per call: at most two requests reached the stand-in, the last with the new token.
    let served = w.stand_in.served();
    for i in 0..20 {
        let mine: Vec<_> = served
            .iter()
            .filter(|s| s.param("next_openid") == vec![format!("call-{i}").as_str()])
            .collect();
        assert!(
            (1..=2).contains(&mine.len()),
            "call {i}: {} requests",
            mine.len()
        );
        let last = mine.last().unwrap();
        assert!(last.token_current);
        assert_eq!(last.param("access_token"), vec![current.as_str()]);
    }
    // The token-service lookups were shared: per instance at most one refresh lookup.
    let lookups: u32 = results.iter().map(|(_, r)| r.token_refreshes).sum();
    assert!(
        lookups <= apps.len() as u32,
        "{lookups} refresh lookups for 5 instances"
    );
}

#[tokio::test]
async fn hostile_paths_and_bad_requests_get_a_4xx_and_reach_nothing() {
    let w = World::start().await;
    // A second merchant authorizes, then cancels: it is known but not authorized.
    w.stack.authorize(OA2, "push_only").await;
    let (status, _) = w
        .stack
        .control(
            reqwest::Method::POST,
            &format!("merchants/{OA2}/cancel"),
            json!({}),
        )
        .await;
    assert_eq!(status, 200);
    let app = w.app();
    w.stack.sandbox.clear_calls();
    let a = format!("/authorizers/{OA1}/wechat");
    let big = vec![b'x'; GatewaySettings::default().max_request_bytes + 1];
    let cases: Vec<(&str, String, Body, u16, &str)> = vec![
        (
            "GET",
            format!("{a}/cgi-bin/../component/api_component_token"),
            Body::Empty,
            400,
            "invalid_path",
        ),
        (
            "GET",
            format!("{a}/cgi-bin/./menu/get"),
            Body::Empty,
            400,
            "invalid_path",
        ),
        (
            "GET",
            format!("{a}/cgi-bin/%2e%2e/token"),
            Body::Empty,
            400,
            "invalid_path",
        ),
        (
            "GET",
            format!("{a}/cgi-bin%2fmenu%2fget"),
            Body::Empty,
            400,
            "invalid_path",
        ),
        (
            "GET",
            format!("{a}/cgi-bin%5cmenu"),
            Body::Empty,
            400,
            "invalid_path",
        ),
        (
            "GET",
            format!("{a}/http://evil.example/cgi-bin/menu/get"),
            Body::Empty,
            400,
            "invalid_path",
        ),
        (
            "GET",
            format!("{a}//evil.example/cgi-bin/menu/get"),
            Body::Empty,
            400,
            "invalid_path",
        ),
        (
            "GET",
            format!("{a}/@evil.example/cgi-bin/menu/get"),
            Body::Empty,
            400,
            "invalid_path",
        ),
        (
            "GET",
            format!("{a}/cgi-bin/menu@evil.example"),
            Body::Empty,
            400,
            "invalid_path",
        ),
        (
            "GET",
            format!("{a}/cgi-bin/menu/get/"),
            Body::Empty,
            400,
            "invalid_path",
        ),
        ("GET", format!("{a}/"), Body::Empty, 400, "invalid_path"),
        (
            "GET",
            format!("{a}/sns/userinfo"),
            Body::Empty,
            403,
            "path_not_allowed",
        ),
        (
            "GET",
            format!("{a}/evil/cgi-bin/menu/get"),
            Body::Empty,
            403,
            "path_not_allowed",
        ),
        (
            "GET",
            format!("{a}/cgi-bin/token?grant_type=client_credential"),
            Body::Empty,
            403,
            "token_api_refused",
        ),
        (
            "POST",
            format!("{a}/cgi-bin/stable_token"),
            Body::Empty,
            403,
            "token_api_refused",
        ),
        (
            "POST",
            format!("{a}/cgi-bin/component/api_authorizer_token"),
            Body::Empty,
            403,
            "token_api_refused",
        ),
        (
            "POST",
            "/component/wechat/cgi-bin/component/api_query_auth".into(),
            Body::Empty,
            403,
            "token_api_refused",
        ),
        (
            "POST",
            "/component/wechat/cgi-bin/component/api_get_authorizer_list".into(),
            Body::Empty,
            403,
            "token_api_refused",
        ),
        (
            "POST",
            "/component/wechat/cgi-bin/component/API_COMPONENT_TOKEN".into(),
            Body::Empty,
            403,
            "token_api_refused",
        ),
        (
            "PUT",
            format!("{a}/cgi-bin/menu/create"),
            Body::Empty,
            405,
            "method_not_allowed",
        ),
        (
            "DELETE",
            format!("{a}/cgi-bin/menu/delete"),
            Body::Empty,
            405,
            "method_not_allowed",
        ),
        (
            "POST",
            format!("{a}/cgi-bin/media/upload"),
            Body::Binary(big),
            413,
            "body_too_large",
        ),
        (
            "GET",
            format!("{a}/cgi-bin/user/get?next_openid={}", "x".repeat(5000)),
            Body::Empty,
            400,
            "invalid_query",
        ),
        (
            "GET",
            "/authorizers/WXOA00000000000001/wechat/cgi-bin/menu/get".into(),
            Body::Empty,
            400,
            "invalid_appid",
        ),
        (
            "GET",
            "/authorizers/wx1/wechat/cgi-bin/menu/get".into(),
            Body::Empty,
            400,
            "invalid_appid",
        ),
        (
            "GET",
            "/authorizers/wxoa00000000000009/wechat/cgi-bin/menu/get".into(),
            Body::Empty,
            404,
            "unknown_authorizer",
        ),
        (
            "GET",
            format!("/authorizers/{OA2}/wechat/cgi-bin/menu/get"),
            Body::Empty,
            409,
            "authorizer_unauthorized",
        ),
        (
            "GET",
            "/somewhere/else".into(),
            Body::Empty,
            404,
            "unknown_route",
        ),
    ];
    for (method, path, body, status, code) in cases {
        let (resp, rec) = call(&app, request(method, &path, &[], body)).await;
        let b = json_body(&resp);
        assert_eq!(resp.status(), status, "{method} {path}: {b}");
        assert_eq!(b["error"], code, "{method} {path}: {b}");
        assert!(b["message"].is_string());
        assert_eq!(rec.attempts, 0, "{path}: no attempt");
    }
    let stale_header = request(
        "GET",
        &format!("{a}/cgi-bin/menu/get"),
        &[("x-wxopen-token-param", "my_token")],
        Body::Empty,
    );
    assert_eq!(call(&app, stale_header).await.0.status(), 400);
    assert!(
        w.stand_in.seen().is_empty(),
        "the stand-in saw nothing: {:#?}",
        w.stand_in.seen()
    );
    assert!(
        w.stack.sandbox.calls().is_empty(),
        "the sandbox saw nothing"
    );
}

#[tokio::test]
async fn errcodes_pass_through_retries_follow_the_method_and_warm_calls_read_nothing() {
    let w = World::start().await;
    let app = w.app();
    let a = format!("/authorizers/{OA1}/wechat");

    // 45009 passes through with the header and in the metric; no retry.
    let send = json!({"touser": "o_alice", "msgtype": "text", "text": {"content": "hi"}});
    let (resp, rec) = call(
        &app,
        request(
            "POST",
            &format!("{a}/cgi-bin/message/custom/send"),
            &[("content-type", "application/json")],
            Body::Text(send.to_string()),
        ),
    )
    .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(json_body(&resp)["errcode"], 45009);
    assert_eq!(header(&resp, "x-wxopen-errcode"), Some("45009"));
    assert_eq!(header(&resp, "x-wxopen-attempts"), Some("1"));
    let line: Value = serde_json::from_str(&rec.emf_line(wechat_gateway::FUNCTION, 0)).unwrap();
    assert_eq!(line["Errcode"], "45009");
    assert_eq!(line["Route"], "authorizer");

    // -1: a GET is sent again, a POST is not.
    let (resp, rec) = call(
        &app,
        request("GET", &format!("{a}/cgi-bin/flaky?key=g"), &[], Body::Empty),
    )
    .await;
    assert_eq!(json_body(&resp)["errcode"], 0);
    assert_eq!(
        (rec.attempts, header(&resp, "x-wxopen-attempts")),
        (2, Some("2"))
    );
    let (resp, rec) = call(
        &app,
        request(
            "POST",
            &format!("{a}/cgi-bin/flaky?key=p"),
            &[],
            Body::Text("{}".into()),
        ),
    )
    .await;
    assert_eq!(json_body(&resp)["errcode"], -1);
    assert_eq!(header(&resp, "x-wxopen-errcode"), Some("-1"));
    assert_eq!(
        rec.attempts, 1,
        "a POST that may have taken effect is not repeated"
    );

    // No redirect is followed.
    let before = w.stand_in.seen().len();
    let (resp, _) = call(
        &app,
        request("GET", &format!("{a}/cgi-bin/redirect"), &[], Body::Empty),
    )
    .await;
    assert_eq!(resp.status(), 502);
    assert_eq!(json_body(&resp)["error"], "wechat_redirect");
    assert_eq!(w.stand_in.seen().len(), before + 1);
    assert!(
        w.stand_in
            .seen()
            .iter()
            .all(|s| !s.path.starts_with("/evil"))
    );

    // Steady state: no DynamoDB request per call once the token is warm.
    w.stack.ops.reset();
    for i in 0..10 {
        let (resp, rec) = call(
            &app,
            request(
                "GET",
                &format!("{a}/cgi-bin/user/get?next_openid={i}"),
                &[],
                Body::Empty,
            ),
        )
        .await;
        assert_eq!(resp.status(), 200);
        assert_eq!(rec.token_lookups, 0);
    }
    assert_eq!(w.stack.ops.total(), 0, "{:?}", w.stack.ops.snapshot());

    // A request whose query only came parsed (no raw query in the URI) is encoded again.
    let parsed_only = wxopen_tests::request(
        "GET",
        &format!("{a}/cgi-bin/user/get"),
        &HashMap::from([("next_openid".to_string(), "o+x y".to_string())]),
        Body::Empty,
    );
    let (resp, _) = call(&app, parsed_only).await;
    assert_eq!(json_body(&resp)["next_openid"], "o+x y");
}

#[tokio::test]
async fn answers_too_large_for_lambda_are_a_413() {
    let w = World::start().await;
    let settings = GatewaySettings {
        max_response_bytes: wxopen::gateway::response::ENVELOPE_RESERVE + 4000,
        ..GatewaySettings::default()
    };
    let app = w.app_with(settings);
    let a = format!("/authorizers/{OA1}/wechat");
    // 3000 bytes are 4000 in base64: fits. 3001 do not.
    let (resp, _) = call(
        &app,
        request(
            "GET",
            &format!("{a}/cgi-bin/media/get?size=3000"),
            &[],
            Body::Empty,
        ),
    )
    .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(bytes(&resp).len(), 3000);
    let (resp, rec) = call(
        &app,
        request(
            "GET",
            &format!("{a}/cgi-bin/media/get?size=3001"),
            &[],
            Body::Empty,
        ),
    )
    .await;
    assert_eq!(resp.status(), 413);
    assert_eq!(json_body(&resp)["error"], "response_too_large");
    assert_eq!((rec.outcome, rec.failure), ("failed", Some("too_large")));
    // Larger than the whole budget: refused while reading, not buffered.
    let (resp, _) = call(
        &app,
        request(
            "GET",
            &format!("{a}/cgi-bin/media/get?size=100000"),
            &[],
            Body::Empty,
        ),
    )
    .await;
    assert_eq!(resp.status(), 413);
}

#[tokio::test]
async fn the_component_route_injects_the_component_token_by_api_family() {
    let w = World::start().await;
    let app = w.app();
    let (component, _) = w.stored_token(TokenKey::Component).await;

    // wxa/ template library: the component token as access_token.
    let (resp, _) = call(
        &app,
        request(
            "GET",
            "/component/wechat/wxa/gettemplatelist",
            &[],
            Body::Empty,
        ),
    )
    .await;
    assert_eq!(resp.status(), 200, "{}", json_body(&resp));
    assert_eq!(header(&resp, "x-wxopen-authorizer"), None);
    let served = w.stand_in.served();
    assert_eq!(
        served.last().unwrap().param("access_token"),
        vec![component.as_str()]
    );
    assert!(served.last().unwrap().token_current);

    // cgi-bin/component/…: as component_access_token, answered by the sandbox itself.
    w.stack.sandbox.clear_calls();
    let body = json!({"component_appid": APPID, "authorizer_appid": OA1}).to_string();
    let (resp, _) = call(
        &app,
        request(
            "POST",
            "/component/wechat/cgi-bin/component/api_get_authorizer_info",
            &[("content-type", "application/json")],
            Body::Text(body),
        ),
    )
    .await;
    assert_eq!(resp.status(), 200);
    let info = json_body(&resp);
    assert_eq!(
        info["authorization_info"]["authorizer_appid"], OA1,
        "{info}"
    );
    let calls = w.stack.sandbox.calls();
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert_eq!(
        (
            calls[0].api.as_str(),
            calls[0].token_kind.as_str(),
            calls[0].errcode
        ),
        ("api_get_authorizer_info", "component", 0)
    );
    let passed = w
        .stand_in
        .seen()
        .into_iter()
        .rfind(|s| s.passed_through)
        .unwrap();
    assert_eq!(
        passed.param("component_access_token"),
        vec![component.as_str()]
    );
    assert!(passed.param("access_token").is_empty());

    // The caller may name the parameter for the APIs the docs and SDKs disagree on.
    let (resp, _) = call(
        &app,
        request(
            "GET",
            "/component/wechat/wxa/gettemplatelist",
            &[("x-wxopen-token-param", "component_access_token")],
            Body::Empty,
        ),
    )
    .await;
    assert_eq!(json_body(&resp)["errcode"], 0);
    let last = w.stand_in.served().pop().unwrap();
    assert_eq!(
        last.param("component_access_token"),
        vec![component.as_str()]
    );
}

#[tokio::test]
async fn quota_routes_call_wechat_explicitly() {
    let w = World::start().await;
    let app = w.app();

    let (resp, _) = call(
        &app,
        request(
            "GET",
            &format!("/authorizers/{OA1}/quota?cgi_path=/cgi-bin/message/custom/send"),
            &[],
            Body::Empty,
        ),
    )
    .await;
    assert_eq!(resp.status(), 200, "{}", json_body(&resp));
    let q = json_body(&resp);
    assert_eq!(q["quota"]["remain"], 97);
    assert_eq!(q["cgi_path"], "/cgi-bin/message/custom/send");
    let seen = w.stand_in.served().pop().unwrap();
    assert_eq!(seen.path, "/cgi-bin/openapi/quota/get");
    assert_eq!(
        serde_json::from_slice::<Value>(&seen.body).unwrap(),
        json!({"cgi_path": "/cgi-bin/message/custom/send"})
    );
    assert!(seen.token_current);

    let (resp, _) = call(
        &app,
        request(
            "POST",
            &format!("/authorizers/{OA1}/clear-quota"),
            &[],
            Body::Empty,
        ),
    )
    .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(
        json_body(&resp),
        json!({"cleared": true, "scope": "authorizer", "appid": OA1})
    );
    let seen = w.stand_in.served().pop().unwrap();
    assert_eq!(seen.path, "/cgi-bin/clear_quota");
    assert_eq!(
        serde_json::from_slice::<Value>(&seen.body).unwrap(),
        json!({"appid": OA1})
    );

    let (resp, _) = call(
        &app,
        request("POST", "/component/clear-quota", &[], Body::Empty),
    )
    .await;
    assert_eq!(resp.status(), 200, "{}", json_body(&resp));
    let seen = w.stand_in.served().pop().unwrap();
    assert_eq!(seen.path, "/cgi-bin/component/clear_quota/v2");
    assert!(seen.query.is_empty(), "no token on clear_quota/v2");

    // WeChat's monthly reset limit: a 409 in the one error shape, WeChat's errcode included.
    let (resp, _) = call(
        &app,
        request(
            "POST",
            &format!("/authorizers/{OA1}/clear-quota"),
            &[("content-type", "application/json")],
            Body::Text(json!({"cgi_path": "/cgi-bin/message/custom/send"}).to_string()),
        ),
    )
    .await;
    assert_eq!(resp.status(), 409);
    let e = json_body(&resp);
    assert_eq!(
        (e["error"].as_str(), e["wechat_errcode"].as_i64()),
        (Some("quota_reset_limit_reached"), Some(48006))
    );

    // Bad input reaches nothing.
    let before = w.stand_in.seen().len();
    for (method, path, status) in [
        ("GET", format!("/authorizers/{OA1}/quota"), 400),
        (
            "GET",
            format!("/authorizers/{OA1}/quota?cgi_path=/cgi-bin/../x"),
            400,
        ),
        (
            "POST",
            format!("/authorizers/{OA1}/quota?cgi_path=/cgi-bin/x"),
            405,
        ),
        ("GET", "/component/clear-quota".to_string(), 405),
        ("POST", "/authorizers/bad/clear-quota".to_string(), 400),
    ] {
        let (resp, _) = call(&app, request(method, &path, &[], Body::Empty)).await;
        assert_eq!(
            resp.status(),
            status,
            "{method} {path}: {}",
            json_body(&resp)
        );
    }
    assert_eq!(w.stand_in.seen().len(), before);
}

#[tokio::test]
async fn no_token_or_secret_reaches_a_log_line_or_metric() {
    let capture = wxopen_tests::LogCapture::global();
    let w = World::start().await;
    let app = w.app();
    let a = format!("/authorizers/{OA1}/wechat");
    let mut secrets = vec![APPSECRET.to_string()];
    let mut records = Vec::new();
    let (v1, _) = w.stored_token(TokenKey::Authorizer(OA1.into())).await;
    secrets.push(v1);
    let (resp, rec) = call(
        &app,
        request("GET", &format!("{a}/cgi-bin/user/get"), &[], Body::Empty),
    )
    .await;
    assert_eq!(resp.status(), 200);
    records.push(rec);
    // A token error and a refresh (component token included), a POST retried after it, a
    // quota reset with the secret in its body.
    w.stack
        .control(
            reqwest::Method::POST,
            "clock/advance",
            json!({"seconds": 7300}),
        )
        .await;
    let (resp, rec) = call(
        &app,
        request(
            "POST",
            &format!("{a}/cgi-bin/menu/create"),
            &[],
            Body::Text(r#"{"button":[]}"#.into()),
        ),
    )
    .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(rec.token_refreshes, 1);
    records.push(rec);
    let (resp, rec) = call(
        &app,
        request("POST", "/component/clear-quota", &[], Body::Empty),
    )
    .await;
    assert_eq!(resp.status(), 200);
    records.push(rec);
    let authorizer = w
        .stack
        .store
        .get_token(&TokenKey::Authorizer(OA1.into()))
        .await
        .unwrap()
        .unwrap();
    secrets.push(authorizer.access_token.unwrap().expose_secret().to_string());
    secrets.push(
        authorizer
            .refresh_token
            .unwrap()
            .expose_secret()
            .to_string(),
    );
    let (component, _) = w.stored_token(TokenKey::Component).await;
    secrets.push(component);

    let logs = capture.text();
    assert!(
        logs.contains("refreshing that version"),
        "logs were captured: {logs}"
    );
    let metrics: String = records
        .iter()
        .map(|r| r.emf_line(wechat_gateway::FUNCTION, 0))
        .collect();
    for s in &secrets {
        assert!(s.len() >= 8);
        assert!(!logs.contains(s.as_str()), "a secret reached the logs");
        assert!(
            !metrics.contains(s.as_str()),
            "a secret reached a metric line"
        );
    }
}
