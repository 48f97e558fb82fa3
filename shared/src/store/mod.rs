//! State: port traits per aggregate, a DynamoDB adapter and an in-memory adapter.
//!
//! One table, keys `pk`/`sk` (strings), TTL attribute `ttl`:
//!
//! | item | pk | sk |
//! |---|---|---|
//! | component ticket | `COMPONENT` | `TICKET` |
//! | push record | `PUSH#<timestamp>:<nonce>:<msg_signature>` | `PUSH` |
//! | pending authorization | `PENDING` | `AUTH#<authorizer appid>` |
//! | component token | `COMPONENT` | `TOKEN` |
//! | authorizer (state, profile, refresh token, access token) | `AUTHORIZER#<appid>` | `AUTHORIZER` |
//!
//! Token items carry `refresh_pk = "TOKENS"` and `due_at` (= expiry) while they are refreshable;
//! the sparse global secondary index `refresh-index` (`refresh_pk`, `due_at`) lets the refresher
//! find due tokens without a scan.

use std::future::Future;

use secrecy::SecretString;
use serde::{Deserialize, Serialize};

pub mod dynamo;
pub mod memory;
pub mod outbox;

pub use dynamo::DynamoStore;
pub use memory::MemoryStore;

/// Push records live a day (WeChat retries within seconds; a day covers any replay window).
pub const PUSH_RECORD_TTL_SECS: i64 = 86_400;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("DynamoDB request failed")]
    Dynamo(#[source] Box<aws_sdk_dynamodb::Error>),
    #[error("a stored item could not be mapped")]
    Mapping(#[from] serde_dynamo::Error),
    #[error("a DynamoDB request could not be built")]
    Build(#[from] aws_sdk_dynamodb::error::BuildError),
}

impl<E, R> From<aws_sdk_dynamodb::error::SdkError<E, R>> for StoreError
where
    aws_sdk_dynamodb::Error: From<aws_sdk_dynamodb::error::SdkError<E, R>>,
{
    fn from(e: aws_sdk_dynamodb::error::SdkError<E, R>) -> Self {
        StoreError::Dynamo(Box::new(aws_sdk_dynamodb::Error::from(e)))
    }
}

/// The newest `component_verify_ticket`.
#[derive(Debug, Clone)]
pub struct StoredTicket {
    pub ticket: SecretString,
    /// WeChat's `CreateTime` of the push that carried it: what "newest" is judged by.
    pub create_time: i64,
    pub received_at: i64,
}

/// Outcome of offering a ticket to the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TicketWrite {
    Stored,
    /// The stored ticket is as new or newer: nothing was written.
    NotNewer,
}

pub trait TicketStore: Send + Sync {
    /// Stores the ticket unless the stored one is as new or newer (conditional write).
    fn put_ticket(
        &self,
        ticket: &StoredTicket,
    ) -> impl Future<Output = Result<TicketWrite, StoreError>> + Send;
    fn get_ticket(&self) -> impl Future<Output = Result<Option<StoredTicket>, StoreError>> + Send;
}

/// What the store already knew of a push when it was claimed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushClaim {
    /// First sight: process it.
    New,
    /// Seen and finished: answer as before, do nothing.
    Done,
    /// Seen but not finished (a crash or a concurrent delivery): processing again is safe because
    /// every push effect is idempotent.
    Unfinished,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PushStatus {
    Received,
    Done,
}

/// A push's dedupe record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushRecord {
    pub key: String,
    pub kind: String,
    pub status: PushStatus,
    pub received_at: i64,
    pub ttl: i64,
}

pub trait PushStore: Send + Sync {
    /// Writes the push record once (conditional put); tells what was there before.
    fn claim_push(
        &self,
        key: &str,
        kind: &str,
        now: i64,
    ) -> impl Future<Output = Result<PushClaim, StoreError>> + Send;
    /// Marks a claimed push as done.
    fn complete_push(&self, key: &str) -> impl Future<Output = Result<(), StoreError>> + Send;
    fn get_push(
        &self,
        key: &str,
    ) -> impl Future<Output = Result<Option<PushRecord>, StoreError>> + Send;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthorizationKind {
    Authorized,
    UpdateAuthorized,
}

/// An `authorized`/`updateauthorized` push waiting for the token service to exchange its code.
#[derive(Debug, Clone)]
pub struct PendingAuthorization {
    pub authorizer_appid: String,
    pub kind: AuthorizationKind,
    pub authorization_code: SecretString,
    pub create_time: i64,
    pub code_expires_at: Option<i64>,
    pub received_at: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthorizerState {
    Authorized,
    Unauthorized,
    NeedsReauth,
}

/// What is known of one authorizer (an official account or mini program). Never holds secrets in
/// its `Debug` output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthorizerRecord {
    pub appid: String,
    pub state: AuthorizerState,
    /// `CreateTime` of the newest authorization event applied: older events never win.
    pub last_event_at: i64,
    pub updated_at: i64,
    #[serde(default)]
    pub func_info: Vec<u32>,
    #[serde(default)]
    pub open_appid: Option<String>,
    #[serde(default)]
    pub authorized_at: Option<i64>,
    #[serde(default)]
    pub profile: Option<AuthorizerProfileRecord>,
}

/// What `api_get_authorizer_info` said of the account, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthorizerProfileRecord {
    pub kind: AccountKind,
    pub nick_name: String,
    /// The `gh_` original id (the `ToUserName` of its messages).
    pub user_name: String,
    #[serde(default)]
    pub principal_name: Option<String>,
    pub service_type: i64,
    pub verify_type: i64,
    #[serde(default)]
    pub head_img: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AccountKind {
    OfficialAccount,
    MiniProgram,
}

/// Whether an authorization-state change was applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventApplied {
    Applied,
    /// A newer event had already been applied; nothing changed.
    Superseded,
}

pub trait AuthorizerStore: Send + Sync {
    /// Keeps the newest pending authorization per authorizer (conditional on `create_time`).
    fn put_pending_authorization(
        &self,
        pending: &PendingAuthorization,
    ) -> impl Future<Output = Result<EventApplied, StoreError>> + Send;
    fn list_pending_authorizations(
        &self,
    ) -> impl Future<Output = Result<Vec<PendingAuthorization>, StoreError>> + Send;
    /// Marks the authorizer `unauthorized` unless a newer event was applied; drops any older
    /// pending authorization for it. Creates the record (for audit) if it did not exist.
    fn mark_unauthorized(
        &self,
        appid: &str,
        event_time: i64,
        now: i64,
    ) -> impl Future<Output = Result<EventApplied, StoreError>> + Send;
    fn get_authorizer(
        &self,
        appid: &str,
    ) -> impl Future<Output = Result<Option<AuthorizerRecord>, StoreError>> + Send;
}

/// Which token.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TokenKey {
    Component,
    Authorizer(String),
}

impl TokenKey {
    pub fn label(&self) -> &str {
        match self {
            TokenKey::Component => "component",
            TokenKey::Authorizer(appid) => appid,
        }
    }
}

/// The token part of the component-token item or of an authorizer item. `Debug` is redacted.
#[derive(Clone, Default)]
pub struct TokenRecord {
    pub access_token: Option<SecretString>,
    pub expires_at: i64,
    /// Bumped by every write of a new access token.
    pub version: u64,
    pub lease_owner: Option<String>,
    pub lease_until: i64,
    /// Authorizers only.
    pub refresh_token: Option<SecretString>,
    /// Authorizers only: tokens are usable only while `Authorized`.
    pub state: Option<AuthorizerState>,
}

impl std::fmt::Debug for TokenRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenRecord")
            .field("has_access_token", &self.access_token.is_some())
            .field("expires_at", &self.expires_at)
            .field("version", &self.version)
            .field("lease_owner", &self.lease_owner)
            .field("lease_until", &self.lease_until)
            .field("has_refresh_token", &self.refresh_token.is_some())
            .field("state", &self.state)
            .finish()
    }
}

/// A new access token to commit.
#[derive(Debug, Clone)]
pub struct NewToken {
    pub access_token: SecretString,
    pub expires_at: i64,
    /// Authorizers: written in the same conditional update as the access token.
    pub refresh_token: Option<SecretString>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeaseOutcome {
    /// This worker holds the lease until the given time.
    Acquired,
    /// Another worker holds a live lease, the version moved on, or the authorizer is not
    /// authorized: read again.
    Conflict,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommitOutcome {
    /// Written with this new version.
    Committed(u64),
    /// The lease was lost (taken over, or the authorizer changed): nothing written.
    LostLease,
}

/// A token the refresher should renew (read from the refresh index).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueToken {
    pub key: TokenKey,
    pub version: u64,
    pub due_at: i64,
}

/// Everything an authorization (or re-authorization) writes, in one conditional update.
#[derive(Debug, Clone)]
pub struct AuthorizationGrant {
    pub appid: String,
    /// `CreateTime` of the authorization event (or the time of the redirect): newer wins.
    pub event_time: i64,
    pub func_info: Vec<u32>,
    pub token: NewToken,
    pub profile: Option<AuthorizerProfileRecord>,
    pub now: i64,
}

pub trait TokenStore: Send + Sync {
    fn get_token(
        &self,
        key: &TokenKey,
    ) -> impl Future<Output = Result<Option<TokenRecord>, StoreError>> + Send;
    /// Takes the refresh lease if no live lease exists and the stored version is `expected_version`
    /// (0 = no token yet). For authorizers the record must exist and be `authorized`.
    fn acquire_lease(
        &self,
        key: &TokenKey,
        expected_version: u64,
        owner: &str,
        now: i64,
        until: i64,
    ) -> impl Future<Output = Result<LeaseOutcome, StoreError>> + Send;
    /// Writes the new token (and refresh token) with `version + 1`, only if `owner` still holds
    /// the lease and the version is still `expected_version`; clears the lease.
    fn commit_token(
        &self,
        key: &TokenKey,
        owner: &str,
        expected_version: u64,
        token: &NewToken,
    ) -> impl Future<Output = Result<CommitOutcome, StoreError>> + Send;
    /// Gives the lease up without writing (WeChat failed).
    fn release_lease(
        &self,
        key: &TokenKey,
        owner: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Tokens whose `due_at` is at or before `before`, oldest first, at most `limit`.
    fn due_tokens(
        &self,
        before: i64,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<DueToken>, StoreError>> + Send;
    /// 61023: the refresh token is dead. Marks the authorizer `needs_reauth` (it leaves the
    /// refresh index) if `owner` holds the lease.
    fn mark_needs_reauth(
        &self,
        appid: &str,
        owner: &str,
        now: i64,
    ) -> impl Future<Output = Result<CommitOutcome, StoreError>> + Send;
    /// A refresh token recovered from `api_get_authorizer_list` for a `needs_reauth` authorizer:
    /// back to `authorized`, due for refresh at once.
    fn restore_refresh_token(
        &self,
        appid: &str,
        refresh_token: &SecretString,
        now: i64,
    ) -> impl Future<Output = Result<EventApplied, StoreError>> + Send;
    /// Authorizers in `needs_reauth` (few; found through the refresh index's sibling partition).
    fn needs_reauth(&self) -> impl Future<Output = Result<Vec<String>, StoreError>> + Send;
    /// Records an authorization with its tokens in one conditional update (newer event wins).
    fn record_authorization(
        &self,
        grant: &AuthorizationGrant,
    ) -> impl Future<Output = Result<EventApplied, StoreError>> + Send;
}

/// The claim on one authorization code: whoever claims it first exchanges it (push or redirect);
/// the other finds it done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CodeClaim {
    /// This worker holds the claim until the lease runs out.
    Claimed,
    /// Another worker holds a live claim.
    Busy,
    /// Already exchanged, for this authorizer.
    Done { authorizer_appid: String },
}

pub trait AuthCodeStore: Send + Sync {
    /// `code_id` is a digest of the code (the code itself is never a key).
    fn claim_code(
        &self,
        code_id: &str,
        owner: &str,
        now: i64,
        until: i64,
    ) -> impl Future<Output = Result<CodeClaim, StoreError>> + Send;
    fn finish_code(
        &self,
        code_id: &str,
        owner: &str,
        authorizer_appid: &str,
        now: i64,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Gives the claim up (the exchange failed and may be retried).
    fn release_code(
        &self,
        code_id: &str,
        owner: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Drops the pending authorization if it is still the one with `create_time`.
    fn remove_pending_authorization(
        &self,
        appid: &str,
        create_time: i64,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

pub trait AuthorizerListStore: Send + Sync {
    /// Authorizers in appid order after `after`, optionally in one state; returns the page and
    /// the cursor (last appid) when more may follow.
    fn list_authorizers(
        &self,
        state: Option<AuthorizerState>,
        limit: usize,
        after: Option<&str>,
    ) -> impl Future<Output = Result<(Vec<AuthorizerRecord>, Option<String>), StoreError>> + Send;
    /// Keeps `open_appid` in step with successful open-account operations.
    fn set_open_appid(
        &self,
        appid: &str,
        open_appid: Option<&str>,
        now: i64,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LoginStatus {
    Pending,
    Confirmed,
}

/// A follow-to-log-in session: a parametric QR code waiting for a scan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoginSession {
    /// Also the QR code's `scene_str`.
    pub id: String,
    pub appid: String,
    pub status: LoginStatus,
    pub qr_url: String,
    pub created_at: i64,
    pub expires_at: i64,
    #[serde(default)]
    pub openid: Option<String>,
    #[serde(default)]
    pub unionid: Option<String>,
    /// Why `unionid` is null, when it is.
    #[serde(default)]
    pub unionid_missing_reason: Option<String>,
    #[serde(default)]
    pub known_user: bool,
    #[serde(default)]
    pub confirmed_at: Option<i64>,
}

/// What a scan confirmed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginConfirmation {
    pub openid: String,
    pub unionid: Option<String>,
    pub unionid_missing_reason: Option<String>,
    pub known_user: bool,
    pub now: i64,
}

pub trait LoginStore: Send + Sync {
    fn create_session(
        &self,
        session: &LoginSession,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    fn get_session(
        &self,
        id: &str,
    ) -> impl Future<Output = Result<Option<LoginSession>, StoreError>> + Send;
    /// Confirms a session only if it is pending, belongs to `appid` and has not expired.
    fn confirm_session(
        &self,
        id: &str,
        appid: &str,
        confirmation: &LoginConfirmation,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// Records that `unionid` logged in through `appid`; tells whether the unionid was known before.
    fn record_identity(
        &self,
        unionid: &str,
        appid: &str,
        openid: &str,
        now: i64,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// Every authorizer appid the unionid has logged in through.
    fn linked_appids(
        &self,
        unionid: &str,
    ) -> impl Future<Output = Result<Vec<String>, StoreError>> + Send;
}

/// Everything the component-events function needs.
pub trait ComponentEventStore:
    TicketStore + PushStore + AuthorizerStore + TokenStore + AuthCodeStore
{
}
impl<T: TicketStore + PushStore + AuthorizerStore + TokenStore + AuthCodeStore> ComponentEventStore
    for T
{
}

/// Everything the message-events function needs.
pub trait MessageEventStore: TokenServiceStore + PushStore + LoginStore {}
impl<T: TokenServiceStore + PushStore + LoginStore> MessageEventStore for T {}

/// Everything the token service needs.
pub trait TokenServiceStore: TicketStore + AuthorizerStore + TokenStore + AuthCodeStore {}
impl<T: TicketStore + AuthorizerStore + TokenStore + AuthCodeStore> TokenServiceStore for T {}
