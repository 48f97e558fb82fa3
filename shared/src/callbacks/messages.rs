//! What the message URL (`/wechat/messages/{appid}`) does with a verified message, in order:
//!
//! 1. The event: every message becomes one `authorizer.message` / `authorizer.event` with a
//!    stable id ([`crate::events::detail`]). A WeChat retry finds the event record
//!    ([`outbox::recall`]) and gets the recorded answer: nothing is published again, no hook is
//!    called.
//! 2. The answer, in priority order: a follow-to-log-in scan confirms its session, the
//!    full-network release test gets its answers, then the reply hook (only for an authorized
//!    authorizer), else `success`. The hook is claimed for the event id first
//!    ([`EventRecordStore::claim_hook`]): a WeChat retry that arrives while an earlier delivery
//!    still waits on the hook waits for that delivery's record instead of asking again.
//! 3. [`outbox::deliver`]: the event is published (or put in the outbox) and recorded with its
//!    answer before WeChat is answered.
//!
//! Before all this, a mini program's audit result (`weapp_audit_success|fail|delay`) updates its
//! code record ([`crate::code::on_audit_push`]: one conditional write, a no-op for a retry or an
//! older audit's result); the event still goes out on the bus as any other.
//!
//! A login scan whose confirmation failed is recorded as [`ReplyMemo::Retry`]: WeChat is
//! answered so that it retries, and each retry runs the scan again (the event was published
//! once, with the first delivery).

use std::time::Duration;

use super::release_test::{self, Answer};
use crate::clock::Clock;
use crate::events::outbox::{self, Delivered};
use crate::events::{Event, EventEntry, EventError, EventPublisher, Known};
use crate::login::{self, LoginSettings, ScanOutcome};
use crate::reply::{self, HookReport, ReplyHook};
use crate::secrets::CredentialsProvider;
use crate::store::outbox::{EventRecordStore, ReplyMemo};
use crate::store::{
    CodeStore, IdentityStore, LoginStore, PushStore, StoreError, TokenServiceStore,
};
use crate::tokens::TokenService;
use crate::xml::{Message, text_reply};

/// The answer of the features that come before the hook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// `success`: nothing to say.
    Success,
    /// An empty body (the release test's `QUERY_AUTH_CODE` case).
    Empty,
    /// A passive text reply (encrypted before it is sent).
    Text(String),
    /// A login scan that could not be confirmed: WeChat must retry.
    Retry,
}

/// What wxopen knows of the authorizer a message is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthorizerStatus {
    /// No record (authorization still pending, or a brand-new authorizer): the message is
    /// accepted and published with `authorizer_known: false`.
    Unknown,
    /// Known but not authorized (unauthorized, needs re-authorization): published, no hook.
    Inactive,
    Authorized,
}

/// The reply hook of one request and its budget (`None` when the deployment has no hook).
pub struct HookCall<'h, H> {
    pub hook: &'h H,
    pub budget: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum MessageError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Event(#[from] EventError),
}

/// What handling one message came to (the function maps it to the HTTP answer and metrics).
#[derive(Debug)]
pub struct Handled {
    /// The answer: `Success` → `success`, `Empty` → an empty body, `Reply` → the sealed XML,
    /// `Retry` → an error status so WeChat retries.
    pub answer: ReplyMemo,
    pub event_id: String,
    /// `None` for a WeChat retry (answered from the record).
    pub delivered: Option<Delivered>,
    /// `Some` when the hook was asked.
    pub hook: Option<HookReport>,
}

/// Login first, then the release test.
pub async fn handle<S, C, K>(
    svc: &TokenService<'_, S, C, K>,
    settings: &LoginSettings,
    appid: &str,
    msg: &Message,
) -> Reply
where
    S: TokenServiceStore + LoginStore + IdentityStore + PushStore,
    C: CredentialsProvider,
    K: Clock,
{
    match login::on_message(svc, settings, appid, msg).await {
        ScanOutcome::Confirmed(text) => return Reply::Text(text),
        ScanOutcome::Failed => return Reply::Retry,
        ScanOutcome::NotALogin => {}
    }
    // A scan that confirmed nothing still gets the release test's answer.
    match release_test::answer(svc, appid, msg).await {
        Some(Answer::Text(t)) => Reply::Text(t),
        Some(Answer::Empty) => Reply::Empty,
        None => Reply::Success,
    }
}

fn memo_of(reply: Reply, msg: &Message, now: i64) -> Option<ReplyMemo> {
    match reply {
        Reply::Success => None,
        Reply::Empty => Some(ReplyMemo::Empty),
        Reply::Retry => Some(ReplyMemo::Retry),
        Reply::Text(content) => Some(ReplyMemo::Reply {
            xml: text_reply(&msg.from_user_name, &msg.to_user_name, now, &content),
        }),
    }
}

/// How long a delivery holds the reply hook: its budget and a margin for the store and the
/// answer, in whole seconds. A delivery that died frees it when the lease ends.
fn hook_lease_secs(budget: Duration) -> i64 {
    i64::try_from(budget.as_secs())
        .unwrap_or(i64::MAX / 2)
        .saturating_add(HOOK_LEASE_MARGIN_SECS)
}

const HOOK_LEASE_MARGIN_SECS: i64 = 3;

/// Handles one verified message (`plaintext` is its decrypted XML, `msg` the parsed view).
#[allow(clippy::too_many_arguments)]
pub async fn on_message<S, C, K, P, H>(
    svc: &TokenService<'_, S, C, K>,
    settings: &LoginSettings,
    publisher: &P,
    hook: Option<HookCall<'_, H>>,
    appid: &str,
    status: AuthorizerStatus,
    customer_ref: Option<&str>,
    plaintext: &str,
    msg: &Message,
) -> Result<Handled, MessageError>
where
    S: TokenServiceStore + LoginStore + IdentityStore + PushStore + EventRecordStore + CodeStore,
    C: CredentialsProvider,
    K: Clock,
    P: EventPublisher,
    H: ReplyHook,
{
    let now = svc.clock.now();
    if msg.msg_type == "event"
        && let Ok(fields) = crate::xml::fields(plaintext)
        && let Some(result) = crate::code::audit_result_of(msg.event.as_deref(), |k| fields.get(k))
    {
        let applied = crate::code::on_audit_push(svc.store, appid, &result).await?;
        tracing::info!(
            authorizer = appid,
            state = result.state.as_str(),
            applied,
            "audit result pushed"
        );
    }
    let known = Known {
        authorizer_known: status != AuthorizerStatus::Unknown,
        customer_ref,
    };
    let event = Event::from_message(appid, plaintext, now, known)?;
    let entry = EventEntry::from_event(&event)?;
    if let Some(recorded) = outbox::recall(svc.store, &entry.id).await? {
        tracing::info!(authorizer = appid, event_id = %entry.id, "message already handled; answered as recorded");
        let answer = match recorded {
            // The scan failed before: try it again (the event went out the first time).
            ReplyMemo::Retry => match login::on_message(svc, settings, appid, msg).await {
                ScanOutcome::Confirmed(text) => memo_of(Reply::Text(text), msg, now),
                ScanOutcome::Failed => Some(ReplyMemo::Retry),
                ScanOutcome::NotALogin => None,
            }
            .unwrap_or(ReplyMemo::Success),
            other => other,
        };
        return Ok(Handled {
            answer,
            event_id: entry.id,
            delivered: None,
            hook: None,
        });
    }
    let mut hook_report = None;
    let memo = match memo_of(handle(svc, settings, appid, msg).await, msg, now) {
        Some(memo) => memo,
        None => match hook {
            Some(hook) if status == AuthorizerStatus::Authorized => {
                if svc
                    .store
                    .claim_hook(&entry.id, now, hook_lease_secs(hook.budget))
                    .await?
                {
                    let report = reply::ask(hook.hook, &entry.id, &entry.detail, hook.budget).await;
                    let memo =
                        reply::memo(report.reply(), &msg.from_user_name, &msg.to_user_name, now);
                    hook_report = Some(report);
                    memo
                } else {
                    // WeChat retried while an earlier delivery of this push still waits on the
                    // hook: answer as that one recorded; if it records nothing in time, deliver
                    // the event (at least once) without asking the hook again.
                    tracing::info!(authorizer = appid, event_id = %entry.id, "reply hook already asked for this push; waiting for its answer");
                    if let Some(answer) =
                        outbox::await_record(svc.store, &entry.id, hook.budget).await?
                    {
                        return Ok(Handled {
                            answer,
                            event_id: entry.id,
                            delivered: None,
                            hook: None,
                        });
                    }
                    ReplyMemo::Success
                }
            }
            _ => ReplyMemo::Success,
        },
    };
    let delivered = outbox::deliver(svc.store, publisher, &entry, memo, now).await?;
    Ok(Handled {
        answer: delivered.answer.clone(),
        event_id: entry.id,
        delivered: Some(delivered),
        hook: hook_report,
    })
}
