//! The fleet-release port: jobs, their targets (one partition per job), the audits in flight.

use std::future::Future;
use std::ops::Range;

use super::StoreError;
use crate::model::{
    ActiveAudit, Intent, JobState, ReleaseJob, ReleaseTarget, TargetState, TargetUpdate,
};

/// Release jobs and targets.
///
/// Items: the job `RELEASE#<id>`/`JOB` (with a count per target state, moved atomically with
/// each transition), its targets `RELEASE#<id>`/`T#<seq>` (listing them is a Query on the job's
/// partition), the jobs not yet finished `RELEASES`/`<id>` (the scheduled run's list) and one
/// audit in flight per mini program `RELEASE_AUDITS`/`<appid>`.
pub trait ReleaseStore: Send + Sync {
    /// Writes the job and every target (`queued`); the job only if its id is new.
    fn create_job(
        &self,
        job: &ReleaseJob,
        targets: &[ReleaseTarget],
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    fn get_job(
        &self,
        id: &str,
    ) -> impl Future<Output = Result<Option<ReleaseJob>, StoreError>> + Send;
    fn get_target(
        &self,
        job_id: &str,
        seq: u32,
    ) -> impl Future<Output = Result<Option<ReleaseTarget>, StoreError>> + Send;
    /// Targets in `seq` order after `after`, optionally in one state; the page and the cursor
    /// (last seq) when more may follow.
    fn list_targets(
        &self,
        job_id: &str,
        state: Option<TargetState>,
        limit: usize,
        after: Option<u32>,
    ) -> impl Future<Output = Result<(Vec<ReleaseTarget>, Option<u32>), StoreError>> + Send;
    /// Takes the next `n` targets to hand to the queue (atomic counter on the job); an empty
    /// range when every target was handed out. Also answers the job as it is now.
    fn dispatch(
        &self,
        job_id: &str,
        n: u32,
    ) -> impl Future<Output = Result<(Range<u32>, Option<ReleaseJob>), StoreError>> + Send;
    /// Records `intent` on a target in `state` that has no live intent (none, or one whose
    /// `until` passed: that one is returned for reconciling). `Err`-free `None`: the target moved
    /// on or another worker holds a live intent.
    fn begin_step(
        &self,
        job_id: &str,
        seq: u32,
        state: TargetState,
        intent: Intent,
        now: i64,
    ) -> impl Future<Output = Result<BeginStep, StoreError>> + Send;
    /// Moves a target from `from` to `to` (clearing its intent) and the job's counts with it, in
    /// one transaction. `false` when the target was no longer in `from`.
    fn transition(
        &self,
        job_id: &str,
        seq: u32,
        from: TargetState,
        to: TargetState,
        update: &TargetUpdate,
        now: i64,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// Gives a step's intent up without an outcome known to be absent (WeChat said no, or the
    /// call will be retried): the target stays where it is.
    fn clear_intent(
        &self,
        job_id: &str,
        seq: u32,
        update: &TargetUpdate,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Moves the job from one of `from` to `to`; `false` if it was in none of them.
    fn set_job_state(
        &self,
        id: &str,
        from: &[JobState],
        to: JobState,
        undo_audits: Option<bool>,
        now: i64,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// Records (or clears, with `None`) why the job's submissions wait.
    fn set_quota_wait(
        &self,
        id: &str,
        reason: Option<&str>,
        now: i64,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Ids of the jobs not yet done or cancelled.
    fn open_jobs(&self) -> impl Future<Output = Result<Vec<String>, StoreError>> + Send;
    fn put_active_audit(
        &self,
        audit: &ActiveAudit,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    fn get_active_audit(
        &self,
        appid: &str,
    ) -> impl Future<Output = Result<Option<ActiveAudit>, StoreError>> + Send;
    /// Drops the mini program's audit in flight if it is still `auditid`.
    fn remove_active_audit(
        &self,
        appid: &str,
        auditid: i64,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Drops the mini program's placeholder audit (no auditid) if it is still the one of this
    /// job's target: the submission it stood for was refused or given up.
    fn remove_pending_audit(
        &self,
        appid: &str,
        job_id: &str,
        seq: u32,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Audits with an auditid submitted at or before `before`, at most `limit` (placeholders
    /// are not listed: there is nothing to poll for yet).
    fn overdue_audits(
        &self,
        before: i64,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<ActiveAudit>, StoreError>> + Send;
}

/// What [`ReleaseStore::begin_step`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BeginStep {
    /// Recorded; no earlier intent: call WeChat.
    Fresh,
    /// Recorded over an expired intent of a worker that never recorded an outcome: find out
    /// whether its call landed before calling again.
    Reconcile(Intent),
    /// Another worker's intent is live: try later.
    Busy,
    /// The target is not in the state the step starts from.
    Moved,
}
