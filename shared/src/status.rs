//! The platform at a glance, for the operator (`GET /status`, `wxopen status` / `doctor`): the
//! ticket's age, the component token's expiry (and why its refresh fails, e.g. 61004), the
//! authorizers by state, the tokens whose refreshes fail, and the event outbox. Read-only; never
//! a token or a ticket, only times, counts, appids and failure labels.

use crate::clock::Clock;
use crate::model::{AuthorizerState, TokenKey};
use crate::store::outbox::EventRecordStore;
use crate::store::{AuthorizerStore, StoreError, TicketStore, TokenStore};

/// At most this many authorizers are read for the counts (in pages of [`PAGE`]); beyond it the
/// counts say `truncated`.
pub const MAX_AUTHORIZERS: usize = 2000;
/// At most this many outbox entries are read.
pub const MAX_OUTBOX: usize = 1000;
/// At most this many failing tokens are listed (all are counted).
pub const MAX_FAILING_LISTED: usize = 20;
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
}

/// Reads the status: a ticket read, a token read, the authorizers index in pages, the outbox.
pub async fn platform_status<S, K>(store: &S, clock: &K) -> Result<PlatformStatus, StoreError>
where
    S: TicketStore + TokenStore + AuthorizerStore + EventRecordStore,
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
    Ok(PlatformStatus {
        now,
        ticket,
        component_token,
        authorizers,
        failing_count,
        failing,
        outbox,
    })
}
