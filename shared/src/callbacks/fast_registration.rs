//! A fast registration's outcome, composed across `registration` and `authorization`: the
//! `notify_third_fasteregister` push (enterprise route) and the official account's ticket
//! (official-account route). A success exchanges the code with `api_query_auth` through the
//! same exchange as any authorization (claimed once by its digest, so an `authorized` push with
//! the same code finds it done), records the new mini program with the registration's
//! `customer_ref`, and publishes `registration.changed` (and `authorization.changed` when this
//! exchange recorded the authorizer). A failure records WeChat's status and its meaning.

use secrecy::SecretString;

use crate::authorization::{self, Exchange, LinkHint};
use crate::clock::Clock;
use crate::events::{AuthorizationChange, Event, EventError};
use crate::model::{AuthorizerState, Registration, RegistrationOutcome};
use crate::registration::{self, status_meaning};
use crate::secrets::CredentialsProvider;
use crate::store::{RegistrationStore, StoreError, TokenServiceStore};
use crate::tokens::{TokenError, TokenService};
use crate::xml::FastRegisterNotice;

#[derive(Debug, thiserror::Error)]
pub enum FastRegistrationError {
    #[error(transparent)]
    Token(#[from] TokenError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Event(#[from] EventError),
}

/// The registration a notice is about, and the events its outcome produced (empty when it
/// matched no registration or changed nothing).
#[derive(Debug, Default)]
pub struct NoticeOutcome {
    pub registration: Option<Registration>,
    pub events: Vec<Event>,
}

/// Handles a `notify_third_fasteregister` push (`cause`: its event id).
pub async fn on_notice<S, C, K>(
    svc: &TokenService<'_, S, C, K>,
    notice: &FastRegisterNotice,
    cause: &str,
    now: i64,
) -> Result<NoticeOutcome, FastRegistrationError>
where
    S: TokenServiceStore + RegistrationStore,
    C: CredentialsProvider,
    K: Clock,
{
    let Some(reg) = registration::find_registration(
        svc.store,
        notice.taskid.as_deref(),
        notice.info.code.as_deref(),
        notice.info.name.as_deref(),
    )
    .await?
    else {
        tracing::warn!(
            status = notice.status,
            "fast-registration notice matches no registration"
        );
        return Ok(NoticeOutcome::default());
    };
    let events = match (notice.status, &notice.auth_code) {
        (0, Some(code)) => {
            succeed(
                svc,
                &reg,
                notice.appid.as_deref(),
                code,
                notice.create_time,
                cause,
                now,
            )
            .await?
        }
        (0, None) => {
            tracing::warn!(registration = %reg.id, "fast-registration success without auth_code; left pending");
            Vec::new()
        }
        (status, _) => {
            let outcome = RegistrationOutcome::Failed {
                status,
                meaning: status_meaning(status).to_string(),
            };
            if registration::finish(svc.store, &reg, &outcome, now).await? {
                vec![registration::changed_event(
                    &reg,
                    &outcome,
                    cause,
                    notice.create_time,
                    now,
                )?]
            } else {
                Vec::new()
            }
        }
    };
    Ok(NoticeOutcome {
        registration: Some(reg),
        events,
    })
}

/// The official account's admin confirmed on WeChat's page: `cgi-bin/account/fastregister`
/// with the official account's token turns the ticket into the new mini program and a code.
pub async fn on_ticket<S, C, K>(
    svc: &TokenService<'_, S, C, K>,
    reg: &Registration,
    ticket: &SecretString,
    now: i64,
) -> Result<(String, Vec<Event>), FastRegistrationError>
where
    S: TokenServiceStore + RegistrationStore,
    C: CredentialsProvider,
    K: Clock,
{
    let oa = reg.oa_appid.as_deref().unwrap_or_default();
    let registered = svc
        .with_authorizer_token(oa, |t| async move {
            svc.wechat.account_fast_register(&t, ticket).await
        })
        .await?;
    tracing::info!(
        registration = %reg.id,
        appid = %registered.appid,
        wx_verify_copied = registered.wx_verify_copied(),
        linked = registered.linked(),
        "official account registered a mini program"
    );
    let cause = format!("ticket:{}", reg.id);
    let events = succeed(
        svc,
        reg,
        Some(&registered.appid),
        &registered.authorization_code,
        now,
        &cause,
        now,
    )
    .await?;
    Ok((registered.appid, events))
}

/// Exchanges the code (unless an `authorized` push already recorded this mini program since the
/// registration started), ties it to the customer and marks the registration succeeded.
async fn succeed<S, C, K>(
    svc: &TokenService<'_, S, C, K>,
    reg: &Registration,
    appid: Option<&str>,
    code: &SecretString,
    event_time: i64,
    cause: &str,
    now: i64,
) -> Result<Vec<Event>, FastRegistrationError>
where
    S: TokenServiceStore + RegistrationStore,
    C: CredentialsProvider,
    K: Clock,
{
    let known = match appid {
        Some(a) => svc.store.get_authorizer(a).await?.filter(|r| {
            r.state == AuthorizerState::Authorized
                && r.authorized_at.is_some_and(|t| t >= reg.created_at)
        }),
        None => None,
    };
    let (appid, recorded) = match known {
        Some(r) => (r.appid, false),
        None => {
            let exchange =
                authorization::exchange_code(svc, code, Some(event_time), &LinkHint::None).await?;
            let recorded = matches!(exchange, Exchange::Recorded { .. });
            (exchange.authorizer_appid().to_string(), recorded)
        }
    };
    let outcome = RegistrationOutcome::Succeeded {
        appid: appid.clone(),
    };
    let mut events = Vec::new();
    if registration::finish(svc.store, reg, &outcome, now).await? {
        events.push(registration::changed_event(
            reg, &outcome, cause, event_time, now,
        )?);
    }
    if recorded {
        let mut fields = std::collections::BTreeMap::new();
        fields.insert("cause".to_string(), "fast_registration".to_string());
        fields.insert("registration_id".to_string(), reg.id.clone());
        events.push(Event::authorization_changed(
            &appid,
            AuthorizationChange::Authorized,
            cause,
            event_time,
            now,
            Some(&reg.customer_ref),
            fields,
        ));
    }
    Ok(events)
}
