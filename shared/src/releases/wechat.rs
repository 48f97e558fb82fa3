//! [`CodeCalls`] over the token service and the WeChat client: every call with the mini
//! program's authorizer token, through `with_authorizer_token` (one stale-token retry).

use serde_json::{Map, Value};

use super::calls::{AuditStatus, CodeCalls, LatestAudit, Quota, VersionInfo};
use crate::clock::Clock;
use crate::secrets::CredentialsProvider;
use crate::store::TokenServiceStore;
use crate::tokens::{TokenError, TokenService};
use crate::wechat::{AuditSubmission, Commit, WeChatClient, WeChatError};

pub struct TokenCalls<'a, S, C, K> {
    tokens: &'a TokenService<'a, S, C, K>,
    wechat: &'a WeChatClient,
}

impl<'a, S, C, K> TokenCalls<'a, S, C, K> {
    pub fn new(tokens: &'a TokenService<'a, S, C, K>, wechat: &'a WeChatClient) -> Self {
        Self { tokens, wechat }
    }
}

impl<S, C, K> CodeCalls for TokenCalls<'_, S, C, K>
where
    S: TokenServiceStore,
    C: CredentialsProvider,
    K: Clock,
{
    async fn commit(
        &self,
        appid: &str,
        template_id: i64,
        ext_json: &Map<String, Value>,
        user_version: &str,
        user_desc: &str,
    ) -> Result<(), TokenError> {
        let commit = Commit {
            template_id,
            ext_json,
            user_version,
            user_desc,
        };
        self.tokens
            .with_authorizer_token(
                appid,
                |t| async move { self.wechat.commit(&t, commit).await },
            )
            .await
    }

    async fn version_info(&self, appid: &str) -> Result<VersionInfo, TokenError> {
        let v = self
            .tokens
            .with_authorizer_token(
                appid,
                |t| async move { self.wechat.get_version_info(&t).await },
            )
            .await?;
        Ok(VersionInfo {
            exp_version: v.exp_info.as_ref().map(|e| e.exp_version.clone()),
            exp_time: v.exp_info.as_ref().map(|e| e.exp_time),
            release_version: v.release_info.as_ref().map(|r| r.release_version.clone()),
            release_time: v.release_info.as_ref().map(|r| r.release_time),
        })
    }

    async fn query_quota(&self, appid: &str) -> Result<Quota, TokenError> {
        let q = self
            .tokens
            .with_authorizer_token(appid, |t| async move { self.wechat.query_quota(&t).await })
            .await?;
        Ok(Quota {
            rest: q.rest,
            limit: q.limit,
        })
    }

    async fn submit_audit(
        &self,
        appid: &str,
        audit: &Map<String, Value>,
    ) -> Result<i64, TokenError> {
        let submission: AuditSubmission = serde_json::from_value(Value::Object(audit.clone()))
            .map_err(|_| {
                TokenError::WeChat(WeChatError::Decode {
                    api: crate::wechat::Api::SubmitAudit,
                })
            })?;
        let submission = &submission;
        self.tokens
            .with_authorizer_token(appid, |t| async move {
                self.wechat.submit_audit(&t, submission).await
            })
            .await
    }

    async fn latest_audit(&self, appid: &str) -> Result<LatestAudit, TokenError> {
        let a = self
            .tokens
            .with_authorizer_token(appid, |t| async move {
                self.wechat.get_latest_auditstatus(&t).await
            })
            .await?;
        Ok(LatestAudit {
            auditid: a.auditid.unwrap_or_default(),
            status: a.status,
            reason: a.reason,
            user_version: a.user_version,
            submit_audit_time: a.submit_audit_time,
        })
    }

    async fn audit_status(&self, appid: &str, auditid: i64) -> Result<AuditStatus, TokenError> {
        let a = self
            .tokens
            .with_authorizer_token(appid, |t| async move {
                self.wechat.get_auditstatus(&t, auditid).await
            })
            .await?;
        Ok(AuditStatus {
            status: a.status,
            reason: a.reason,
        })
    }

    async fn release(&self, appid: &str) -> Result<(), TokenError> {
        self.tokens
            .with_authorizer_token(appid, |t| async move { self.wechat.release(&t).await })
            .await
    }

    async fn undo_audit(&self, appid: &str) -> Result<(), TokenError> {
        self.tokens
            .with_authorizer_token(
                appid,
                |t| async move { self.wechat.undo_code_audit(&t).await },
            )
            .await
    }
}
