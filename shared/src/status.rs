//! The platform at a glance, for the operator (`GET /status`, `wxopen status` / `doctor`): the
//! ticket's age, the component token's expiry (and why its refresh fails, e.g. 61004), the
//! authorizers by state, the tokens whose refreshes fail, the event outbox and the fleet-release
//! jobs not yet finished. Read-only; never a token or a ticket, only times, counts, appids and
//! failure labels.

use std::collections::BTreeMap;

use crate::clock::Clock;
use crate::model::{AuthorizerState, JobState, TargetState, TokenKey};
use crate::store::outbox::EventRecordStore;
use crate::store::{AuthorizerStore, ReleaseStore, StoreError, TicketStore, TokenStore};

/// At most this many authorizers are read for the counts (in pages of [`PAGE`]); beyond it the
/// counts say `truncated`.
pub const MAX_AUTHORIZERS: usize = 2000;
/// At most this many outbox entries are read.
pub const MAX_OUTBOX: usize = 1000;
/// At most this many failing tokens are listed (all are counted).
pub const MAX_FAILING_LISTED: usize = 20;
/// At most this many open release jobs are read (one item each, from the open-jobs list the
/// scheduled run keeps); beyond it the counts say `truncated`.
pub const MAX_RELEASE_JOBS: usize = 100;
/// At most this many of them are listed (all read are counted), newest first.
pub const MAX_JOBS_LISTED: usize = 20;
const PAGE: usize = 100;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TicketStatus {
    pub received_at: i64,
    pub age_secs: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComponentTokenStatus {
    /// 0 when no token was ever obtained.
    pub expires_at: i64,
    pub expires_in_secs: i64,
    pub failing_since: Option<i64>,
    /// The last failure's label (`errcode_61004`, …), never WeChat's text.
    pub last_error: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StateCounts {
    pub authorized: u64,
    pub unauthorized: u64,
    pub needs_reauth: u64,
    /// More than [`MAX_AUTHORIZERS`] exist: the counts cover the first ones only.
    pub truncated: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailingToken {
    pub appid: String,
    pub failing_since: i64,
    pub last_error: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OutboxStatus {
    pub count: u64,
    pub oldest_age_secs: Option<i64>,
    pub truncated: bool,
}

/// One release job not yet finished (`running` or `cancelling`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenJob {
    pub id: String,
    pub state: JobState,
    pub created_at: i64,
    pub total: u32,
    /// Targets not yet in a final state.
    pub open_targets: i64,
    /// Targets per state (non-zero ones).
    pub counts: BTreeMap<TargetState, i64>,
    /// Why its submissions wait (WeChat's audit quota is used up), while they do.
    pub quota_wait: Option<String>,
    /// Since the last change of any of its targets (or of the job).
    pub idle_secs: i64,
    /// Open targets, and none moved for longer than the stall window.
    pub stalled: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReleasesStatus {
    /// Jobs `running` (cancelling ones are counted apart).
    pub running: u64,
    pub cancelling: u64,
    /// Jobs whose submissions wait on the audit quota.
    pub waiting_quota: u64,
    /// Jobs with open targets of which none moved within [`ReleasesStatus::stall_after_secs`].
    pub stalled: u64,
    /// The window: the engine's audit-poll delay (an audit without a push is polled after it).
    pub stall_after_secs: i64,
    /// The first [`MAX_JOBS_LISTED`], newest first.
    pub jobs: Vec<OpenJob>,
    /// More than [`MAX_RELEASE_JOBS`] are open: the counts cover the first ones only.
    pub truncated: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlatformStatus {
    pub now: i64,
    pub ticket: Option<TicketStatus>,
    pub component_token: Option<ComponentTokenStatus>,
    pub authorizers: StateCounts,
    /// How many authorized authorizers' token refreshes are failing.
    pub failing_count: u64,
    /// The first [`MAX_FAILING_LISTED`] of them, oldest failure first.
    pub failing: Vec<FailingToken>,
    pub outbox: OutboxStatus,
    pub releases: ReleasesStatus,
}

/// Reads the status: a ticket read, a token read, the authorizers index in pages, the outbox,
/// the open release jobs (one Query of their list, one read per job). A release job with open
/// targets none of which moved for `stall_after_secs` is `stalled`.
pub async fn platform_status<S, K>(
    store: &S,
    clock: &K,
    stall_after_secs: i64,
) -> Result<PlatformStatus, StoreError>
where
    S: TicketStore + TokenStore + AuthorizerStore + EventRecordStore + ReleaseStore,
    K: Clock,
{
    let now = clock.now();
    let ticket = store.get_ticket().await?.map(|t| TicketStatus {
        received_at: t.received_at,
        age_secs: (now - t.received_at).max(0),
    });
    let component_token =
        store
            .get_token(&TokenKey::Component)
            .await?
            .map(|t| ComponentTokenStatus {
                expires_at: t.expires_at,
                expires_in_secs: t.expires_at - now,
                failing_since: t.failing_since,
                last_error: t.last_error,
            });
    let mut authorizers = StateCounts::default();
    let mut failing = Vec::new();
    let mut cursor: Option<String> = None;
    let mut seen = 0usize;
    loop {
        let (page, next) = store
            .list_authorizers(None, PAGE, cursor.as_deref())
            .await?;
        for r in &page {
            match r.state {
                AuthorizerState::Authorized => authorizers.authorized += 1,
                AuthorizerState::Unauthorized => authorizers.unauthorized += 1,
                AuthorizerState::NeedsReauth => authorizers.needs_reauth += 1,
            }
        }
        seen += page.len();
        // The listing carries the failure fields (filled in per page by the store).
        for r in page
            .into_iter()
            .filter(|r| r.state == AuthorizerState::Authorized)
        {
            if let Some(since) = r.failing_since {
                failing.push(FailingToken {
                    appid: r.appid,
                    failing_since: since,
                    last_error: r.last_error,
                });
            }
        }
        match next {
            Some(c) if seen < MAX_AUTHORIZERS => cursor = Some(c),
            Some(_) => {
                authorizers.truncated = true;
                break;
            }
            None => break,
        }
    }
    failing.sort_by(|a, b| (a.failing_since, &a.appid).cmp(&(b.failing_since, &b.appid)));
    let failing_count = failing.len() as u64;
    failing.truncate(MAX_FAILING_LISTED);
    let entries = store.outbox(MAX_OUTBOX + 1).await?;
    let outbox = OutboxStatus {
        count: entries.len().min(MAX_OUTBOX) as u64,
        oldest_age_secs: entries
            .iter()
            .map(|e| e.enqueued_at)
            .min()
            .map(|t| (now - t).max(0)),
        truncated: entries.len() > MAX_OUTBOX,
    };
    let releases = releases_status(store, now, stall_after_secs).await?;
    Ok(PlatformStatus {
        now,
        ticket,
        component_token,
        authorizers,
        failing_count,
        failing,
        outbox,
        releases,
    })
}

async fn releases_status<S: ReleaseStore>(
    store: &S,
    now: i64,
    stall_after_secs: i64,
) -> Result<ReleasesStatus, StoreError> {
    let ids = store.open_jobs().await?;
    let mut out = ReleasesStatus {
        stall_after_secs,
        truncated: ids.len() > MAX_RELEASE_JOBS,
        ..ReleasesStatus::default()
    };
    // The jobs' items, read 16 at a time concurrently (as `resolve_targets` reads authorizers).
    let mut read = Vec::new();
    let listed: Vec<&String> = ids.iter().take(MAX_RELEASE_JOBS).collect();
    for chunk in listed.chunks(16) {
        for r in futures_util::future::join_all(chunk.iter().map(|id| store.get_job(id))).await {
            read.push(r?);
        }
    }
    let mut jobs = Vec::new();
    // The list entry outlives its job only between the job's end and the entry's removal.
    for job in read.into_iter().flatten() {
        match job.state {
            JobState::Running => out.running += 1,
            JobState::Cancelling => out.cancelling += 1,
            JobState::Done | JobState::Cancelled => continue,
        }
        let open_targets = job.open_targets();
        let idle_secs = (now - job.updated_at.max(job.created_at)).max(0);
        let stalled = open_targets > 0 && idle_secs > stall_after_secs;
        out.stalled += u64::from(stalled);
        out.waiting_quota += u64::from(job.quota_wait.is_some());
        jobs.push(OpenJob {
            open_targets,
            idle_secs,
            stalled,
            id: job.id,
            state: job.state,
            created_at: job.created_at,
            total: job.total,
            counts: job.counts.into_iter().filter(|(_, n)| *n != 0).collect(),
            quota_wait: job.quota_wait,
        });
    }
    jobs.sort_by(|a, b| (b.created_at, &b.id).cmp(&(a.created_at, &a.id)));
    jobs.truncate(MAX_JOBS_LISTED);
    out.jobs = jobs;
    Ok(out)
}
