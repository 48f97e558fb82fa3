//! Event records (dedupe of WeChat's retries + the reply memo) and the outbox of events that
//! could not be published yet.
//!
//! | item | pk | sk |
//! |---|---|---|
//! | event record | `EVENT#<event id>` | `EVENT` |
//! | hook claim | `EVENT#<event id>` | `HOOK` |
//! | outbox entry | `OUTBOX#<shard 0..3>` | `<enqueued_at, 12 digits>#<event id>` |
//!
//! The happy path of a message is one conditional `PutItem` of its event record (after the
//! event was published). Only when publishing failed is the outbox entry written with it, in
//! one transaction, so the record never exists without either a published event or an outbox
//! entry. Outbox entries have no TTL: they leave only when published. Four shards keep the
//! outbox off one hot partition when EventBridge is down for a busy deployment; the sweep reads
//! each shard oldest first.
//!
//! A message that goes to the reply hook first claims the hook for its event id (one
//! conditional `PutItem` with a lease), so a WeChat retry that arrives while the first delivery
//! still waits on the hook does not ask it a second time: the retry waits for the first's
//! record instead. A claim whose lease ran out (its delivery died) can be taken over.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Mutex;

use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem};
use serde::{Deserialize, Serialize};
use serde_dynamo::{from_item, to_item};

use super::{DynamoStore, StoreError};

/// Event records live a day, like push records: WeChat retries within seconds.
pub const EVENT_RECORD_TTL_SECS: i64 = 86_400;
/// Outbox partitions.
pub const OUTBOX_SHARDS: u32 = 4;

const EVENT_SK: &str = "EVENT";
const HOOK_SK: &str = "HOOK";

/// How a message was answered, kept so that a retry gets the same answer.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ReplyMemo {
    /// `success` (no reply, or not a message).
    Success,
    /// An empty body.
    Empty,
    /// A passive reply: the plaintext reply XML, sealed again for each answer.
    Reply { xml: String },
    /// Not settled: a login scan whose confirmation failed. The event is recorded (and
    /// published); WeChat is asked to retry, and each retry runs the login scan again.
    Retry,
}

/// Replies are what a hook said to a user: `Debug` shows their size only.
impl std::fmt::Debug for ReplyMemo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReplyMemo::Success => f.write_str("Success"),
            ReplyMemo::Empty => f.write_str("Empty"),
            ReplyMemo::Retry => f.write_str("Retry"),
            ReplyMemo::Reply { xml } => write!(f, "Reply({} bytes)", xml.len()),
        }
    }
}

/// One push, recorded under its event id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventRecord {
    pub id: String,
    pub detail_type: String,
    pub received_at: i64,
    pub answer: ReplyMemo,
    pub ttl: i64,
}

impl EventRecord {
    pub fn new(id: &str, detail_type: &str, answer: ReplyMemo, now: i64) -> Self {
        Self {
            id: id.to_string(),
            detail_type: detail_type.to_string(),
            received_at: now,
            answer,
            ttl: now + EVENT_RECORD_TTL_SECS,
        }
    }
}

/// An event waiting to be published (the detail as JSON; no credential is ever in it).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboxEntry {
    pub id: String,
    pub detail_type: String,
    pub detail: String,
    pub enqueued_at: i64,
}

impl std::fmt::Debug for OutboxEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutboxEntry")
            .field("id", &self.id)
            .field("detail_type", &self.detail_type)
            .field("enqueued_at", &self.enqueued_at)
            .finish_non_exhaustive()
    }
}

/// What `record_event` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordOutcome {
    /// Written now.
    Recorded,
    /// A record with this id was already there (a concurrent delivery won): answer as it did.
    Exists(EventRecord),
}

pub trait EventRecordStore: Send + Sync {
    fn get_event_record(
        &self,
        id: &str,
    ) -> impl Future<Output = Result<Option<EventRecord>, StoreError>> + Send;
    /// Writes the record once (conditional). With `deferred`, the outbox entry is written in
    /// the same transaction (both or neither).
    fn record_event(
        &self,
        record: &EventRecord,
        deferred: Option<&OutboxEntry>,
    ) -> impl Future<Output = Result<RecordOutcome, StoreError>> + Send;
    /// Claims the reply hook for a push: `true` when this delivery may ask the hook (no claim,
    /// or the last one's lease ended before `now`), `false` while another delivery holds it.
    fn claim_hook(
        &self,
        id: &str,
        now: i64,
        lease_secs: i64,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// Puts entries in the outbox (events that have no record, or whose publishing failed
    /// after they were recorded).
    fn enqueue(
        &self,
        entries: &[OutboxEntry],
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// The oldest outbox entries, at most `limit`, oldest first.
    fn outbox(
        &self,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<OutboxEntry>, StoreError>> + Send;
    /// Removes a published entry.
    fn remove_from_outbox(
        &self,
        entry: &OutboxEntry,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// Which outbox partition an event lives in.
pub fn shard_of(id: &str) -> u32 {
    id.bytes()
        .fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(b)))
        % OUTBOX_SHARDS
}

fn event_pk(id: &str) -> String {
    format!("EVENT#{id}")
}
fn outbox_pk(shard: u32) -> String {
    format!("OUTBOX#{shard}")
}
fn outbox_sk(entry: &OutboxEntry) -> String {
    format!("{:012}#{}", entry.enqueued_at.max(0), entry.id)
}

#[derive(Serialize, Deserialize)]
struct EventItem {
    pk: String,
    sk: String,
    #[serde(flatten)]
    record: EventRecord,
}

#[derive(Serialize, Deserialize)]
struct OutboxItem {
    pk: String,
    sk: String,
    #[serde(flatten)]
    entry: OutboxEntry,
}

fn outbox_item(entry: &OutboxEntry) -> OutboxItem {
    OutboxItem {
        pk: outbox_pk(shard_of(&entry.id)),
        sk: outbox_sk(entry),
        entry: entry.clone(),
    }
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

impl EventRecordStore for DynamoStore {
    async fn get_event_record(&self, id: &str) -> Result<Option<EventRecord>, StoreError> {
        let out = self
            .client()
            .get_item()
            .table_name(self.table())
            .key("pk", s(event_pk(id)))
            .key("sk", s(EVENT_SK))
            .consistent_read(true)
            .send()
            .await?;
        match out.item {
            Some(item) => Ok(Some(from_item::<_, EventItem>(item)?.record)),
            None => Ok(None),
        }
    }

    async fn record_event(
        &self,
        record: &EventRecord,
        deferred: Option<&OutboxEntry>,
    ) -> Result<RecordOutcome, StoreError> {
        let item = to_item(EventItem {
            pk: event_pk(&record.id),
            sk: EVENT_SK.into(),
            record: record.clone(),
        })?;
        let written = match deferred {
            None => {
                let result = self
                    .client()
                    .put_item()
                    .table_name(self.table())
                    .set_item(Some(item))
                    .condition_expression("attribute_not_exists(pk)")
                    .send()
                    .await;
                match result {
                    Ok(_) => true,
                    Err(e)
                        if e.as_service_error()
                            .is_some_and(|se| se.is_conditional_check_failed_exception()) =>
                    {
                        false
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            Some(entry) => {
                let record_put = Put::builder()
                    .table_name(self.table())
                    .set_item(Some(item))
                    .condition_expression("attribute_not_exists(pk)")
                    .build()?;
                let outbox_put = Put::builder()
                    .table_name(self.table())
                    .set_item(Some(to_item(outbox_item(entry))?))
                    .build()?;
                let result = self
                    .client()
                    .transact_write_items()
                    .transact_items(TransactWriteItem::builder().put(record_put).build())
                    .transact_items(TransactWriteItem::builder().put(outbox_put).build())
                    .send()
                    .await;
                match result {
                    Ok(_) => true,
                    Err(e) => {
                        let conditional = matches!(
                            e.as_service_error(),
                            Some(TransactWriteItemsError::TransactionCanceledException(t))
                                if t.cancellation_reasons().first().and_then(|r| r.code())
                                    == Some("ConditionalCheckFailed")
                        );
                        if !conditional {
                            return Err(e.into());
                        }
                        false
                    }
                }
            }
        };
        if written {
            return Ok(RecordOutcome::Recorded);
        }
        match self.get_event_record(&record.id).await? {
            Some(existing) => Ok(RecordOutcome::Exists(existing)),
            // Written and gone between the two calls (TTL): ours is as good as any.
            None => Ok(RecordOutcome::Recorded),
        }
    }

    async fn claim_hook(&self, id: &str, now: i64, lease_secs: i64) -> Result<bool, StoreError> {
        let result = self
            .client()
            .put_item()
            .table_name(self.table())
            .item("pk", s(event_pk(id)))
            .item("sk", s(HOOK_SK))
            .item(
                "lease_until",
                AttributeValue::N((now + lease_secs).to_string()),
            )
            .item(
                "ttl",
                AttributeValue::N((now + EVENT_RECORD_TTL_SECS).to_string()),
            )
            .condition_expression("attribute_not_exists(pk) OR lease_until < :now")
            .expression_attribute_values(":now", AttributeValue::N(now.to_string()))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|se| se.is_conditional_check_failed_exception()) =>
            {
                Ok(false)
            }
            Err(e) => Err(e.into()),
        }
    }

    async fn enqueue(&self, entries: &[OutboxEntry]) -> Result<(), StoreError> {
        for entry in entries {
            self.client()
                .put_item()
                .table_name(self.table())
                .set_item(Some(to_item(outbox_item(entry))?))
                .send()
                .await?;
        }
        Ok(())
    }

    async fn outbox(&self, limit: usize) -> Result<Vec<OutboxEntry>, StoreError> {
        let page = i32::try_from(limit.clamp(1, 1000)).unwrap_or(1000);
        let mut all = Vec::new();
        for shard in 0..OUTBOX_SHARDS {
            let out = self
                .client()
                .query()
                .table_name(self.table())
                .key_condition_expression("pk = :pk")
                .expression_attribute_values(":pk", s(outbox_pk(shard)))
                .consistent_read(true)
                .scan_index_forward(true)
                .limit(page)
                .send()
                .await?;
            for item in out.items.unwrap_or_default() {
                all.push(from_item::<_, OutboxItem>(item)?.entry);
            }
        }
        all.sort_by(|a, b| (a.enqueued_at, &a.id).cmp(&(b.enqueued_at, &b.id)));
        all.truncate(limit);
        Ok(all)
    }

    async fn remove_from_outbox(&self, entry: &OutboxEntry) -> Result<(), StoreError> {
        self.client()
            .delete_item()
            .table_name(self.table())
            .key("pk", s(outbox_pk(shard_of(&entry.id))))
            .key("sk", s(outbox_sk(entry)))
            .send()
            .await?;
        Ok(())
    }
}

/// In-memory adapter (unit tests, the contract test's reference).
#[derive(Debug, Default)]
pub struct MemoryEventRecords {
    inner: Mutex<MemoryState>,
}

#[derive(Debug, Default)]
struct MemoryState {
    records: BTreeMap<String, EventRecord>,
    hook_claims: BTreeMap<String, i64>,
    outbox: BTreeMap<(i64, String), OutboxEntry>,
}

impl MemoryEventRecords {
    pub fn new() -> Self {
        Self::default()
    }

    fn with<T>(&self, f: impl FnOnce(&mut MemoryState) -> T) -> T {
        let mut guard = match self.inner.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        f(&mut guard)
    }
}

impl EventRecordStore for MemoryEventRecords {
    async fn get_event_record(&self, id: &str) -> Result<Option<EventRecord>, StoreError> {
        Ok(self.with(|s| s.records.get(id).cloned()))
    }

    async fn record_event(
        &self,
        record: &EventRecord,
        deferred: Option<&OutboxEntry>,
    ) -> Result<RecordOutcome, StoreError> {
        Ok(self.with(|s| {
            if let Some(existing) = s.records.get(&record.id) {
                return RecordOutcome::Exists(existing.clone());
            }
            s.records.insert(record.id.clone(), record.clone());
            if let Some(e) = deferred {
                s.outbox.insert((e.enqueued_at, e.id.clone()), e.clone());
            }
            RecordOutcome::Recorded
        }))
    }

    async fn claim_hook(&self, id: &str, now: i64, lease_secs: i64) -> Result<bool, StoreError> {
        Ok(self.with(|s| match s.hook_claims.get(id) {
            Some(until) if *until >= now => false,
            _ => {
                s.hook_claims.insert(id.to_string(), now + lease_secs);
                true
            }
        }))
    }

    async fn enqueue(&self, entries: &[OutboxEntry]) -> Result<(), StoreError> {
        self.with(|s| {
            for e in entries {
                s.outbox.insert((e.enqueued_at, e.id.clone()), e.clone());
            }
        });
        Ok(())
    }

    async fn outbox(&self, limit: usize) -> Result<Vec<OutboxEntry>, StoreError> {
        Ok(self.with(|s| s.outbox.values().take(limit).cloned().collect()))
    }

    async fn remove_from_outbox(&self, entry: &OutboxEntry) -> Result<(), StoreError> {
        self.with(|s| s.outbox.remove(&(entry.enqueued_at, entry.id.clone())));
        Ok(())
    }
}
