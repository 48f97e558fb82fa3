//! The records wxopen keeps: what the store persists and the features read. Plain data, no I/O;
//! the port traits that load and save them are in [`crate::store`].

use secrecy::SecretString;
use serde::{Deserialize, Serialize};

pub mod release;
pub use release::*;

/// The newest `component_verify_ticket`.
#[derive(Debug, Clone)]
pub struct StoredTicket {
    pub ticket: SecretString,
    /// WeChat's `CreateTime` of the push that carried it: what "newest" is judged by.
    pub create_time: i64,
    pub received_at: i64,
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
    /// Digest of the push's `PreAuthCode` (resolves the authorization link); never the code.
    pub pre_auth_digest: Option<String>,
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
    /// The provider's customer, when the authorization came through one of its links.
    #[serde(default)]
    pub customer_ref: Option<String>,
    #[serde(default)]
    pub link_id: Option<String>,
    /// Why the state is what it is, when wxopen decided it (e.g. recovery found it unlisted).
    #[serde(default)]
    pub state_reason: Option<String>,
    /// Its token's refreshes fail (`errcode_61003`, …): since when, and the last cause.
    #[serde(default)]
    pub last_error: Option<String>,
    #[serde(default)]
    pub failing_since: Option<i64>,
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
    /// When the refresh that wrote this token started (0 = unknown): forced refreshes of a
    /// token younger than the minimum interval are refused.
    pub refreshed_at: i64,
    /// When its refreshes started failing in a way a retry does not fix (cleared by a commit).
    pub failing_since: Option<i64>,
    /// The last failure's label (`errcode_61004`, …; never WeChat's text), with `failing_since`.
    pub last_error: Option<String>,
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
            .field("refreshed_at", &self.refreshed_at)
            .field("failing_since", &self.failing_since)
            .field("last_error", &self.last_error)
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
    /// WeChat's `CreateTime` of the authorization event: newer wins, compared only with other
    /// `CreateTime`s. `None` for a browser redirect (it carries no WeChat time, and the local
    /// clock is never compared with WeChat's): applied, keeping the stored event time.
    pub event_time: Option<i64>,
    pub func_info: Vec<u32>,
    pub token: NewToken,
    pub profile: Option<AuthorizerProfileRecord>,
    pub now: i64,
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
    /// The hosted page's destination (an allowlisted URL); `None` for API-only sessions.
    #[serde(default)]
    pub return_to: Option<String>,
    /// The provider's opaque `state`, handed back with the login code.
    #[serde(default)]
    pub state: Option<String>,
    /// The identity the scan was recorded to.
    #[serde(default)]
    pub identity_id: Option<String>,
    /// Set when recording the scan found two identities bound to different users.
    #[serde(default)]
    pub conflict: Option<IdentityConflict>,
    /// The hosted page has already sent the browser on with a login code (once only).
    #[serde(default)]
    pub handed_off: bool,
}

/// What a scan confirmed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginConfirmation {
    pub openid: String,
    pub unionid: Option<String>,
    pub unionid_missing_reason: Option<String>,
    pub known_user: bool,
    pub now: i64,
    pub identity_id: Option<String>,
    pub conflict: Option<IdentityConflict>,
}

/// How a person signed in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SignInFlow {
    /// Scanned a follow-to-log-in QR code.
    Follow,
    /// Web OAuth inside WeChat on behalf of an official account.
    Oauth,
    /// `wx.login` in a mini program, exchanged on its behalf.
    MiniProgram,
}

impl SignInFlow {
    pub fn as_str(self) -> &'static str {
        match self {
            SignInFlow::Follow => "follow",
            SignInFlow::Oauth => "oauth",
            SignInFlow::MiniProgram => "mini_program",
        }
    }
}

/// One app (official account or mini program) an identity was seen through.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdentityApp {
    pub openid: String,
    pub first_seen: i64,
    pub last_seen: i64,
    /// Each flow seen through this app, with when it was last used.
    #[serde(default)]
    pub flows: std::collections::BTreeMap<String, i64>,
}

/// Two identities of one person bound to different provider users: never merged silently.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdentityConflict {
    /// The other identity.
    pub identity_id: String,
    /// The user the other identity is bound to.
    pub user_id: Option<String>,
}

/// One person: keyed by UnionID, or by (appid, openid) while WeChat gives no UnionID.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    pub id: String,
    #[serde(default)]
    pub unionid: Option<String>,
    /// Apps seen, by appid.
    #[serde(default)]
    pub apps: std::collections::BTreeMap<String, IdentityApp>,
    pub first_seen: i64,
    pub last_seen: i64,
    /// The provider's own user id, when bound.
    #[serde(default)]
    pub user_id: Option<String>,
    #[serde(default)]
    pub conflict: Option<IdentityConflict>,
    /// Set on an openid-only identity once it merged into the UnionID identity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merged_into: Option<String>,
    /// Bumped by every write (optimistic concurrency).
    pub version: u64,
}

/// One write of an identity in a transaction.
#[derive(Debug, Clone)]
pub struct IdentityWrite {
    /// The new state (its `version` is the stored one + 1, or 1 for a new identity).
    pub identity: Identity,
    /// The version read; `None`: the identity must not exist yet.
    pub expected_version: Option<u64>,
    /// The user the identity was bound to when read (the user index moves with it).
    pub previous_user: Option<String>,
    /// (appid, openid) pairs that now resolve to this identity.
    pub pointers: Vec<(String, String)>,
}

/// A one-time sign-in result, stored under the hash of its code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoginCodeRecord {
    /// SHA-256 of the code, hex: the code itself is never stored.
    pub code_hash: String,
    pub flow: SignInFlow,
    pub appid: String,
    pub openid: String,
    #[serde(default)]
    pub unionid: Option<String>,
    pub identity_id: String,
    pub known_user: bool,
    #[serde(default)]
    pub conflict: Option<IdentityConflict>,
    pub created_at: i64,
    pub expires_at: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LinkStatus {
    Pending,
    Authorized,
}

/// An authorization link made for one of the provider's customers (`POST /authorize/links`).
/// Never holds the pre-auth code (that is [`PreAuth`], stored beside it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthorizationLink {
    /// 32 lowercase hex characters (128 random bits): unguessable.
    pub id: String,
    /// The provider's opaque reference to its customer (at most 128 characters).
    pub customer_ref: String,
    /// 1 official accounts, 2 mini programs, 3 both.
    pub auth_type: u8,
    #[serde(default)]
    pub biz_appid: Option<String>,
    #[serde(default)]
    pub category_id_list: Option<String>,
    /// Where the merchant's browser goes after success (allow-listed at creation).
    #[serde(default)]
    pub return_to: Option<String>,
    pub created_at: i64,
    /// After this the page and the callback refuse the link (unless it was authorized).
    pub expires_at: i64,
    pub status: LinkStatus,
    #[serde(default)]
    pub authorizer_appid: Option<String>,
    #[serde(default)]
    pub authorized_at: Option<i64>,
}

/// The pre-auth code a link's page currently offers. `Debug` is redacted.
#[derive(Clone)]
pub struct PreAuth {
    pub code: SecretString,
    pub expires_at: i64,
}

impl std::fmt::Debug for PreAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PreAuth")
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

// ---- fast registration ----

/// How a mini program is fast-registered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RegistrationKind {
    /// A company's legal person confirms through the URL `fastregisterenterpriseweapp` gave.
    Enterprise,
    /// A verified official account's subject is reused; its admin confirms on WeChat's page
    /// (set 27).
    OfficialAccount,
}

/// A registration's stored state (`expired` is derived: pending past `expires_at`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RegistrationState {
    Pending,
    Succeeded,
    Failed,
}

/// One fast registration (`POST /fast-registrations`). Holds no secret: the auth code of the
/// outcome is exchanged, never stored here.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Registration {
    /// 32 lowercase hex characters (128 random bits): unguessable.
    pub id: String,
    pub kind: RegistrationKind,
    /// Stored under another name: `customer_ref` and `appid` are keys of the table's indexes,
    /// which list authorizers only.
    #[serde(rename = "registration_customer_ref")]
    pub customer_ref: String,
    /// The company's registered name.
    pub name: String,
    /// The unified social credit code (18 characters; public).
    pub code: String,
    pub component_phone: String,
    #[serde(default)]
    pub oa_appid: Option<String>,
    #[serde(default)]
    pub return_to: Option<String>,
    #[serde(default)]
    pub taskid: Option<String>,
    /// The URL the legal person (enterprise) or the official account's admin opens.
    pub authorize_url: String,
    pub state: RegistrationState,
    /// The new mini program, once registered.
    #[serde(default, rename = "registered_appid")]
    pub appid: Option<String>,
    /// WeChat's `status` of a failure, and its meaning.
    #[serde(default)]
    pub wechat_status: Option<i64>,
    #[serde(default)]
    pub status_meaning: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    /// 24 h after creation: WeChat's deadline for the confirmation.
    pub expires_at: i64,
}

/// How a registration ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegistrationOutcome {
    Succeeded { appid: String },
    Failed { status: i64, meaning: String },
}

/// Where a mini program's current audit stands (WeChat's statuses 2, 0, 1, 4, 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CodeAuditState {
    Auditing,
    Approved,
    Rejected,
    Delayed,
    Withdrawn,
}

impl CodeAuditState {
    pub fn as_str(self) -> &'static str {
        match self {
            CodeAuditState::Auditing => "auditing",
            CodeAuditState::Approved => "approved",
            CodeAuditState::Rejected => "rejected",
            CodeAuditState::Delayed => "delayed",
            CodeAuditState::Withdrawn => "withdrawn",
        }
    }

    /// Still in WeChat's review (a result may come).
    pub fn in_review(self) -> bool {
        matches!(self, CodeAuditState::Auditing | CodeAuditState::Delayed)
    }
}

/// The current (latest) audit of a mini program's code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CodeAudit {
    pub auditid: i64,
    pub state: CodeAuditState,
    /// WeChat's reason (rejected, delayed); HTML with `<br>` as WeChat sends it.
    #[serde(default)]
    pub reason: Option<String>,
    /// Media ids of WeChat's screenshots of a rejection.
    #[serde(default)]
    pub screenshots: Vec<String>,
    pub template_id: i64,
    pub user_version: String,
    pub submitted_at: i64,
    pub updated_at: i64,
}

/// The version a mini program runs live.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CodeRelease {
    pub template_id: i64,
    pub user_version: String,
    pub released_at: i64,
}

/// A gray release in progress.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CodeGray {
    pub gray_percentage: u8,
    pub at: i64,
}

/// One mini program's code, as wxopen last saw it: what is committed (the trial version), the
/// current audit, what is live. `version` counts writes (every write is conditional on it).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CodeRecord {
    pub appid: String,
    #[serde(default)]
    pub template_id: Option<i64>,
    #[serde(default)]
    pub user_version: Option<String>,
    #[serde(default)]
    pub user_desc: Option<String>,
    #[serde(default)]
    pub committed_at: Option<i64>,
    #[serde(default)]
    pub audit: Option<CodeAudit>,
    #[serde(default)]
    pub released: Option<CodeRelease>,
    #[serde(default)]
    pub gray: Option<CodeGray>,
    /// The last rollback (`revertcoderelease`): when, and to which `app_version` if named.
    #[serde(default)]
    pub reverted_at: Option<i64>,
    #[serde(default)]
    pub reverted_to: Option<i64>,
    #[serde(default)]
    pub updated_at: i64,
    #[serde(default)]
    pub version: u64,
}

/// An audit result as a push (or a status poll) reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditResult {
    pub state: CodeAuditState,
    pub reason: Option<String>,
    pub screenshots: Vec<String>,
    /// When WeChat decided (SuccTime / FailTime / DelayTime, else CreateTime).
    pub at: i64,
}

/// The provider's reference to its customer, as every record keeps it: trimmed, 1 to 128
/// characters, no control characters. `None` when it is not one.
pub fn customer_ref(value: Option<&str>) -> Option<String> {
    match value.map(str::trim) {
        Some(c)
            if !c.is_empty() && c.chars().count() <= 128 && !c.chars().any(char::is_control) =>
        {
            Some(c.to_string())
        }
        _ => None,
    }
}
