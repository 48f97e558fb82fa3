//! Follow-to-log-in: an official account's parametric QR code, delivered through the component.
//! A session is a `QR_STR_SCENE` code; the user's scan (`subscribe` with `qrscene_<scene>` or
//! `SCAN` with `<scene>`) reaches the message URL and confirms it with openid and UnionID.

use crate::clock::Clock;
use crate::config::Config;
use crate::identity::{self, IdentityError, Sighting};
use crate::login_codes::{self, SignInSettings};
use crate::model::{LoginConfirmation, LoginSession, LoginStatus, SignInFlow};
use crate::permissions::{self, SignInRefusal};
use crate::secrets::CredentialsProvider;
use crate::store::{IdentityStore, LoginCodeStore, LoginStore, StoreError, TokenServiceStore};
use crate::tokens::{TokenError, TokenService};
use crate::xml::Message;

pub mod page;

/// Why a UnionID is null.
pub const NO_UNIONID_REASON: &str = "the official account is not bound to an open account, so WeChat returns no UnionID; bind it (open-account routes) first";

#[derive(Debug, Clone)]
pub struct LoginSettings {
    /// QR code lifetime in seconds (WeChat allows up to 2,592,000 for temporary codes).
    pub qr_expire_secs: u32,
    /// Text sent back to the user who scanned.
    pub reply_text: String,
    /// Where QR images are served: `{mp_base}/cgi-bin/showqrcode?ticket=`.
    pub mp_base: String,
}

impl LoginSettings {
    /// The settings as deployed (`LOGIN_QR_EXPIRE_SECONDS`, `LOGIN_REPLY_TEXT`, `WECHAT_MP_BASE`).
    pub fn from_config(config: &Config) -> Self {
        let defaults = Self::default();
        Self {
            qr_expire_secs: u32::try_from(config.login_qr_expire.as_secs())
                .unwrap_or(defaults.qr_expire_secs),
            reply_text: config
                .login_reply_text
                .clone()
                .unwrap_or(defaults.reply_text),
            mp_base: config.wechat_mp_base.clone(),
        }
    }
}

impl Default for LoginSettings {
    fn default() -> Self {
        Self {
            qr_expire_secs: 300,
            reply_text: "登录成功 · You are signed in".into(),
            mp_base: crate::config::DEFAULT_WECHAT_MP_BASE.into(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    #[error(transparent)]
    Token(#[from] TokenError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Refused(#[from] SignInRefusal),
    #[error(transparent)]
    Identity(#[from] IdentityError),
}

/// What the provider asks of a hosted-page session.
#[derive(Debug, Clone, Default)]
pub struct SessionOptions {
    /// Allowlisted already (`SignInSettings::check_return_to`).
    pub return_to: Option<url::Url>,
    pub state: Option<String>,
}

/// 16 random bytes as hex: the session id and the QR scene.
pub fn new_session_id() -> String {
    hex::encode(rand::random::<[u8; 16]>())
}

pub fn valid_session_id(id: &str) -> bool {
    id.len() == 32
        && id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Checks the authorizer can run follow-to-log-in, makes the QR code, stores the session.
pub async fn create_session<S, C, K>(
    svc: &TokenService<'_, S, C, K>,
    settings: &LoginSettings,
    appid: &str,
    options: SessionOptions,
) -> Result<LoginSession, LoginError>
where
    S: TokenServiceStore + LoginStore,
    C: CredentialsProvider,
    K: Clock,
{
    let record = crate::tokens::authorized_record(svc.store, appid).await?;
    permissions::check_sign_in(&record, &permissions::FOLLOW_SIGN_IN)?;
    let id = new_session_id();
    let expire = settings.qr_expire_secs;
    let qr = svc
        .with_authorizer_token(appid, |t| {
            let id = id.clone();
            async move { svc.wechat.qrcode_create(&t, &id, expire).await }
        })
        .await?;
    let now = svc.clock.now();
    let lifetime = if qr.expire_seconds > 0 {
        qr.expire_seconds.min(i64::from(expire))
    } else {
        i64::from(expire)
    };
    let qr_url = format!(
        "{}/cgi-bin/showqrcode?ticket={}",
        settings.mp_base.trim_end_matches('/'),
        url::form_urlencoded::byte_serialize(qr.ticket.as_bytes()).collect::<String>()
    );
    let session = LoginSession {
        id,
        appid: appid.to_string(),
        status: LoginStatus::Pending,
        qr_url,
        created_at: now,
        expires_at: now + lifetime,
        openid: None,
        unionid: None,
        unionid_missing_reason: None,
        known_user: false,
        confirmed_at: None,
        return_to: options.return_to.map(|u| u.to_string()),
        state: options.state,
        identity_id: None,
        conflict: None,
        handed_off: false,
    };
    svc.store.create_session(&session).await?;
    Ok(session)
}

/// The scene of a login scan event, if it is one: `subscribe` + `qrscene_<scene>`, or `SCAN` + `<scene>`.
pub fn scan_scene<'m>(event: Option<&'m str>, event_key: Option<&'m str>) -> Option<&'m str> {
    let key = event_key?.trim();
    let scene = match event?.trim() {
        e if e.eq_ignore_ascii_case("subscribe") => key.strip_prefix("qrscene_")?,
        e if e.eq_ignore_ascii_case("SCAN") => key,
        _ => return None,
    };
    valid_session_id(scene).then_some(scene)
}

/// What a message did to the login sessions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScanOutcome {
    /// Not a scan of a live session (no scan, an unknown or expired scene, a replay): nothing
    /// changed.
    NotALogin,
    /// The session is confirmed: the text to answer.
    Confirmed(String),
    /// A scan whose confirmation failed (WeChat `user/info` or the store): the session is still
    /// pending, and the scan must be tried again (the caller makes WeChat retry).
    Failed,
}

/// A login scan reaching the message URL: confirms its session and answers the reply text.
pub async fn on_message<S, C, K>(
    svc: &TokenService<'_, S, C, K>,
    settings: &LoginSettings,
    appid: &str,
    msg: &Message,
) -> ScanOutcome
where
    S: TokenServiceStore + LoginStore + IdentityStore,
    C: CredentialsProvider,
    K: Clock,
{
    let event = msg
        .event
        .as_deref()
        .map(str::trim)
        .filter(|e| !e.is_empty());
    let Some(scene) = scan_scene(event, msg.event_key.as_deref()) else {
        return ScanOutcome::NotALogin;
    };
    match confirm_scan(svc, appid, &msg.from_user_name, scene).await {
        Ok(Some(_)) => {
            tracing::info!(authorizer = appid, "login session confirmed");
            ScanOutcome::Confirmed(settings.reply_text.clone())
        }
        Ok(None) => {
            tracing::info!(
                authorizer = appid,
                "scan matched no live login session; nothing changed"
            );
            ScanOutcome::NotALogin
        }
        Err(e) => {
            tracing::error!(error = %e, authorizer = appid, "login scan could not be confirmed; WeChat will retry");
            ScanOutcome::Failed
        }
    }
}

/// Confirms the session a user scanned. `None` (nothing changed) for unknown or expired scenes,
/// another authorizer's session, and replays.
pub async fn confirm_scan<S, C, K>(
    svc: &TokenService<'_, S, C, K>,
    appid: &str,
    openid: &str,
    scene: &str,
) -> Result<Option<LoginSession>, LoginError>
where
    S: TokenServiceStore + LoginStore + IdentityStore,
    C: CredentialsProvider,
    K: Clock,
{
    let now = svc.clock.now();
    let Some(session) = svc.store.get_session(scene).await? else {
        return Ok(None);
    };
    if session.appid != appid || session.status != LoginStatus::Pending || session.expires_at <= now
    {
        return Ok(None);
    }
    let info = svc
        .with_authorizer_token(
            appid,
            |t| async move { svc.wechat.user_info(&t, openid).await },
        )
        .await?;
    let unionid = info.unionid.filter(|u| !u.trim().is_empty());
    let sign_in = identity::record(
        svc.store,
        &Sighting {
            appid,
            openid,
            unionid: unionid.as_deref(),
            flow: SignInFlow::Follow,
            now,
        },
    )
    .await?;
    let confirmation = LoginConfirmation {
        openid: openid.to_string(),
        unionid_missing_reason: unionid.is_none().then(|| NO_UNIONID_REASON.to_string()),
        unionid: unionid.clone(),
        known_user: sign_in.known_user,
        now,
        identity_id: Some(sign_in.identity.id.clone()),
        conflict: sign_in.conflict.clone(),
    };
    if !svc
        .store
        .confirm_session(scene, appid, &confirmation)
        .await?
    {
        return Ok(None);
    }
    Ok(svc.store.get_session(scene).await?)
}

/// What the public status route may say of a session: nothing but this.
pub fn public_status(session: &LoginSession, now: i64) -> &'static str {
    match session.status {
        LoginStatus::Confirmed => "confirmed",
        LoginStatus::Pending if session.expires_at <= now => "expired",
        LoginStatus::Pending => "pending",
    }
}

/// What `GET /login/{id}` does with a session.
#[derive(Debug)]
pub enum HandOff {
    /// No hosted page for it (an API-only session without `return_to`).
    NoPage,
    /// Show the page (pending or expired).
    Show(Box<LoginSession>),
    /// Confirmed: send the browser here (with the one-time login code), once.
    Redirect(String),
    /// Confirmed and already handed off.
    AlreadyUsed,
}

/// The hosted page's step: a confirmed session is handed off once, with a fresh login code.
pub async fn hand_off<S>(
    store: &S,
    settings: &SignInSettings,
    session: LoginSession,
    now: i64,
) -> Result<HandOff, LoginError>
where
    S: LoginStore + LoginCodeStore + IdentityStore,
{
    let Some(return_to) = session
        .return_to
        .as_deref()
        .and_then(|r| settings.check_return_to(r).ok())
    else {
        return Ok(HandOff::NoPage);
    };
    if session.status != LoginStatus::Confirmed {
        return Ok(HandOff::Show(Box::new(session)));
    }
    let (Some(identity_id), Some(openid)) = (&session.identity_id, &session.openid) else {
        return Ok(HandOff::AlreadyUsed);
    };
    if session.handed_off || !store.hand_off_session(&session.id).await? {
        return Ok(HandOff::AlreadyUsed);
    }
    let identity = identity::resolve(store, identity_id).await?;
    let Some(identity) = identity else {
        return Ok(HandOff::AlreadyUsed);
    };
    let sign_in = identity::SignIn {
        identity,
        known_user: session.known_user,
        conflict: session.conflict.clone(),
    };
    let code = login_codes::issue(
        store,
        settings,
        SignInFlow::Follow,
        &session.appid,
        openid,
        &sign_in,
        now,
    )
    .await?;
    Ok(HandOff::Redirect(login_codes::return_url(
        &return_to,
        ("login_code", &code),
        session.state.as_deref(),
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scan_scenes() {
        let id = new_session_id();
        assert!(valid_session_id(&id));
        let q = format!("qrscene_{id}");
        assert_eq!(scan_scene(Some("subscribe"), Some(&q)), Some(id.as_str()));
        assert_eq!(scan_scene(Some("SCAN"), Some(&id)), Some(id.as_str()));
        assert_eq!(
            scan_scene(Some("subscribe"), Some(&id)),
            None,
            "subscribe needs the qrscene_ prefix"
        );
        assert_eq!(
            scan_scene(Some("subscribe"), None),
            None,
            "a plain follow is no login"
        );
        assert_eq!(scan_scene(Some("CLICK"), Some(&id)), None);
        assert_eq!(scan_scene(Some("SCAN"), Some("not-a-session")), None);
    }
}
