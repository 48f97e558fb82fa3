//! Open account (开放平台账号) operations for an authorizer, with the **authorizer** access token:
//! create and bind, bind, unbind, get. The stored `open_appid` follows every successful call.

use std::future::Future;

use secrecy::SecretString;

use crate::authorization::{open_account_permission, permission_set_name};
use crate::clock::Clock;
use crate::http::ApiError;
use crate::secrets::CredentialsProvider;
use crate::store::{StoreError, TokenServiceStore};
use crate::model::AuthorizerState;
use crate::tokens::{TokenError, TokenService};
use crate::wechat::{ErrorKind, WeChatError};

#[derive(Debug, thiserror::Error)]
pub enum OpenAccountError {
    #[error(transparent)]
    Token(#[from] TokenError),
    #[error(transparent)]
    WeChat(#[from] WeChatError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the merchant has not granted permission set {0}")]
    MissingPermission(u32),
    /// Already bound (89000) to this open account.
    #[error("already bound to another open account")]
    AlreadyBound { open_appid: Option<String> },
}

/// Calls WeChat with the authorizer token; on 40001/42001 asks the token service for a refresh
/// of that version and retries exactly once.
pub async fn with_authorizer_token<S, C, K, T, F, Fut>(
    svc: &TokenService<'_, S, C, K>,
    appid: &str,
    call: F,
) -> Result<T, OpenAccountError>
where
    S: TokenServiceStore,
    C: CredentialsProvider,
    K: Clock,
    F: Fn(SecretString) -> Fut,
    Fut: Future<Output = Result<T, WeChatError>>,
{
    let token = svc.authorizer_token(appid, None).await?;
    match call(token.token).await {
        Err(e) if e.is_token_stale() => {
            tracing::warn!(
                authorizer = appid,
                version = token.version,
                "authorizer token rejected; refreshing that version once"
            );
            let fresh = svc.authorizer_token(appid, Some(token.version)).await?;
            Ok(call(fresh.token).await?)
        }
        other => Ok(other?),
    }
}

/// Checks the authorizer is known, authorized, and granted the open-account permission set.
async fn precheck<S, C, K>(
    svc: &TokenService<'_, S, C, K>,
    appid: &str,
) -> Result<(), OpenAccountError>
where
    S: TokenServiceStore,
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
    let needed = open_account_permission(record.profile.as_ref().map(|p| p.kind));
    if !record.func_info.contains(&needed) {
        return Err(OpenAccountError::MissingPermission(needed));
    }
    Ok(())
}

async fn current<S, C, K>(
    svc: &TokenService<'_, S, C, K>,
    appid: &str,
) -> Result<Option<String>, OpenAccountError>
where
    S: TokenServiceStore,
    C: CredentialsProvider,
    K: Clock,
{
    match with_authorizer_token(svc, appid, |t| async move {
        svc.wechat.open_get(&t, appid).await
    })
    .await
    {
        Ok(open_appid) => Ok(Some(open_appid)),
        Err(OpenAccountError::WeChat(e)) if e.kind() == Some(ErrorKind::OpenNotBound) => Ok(None),
        Err(e) => Err(e),
    }
}

/// `open/create`: a new open account under the authorizer's subject, bound to it. An already
/// bound authorizer is never given a second account: `AlreadyBound` with the bound open_appid.
pub async fn create<S, C, K>(
    svc: &TokenService<'_, S, C, K>,
    appid: &str,
) -> Result<String, OpenAccountError>
where
    S: TokenServiceStore,
    C: CredentialsProvider,
    K: Clock,
{
    precheck(svc, appid).await?;
    match with_authorizer_token(svc, appid, |t| async move {
        svc.wechat.open_create(&t, appid).await
    })
    .await
    {
        Ok(open_appid) => {
            svc.store
                .set_open_appid(appid, Some(&open_appid), svc.clock.now())
                .await?;
            Ok(open_appid)
        }
        Err(OpenAccountError::WeChat(e)) if e.kind() == Some(ErrorKind::OpenAlreadyBound) => {
            let bound = current(svc, appid).await?;
            svc.store
                .set_open_appid(appid, bound.as_deref(), svc.clock.now())
                .await?;
            Err(OpenAccountError::AlreadyBound { open_appid: bound })
        }
        Err(e) => Err(e),
    }
}

/// `open/bind`. Binding to the open account it is already bound to is a no-op (`Ok(false)`).
pub async fn bind<S, C, K>(
    svc: &TokenService<'_, S, C, K>,
    appid: &str,
    open_appid: &str,
) -> Result<bool, OpenAccountError>
where
    S: TokenServiceStore,
    C: CredentialsProvider,
    K: Clock,
{
    precheck(svc, appid).await?;
    match with_authorizer_token(svc, appid, |t| async move {
        svc.wechat.open_bind(&t, appid, open_appid).await
    })
    .await
    {
        Ok(()) => {
            svc.store
                .set_open_appid(appid, Some(open_appid), svc.clock.now())
                .await?;
            Ok(true)
        }
        Err(OpenAccountError::WeChat(e)) if e.kind() == Some(ErrorKind::OpenAlreadyBound) => {
            let bound = current(svc, appid).await?;
            svc.store
                .set_open_appid(appid, bound.as_deref(), svc.clock.now())
                .await?;
            if bound.as_deref() == Some(open_appid) {
                Ok(false)
            } else {
                Err(OpenAccountError::AlreadyBound { open_appid: bound })
            }
        }
        Err(e) => Err(e),
    }
}

/// `open/unbind`.
pub async fn unbind<S, C, K>(
    svc: &TokenService<'_, S, C, K>,
    appid: &str,
    open_appid: &str,
) -> Result<(), OpenAccountError>
where
    S: TokenServiceStore,
    C: CredentialsProvider,
    K: Clock,
{
    precheck(svc, appid).await?;
    let result = with_authorizer_token(svc, appid, |t| async move {
        svc.wechat.open_unbind(&t, appid, open_appid).await
    })
    .await;
    match &result {
        Ok(()) => {
            svc.store
                .set_open_appid(appid, None, svc.clock.now())
                .await?
        }
        Err(OpenAccountError::WeChat(e)) if e.kind() == Some(ErrorKind::OpenNotBound) => {
            // WeChat says it is not bound to this account: learn what it is bound to, if anything.
            let bound = current(svc, appid).await?;
            svc.store
                .set_open_appid(appid, bound.as_deref(), svc.clock.now())
                .await?;
        }
        Err(_) => {}
    }
    result
}

/// `open/get`: the bound open account, or `None`.
pub async fn get<S, C, K>(
    svc: &TokenService<'_, S, C, K>,
    appid: &str,
) -> Result<Option<String>, OpenAccountError>
where
    S: TokenServiceStore,
    C: CredentialsProvider,
    K: Clock,
{
    precheck(svc, appid).await?;
    let bound = current(svc, appid).await?;
    svc.store
        .set_open_appid(appid, bound.as_deref(), svc.clock.now())
        .await?;
    Ok(bound)
}

/// The one error shape for open-account failures, with a message a person can act on.
impl From<&OpenAccountError> for ApiError {
    fn from(e: &OpenAccountError) -> Self {
        match e {
            OpenAccountError::Token(t) => ApiError::from(t),
            OpenAccountError::Store(s) => ApiError::from(s),
            OpenAccountError::MissingPermission(id) => ApiError::new(
                403,
                "permission_not_granted",
                format!(
                    "the merchant has not granted permission set {id} ({}); ask them to authorize again with it",
                    permission_set_name(None, *id).unwrap_or("open platform account management")
                ),
            ),
            OpenAccountError::AlreadyBound { open_appid } => {
                let mut api = ApiError::new(
                    409,
                    "already_bound",
                    "the account is already bound to an open account; unbind it first to move it",
                );
                api.wechat_errcode = Some(89000);
                api.extra = Some(serde_json::json!({ "open_appid": open_appid }));
                api
            }
            OpenAccountError::WeChat(w) => {
                let (status, code, message) = match w.kind() {
                    Some(ErrorKind::OpenNotSameSubject) => (
                        409,
                        "not_same_subject",
                        "the account and the open account belong to different subjects (companies); only same-subject accounts can be bound",
                    ),
                    Some(ErrorKind::OpenNotBound) => (
                        404,
                        "not_bound",
                        "the account is not bound to this open account",
                    ),
                    Some(ErrorKind::OpenNotCreatedByApi) => (
                        409,
                        "not_created_by_api",
                        "the open account was registered on the Open Platform website; a third-party platform may not bind or unbind it",
                    ),
                    Some(ErrorKind::OpenLimitReached) => (
                        409,
                        "limit_reached",
                        "the open account has reached its limit of bound accounts",
                    ),
                    Some(ErrorKind::OpenAlreadyBound) => (
                        409,
                        "already_bound",
                        "the account is already bound to an open account",
                    ),
                    Some(ErrorKind::NoPermission) => (
                        403,
                        "permission_not_granted",
                        "WeChat says the open-account permission set (24 for official accounts, 25 for mini programs) is not granted",
                    ),
                    Some(ErrorKind::InvalidAppId) => (
                        400,
                        "invalid_appid",
                        "WeChat does not know this appid or open_appid",
                    ),
                    Some(ErrorKind::ComponentNotAuthorized) => (
                        409,
                        "component_not_authorized",
                        "the account has not authorized this platform for this operation",
                    ),
                    _ => return ApiError::from(w),
                };
                let mut api = ApiError::new(status, code, message);
                api.wechat_errcode = w.errcode();
                api
            }
        }
    }
}
