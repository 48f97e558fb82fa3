//! What the authorization event URL does with a verified push.

use secrecy::ExposeSecret;

use crate::store::{
    AuthorizationKind, ComponentEventStore, EventApplied, PendingAuthorization, PushClaim,
    StoreError, StoredTicket, TicketWrite,
};
use crate::xml::{AuthorizationEvent, ComponentPush};

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

fn pending(kind: AuthorizationKind, a: &AuthorizationEvent, now: i64) -> PendingAuthorization {
    PendingAuthorization {
        authorizer_appid: a.authorizer_appid.clone(),
        kind,
        authorization_code: a.authorization_code.expose_secret().into(),
        create_time: a.create_time,
        code_expires_at: a.code_expires_at,
        received_at: now,
    }
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
        ComponentPush::Authorized(a) => applied(
            store
                .put_pending_authorization(&pending(AuthorizationKind::Authorized, a, now))
                .await?,
            PushOutcome::AuthorizationPending,
        ),
        ComponentPush::UpdateAuthorized(a) => applied(
            store
                .put_pending_authorization(&pending(AuthorizationKind::UpdateAuthorized, a, now))
                .await?,
            PushOutcome::AuthorizationPending,
        ),
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
