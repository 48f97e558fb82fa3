//! The soak's fleet release: one job (`POST /releases` through the gateway) over some of the
//! day's mini programs, run by the release worker as Lambda's SQS event source runs it
//! ([`crate::releases::poll_once`]), a stretch per tick: the worker until the queue is idle, the
//! sandbox's audits finished (their pushes through the message URL, the bus and the queue; the
//! pushes of `lose_push` mini programs lost), the worker again, then the scheduled run's poll of
//! audits whose push never came, and the worker once more.
//!
//! Faults: a 45009 burst on `wxa/commit`, lost audit pushes, and worker invocations killed at a
//! step boundary (seeded): the invocation's batch stops there, as a Lambda timeout or a crash
//! stops it, nothing after the boundary runs and its messages come back after the queue's
//! visibility timeout. The kill unwinds the invocation from the engine's step hook (the
//! process-level kill of `release-worker-proc` costs a process per kill); what the dead
//! invocation kept in memory (cached credentials, the token client) survives, unlike a real
//! Lambda's, so this is the kill of the step, not of the sandbox.

use std::collections::BTreeMap;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::FutureExt;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use reqwest::Method;
use serde_json::{Value, json};
use wxopen::clock::SystemClock;
use wxopen::model::{JobState, Step, TargetState};
use wxopen::releases::{Boundary, StepHook};
use wxopen::store::{DynamoStore, ReleaseStore};

use crate::releases::{SqsCounts, library_template, poll_once};
use crate::sandbox::CallCount;
use crate::stack::{Stack, TestWorker};

/// Every boundary a kill can fall on, with its name in the report.
const BOUNDARIES: [(Step, Boundary, &str); 9] = [
    (Step::Commit, Boundary::BeforeCall, "commit:before_call"),
    (Step::Commit, Boundary::AfterCall, "commit:after_call"),
    (Step::Commit, Boundary::AfterRecord, "commit:after_record"),
    (Step::Submit, Boundary::BeforeCall, "submit:before_call"),
    (Step::Submit, Boundary::AfterCall, "submit:after_call"),
    (Step::Submit, Boundary::AfterRecord, "submit:after_record"),
    (Step::Release, Boundary::BeforeCall, "release:before_call"),
    (Step::Release, Boundary::AfterCall, "release:after_call"),
    (Step::Release, Boundary::AfterRecord, "release:after_record"),
];

/// The version the fleet release ships.
const USER_VERSION: &str = "3.1.0";

/// The worker's step hook: armed with one boundary, it kills the invocation that reaches it
/// first (then disarms).
#[derive(Debug, Clone, Default)]
pub struct KillSwitch(Arc<Mutex<Option<(Step, Boundary)>>>);

/// What a killed invocation unwinds with.
struct Killed;

impl KillSwitch {
    fn arm(&self, at: (Step, Boundary)) {
        if let Ok(mut a) = self.0.lock() {
            *a = Some(at);
        }
    }

    fn armed(&self) -> bool {
        self.0.lock().map(|a| a.is_some()).unwrap_or(false)
    }

    fn disarm(&self) {
        if let Ok(mut a) = self.0.lock() {
            *a = None;
        }
    }
}

impl StepHook for KillSwitch {
    fn at(&self, step: Step, boundary: Boundary) {
        let fire = self
            .0
            .lock()
            .map(|mut a| {
                let hit = *a == Some((step, boundary));
                if hit {
                    *a = None;
                }
                hit
            })
            .unwrap_or(false);
        if fire {
            // No panic message: this is the planned end of the invocation.
            std::panic::resume_unwind(Box::new(Killed));
        }
    }
}

/// How the job is set up.
#[derive(Debug, Clone)]
pub struct FleetPlan {
    pub targets: Vec<String>,
    pub concurrency: u32,
    /// Worker invocations to kill over the job.
    pub kills: usize,
    pub faults: bool,
    pub seed: u64,
}

/// A fleet release under way.
pub struct Fleet {
    pub id: String,
    pub template_id: i64,
    pub targets: Vec<String>,
    /// Mini programs whose audit pushes WeChat loses.
    pub lost: Vec<String>,
    /// Mini programs whose audit WeChat rejects.
    pub rejected: Vec<String>,
    /// Commits answered 45009 by the burst.
    pub burst: u64,
    worker: TestWorker<KillSwitch>,
    kill: KillSwitch,
    armed: Option<&'static str>,
    kills_left: usize,
    /// Boundaries where an invocation was killed, in order.
    pub killed: Vec<&'static str>,
    counts: Arc<SqsCounts>,
    scheduled: token_refresh::App<
        DynamoStore,
        Arc<wxopen::secrets::StaticCredentials>,
        SystemClock,
        wxopen::events::EventBridgePublisher,
        wxopen::queue::SqsQueue,
    >,
    /// Reads the job without being counted (the stack's store counts every request).
    watch: DynamoStore,
    rng: StdRng,
    pub audits_polled: u64,
    pub pushes_delivered: u64,
    pub invocations: u64,
    /// Per target: commits and audit submissions at the sandbox, summed over the day (the
    /// sandbox's counters are cleared at every stretch).
    pub calls: BTreeMap<String, [CallCount; 2]>,
}

/// Each target's end, for `report::check`.
#[derive(Debug, Default)]
pub struct FleetSeen {
    pub targets: u64,
    pub job_done: bool,
    pub states: BTreeMap<String, u64>,
    /// Targets whose final state the sandbox does not bear out (or not final).
    pub mismatched: Vec<String>,
    /// Targets with more than one accepted commit or submission (or none for a released one).
    pub doubled: Vec<String>,
    pub lost_pushes: u64,
    pub rejected: u64,
    pub audits_polled: u64,
    pub pushes_delivered: u64,
    pub killed: Vec<&'static str>,
    pub commits_refused_45009: u64,
    pub invocations: u64,
    pub sqs_requests: u64,
}

impl Fleet {
    /// Sets the sandbox up (audits finish only when run; some rejected, some pushes lost, a
    /// 45009 burst) and creates the job with `POST /releases`.
    pub async fn start(stack: &Stack, plan: &FleetPlan) -> Result<Self, String> {
        let mut rng = StdRng::seed_from_u64(plan.seed ^ 0x0019_f1ee);
        let (s, v) = stack
            .control(
                Method::POST,
                "config",
                json!({"audit_delay_secs": 3600, "audit_auto_push": false, "audit_quota": 1_000_000}),
            )
            .await;
        if s != 200 {
            return Err(format!("sandbox config: {v}"));
        }
        let template_id = library_template(stack, USER_VERSION).await?;
        // One in 30 (at least one) rejected, as many others with their pushes lost.
        let share = (plan.targets.len() / 30).max(1);
        let rejected = pick(&plan.targets, share, &mut rng);
        let lost = if plan.faults {
            let rest: Vec<String> = plan
                .targets
                .iter()
                .filter(|a| !rejected.contains(a))
                .cloned()
                .collect();
            pick(&rest, share, &mut rng)
        } else {
            Vec::new()
        };
        for (appids, setting) in [
            (
                &rejected,
                json!({"outcome": "reject", "reason": "soak: 内容不符<br>"}),
            ),
            (&lost, json!({"lose_push": true})),
        ] {
            if appids.is_empty() {
                continue;
            }
            let mut body = setting;
            body["appids"] = json!(appids);
            let (s, v) = stack.control(Method::POST, "code/programs", body).await;
            if s != 200 {
                return Err(format!("code/programs: {v}"));
            }
        }
        let burst = if plan.faults {
            let count = rng.random_range(2..6u64);
            let (s, v) = stack
                .control(
                    Method::POST,
                    "faults",
                    json!({"api": "wxa/commit", "count": count, "errcode": 45009}),
                )
                .await;
            if s != 200 {
                return Err(format!("45009 burst: {v}"));
            }
            count
        } else {
            0
        };
        let (s, created) = stack
            .api(
                Method::POST,
                "/releases",
                Some(json!({
                    "template_id": template_id,
                    "user_version": USER_VERSION,
                    "user_desc": "soak",
                    "ext_json": {"extAppid": "{{appid}}"},
                    "item_list": [{"address": "pages/index/index", "tag": "tools", "first_class": "工具", "second_class": "效率", "first_id": 287, "second_id": 616, "title": "home"}],
                    "targets": {"appids": plan.targets},
                    "concurrency": plan.concurrency,
                })),
            )
            .await;
        if s != 201 {
            return Err(format!("POST /releases: {s} {created}"));
        }
        let id = created["id"]
            .as_str()
            .ok_or(format!("no job id: {created}"))?
            .to_string();
        let counts = Arc::new(SqsCounts::default());
        let kill = KillSwitch::default();
        let settings = Stack::release_settings();
        let worker = stack.release_worker(settings.clone(), kill.clone(), counts.clone());
        let mut scheduled = token_refresh::App {
            deps: stack.deps(),
            settings: Default::default(),
            publisher: stack.publisher(),
            release_queue: stack.releases.queue(),
            release_settings: settings,
        };
        // The poll comes only once the queue is idle: every audit still out then is overdue.
        scheduled.release_settings.audit_poll_after_secs = 0;
        let watch = DynamoStore::new(
            aws_sdk_dynamodb::Client::new(&crate::aws_config().await),
            stack.store.table(),
        );
        Ok(Self {
            id,
            template_id,
            targets: plan.targets.clone(),
            lost,
            rejected,
            burst,
            worker,
            kill,
            armed: None,
            kills_left: if cfg!(panic = "unwind") {
                plan.kills
            } else {
                0
            },
            killed: Vec::new(),
            counts,
            scheduled,
            watch,
            rng,
            audits_polled: 0,
            pushes_delivered: 0,
            invocations: 0,
            calls: BTreeMap::new(),
        })
    }

    pub async fn done(&self) -> bool {
        self.watch
            .get_job(&self.id)
            .await
            .ok()
            .flatten()
            .is_some_and(|j| j.state == JobState::Done)
    }

    /// Worker invocations until the queue is idle (nothing visible, in flight or delayed), or
    /// `within` has passed; some killed at an armed boundary.
    async fn drive(&mut self, stack: &Stack, within: Duration) {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if self.kills_left > 0 && !self.kill.armed() && self.rng.random_bool(0.3) {
                let (step, boundary, name) = BOUNDARIES[self.rng.random_range(0..BOUNDARIES.len())];
                self.kill.arm((step, boundary));
                self.armed = Some(name);
            }
            self.invocations += 1;
            let invocation = poll_once(&stack.releases, &self.worker, 1, Some(&self.counts));
            match AssertUnwindSafe(invocation).catch_unwind().await {
                Ok(Ok(p)) if p.received == 0 => {
                    if stack.releases.depth().await.is_ok_and(|d| d == 0) {
                        return;
                    }
                }
                Ok(_) => {}
                Err(payload) if payload.is::<Killed>() => {
                    self.kills_left = self.kills_left.saturating_sub(1);
                    self.killed.extend(self.armed.take());
                }
                Err(payload) => std::panic::resume_unwind(payload),
            }
        }
    }

    /// One stretch of the job: the worker, the audits finishing (pushes out), the worker, the
    /// scheduled poll (unless the deployment skips it), the worker.
    pub async fn stretch(&mut self, stack: &Stack, audit_poll: bool) {
        let within = Duration::from_secs(120);
        self.drive(stack, within).await;
        let pushed = stack.sandbox.run_audits(true).await;
        self.pushes_delivered +=
            u64::try_from(pushed.iter().filter(|d| d.delivery.delivered).count())
                .unwrap_or_default();
        self.drive(stack, within).await;
        if audit_poll {
            self.audits_polled +=
                u64::from(token_refresh::releases(&self.scheduled).await.audits_polled);
            self.drive(stack, within).await;
        }
    }

    /// The end of the day: no more kills; stretches until the job is done or one changes
    /// nothing (a deployment that never polls lost audits stays open).
    pub async fn finish(&mut self, stack: &Stack, audit_poll: bool) {
        self.kills_left = 0;
        self.kill.disarm();
        self.armed = None;
        let mut last = None;
        for _ in 0..6 {
            if self.done().await {
                return;
            }
            self.stretch(stack, audit_poll).await;
            let counts = self
                .watch
                .get_job(&self.id)
                .await
                .ok()
                .flatten()
                .map(|j| format!("{:?}", j.counts));
            if counts.is_some() && counts == last {
                return;
            }
            last = counts;
        }
    }

    /// Adds the sandbox's commit and submission counters of every target (before they are
    /// cleared).
    pub fn tally(&mut self, stack: &Stack) {
        for a in &self.targets {
            let e = self.calls.entry(a.clone()).or_default();
            for (i, api) in ["wxa/commit", "wxa/submit_audit"].iter().enumerate() {
                let c = stack.sandbox.call_count(a, api);
                e[i].calls += c.calls;
                e[i].ok += c.ok;
            }
        }
    }

    /// Every target's final state against the sandbox's version and audit state.
    pub async fn seen(&self, stack: &Stack) -> FleetSeen {
        let mut out = FleetSeen {
            targets: u64::try_from(self.targets.len()).unwrap_or_default(),
            job_done: self.done().await,
            lost_pushes: u64::try_from(self.lost.len()).unwrap_or_default(),
            rejected: u64::try_from(self.rejected.len()).unwrap_or_default(),
            audits_polled: self.audits_polled,
            pushes_delivered: self.pushes_delivered,
            killed: self.killed.clone(),
            commits_refused_45009: self.burst,
            invocations: self.invocations,
            sqs_requests: self.counts.total(),
            ..FleetSeen::default()
        };
        let mut targets = Vec::new();
        let mut after = None;
        loop {
            match self.watch.list_targets(&self.id, None, 1000, after).await {
                Ok((page, next)) => {
                    targets.extend(page);
                    match next {
                        Some(n) => after = Some(n),
                        None => break,
                    }
                }
                Err(e) => {
                    out.mismatched.push(format!("targets unreadable: {e}"));
                    break;
                }
            }
        }
        if !out.job_done {
            out.mismatched.push(format!("job {} not done", self.id));
        }
        for t in &targets {
            *out.states.entry(t.state.as_str().to_string()).or_default() += 1;
            let (_, p) = stack
                .control(
                    Method::GET,
                    &format!("code/programs/{}", t.appid),
                    json!({}),
                )
                .await;
            if let Err(why) = matches_sandbox(t, &p, self.template_id) {
                out.mismatched
                    .push(format!("{} {}: {why}", t.appid, t.state.as_str()));
            }
            let [commit, submit] = self.calls.get(&t.appid).copied().unwrap_or_default();
            let shipped = matches!(t.state, TargetState::Released | TargetState::Rejected);
            if commit.ok > 1 || submit.ok > 1 || shipped && (commit.ok, submit.ok) != (1, 1) {
                out.doubled.push(format!(
                    "{}: {} commits, {} submissions accepted",
                    t.appid, commit.ok, submit.ok
                ));
            }
        }
        if targets.len() != self.targets.len() {
            out.mismatched.push(format!(
                "{} targets for {} mini programs",
                targets.len(),
                self.targets.len()
            ));
        }
        out
    }
}

/// `k` distinct members of `from` (all of them if fewer).
fn pick(from: &[String], k: usize, rng: &mut StdRng) -> Vec<String> {
    let mut pool = from.to_vec();
    let mut out = Vec::new();
    while out.len() < k && !pool.is_empty() {
        out.push(pool.swap_remove(rng.random_range(0..pool.len())));
    }
    out
}

/// Whether the sandbox (`GET /sandbox/code/programs/{appid}`) bears out a target's state.
fn matches_sandbox(
    t: &wxopen::model::ReleaseTarget,
    p: &Value,
    template_id: i64,
) -> Result<(), String> {
    let released = &p["program"]["released"];
    let ours = released["template_id"] == template_id && released["user_version"] == USER_VERSION;
    let last = p["program"]["audits"]
        .as_array()
        .and_then(|a| a.last())
        .cloned()
        .unwrap_or(Value::Null);
    match t.state {
        TargetState::Released if ours && p["committed"]["template_id"] == template_id => Ok(()),
        TargetState::Released => Err(format!("the sandbox has {released} live")),
        TargetState::Rejected
            if !ours
                && last["status"] == 1
                && last["auditid"].as_i64() == t.auditid
                && last["reason"].as_str() == t.reason.as_deref() =>
        {
            Ok(())
        }
        TargetState::Rejected => Err(format!("the sandbox's last audit is {last}")),
        TargetState::Failed | TargetState::Skipped | TargetState::Cancelled if !ours => Ok(()),
        s if s.is_terminal() => Err(format!("the sandbox has it live: {released}")),
        _ => Err(format!("not final (audit {last})")),
    }
}
