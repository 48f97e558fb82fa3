//! What the authorization event URL does with a verified push.

use std::time::Duration;

use secrecy::ExposeSecret;

use crate::authorization::{self, Exchange};
use crate::clock::Clock;
use crate::secrets::CredentialsProvider;
use crate::tokens::{TokenError, TokenService};

use crate::model::{AuthorizationKind, PendingAuthorization, StoredTicket};
use crate::store::{ComponentEventStore, EventApplied, PushClaim, StoreError, TicketWrite};
use crate::xml::ComponentPush;

/// What happened to a push, for logs and tests (never secret).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushOutcome {
    /// Already processed: nothing done again.
    Duplicate,
    TicketStored,
    /// An older ticket than the stored one: kept the newer.
    TicketNotNewer,
    AuthorizationPending,
    /// A newer authorization event for the same authorizer was already recorded.
    Superseded,
    Unauthorized,
    /// Accepted; nothing to do (fast-register notices, unknown InfoTypes).
    Ignored,
}

impl PushOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            PushOutcome::Duplicate => "duplicate",
            PushOutcome::TicketStored => "ticket_stored",
            PushOutcome::TicketNotNewer => "ticket_not_newer",
            PushOutcome::AuthorizationPending => "authorization_pending",
            PushOutcome::Superseded => "superseded",
            PushOutcome::Unauthorized => "unauthorized",
            PushOutcome::Ignored => "ignored",
        }
    }
}

/// The pending authorization an `authorized`/`updateauthorized` push carries (built in one place
/// for the store and for the exchange).
fn pending_authorization(push: &ComponentPush, now: i64) -> Option<PendingAuthorization> {
    let (kind, a) = match push {
        ComponentPush::Authorized(a) => (AuthorizationKind::Authorized, a),
        ComponentPush::UpdateAuthorized(a) => (AuthorizationKind::UpdateAuthorized, a),
        _ => return None,
    };
    Some(PendingAuthorization {
        authorizer_appid: a.authorizer_appid.clone(),
        kind,
        authorization_code: a.authorization_code.expose_secret().into(),
        create_time: a.create_time,
        code_expires_at: a.code_expires_at,
        received_at: now,
        pre_auth_digest: a
            .pre_auth_code
            .as_ref()
            .map(|c| crate::crypto::sha1_hex(c.expose_secret())),
    })
}

/// Dedupes the push by `dedupe_key`, applies it (every effect is idempotent, so a crashed
/// earlier attempt is simply redone), and marks it done.
pub async fn apply_push<S: ComponentEventStore>(
    store: &S,
    push: &ComponentPush,
    dedupe_key: &str,
    now: i64,
) -> Result<PushOutcome, StoreError> {
    if store.claim_push(dedupe_key, push.info_type(), now).await? == PushClaim::Done {
        return Ok(PushOutcome::Duplicate);
    }
    let applied = |e: EventApplied, yes: PushOutcome| match e {
        EventApplied::Applied => yes,
        EventApplied::Superseded => PushOutcome::Superseded,
    };
    let outcome = match push {
        ComponentPush::VerifyTicket {
            ticket,
            create_time,
            ..
        } => {
            let stored = StoredTicket {
                ticket: ticket.expose_secret().into(),
                create_time: *create_time,
                received_at: now,
            };
            match store.put_ticket(&stored).await? {
                TicketWrite::Stored => PushOutcome::TicketStored,
                TicketWrite::NotNewer => PushOutcome::TicketNotNewer,
            }
        }
        ComponentPush::Authorized(_) | ComponentPush::UpdateAuthorized(_) => {
            match pending_authorization(push, now) {
                Some(p) => applied(
                    store.put_pending_authorization(&p).await?,
                    PushOutcome::AuthorizationPending,
                ),
                None => PushOutcome::Ignored,
            }
        }
        ComponentPush::Unauthorized {
            authorizer_appid,
            create_time,
            ..
        } => applied(
            store
                .mark_unauthorized(authorizer_appid, *create_time, now)
                .await?,
            PushOutcome::Unauthorized,
        ),
        ComponentPush::FastRegister(_) | ComponentPush::Other { .. } => PushOutcome::Ignored,
    };
    store.complete_push(dedupe_key).await?;
    Ok(outcome)
}

/// For an `authorized`/`updateauthorized` push: exchanges the code now if it can be done within
/// `budget` (WeChat waits 5 s for the answer). `None` when there is nothing to do or the budget
/// ran out: the pending authorization stays and the refresher completes it.
pub async fn complete_within<S, C, K>(
    svc: &TokenService<'_, S, C, K>,
    push: &ComponentPush,
    now: i64,
    budget: Duration,
) -> Option<Result<Exchange, TokenError>>
where
    S: ComponentEventStore,
    C: CredentialsProvider,
    K: Clock,
{
    let pending = pending_authorization(push, now)?;
    match tokio::time::timeout(budget, authorization::complete_pending(svc, &pending)).await {
        Ok(result) => Some(result),
        Err(_) => {
            tracing::warn!(authorizer = %pending.authorizer_appid, "authorization not completed within the callback budget; left pending");
            None
        }
    }
}
