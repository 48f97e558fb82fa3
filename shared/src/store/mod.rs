//! State: the port traits (one per aggregate) and their DynamoDB adapter. The records they
//! carry are in [`crate::model`].
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
//! | authorization link (and its current pre-auth code) | `LINK#<id>` | `LINK` |
//! | pre-auth code → link | `PREAUTH#<sha1 of the code>` | `PREAUTH` |
//! | login session | `LOGIN#<id>` | `SESSION` |
//! | identity | `IDENTITY#<id>` | `IDENTITY` |
//! | openid → identity | `OPENID#<appid>#<openid>` | `IDENTITY` |
//! | user → identity | `USER#<user_id>` | `IDENTITY#<id>` |
//! | login code (by SHA-256 of the code) | `LOGINCODE#<hash>` | `CODE` |
//! | used OAuth state nonce | `OAUTHSTATE#<nonce>` | `NONCE` |
//! | authorizer whose profile is still to be read | `PROFILE_MISSING` | `<appid>` |
//! | fast registration | `REGISTRATION#<id>` | `REGISTRATION` |
//! | taskid / credit code / sha1 of the name → registration | `REGKEY#task#…`, `REGKEY#code#…`, `REGKEY#name#…` | `REGKEY` |
//! | mini program code (commit, audit, release) | `CODE#<appid>` | `CODE` |
//! | release job (counts per target state) | `RELEASE#<id>` | `JOB` |
//! | release target | `RELEASE#<id>` | `T#<seq, 6 digits>` |
//! | open release job | `RELEASES` | `<id>` |
//! | a mini program's audit in flight | `RELEASE_AUDITS` | `<appid>` |
//!
//! Token items carry `refresh_pk = "TOKENS"` and `due_at` (= expiry) while they are refreshable;
//! the sparse global secondary index `refresh-index` (`refresh_pk`, `due_at`) lets the refresher
//! find due tokens without a scan.

use std::future::Future;

use secrecy::SecretString;

use crate::model::{
    AuditResult, AuthorizationGrant, AuthorizationLink, AuthorizerProfileRecord, AuthorizerRecord,
    AuthorizerState, CodeRecord, DueToken, Identity, IdentityWrite, LoginCodeRecord,
    LoginConfirmation, LoginSession, NewToken, PendingAuthorization, PreAuth, PushRecord,
    Registration, RegistrationOutcome, StoredTicket, TokenKey, TokenRecord,
};

pub mod dynamo;
pub mod outbox;
pub mod releases;

pub use dynamo::DynamoStore;
pub use releases::{BeginStep, ReleaseStore};

/// Push records live a day (WeChat retries within seconds; a day covers any replay window).
pub const PUSH_RECORD_TTL_SECS: i64 = 86_400;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Shows the AWS error code (`ThrottlingException`, `AccessDeniedException`, …) so logs tell
    /// a throttled table from a missing permission; never the request.
    #[error("DynamoDB request failed ({})", dynamo_code(.0))]
    Dynamo(#[source] Box<aws_sdk_dynamodb::Error>),
    #[error("a stored item could not be mapped")]
    Mapping(#[from] serde_dynamo::Error),
    #[error("a DynamoDB request could not be built")]
    Build(#[from] aws_sdk_dynamodb::error::BuildError),
}

/// The AWS error code of a DynamoDB failure, or `no_code` (a timeout, a dropped connection).
pub fn dynamo_code(e: &aws_sdk_dynamodb::Error) -> &str {
    use aws_sdk_dynamodb::error::ProvideErrorMetadata;
    e.code().unwrap_or("no_code")
}

impl<E, R> From<aws_sdk_dynamodb::error::SdkError<E, R>> for StoreError
where
    aws_sdk_dynamodb::Error: From<aws_sdk_dynamodb::error::SdkError<E, R>>,
{
    fn from(e: aws_sdk_dynamodb::error::SdkError<E, R>) -> Self {
        StoreError::Dynamo(Box::new(aws_sdk_dynamodb::Error::from(e)))
    }
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

/// Whether an authorization-state change was applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventApplied {
    Applied,
    /// A newer event had already been applied; nothing changed.
    Superseded,
}

/// The authorizer item's lifecycle: state, permission sets, profile, refresh-token recovery,
/// open account. (Its access token is written only through [`TokenStore`].)
pub trait AuthorizerStore: Send + Sync {
    fn get_authorizer(
        &self,
        appid: &str,
    ) -> impl Future<Output = Result<Option<AuthorizerRecord>, StoreError>> + Send;
    /// Authorizers in appid order after `after`, optionally in one state; returns the page and
    /// the cursor (last appid) when more may follow.
    fn list_authorizers(
        &self,
        state: Option<AuthorizerState>,
        limit: usize,
        after: Option<&str>,
    ) -> impl Future<Output = Result<(Vec<AuthorizerRecord>, Option<String>), StoreError>> + Send;
    /// Records an authorization with its tokens in one conditional update (newer event wins).
    fn record_authorization(
        &self,
        grant: &AuthorizationGrant,
    ) -> impl Future<Output = Result<EventApplied, StoreError>> + Send;
    /// Marks the authorizer `unauthorized` unless a newer event was applied; drops any older
    /// pending authorization for it. Creates the record (for audit) if it did not exist.
    fn mark_unauthorized(
        &self,
        appid: &str,
        event_time: i64,
        now: i64,
    ) -> impl Future<Output = Result<EventApplied, StoreError>> + Send;
    /// A refresh token recovered from `api_get_authorizer_list` for a `needs_reauth` authorizer:
    /// back to `authorized`, due for refresh at once.
    fn restore_refresh_token(
        &self,
        appid: &str,
        refresh_token: &SecretString,
        now: i64,
    ) -> impl Future<Output = Result<EventApplied, StoreError>> + Send;
    /// A `needs_reauth` authorizer WeChat no longer lists: `unauthorized` with `reason`, out of
    /// the refresh index and the recovery partition (no token kept).
    fn mark_revoked(
        &self,
        appid: &str,
        reason: &str,
        now: i64,
    ) -> impl Future<Output = Result<EventApplied, StoreError>> + Send;
    /// Authorizers in `needs_reauth` (few; found through the refresh index's sibling partition).
    fn needs_reauth(&self) -> impl Future<Output = Result<Vec<String>, StoreError>> + Send;
    /// Notes that the authorizer's profile (`api_get_authorizer_info`) could not be read when it
    /// authorized: the scheduled run fills it in ([`Self::profiles_missing`]).
    fn mark_profile_missing(
        &self,
        appid: &str,
        now: i64,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Up to `limit` authorizers whose profile is still to be read (one Query).
    fn profiles_missing(
        &self,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<String>, StoreError>> + Send;
    /// Stores the profile of a known authorizer and clears its missing-profile note.
    fn set_profile(
        &self,
        appid: &str,
        profile: &AuthorizerProfileRecord,
        now: i64,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Clears the missing-profile note without a profile (the authorizer is gone or has one).
    fn clear_profile_missing(
        &self,
        appid: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Keeps `open_appid` in step with successful open-account operations.
    fn set_open_appid(
        &self,
        appid: &str,
        open_appid: Option<&str>,
        now: i64,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
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

/// Access tokens (component and authorizer): leases, compare-and-set, the refresh index.
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
    /// A refresh whose commit lost its lease still got a refresh token from WeChat: keeps it,
    /// under the same version rule (only while the stored version is still `version`, i.e. no
    /// newer refresh committed its own, and only for an authorized authorizer). `true` if kept.
    fn keep_refresh_token(
        &self,
        appid: &str,
        version: u64,
        refresh_token: &SecretString,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// Gives the lease up without writing (WeChat failed).
    fn release_lease(
        &self,
        key: &TokenKey,
        owner: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// A refresh of `version` failed in a way a retry will not fix soon: records `error` (a
    /// label, never WeChat's text), keeps the first `failing_since`, and moves `due_at` to
    /// `due_at` so the refresher leaves the token alone until then. Only while the version is
    /// still `version` (nothing was committed meanwhile).
    fn defer_refresh(
        &self,
        key: &TokenKey,
        version: u64,
        error: &str,
        now: i64,
        due_at: i64,
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

/// Authorization codes (claimed once, push or redirect) and the pending authorizations that
/// carry them until they are exchanged.
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
    /// The authorizer a code was exchanged for, if it was (a read; never a write).
    fn code_done_for(
        &self,
        code_id: &str,
    ) -> impl Future<Output = Result<Option<String>, StoreError>> + Send;
    /// Gives the claim up (the exchange failed and may be retried).
    fn release_code(
        &self,
        code_id: &str,
        owner: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Keeps a pending authorization unless a newer one (by `create_time`) of the same
    /// authorizer is stored; two of the same second with different codes are both kept.
    fn put_pending_authorization(
        &self,
        pending: &PendingAuthorization,
    ) -> impl Future<Output = Result<EventApplied, StoreError>> + Send;
    fn list_pending_authorizations(
        &self,
    ) -> impl Future<Output = Result<Vec<PendingAuthorization>, StoreError>> + Send;
    /// Drops this pending authorization (its authorizer, `create_time` and code).
    fn remove_pending_authorization(
        &self,
        pending: &PendingAuthorization,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
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
    /// Marks a confirmed session as handed off to its `return_to` (once: `false` if it already
    /// was, or is not confirmed).
    fn hand_off_session(&self, id: &str) -> impl Future<Output = Result<bool, StoreError>> + Send;
}

/// Identities (one per person) and their lookups: by (appid, openid) and by provider user.
pub trait IdentityStore: Send + Sync {
    fn get_identity(
        &self,
        id: &str,
    ) -> impl Future<Output = Result<Option<Identity>, StoreError>> + Send;
    /// All writes in one transaction, each conditional on its expected version (or absence),
    /// the user index and the openid pointers moved with them. `false` when a condition failed
    /// (someone else wrote first): nothing was written.
    fn write_identities(
        &self,
        writes: &[IdentityWrite],
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// A repeat sighting of an app the identity already has (same openid): last seen and the
    /// flow, unconditionally but for that. `false` if the identity lacks that app and openid.
    fn touch_identity(
        &self,
        id: &str,
        appid: &str,
        openid: &str,
        flow: &str,
        now: i64,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// The identity id (appid, openid) resolves to, if it was ever seen.
    fn identity_for_openid(
        &self,
        appid: &str,
        openid: &str,
    ) -> impl Future<Output = Result<Option<String>, StoreError>> + Send;
    /// Ids of the identities bound to `user_id`.
    fn identities_of_user(
        &self,
        user_id: &str,
    ) -> impl Future<Output = Result<Vec<String>, StoreError>> + Send;
}

/// One-time sign-in results and the single-use OAuth states.
pub trait LoginCodeStore: Send + Sync {
    fn put_login_code(
        &self,
        record: &LoginCodeRecord,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Takes the code (once): `None` if unknown, used or expired.
    fn take_login_code(
        &self,
        code_hash: &str,
        now: i64,
    ) -> impl Future<Output = Result<Option<LoginCodeRecord>, StoreError>> + Send;
    /// Claims an OAuth state nonce (once): `false` if it was claimed before.
    fn claim_oauth_nonce(
        &self,
        nonce: &str,
        expires_at: i64,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
}

/// One code record per mini program (`CODE#<appid>`).
pub trait CodeStore: Send + Sync {
    fn get_code(
        &self,
        appid: &str,
    ) -> impl Future<Output = Result<Option<CodeRecord>, StoreError>> + Send;
    /// Writes the record if the stored one still has `record.version - 1` (or none exists when
    /// `record.version` is 1). `false`: someone wrote first, nothing was written.
    fn put_code(
        &self,
        record: &CodeRecord,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// An audit result from a push, in one conditional write: applied only to a current audit
    /// still in review that was submitted no later than the result (`result.at`, give or take a
    /// minute of clock skew), so a retry, a result already polled, or a result of an older
    /// audit changes nothing (`false`).
    fn apply_audit_result(
        &self,
        appid: &str,
        result: &AuditResult,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
}

/// Everything the component-events function needs.
pub trait ComponentEventStore:
    TicketStore
    + PushStore
    + AuthorizerStore
    + TokenStore
    + AuthCodeStore
    + LinkStore
    + outbox::EventRecordStore
    + RegistrationStore
{
}
impl<
    T: TicketStore
        + PushStore
        + AuthorizerStore
        + TokenStore
        + AuthCodeStore
        + LinkStore
        + outbox::EventRecordStore
        + RegistrationStore,
> ComponentEventStore for T
{
}

/// Everything the message-events function needs.
pub trait MessageEventStore:
    TokenServiceStore + PushStore + LoginStore + IdentityStore + outbox::EventRecordStore + CodeStore
{
}
impl<
    T: TokenServiceStore
        + PushStore
        + LoginStore
        + IdentityStore
        + outbox::EventRecordStore
        + CodeStore,
> MessageEventStore for T
{
}

/// Everything the token service needs (the code exchange resolves authorization links).
pub trait TokenServiceStore:
    TicketStore + AuthorizerStore + TokenStore + AuthCodeStore + LinkStore
{
}
impl<T: TicketStore + AuthorizerStore + TokenStore + AuthCodeStore + LinkStore> TokenServiceStore
    for T
{
}

/// Authorization links (`POST /authorize/links`), their pre-auth codes, and the customer an
/// authorizer belongs to.
pub trait LinkStore: Send + Sync {
    /// Writes a new link with its first pre-auth code (and the code's digest → link item).
    fn create_link(
        &self,
        link: &AuthorizationLink,
        pre_auth: &PreAuth,
        pre_auth_digest: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// The link and the pre-auth code it currently offers.
    fn get_link(
        &self,
        id: &str,
    ) -> impl Future<Output = Result<Option<(AuthorizationLink, Option<PreAuth>)>, StoreError>> + Send;
    /// Takes the right to replace the link's pre-auth code whose expiry was `seen_expires_at`
    /// (one worker per code lifetime); `false` when another worker has it or did it.
    fn claim_pre_auth_renewal(
        &self,
        id: &str,
        seen_expires_at: i64,
        now: i64,
        until: i64,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// Stores the link's new pre-auth code (after a won claim) and its digest → link item.
    fn set_pre_auth(
        &self,
        id: &str,
        pre_auth: &PreAuth,
        pre_auth_digest: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// The link a pre-auth code (by digest) was made for.
    fn link_for_pre_auth(
        &self,
        pre_auth_digest: &str,
    ) -> impl Future<Output = Result<Option<String>, StoreError>> + Send;
    /// Marks the link authorized by `appid` (unless another authorizer already used it) and
    /// ties the authorizer to the link's customer. `false` when the link was used by another.
    fn bind_link(
        &self,
        link: &AuthorizationLink,
        appid: &str,
        now: i64,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// Authorizers of one customer in appid order after `after` (the customers index).
    fn customer_authorizers(
        &self,
        customer_ref: &str,
        state: Option<AuthorizerState>,
        limit: usize,
        after: Option<&str>,
    ) -> impl Future<Output = Result<(Vec<AuthorizerRecord>, Option<String>), StoreError>> + Send;
}

/// What a fast-registration push is matched by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegistrationKey<'a> {
    Task(&'a str),
    /// The unified social credit code.
    Code(&'a str),
    /// The company name.
    Name(&'a str),
}

/// Fast registrations (`POST /fast-registrations`) and the customer of what they registered.
pub trait RegistrationStore: Send + Sync {
    /// Writes a new registration and its match keys (taskid, code, name → this registration).
    fn create_registration(
        &self,
        registration: &Registration,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    fn get_registration(
        &self,
        id: &str,
    ) -> impl Future<Output = Result<Option<Registration>, StoreError>> + Send;
    /// The newest registration a key names.
    fn registration_for(
        &self,
        key: &RegistrationKey<'_>,
    ) -> impl Future<Output = Result<Option<String>, StoreError>> + Send;
    /// Records the outcome of a pending registration (a success also ties the new authorizer
    /// to the registration's customer). `false` when it was no longer pending: nothing changed.
    fn finish_registration(
        &self,
        registration: &Registration,
        outcome: &RegistrationOutcome,
        now: i64,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
}
