//! Mini program code, the third-party template model: the template library (component token,
//! `templates.rs`) and one mini program's code (its authorizer token, permission set 18):
//! commit, the trial QR code, categories and pages, audit, release, rollback, gray release.
//!
//! wxopen keeps one [`CodeRecord`] per mini program (the committed template and version, the
//! current audit and its state, the live version). Every operation checks first (known and
//! authorized, a mini program, set 18) so a request that cannot succeed never spends WeChat
//! quota, calls WeChat through `with_authorizer_token` (one retry on a stale token), then
//! writes the record conditionally on its version (re-read and re-applied if an audit push
//! wrote in between). Audit pushes update the record through [`audit_result_of`] and
//! `CodeStore::apply_audit_result` (one conditional write, from the message callback).

use serde_json::{Map, Value};

use crate::clock::Clock;
use crate::model::{
    AccountKind, AuditResult, AuthorizerRecord, CodeAudit, CodeAuditState, CodeGray, CodeRecord,
    CodeRelease,
};
use crate::permissions::{self, MissingPermissions};
use crate::secrets::CredentialsProvider;
use crate::store::{CodeStore, StoreError, TokenServiceStore};
use crate::tokens::{TokenError, TokenService};
use crate::wechat::{
    AuditQuota, AuditState, AuditStatus, AuditSubmission, Binary, Category, Commit, GrayRelease,
    WeChatError,
};

pub mod templates;

/// Permission set 18 (小程序开发与数据分析): every code API.
pub const CODE_MANAGEMENT: u32 = 18;
/// WeChat's limit on `user_version`.
pub const MAX_USER_VERSION: usize = 64;
/// A generous bound on `user_desc` (WeChat documents none).
pub const MAX_USER_DESC: usize = 1024;
/// Writes retried when an audit push changes the record in between.
const WRITE_ATTEMPTS: usize = 4;

#[derive(Debug, thiserror::Error)]
pub enum CodeError {
    #[error(transparent)]
    Token(TokenError),
    #[error(transparent)]
    WeChat(WeChatError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("code management needs a mini program; this authorizer is an official account")]
    NotAMiniProgram,
    #[error(transparent)]
    Missing(#[from] MissingPermissions),
    #[error("no audit has been submitted through wxopen")]
    NoAudit,
    #[error("the code record kept changing; try again")]
    Contended,
}

impl From<TokenError> for CodeError {
    /// WeChat's refusals stay WeChat errors: the code errcodes have meanings here.
    fn from(e: TokenError) -> Self {
        match e {
            TokenError::WeChat(w) => CodeError::WeChat(w),
            other => CodeError::Token(other),
        }
    }
}

/// A commit as the caller asks for it (validated before WeChat is called).
#[derive(Debug, Clone)]
pub struct CommitRequest {
    pub template_id: i64,
    pub ext_json: Map<String, Value>,
    pub user_version: String,
    pub user_desc: String,
}

/// The authorizer may have its code managed: known, authorized, a mini program (an unknown
/// profile passes: the sets decide), set 18 granted.
pub async fn precheck<S: TokenServiceStore>(
    store: &S,
    appid: &str,
) -> Result<AuthorizerRecord, CodeError> {
    let record = crate::tokens::authorized_record(store, appid).await?;
    if record
        .profile
        .as_ref()
        .is_some_and(|p| p.kind == AccountKind::OfficialAccount)
    {
        return Err(CodeError::NotAMiniProgram);
    }
    permissions::require(&record, &[CODE_MANAGEMENT])?;
    Ok(record)
}

/// The record, or an empty one for a mini program wxopen has not committed for yet.
pub async fn record<S: TokenServiceStore + CodeStore>(
    store: &S,
    appid: &str,
) -> Result<CodeRecord, CodeError> {
    precheck(store, appid).await?;
    Ok(stored(store, appid).await?)
}

async fn stored<S: CodeStore>(store: &S, appid: &str) -> Result<CodeRecord, StoreError> {
    Ok(store.get_code(appid).await?.unwrap_or_else(|| CodeRecord {
        appid: appid.to_string(),
        ..CodeRecord::default()
    }))
}

/// Applies `change` to the stored record and writes it conditionally, re-reading on a lost race.
async fn update<S: CodeStore>(
    store: &S,
    appid: &str,
    now: i64,
    change: impl Fn(&mut CodeRecord),
) -> Result<CodeRecord, CodeError> {
    for _ in 0..WRITE_ATTEMPTS {
        let mut rec = stored(store, appid).await?;
        change(&mut rec);
        rec.version += 1;
        rec.updated_at = now;
        if store.put_code(&rec).await? {
            return Ok(rec);
        }
    }
    Err(CodeError::Contended)
}

async fn call<S, C, K, T, F, Fut>(
    svc: &TokenService<'_, S, C, K>,
    appid: &str,
    f: F,
) -> Result<T, CodeError>
where
    S: TokenServiceStore,
    C: CredentialsProvider,
    K: Clock,
    F: Fn(secrecy::SecretString) -> Fut,
    Fut: Future<Output = Result<T, WeChatError>>,
{
    Ok(svc.with_authorizer_token(appid, f).await?)
}

/// [`precheck`], then the call: what every operation that needs nothing else does.
async fn checked<S, C, K, T, F, Fut>(
    svc: &TokenService<'_, S, C, K>,
    appid: &str,
    f: F,
) -> Result<T, CodeError>
where
    S: TokenServiceStore,
    C: CredentialsProvider,
    K: Clock,
    F: Fn(secrecy::SecretString) -> Fut,
    Fut: Future<Output = Result<T, WeChatError>>,
{
    precheck(svc.store, appid).await?;
    call(svc, appid, f).await
}

/// `wxa/commit`: the template as the trial version; the record keeps template and version.
pub async fn commit<S, C, K>(
    svc: &TokenService<'_, S, C, K>,
    appid: &str,
    req: &CommitRequest,
) -> Result<CodeRecord, CodeError>
where
    S: TokenServiceStore + CodeStore,
    C: CredentialsProvider,
    K: Clock,
{
    precheck(svc.store, appid).await?;
    let commit = Commit {
        template_id: req.template_id,
        ext_json: &req.ext_json,
        user_version: &req.user_version,
        user_desc: &req.user_desc,
    };
    call(svc, appid, |t| async move {
        svc.wechat.commit(&t, commit).await
    })
    .await?;
    let now = svc.clock.now();
    update(svc.store, appid, now, |r| {
        r.template_id = Some(req.template_id);
        r.user_version = Some(req.user_version.clone());
        r.user_desc = Some(req.user_desc.clone());
        r.committed_at = Some(now);
    })
    .await
}

/// `wxa/get_qrcode`: the trial version's QR image (`path`: the page with its query).
pub async fn qrcode<S, C, K>(
    svc: &TokenService<'_, S, C, K>,
    appid: &str,
    path: Option<&str>,
) -> Result<Binary, CodeError>
where
    S: TokenServiceStore,
    C: CredentialsProvider,
    K: Clock,
{
    checked(svc, appid, |t| async move {
        svc.wechat.get_qrcode(&t, path).await
    })
    .await
}

pub async fn categories<S, C, K>(
    svc: &TokenService<'_, S, C, K>,
    appid: &str,
) -> Result<Vec<Category>, CodeError>
where
    S: TokenServiceStore,
    C: CredentialsProvider,
    K: Clock,
{
    checked(
        svc,
        appid,
        |t| async move { svc.wechat.get_category(&t).await },
    )
    .await
}

pub async fn pages<S, C, K>(
    svc: &TokenService<'_, S, C, K>,
    appid: &str,
) -> Result<Vec<String>, CodeError>
where
    S: TokenServiceStore,
    C: CredentialsProvider,
    K: Clock,
{
    checked(svc, appid, |t| async move { svc.wechat.get_page(&t).await }).await
}

pub async fn quota<S, C, K>(
    svc: &TokenService<'_, S, C, K>,
    appid: &str,
) -> Result<AuditQuota, CodeError>
where
    S: TokenServiceStore,
    C: CredentialsProvider,
    K: Clock,
{
    checked(
        svc,
        appid,
        |t| async move { svc.wechat.query_quota(&t).await },
    )
    .await
}

/// `wxa/submit_audit` of the committed version; the record's audit becomes `auditing`.
pub async fn submit<S, C, K>(
    svc: &TokenService<'_, S, C, K>,
    appid: &str,
    submission: &AuditSubmission,
) -> Result<CodeRecord, CodeError>
where
    S: TokenServiceStore + CodeStore,
    C: CredentialsProvider,
    K: Clock,
{
    let auditid = checked(svc, appid, |t| async move {
        svc.wechat.submit_audit(&t, submission).await
    })
    .await?;
    let now = svc.clock.now();
    update(svc.store, appid, now, |r| {
        r.audit = Some(CodeAudit {
            auditid,
            state: CodeAuditState::Auditing,
            reason: None,
            screenshots: Vec::new(),
            template_id: r.template_id.unwrap_or_default(),
            user_version: r.user_version.clone().unwrap_or_default(),
            submitted_at: now,
            updated_at: now,
        });
    })
    .await
}

/// The state a WeChat audit status maps to (`None` for a status the docs do not list).
pub fn state_of(status: &AuditStatus) -> Option<CodeAuditState> {
    match status.state() {
        AuditState::Approved => Some(CodeAuditState::Approved),
        AuditState::Rejected => Some(CodeAuditState::Rejected),
        AuditState::Auditing => Some(CodeAuditState::Auditing),
        AuditState::Withdrawn => Some(CodeAuditState::Withdrawn),
        AuditState::Delayed => Some(CodeAuditState::Delayed),
        AuditState::Unknown => None,
    }
}

fn screenshots_of(joined: Option<&str>) -> Vec<String> {
    joined
        .unwrap_or_default()
        .split('|')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// `wxa/get_auditstatus` of the record's audit; the record follows WeChat's answer.
pub async fn refresh_audit<S, C, K>(
    svc: &TokenService<'_, S, C, K>,
    appid: &str,
) -> Result<CodeRecord, CodeError>
where
    S: TokenServiceStore + CodeStore,
    C: CredentialsProvider,
    K: Clock,
{
    precheck(svc.store, appid).await?;
    let auditid = stored(svc.store, appid)
        .await?
        .audit
        .map(|a| a.auditid)
        .ok_or(CodeError::NoAudit)?;
    let status = call(svc, appid, |t| async move {
        svc.wechat.get_auditstatus(&t, auditid).await
    })
    .await?;
    let Some(state) = state_of(&status) else {
        return Ok(stored(svc.store, appid).await?);
    };
    let now = svc.clock.now();
    update(svc.store, appid, now, |r| {
        if let Some(a) = r.audit.as_mut().filter(|a| a.auditid == auditid) {
            a.state = state;
            a.reason = status.reason.clone().filter(|s| !s.is_empty());
            a.screenshots = screenshots_of(status.screenshot.as_deref());
            a.updated_at = now;
        }
    })
    .await
}

/// `wxa/undocodeaudit`: the audit in review is withdrawn.
pub async fn undo<S, C, K>(
    svc: &TokenService<'_, S, C, K>,
    appid: &str,
) -> Result<CodeRecord, CodeError>
where
    S: TokenServiceStore + CodeStore,
    C: CredentialsProvider,
    K: Clock,
{
    checked(svc, appid, |t| async move {
        svc.wechat.undo_code_audit(&t).await
    })
    .await?;
    let now = svc.clock.now();
    update(svc.store, appid, now, |r| {
        if let Some(a) = r.audit.as_mut() {
            a.state = CodeAuditState::Withdrawn;
            a.reason = None;
            a.updated_at = now;
        }
    })
    .await
}

/// `wxa/speedupaudit` of the record's audit.
pub async fn speedup<S, C, K>(
    svc: &TokenService<'_, S, C, K>,
    appid: &str,
) -> Result<CodeRecord, CodeError>
where
    S: TokenServiceStore + CodeStore,
    C: CredentialsProvider,
    K: Clock,
{
    precheck(svc.store, appid).await?;
    let rec = stored(svc.store, appid).await?;
    let auditid = rec
        .audit
        .as_ref()
        .map(|a| a.auditid)
        .ok_or(CodeError::NoAudit)?;
    call(svc, appid, |t| async move {
        svc.wechat.speedup_audit(&t, auditid).await
    })
    .await?;
    Ok(rec)
}

/// `wxa/release`: the approved version goes live; the record keeps it as `released`.
pub async fn release<S, C, K>(
    svc: &TokenService<'_, S, C, K>,
    appid: &str,
) -> Result<CodeRecord, CodeError>
where
    S: TokenServiceStore + CodeStore,
    C: CredentialsProvider,
    K: Clock,
{
    checked(svc, appid, |t| async move { svc.wechat.release(&t).await }).await?;
    let now = svc.clock.now();
    update(svc.store, appid, now, |r| {
        let (template_id, user_version) = match &r.audit {
            Some(a) => (a.template_id, a.user_version.clone()),
            None => (
                r.template_id.unwrap_or_default(),
                r.user_version.clone().unwrap_or_default(),
            ),
        };
        r.released = Some(CodeRelease {
            template_id,
            user_version,
            released_at: now,
        });
        r.gray = None;
    })
    .await
}

/// `wxa/revertcoderelease`: back to the previous live version (or `app_version`).
pub async fn revert<S, C, K>(
    svc: &TokenService<'_, S, C, K>,
    appid: &str,
    app_version: Option<i64>,
) -> Result<CodeRecord, CodeError>
where
    S: TokenServiceStore + CodeStore,
    C: CredentialsProvider,
    K: Clock,
{
    checked(svc, appid, |t| async move {
        svc.wechat.revert_code_release(&t, app_version).await
    })
    .await?;
    let now = svc.clock.now();
    update(svc.store, appid, now, |r| {
        r.reverted_at = Some(now);
        r.reverted_to = app_version;
    })
    .await
}

/// `wxa/grayrelease`: the approved version to a share of users.
pub async fn gray<S, C, K>(
    svc: &TokenService<'_, S, C, K>,
    appid: &str,
    gray: &GrayRelease,
) -> Result<CodeRecord, CodeError>
where
    S: TokenServiceStore + CodeStore,
    C: CredentialsProvider,
    K: Clock,
{
    checked(svc, appid, |t| async move {
        svc.wechat.gray_release(&t, gray).await
    })
    .await?;
    let now = svc.clock.now();
    update(svc.store, appid, now, |r| {
        r.gray = Some(CodeGray {
            gray_percentage: gray.gray_percentage,
            at: now,
        });
    })
    .await
}

/// The audit result a push from the message URL carries (`weapp_audit_success`,
/// `weapp_audit_fail` with `Reason` and `ScreenShot`, `weapp_audit_delay` with `Reason`), read
/// from its fields; `None` for any other message.
pub fn audit_result_of<'a>(
    event: Option<&str>,
    field: impl Fn(&str) -> Option<&'a str>,
) -> Option<AuditResult> {
    let (state, time_field) = match event? {
        "weapp_audit_success" => (CodeAuditState::Approved, "SuccTime"),
        "weapp_audit_fail" => (CodeAuditState::Rejected, "FailTime"),
        "weapp_audit_delay" => (CodeAuditState::Delayed, "DelayTime"),
        _ => return None,
    };
    let number = |name: &str| field(name).and_then(|v| v.trim().parse::<i64>().ok());
    let at = number(time_field).or_else(|| number("CreateTime"))?;
    let reason = match state {
        CodeAuditState::Approved => None,
        _ => field("Reason")
            .map(str::to_string)
            .filter(|r| !r.is_empty()),
    };
    let screenshots = match state {
        CodeAuditState::Rejected => screenshots_of(field("ScreenShot")),
        _ => Vec::new(),
    };
    Some(AuditResult {
        state,
        reason,
        screenshots,
        at,
    })
}

/// Applies an audit push to the mini program's record (one conditional write; `false` when it
/// changed nothing: a retry, an older audit's result, or no audit submitted through wxopen).
pub async fn on_audit_push<S: CodeStore>(
    store: &S,
    appid: &str,
    result: &AuditResult,
) -> Result<bool, StoreError> {
    store.apply_audit_result(appid, result).await
}

/// Checks a commit request's fields (before any WeChat call).
pub fn check_commit(req: &CommitRequest) -> Result<(), &'static str> {
    if req.template_id < 0 {
        return Err("template_id must be a non-negative integer");
    }
    let len = req.user_version.chars().count();
    if len == 0 || len > MAX_USER_VERSION || req.user_version.chars().any(char::is_control) {
        return Err("user_version must be 1 to 64 characters");
    }
    if req.user_desc.chars().count() > MAX_USER_DESC || req.user_desc.contains('\0') {
        return Err("user_desc must be at most 1024 characters");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn audit_pushes_are_read_from_their_fields() {
        let f: HashMap<&str, &str> = HashMap::from([
            ("Reason", "bad<br>"),
            ("FailTime", "1700000100"),
            ("ScreenShot", "m1|m2"),
            ("CreateTime", "1700000101"),
        ]);
        let r = audit_result_of(Some("weapp_audit_fail"), |k| f.get(k).copied()).unwrap();
        assert_eq!(r.state, CodeAuditState::Rejected);
        assert_eq!(
            (r.at, r.reason.as_deref()),
            (1_700_000_100, Some("bad<br>"))
        );
        assert_eq!(r.screenshots, ["m1", "m2"]);
        let ok = audit_result_of(Some("weapp_audit_success"), |k| f.get(k).copied()).unwrap();
        assert_eq!(
            (ok.state, ok.at, ok.reason),
            (CodeAuditState::Approved, 1_700_000_101, None)
        );
        assert!(audit_result_of(Some("subscribe"), |k| f.get(k).copied()).is_none());
        assert!(audit_result_of(None, |k| f.get(k).copied()).is_none());
        assert!(
            audit_result_of(Some("weapp_audit_delay"), |_| None).is_none(),
            "no time"
        );
    }

    #[test]
    fn commit_requests_are_checked_before_wechat() {
        let ok = CommitRequest {
            template_id: 1,
            ext_json: Map::new(),
            user_version: "1.0.0".into(),
            user_desc: "x".into(),
        };
        assert!(check_commit(&ok).is_ok());
        for bad in [
            CommitRequest {
                template_id: -1,
                ..ok.clone()
            },
            CommitRequest {
                user_version: String::new(),
                ..ok.clone()
            },
            CommitRequest {
                user_version: "v".repeat(65),
                ..ok.clone()
            },
            CommitRequest {
                user_desc: "d".repeat(1025),
                ..ok.clone()
            },
        ] {
            assert!(check_commit(&bad).is_err(), "{bad:?}");
        }
    }
}
