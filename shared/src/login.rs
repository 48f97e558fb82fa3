//! Follow-to-log-in: an official account's parametric QR code, delivered through the component.
//! A session is a `QR_STR_SCENE` code; the user's scan (`subscribe` with `qrscene_<scene>` or
//! `SCAN` with `<scene>`) reaches the message URL and confirms it with openid and UnionID.

use crate::authorization::permission_set_name;
use crate::clock::Clock;
use crate::http::ApiError;
use crate::open_account::{OpenAccountError, with_authorizer_token};
use crate::secrets::CredentialsProvider;
use crate::store::{LoginStore, StoreError, TokenServiceStore};
use crate::model::{AccountKind, AuthorizerState, LoginConfirmation, LoginSession, LoginStatus};
use crate::tokens::{TokenError, TokenService};

/// Permission sets follow-to-log-in needs: message management (to receive the scan event), user
/// management (`user/info` for the UnionID) and account service (parametric QR codes).
pub const REQUIRED_PERMISSIONS: [u32; 3] = [1, 2, 3];

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
    Account(#[from] OpenAccountError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("only official accounts can make parametric QR codes")]
    NotOfficialAccount,
    #[error("parametric QR codes need a verified service account")]
    NotVerifiedServiceAccount,
    #[error("missing permission sets")]
    MissingPermissions(Vec<u32>),
}

impl From<TokenError> for LoginError {
    fn from(e: TokenError) -> Self {
        LoginError::Account(OpenAccountError::Token(e))
    }
}

impl From<&LoginError> for ApiError {
    fn from(e: &LoginError) -> Self {
        match e {
            LoginError::Account(a) => ApiError::from(a),
            LoginError::Store(s) => ApiError::from(s),
            LoginError::NotOfficialAccount => ApiError::new(
                409,
                "not_official_account",
                "follow-to-log-in needs an official account; mini programs cannot make parametric QR codes",
            ),
            LoginError::NotVerifiedServiceAccount => ApiError::new(
                409,
                "not_verified_service_account",
                "parametric QR codes need a WeChat-verified service account (服务号, verified)",
            ),
            LoginError::MissingPermissions(ids) => ApiError::new(
                403,
                "permission_not_granted",
                format!(
                    "the merchant has not granted permission sets {}; ask them to authorize again with them",
                    ids.iter()
                        .map(|id| format!(
                            "{id} ({})",
                            permission_set_name(Some(AccountKind::OfficialAccount), *id)
                                .unwrap_or("?")
                        ))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ),
        }
    }
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
) -> Result<LoginSession, LoginError>
where
    S: TokenServiceStore + LoginStore,
    C: CredentialsProvider,
    K: Clock,
{
    let record = svc
        .store
        .get_authorizer(appid)
        .await?
        .ok_or(TokenError::UnknownAuthorizer)?;
    if record.state != AuthorizerState::Authorized {
        return Err(TokenError::NotAuthorized(record.state).into());
    }
    let profile = record.profile.as_ref();
    if profile.is_some_and(|p| p.kind != AccountKind::OfficialAccount) {
        return Err(LoginError::NotOfficialAccount);
    }
    if !profile.is_some_and(|p| p.service_type == 2 && p.verify_type >= 0) {
        return Err(LoginError::NotVerifiedServiceAccount);
    }
    let missing: Vec<u32> = REQUIRED_PERMISSIONS
        .iter()
        .copied()
        .filter(|id| !record.func_info.contains(id))
        .collect();
    if !missing.is_empty() {
        return Err(LoginError::MissingPermissions(missing));
    }
    let id = new_session_id();
    let expire = settings.qr_expire_secs;
    let qr = with_authorizer_token(svc, appid, |t| {
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

/// Confirms the session a user scanned. `None` (nothing changed) for unknown or expired scenes,
/// another authorizer's session, and replays.
pub async fn confirm_scan<S, C, K>(
    svc: &TokenService<'_, S, C, K>,
    appid: &str,
    openid: &str,
    scene: &str,
) -> Result<Option<LoginSession>, LoginError>
where
    S: TokenServiceStore + LoginStore,
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
    let info = with_authorizer_token(svc, appid, |t| async move {
        svc.wechat.user_info(&t, openid).await
    })
    .await?;
    let unionid = info.unionid.filter(|u| !u.trim().is_empty());
    let known_user = match &unionid {
        Some(u) => !svc.store.linked_appids(u).await?.is_empty(),
        None => false,
    };
    let confirmation = LoginConfirmation {
        openid: openid.to_string(),
        unionid_missing_reason: unionid.is_none().then(|| NO_UNIONID_REASON.to_string()),
        unionid: unionid.clone(),
        known_user,
        now,
    };
    if !svc
        .store
        .confirm_session(scene, appid, &confirmation)
        .await?
    {
        return Ok(None);
    }
    if let Some(u) = &unionid {
        svc.store.record_identity(u, appid, openid, now).await?;
    }
    Ok(svc.store.get_session(scene).await?)
}

/// The status body of `GET /login/sessions/{id}`.
pub async fn status_json<S: LoginStore>(
    store: &S,
    session: &LoginSession,
    now: i64,
) -> Result<serde_json::Value, StoreError> {
    Ok(match session.status {
        LoginStatus::Pending if session.expires_at <= now => serde_json::json!({
            "id": session.id, "status": "expired", "appid": session.appid, "expires_at": session.expires_at,
        }),
        LoginStatus::Pending => serde_json::json!({
            "id": session.id, "status": "pending", "appid": session.appid, "qr_url": session.qr_url,
            "expires_at": session.expires_at,
        }),
        LoginStatus::Confirmed => {
            let linked = match &session.unionid {
                Some(u) => store.linked_appids(u).await?,
                None => Vec::new(),
            };
            serde_json::json!({
                "id": session.id,
                "status": "confirmed",
                "appid": session.appid,
                "openid": session.openid,
                "unionid": session.unionid,
                "unionid_missing_reason": session.unionid_missing_reason,
                "known_user": session.known_user,
                "linked_appids": linked,
                "confirmed_at": session.confirmed_at,
            })
        }
    })
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
