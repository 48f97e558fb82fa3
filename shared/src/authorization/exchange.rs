//! Exchanging an authorization code for the authorizer's tokens, exactly once whoever arrives
//! first (the `authorized` push or the browser redirect), and the recoveries when a code can no
//! longer be exchanged.

use std::collections::BTreeMap;
use std::time::Instant;

use secrecy::{ExposeSecret, SecretString};

use super::links::{LinkHint, bind_authorization};
use crate::clock::Clock;
use crate::crypto;
use crate::events::{AuthorizationChange, Event};
use crate::model::{
    AccountKind, AuthorizationGrant, AuthorizerProfileRecord, NewToken, PendingAuthorization,
};
use crate::secrets::CredentialsProvider;
use crate::store::{AuthorizerStore, CodeClaim, EventApplied, TokenServiceStore};
use crate::tokens::{TokenError, TokenService, new_owner};
use crate::wechat::ErrorKind;

/// How one authorization code exchange ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Exchange {
    /// This worker exchanged the code and recorded the authorizer.
    Recorded { authorizer_appid: String },
    /// Another worker (the push or the redirect) had already done it.
    AlreadyDone { authorizer_appid: String },
    /// A newer authorization event for this authorizer was already recorded.
    Superseded { authorizer_appid: String },
}

impl Exchange {
    pub fn authorizer_appid(&self) -> &str {
        match self {
            Exchange::Recorded { authorizer_appid }
            | Exchange::AlreadyDone { authorizer_appid }
            | Exchange::Superseded { authorizer_appid } => authorizer_appid,
        }
    }
}

/// The `authorization.changed` of a code exchange, published by whoever *recorded* it (the
/// push or the browser redirect): `None` for [`Exchange::AlreadyDone`] (the other path recorded
/// it and publishes) and [`Exchange::Superseded`]. The id is derived from the authorizer, the
/// change and the code's digest (never the code), so a retry of the same authorization gives the
/// same id whichever path records it. `cause` (`authorized`, `redirect`, …) goes in `fields`.
pub fn exchange_change(
    exchange: &Exchange,
    change: AuthorizationChange,
    code: &SecretString,
    cause: &str,
    event_time: i64,
    now: i64,
    customer_ref: Option<&str>,
) -> Option<Event> {
    let Exchange::Recorded { authorizer_appid } = exchange else {
        return None;
    };
    let fields = BTreeMap::from([("cause".to_string(), cause.to_string())]);
    Some(Event::authorization_changed(
        authorizer_appid,
        change,
        &format!("code:{}", crypto::sha1_hex(code.expose_secret())),
        event_time,
        now,
        customer_ref,
        fields,
    ))
}

/// Records an authorization whose code can no longer be exchanged (a callback was cut off
/// after `api_query_auth` spent it): the refresh token from `api_get_authorizer_list`, fresh
/// tokens from `api_authorizer_token`, permission sets and profile from
/// `api_get_authorizer_info`. `None` when WeChat does not list the authorizer (it cancelled).
pub async fn recover_authorization<S, C, K>(
    svc: &TokenService<'_, S, C, K>,
    authorizer_appid: &str,
    event_time: Option<i64>,
) -> Result<Option<Exchange>, TokenError>
where
    S: TokenServiceStore,
    C: CredentialsProvider,
    K: Clock,
{
    let creds = svc.credentials.credentials().await?;
    let component = svc.component_token(None).await?;
    let mut wanted = vec![authorizer_appid.to_string()];
    let Some((appid, refresh_token)) = svc
        .listed_refresh_tokens(&component.token, &creds.component_appid, &mut wanted)
        .await?
        .0
        .pop()
    else {
        return Ok(None);
    };
    let tokens = svc
        .wechat
        .authorizer_token(
            &component.token,
            &creds.component_appid,
            &appid,
            &refresh_token,
        )
        .await?;
    let info = svc
        .wechat
        .get_authorizer_info(&component.token, &creds.component_appid, &appid)
        .await?;
    let now = svc.clock.now();
    let grant = AuthorizationGrant {
        appid: appid.clone(),
        event_time,
        func_info: info.authorization_info.func_info,
        token: NewToken {
            access_token: tokens.authorizer_access_token,
            expires_at: now + tokens.expires_in,
            refresh_token: Some(tokens.authorizer_refresh_token),
        },
        profile: Some(profile_record(info.authorizer_info)),
        now,
    };
    Ok(Some(match svc.store.record_authorization(&grant).await? {
        EventApplied::Applied => {
            tracing::info!(authorizer = %appid, "authorization recovered from api_get_authorizer_list");
            Exchange::Recorded {
                authorizer_appid: appid,
            }
        }
        EventApplied::Superseded => Exchange::Superseded {
            authorizer_appid: appid,
        },
    }))
}

/// Exchanges an authorization code (from the push or the redirect) exactly once, records the
/// authorizer with its tokens, permission sets and profile, and ties it to the customer of the
/// link `hint` names (whichever of the push and the redirect comes first).
pub async fn exchange_code<S, C, K>(
    svc: &TokenService<'_, S, C, K>,
    code: &SecretString,
    event_time: Option<i64>,
    hint: &LinkHint,
) -> Result<Exchange, TokenError>
where
    S: TokenServiceStore,
    C: CredentialsProvider,
    K: Clock,
{
    let exchange = exchange_once(svc, code, event_time).await?;
    bind_authorization(
        svc.store,
        hint,
        exchange.authorizer_appid(),
        svc.clock.now(),
    )
    .await?;
    Ok(exchange)
}

async fn exchange_once<S, C, K>(
    svc: &TokenService<'_, S, C, K>,
    code: &SecretString,
    event_time: Option<i64>,
) -> Result<Exchange, TokenError>
where
    S: TokenServiceStore,
    C: CredentialsProvider,
    K: Clock,
{
    let code_id = crypto::sha1_hex(code.expose_secret());
    let deadline = Instant::now() + svc.settings.wait_budget;
    let owner = new_owner();
    loop {
        let now = svc.clock.now();
        match svc
            .store
            .claim_code(&code_id, &owner, now, now + svc.settings.code_lease_secs)
            .await?
        {
            CodeClaim::Claimed => break,
            CodeClaim::Done { authorizer_appid } => {
                return Ok(Exchange::AlreadyDone { authorizer_appid });
            }
            CodeClaim::Busy if Instant::now() >= deadline => return Err(TokenError::Busy),
            CodeClaim::Busy => tokio::time::sleep(svc.settings.poll).await,
        }
    }
    match exchange_claimed(svc, code, event_time).await {
        Ok(exchange) => {
            svc.store
                .finish_code(
                    &code_id,
                    &owner,
                    exchange.authorizer_appid(),
                    svc.clock.now(),
                )
                .await?;
            Ok(exchange)
        }
        Err(e) => {
            if let Err(release) = svc.store.release_code(&code_id, &owner).await {
                tracing::warn!(error = %release, "could not release an authorization-code claim");
            }
            Err(e)
        }
    }
}

async fn exchange_claimed<S, C, K>(
    svc: &TokenService<'_, S, C, K>,
    code: &SecretString,
    event_time: Option<i64>,
) -> Result<Exchange, TokenError>
where
    S: TokenServiceStore,
    C: CredentialsProvider,
    K: Clock,
{
    let creds = svc.credentials.credentials().await?;
    let info = svc
        .with_component_token(|t| {
            let appid = &creds.component_appid;
            async move { svc.wechat.query_auth(&t, appid, code).await }
        })
        .await?;
    // The token the exchange just worked with (cached in this invocation).
    let component = svc.component_token(None).await?;
    let now = svc.clock.now();
    let profile = match svc
        .wechat
        .get_authorizer_info(
            &component.token,
            &creds.component_appid,
            &info.authorizer_appid,
        )
        .await
    {
        Ok(r) => Some(profile_record(r.authorizer_info)),
        Err(e) => {
            // The tokens matter more than the profile: record them anyway.
            tracing::warn!(error = %e, authorizer = %info.authorizer_appid, "api_get_authorizer_info failed");
            None
        }
    };
    let grant = AuthorizationGrant {
        appid: info.authorizer_appid.clone(),
        event_time,
        func_info: info.func_info,
        token: NewToken {
            access_token: info.authorizer_access_token,
            expires_at: now + info.expires_in,
            refresh_token: Some(info.authorizer_refresh_token),
        },
        profile,
        now,
    };
    let authorizer_appid = info.authorizer_appid;
    Ok(match svc.store.record_authorization(&grant).await? {
        EventApplied::Applied => {
            tracing::info!(authorizer = %authorizer_appid, "authorization recorded");
            if grant.profile.is_none() {
                note_profile_missing(svc.store, &authorizer_appid, now).await;
            }
            Exchange::Recorded { authorizer_appid }
        }
        EventApplied::Superseded => Exchange::Superseded { authorizer_appid },
    })
}

/// Completes a pending `authorized`/`updateauthorized` push and removes it. A code WeChat no
/// longer accepts (spent by a callback that was cut off before it could record, or expired)
/// is completed from `api_get_authorizer_list` instead; if WeChat does not list the
/// authorizer, the pending item is dropped.
pub async fn complete_pending<S, C, K>(
    svc: &TokenService<'_, S, C, K>,
    pending: &PendingAuthorization,
) -> Result<Exchange, TokenError>
where
    S: TokenServiceStore,
    C: CredentialsProvider,
    K: Clock,
{
    // `done`: the pending item will never need another attempt.
    let hint = match &pending.pre_auth_digest {
        Some(d) => LinkHint::PreAuthDigest(d.clone()),
        None => LinkHint::None,
    };
    let (outcome, done) = match exchange_code(
        svc,
        &pending.authorization_code,
        Some(pending.create_time),
        &hint,
    )
    .await
    {
        Err(TokenError::WeChat(e)) if e.kind() == Some(ErrorKind::InvalidCode) => {
            tracing::warn!(authorizer = %pending.authorizer_appid, error = %e, "authorization code no longer accepted; recovering from api_get_authorizer_list");
            match recover_authorization(svc, &pending.authorizer_appid, Some(pending.create_time))
                .await
            {
                Ok(Some(exchange)) => {
                    bind_authorization(
                        svc.store,
                        &hint,
                        exchange.authorizer_appid(),
                        svc.clock.now(),
                    )
                    .await?;
                    (Ok(exchange), true)
                }
                Ok(None) => {
                    tracing::error!(authorizer = %pending.authorizer_appid, "authorizer not listed by WeChat; pending authorization dropped");
                    (Err(TokenError::WeChat(e)), true)
                }
                Err(other) => (Err(other), false),
            }
        }
        other => {
            let done = other.is_ok();
            (other, done)
        }
    };
    if done {
        svc.store.remove_pending_authorization(pending).await?;
    }
    outcome
}

/// The stored form of `api_get_authorizer_info`'s profile.
pub fn profile_record(p: crate::wechat::AuthorizerProfile) -> AuthorizerProfileRecord {
    AuthorizerProfileRecord {
        kind: if p.is_mini_program() {
            AccountKind::MiniProgram
        } else {
            AccountKind::OfficialAccount
        },
        nick_name: p.nick_name,
        user_name: p.user_name,
        principal_name: p.principal_name,
        service_type: p.service_type_info.id,
        verify_type: p.verify_type_info.id,
        head_img: p.head_img,
    }
}

/// Best effort: the scheduled run reads the profile later (features that need the account's kind
/// answer "retry shortly" until then).
async fn note_profile_missing<S: AuthorizerStore>(store: &S, appid: &str, now: i64) {
    if let Err(e) = store.mark_profile_missing(appid, now).await {
        tracing::warn!(error = %e, authorizer = appid, "could not note the missing profile");
    }
}

/// What [`fill_missing_profiles`] did in one run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProfilesFilled {
    pub filled: u32,
    pub failed: u32,
}

/// Reads the profile of up to `limit` authorizers recorded without one (their
/// `api_get_authorizer_info` failed when they authorized). A failure leaves the note for the
/// next run; an authorizer that is gone or already has a profile just loses its note.
pub async fn fill_missing_profiles<S, C, K>(
    svc: &TokenService<'_, S, C, K>,
    limit: usize,
) -> Result<ProfilesFilled, TokenError>
where
    S: TokenServiceStore,
    C: CredentialsProvider,
    K: Clock,
{
    let mut done = ProfilesFilled::default();
    let missing = svc.store.profiles_missing(limit).await?;
    if missing.is_empty() {
        return Ok(done);
    }
    let creds = svc.credentials.credentials().await?;
    for appid in missing {
        let wanted = svc
            .store
            .get_authorizer(&appid)
            .await?
            .is_some_and(|r| r.profile.is_none());
        if !wanted {
            svc.store.clear_profile_missing(&appid).await?;
            continue;
        }
        let info = svc
            .with_component_token(|t| {
                let (component, appid) = (&creds.component_appid, &appid);
                async move { svc.wechat.get_authorizer_info(&t, component, appid).await }
            })
            .await;
        match info {
            Ok(info) => {
                let profile = profile_record(info.authorizer_info);
                svc.store
                    .set_profile(&appid, &profile, svc.clock.now())
                    .await?;
                tracing::info!(authorizer = %appid, "missing profile filled in");
                done.filled += 1;
            }
            Err(e) => {
                tracing::warn!(error = %e, authorizer = %appid, "profile still unreadable");
                done.failed += 1;
            }
        }
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(x: &Exchange, code: &str) -> Option<Event> {
        let code = SecretString::from(code);
        exchange_change(
            x,
            AuthorizationChange::Authorized,
            &code,
            "redirect",
            1,
            2,
            Some("c"),
        )
    }

    #[test]
    fn only_the_recorder_publishes_with_an_id_from_the_code_digest() {
        let recorded = Exchange::Recorded {
            authorizer_appid: "wxa".into(),
        };
        let a = change(&recorded, "queryauthcode@@@1").unwrap();
        // Another cause (the push) for the same code: the same id.
        let code = SecretString::from("queryauthcode@@@1");
        let b = exchange_change(
            &recorded,
            AuthorizationChange::Authorized,
            &code,
            "authorized",
            1,
            3,
            None,
        )
        .unwrap();
        assert_eq!(a.detail.id, b.detail.id);
        assert_ne!(
            a.detail.id,
            change(&recorded, "queryauthcode@@@2").unwrap().detail.id
        );
        assert_eq!(a.detail.customer_ref.as_deref(), Some("c"));
        let json = serde_json::to_string(&a.detail).unwrap();
        assert!(!json.contains("queryauthcode"), "{json}");
        for other in [
            Exchange::AlreadyDone {
                authorizer_appid: "wxa".into(),
            },
            Exchange::Superseded {
                authorizer_appid: "wxa".into(),
            },
        ] {
            assert!(change(&other, "queryauthcode@@@1").is_none());
        }
    }
}
