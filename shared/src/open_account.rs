//! Open account (开放平台账号) operations for an authorizer, with the **authorizer** access token:
//! create and bind, bind, unbind, get. The stored `open_appid` follows every successful call.

use crate::clock::Clock;
use crate::permissions;
use crate::secrets::CredentialsProvider;
use crate::store::{StoreError, TokenServiceStore};
use crate::tokens::{TokenError, TokenService};
use crate::wechat::{ErrorKind, WeChatError};

#[derive(Debug, thiserror::Error)]
pub enum OpenAccountError {
    #[error(transparent)]
    Token(TokenError),
    #[error(transparent)]
    WeChat(#[from] WeChatError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the merchant has not granted permission set {0}")]
    MissingPermission(u32),
    /// The account's kind is not known yet (its profile is read by the scheduled run): the set
    /// to check (24 or 25) depends on it.
    #[error("the account's profile is not known yet")]
    ProfilePending,
    /// Already bound (89000) to this open account.
    #[error("already bound to another open account")]
    AlreadyBound { open_appid: Option<String> },
}

impl From<TokenError> for OpenAccountError {
    /// WeChat's refusals stay WeChat errors: the open-account errcodes have meanings here.
    fn from(e: TokenError) -> Self {
        match e {
            TokenError::WeChat(w) => OpenAccountError::WeChat(w),
            other => OpenAccountError::Token(other),
        }
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
    let record = crate::tokens::authorized_record(svc.store, appid).await?;
    let kind = record
        .profile
        .as_ref()
        .map(|p| p.kind)
        .ok_or(OpenAccountError::ProfilePending)?;
    let needed = permissions::open_account(Some(kind));
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
    match svc
        .with_authorizer_token(
            appid,
            |t| async move { svc.wechat.open_get(&t, appid).await },
        )
        .await
        .map_err(OpenAccountError::from)
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
    match svc
        .with_authorizer_token(
            appid,
            |t| async move { svc.wechat.open_create(&t, appid).await },
        )
        .await
        .map_err(OpenAccountError::from)
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
    match svc
        .with_authorizer_token(appid, |t| async move {
            svc.wechat.open_bind(&t, appid, open_appid).await
        })
        .await
        .map_err(OpenAccountError::from)
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
    let result = svc
        .with_authorizer_token(appid, |t| async move {
            svc.wechat.open_unbind(&t, appid, open_appid).await
        })
        .await
        .map_err(OpenAccountError::from);
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
