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
//!
//! Prints one JSON object per measurement.

#[path = "../bench/gateway.rs"]
mod gateway;

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

/// Counts DynamoDB requests by `X-Amz-Target` on their way to moto.
#[derive(Clone)]
struct Proxy {
    target: String,
    http: reqwest::Client,
    counts: Arc<Mutex<BTreeMap<String, u64>>>,
}

async fn proxy(
    State(p): State<Proxy>,
    method: axum::http::Method,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(t) = headers.get("x-amz-target").and_then(|v| v.to_str().ok())
        && t.starts_with("DynamoDB")
    {
        let op = t.rsplit('.').next().unwrap_or(t).to_string();
        *p.counts.lock().unwrap().entry(op).or_default() += 1;
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
    let counts = Arc::new(Mutex::new(BTreeMap::new()));
    let p = Proxy {
        target: moto.trim_end_matches('/').to_string(),
        http: reqwest::Client::new(),
        counts: counts.clone(),
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

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("init") => {
            init(&args[2..]).await;
            ExitCode::SUCCESS
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
        _ => {
            eprintln!(
                "usage: wxopen-bench init <bootstrap>... | refresh <total> <due> [binary] | gateway [batches] [batch]"
            );
            ExitCode::from(2)
        }
    }
}
