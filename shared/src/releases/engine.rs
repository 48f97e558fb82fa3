//! The engine: one idempotent step per queue message.
//!
//! A target's step is recorded on it as intended (`begin_step`, with a lease) before WeChat is
//! called and the outcome recorded after (`transition`, in one transaction with the job's
//! counts). A message that finds an expired intent without an outcome (its worker died, or the
//! call timed out) reconciles first: for a commit, `getversioninfo`'s trial version; for a
//! submission, `get_latest_auditstatus`; for a release, the live version. Only if the call did
//! not land is it made again. If the reconciliation itself fails, the intent is kept and the
//! message retried: the engine never guesses towards a second commit or submission.
//!
//! At most `concurrency` targets per job are between `queued` and `submitted`: a target that
//! reaches `submitted`, parks on the quota or ends hands its slot to the next (`dispatch`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::calls::{AuditStatus, CodeCalls};
use super::{ReleaseSettings, render};
use crate::clock::Clock;
use crate::events::{Event, EventEntry, EventPublisher};
use crate::model::{
    ActiveAudit, AuthorizerState, Intent, JobState, ReleaseJob, ReleaseTarget, Step, TargetState,
    TargetUpdate,
};
use crate::queue::{MAX_DELAY_SECS, QueueError, WorkQueue};
use crate::store::{AuthorizerStore, BeginStep, ReleaseStore, StoreError};
use crate::tokens::TokenError;
use crate::wechat::WeChatError;

/// The permission set code management needs.
pub const CODE_SET: u32 = 18;
/// Targets a cancel sweep handles per message.
pub const SWEEP_PAGE: usize = 100;

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Queue(#[from] QueueError),
    /// An audit result arrived before its submission was recorded: try again later.
    #[error("the target's submission is not recorded yet")]
    NotYet,
}

/// A message on the work queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepMessage {
    pub job: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq: Option<u32>,
    /// Retries of this step so far.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub attempt: u32,
    /// Handed out as a new target (its slot counts against the job's concurrency).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub slot: bool,
    /// A quota-parked target may submit again.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub resume: bool,
    /// Cancel sweep over the job's targets after `seq`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub sweep: bool,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

impl StepMessage {
    /// A newly dispatched target.
    pub fn new(job: &str, seq: u32) -> Self {
        Self {
            job: job.to_string(),
            seq: Some(seq),
            attempt: 0,
            slot: true,
            resume: false,
            sweep: false,
        }
    }

    pub fn sweep(job: &str) -> Self {
        Self {
            job: job.to_string(),
            seq: None,
            attempt: 0,
            slot: false,
            resume: false,
            sweep: true,
        }
    }

    fn next(&self, seq: u32) -> Self {
        Self {
            job: self.job.clone(),
            seq: Some(seq),
            attempt: 0,
            slot: self.slot,
            resume: false,
            sweep: false,
        }
    }

    pub fn body(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// Where a step is; the test-only kill hook names these.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Boundary {
    /// Intent recorded, WeChat not yet called.
    BeforeCall,
    /// WeChat answered, the outcome not yet recorded.
    AfterCall,
    /// The outcome recorded, follow-up messages not yet sent.
    AfterRecord,
}

impl Boundary {
    pub fn as_str(self) -> &'static str {
        match self {
            Boundary::BeforeCall => "before_call",
            Boundary::AfterCall => "after_call",
            Boundary::AfterRecord => "after_record",
        }
    }
}

/// Called at each step boundary (production: nothing; the kill test aborts the process).
pub trait StepHook: Send + Sync {
    fn at(&self, _step: Step, _boundary: Boundary) {}
}

pub struct NoHook;
impl StepHook for NoHook {}

/// What an audit's result did to its target, as `apply_audit` acts on it.
enum Settled {
    /// Nothing yet (a status that is not a result): the audit stays recorded.
    Keep,
    /// Settled, or not this audit's business any more: the audit is forgotten.
    Drop,
    /// Settled in a job that may now be done: the audit is forgotten, then the job closed if
    /// nothing is left open.
    DropThenClose(Box<ReleaseJob>),
}

/// What a failed WeChat call means for the target.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Failure {
    /// Try again later; `unknown` when the call may have landed (timeout, unreadable answer):
    /// the intent is kept so the next attempt reconciles.
    Retry { unknown: bool },
    /// The merchant did not grant code management (61007, 86000).
    Skip,
    Fail {
        errcode: Option<i64>,
        reason: String,
    },
}

fn classify(e: &TokenError) -> Failure {
    match e {
        TokenError::WeChat(w) => match w {
            WeChatError::Timeout { .. } | WeChatError::Decode { .. } => {
                Failure::Retry { unknown: true }
            }
            WeChatError::Transport { .. } => Failure::Retry { unknown: true },
            WeChatError::Http { status, .. } if *status >= 500 => Failure::Retry { unknown: true },
            WeChatError::Http { status, .. } => Failure::Fail {
                errcode: None,
                reason: format!("http_{status}"),
            },
            WeChatError::Api { errcode, .. } => match errcode {
                -1 | 45009 => Failure::Retry { unknown: false },
                61007 | 86000 => Failure::Skip,
                code => Failure::Fail {
                    errcode: Some(*code),
                    reason: format!("errcode_{code}"),
                },
            },
        },
        TokenError::UnknownAuthorizer => Failure::Fail {
            errcode: None,
            reason: "unknown_authorizer".into(),
        },
        TokenError::NotAuthorized(_) => Failure::Fail {
            errcode: None,
            reason: "not_authorized".into(),
        },
        _ => Failure::Retry { unknown: false },
    }
}

/// WeChat's errcode behind a failed call, if WeChat answered one.
fn errcode(e: &TokenError) -> Option<i64> {
    match e {
        TokenError::WeChat(w) => w.errcode(),
        _ => None,
    }
}

const SKIP_REASON: &str = "permission set 18 (code management) not granted";

/// One invocation's engine.
pub struct Engine<'a, S, W, Q, P, K, H = NoHook> {
    pub store: &'a S,
    pub calls: &'a W,
    pub queue: &'a Q,
    pub publisher: &'a P,
    pub clock: &'a K,
    pub settings: &'a ReleaseSettings,
    pub hook: &'a H,
}

/// An audit result, from a push or a poll.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditResult {
    pub appid: String,
    pub status: i64,
    pub reason: Option<String>,
    /// When WeChat said so (push `CreateTime`), to ignore a push older than the submission.
    pub at: Option<i64>,
}

impl AuditResult {
    /// A `weapp_audit_*` event from the bus (the whole EventBridge event as SQS delivers it).
    pub fn from_bus_event(v: &Value) -> Option<Self> {
        let detail = v.get("detail")?;
        let status = match detail.get("event")?.as_str()? {
            "weapp_audit_success" => 0,
            "weapp_audit_fail" => 1,
            "weapp_audit_delay" => 4,
            _ => return None,
        };
        Some(Self {
            appid: detail.get("appid")?.as_str()?.to_string(),
            status,
            reason: detail
                .get("fields")
                .and_then(|f| f.get("Reason"))
                .and_then(Value::as_str)
                .map(str::to_string),
            at: detail.get("create_time").and_then(Value::as_i64),
        })
    }
}

/// What the scheduled run did for releases.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ScheduledReport {
    pub audits_polled: u32,
    pub audits_settled: u32,
    pub jobs_resumed: u32,
    pub targets_resumed: u32,
    pub failures: u32,
}

impl<S, W, Q, P, K, H> Engine<'_, S, W, Q, P, K, H>
where
    S: ReleaseStore + AuthorizerStore,
    W: CodeCalls,
    Q: WorkQueue,
    P: EventPublisher,
    K: Clock,
    H: StepHook,
{
    /// One queue message: a step, a cancel sweep, or an audit event from the bus. `Err` leaves
    /// the message for SQS to deliver again.
    pub async fn handle_body(&self, body: &str) -> Result<(), EngineError> {
        let Ok(value) = serde_json::from_str::<Value>(body) else {
            tracing::warn!(
                bytes = body.len(),
                "release queue: unreadable message dropped"
            );
            return Ok(());
        };
        if value.get("detail-type").is_some() {
            return match AuditResult::from_bus_event(&value) {
                Some(r) => self.apply_audit(&r).await,
                None => Ok(()),
            };
        }
        match serde_json::from_value::<StepMessage>(value) {
            Ok(m) if m.sweep => self.sweep(&m).await,
            Ok(m) => self.step(&m).await,
            Err(_) => {
                tracing::warn!("release queue: unknown message dropped");
                Ok(())
            }
        }
    }

    fn now(&self) -> i64 {
        self.clock.now()
    }

    fn intent(&self, step: Step) -> Intent {
        let now = self.now();
        Intent {
            step,
            at: now,
            until: now + self.settings.step_lease_secs,
        }
    }

    async fn send(&self, messages: &[StepMessage], delay: u32) -> Result<(), EngineError> {
        let bodies: Vec<String> = messages.iter().map(StepMessage::body).collect();
        self.queue.send(&bodies, delay).await?;
        Ok(())
    }

    /// A step message: does the target's current step.
    pub async fn step(&self, m: &StepMessage) -> Result<(), EngineError> {
        let Some(seq) = m.seq else { return Ok(()) };
        let Some(job) = self.store.get_job(&m.job).await? else {
            return Ok(());
        };
        let Some(t) = self.store.get_target(&m.job, seq).await? else {
            return Ok(());
        };
        if matches!(job.state, JobState::Cancelling | JobState::Cancelled) {
            return self.cancel_target(&job, &t).await;
        }
        match t.state {
            TargetState::Queued => self.commit(&job, &t, m).await,
            TargetState::Committed if !t.waiting_quota || m.resume => {
                self.submit(&job, &t, m).await
            }
            TargetState::Approved if job.auto_release => {
                // A slot message finding its target approved: its worker recorded the
                // submission and died (or failed) before handing the slot on, and the audit's
                // push approved it since. The release takes no slot; the slot is handed on
                // after it.
                let unslotted = StepMessage {
                    slot: false,
                    ..m.clone()
                };
                self.release(&job, &t, &unslotted).await?;
                if m.slot {
                    self.free_slot(&job, m).await
                } else {
                    Ok(())
                }
            }
            // Past its slot (parked on the quota, submitted, or further): a redelivered message
            // whose worker died after recording; hand the slot on (a duplicate may hand one
            // extra) and see whether the job is done.
            _ if m.slot => self.free_slot(&job, m).await,
            _ => Ok(()),
        }
    }

    /// Moves a target and publishes `release.target`. `false` when it had moved already.
    async fn transition(
        &self,
        t: &ReleaseTarget,
        to: TargetState,
        update: TargetUpdate,
    ) -> Result<bool, EngineError> {
        let now = self.now();
        if !self
            .store
            .transition(&t.job_id, t.seq, t.state, to, &update, now)
            .await?
        {
            return Ok(false);
        }
        let mut fields = BTreeMap::from([
            ("job_id".to_string(), t.job_id.clone()),
            ("seq".to_string(), t.seq.to_string()),
            ("from".to_string(), t.state.as_str().to_string()),
            ("to".to_string(), to.as_str().to_string()),
        ]);
        if let Some(a) = update.auditid.or(t.auditid) {
            fields.insert("auditid".into(), a.to_string());
        }
        if let Some(r) = update.reason {
            fields.insert("reason".into(), r);
        }
        if let Some(e) = update.errcode {
            fields.insert("errcode".into(), e.to_string());
        }
        let event = Event::release_target(&t.appid, &t.job_id, t.seq, to.as_str(), now, fields);
        match EventEntry::from_event(&event) {
            Ok(entry) => {
                let report = self.publisher.publish(&[entry]).await;
                if !report.all_published() {
                    tracing::warn!(job = %t.job_id, seq = t.seq, "release.target event not published");
                }
            }
            Err(e) => tracing::warn!(error = %e, "release.target event not built"),
        }
        Ok(true)
    }

    /// Ends a target (and, if it was the job's last open one, the job).
    async fn finish(
        &self,
        job: &ReleaseJob,
        t: &ReleaseTarget,
        to: TargetState,
        update: TargetUpdate,
        m: &StepMessage,
    ) -> Result<(), EngineError> {
        self.transition(t, to, update).await?;
        if m.slot && matches!(t.state, TargetState::Queued | TargetState::Committed) {
            self.free_slot(job, m).await
        } else {
            self.check_done(&job.id).await
        }
    }

    /// Hands the next target of the job to the queue (if the job still runs) and closes the
    /// job when nothing is open.
    async fn free_slot(&self, job: &ReleaseJob, m: &StepMessage) -> Result<(), EngineError> {
        if job.state == JobState::Running {
            let (range, now_job) = self.store.dispatch(&job.id, 1).await?;
            let next: Vec<StepMessage> = range.map(|seq| m.next(seq)).collect();
            if !next.is_empty() {
                self.send(&next, 0).await?;
                return Ok(());
            }
            if let Some(j) = now_job {
                return self.close_if_done(&j).await;
            }
            return Ok(());
        }
        self.check_done(&job.id).await
    }

    async fn check_done(&self, job_id: &str) -> Result<(), EngineError> {
        match self.store.get_job(job_id).await? {
            Some(j) => self.close_if_done(&j).await,
            None => Ok(()),
        }
    }

    async fn close_if_done(&self, job: &ReleaseJob) -> Result<(), EngineError> {
        // The counts decide while many targets are open; near the end (and whenever they say
        // none is) the targets themselves are read, so a count that drifted never closes a job
        // early or keeps it open.
        if job.open_targets() > i64::from(job.concurrency) || job.dispatched < job.total {
            return Ok(());
        }
        let mut after = None;
        loop {
            let (page, next) = self.store.list_targets(&job.id, None, 1000, after).await?;
            if page.iter().any(|t| !job.is_final(t.state)) {
                return Ok(());
            }
            match next {
                Some(n) => after = Some(n),
                None => break,
            }
        }
        let to = match job.state {
            JobState::Running => JobState::Done,
            JobState::Cancelling => JobState::Cancelled,
            _ => return Ok(()),
        };
        self.store
            .set_job_state(&job.id, &[job.state], to, None, self.now())
            .await?;
        Ok(())
    }

    /// A failed call: retry later (with backoff), skip, or fail the target.
    async fn failed(
        &self,
        job: &ReleaseJob,
        t: &ReleaseTarget,
        m: &StepMessage,
        failure: Failure,
    ) -> Result<(), EngineError> {
        match failure {
            Failure::Skip => {
                self.finish(
                    job,
                    t,
                    TargetState::Skipped,
                    TargetUpdate {
                        reason: Some(SKIP_REASON.into()),
                        ..TargetUpdate::default()
                    },
                    m,
                )
                .await
            }
            Failure::Fail { errcode, reason } => {
                self.finish(
                    job,
                    t,
                    TargetState::Failed,
                    TargetUpdate {
                        errcode,
                        reason: Some(reason),
                        ..TargetUpdate::default()
                    },
                    m,
                )
                .await
            }
            Failure::Retry { unknown } => {
                if m.attempt + 1 >= self.settings.max_attempts {
                    return self
                        .finish(
                            job,
                            t,
                            TargetState::Failed,
                            TargetUpdate {
                                reason: Some(format!("gave up after {} attempts", m.attempt + 1)),
                                ..TargetUpdate::default()
                            },
                            m,
                        )
                        .await;
                }
                let mut delay = self
                    .settings
                    .backoff_secs
                    .saturating_mul(1 << m.attempt.min(10))
                    .min(MAX_DELAY_SECS);
                if unknown {
                    // The intent stays; the next attempt comes after its lease and reconciles.
                    let lease = u32::try_from(self.settings.step_lease_secs + 1).unwrap_or(0);
                    delay = delay.max(lease).min(MAX_DELAY_SECS);
                } else {
                    self.store
                        .clear_intent(&t.job_id, t.seq, &TargetUpdate::default())
                        .await?;
                }
                let mut retry = m.clone();
                retry.attempt += 1;
                self.send(&[retry], delay).await
            }
        }
    }

    /// Another worker holds the step: look again after its lease.
    async fn busy(&self, m: &StepMessage) -> Result<(), EngineError> {
        let delay = u32::try_from(self.settings.step_lease_secs + 1).unwrap_or(MAX_DELAY_SECS);
        self.send(std::slice::from_ref(m), delay.min(MAX_DELAY_SECS))
            .await
    }

    /// The outcome of reconciling a step whose earlier call may have landed.
    async fn reconcile_failed(&self, m: &StepMessage) -> Result<(), EngineError> {
        // Unknowable right now: keep the intent (never call again blind) and come back later.
        self.busy(m).await
    }

    /// Records the step's intent on a target in `from`. `None`: the message is dealt with (the
    /// target moved on, or another worker holds the step and the message comes back after its
    /// lease); `Some(None)`: call WeChat; `Some(Some(prev))`: an earlier attempt's intent expired
    /// without an outcome, reconcile it first.
    async fn begin(
        &self,
        t: &ReleaseTarget,
        from: TargetState,
        step: Step,
        m: &StepMessage,
    ) -> Result<Option<Option<Intent>>, EngineError> {
        match self
            .store
            .begin_step(&t.job_id, t.seq, from, self.intent(step), self.now())
            .await?
        {
            BeginStep::Moved => Ok(None),
            BeginStep::Busy => self.busy(m).await.map(|()| None),
            BeginStep::Reconcile(prev) => Ok(Some(Some(prev))),
            BeginStep::Fresh => Ok(Some(None)),
        }
    }

    async fn commit(
        &self,
        job: &ReleaseJob,
        t: &ReleaseTarget,
        m: &StepMessage,
    ) -> Result<(), EngineError> {
        let record = self.store.get_authorizer(&t.appid).await?;
        let record = match record {
            Some(r) if r.state == AuthorizerState::Authorized => r,
            _ => {
                return self
                    .failed(
                        job,
                        t,
                        m,
                        Failure::Fail {
                            errcode: None,
                            reason: "not_authorized".into(),
                        },
                    )
                    .await;
            }
        };
        if !record.func_info.contains(&CODE_SET) {
            return self.failed(job, t, m, Failure::Skip).await;
        }
        let Some(earlier) = self.begin(t, TargetState::Queued, Step::Commit, m).await? else {
            return Ok(());
        };
        if let Some(prev) = earlier {
            match self.calls.version_info(&t.appid).await {
                Ok(v)
                    if v.exp_version.as_deref() == Some(job.user_version.as_str())
                        && v.exp_time.is_none_or(|at| {
                            at >= prev.at - self.settings.reconcile_slack_secs
                        }) =>
                {
                    tracing::info!(job = %t.job_id, seq = t.seq, "commit had landed; recording it");
                    return self.committed(job, t).await;
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "getversioninfo failed; commit left unreconciled");
                    return self.reconcile_failed(m).await;
                }
            }
        }
        let ext = render(&job.ext_json, &t.appid, record.customer_ref.as_deref());
        self.hook.at(Step::Commit, Boundary::BeforeCall);
        let result = self
            .calls
            .commit(
                &t.appid,
                job.template_id,
                &ext,
                &job.user_version,
                &job.user_desc,
            )
            .await;
        self.hook.at(Step::Commit, Boundary::AfterCall);
        match result {
            Ok(()) => self.committed(job, t).await,
            Err(e) => self.failed(job, t, m, classify(&e)).await,
        }
    }

    async fn committed(&self, _job: &ReleaseJob, t: &ReleaseTarget) -> Result<(), EngineError> {
        self.transition(t, TargetState::Committed, TargetUpdate::default())
            .await?;
        self.hook.at(Step::Commit, Boundary::AfterRecord);
        let next = StepMessage {
            job: t.job_id.clone(),
            seq: Some(t.seq),
            attempt: 0,
            slot: true,
            resume: false,
            sweep: false,
        };
        self.send(&[next], self.settings.submit_delay_secs).await
    }

    async fn submit(
        &self,
        job: &ReleaseJob,
        t: &ReleaseTarget,
        m: &StepMessage,
    ) -> Result<(), EngineError> {
        let Some(earlier) = self
            .begin(t, TargetState::Committed, Step::Submit, m)
            .await?
        else {
            return Ok(());
        };
        if let Some(prev) = earlier {
            match self.landed_submission(job, t, prev.at).await {
                Ok(Some(auditid)) => return self.submitted(job, t, m, auditid).await,
                Ok(None) => {}
                // 85012: the mini program has no audit at all, so the submission did not land.
                Err(e) if errcode(&e) == Some(85012) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "get_latest_auditstatus failed; submission left unreconciled");
                    return self.reconcile_failed(m).await;
                }
            }
        }
        match self.calls.query_quota(&t.appid).await {
            Ok(q) if q.rest <= 0 => {
                return self
                    .park(
                        job,
                        t,
                        m,
                        &format!("audit quota used up ({} of {} left)", q.rest, q.limit),
                    )
                    .await;
            }
            Ok(_) => {}
            Err(e) => return self.failed(job, t, m, classify(&e)).await,
        }
        // The audit in flight, before WeChat is called: a push that beats the record of the
        // submission finds its target (and waits for the record) instead of being dropped. Not
        // over another target's recorded audit (another job's, still in review: WeChat answers
        // 85009, and that audit's record must survive the refusal).
        let another = self
            .store
            .get_active_audit(&t.appid)
            .await?
            .is_some_and(|a| a.auditid.is_some() && (a.job_id != t.job_id || a.seq != t.seq));
        if !another {
            self.store
                .put_active_audit(&ActiveAudit {
                    appid: t.appid.clone(),
                    job_id: t.job_id.clone(),
                    seq: t.seq,
                    auditid: None,
                    submitted_at: self.now(),
                })
                .await?;
        }
        self.hook.at(Step::Submit, Boundary::BeforeCall);
        let result = self.calls.submit_audit(&t.appid, &job.audit).await;
        self.hook.at(Step::Submit, Boundary::AfterCall);
        let e = match result {
            Ok(auditid) => return self.submitted(job, t, m, auditid).await,
            Err(e) => e,
        };
        // Refused, or unknown: the placeholder stays only while the submission may have landed
        // (the next attempt reconciles it).
        let landed = match errcode(&e) {
            Some(85009) => self
                .landed_submission(job, t, t.updated_at)
                .await
                .ok()
                .flatten(),
            _ => None,
        };
        if let Some(auditid) = landed {
            return self.submitted(job, t, m, auditid).await;
        }
        if classify(&e) != (Failure::Retry { unknown: true }) {
            self.store
                .remove_pending_audit(&t.appid, &t.job_id, t.seq)
                .await?;
        }
        match errcode(&e) {
            // An audit in progress that is not this job's version.
            Some(85009) => {
                self.failed(
                    job,
                    t,
                    m,
                    Failure::Fail {
                        errcode: Some(85009),
                        reason: "another audit is in progress".into(),
                    },
                )
                .await
            }
            // Refused for quota (workers in flight at once may each have read the last unit):
            // the target waits with the others.
            Some(85085) => self.park(job, t, m, "audit quota used up (85085)").await,
            // The privacy scan after a commit is still running: wait a minute.
            Some(61039) => {
                self.store
                    .clear_intent(&t.job_id, t.seq, &TargetUpdate::default())
                    .await?;
                let mut again = m.clone();
                again.attempt += 1;
                self.send(&[again], 60).await
            }
            _ => self.failed(job, t, m, classify(&e)).await,
        }
    }

    /// The auditid of a submission of this job's version made after `since`, if WeChat has one.
    async fn landed_submission(
        &self,
        job: &ReleaseJob,
        t: &ReleaseTarget,
        since: i64,
    ) -> Result<Option<i64>, TokenError> {
        let latest = self.calls.latest_audit(&t.appid).await?;
        let ours = latest.user_version.as_deref() == Some(job.user_version.as_str())
            && latest
                .submit_audit_time
                .is_none_or(|at| at >= since - self.settings.reconcile_slack_secs);
        Ok(ours.then_some(latest.auditid))
    }

    async fn submitted(
        &self,
        job: &ReleaseJob,
        t: &ReleaseTarget,
        m: &StepMessage,
        auditid: i64,
    ) -> Result<(), EngineError> {
        // The audit first, so a push that beats the transition still finds its target.
        self.store
            .put_active_audit(&ActiveAudit {
                appid: t.appid.clone(),
                job_id: t.job_id.clone(),
                seq: t.seq,
                auditid: Some(auditid),
                submitted_at: self.now(),
            })
            .await?;
        self.transition(
            t,
            TargetState::Submitted,
            TargetUpdate {
                auditid: Some(auditid),
                waiting_quota: Some(false),
                ..TargetUpdate::default()
            },
        )
        .await?;
        if job.quota_wait.is_some() {
            self.store.set_quota_wait(&job.id, None, self.now()).await?;
        }
        self.hook.at(Step::Submit, Boundary::AfterRecord);
        self.free_slot(job, m).await
    }

    /// No audit quota: the target waits in `committed`, the job says why, the slot moves on.
    async fn park(
        &self,
        job: &ReleaseJob,
        t: &ReleaseTarget,
        m: &StepMessage,
        reason: &str,
    ) -> Result<(), EngineError> {
        self.store
            .clear_intent(
                &t.job_id,
                t.seq,
                &TargetUpdate {
                    waiting_quota: Some(true),
                    ..TargetUpdate::default()
                },
            )
            .await?;
        if job.quota_wait.as_deref() != Some(reason) {
            self.store
                .set_quota_wait(&job.id, Some(reason), self.now())
                .await?;
        }
        if m.resume {
            return Ok(());
        }
        self.free_slot(job, m).await
    }

    async fn release(
        &self,
        job: &ReleaseJob,
        t: &ReleaseTarget,
        m: &StepMessage,
    ) -> Result<(), EngineError> {
        let Some(earlier) = self
            .begin(t, TargetState::Approved, Step::Release, m)
            .await?
        else {
            return Ok(());
        };
        if earlier.is_some() {
            match self.calls.version_info(&t.appid).await {
                Ok(v) if v.release_version.as_deref() == Some(job.user_version.as_str()) => {
                    return self.released(job, t).await;
                }
                Ok(_) => {}
                Err(_) => return self.reconcile_failed(m).await,
            }
        }
        self.hook.at(Step::Release, Boundary::BeforeCall);
        let result = self.calls.release(&t.appid).await;
        self.hook.at(Step::Release, Boundary::AfterCall);
        match result {
            Ok(()) => self.released(job, t).await,
            // 85052: already released (our earlier call landed).
            Err(e) if errcode(&e) == Some(85052) => self.released(job, t).await,
            Err(e) => self.failed(job, t, m, classify(&e)).await,
        }
    }

    async fn released(&self, job: &ReleaseJob, t: &ReleaseTarget) -> Result<(), EngineError> {
        self.transition(t, TargetState::Released, TargetUpdate::default())
            .await?;
        self.hook.at(Step::Release, Boundary::AfterRecord);
        self.check_done(&job.id).await
    }

    /// An audit's result (push or poll) for the mini program's audit in flight. Once the result
    /// is settled the audit is forgotten, then the job closed if that was its last open target.
    pub async fn apply_audit(&self, r: &AuditResult) -> Result<(), EngineError> {
        let Some(audit) = self.store.get_active_audit(&r.appid).await? else {
            return Ok(());
        };
        if r.at
            .is_some_and(|at| at < audit.submitted_at - self.settings.reconcile_slack_secs)
        {
            return Ok(());
        }
        let close = match self.settle_audit(r, &audit).await? {
            Settled::Keep => return Ok(()),
            Settled::Drop => None,
            Settled::DropThenClose(job) => Some(job),
        };
        self.drop_audit(&audit).await?;
        match close {
            Some(job) => self.close_if_done(&job).await,
            None => Ok(()),
        }
    }

    /// What `r` does to the audit's target: nothing yet (the audit stays), or its new state
    /// recorded (and its release made, when the job releases approved targets itself).
    async fn settle_audit(
        &self,
        r: &AuditResult,
        audit: &ActiveAudit,
    ) -> Result<Settled, EngineError> {
        let Some(t) = self.store.get_target(&audit.job_id, audit.seq).await? else {
            return Ok(Settled::Drop);
        };
        // The submission is in flight or its outcome not yet recorded (the push beat the
        // worker): the message comes back after the visibility timeout.
        if t.state == TargetState::Committed {
            return Err(EngineError::NotYet);
        }
        let Some(auditid) = audit.auditid else {
            // A placeholder whose target moved on without recording an audit.
            return Ok(Settled::Drop);
        };
        // Approved with this audit still recorded: a worker died releasing it (the audit is
        // removed only once the release is done), so this redelivered result resumes it.
        let resume = t.state == TargetState::Approved && t.auditid == Some(auditid);
        if !resume && (t.state != TargetState::Submitted || t.auditid != Some(auditid)) {
            return Ok(Settled::Drop);
        }
        let to = if resume {
            TargetState::Approved
        } else {
            let (to, reason) = match r.status {
                0 => (TargetState::Approved, None),
                1 => (
                    TargetState::Rejected,
                    Some(r.reason.clone().unwrap_or_default()),
                ),
                3 => (TargetState::Failed, Some("audit withdrawn".to_string())),
                _ => return Ok(Settled::Keep),
            };
            self.transition(
                &t,
                to,
                TargetUpdate {
                    reason,
                    ..TargetUpdate::default()
                },
            )
            .await?;
            to
        };
        let Some(job) = self.store.get_job(&t.job_id).await? else {
            return Ok(Settled::Drop);
        };
        if to == TargetState::Approved && job.auto_release && job.state == JobState::Running {
            let approved = ReleaseTarget {
                state: TargetState::Approved,
                ..t
            };
            let m = StepMessage {
                job: job.id.clone(),
                seq: Some(approved.seq),
                attempt: 0,
                slot: false,
                resume: false,
                sweep: false,
            };
            self.release(&job, &approved, &m).await?;
            return Ok(Settled::Drop);
        }
        Ok(Settled::DropThenClose(Box::new(job)))
    }

    /// Forgets the mini program's audit in flight (if it is still this one).
    async fn drop_audit(&self, audit: &ActiveAudit) -> Result<(), EngineError> {
        match audit.auditid {
            Some(id) => self.store.remove_active_audit(&audit.appid, id).await?,
            None => {
                self.store
                    .remove_pending_audit(&audit.appid, &audit.job_id, audit.seq)
                    .await?
            }
        }
        Ok(())
    }

    /// A cancelled job's target: `cancelled`, its audit undone first only if the cancel asked.
    async fn cancel_target(&self, job: &ReleaseJob, t: &ReleaseTarget) -> Result<(), EngineError> {
        if job.is_final(t.state) {
            return self.check_done(&job.id).await;
        }
        let mut reason = "job cancelled".to_string();
        if t.state == TargetState::Submitted && job.undo_audits {
            match self
                .store
                .begin_step(
                    &t.job_id,
                    t.seq,
                    TargetState::Submitted,
                    self.intent(Step::Undo),
                    self.now(),
                )
                .await?
            {
                BeginStep::Moved | BeginStep::Busy => return Ok(()),
                BeginStep::Fresh | BeginStep::Reconcile(_) => {}
            }
            self.hook.at(Step::Undo, Boundary::BeforeCall);
            reason = match self.calls.undo_audit(&t.appid).await {
                Ok(()) => "job cancelled; audit undone".into(),
                Err(e) => format!(
                    "job cancelled; undo failed ({})",
                    errcode(&e).map_or_else(|| "no answer".to_string(), |c| format!("errcode {c}"))
                ),
            };
            self.hook.at(Step::Undo, Boundary::AfterCall);
        }
        self.transition(
            t,
            TargetState::Cancelled,
            TargetUpdate {
                reason: Some(reason),
                ..TargetUpdate::default()
            },
        )
        .await?;
        if let Some(a) = t.auditid
            && t.state == TargetState::Submitted
        {
            self.store.remove_active_audit(&t.appid, a).await?;
        }
        if t.state == TargetState::Committed {
            self.store
                .remove_pending_audit(&t.appid, &t.job_id, t.seq)
                .await?;
        }
        self.check_done(&job.id).await
    }

    /// The cancel sweep: one page of targets per message, the next page as a new message.
    async fn sweep(&self, m: &StepMessage) -> Result<(), EngineError> {
        let Some(job) = self.store.get_job(&m.job).await? else {
            return Ok(());
        };
        if job.state != JobState::Cancelling {
            return Ok(());
        }
        let (page, next) = self
            .store
            .list_targets(&job.id, None, SWEEP_PAGE, m.seq)
            .await?;
        for t in page.iter().filter(|t| !job.is_final(t.state)) {
            self.cancel_target(&job, t).await?;
        }
        match next {
            Some(after) => {
                let mut more = m.clone();
                more.seq = Some(after);
                self.send(&[more], 0).await
            }
            None => self.check_done(&job.id).await,
        }
    }

    /// The scheduled run's part: poll audits whose push is overdue, resume quota-parked jobs.
    pub async fn scheduled(&self, limit: usize) -> ScheduledReport {
        let mut report = ScheduledReport::default();
        let before = self.now() - self.settings.audit_poll_after_secs;
        match self.store.overdue_audits(before, limit).await {
            Ok(audits) => {
                for a in audits {
                    // A placeholder: the submission is in flight, nothing to poll for yet.
                    let Some(auditid) = a.auditid else { continue };
                    report.audits_polled += 1;
                    match self.calls.audit_status(&a.appid, auditid).await {
                        Ok(AuditStatus { status, reason }) => {
                            if matches!(status, 0 | 1 | 3) {
                                report.audits_settled += 1;
                            }
                            let r = AuditResult {
                                appid: a.appid.clone(),
                                status,
                                reason,
                                at: None,
                            };
                            if let Err(e) = self.apply_audit(&r).await {
                                tracing::warn!(error = %e, "polled audit not applied");
                                report.failures += 1;
                            }
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "get_auditstatus failed");
                            report.failures += 1;
                        }
                    }
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "overdue audits not listed");
                report.failures += 1;
            }
        }
        if let Err(e) = self.resume_quota(&mut report).await {
            tracing::error!(error = %e, "quota-parked jobs not resumed");
            report.failures += 1;
        }
        report
    }

    async fn resume_quota(&self, report: &mut ScheduledReport) -> Result<(), EngineError> {
        for id in self.store.open_jobs().await? {
            let Some(job) = self.store.get_job(&id).await? else {
                continue;
            };
            if job.state != JobState::Running || job.quota_wait.is_none() {
                continue;
            }
            let mut waiting = Vec::new();
            let mut after = None;
            loop {
                let (page, next) = self
                    .store
                    .list_targets(&id, Some(TargetState::Committed), 1000, after)
                    .await?;
                waiting.extend(page.into_iter().filter(|t| t.waiting_quota));
                match next {
                    Some(n) => after = Some(n),
                    None => break,
                }
            }
            let Some(first) = waiting.first() else {
                self.store.set_quota_wait(&id, None, self.now()).await?;
                continue;
            };
            let rest = match self.calls.query_quota(&first.appid).await {
                Ok(q) => q.rest,
                Err(e) => {
                    tracing::warn!(error = %e, "queryquota failed");
                    report.failures += 1;
                    continue;
                }
            };
            if rest <= 0 {
                continue;
            }
            self.store.set_quota_wait(&id, None, self.now()).await?;
            let take = usize::try_from(rest)
                .unwrap_or(usize::MAX)
                .min(waiting.len());
            let messages: Vec<StepMessage> = waiting
                .iter()
                .take(take)
                .map(|t| StepMessage {
                    job: id.clone(),
                    seq: Some(t.seq),
                    attempt: 0,
                    slot: false,
                    resume: true,
                    sweep: false,
                })
                .collect();
            report.jobs_resumed += 1;
            report.targets_resumed += u32::try_from(messages.len()).unwrap_or(u32::MAX);
            self.send(&messages, 0).await?;
        }
        Ok(())
    }
}
