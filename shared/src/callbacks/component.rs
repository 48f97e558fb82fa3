//! What the authorization event URL does with a verified push: the ticket is stored (newest
//! wins: no dedupe record, no event); every other push is checked against the event records
//! ([`push_event`]: a WeChat retry is answered `success` and changes nothing), applied
//! ([`apply_push`]), its code exchanged within the budget ([`complete_within`]), then published
//! as `component.event` and recorded ([`deliver_push_event`]), with wxopen's own state change as
//! `authorization.changed` ([`authorization_changes`]).

use std::time::Duration;

use secrecy::ExposeSecret;

use crate::authorization::{self, Exchange};
use crate::clock::Clock;
use crate::events::outbox::{self, Delivered};
use crate::events::{AuthorizationChange, Event, EventEntry, EventError, EventPublisher, Known};
use crate::secrets::CredentialsProvider;
use crate::tokens::{TokenError, TokenService};

use crate::model::{AuthorizationKind, PendingAuthorization, StoredTicket};
use crate::store::outbox::ReplyMemo;
use crate::store::{ComponentEventStore, EventApplied, StoreError, TicketWrite};
use crate::xml::{self, ComponentPush};

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

/// Applies the push. Every effect is idempotent (newest-wins writes), so a WeChat retry, or a
/// crashed earlier attempt, is simply redone; the ticket needs no dedupe record at all.
pub async fn apply_push<S: ComponentEventStore>(
    store: &S,
    push: &ComponentPush,
    now: i64,
) -> Result<PushOutcome, StoreError> {
    let applied = |e: EventApplied, yes: PushOutcome| match e {
        EventApplied::Applied => yes,
        EventApplied::Superseded => PushOutcome::Superseded,
    };
    Ok(match push {
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
    })
}

#[derive(Debug, thiserror::Error)]
pub enum ComponentPushError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Event(#[from] EventError),
}

/// A component push other than the ticket, as an event: built, and checked against the event
/// records (`None` for the ticket, which is no event).
pub struct PushEvent {
    pub entry: EventEntry,
    /// The event record exists: a WeChat retry of a push already handled.
    pub duplicate: bool,
    /// The provider's customer of the authorizer the push is about, as recorded before it.
    pub customer_ref: Option<String>,
}

/// The `component.event` of a push and whether it was handled already (one read).
pub async fn push_event<S: ComponentEventStore>(
    store: &S,
    plaintext: &str,
    now: i64,
) -> Result<Option<PushEvent>, ComponentPushError> {
    let fields = xml::fields(plaintext).map_err(EventError::from)?;
    if fields.get("InfoType") == Some("component_verify_ticket") {
        return Ok(None);
    }
    let record = match Event::component_subject(&fields) {
        Some(appid) => store.get_authorizer(appid).await?,
        None => None,
    };
    let customer_ref = record.as_ref().and_then(|r| r.customer_ref.clone());
    let known = Known {
        authorizer_known: record.is_some(),
        customer_ref: customer_ref.as_deref(),
    };
    let Some(event) = Event::from_component_fields(&fields, now, known)? else {
        return Ok(None);
    };
    let entry = EventEntry::from_event(&event)?;
    let duplicate = outbox::recall(store, &entry.id).await?.is_some();
    Ok(Some(PushEvent {
        entry,
        duplicate,
        customer_ref,
    }))
}

/// wxopen's own state change caused by `push` (event id `cause`), as `authorization.changed`:
/// `unauthorized` when the push was applied, `authorized`/`updated` when this push's exchange
/// recorded the authorization (not when the redirect had: it published; see
/// [`authorization::exchange_change`] for the shared id).
pub fn authorization_changes(
    push: &ComponentPush,
    outcome: PushOutcome,
    exchange: Option<&Exchange>,
    cause: &str,
    customer_ref: Option<&str>,
    now: i64,
) -> Vec<Event> {
    let info_type = push.info_type();
    let granted = |change, a: &xml::AuthorizationEvent| {
        exchange.and_then(|x| {
            authorization::exchange_change(
                x,
                change,
                &a.authorization_code,
                info_type,
                a.create_time,
                now,
                customer_ref,
            )
        })
    };
    let event = match (push, outcome) {
        (
            ComponentPush::Unauthorized {
                authorizer_appid,
                create_time,
                ..
            },
            PushOutcome::Unauthorized,
        ) => Some(Event::authorization_changed(
            authorizer_appid,
            AuthorizationChange::Unauthorized,
            cause,
            *create_time,
            now,
            customer_ref,
            std::collections::BTreeMap::from([("cause".to_string(), info_type.to_string())]),
        )),
        (ComponentPush::Authorized(a), _) => granted(AuthorizationChange::Authorized, a),
        (ComponentPush::UpdateAuthorized(a), _) => granted(AuthorizationChange::Updated, a),
        _ => None,
    };
    event.into_iter().collect()
}

/// Publishes the push's event and records it (before WeChat is answered), with wxopen's own
/// `authorization.changed` / `registration.changed` events in the same `PutEvents` call
/// (those refused are deferred to the outbox).
pub async fn deliver_push_event<S, P>(
    store: &S,
    publisher: &P,
    event: &PushEvent,
    changes: &[Event],
    now: i64,
) -> Result<(Delivered, usize), ComponentPushError>
where
    S: ComponentEventStore,
    P: EventPublisher,
{
    let entries = changes
        .iter()
        .map(EventEntry::from_event)
        .collect::<Result<Vec<_>, _>>()?;
    // One PutEvents for the push's event and wxopen's own changes.
    Ok(outbox::deliver_with(
        store,
        publisher,
        &event.entry,
        &entries,
        ReplyMemo::Success,
        now,
    )
    .await?)
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
