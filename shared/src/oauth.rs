//! Web OAuth on behalf of an official account (代公众号发起网页授权): `GET /oauth/{appid}/authorize`
//! sends the WeChat browser to WeChat's authorize page with the component appid; WeChat comes
//! back to `GET /oauth/{appid}/callback?code=&state=&appid=`, the code is exchanged with
//! `sns/oauth2/component/access_token` (component token), the profile read with `sns/userinfo`
//! for `snsapi_userinfo`, the identity recorded, and the browser sent to `return_to` with a
//! one-time `login_code`.
//!
//! The state round-trips signed: WeChat's `state` (at most 128 bytes) is
//! `<expires_at>.<nonce>.<mac>`; `return_to`, `scope` and the provider's `state` travel in the
//! `redirect_uri`'s query, and the MAC (HMAC-SHA256 under a key derived from the component
//! secret) covers them all with the appid. Authorizing writes nothing; a callback claims the
//! nonce (once) before any exchange, so a forged state is a 400 with no write and no WeChat call,
//! and a replayed one a 400 with no exchange. The user's access and refresh tokens are dropped
//! after the profile read: never stored, returned or logged.

use hmac::{Hmac, KeyInit, Mac};
use secrecy::ExposeSecret;
use sha2::Sha256;

use crate::clock::Clock;
use crate::config::Config;
use crate::identity::{self, IdentityError, Sighting};
use crate::login_codes::{self, ReturnToError, SignInSettings};
use crate::model::SignInFlow;
use crate::permissions::{self, SignInRefusal};
use crate::secrets::{ComponentCredentials, CredentialsProvider, SecretsError};
use crate::store::{IdentityStore, LoginCodeStore, StoreError, TokenServiceStore};
use crate::tokens::{TokenError, TokenService};

/// How long a started OAuth flow may take to come back.
pub const STATE_TTL_SECS: i64 = 600;

#[derive(Debug, Clone)]
pub struct OauthSettings {
    /// WeChat's web host (`WECHAT_OPEN_BASE`).
    pub open_base: String,
    pub sign_in: SignInSettings,
}

impl OauthSettings {
    pub fn from_config(config: &Config) -> Self {
        Self {
            open_base: config.wechat_open_base.clone(),
            sign_in: SignInSettings::from_config(config),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Base,
    Userinfo,
}

impl Scope {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "snsapi_base" => Some(Scope::Base),
            "snsapi_userinfo" => Some(Scope::Userinfo),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Base => "snsapi_base",
            Scope::Userinfo => "snsapi_userinfo",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum OauthError {
    #[error(transparent)]
    Token(#[from] TokenError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Secrets(#[from] SecretsError),
    #[error(transparent)]
    Refused(#[from] SignInRefusal),
    #[error(transparent)]
    Identity(#[from] IdentityError),
    #[error(transparent)]
    ReturnTo(#[from] ReturnToError),
    #[error("the state is missing, malformed, forged or expired")]
    BadState,
    #[error("this sign-in was already completed; start again")]
    Replayed,
}

/// A flow the provider starts (validated at the edge).
#[derive(Debug, Clone)]
pub struct Start<'a> {
    pub appid: &'a str,
    pub scope: Scope,
    pub return_to: &'a str,
    pub state: Option<&'a str>,
}

/// What WeChat's redirect brought back.
#[derive(Debug, Clone)]
pub struct Callback<'a> {
    pub appid: &'a str,
    /// `None`: the user refused.
    pub code: Option<&'a str>,
    pub wechat_state: &'a str,
    pub scope: &'a str,
    pub return_to: &'a str,
    pub state: Option<&'a str>,
}

/// A WeChat OAuth code as it arrives: 1 to 128 of `A-Z a-z 0-9 _ -`.
pub fn valid_code(code: &str) -> bool {
    !code.is_empty()
        && code.len() <= 128
        && code
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

fn mac(
    creds: &ComponentCredentials,
    appid: &str,
    scope: &str,
    expires_at: i64,
    nonce: &str,
    return_to: &str,
    state: Option<&str>,
) -> String {
    let secret = creds.component_appsecret.expose_secret().as_bytes();
    // HMAC accepts keys of any length: neither step can fail.
    let key = <Hmac<Sha256> as KeyInit>::new_from_slice(secret)
        .map(|mut m| {
            m.update(b"wxopen/oauth-state/v1");
            m.finalize().into_bytes().to_vec()
        })
        .unwrap_or_default();
    <Hmac<Sha256> as KeyInit>::new_from_slice(&key)
        .map(|mut m| {
            for part in [
                appid,
                scope,
                &expires_at.to_string(),
                nonce,
                return_to,
                state.unwrap_or(""),
            ] {
                m.update(&(part.len() as u64).to_be_bytes());
                m.update(part.as_bytes());
            }
            hex::encode(&m.finalize().into_bytes()[..16])
        })
        .unwrap_or_default()
}

fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// Checks the official account may run web OAuth and builds WeChat's authorize URL. Reads one
/// authorizer record; writes nothing, calls no WeChat API.
pub async fn authorize_url<S, C>(
    store: &S,
    credentials: &C,
    settings: &OauthSettings,
    callback_base: &str,
    start: &Start<'_>,
    now: i64,
) -> Result<String, OauthError>
where
    S: TokenServiceStore,
    C: CredentialsProvider,
{
    settings.sign_in.check_return_to(start.return_to)?;
    let record = crate::tokens::authorized_record(store, start.appid).await?;
    permissions::check_sign_in(&record, &permissions::OAUTH_SIGN_IN)?;
    let creds = credentials.credentials().await?;
    let nonce = hex::encode(rand::random::<[u8; 16]>());
    let expires_at = now + STATE_TTL_SECS;
    let scope = start.scope.as_str();
    let sig = mac(
        &creds,
        start.appid,
        scope,
        expires_at,
        &nonce,
        start.return_to,
        start.state,
    );
    let mut redirect_uri = format!(
        "{}/oauth/{}/callback?scope={scope}&return_to={}",
        callback_base.trim_end_matches('/'),
        start.appid,
        enc(start.return_to)
    );
    if let Some(s) = start.state {
        redirect_uri.push_str(&format!("&ps={}", enc(s)));
    }
    Ok(format!(
        "{}/connect/oauth2/authorize?appid={}&redirect_uri={}&response_type=code&scope={scope}&state={expires_at}.{nonce}.{sig}&component_appid={}#wechat_redirect",
        settings.open_base.trim_end_matches('/'),
        start.appid,
        enc(&redirect_uri),
        enc(&creds.component_appid),
    ))
}

/// WeChat's state, verified: the nonce and its expiry.
fn verify(
    creds: &ComponentCredentials,
    cb: &Callback<'_>,
    now: i64,
) -> Result<(String, i64), OauthError> {
    let mut parts = cb.wechat_state.split('.');
    let (Some(exp), Some(nonce), Some(sig), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(OauthError::BadState);
    };
    let expires_at: i64 = exp.parse().map_err(|_| OauthError::BadState)?;
    if nonce.len() != 32 || !nonce.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(OauthError::BadState);
    }
    let expected = mac(
        creds,
        cb.appid,
        cb.scope,
        expires_at,
        nonce,
        cb.return_to,
        cb.state,
    );
    let same: bool = subtle::ConstantTimeEq::ct_eq(expected.as_bytes(), sig.as_bytes()).into();
    if !same || expires_at <= now {
        return Err(OauthError::BadState);
    }
    Ok((nonce.to_string(), expires_at))
}

/// Completes a flow: the URL to send the browser to (`return_to` with `login_code`, or with
/// `login_error=access_denied` when the user refused).
pub async fn complete<S, C, K>(
    svc: &TokenService<'_, S, C, K>,
    settings: &OauthSettings,
    cb: &Callback<'_>,
) -> Result<String, OauthError>
where
    S: TokenServiceStore + IdentityStore + LoginCodeStore,
    C: CredentialsProvider,
    K: Clock,
{
    let now = svc.clock.now();
    let scope = Scope::parse(cb.scope).ok_or(OauthError::BadState)?;
    let creds = svc.credentials.credentials().await?;
    let (nonce, expires_at) = verify(&creds, cb, now)?;
    let return_to = settings.sign_in.check_return_to(cb.return_to)?;
    let Some(code) = cb.code else {
        return Ok(login_codes::return_url(
            &return_to,
            ("login_error", "access_denied"),
            cb.state,
        ));
    };
    if !valid_code(code) {
        return Err(OauthError::BadState);
    }
    if !svc.store.claim_oauth_nonce(&nonce, expires_at).await? {
        return Err(OauthError::Replayed);
    }
    let component_appid = creds.component_appid.clone();
    let token = svc
        .with_component_token(|t| {
            let component_appid = component_appid.clone();
            async move {
                svc.wechat
                    .oauth_component_access_token(&t, &component_appid, cb.appid, code)
                    .await
            }
        })
        .await?;
    let mut unionid = token.unionid.clone();
    if scope == Scope::Userinfo {
        let info = svc
            .wechat
            .sns_userinfo(&token.access_token, &token.openid)
            .await
            .map_err(TokenError::from)?;
        unionid = info.unionid.or(unionid);
    }
    drop(token.access_token);
    let unionid = unionid.filter(|u| !u.trim().is_empty());
    let sign_in = identity::record(
        svc.store,
        &Sighting {
            appid: cb.appid,
            openid: &token.openid,
            unionid: unionid.as_deref(),
            flow: SignInFlow::Oauth,
            now,
        },
    )
    .await?;
    let login_code = login_codes::issue(
        svc.store,
        &settings.sign_in,
        SignInFlow::Oauth,
        cb.appid,
        &token.openid,
        &sign_in,
        now,
    )
    .await?;
    tracing::info!(
        authorizer = cb.appid,
        known_user = sign_in.known_user,
        "web OAuth sign-in"
    );
    Ok(login_codes::return_url(
        &return_to,
        ("login_code", &login_code),
        cb.state,
    ))
}
