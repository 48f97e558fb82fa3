//! State: port traits per aggregate, a DynamoDB adapter and an in-memory adapter.
//!
//! One table, keys `pk`/`sk` (strings), TTL attribute `ttl`:
//!
//! | item | pk | sk |
//! |---|---|---|
//! | component ticket | `COMPONENT` | `TICKET` |
//! | push record | `PUSH#<timestamp>:<nonce>:<msg_signature>` | `PUSH` |
//! | pending authorization | `PENDING` | `AUTH#<authorizer appid>` |
//! | authorizer | `AUTHORIZER#<appid>` | `AUTHORIZER` |

use std::future::Future;

use secrecy::SecretString;
use serde::{Deserialize, Serialize};

pub mod dynamo;
pub mod memory;

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

/// Everything the component-events function needs.
pub trait ComponentEventStore: TicketStore + PushStore + AuthorizerStore {}
impl<T: TicketStore + PushStore + AuthorizerStore> ComponentEventStore for T {}
