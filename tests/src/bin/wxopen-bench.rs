//! Benchmarks that need real processes (run by `make bench`, with moto started):
//!
//! `wxopen-bench init <bootstrap>...`   start-to-ready time of release function binaries
//!                                      against a local Lambda Runtime API stand-in.
//! `wxopen-bench refresh <total> <due>` one scheduled run of the release `token-refresh` binary
//!                                      over `total` authorizers of which `due` are due:
//!                                      time, WeChat calls, DynamoDB requests (counted by a proxy
//!                                      in front of moto), the refresher's peak memory.
//!
//! `wxopen-bench gateway [batches] [batch]` a proxied WeChat call through the gateway handler vs
//!                                      the same call straight to the sandbox (run it from a
//!                                      release build): median, p99, ratio, added µs, DynamoDB
//!                                      requests per call.
//! `wxopen-bench events [n]`           DynamoDB and EventBridge calls per push for each kind
//!                                      (counted by the proxy in front of moto), and the latency
//!                                      publishing adds to a message.
//! `wxopen-bench releases [targets] [concurrency] [pollers]` one fleet release over `targets`
//!                                      sandbox mini programs on the local stack, to `done`:
//!                                      wall time, targets/s, DynamoDB, SQS and WeChat calls per
//!                                      target, peak memory.
//!
//! Prints one JSON object per measurement.

#[path = "../bench/gateway.rs"]
mod gateway;
#[path = "../bench/releases.rs"]
mod releases;

use std::collections::BTreeMap;
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use serde_json::{Value, json};
use tokio::sync::Notify;
use wxopen::clock::{Clock, SystemClock};
use wxopen::model::{AuthorizationGrant, NewToken};
use wxopen_tests::sandbox::{self, SandboxConfig};

/// A minimal Lambda Runtime API: hands out queued events, records responses.
#[derive(Default)]
struct RuntimeApi {
    events: Mutex<Vec<Value>>,
    first_next: Mutex<Option<Instant>>,
    next_called: Notify,
    responses: Mutex<Vec<Value>>,
    responded: Notify,
}

async fn next(State(api): State<Arc<RuntimeApi>>) -> Response {
    {
        let mut first = api.first_next.lock().unwrap();
        if first.is_none() {
            *first = Some(Instant::now());
        }
    }
    api.next_called.notify_waiters();
    loop {
        let event = api.events.lock().unwrap().pop();
        if let Some(event) = event {
            let deadline = (SystemClock.now() + 300) * 1000;
            return (
                StatusCode::OK,
                [
                    (
                        "lambda-runtime-aws-request-id",
                        "bench-request-1".to_string(),
                    ),
                    ("lambda-runtime-deadline-ms", deadline.to_string()),
                    (
                        "lambda-runtime-invoked-function-arn",
                        "arn:aws:lambda:us-east-1:123456789012:function:bench".to_string(),
                    ),
                    ("content-type", "application/json".to_string()),
                ],
                event.to_string(),
            )
                .into_response();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn respond(
    State(api): State<Arc<RuntimeApi>>,
    Path(_id): Path<String>,
    body: Bytes,
) -> StatusCode {
    api.responses
        .lock()
        .unwrap()
        .push(serde_json::from_slice(&body).unwrap_or(Value::Null));
    api.responded.notify_waiters();
    StatusCode::ACCEPTED
}

async fn error(State(api): State<Arc<RuntimeApi>>, body: Bytes) -> StatusCode {
    api.responses
        .lock()
        .unwrap()
        .push(json!({ "error": String::from_utf8_lossy(&body) }));
    api.responded.notify_waiters();
    StatusCode::ACCEPTED
}

async fn start_runtime_api() -> (Arc<RuntimeApi>, String) {
    let api = Arc::new(RuntimeApi::default());
    let router = axum::Router::new()
        .route("/2018-06-01/runtime/invocation/next", get(next))
        .route(
            "/2018-06-01/runtime/invocation/{id}/response",
            post(respond),
        )
        .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
        .route("/2018-06-01/runtime/init/error", post(error))
        .with_state(api.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move { axum::serve(listener, router).await });
    (api, addr)
}

fn lambda_command(binary: &str, runtime_api: &str, env: &[(&str, String)]) -> Command {
    let mut cmd = Command::new(binary);
    cmd.env("AWS_LAMBDA_RUNTIME_API", runtime_api)
        .env("AWS_LAMBDA_FUNCTION_NAME", "bench")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "512")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_LOG_STREAM_NAME", "bench")
        .env("AWS_LAMBDA_LOG_GROUP_NAME", "bench")
        .env("AWS_LAMBDA_LOG_FORMAT", "json")
        .env("AWS_LAMBDA_LOG_LEVEL", "WARN")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

/// Peak resident memory of a running process (VmHWM), in KiB.
fn peak_rss_kib(child: &Child) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{}/status", child.id())).ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
}

fn base_env() -> Vec<(&'static str, String)> {
    vec![
        ("TABLE_NAME", "bench-table".into()),
        ("SECRET_ID", "bench-secret".into()),
        ("AWS_REGION", "us-east-1".into()),
        ("AWS_ACCESS_KEY_ID", "test".into()),
        ("AWS_SECRET_ACCESS_KEY", "test".into()),
        ("AWS_EC2_METADATA_DISABLED", "true".into()),
    ]
}

async fn init(binaries: &[String]) {
    for binary in binaries {
        let mut times = Vec::new();
        for _ in 0..5 {
            let (api, addr) = start_runtime_api().await;
            let notified = api.next_called.notified();
            let started = Instant::now();
            let mut child = lambda_command(binary, &addr, &base_env())
                .spawn()
                .expect("spawn bootstrap");
            let ready = tokio::time::timeout(Duration::from_secs(10), notified)
                .await
                .is_ok();
            let at = api
                .first_next
                .lock()
                .unwrap()
                .map(|t| t.duration_since(started));
            let _ = child.kill();
            let _ = child.wait();
            if let (true, Some(d)) = (ready, at) {
                times.push(d.as_secs_f64() * 1000.0);
            }
        }
        times.sort_by(|a, b| a.total_cmp(b));
        let median = times.get(times.len() / 2).copied();
        println!(
            "{}",
            json!({ "measure": "init", "binary": binary, "runs": times.len(), "median_ms": median, "all_ms": times })
        );
    }
}

type Counts = Arc<Mutex<BTreeMap<String, u64>>>;

/// Counts DynamoDB and EventBridge requests by `X-Amz-Target` on their way to moto.
#[derive(Clone)]
struct Proxy {
    target: String,
    http: reqwest::Client,
    counts: Counts,
    events: Counts,
}

/// Starts the counting proxy in front of moto: its URL, the DynamoDB and the EventBridge counts.
async fn start_proxy(moto: &str) -> Result<(String, Counts, Counts), String> {
    let counts: Counts = Arc::default();
    let events: Counts = Arc::default();
    let p = Proxy {
        target: moto.trim_end_matches('/').to_string(),
        http: reqwest::Client::new(),
        counts: counts.clone(),
        events: events.clone(),
    };
    let router = axum::Router::new()
        .route("/", any(proxy))
        .route("/{*rest}", any(proxy))
        .with_state(p);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| e.to_string())?;
    let proxy_url = format!(
        "http://{}",
        listener.local_addr().map_err(|e| e.to_string())?
    );
    tokio::spawn(async move { axum::serve(listener, router).await });
    Ok((proxy_url, counts, events))
}

async fn proxy(
    State(p): State<Proxy>,
    method: axum::http::Method,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(t) = headers.get("x-amz-target").and_then(|v| v.to_str().ok()) {
        let op = t.rsplit('.').next().unwrap_or(t).to_string();
        if t.starts_with("DynamoDB") {
            *p.counts.lock().unwrap().entry(op).or_default() += 1;
        } else if t.starts_with("AWSEvents") {
            *p.events.lock().unwrap().entry(op).or_default() += 1;
        }
    }
    let url = format!(
        "{}{}",
        p.target,
        uri.path_and_query().map(|x| x.as_str()).unwrap_or("/")
    );
    let mut req = p.http.request(method, url).body(body);
    for (k, v) in headers.iter() {
        if k != "host" && k != "content-length" {
            req = req.header(k, v);
        }
    }
    match req.send().await {
        Ok(resp) => {
            let status = resp.status();
            let headers = resp.headers().clone();
            let bytes = resp.bytes().await.unwrap_or_default();
            let mut out = (status, bytes).into_response();
            for (k, v) in headers.iter() {
                if k != "content-length" && k != "transfer-encoding" {
                    out.headers_mut().insert(k, v.clone());
                }
            }
            out
        }
        Err(_) => StatusCode::BAD_GATEWAY.into_response(),
    }
}

async fn refresh(total: usize, due: usize, binary: &str) -> Result<(), String> {
    let moto =
        std::env::var("AWS_ENDPOINT_URL").map_err(|_| "AWS_ENDPOINT_URL (moto) is required")?;
    let aws = aws_config::load_from_env().await;
    let ddb = aws_sdk_dynamodb::Client::new(&aws);
    let table = format!("wxopen-bench-{}-{total}", std::process::id());
    wxopen::store::dynamo::create_table(&ddb, &table)
        .await
        .map_err(|e| e.to_string())?;
    let store = wxopen::store::DynamoStore::new(ddb, &table);
    let sm = aws_sdk_secretsmanager::Client::new(&aws);
    let secret = sm
        .create_secret()
        .name(format!("wxopen-bench-{}-{total}", std::process::id()))
        .secret_string(wxopen_tests::credentials_json())
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let sandbox = sandbox::start(SandboxConfig {
        daily_quota: sandbox::DailyQuota {
            default: 10_000_000,
            per_api: Default::default(),
        },
        ..SandboxConfig::default()
    })
    .await
    .map_err(|e| e.to_string())?;
    let http = reqwest::Client::new();

    // Seed: the sandbox's merchants, then our table (bulk import), a ticket and a component token.
    let seed_started = Instant::now();
    let list: Value = http
        .post(format!("{}/sandbox/merchants/bulk", sandbox.base_url()))
        .json(&json!({ "count": total }))
        .send()
        .await
        .map_err(|e| e.to_string())?
        .json()
        .await
        .map_err(|e| e.to_string())?;
    let now = SystemClock.now();
    let every = (total / due.max(1)).max(1);
    let grants: Vec<AuthorizationGrant> = list
        .as_array()
        .ok_or("bulk answer")?
        .iter()
        .enumerate()
        .map(|(i, m)| AuthorizationGrant {
            appid: m["appid"].as_str().unwrap_or_default().to_string(),
            event_time: Some(now),
            func_info: vec![1, 2, 3],
            token: NewToken {
                access_token: format!("seeded-{i}").into(),
                expires_at: if i % every == 0 && i / every < due {
                    now + 300
                } else {
                    now + 7000
                },
                refresh_token: Some(
                    m["refresh_token"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string()
                        .into(),
                ),
            },
            profile: None,
            now,
        })
        .collect();
    use futures_util::stream::{self, StreamExt};
    let results: Vec<_> = stream::iter(grants.chunks(500))
        .map(|chunk| store.import_authorizers(chunk))
        .buffer_unordered(4)
        .collect()
        .await;
    for r in results {
        r.map_err(|e| e.to_string())?;
    }
    let ticket: Value = http
        .post(format!("{}/sandbox/push/ticket", sandbox.base_url()))
        .send()
        .await
        .map_err(|e| e.to_string())?
        .json()
        .await
        .map_err(|e| e.to_string())?;
    let ticket_value = ticket["ticket"].as_str().unwrap_or_default().to_string();
    wxopen::store::TicketStore::put_ticket(
        &store,
        &wxopen::model::StoredTicket {
            ticket: ticket_value.into(),
            create_time: now,
            received_at: now,
        },
    )
    .await
    .map_err(|e| e.to_string())?;
    let seed_secs = seed_started.elapsed().as_secs_f64();

    // The DynamoDB counting proxy in front of moto.
    let (proxy_url, counts, _) = start_proxy(&moto).await?;

    // The release refresher binary, as Lambda runs it, invoked once by a schedule event.
    sandbox.clear_calls();
    let (api, addr) = start_runtime_api().await;
    api.events.lock().unwrap().push(json!({
        "version": "0", "id": "bench", "detail-type": "Scheduled Event", "source": "aws.events",
        "account": "123456789012", "time": "2026-11-23T00:00:00Z", "region": "us-east-1",
        "resources": [], "detail": {}
    }));
    let mut env = base_env();
    env.retain(|(k, _)| *k != "TABLE_NAME" && *k != "SECRET_ID");
    env.push(("TABLE_NAME", table.clone()));
    env.push(("SECRET_ID", secret.arn().unwrap_or_default().to_string()));
    env.push(("AWS_ENDPOINT_URL", proxy_url));
    env.push(("WECHAT_API_BASE", sandbox.base_url()));
    let responded = api.responded.notified();
    let started = Instant::now();
    let mut child = lambda_command(binary, &addr, &env)
        .spawn()
        .map_err(|e| format!("spawn {binary}: {e}"))?;
    let done = tokio::time::timeout(Duration::from_secs(1800), responded)
        .await
        .is_ok();
    let elapsed = started.elapsed().as_secs_f64();
    let peak = peak_rss_kib(&child);
    let _ = child.kill();
    let _ = child.wait();
    let report = api
        .responses
        .lock()
        .unwrap()
        .first()
        .cloned()
        .unwrap_or(Value::Null);
    let calls = sandbox.calls();
    let token_calls = calls
        .iter()
        .filter(|c| c.api == "api_authorizer_token")
        .count();
    let ops = counts.lock().unwrap().clone();
    let total_ops: u64 = ops.values().sum();
    let refreshed = report["refreshed"].as_u64().unwrap_or(0);
    println!(
        "{}",
        json!({
            "measure": "refresh", "authorizers": total, "due": due, "completed": done,
            "seconds": elapsed, "seed_seconds": seed_secs,
            "refreshed": refreshed, "failures": report["failures"],
            "wechat_authorizer_token_calls": token_calls, "wechat_calls": calls.len(),
            "dynamodb_requests": ops, "dynamodb_requests_total": total_ops,
            "dynamodb_requests_per_refreshed": if refreshed > 0 { total_ops as f64 / refreshed as f64 } else { 0.0 },
            "refresher_peak_rss_kib": peak,
        })
    );
    sandbox.stop();
    Ok(())
}

/// One push's DynamoDB and EventBridge requests (by operation) and its milliseconds.
type PushCost = (BTreeMap<String, u64>, BTreeMap<String, u64>, f64);

/// A bus that takes everything and sends nothing (the no-publishing baseline).
struct NoBus;

impl wxopen::events::EventPublisher for NoBus {
    async fn publish(
        &self,
        _entries: &[wxopen::events::EventEntry],
    ) -> wxopen::events::PublishReport {
        wxopen::events::PublishReport::default()
    }
}

fn message_xml(gh: &str, openid: &str, now: i64, body: &str) -> String {
    format!(
        "<xml><ToUserName><![CDATA[{gh}]]></ToUserName><FromUserName><![CDATA[{openid}]]></FromUserName><CreateTime>{now}</CreateTime>{body}</xml>"
    )
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

const WRITES: [&str; 5] = [
    "PutItem",
    "UpdateItem",
    "DeleteItem",
    "TransactWriteItems",
    "BatchWriteItem",
];

/// DynamoDB and EventBridge calls per push for each kind, counted by the proxy in front of moto
/// (the functions' handlers called directly, with the deployed store and publisher), and the
/// latency publishing adds to a message (real bus vs. no bus, alternating).
async fn events(n: usize) -> Result<(), String> {
    use wxopen::app::Deps;
    use wxopen::events::EventBridgePublisher;
    use wxopen_tests::SignedPush;

    let moto =
        std::env::var("AWS_ENDPOINT_URL").map_err(|_| "AWS_ENDPOINT_URL (moto) is required")?;
    let direct = aws_config::load_from_env().await;
    let (proxy_url, counts, events) = start_proxy(&moto).await?;
    let proxied = aws_config::from_env().endpoint_url(&proxy_url).load().await;
    let table = format!("wxopen-bench-events-{}", std::process::id());
    wxopen::store::dynamo::create_table(&aws_sdk_dynamodb::Client::new(&direct), &table)
        .await
        .map_err(|e| e.to_string())?;
    let store = wxopen::store::DynamoStore::new(aws_sdk_dynamodb::Client::new(&proxied), &table);
    let bus = wxopen_tests::bus::LocalBus::create(
        &direct,
        &format!("wxopen-bench-{}", std::process::id()),
        &format!("wxopen-bench-events-{}", std::process::id()),
    )
    .await
    .map_err(|e| e.to_string())?;
    let now = SystemClock.now();
    let (oa, mp, gh) = (
        "wxoa00000000000001",
        "wxmp00000000000001",
        "gh_bench00000001",
    );
    let grants: Vec<AuthorizationGrant> = [oa, mp]
        .iter()
        .map(|appid| AuthorizationGrant {
            appid: appid.to_string(),
            event_time: Some(now),
            func_info: vec![1, 2, 3],
            token: NewToken {
                access_token: "seeded".to_string().into(),
                expires_at: now + 7000,
                refresh_token: Some("seeded-refresh".to_string().into()),
            },
            profile: None,
            now,
        })
        .collect();
    store
        .import_authorizers(&grants)
        .await
        .map_err(|e| e.to_string())?;
    let credentials = Arc::new(wxopen::secrets::StaticCredentials(Arc::new(
        wxopen::secrets::ComponentCredentials::new(
            wxopen_tests::APPID,
            wxopen_tests::APPSECRET,
            wxopen_tests::TOKEN,
            wxopen_tests::AES_KEY,
        )
        .map_err(|e| e.to_string())?,
    )));
    let deps = || Deps {
        store: store.clone(),
        credentials: credentials.clone(),
        clock: SystemClock,
        wechat: wxopen_tests::unreachable_wechat(),
        tuning: Default::default(),
    };
    let publisher =
        EventBridgePublisher::new(aws_sdk_eventbridge::Client::new(&proxied), &bus.bus_name);
    let with_bus = message_events_app(&deps, publisher.clone());
    let component = component_events::App {
        deps: deps(),
        push_window: Duration::from_secs(300),
        completion_budget: Duration::from_millis(100),
        publisher,
        metrics: wxopen::events::metrics::MetricSink::memory(),
    };
    let app_id = wxopen_tests::APPID;
    let kinds = [
        "text",
        "text (WeChat retry)",
        "subscribe",
        "CLICK",
        "weapp_audit_success",
        "unauthorized",
        "notify_third_fasteregister",
        "component_verify_ticket",
    ];
    let mut previous_text: Option<SignedPush> = None;
    for kind in kinds {
        let mut per_push: Vec<PushCost> = Vec::new();
        for i in 0..n {
            let t = SystemClock.now();
            let nonce = format!("{kind}-{i}");
            let msg = |appid_gh: &str, body: &str| {
                SignedPush::new(
                    &message_xml(appid_gh, &format!("o_user_{i}"), t, body),
                    app_id,
                    t,
                    &nonce,
                )
            };
            let (push, path, appid) = match kind {
                "text" => (
                    msg(
                        gh,
                        &format!(
                            "<MsgType><![CDATA[text]]></MsgType><Content><![CDATA[hello {i}]]></Content><MsgId>{}</MsgId>",
                            8_000_000_000_000_000u64 + i as u64
                        ),
                    ),
                    Some(oa),
                    oa,
                ),
                "text (WeChat retry)" => match &previous_text {
                    Some(p) => (p.clone(), Some(oa), oa),
                    None => return Err("no text push to retry".into()),
                },
                "subscribe" => (
                    msg(
                        gh,
                        "<MsgType><![CDATA[event]]></MsgType><Event><![CDATA[subscribe]]></Event>",
                    ),
                    Some(oa),
                    oa,
                ),
                "CLICK" => (
                    msg(
                        gh,
                        "<MsgType><![CDATA[event]]></MsgType><Event><![CDATA[CLICK]]></Event><EventKey><![CDATA[MENU_1]]></EventKey>",
                    ),
                    Some(oa),
                    oa,
                ),
                "weapp_audit_success" => (
                    msg(
                        "gh_benchmp000001",
                        &format!(
                            "<MsgType><![CDATA[event]]></MsgType><Event><![CDATA[weapp_audit_success]]></Event><SuccTime>{t}</SuccTime>"
                        ),
                    ),
                    Some(mp),
                    mp,
                ),
                "unauthorized" => (
                    SignedPush::component(
                        &wxopen_tests::unauthorized_xml(&format!("wxun{i:014}"), t),
                        t,
                        &nonce,
                    ),
                    None,
                    "",
                ),
                "notify_third_fasteregister" => (
                    SignedPush::component(
                        &format!(
                            "<xml><AppId>{app_id}</AppId><CreateTime>{t}</CreateTime><InfoType>notify_third_fasteregister</InfoType><appid>wxnew{i:013}</appid><status>0</status><auth_code>c</auth_code><msg>OK</msg></xml>"
                        ),
                        t,
                        &nonce,
                    ),
                    None,
                    "",
                ),
                _ => (
                    SignedPush::component(
                        &wxopen_tests::ticket_xml(&format!("ticket@@@bench{i}"), t + i as i64),
                        t,
                        &nonce,
                    ),
                    None,
                    "",
                ),
            };
            if kind == "text" {
                previous_text = Some(push.clone());
            }
            counts.lock().unwrap().clear();
            events.lock().unwrap().clear();
            let started = Instant::now();
            let resp = match path {
                Some(_) => {
                    message_events::handle(
                        &with_bus,
                        push.request_to(&format!("/wechat/messages/{appid}"), appid),
                    )
                    .await
                }
                None => component_events::handle(&component, push.request()).await,
            }
            .map_err(|e| e.to_string())?;
            let ms = started.elapsed().as_secs_f64() * 1000.0;
            if resp.status() != 200 {
                return Err(format!("{kind}: status {}", resp.status()));
            }
            per_push.push((
                counts.lock().unwrap().clone(),
                events.lock().unwrap().clone(),
                ms,
            ));
        }
        let total = |pick: &dyn Fn(&PushCost) -> u64| {
            per_push.iter().map(pick).sum::<u64>() as f64 / per_push.len().max(1) as f64
        };
        let mut by_op: BTreeMap<String, f64> = BTreeMap::new();
        for (ddb, _, _) in &per_push {
            for (op, c) in ddb {
                *by_op.entry(op.clone()).or_default() += *c as f64 / per_push.len() as f64;
            }
        }
        let mut ms: Vec<f64> = per_push.iter().map(|p| p.2).collect();
        println!(
            "{}",
            json!({
                "measure": "events", "kind": kind, "pushes": per_push.len(),
                "dynamodb_per_push": by_op,
                "dynamodb_writes_per_push": total(&|p| p.0.iter().filter(|(k, _)| WRITES.contains(&k.as_str())).map(|(_, v)| v).sum()),
                "dynamodb_reads_per_push": total(&|p| p.0.iter().filter(|(k, _)| !WRITES.contains(&k.as_str())).map(|(_, v)| v).sum()),
                "put_events_per_push": total(&|p| p.1.get("PutEvents").copied().unwrap_or(0)),
                "median_ms": median(&mut ms),
            })
        );
    }
    // The latency publishing adds: the same text handled with the bus and with no bus, alternating.
    let no_bus = message_events_app(&deps, NoBus);
    let (mut with, mut without) = (Vec::new(), Vec::new());
    for i in 0..n * 2 {
        let t = SystemClock.now();
        let push = SignedPush::new(
            &message_xml(
                gh,
                "o_latency",
                t,
                &format!(
                    "<MsgType><![CDATA[text]]></MsgType><Content><![CDATA[latency {i}]]></Content><MsgId>{}</MsgId>",
                    9_000_000_000_000_000u64 + i as u64
                ),
            ),
            app_id,
            t,
            &format!("lat-{i}"),
        );
        let req = push.request_to(&format!("/wechat/messages/{oa}"), oa);
        let started = Instant::now();
        let ok = if i % 2 == 0 {
            message_events::handle(&with_bus, req).await.is_ok()
        } else {
            message_events::handle(&no_bus, req).await.is_ok()
        };
        let ms = started.elapsed().as_secs_f64() * 1000.0;
        if !ok {
            return Err("latency push failed".into());
        }
        if i % 2 == 0 {
            with.push(ms)
        } else {
            without.push(ms)
        }
    }
    let publish_ms: Vec<f64> = with_bus
        .metrics
        .lines()
        .iter()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter_map(|v| v["EventPublishMs"].as_f64())
        .collect();
    let (w, wo) = (median(&mut with), median(&mut without));
    println!(
        "{}",
        json!({
            "measure": "publish_latency", "pushes": n,
            "median_ms_with_bus": w, "median_ms_without_bus": wo, "added_ms": w - wo,
            "event_publish_ms_median": median(&mut publish_ms.clone()),
        })
    );
    Ok(())
}

fn message_events_app<P>(
    deps: &impl Fn() -> wxopen::app::Deps<
        wxopen::store::DynamoStore,
        Arc<wxopen::secrets::StaticCredentials>,
        SystemClock,
    >,
    publisher: P,
) -> message_events::App<
    wxopen::store::DynamoStore,
    Arc<wxopen::secrets::StaticCredentials>,
    SystemClock,
    P,
> {
    message_events::App {
        deps: deps(),
        push_window: Duration::from_secs(300),
        login: Default::default(),
        publisher,
        hook: wxopen::reply::hook::ConfiguredHook::None,
        hook_budget: wxopen::reply::hook::DEFAULT_BUDGET,
        metrics: wxopen::events::metrics::MetricSink::memory(),
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("init") => {
            init(&args[2..]).await;
            ExitCode::SUCCESS
        }
        Some("events") => {
            let n = args.get(2).and_then(|v| v.parse().ok()).unwrap_or(50);
            match events(n).await {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("events bench failed: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Some("refresh") => {
            let total = args.get(2).and_then(|v| v.parse().ok()).unwrap_or(10_000);
            let due = args.get(3).and_then(|v| v.parse().ok()).unwrap_or(total);
            let binary = args
                .get(4)
                .cloned()
                .unwrap_or_else(|| "target/release/token-refresh".into());
            match refresh(total, due, &binary).await {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("refresh bench failed: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Some("gateway") => {
            let batches = args.get(2).and_then(|v| v.parse().ok()).unwrap_or(200);
            let batch = args.get(3).and_then(|v| v.parse().ok()).unwrap_or(25);
            match gateway::run(batches, batch).await {
                Ok(v) => {
                    println!("{v}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("gateway bench failed: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Some("releases") => {
            let n = args.get(2).and_then(|v| v.parse().ok()).unwrap_or(2000);
            let concurrency = args.get(3).and_then(|v| v.parse().ok()).unwrap_or(100);
            let pollers = args.get(4).and_then(|v| v.parse().ok()).unwrap_or(4);
            match releases::run(n, concurrency, pollers).await {
                Ok(v) => {
                    println!("{v}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("releases bench failed: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        _ => {
            eprintln!(
                "usage: wxopen-bench init <bootstrap>... | refresh <total> <due> [binary] | gateway [batches] [batch] | events [pushes per kind] | releases [targets] [concurrency] [pollers]"
            );
            ExitCode::from(2)
        }
    }
}
