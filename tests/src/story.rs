//! The local stack and the provider story `make demo` walks (shared by the demo binary and
//! the no-secrets-in-logs test): moto (started by the Makefile), the WeChat sandbox and the
//! local gateway.

use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::Method;
use secrecy::ExposeSecret;
use serde_json::{Value, json};
use wxopen::authorization::LinkHosts;
use wxopen::clock::{Clock, FixedClock, SystemClock};
use wxopen::login::LoginSettings;
use wxopen::refresher::RefreshSettings;
use wxopen::secrets::{CachedCredentials, SecretsManagerSource};
use wxopen::store::DynamoStore;
use wxopen::wechat::WeChatClient;

use crate::bus::LocalBus;
use crate::gateway::{self, Apps, Gateway, GatewayConfig};
use crate::hook::HookServer;
use crate::releases::{ReleaseQueue, Seed, USER_VERSION, job_body, seed_mini_programs};
use crate::sandbox::{self, SandboxConfig, SandboxHandle};
use crate::stack::{Aim, WeChatBases};

type Creds = CachedCredentials<SecretsManagerSource>;

pub struct Local {
    pub sandbox: SandboxHandle,
    pub gateway: Gateway,
    pub store: DynamoStore,
    pub wechat: WeChatClient,
    pub credentials: Arc<Creds>,
    pub secret_arn: String,
    pub http: reqwest::Client,
    /// The event bus with its rule to a queue (moto).
    pub bus: LocalBus,
    /// The local reply hook (HTTP on loopback), echoing text messages.
    pub hook: HookServer,
    /// Fleet releases: the work queue and the driver feeding it to the worker.
    pub releases: ReleaseQueue,
    pub release_driver: tokio::task::JoinHandle<()>,
}

/// The local stack aimed at any WeChat: moto's table and secret, the WeChat client, the gateway.
pub struct Core {
    pub gateway: Gateway,
    pub store: DynamoStore,
    pub wechat: WeChatClient,
    pub credentials: Arc<Creds>,
    pub secret_arn: String,
    pub http: reqwest::Client,
    pub bus: LocalBus,
    pub hook: HookServer,
    pub releases: ReleaseQueue,
    pub release_driver: tokio::task::JoinHandle<()>,
}

/// Resources a CloudFormation stack created (the stack as deployed, on moto): the story runs
/// on these instead of creating its own.
#[derive(Debug, Clone)]
pub struct Provisioned {
    pub table: String,
    /// The stack's secret, still the placeholder: the story fills it as the README says.
    pub secret_arn: String,
    pub bus_name: String,
}

/// Creates a table and a filled secret on moto, starts the sandbox and the gateway.
pub async fn start(gateway_port: u16) -> Result<Local, String> {
    start_with(gateway_port, None).await
}

/// [`start`] on the resources of a stack (`Some`) or on new ones (`None`).
pub async fn start_with(
    gateway_port: u16,
    provisioned: Option<&Provisioned>,
) -> Result<Local, String> {
    let sandbox = sandbox::start(SandboxConfig::default())
        .await
        .map_err(|e| format!("the sandbox did not start: {e}"))?;
    let core = start_core(
        gateway_port,
        &crate::credentials_json(),
        &WeChatBases::all(&sandbox.base_url()),
        None,
        provisioned,
    )
    .await?;
    sandbox.set_callbacks(
        Some(format!("{}/wechat/component", core.gateway.base_url)),
        Some(format!("{}/wechat/messages", core.gateway.base_url)),
    );
    let Core {
        gateway,
        store,
        wechat,
        credentials,
        secret_arn,
        http,
        bus,
        hook,
        releases,
        release_driver,
    } = core;
    Ok(Local {
        sandbox,
        gateway,
        store,
        wechat,
        credentials,
        secret_arn,
        http,
        bus,
        hook,
        releases,
        release_driver,
    })
}

/// The local stack aimed at another WeChat (`make dev` with the aim variables): the secret holds
/// the aim's credentials, every WeChat host is the aim's; no sandbox is started.
pub async fn start_aimed(gateway_port: u16, aim: &Aim) -> Result<Core, String> {
    start_core(
        gateway_port,
        aim.credentials_json().expose_secret(),
        &aim.bases,
        aim.public_base.clone(),
        None,
    )
    .await
}

/// Moto's table and secret (filled with `credentials_json`), the client and the gateway.
/// `public_base` is the redirect URI's base (default: the gateway's own URL).
async fn start_core(
    gateway_port: u16,
    credentials_json: &str,
    bases: &WeChatBases,
    public_base: Option<String>,
    provisioned: Option<&Provisioned>,
) -> Result<Core, String> {
    // Unique per local stack: a test process may start several.
    static STACKS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let suffix = format!(
        "{}-{}",
        std::process::id(),
        STACKS.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    );
    let endpoint = std::env::var("AWS_ENDPOINT_URL").unwrap_or_default();
    if endpoint.is_empty() {
        return Err(
            "AWS_ENDPOINT_URL is not set: run through `make demo` / `make dev`, which start moto"
                .into(),
        );
    }
    let aws = aws_config::load_from_env().await;
    let ddb = aws_sdk_dynamodb::Client::new(&aws);
    let sm = aws_sdk_secretsmanager::Client::new(&aws);
    let (table, secret_arn) = match provisioned {
        Some(p) => (p.table.clone(), p.secret_arn.clone()),
        None => {
            let table = format!("wxopen-local-{suffix}");
            wxopen::store::dynamo::create_table(&ddb, &table)
                .await
                .map_err(|e| format!("creating the table on moto failed: {e}"))?;
            // The stack creates the secret with a placeholder; the provider fills it (README).
            let secret = sm
                .create_secret()
                .name(format!("wxopen-local-{suffix}"))
                .secret_string(r#"{"component_appid":"REPLACE_ME"}"#)
                .send()
                .await
                .map_err(|e| format!("creating the secret on moto failed: {e}"))?;
            (table, secret.arn().unwrap_or_default().to_string())
        }
    };
    // The local reply hook signs with `reply_hook_secret`: added when the credentials have none.
    let credentials_json = match serde_json::from_str::<Value>(credentials_json) {
        Ok(Value::Object(mut o)) => {
            o.entry("reply_hook_secret")
                .or_insert_with(|| crate::HOOK_SECRET.into());
            Value::Object(o).to_string()
        }
        _ => credentials_json.to_string(),
    };
    let queue = format!("wxopen-local-events-{suffix}");
    let bus = match provisioned {
        Some(p) => LocalBus::attach(&aws, &p.bus_name, &queue).await,
        None => LocalBus::create(&aws, &format!("wxopen-local-{suffix}"), &queue).await,
    }
    .map_err(|e| format!("creating the event bus and its queue on moto failed: {e}"))?;
    let releases = ReleaseQueue::create(
        &aws,
        &bus.bus_name,
        &format!("wxopen-local-releases-{suffix}"),
        30,
    )
    .await
    .map_err(|e| format!("creating the release queue on moto failed: {e}"))?;
    let hook_secret = serde_json::from_str::<Value>(&credentials_json)
        .ok()
        .and_then(|v| v["reply_hook_secret"].as_str().map(str::to_string))
        .unwrap_or_default();
    let hook = HookServer::start(0, &hook_secret)
        .await
        .map_err(|e| format!("the reply hook did not start: {e}"))?;
    sm.put_secret_value()
        .secret_id(&secret_arn)
        .secret_string(&credentials_json)
        .send()
        .await
        .map_err(|e| format!("filling the secret failed: {e}"))?;
    let store = DynamoStore::new(ddb, table);
    let wechat =
        WeChatClient::new(&bases.api, Duration::from_secs(4)).map_err(|e| e.to_string())?;
    let credentials = Arc::new(CachedCredentials::new(
        SecretsManagerSource::new(sm, secret_arn.clone()),
        Duration::from_secs(300),
    ));
    let gw = {
        let (store, credentials, wechat) = (store.clone(), credentials.clone(), wechat.clone());
        let (mp_base, open_base) = (bases.mp.clone(), bases.open.clone());
        let (bus_name, hook_url) = (bus.bus_name.clone(), hook.url.clone());
        let release_queue_url = releases.url.clone();
        gateway::start(gateway_port, move |public| {
            Apps::new(
                store,
                credentials,
                wechat,
                GatewayConfig {
                    push_window: Duration::from_secs(300),
                    hosts: LinkHosts {
                        mp_base: mp_base.clone(),
                        open_base,
                    },
                    public_base: Some(public_base.unwrap_or_else(|| public.to_string())),
                    login: LoginSettings {
                        mp_base,
                        ..LoginSettings::default()
                    },
                    // The local stack's own pages may be return_to targets (`make dev`).
                    sign_in_origins: vec![public.trim_end_matches('/').to_string()],
                    aws,
                    event_bus_name: bus_name,
                    reply_hook_url: Some(hook_url),
                    reply_hook_budget: wxopen::reply::hook::DEFAULT_BUDGET,
                    release_queue_url: Some(release_queue_url),
                },
            )
        })
        .await
        .map_err(|e| format!("the gateway did not start: {e}"))?
    };
    // What Lambda's SQS event source does for release-worker, as a background task.
    let release_driver = crate::releases::spawn_driver(
        releases.clone(),
        Arc::new(release_worker::App {
            deps: wxopen::app::Deps {
                store: store.clone(),
                credentials: credentials.clone(),
                clock: wxopen::clock::SystemClock,
                wechat: wechat.clone(),
                tuning: Default::default(),
            },
            queue: releases.queue(),
            publisher: wxopen::events::EventBridgePublisher::new(bus.events.clone(), &bus.bus_name),
            settings: wxopen::releases::ReleaseSettings {
                submit_delay_secs: 0,
                ..wxopen::releases::ReleaseSettings::default()
            },
            hook: wxopen::releases::NoHook,
        }),
    );
    Ok(Core {
        gateway: gw,
        store,
        wechat,
        credentials,
        secret_arn,
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(20))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| e.to_string())?,
        bus,
        hook,
        releases,
        release_driver,
    })
}

impl Local {
    /// A publisher to the local bus (what the functions use).
    pub fn publisher(&self) -> wxopen::events::EventBridgePublisher {
        wxopen::events::EventBridgePublisher::new(self.bus.events.clone(), &self.bus.bus_name)
    }

    async fn call(
        &self,
        method: Method,
        url: String,
        body: Option<Value>,
    ) -> Result<(u16, Value), String> {
        let mut req = self.http.request(method, &url);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.map_err(|e| format!("{url}: {e}"))?;
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap_or_default();
        Ok((
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        ))
    }

    async fn api(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<(u16, Value), String> {
        self.call(method, format!("{}{path}", self.gateway.base_url), body)
            .await
    }

    /// A gateway call keeping the answer's headers (the WeChat API gateway's `x-wxopen-*`).
    async fn api_with_headers(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<(u16, reqwest::header::HeaderMap, Value), String> {
        let url = format!("{}{path}", self.gateway.base_url);
        let mut req = self.http.request(method, &url);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.map_err(|e| format!("{url}: {e}"))?;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let text = resp.text().await.unwrap_or_default();
        Ok((
            status,
            headers,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        ))
    }

    async fn control(&self, path: &str, body: Value) -> Result<(u16, Value), String> {
        self.call(
            Method::POST,
            format!("{}/sandbox/{path}", self.sandbox.base_url()),
            Some(body),
        )
        .await
    }
}

fn expect(ok: bool, what: impl Into<String>) -> Result<(), String> {
    if ok { Ok(()) } else { Err(what.into()) }
}

const OA: &str = "wxoa00000000000001";
const OA2: &str = "wxoa00000000000002";

/// The provider story, one step at a time. Each step returns a one-line result.
pub async fn step(local: &Local, n: usize, state: &mut Value) -> Result<String, String> {
    match n {
        0 => {
            let (s, body) = local.control("push/ticket", json!({})).await?;
            expect(
                s == 200 && body["delivery"]["delivered"] == true,
                format!("push failed: {body}"),
            )?;
            let stored = wxopen::store::TicketStore::get_ticket(&local.store)
                .await
                .map_err(|e| e.to_string())?;
            expect(stored.is_some(), "ticket not stored")?;
            Ok(format!(
                "WeChat pushed an encrypted ticket; component-events answered {:?} and stored it",
                body["delivery"]["body"].as_str().unwrap_or_default()
            ))
        }
        1 => {
            let (s, body) = local
                .api(Method::GET, "/component/access-token", None)
                .await?;
            expect(s == 200, format!("{s} {body}"))?;
            Ok(format!(
                "component_access_token v{} (expires {})",
                body["version"], body["expires_at"]
            ))
        }
        2 => {
            const CUSTOMER: &str = "demo-customer";
            let (s, created) = local
                .api(
                    Method::POST,
                    "/authorize/links",
                    Some(json!({"customer_ref": CUSTOMER})),
                )
                .await?;
            expect(s == 201, format!("{s} {created}"))?;
            let page = local
                .http
                .get(created["page_url"].as_str().unwrap_or_default())
                .send()
                .await
                .map_err(|e| e.to_string())?;
            expect(
                page.status().as_u16() == 200,
                "authorization page not served",
            )?;
            let html = page.text().await.map_err(|e| e.to_string())?;
            let href = html
                .split("id=\"authorize-pc\" href=\"")
                .nth(1)
                .and_then(|r| r.split('"').next())
                .ok_or("no authorization button on the page")?
                .replace("&amp;", "&");
            let (s, body) = local
                .control(
                    &format!("merchants/{OA}/authorize"),
                    json!({ "link": href, "order": "concurrent" }),
                )
                .await?;
            expect(s == 200, format!("merchant could not authorize: {body}"))?;
            expect(
                body["redirect"]["status"] == 200,
                format!("redirect page: {}", body["redirect"]),
            )?;
            // The authorization lands on the link's customer: the authorizer carries its
            // customer_ref and the link names the authorizer.
            let (s, authorizer) = local
                .api(Method::GET, &format!("/authorizers/{OA}"), None)
                .await?;
            expect(
                s == 200 && authorizer["customer_ref"] == CUSTOMER,
                format!(
                    "authorizer {OA} should carry the link's customer_ref {CUSTOMER}: {s} {authorizer}"
                ),
            )?;
            let (s, outcome) = local
                .api(
                    Method::GET,
                    &format!(
                        "/authorize/links/{}",
                        created["id"].as_str().unwrap_or_default()
                    ),
                    None,
                )
                .await?;
            expect(
                s == 200
                    && outcome["status"] == "authorized"
                    && outcome["authorizer_appid"] == OA
                    && outcome["customer_ref"] == CUSTOMER,
                format!("the link's outcome should be authorized by {OA}: {s} {outcome}"),
            )?;
            Ok(format!(
                "merchant {OA} clicked the button on its link's page (/authorize?link=…) and is now customer {CUSTOMER}'s; push and redirect arrived together, one code exchange ({} api_query_auth call)",
                local
                    .sandbox
                    .calls()
                    .iter()
                    .filter(|c| c.api == "api_query_auth")
                    .count()
            ))
        }
        3 => {
            let (s, body) = local.api(Method::GET, "/authorizers", None).await?;
            expect(s == 200, format!("{s} {body}"))?;
            let a = body["authorizers"]
                .as_array()
                .and_then(|l| l.first())
                .cloned()
                .ok_or("no authorizer listed")?;
            let sets: Vec<String> = a["permission_sets"]
                .as_array()
                .map(|l| l.iter().map(|p| p["id"].to_string()).collect())
                .unwrap_or_default();
            Ok(format!(
                "{} \"{}\" ({}), state {}, permission sets [{}]",
                a["appid"].as_str().unwrap_or_default(),
                a["nick_name"].as_str().unwrap_or_default(),
                a["type"].as_str().unwrap_or_default(),
                a["state"].as_str().unwrap_or_default(),
                sets.join(", ")
            ))
        }
        4 => {
            let (s, body) = local
                .api(
                    Method::GET,
                    &format!("/authorizers/{OA}/access-token"),
                    None,
                )
                .await?;
            expect(s == 200, format!("{s} {body}"))?;
            state["version"] = body["version"].clone();
            Ok(format!(
                "authorizer_access_token v{} vended to an IAM caller",
                body["version"]
            ))
        }
        5 => {
            // Run the refresher as EventBridge would, 7,000 s later, when every token is due.
            let app = token_refresh::App {
                deps: wxopen::app::Deps {
                    store: local.store.clone(),
                    credentials: local.credentials.clone(),
                    clock: FixedClock::new(SystemClock.now() + 7000),
                    wechat: local.wechat.clone(),
                    tuning: Default::default(),
                },
                settings: RefreshSettings::default(),
                publisher: local.publisher(),
                release_queue: local.releases.queue(),
                release_settings: Default::default(),
            };
            let report = token_refresh::run(&app).await;
            expect(
                report.failures.is_empty() && report.refreshed >= 1 && report.component_refreshed,
                format!("{report:?}"),
            )?;
            Ok(format!(
                "scheduled refresher: component token + {} authorizer token(s) refreshed, {} WeChat token calls, 0 failures",
                report.refreshed, report.wechat_token_calls
            ))
        }
        6 => {
            local
                .control(
                    &format!("merchants/{OA2}/authorize"),
                    json!({ "link": link(local).await?, "order": "push_only" }),
                )
                .await?;
            let (s, created) = local
                .api(
                    Method::POST,
                    &format!("/authorizers/{OA}/open-account"),
                    None,
                )
                .await?;
            expect(s == 201, format!("create: {s} {created}"))?;
            let open_appid = created["open_appid"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            let (s, bound) = local
                .api(
                    Method::PUT,
                    &format!("/authorizers/{OA2}/open-account"),
                    Some(json!({ "open_appid": open_appid })),
                )
                .await?;
            expect(s == 200, format!("bind: {s} {bound}"))?;
            let (s, got) = local
                .api(
                    Method::GET,
                    &format!("/authorizers/{OA2}/open-account"),
                    None,
                )
                .await?;
            expect(
                s == 200 && got["open_appid"] == open_appid.as_str(),
                format!("get: {s} {got}"),
            )?;
            state["open_appid"] = open_appid.clone().into();
            Ok(format!(
                "open account {open_appid} created for {OA}, {OA2} bound to it, get confirms"
            ))
        }
        7 => {
            let (s, report) = local
                .control("release-test/run", json!({ "appid": "wx570bc396a51b8ff8" }))
                .await?;
            expect(s == 200 && report["passed"] == true, format!("{report}"))?;
            let cases: Vec<String> = report["cases"]
                .as_array()
                .map(|l| {
                    l.iter()
                        .map(|c| {
                            format!(
                                "{} {} ms",
                                c["name"].as_str().unwrap_or_default(),
                                c["elapsed_ms"]
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
            Ok(format!(
                "full-network release test passed: {}",
                cases.join(", ")
            ))
        }
        8 => {
            let (s, session) = local
                .api(
                    Method::POST,
                    "/login/sessions",
                    Some(json!({ "appid": OA })),
                )
                .await?;
            expect(s == 201, format!("{s} {session}"))?;
            let ticket = crate::ticket_of(&session)?;
            let (s, scan) = local
                .control("users/scan", json!({ "user": "alice", "ticket": ticket }))
                .await?;
            expect(s == 200, format!("scan: {scan}"))?;
            let (s, status) = local
                .api(
                    Method::GET,
                    &format!(
                        "/login/sessions/{}",
                        session["id"].as_str().unwrap_or_default()
                    ),
                    None,
                )
                .await?;
            expect(
                s == 200 && status["status"] == "confirmed" && status["unionid"].is_string(),
                format!("{status}"),
            )?;
            // The same user through the other account of the same open account.
            let (_, second) = local
                .api(
                    Method::POST,
                    "/login/sessions",
                    Some(json!({ "appid": OA2 })),
                )
                .await?;
            let ticket = crate::ticket_of(&second)?;
            local
                .control("users/scan", json!({ "user": "alice", "ticket": ticket }))
                .await?;
            let (_, again) = local
                .api(
                    Method::GET,
                    &format!(
                        "/login/sessions/{}",
                        second["id"].as_str().unwrap_or_default()
                    ),
                    None,
                )
                .await?;
            expect(
                again["known_user"] == true && again["unionid"] == status["unionid"],
                format!("{again}"),
            )?;
            Ok(format!(
                "alice scanned ({}), session confirmed with unionid {}; via {OA2}: known_user=true, linked {}",
                scan["event"].as_str().unwrap_or_default(),
                status["unionid"].as_str().unwrap_or_default(),
                again["linked_appids"]
            ))
        }
        9 => {
            let (s, sent) = local
                .control(
                    "users/message",
                    json!({ "appid": OA, "user": "alice", "content": "hello wxopen" }),
                )
                .await?;
            expect(
                s == 200 && sent["status"] == 200,
                format!("message: {sent}"),
            )?;
            let reply = sent["reply"].as_str().unwrap_or_default();
            expect(
                reply.contains("you said: hello wxopen"),
                format!("the hook's reply did not reach the user: {sent}"),
            )?;
            let (event, _) = local
                .bus
                .wait_for(
                    |e| {
                        e["detail-type"] == "authorizer.message"
                            && e["detail"]["fields"]["Content"] == "hello wxopen"
                    },
                    Duration::from_secs(10),
                )
                .await
                .map_err(|e| e.to_string())?;
            let event = event.ok_or("the message never arrived on the bus's queue")?;
            Ok(format!(
                "alice wrote \"hello wxopen\": on the bus as authorizer.message (id {}, from_user {}), read from SQS; the reply hook answered and alice's WeChat decrypted \"you said: hello wxopen\"",
                event["detail"]["id"].as_str().unwrap_or_default(),
                event["detail"]["from_user"].as_str().unwrap_or_default()
            ))
        }
        10 => {
            let (s, _) = local
                .control(
                    &format!("merchants/{OA}/update"),
                    json!({ "func_info": [1, 2, 3, 24] }),
                )
                .await?;
            expect(s == 200, "update failed")?;
            let (_, a) = local
                .api(Method::GET, &format!("/authorizers/{OA}"), None)
                .await?;
            expect(
                a["permission_sets"].as_array().map(Vec::len) == Some(4),
                format!("{a}"),
            )?;
            let (s, _) = local
                .control(&format!("merchants/{OA}/cancel"), json!({}))
                .await?;
            expect(s == 200, "cancel failed")?;
            let (_, a) = local
                .api(Method::GET, &format!("/authorizers/{OA}"), None)
                .await?;
            expect(a["state"] == "unauthorized", format!("{a}"))?;
            let (s, t) = local
                .api(
                    Method::GET,
                    &format!("/authorizers/{OA}/access-token"),
                    None,
                )
                .await?;
            expect(s == 409, format!("{s} {t}"))?;
            Ok("merchant narrowed the permission sets (updateauthorized: 4 sets), then cancelled: state unauthorized, token refused (409)".into())
        }
        11 => gateway_with_invalidated_token(local).await,
        12 => fleet_release(local, state).await,
        13 => status_verdict(local).await,
        14 => hosted_sign_in(local).await,
        _ => Err("no such step".into()),
    }
}

/// The hosted follow-to-log-in page: a session with `return_to`, its page served, a user scanning,
/// the page sending the browser on with a login code, and the code redeemed for the identity.
async fn hosted_sign_in(local: &Local) -> Result<String, String> {
    let base = local.gateway.base_url.trim_end_matches('/').to_string();
    let return_to = format!("{base}/signed-in");
    let (s, session) = local
        .api(
            Method::POST,
            "/login/sessions",
            Some(json!({ "appid": OA2, "return_to": return_to, "state": "demo" })),
        )
        .await?;
    expect(s == 201, format!("{s} {session}"))?;
    let page_path = session["page_url"].as_str().unwrap_or_default().to_string();
    expect(
        page_path.contains("/login/"),
        format!("no page_url: {session}"),
    )?;
    let page_url = if page_path.starts_with("http") {
        page_path
    } else {
        format!("{base}{page_path}")
    };
    // A browser: no redirects followed, so the page's own answers are seen.
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| e.to_string())?;
    let page = browser
        .get(&page_url)
        .send()
        .await
        .map_err(|e| format!("{page_url}: {e}"))?;
    let page_status = page.status().as_u16();
    let html = page.text().await.unwrap_or_default();
    expect(
        page_status == 200 && html.contains("<img"),
        format!("the page answered {page_status}"),
    )?;
    let ticket = crate::ticket_of(&session)?;
    let (s, scan) = local
        .control("users/scan", json!({ "user": "carol", "ticket": ticket }))
        .await?;
    expect(s == 200, format!("scan: {scan}"))?;
    let next = browser
        .get(&page_url)
        .send()
        .await
        .map_err(|e| format!("{page_url}: {e}"))?;
    let location = header(next.headers(), "location");
    expect(
        next.status().is_redirection() && location.starts_with(&return_to),
        format!(
            "after the scan the page answered {} to {location:?}",
            next.status()
        ),
    )?;
    let landed = url::Url::parse(&location).map_err(|e| e.to_string())?;
    let code = landed
        .query_pairs()
        .find(|(k, _)| k == "login_code")
        .map(|(_, v)| v.into_owned())
        .ok_or("no login_code on return_to")?;
    let (s, who) = local
        .api(Method::POST, &format!("/login/codes/{code}"), None)
        .await?;
    expect(
        s == 200 && who["unionid"].is_string() && who["appid"] == OA2,
        format!("{s} {who}"),
    )?;
    Ok(format!(
        "page {page_url} served (open it in a browser while `make dev` runs); carol scanned, the page sent the browser to return_to with a login code, redeemed once: {} user {}",
        who["flow"].as_str().unwrap_or_default(),
        who["user_id"].as_str().unwrap_or_default()
    ))
}

fn header(h: &reqwest::header::HeaderMap, name: &str) -> String {
    h.get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-")
        .to_string()
}

/// A WeChat API call through the gateway; WeChat invalidates the token out of turn; the next
/// call meets 40001, the gateway refreshes once and retries.
async fn gateway_with_invalidated_token(local: &Local) -> Result<String, String> {
    let path = format!("/authorizers/{OA}/wechat/cgi-bin/user/get");
    let (s, h, body) = local.api_with_headers(Method::GET, &path, None).await?;
    expect(s == 200, format!("first call: {s} {body}"))?;
    let before = header(&h, "x-wxopen-token-version");
    // A forced refresh of a token younger than 30 s is refused by design: the demo ages the
    // stored token by a minute, as if time had passed.
    local
        .store
        .client()
        .update_item()
        .table_name(local.store.table())
        .key(
            "pk",
            aws_sdk_dynamodb::types::AttributeValue::S(format!("AUTHORIZER#{OA}")),
        )
        .key(
            "sk",
            aws_sdk_dynamodb::types::AttributeValue::S("AUTHORIZER".into()),
        )
        .update_expression("SET refreshed_at = :t")
        .expression_attribute_values(
            ":t",
            aws_sdk_dynamodb::types::AttributeValue::N((SystemClock.now() - 60).to_string()),
        )
        .send()
        .await
        .map_err(|e| format!("ageing the token failed: {e}"))?;
    let (s, v) = local
        .control(&format!("merchants/{OA}/invalidate-token"), json!({}))
        .await?;
    expect(s == 200, format!("invalidate: {s} {v}"))?;
    local.sandbox.clear_calls();
    let (s, h, body) = local.api_with_headers(Method::GET, &path, None).await?;
    expect(s == 200, format!("second call: {s} {body}"))?;
    let calls = local.sandbox.calls();
    let stale = calls
        .iter()
        .filter(|c| c.api == "cgi-bin/user/get" || c.api == "user/get")
        .filter(|c| c.errcode == 40001)
        .count();
    let refreshes = calls
        .iter()
        .filter(|c| c.api == "api_authorizer_token")
        .count();
    let attempts = header(&h, "x-wxopen-attempts");
    let after = header(&h, "x-wxopen-token-version");
    expect(
        stale == 1 && refreshes == 1 && attempts == "2" && header(&h, "x-wxopen-errcode") == "-",
        format!(
            "expected one 40001, one refresh, two attempts: 40001 x{stale}, refreshes {refreshes}, attempts {attempts}, {calls:?}"
        ),
    )?;
    Ok(format!(
        "GET /authorizers/{OA}/wechat/cgi-bin/user/get answered 200 (token v{before}); WeChat invalidated the token; next call: 40001 met, refreshed once (v{after}), retried: ok"
    ))
}

/// A fleet release through the real `releases` routes over five mini programs (one rejected by
/// the audit), the release driver running; a compact bar per poll, then the final counts.
async fn fleet_release(local: &Local, state: &mut Value) -> Result<String, String> {
    let print = state["print"] == true;
    let (id, rejected) = fleet_job(local, 5).await?;
    let started = Instant::now();
    let mut last = String::new();
    let job = loop {
        let (s, job) = local
            .api(Method::GET, &format!("/releases/{id}"), None)
            .await?;
        expect(s == 200, format!("GET /releases/{id}: {s} {job}"))?;
        let line = bar(&job);
        if print && line != last {
            println!("        {line}");
        }
        last = line;
        if job["state"] != "running" && job["state"] != "cancelling" {
            break job;
        }
        if started.elapsed() > Duration::from_secs(180) {
            return Err(format!("the job did not finish in 180 s: {last}"));
        }
        tokio::time::sleep(Duration::from_millis(400)).await;
    };
    let c = &job["counts"];
    expect(
        c["released"] == 4 && c["rejected"] == 1,
        format!("final counts: {c}"),
    )?;
    state["release_id"] = id.clone().into();
    Ok(format!(
        "release {id} over 5 mini programs: job {}, released {}, rejected {} (the audit refused {rejected})",
        job["state"].as_str().unwrap_or_default(),
        c["released"],
        c["rejected"]
    ))
}

/// Sets up a fleet release over `n` new mini programs (the last one's audit rejected) and
/// creates the job with `POST /releases`; the local release driver runs it. Needs the ticket
/// (step 0). Returns the job id and the rejected appid.
pub async fn fleet_job(local: &Local, n: usize) -> Result<(String, String), String> {
    let (s, v) = local
        .control(
            "config",
            json!({"audit_delay_secs": 0, "audit_auto_push": true, "audit_quota": 10_000}),
        )
        .await?;
    expect(s == 200, format!("config: {v}"))?;
    // Five mini programs the provider already serves, imported as authorized (the migration
    // path: `import_authorizers`), their tokens expired so the worker refreshes them.
    let appids = seed_mini_programs(&local.sandbox, &local.store, n, Seed::default()).await?;
    let rejected = appids.last().cloned().unwrap_or_default();
    let (s, v) = local
        .control(
            "code/programs",
            json!({"appids": [rejected], "outcome": "reject", "reason": "demo: content not allowed"}),
        )
        .await?;
    expect(s == 200, format!("reject: {v}"))?;
    // A template: a draft uploaded in WeChat's developer tool, added to the library through
    // the component gateway route.
    let (s, draft) = local
        .control(
            "code/drafts",
            json!({"user_version": USER_VERSION, "user_desc": "demo"}),
        )
        .await?;
    expect(s == 200, format!("draft: {draft}"))?;
    let draft_id = draft["draft_id"].as_i64().ok_or("no draft_id")?;
    let (s, v) = local
        .api(
            Method::POST,
            "/component/wechat/wxa/addtotemplate",
            Some(json!({"draft_id": draft_id, "template_type": 0})),
        )
        .await?;
    expect(
        s == 200 && v["errcode"] == 0,
        format!("addtotemplate: {s} {v}"),
    )?;
    let (s, v) = local
        .api(Method::GET, "/component/wechat/wxa/gettemplatelist", None)
        .await?;
    expect(s == 200, format!("gettemplatelist: {s} {v}"))?;
    let template_id = v["template_list"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|t| t["draft_id"] == draft_id)
        .and_then(|t| t["template_id"].as_i64())
        .ok_or(format!("template not listed: {v}"))?;
    let mut body = job_body(template_id, json!({"appids": appids}));
    body["concurrency"] = json!(5);
    let (s, created) = local.api(Method::POST, "/releases", Some(body)).await?;
    expect(s == 201, format!("POST /releases: {s} {created}"))?;
    let id = created["id"].as_str().ok_or("no job id")?.to_string();
    Ok((id, rejected))
}

/// `[####......] 2/5 released 2, submitted 3` from a job's answer: the bar fills with the
/// targets in a terminal state; the states with targets follow, in `TargetState::ALL` order.
fn bar(job: &Value) -> String {
    use wxopen::model::TargetState;
    const WIDTH: u64 = 20;
    let total = job["total"].as_u64().unwrap_or(0);
    let count = |s: TargetState| job["counts"][s.as_str()].as_u64().unwrap_or(0);
    let done: u64 = TargetState::ALL
        .into_iter()
        .filter(|s| s.is_terminal())
        .map(count)
        .sum();
    let filled = (done * WIDTH).checked_div(total).unwrap_or(0).min(WIDTH);
    let parts: Vec<String> = TargetState::ALL
        .into_iter()
        .filter(|s| count(*s) > 0)
        .map(|s| format!("{} {}", s.as_str(), count(s)))
        .collect();
    format!(
        "[{}{}] {done}/{total} {}",
        "#".repeat(filled as usize),
        ".".repeat((WIDTH - filled) as usize),
        parts.join(", ")
    )
}

/// `wxopen status` (functions/wxopen-cli) run as a process against the local gateway; its
/// verdict lines.
async fn status_verdict(local: &Local) -> Result<String, String> {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let target = std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| format!("{root}/target"));
    let bin = format!("{target}/debug/wxopen");
    if !std::path::Path::new(&bin).exists() {
        // `make demo` builds it first; a test run (`cargo test`) may not have: build it once.
        let built = tokio::task::spawn_blocking(|| {
            std::process::Command::new(env!("CARGO"))
                .args(["build", "-q", "--locked", "-p", "wxopen-cli"])
                .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
                .status()
        })
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| format!("cargo build -p wxopen-cli: {e}"))?;
        expect(built.success(), "cargo build -p wxopen-cli failed")?;
    }
    if !std::path::Path::new(&bin).exists() {
        return Err(format!(
            "{bin} is missing: build it with `cargo build -p wxopen-cli` (make demo does)"
        ));
    }
    let endpoint = local.gateway.base_url.clone();
    let out = tokio::task::spawn_blocking({
        let bin = bin.clone();
        move || {
            std::process::Command::new(bin)
                .args(["--endpoint", &endpoint, "status", "--json"])
                .env_remove("WXOPEN_STACK")
                .output()
        }
    })
    .await
    .map_err(|e| format!("running {bin}: {e}"))?
    .map_err(|e| format!("running {bin}: {e}"))?;
    let v: Value = serde_json::from_slice(&out.stdout).map_err(|e| {
        format!(
            "wxopen status --json printed no JSON ({e}): {}",
            String::from_utf8_lossy(&out.stderr)
        )
    })?;
    let checks: Vec<String> = v["checks"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| {
            format!(
                "{} {}",
                c["check"].as_str().unwrap_or_default(),
                c["verdict"].as_str().unwrap_or_default()
            )
        })
        .collect();
    let overall = v["verdict"].as_str().unwrap_or_default().to_string();
    expect(
        out.status.success() && !checks.is_empty() && overall != "broken",
        format!("wxopen status: exit {:?}, {v}", out.status.code()),
    )?;
    Ok(format!(
        "`wxopen status` says {overall}: {}",
        checks.join(", ")
    ))
}

async fn link(local: &Local) -> Result<String, String> {
    let (s, body) = local
        .api(
            Method::POST,
            "/authorize/links",
            Some(json!({"customer_ref": "demo-customer"})),
        )
        .await?;
    expect(s == 201, format!("{s} {body}"))?;
    Ok(body["pc_url"].as_str().unwrap_or_default().to_string())
}

/// The steps by id (what [`step`] runs); [`ORDER`] is the order they are told in.
pub const STEPS: [&str; 15] = [
    "ticket pushed and stored",
    "component token",
    "merchant authorizes",
    "authorizer listed",
    "token vended",
    "refresher run",
    "open account: create, bind, get",
    "release test",
    "follow to log in",
    "events out and a reply",
    "update and cancel",
    "gateway call, token invalidated mid-way",
    "fleet release",
    "status verdict",
    "hosted sign-in page",
];

/// The story's order: step ids into [`STEPS`].
pub const ORDER: [usize; 15] = [0, 1, 2, 3, 4, 5, 11, 6, 7, 8, 14, 9, 12, 10, 13];

/// Runs every step, printing progress; returns (step, ok, ms) for each.
pub async fn run_story(local: &Local, print: bool) -> Vec<(&'static str, bool, u128)> {
    let mut results = Vec::new();
    let mut state = json!({ "print": print });
    for (i, id) in ORDER.iter().enumerate() {
        let name = &STEPS[*id];
        let started = Instant::now();
        let result = step(local, *id, &mut state).await;
        let ms = started.elapsed().as_millis();
        if print {
            match &result {
                Ok(line) => println!("[{:>2}/{}] ✓ {name}: {line}", i + 1, STEPS.len()),
                Err(e) => println!("[{:>2}/{}] ✗ {name}: {e}", i + 1, STEPS.len()),
            }
        }
        results.push((*name, result.is_ok(), ms));
    }
    results
}
