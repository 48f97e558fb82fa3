//! Fleet release records: one job (what to ship, to whom, how fast) and one target per
//! (job, mini program) walking `queued → committed → submitted → approved → released`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// A job's lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    Running,
    /// Cancel asked: no new step starts; targets are being marked `cancelled`.
    Cancelling,
    Cancelled,
    /// Every target reached a final state.
    Done,
}

impl JobState {
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Running => "running",
            JobState::Cancelling => "cancelling",
            JobState::Cancelled => "cancelled",
            JobState::Done => "done",
        }
    }
}

/// One target's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TargetState {
    Queued,
    Committed,
    Submitted,
    Approved,
    Released,
    Rejected,
    Failed,
    Skipped,
    Cancelled,
}

impl TargetState {
    pub const ALL: [TargetState; 9] = [
        TargetState::Queued,
        TargetState::Committed,
        TargetState::Submitted,
        TargetState::Approved,
        TargetState::Released,
        TargetState::Rejected,
        TargetState::Failed,
        TargetState::Skipped,
        TargetState::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            TargetState::Queued => "queued",
            TargetState::Committed => "committed",
            TargetState::Submitted => "submitted",
            TargetState::Approved => "approved",
            TargetState::Released => "released",
            TargetState::Rejected => "rejected",
            TargetState::Failed => "failed",
            TargetState::Skipped => "skipped",
            TargetState::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == s)
    }

    /// No step follows (an approved target of a job without `auto_release` is final too, but
    /// that depends on the job: see `ReleaseJob::is_final`).
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            TargetState::Released
                | TargetState::Rejected
                | TargetState::Failed
                | TargetState::Skipped
                | TargetState::Cancelled
        )
    }
}

/// Which targets a job was asked for (as given; the job's targets are fixed at creation).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TargetSpec {
    Appids(Vec<String>),
    All { customer_ref: Option<String> },
}

/// A WeChat step a target takes. Recorded on the target as intended before WeChat is called.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    Commit,
    Submit,
    Release,
    /// `undocodeaudit` after a cancel that asked for it.
    Undo,
}

impl Step {
    pub fn as_str(self) -> &'static str {
        match self {
            Step::Commit => "commit",
            Step::Submit => "submit",
            Step::Release => "release",
            Step::Undo => "undo",
        }
    }
}

/// A step recorded as intended: taken by one worker until `until` (a crashed worker's intent is
/// reconciled by the next one after that).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Intent {
    pub step: Step,
    pub at: i64,
    pub until: i64,
}

/// One release job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReleaseJob {
    pub id: String,
    pub template_id: i64,
    pub user_version: String,
    pub user_desc: String,
    /// The `ext_json` object; string values may hold `{{appid}}` and `{{customer_ref}}`.
    pub ext_json: serde_json::Map<String, serde_json::Value>,
    /// The `submit_audit` body fields, passed through.
    pub audit: serde_json::Map<String, serde_json::Value>,
    pub targets: TargetSpec,
    pub auto_release: bool,
    /// Targets between `queued` and `submitted` at once.
    pub concurrency: u32,
    pub created_at: i64,
    pub state: JobState,
    /// Targets in the job.
    pub total: u32,
    /// Targets handed to the queue so far (in target order).
    #[serde(default)]
    pub dispatched: u32,
    /// Targets per state (kept on the job item, moved by every transition).
    #[serde(default)]
    pub counts: BTreeMap<TargetState, i64>,
    /// Why submitting waits (the audit quota is used up), while it does.
    #[serde(default)]
    pub quota_wait: Option<String>,
    /// Asked at cancel: undo audits in progress.
    #[serde(default)]
    pub undo_audits: bool,
    #[serde(default)]
    pub updated_at: i64,
}

impl ReleaseJob {
    /// True when a target in `state` takes no further step in this job.
    pub fn is_final(&self, state: TargetState) -> bool {
        state.is_terminal() || (state == TargetState::Approved && !self.auto_release)
    }

    /// Targets not yet in a final state.
    pub fn open_targets(&self) -> i64 {
        self.counts
            .iter()
            .filter(|(s, _)| !self.is_final(**s))
            .map(|(_, n)| *n)
            .sum()
    }
}

/// One mini program in a job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReleaseTarget {
    pub job_id: String,
    /// Position in the job (0-based): the order targets are dispatched in.
    pub seq: u32,
    pub appid: String,
    pub state: TargetState,
    #[serde(default)]
    pub auditid: Option<i64>,
    /// WeChat's rejection reason (`rejected`) or why it was skipped.
    #[serde(default)]
    pub reason: Option<String>,
    /// WeChat's errcode (`failed`), or the transport failure's label.
    #[serde(default)]
    pub errcode: Option<i64>,
    /// Steps tried (every WeChat call for this target counts one).
    #[serde(default)]
    pub attempts: u32,
    #[serde(default)]
    pub intent: Option<Intent>,
    /// Parked in `committed` until the audit quota returns.
    #[serde(default)]
    pub waiting_quota: bool,
    pub created_at: i64,
    pub updated_at: i64,
    #[serde(default)]
    pub committed_at: Option<i64>,
    #[serde(default)]
    pub submitted_at: Option<i64>,
    #[serde(default)]
    pub finished_at: Option<i64>,
}

impl ReleaseTarget {
    /// Target `seq` of job `job_id` for `appid`, `queued` since `at`: how a job's targets start.
    pub fn queued(job_id: &str, seq: u32, appid: String, at: i64) -> Self {
        Self {
            job_id: job_id.to_string(),
            seq,
            appid,
            state: TargetState::Queued,
            auditid: None,
            reason: None,
            errcode: None,
            attempts: 0,
            intent: None,
            waiting_quota: false,
            created_at: at,
            updated_at: at,
            committed_at: None,
            submitted_at: None,
            finished_at: None,
        }
    }
}

/// The mini program's audit in flight, found by appid (audit pushes carry no auditid) and by
/// age (the scheduled run polls audits whose push is overdue).
///
/// Recorded before `submit_audit` is called, without an `auditid` (a placeholder), so a push
/// that beats the worker's record of the submission finds its target and waits; the auditid is
/// filled in when the submission is recorded (or reconciled after a worker died).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActiveAudit {
    pub appid: String,
    pub job_id: String,
    pub seq: u32,
    /// `None` while the submission is in flight (WeChat has not answered, or its answer is not
    /// recorded yet).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auditid: Option<i64>,
    pub submitted_at: i64,
}

/// What a target transition writes besides the state.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TargetUpdate {
    pub auditid: Option<i64>,
    pub reason: Option<String>,
    pub errcode: Option<i64>,
    pub waiting_quota: Option<bool>,
}
