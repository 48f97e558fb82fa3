//! The WeChat code-management calls one target needs, as a port: each takes the mini
//! program's appid and gets its authorizer token through the token service (one stale-token
//! retry), so the engine never sees a token.

use std::future::Future;

use serde_json::{Map, Value};

use crate::tokens::TokenError;

/// `wxa/queryquota`: the platform's audit quota this month.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    pub rest: i64,
    pub limit: i64,
}

/// `wxa/getversioninfo`: the trial (experience) and live versions.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VersionInfo {
    pub exp_version: Option<String>,
    pub exp_time: Option<i64>,
    pub release_version: Option<String>,
    pub release_time: Option<i64>,
}

/// An audit's status (`get_auditstatus`): 0 approved, 1 rejected, 2 in review, 3 withdrawn,
/// 4 delayed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditStatus {
    pub status: i64,
    pub reason: Option<String>,
}

/// `get_latest_auditstatus`: the latest submission.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LatestAudit {
    pub auditid: i64,
    pub status: i64,
    pub reason: Option<String>,
    pub user_version: Option<String>,
    pub submit_audit_time: Option<i64>,
}

pub trait CodeCalls: Send + Sync {
    /// `wxa/commit` with `ext_json` serialised into its string field.
    fn commit(
        &self,
        appid: &str,
        template_id: i64,
        ext_json: &Map<String, Value>,
        user_version: &str,
        user_desc: &str,
    ) -> impl Future<Output = Result<(), TokenError>> + Send;
    fn version_info(
        &self,
        appid: &str,
    ) -> impl Future<Output = Result<VersionInfo, TokenError>> + Send;
    fn query_quota(&self, appid: &str) -> impl Future<Output = Result<Quota, TokenError>> + Send;
    /// `wxa/submit_audit` with the job's audit fields; the `auditid`.
    fn submit_audit(
        &self,
        appid: &str,
        audit: &Map<String, Value>,
    ) -> impl Future<Output = Result<i64, TokenError>> + Send;
    fn latest_audit(
        &self,
        appid: &str,
    ) -> impl Future<Output = Result<LatestAudit, TokenError>> + Send;
    fn audit_status(
        &self,
        appid: &str,
        auditid: i64,
    ) -> impl Future<Output = Result<AuditStatus, TokenError>> + Send;
    fn release(&self, appid: &str) -> impl Future<Output = Result<(), TokenError>> + Send;
    fn undo_audit(&self, appid: &str) -> impl Future<Output = Result<(), TokenError>> + Send;
}
