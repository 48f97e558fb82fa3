//! The soak (`make soak`, issue 21): a compressed day of a provider's platform on the local stack
//! (moto, the WeChat sandbox over real HTTP, the local gateway in front of the real handlers, the
//! bus → queue, the reply hook), under faults drawn from a seeded [`StdRng`], then invariants
//! checked and figures measured ([`report`]).
//!
//! Time is compressed by configuration, never by sleeping: the sandbox issues short-lived tokens
//! ([`SoakConfig::token_ttl_secs`]) and the scheduled run is driven "tick" by tick with a
//! [`FixedClock`] advanced one token lifetime per tick, so every token is due, and refreshed, at
//! every tick; a ticket is pushed at every tick.
//!
//! A day is `ticks` stretches. Each stretch: a ticket, the scheduled run (refresh + outbox
//! sweep), a share of the messages (WeChat's retries included), of the gateway calls, of the
//! sign-ins (three flows: [`sign_in`]), a stretch of the fleet release ([`fleet`]), and the
//! cancellations / re-authorizations scheduled for it. Actors are functions of this module
//! (`messages`, `gateway_calls`, `sign_ins`, `release`, `cancellations`); each counts its own
//! DynamoDB and WeChat calls into [`Work`].
//!
//! Aborted invocations: release worker invocations killed at a step boundary ([`fleet`]), and
//! message-events invocations dropped mid-way ([`crate::gateway::HandlerAborts`]: API Gateway
//! answers 503, WeChat retries), both seeded.

pub mod fleet;
pub mod report;
pub mod sign_in;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Duration, Instant};

use futures_util::stream::{self, StreamExt};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use reqwest::Method;
use serde_json::{Value, json};
use wxopen::clock::{Clock, FixedClock, SystemClock};
use wxopen::model::{AccountKind, AuthorizationGrant, AuthorizerProfileRecord, NewToken};
use wxopen::refresher::RefreshSettings;

use crate::hook::HookMode;
use crate::sandbox::{DailyQuota, SandboxConfig};
use crate::stack::Stack;
pub use report::{Invariant, SoakReport};

/// The size and the faults of one soak run.
#[derive(Debug, Clone)]
pub struct SoakConfig {
    /// Merchants in the table (half official accounts, half mini programs).
    pub merchants: usize,
    /// Of these, how many authorize through the whole flow (link, push and redirect in a random
    /// order); the rest are seeded already authorized, as a platform's existing base.
    pub authorizations: usize,
    /// User messages and events pushed to official accounts (WeChat's retries not counted).
    pub messages: usize,
    /// Calls through the WeChat API gateway.
    pub gateway_calls: usize,
    /// Sign-ins, each in one of the three flows (drawn from the seed): mini program login, web
    /// OAuth, follow-to-log-in with the hosted page.
    pub sign_ins: usize,
    /// Mini programs in the fleet release (at most the day's mini programs), and the job's
    /// concurrency.
    pub release_targets: usize,
    pub release_concurrency: u32,
    /// With `faults`: release worker invocations killed at a step boundary.
    pub worker_kills: usize,
    /// With `faults`: message-events invocations dropped mid-way (a Lambda timeout).
    pub handler_aborts: usize,
    /// Merchants that cancel during the run and re-authorize at the next tick.
    pub cancellations: usize,
    /// Stretches of the day (one scheduled run and one ticket each).
    pub ticks: usize,
    /// Token lifetime at the sandbox and the clock step of each tick, in seconds.
    pub token_ttl_secs: i64,
    pub seed: u64,
    /// Inject faults (off: the same day, faultless, for comparison).
    pub faults: bool,
    /// With `faults`: DynamoDB requests (per million) answered with throttling or a 500 by an
    /// SDK interceptor ([`crate::DynamoFaults`]), nothing written.
    pub dynamodb_fault_ppm: u64,
    /// Requests in flight at once.
    pub concurrency: usize,
    /// Peak resident memory allowed for the whole process (stack and soak), KiB.
    pub memory_limit_kib: u64,
    /// A deliberately broken deployment, to show the check can fail.
    pub broken: Option<Broken>,
}

/// Deployments the soak must catch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Broken {
    /// The scheduled run never sweeps the outbox: events recorded while EventBridge was down
    /// are never published (breaks `events_delivered_at_least_once`).
    NoOutboxSweep,
    /// The scheduled run never polls overdue audits: a release target whose audit push was lost
    /// stays `submitted` (breaks `every_release_target_final_and_matching_the_sandbox`).
    NoAuditPoll,
}

impl Broken {
    /// Each broken deployment by the name `SOAK_BROKEN` gives it.
    pub const BY_NAME: [(&'static str, Self); 2] = [
        ("no_outbox_sweep", Self::NoOutboxSweep),
        ("no_audit_poll", Self::NoAuditPoll),
    ];

    /// The broken deployment `SOAK_BROKEN` names, if it names one.
    pub fn from_name(name: &str) -> Option<Self> {
        let name = name.trim();
        Self::BY_NAME
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, b)| *b)
    }
}

impl SoakConfig {
    /// The run inside `make test`: seconds on two busy cores.
    pub fn small(seed: u64) -> Self {
        Self {
            merchants: 16,
            authorizations: 6,
            messages: 60,
            gateway_calls: 24,
            sign_ins: 12,
            release_targets: 6,
            release_concurrency: 2,
            worker_kills: 2,
            handler_aborts: 2,
            cancellations: 2,
            ticks: 3,
            token_ttl_secs: 1200,
            seed,
            faults: true,
            dynamodb_fault_ppm: 10_000,
            concurrency: 8,
            memory_limit_kib: 1024 * 1024,
            broken: None,
        }
    }

    /// `make soak`'s default day (every figure can be changed with `SOAK_*`).
    pub fn full(seed: u64) -> Self {
        Self {
            merchants: 1000,
            authorizations: 60,
            messages: 5000,
            gateway_calls: 2000,
            sign_ins: 500,
            release_targets: 300,
            release_concurrency: 50,
            worker_kills: 12,
            handler_aborts: 20,
            cancellations: 20,
            ticks: 6,
            token_ttl_secs: 1200,
            seed,
            faults: true,
            dynamodb_fault_ppm: 10_000,
            concurrency: 8,
            memory_limit_kib: 2 * 1024 * 1024,
            broken: None,
        }
    }

    /// `self` with any `SOAK_<FIELD>` from `get` (`SOAK_MERCHANTS`, `SOAK_MESSAGES`, ...).
    pub fn with_overrides(mut self, get: impl Fn(&str) -> Option<String>) -> Self {
        let num = |k: &str| get(k).and_then(|v| v.trim().parse::<u64>().ok());
        let set = |v: &mut usize, k: &str| {
            if let Some(n) = num(k).and_then(|n| usize::try_from(n).ok()) {
                *v = n;
            }
        };
        set(&mut self.merchants, "SOAK_MERCHANTS");
        set(&mut self.authorizations, "SOAK_AUTHORIZATIONS");
        set(&mut self.messages, "SOAK_MESSAGES");
        set(&mut self.gateway_calls, "SOAK_GATEWAY_CALLS");
        set(&mut self.sign_ins, "SOAK_SIGN_INS");
        set(&mut self.cancellations, "SOAK_CANCELLATIONS");
        set(&mut self.ticks, "SOAK_TICKS");
        set(&mut self.concurrency, "SOAK_CONCURRENCY");
        set(&mut self.release_targets, "SOAK_RELEASE_TARGETS");
        set(&mut self.worker_kills, "SOAK_WORKER_KILLS");
        set(&mut self.handler_aborts, "SOAK_HANDLER_ABORTS");
        if let Some(n) = num("SOAK_RELEASE_CONCURRENCY").and_then(|n| u32::try_from(n).ok()) {
            self.release_concurrency = n;
        }
        if let Some(n) = num("SOAK_SEED") {
            self.seed = n;
        }
        if let Some(n) = num("SOAK_DYNAMODB_FAULT_PPM") {
            self.dynamodb_fault_ppm = n;
        }
        if let Some(n) = num("SOAK_MEMORY_LIMIT_KIB") {
            self.memory_limit_kib = n;
        }
        if let Some(v) = get("SOAK_FAULTS") {
            self.faults = v.trim() != "0";
        }
        if let Some(broken) = get("SOAK_BROKEN").as_deref().and_then(Broken::from_name) {
            self.broken = Some(broken);
        }
        self
    }
}

/// DynamoDB requests, WeChat calls and wall time spent by one kind of work.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Work {
    pub units: u64,
    pub dynamodb: u64,
    pub wechat: u64,
    pub secs: f64,
}

/// Sign-ins of one flow.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct FlowCount {
    pub attempted: u64,
    pub completed: u64,
    pub reported_failed: u64,
}

/// What the run did and saw, for [`report::check`].
#[derive(Debug, Default)]
pub struct Observed {
    /// Message content → (appid, how many deliveries WeChat made).
    pub messages: BTreeMap<String, u32>,
    /// Event ids read from the queue per message content.
    pub event_ids: HashMap<String, Vec<String>>,
    /// Hook calls per message content.
    pub hook_calls: HashMap<String, u32>,
    /// Authorizations through the flow (first ones and re-authorizations).
    pub authorizations: u64,
    /// Successful `api_query_auth` calls.
    pub code_exchanges: u64,
    /// Gateway answers by status.
    pub gateway_statuses: BTreeMap<u16, u64>,
    /// Gateway answers that were not 200 and not the JSON error shape.
    pub gateway_malformed: u64,
    /// Sign-ins by flow.
    pub sign_ins: BTreeMap<&'static str, FlowCount>,
    /// Reported failures by flow and code.
    pub sign_in_errors: BTreeMap<String, u64>,
    /// Sign-ins neither completed nor reported failed: what happened (a sample).
    pub sign_ins_neither: Vec<String>,
    /// The fleet release's end (none when no release ran).
    pub fleet: Option<fleet::FleetSeen>,
    /// Message pushes WeChat saw answered with something other than 200 (what it saw of each).
    pub pushes_not_answered: Vec<String>,
    /// Messages WeChat delivered again because an attempt failed or outlived its 5 s deadline
    /// (the first perhaps still running).
    pub past_wechats_deadline: BTreeSet<String>,
    pub faults: BTreeMap<&'static str, u64>,
    pub work: BTreeMap<&'static str, Work>,
    /// Refresh reports' failures by cause, summed.
    pub refresh_failures: BTreeMap<String, u32>,
    /// Every credential value seen during the run (to look for in the logs).
    pub secrets: BTreeSet<String>,
    /// Handler time of the two callbacks, microseconds.
    pub callback_micros: Vec<u32>,
    /// WeChat's full-network release test, run once a tick.
    pub release_tests: Vec<ReleaseTestRun>,
}

/// One run of WeChat's full-network release test robot (全网发布) against its test account.
#[derive(Debug, Clone)]
pub struct ReleaseTestRun {
    /// The `QUERY_AUTH_CODE` push delivered twice at once (a retry while the first runs).
    pub retried_while_running: bool,
    /// message-events invocations killed mid-way during the run.
    pub killed: u64,
    /// All three cases answered as the robot expects, in time.
    pub passed: bool,
    /// `<code>_from_api` customer-service messages the sandbox received for the run's code.
    pub from_api_sends: u64,
}

struct Day<'a> {
    stack: &'a Stack,
    config: &'a SoakConfig,
    rng: StdRng,
    seen: Observed,
    start: i64,
    /// Authorized official accounts and mini programs (the sandbox agrees).
    oas: Vec<String>,
    mps: Vec<String>,
    /// Cancelled, to re-authorize at the next tick.
    cancelled: Vec<String>,
    message_seq: usize,
    sign_in_seq: usize,
    /// The fleet release under way, and its targets (never cancelled during the job).
    fleet: Option<fleet::Fleet>,
    protected: BTreeSet<String>,
    /// For the sandbox's user actor, whose answers wait for WeChat's retries.
    http: reqwest::Client,
}

/// Runs a day and checks it.
pub async fn run(config: &SoakConfig) -> SoakReport {
    let logs = crate::LogCapture::global();
    let started = Instant::now();
    let stack = Stack::start_with(SandboxConfig {
        token_ttl_secs: config.token_ttl_secs,
        daily_quota: DailyQuota {
            default: 100_000_000,
            per_api: Default::default(),
        },
        ..SandboxConfig::default()
    })
    .await;
    let mut day = Day {
        stack: &stack,
        config,
        rng: StdRng::seed_from_u64(config.seed),
        seen: Observed::default(),
        start: SystemClock.now(),
        oas: Vec::new(),
        mps: Vec::new(),
        cancelled: Vec::new(),
        message_seq: 0,
        sign_in_seq: 0,
        fleet: None,
        protected: BTreeSet::new(),
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(180))
            .build()
            .expect("http client"),
    };
    day.seed_merchants().await;
    eprintln!(
        "soak: {} merchants seeded at {:.0} s",
        config.merchants,
        started.elapsed().as_secs_f64()
    );
    if config.faults {
        stack.ops.1.set(config.seed, config.dynamodb_fault_ppm);
    }
    stack.push_ticket().await;
    day.authorize_through_the_flow().await;
    let ticks = config.ticks.max(1);
    let bus_down_tick = day.rng.random_range(0..ticks);
    for tick in 0..ticks {
        if config.faults && day.rng.random_bool(0.5) {
            // A component-events invocation timing out on the ticket push: WeChat pushes again.
            let after = day.rng.random_range(1..4);
            stack.gateway.aborts.plan("component-events", after);
        }
        day.stack.push_ticket().await;
        stack.gateway.aborts.clear();
        day.scheduled_run(tick).await;
        day.reauthorize().await;
        let share = |n: usize| n / ticks + usize::from(tick < n % ticks);
        day.messages(share(config.messages), tick == bus_down_tick)
            .await;
        day.gateway_calls(share(config.gateway_calls)).await;
        day.sign_ins(share(config.sign_ins)).await;
        day.release(tick).await;
        day.cancellations(share(config.cancellations)).await;
        day.release_test(tick).await;
        day.collect().await;
        eprintln!(
            "soak: tick {}/{ticks} done at {:.0} s: {} messages, {} gateway calls, {} sign-ins so far",
            tick + 1,
            started.elapsed().as_secs_f64(),
            day.seen.messages.len(),
            day.seen.gateway_statuses.values().sum::<u64>(),
            day.sign_in_seq,
        );
    }
    // The end of the day: WeChat and AWS well again, the last re-authorizations, two more
    // scheduled runs (the second picks up what the first recovered), everything read.
    day.stack.control(Method::DELETE, "faults", json!({})).await;
    day.stack.ops.1.set(config.seed, 0);
    let (throttled, internal_errors) = day.stack.ops.1.injected();
    day.seen.faults.insert("dynamodb_throttled", throttled);
    day.seen
        .faults
        .insert("dynamodb_internal_error", internal_errors);
    day.stack.hook.set_mode(HookMode::Echo);
    day.reauthorize().await;
    day.scheduled_run(ticks).await;
    day.scheduled_run(ticks + 1).await;
    day.finish_release().await;
    let message_kills = day.message_handler_kills();
    day.seen
        .faults
        .insert("message_handler_killed_mid_way", message_kills);
    let release_test_kills = day.seen.release_tests.iter().map(|r| r.killed).sum();
    day.seen
        .faults
        .insert("release_test_handler_killed_mid_way", release_test_kills);
    day.seen.faults.insert(
        "ticket_handler_killed_mid_way",
        stack.gateway.aborts.fired("component-events"),
    );
    day.collect().await;
    if let Some(f) = &day.fleet {
        day.seen.fleet = Some(f.seen(&stack).await);
    }
    let tokens = report::tokens_held(&stack).await;
    let elapsed = started.elapsed();
    let mut seen = day.seen;
    seen.callback_micros = ["message-events", "component-events"]
        .iter()
        .flat_map(|f| stack.gateway.timings.micros(f))
        .collect();
    report::check(config, seen, tokens, &logs.text(), elapsed)
}

impl Day<'_> {
    async fn seed_merchants(&mut self) {
        let idle = self
            .config
            .merchants
            .saturating_sub(self.config.authorizations);
        let oas = idle / 2;
        let now = SystemClock.now();
        let mut grants = Vec::new();
        let mut kinds = Vec::new();
        for (kind, start, count) in [
            ("official_account", 1, oas),
            ("mini_program", oas + 1, idle - oas),
        ] {
            if count == 0 {
                continue;
            }
            let (status, list) = self
                .stack
                .control(
                    Method::POST,
                    "merchants/bulk",
                    json!({ "count": count, "start": start, "kind": kind }),
                )
                .await;
            assert_eq!(status, 200, "bulk merchants: {list}");
            for m in list.as_array().into_iter().flatten() {
                let appid = m["appid"].as_str().unwrap_or_default().to_string();
                grants.push(AuthorizationGrant {
                    appid: appid.clone(),
                    event_time: Some(now),
                    func_info: m["func_info"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|f| f.as_u64().and_then(|f| u32::try_from(f).ok()))
                        .collect(),
                    token: NewToken {
                        // Not a token the sandbox knows: the first scheduled run replaces it.
                        access_token: format!("seeded-{appid}").into(),
                        expires_at: now,
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
                });
                kinds.push(kind);
                if kind == "official_account" {
                    self.oas.push(appid);
                } else {
                    self.mps.push(appid);
                }
            }
        }
        // Their profiles as the authorization would have read them (`api_get_authorizer_info`).
        let (_, all) = self
            .stack
            .control(Method::GET, "merchants", json!({}))
            .await;
        let profiles: HashMap<&str, &Value> = all
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|m| Some((m["appid"].as_str()?, m)))
            .collect();
        for (grant, kind) in grants.iter_mut().zip(kinds) {
            let m = profiles
                .get(grant.appid.as_str())
                .copied()
                .unwrap_or(&Value::Null);
            grant.profile = Some(AuthorizerProfileRecord {
                kind: if kind == "mini_program" {
                    AccountKind::MiniProgram
                } else {
                    AccountKind::OfficialAccount
                },
                nick_name: m["nick_name"].as_str().unwrap_or_default().to_string(),
                user_name: m["user_name"].as_str().unwrap_or_default().to_string(),
                principal_name: m["subject"].as_str().map(str::to_string),
                service_type: m["service_type"].as_i64().unwrap_or(2),
                verify_type: m["verify_type"].as_i64().unwrap_or(0),
                head_img: None,
            });
        }
        for chunk in grants.chunks(500) {
            self.stack
                .store
                .import_authorizers(chunk)
                .await
                .expect("seeded authorizers imported");
        }
    }

    /// Counts what `f` spends as `units` of `kind`.
    async fn measured<T>(
        &mut self,
        kind: &'static str,
        units: u64,
        f: impl std::future::Future<Output = T>,
    ) -> T {
        let (ops, calls) = (self.stack.ops.total(), self.stack.sandbox.calls().len());
        let started = Instant::now();
        let out = f.await;
        let w = self.seen.work.entry(kind).or_default();
        w.units += units;
        w.secs += started.elapsed().as_secs_f64();
        w.dynamodb += self.stack.ops.total().saturating_sub(ops);
        w.wechat += u64::try_from(self.stack.sandbox.calls().len().saturating_sub(calls))
            .unwrap_or_default();
        out
    }

    fn fault_count(&mut self, name: &'static str) {
        *self.seen.faults.entry(name).or_default() += 1;
    }

    async fn fault(&mut self, name: &'static str, body: Value) {
        let (status, answer) = self.stack.control(Method::POST, "faults", body).await;
        assert_eq!(status, 200, "fault {name}: {answer}");
        self.fault_count(name);
    }

    async fn authorize_through_the_flow(&mut self) {
        let mut new = Vec::new();
        for i in 0..self.config.authorizations {
            let mp = i % 2 == 1;
            let appid = format!("wxs{:015}", i + 1);
            let kind = if mp {
                "mini_program"
            } else {
                "official_account"
            };
            let (status, body) = self
                .stack
                .control(
                    Method::POST,
                    "merchants",
                    json!({ "appid": appid, "kind": kind }),
                )
                .await;
            assert_eq!(status, 200, "merchant {appid}: {body}");
            new.push((appid, mp));
        }
        let n = u64::try_from(new.len()).unwrap_or_default();
        let orders: Vec<&str> = new.iter().map(|_| self.order()).collect();
        let (stack, c) = (self.stack, self.config.concurrency);
        self.measured("authorization", n, async {
            stream::iter(new.iter().zip(orders))
                .for_each_concurrent(c, |((appid, _), order)| async move {
                    stack.authorize(appid, order).await;
                })
                .await;
        })
        .await;
        self.seen.authorizations += n;
        for (appid, mp) in new {
            if mp {
                self.mps.push(appid);
            } else {
                self.oas.push(appid);
            }
        }
    }

    /// The order WeChat delivers an authorization's push and redirect in (reordered pushes).
    fn order(&mut self) -> &'static str {
        ["push_first", "redirect_first", "concurrent"][self.rng.random_range(0..3)]
    }

    /// One scheduled run at tick `tick`'s clock: faults on the refresh API first.
    async fn scheduled_run(&mut self, tick: usize) {
        if self.config.faults && tick < self.config.ticks {
            match self.rng.random_range(0..4) {
                0 => {
                    let count = self.rng.random_range(1..4);
                    self.fault(
                        "wechat_-1_on_refresh",
                        json!({"api": "api_authorizer_token", "count": count, "errcode": -1}),
                    )
                    .await;
                }
                1 => {
                    self.fault(
                        "61023_refresh_token_rejected",
                        json!({"api": "api_authorizer_token", "count": 2, "errcode": 61023}),
                    )
                    .await;
                }
                2 => {
                    // Past the client's 2 s deadline.
                    self.fault(
                        "refresh_past_the_deadline",
                        json!({"api": "api_authorizer_token", "count": 1, "latency_ms": 2300}),
                    )
                    .await;
                }
                _ => {}
            }
        }
        let at = self.start
            + self.config.token_ttl_secs * i64::try_from(tick + 1).unwrap_or(i64::MAX / 4);
        let app = token_refresh::App {
            deps: self.stack.deps_with_clock(FixedClock::new(at)),
            settings: RefreshSettings {
                max_profiles_per_run: self.config.merchants,
                ..RefreshSettings::default()
            },
            publisher: self.stack.publisher(),
            release_queue: self.stack.releases.queue(),
            release_settings: Default::default(),
        };
        let due = u64::try_from(self.oas.len() + self.mps.len()).unwrap_or_default();
        let report = self
            .measured("refresh", due, token_refresh::run(&app))
            .await;
        for (cause, n) in report.failures {
            *self.seen.refresh_failures.entry(cause).or_default() += n;
        }
        if self.config.broken != Some(Broken::NoOutboxSweep) {
            token_refresh::sweep(&app).await;
        }
    }

    async fn messages(&mut self, n: usize, bus_down: bool) {
        if n == 0 || self.oas.is_empty() {
            return;
        }
        if self.config.faults && bus_down {
            self.stack.bus.take_down().await.expect("bus down");
            self.fault_count("eventbridge_down_for_a_stretch");
        }
        // The hook misbehaves for the first few messages of some stretches.
        let hook_fault = if self.config.faults {
            match self.rng.random_range(0..3) {
                0 => Some((
                    "reply_hook_slow",
                    HookMode::Sleep(
                        wxopen::reply::hook::DEFAULT_BUDGET + Duration::from_millis(300),
                    ),
                )),
                1 => Some(("reply_hook_broken", HookMode::Garbage)),
                _ => None,
            }
        } else {
            None
        };
        let mut batch = Vec::new();
        for _ in 0..n {
            self.message_seq += 1;
            let content = format!("soak-{}", self.message_seq);
            let appid = self.oas[self.rng.random_range(0..self.oas.len())].clone();
            let user = format!("user{}", self.rng.random_range(0..500));
            // WeChat's retries: the same encrypted push delivered again.
            let repeat: u32 = if self.config.faults && self.rng.random_bool(0.1) {
                self.rng.random_range(2..4)
            } else {
                1
            };
            if repeat > 1 {
                self.fault_count("duplicated_push");
            }
            self.seen.messages.insert(content.clone(), repeat);
            batch.push((appid, user, content, repeat));
        }
        let (troubled, rest) = batch.split_at(if hook_fault.is_some() { 2.min(n) } else { 0 });
        let (stack, c) = (self.stack, self.config.concurrency);
        let client = self.http.clone();
        let http = &client;
        let send = |batch: Vec<(String, String, String, u32)>| async move {
            stream::iter(batch)
                .map(|(appid, user, content, repeat)| async move {
                    // WeChat may spend up to attempts × 5 s on each of the repeats: a slow
                    // answer is counted, never a panic.
                    let answer = http
                        .post(format!("{}/sandbox/users/message", stack.sandbox.base_url()))
                        .json(&json!({"appid": appid, "user": user, "content": content, "repeat": repeat}))
                        .send()
                        .await;
                    let (s, r) = match answer {
                        Ok(resp) => (
                            resp.status().as_u16(),
                            resp.json::<Value>().await.unwrap_or(Value::Null),
                        ),
                        Err(_) => (0, Value::Null),
                    };
                    let repeats = r["repeats"].as_array().cloned().unwrap_or_default();
                    let in_flight = repeats
                        .iter()
                        .any(|d| d["elapsed_attempts"].as_u64() > Some(1));
                    // What WeChat saw of each delivery: status after how many attempts.
                    let not_answered = (s != 200 || r["status"] != 200).then(|| {
                        let trail: Vec<String> = repeats
                            .iter()
                            .map(|d| format!("{} after {}", d["status"], d["elapsed_attempts"]))
                            .collect();
                        format!("{content}: control {s}, deliveries [{}]", trail.join(", "))
                    });
                    (content, not_answered, in_flight)
                })
                .buffer_unordered(c)
                .collect::<Vec<_>>()
                .await
        };
        let units = u64::try_from(n).unwrap_or_default();
        let (troubled, rest) = (troubled.to_vec(), rest.to_vec());
        if self.config.faults {
            // Lambda timeouts: some invocations dropped at a seeded wait, mid-way.
            // Those not yet done (a planned one the invocation outran is planned again).
            let total = u64::try_from(self.config.handler_aborts).unwrap_or_default();
            let left = total.saturating_sub(self.message_handler_kills());
            let k = left.min(total.div_ceil(u64::try_from(self.config.ticks.max(1)).unwrap_or(1)));
            for _ in 0..k {
                let after = self.rng.random_range(1..5);
                stack.gateway.aborts.plan("message-events", after);
            }
        }
        let mut answers = Vec::new();
        if let Some((name, mode)) = hook_fault {
            self.fault_count(name);
            stack.hook.set_mode(mode);
            answers.extend(self.measured("message", 0, send(troubled)).await);
            stack.hook.set_mode(HookMode::Echo);
        }
        answers.extend(self.measured("message", units, send(rest)).await);
        stack.gateway.aborts.clear();
        for (content, not_answered, in_flight) in answers {
            self.seen.pushes_not_answered.extend(not_answered);
            if in_flight {
                self.seen.past_wechats_deadline.insert(content);
            }
        }
        if self.config.faults && bus_down {
            self.stack.bus.bring_up().await.expect("bus up");
        }
    }

    async fn gateway_calls(&mut self, n: usize) {
        if n == 0 || self.oas.is_empty() {
            return;
        }
        if self.config.faults {
            match self.rng.random_range(0..4) {
                0 => {
                    self.fault(
                        "wechat_-1_on_gateway",
                        json!({"api": "user/get", "count": 1, "errcode": -1}),
                    )
                    .await
                }
                1 => {
                    let count = self.rng.random_range(2..6);
                    self.fault(
                        "45009_burst",
                        json!({"api": "user/get", "count": count, "errcode": 45009}),
                    )
                    .await
                }
                2 => {
                    self.fault(
                        "gateway_call_past_the_deadline",
                        json!({"api": "user/get", "count": 1, "latency_ms": 2300}),
                    )
                    .await
                }
                _ => {}
            }
            // 40001 out of turn: WeChat invalidates a merchant's tokens.
            let victim = self.oas[self.rng.random_range(0..self.oas.len())].clone();
            let (s, v) = self
                .stack
                .control(
                    Method::POST,
                    &format!("merchants/{victim}/invalidate-token"),
                    json!({}),
                )
                .await;
            assert_eq!(s, 200, "{v}");
            self.fault_count("40001_out_of_turn");
        }
        let targets: Vec<String> = (0..n)
            .map(|_| self.oas[self.rng.random_range(0..self.oas.len())].clone())
            .collect();
        let (stack, c) = (self.stack, self.config.concurrency);
        let answers: Vec<(u16, bool)> = self
            .measured(
                "gateway_call",
                u64::try_from(n).unwrap_or_default(),
                stream::iter(targets)
                    .map(|appid| async move {
                        let (s, body) = stack
                            .api(
                                Method::GET,
                                &format!("/authorizers/{appid}/wechat/cgi-bin/user/get"),
                                None,
                            )
                            .await;
                        (s, s == 200 || report::error_shaped(s, &body))
                    })
                    .buffer_unordered(c)
                    .collect(),
            )
            .await;
        for (status, shaped) in answers {
            *self.seen.gateway_statuses.entry(status).or_default() += 1;
            self.seen.gateway_malformed += u64::from(!shaped);
        }
    }

    /// `n` sign-ins, each in a flow drawn from the seed (web OAuth and follow-to-log-in at
    /// official accounts, mini program login at mini programs), a WeChat `-1` on one
    /// flow's exchange first in some stretches.
    async fn sign_ins(&mut self, n: usize) {
        if n == 0 || self.mps.is_empty() || self.oas.is_empty() {
            return;
        }
        if self.config.faults && self.rng.random_bool(0.5) {
            let (name, api) = [
                (
                    "wechat_-1_on_miniprogram_sign_in",
                    "sns/component/jscode2session",
                ),
                (
                    "wechat_-1_on_oauth_sign_in",
                    "sns/oauth2/component/access_token",
                ),
                ("wechat_-1_on_follow_sign_in", "qrcode/create"),
            ][self.rng.random_range(0..3)];
            self.fault(name, json!({"api": api, "count": 1, "errcode": -1}))
                .await;
        }
        let who: Vec<(usize, String, String, usize)> = (0..n)
            .map(|_| {
                self.sign_in_seq += 1;
                let flow = self.rng.random_range(0..sign_in::FLOWS.len());
                let list = if flow == 0 { &self.mps } else { &self.oas };
                (
                    flow,
                    list[self.rng.random_range(0..list.len())].clone(),
                    format!("user{}", self.rng.random_range(0..500)),
                    self.sign_in_seq,
                )
            })
            .collect();
        let (stack, c) = (self.stack, self.config.concurrency);
        let outcomes: Vec<(usize, sign_in::Outcome)> = self
            .measured(
                "sign_in",
                u64::try_from(n).unwrap_or_default(),
                stream::iter(who)
                    .map(|(flow, appid, user, seq)| async move {
                        let outcome = match flow {
                            0 => sign_in::miniprogram(stack, &appid, &user).await,
                            1 => sign_in::oauth(stack, &appid, &user, seq).await,
                            _ => sign_in::follow(stack, &appid, &user, seq).await,
                        };
                        (flow, outcome)
                    })
                    .buffer_unordered(c)
                    .collect(),
            )
            .await;
        for (flow, o) in outcomes {
            let name = sign_in::FLOWS[flow];
            let count = self.seen.sign_ins.entry(name).or_default();
            count.attempted += 1;
            match o {
                sign_in::Outcome::Completed => count.completed += 1,
                sign_in::Outcome::Failed(code) => {
                    count.reported_failed += 1;
                    *self
                        .seen
                        .sign_in_errors
                        .entry(format!("{name}:{code}"))
                        .or_default() += 1;
                }
                sign_in::Outcome::Neither(what) => {
                    if self.seen.sign_ins_neither.len() < 20 {
                        self.seen.sign_ins_neither.push(format!("{name}: {what}"));
                    }
                }
            }
        }
    }

    /// The fleet release's stretch at `tick`: created at the first (over mini programs of the
    /// day, kept from cancelling while it runs), then advanced.
    async fn release(&mut self, tick: usize) {
        if tick == 0 && self.config.release_targets > 0 {
            let mut pool = self.mps.clone();
            let mut targets = Vec::new();
            while targets.len() < self.config.release_targets && !pool.is_empty() {
                targets.push(pool.swap_remove(self.rng.random_range(0..pool.len())));
            }
            let plan = fleet::FleetPlan {
                targets: targets.clone(),
                concurrency: self.config.release_concurrency.max(1),
                kills: if self.config.faults {
                    self.config.worker_kills
                } else {
                    0
                },
                faults: self.config.faults,
                seed: self.config.seed,
            };
            let stack = self.stack;
            let f = self
                .measured("release", 0, fleet::Fleet::start(stack, &plan))
                .await
                .expect("the fleet release starts");
            if f.burst > 0 {
                self.fault_count("45009_burst_on_commit");
            }
            self.protected.extend(targets);
            self.fleet = Some(f);
        }
        let audit_poll = self.config.broken != Some(Broken::NoAuditPoll);
        if let Some(mut f) = self.fleet.take() {
            let stack = self.stack;
            self.measured("release", 0, f.stretch(stack, audit_poll))
                .await;
            self.fleet = Some(f);
        }
    }

    /// The end of the day for the fleet release: driven until done (or stuck), its faults
    /// counted, its targets counted as units of work.
    async fn finish_release(&mut self) {
        let audit_poll = self.config.broken != Some(Broken::NoAuditPoll);
        let Some(mut f) = self.fleet.take() else {
            return;
        };
        let stack = self.stack;
        let units = u64::try_from(f.targets.len()).unwrap_or_default();
        self.measured("release", units, f.finish(stack, audit_poll))
            .await;
        for (name, n) in [
            ("release_worker_killed_at_a_step", f.killed.len()),
            ("audit_push_lost", f.lost.len()),
        ] {
            *self.seen.faults.entry(name).or_default() += u64::try_from(n).unwrap_or_default();
        }
        *self
            .seen
            .faults
            .entry("commits_answered_45009")
            .or_default() += f.burst;
        self.fleet = Some(f);
    }

    /// `n` merchants cancel (WeChat pushes `unauthorized`); they re-authorize at the next tick.
    async fn cancellations(&mut self, n: usize) {
        for _ in 0..n {
            let mp = self.rng.random_bool(0.5) && !self.mps.is_empty() || self.oas.len() < 2;
            let list = if mp { &mut self.mps } else { &mut self.oas };
            let open: Vec<usize> = (0..list.len())
                .filter(|i| !self.protected.contains(&list[*i]))
                .collect();
            if list.len() < 2 || open.is_empty() {
                continue;
            }
            let appid = list.swap_remove(open[self.rng.random_range(0..open.len())]);
            let stack = self.stack;
            let (s, v) = self
                .measured(
                    "cancellation",
                    1,
                    stack.control(
                        Method::POST,
                        &format!("merchants/{appid}/cancel"),
                        json!({}),
                    ),
                )
                .await;
            assert_eq!(s, 200, "cancel {appid}: {v}");
            self.cancelled.push(appid);
        }
    }

    /// message-events invocations killed mid-way while the day's messages were sent (those killed
    /// during a release test run are that run's).
    fn message_handler_kills(&self) -> u64 {
        let in_release_tests: u64 = self.seen.release_tests.iter().map(|r| r.killed).sum();
        self.stack
            .gateway
            .aborts
            .fired("message-events")
            .saturating_sub(in_release_tests)
    }

    /// WeChat's full-network release test robot, once a tick, against its test account: the
    /// `QUERY_AUTH_CODE` push delivered twice at once on even ticks (a retry while the first
    /// runs), on odd ticks a message-events invocation killed mid-way (a Lambda timeout).
    /// `<code>_from_api` must go out at most once per code (`from_api_sent_at_most_once_per_code`).
    async fn release_test(&mut self, tick: usize) {
        let stack = self.stack;
        let retried = tick.is_multiple_of(2);
        let kill = self.config.faults && !retried;
        if kill {
            let after = self.rng.random_range(1..4);
            stack.gateway.aborts.plan("message-events", after);
        }
        // The first run authorizes the test account (one code), and every run's QUERY_AUTH_CODE
        // is one more: each exchanged once (`code_exchanged_once_per_authorization`).
        self.seen.authorizations += if self.seen.release_tests.is_empty() {
            2
        } else {
            1
        };
        let fired = stack.gateway.aborts.fired("message-events");
        let (status, v) = self
            .measured(
                "release_test",
                1,
                stack.control(
                    Method::POST,
                    "release-test/run",
                    json!({ "retry_while_running": retried }),
                ),
            )
            .await;
        stack.gateway.aborts.clear();
        assert_eq!(status, 200, "release test: {v}");
        self.seen.release_tests.push(ReleaseTestRun {
            retried_while_running: retried,
            killed: stack
                .gateway
                .aborts
                .fired("message-events")
                .saturating_sub(fired),
            passed: v["passed"] == true,
            from_api_sends: v["custom_sends"].as_u64().unwrap_or_default(),
        });
    }

    async fn reauthorize(&mut self) {
        for appid in std::mem::take(&mut self.cancelled) {
            let order = self.order();
            let stack = self.stack;
            self.measured("authorization", 1, stack.authorize(&appid, order))
                .await;
            self.seen.authorizations += 1;
            let (_, m) = stack
                .control(Method::GET, &format!("merchants/{appid}"), json!({}))
                .await;
            if m["kind"] == "mini_program" {
                self.mps.push(appid);
            } else {
                self.oas.push(appid);
            }
        }
    }

    /// Reads the queue, the hook's calls and the sandbox's records, then clears the records
    /// (memory stays bounded over a long day).
    async fn collect(&mut self) {
        let events = self.stack.bus.drain_all().await.expect("queue read");
        for e in events {
            if let Some(content) = e["detail"]["fields"]["Content"].as_str() {
                self.seen
                    .event_ids
                    .entry(content.to_string())
                    .or_default()
                    .push(e["detail"]["id"].as_str().unwrap_or_default().to_string());
            }
        }
        for call in self.stack.hook.take_calls() {
            if let Some(content) = call.detail["fields"]["Content"].as_str() {
                *self.seen.hook_calls.entry(content.to_string()).or_default() += 1;
            }
        }
        self.seen.code_exchanges += u64::try_from(
            self.stack
                .sandbox
                .calls()
                .iter()
                .filter(|c| c.api == "api_query_auth" && c.errcode == 0)
                .count(),
        )
        .unwrap_or_default();
        if let Some(f) = self.fleet.as_mut() {
            f.tally(self.stack);
        }
        self.seen.secrets.extend(
            crate::credential_values(&self.stack.store, &self.stack.sandbox)
                .await
                .into_iter()
                .filter(|s| s.len() >= 8),
        );
        self.stack.sandbox.clear_calls();
        self.stack
            .control(Method::DELETE, "pushes", json!({}))
            .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_broken_name_names_a_distinct_deployment_and_nothing_else_does() {
        let named: Vec<_> = Broken::BY_NAME
            .iter()
            .map(|(n, _)| Broken::from_name(n))
            .collect();
        assert_eq!(
            named,
            [Some(Broken::NoOutboxSweep), Some(Broken::NoAuditPoll)]
        );
        for other in [
            "",
            "no_sweep",
            "NO_AUDIT_POLL",
            "no_outbox_sweep,no_audit_poll",
        ] {
            assert_eq!(Broken::from_name(other), None, "{other:?}");
        }
        let config = SoakConfig::small(21)
            .with_overrides(|k| (k == "SOAK_BROKEN").then(|| " no_audit_poll ".to_owned()));
        assert_eq!(config.broken, Some(Broken::NoAuditPoll));
    }
}
