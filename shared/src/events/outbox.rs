//! Never lost, never doubled by us: how a push becomes exactly one recorded answer and at least
//! one published event, and how deferred events are published later.
//!
//! For one push (a message, or a component event):
//! 1. [`recall`]: read the event record by the event's stable id. Found: this is a retry;
//!    answer as recorded, publish nothing, call no hook.
//! 2. The caller decides the answer (release test and login first, then the reply hook).
//! 3. [`deliver`]: `PutEvents`, then one conditional write of the record (with the reply memo).
//!    If publishing failed, the same write is a transaction that also puts the event in the
//!    outbox. Only then is WeChat answered, so an answered push is always either on the bus or
//!    in the outbox.
//! 4. The scheduled run calls [`sweep`]: outbox entries are published (oldest first) and
//!    removed once EventBridge took them.
//!
//! Happy path: one read, one `PutEvents`, one write. A concurrent delivery of the same push
//! (WeChat gave up on the first connection while it was still working) can publish a second
//! copy with the same `id`: consumers dedupe by `detail.id`, as with any at-least-once bus; its
//! answer is still the first one's (the record's conditional write decides). When the reply
//! hook is asked, it is claimed first (`EventRecordStore::claim_hook`) and a concurrent retry
//! waits for the first's record ([`await_record`]) instead of asking the hook again.

use std::time::{Duration, Instant};

use super::Event;
use super::publish::{EventEntry, EventPublisher};
use crate::store::StoreError;
use crate::store::outbox::{EventRecord, EventRecordStore, OutboxEntry, RecordOutcome, ReplyMemo};

/// Outbox entries published per sweep page.
pub const SWEEP_PAGE: usize = 100;

/// The recorded answer of a push already handled (a WeChat retry), if any.
pub async fn recall<S: EventRecordStore>(
    store: &S,
    id: &str,
) -> Result<Option<ReplyMemo>, StoreError> {
    Ok(store.get_event_record(id).await?.map(|r| r.answer))
}

/// How often a retry looks for the record of the delivery that holds the hook.
const RECORD_POLL: Duration = Duration::from_millis(100);

/// Waits up to `budget` for the record of a push another delivery is handling (it holds the
/// reply hook), and returns its answer once written. `None` when the budget ran out first.
pub async fn await_record<S: EventRecordStore>(
    store: &S,
    id: &str,
    budget: Duration,
) -> Result<Option<ReplyMemo>, StoreError> {
    let deadline = Instant::now() + budget;
    loop {
        if let Some(answer) = recall(store, id).await? {
            return Ok(Some(answer));
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(None);
        }
        tokio::time::sleep(left.min(RECORD_POLL)).await;
    }
}

/// What happened to one push's event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivered {
    /// The answer to give: ours, or the one a concurrent delivery recorded first.
    pub answer: ReplyMemo,
    /// `PutEvents` took the event.
    pub published: bool,
    /// The event went to the outbox (publishing failed).
    pub deferred: bool,
    /// Another delivery of the same push had recorded it first.
    pub duplicate: bool,
    /// Time spent in `PutEvents`.
    pub publish_ms: u64,
}

/// Publishes the event and records the push with its answer (see the module doc).
pub async fn deliver<S, P>(
    store: &S,
    publisher: &P,
    entry: &EventEntry,
    answer: ReplyMemo,
    now: i64,
) -> Result<Delivered, StoreError>
where
    S: EventRecordStore,
    P: EventPublisher,
{
    Ok(deliver_with(store, publisher, entry, &[], answer, now)
        .await?
        .0)
}

/// [`deliver`], with events that need no record of their own (wxopen's own state changes the
/// push caused) published in the same `PutEvents` call; those EventBridge refused go to the
/// outbox. Returns how many of `extra` were deferred.
pub async fn deliver_with<S, P>(
    store: &S,
    publisher: &P,
    entry: &EventEntry,
    extra: &[EventEntry],
    answer: ReplyMemo,
    now: i64,
) -> Result<(Delivered, usize), StoreError>
where
    S: EventRecordStore,
    P: EventPublisher,
{
    let started = Instant::now();
    let batch: Vec<EventEntry> = std::iter::once(entry).chain(extra).cloned().collect();
    let report = publisher.publish(&batch).await;
    let publish_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    let published = !report.failed_index(0);
    let deferred: Vec<OutboxEntry> = extra
        .iter()
        .enumerate()
        .filter(|(i, _)| report.failed_index(i + 1))
        .map(|(_, e)| to_outbox(e, now))
        .collect();
    store.enqueue(&deferred).await?;
    let outbox = (!published).then(|| to_outbox(entry, now));
    let record = EventRecord::new(&entry.id, entry.detail_type.as_str(), answer.clone(), now);
    let delivered = match store.record_event(&record, outbox.as_ref()).await? {
        RecordOutcome::Recorded => Delivered {
            answer,
            published,
            deferred: !published,
            duplicate: false,
            publish_ms,
        },
        RecordOutcome::Exists(existing) => {
            // The winner's record stands; if we could not publish, the winner did (or its
            // outbox entry will): nothing to defer.
            Delivered {
                answer: existing.answer,
                published,
                deferred: false,
                duplicate: true,
                publish_ms,
            }
        }
    };
    Ok((delivered, deferred.len()))
}

/// Publishes events that need no dedupe record (wxopen's own `authorization.changed`):
/// whatever `PutEvents` refuses goes to the outbox. Returns how many were deferred.
pub async fn publish_or_defer<S, P>(
    store: &S,
    publisher: &P,
    entries: &[EventEntry],
    now: i64,
) -> Result<usize, StoreError>
where
    S: EventRecordStore,
    P: EventPublisher,
{
    if entries.is_empty() {
        return Ok(0);
    }
    let report = publisher.publish(entries).await;
    let deferred: Vec<OutboxEntry> = entries
        .iter()
        .enumerate()
        .filter(|(i, _)| report.failed_index(*i))
        .map(|(_, e)| to_outbox(e, now))
        .collect();
    store.enqueue(&deferred).await?;
    Ok(deferred.len())
}

/// [`publish_or_defer`] for wxopen's own events outside a push (the browser redirect, the
/// scheduled run): built, published, the refused deferred. Never fails its caller (the state
/// change already stands); what could be neither published nor deferred is logged.
pub async fn publish_own<S, P>(store: &S, publisher: &P, events: &[Event], now: i64)
where
    S: EventRecordStore,
    P: EventPublisher,
{
    let entries = match events
        .iter()
        .map(EventEntry::from_event)
        .collect::<Result<Vec<_>, _>>()
    {
        Ok(e) => e,
        Err(e) => {
            tracing::error!(error = %e, "own events not built");
            return;
        }
    };
    match publish_or_defer(store, publisher, &entries, now).await {
        Ok(0) => {}
        Ok(deferred) => tracing::warn!(deferred, "own events deferred to the outbox"),
        Err(e) => tracing::error!(error = %e, "own events neither published nor deferred"),
    }
}

fn to_outbox(entry: &EventEntry, now: i64) -> OutboxEntry {
    OutboxEntry {
        id: entry.id.clone(),
        detail_type: entry.detail_type.as_str().to_string(),
        detail: entry.detail.clone(),
        enqueued_at: now,
    }
}

fn from_outbox(entry: &OutboxEntry) -> Option<EventEntry> {
    Some(EventEntry {
        id: entry.id.clone(),
        detail_type: super::DetailType::parse(&entry.detail_type)?,
        detail: entry.detail.clone(),
    })
}

/// One sweep of the outbox.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SweepReport {
    /// Published now and removed from the outbox.
    pub republished: u32,
    /// Still refused by EventBridge (left in the outbox).
    pub failed: u32,
    /// Age of the oldest entry found, before this sweep (0 when the outbox was empty).
    pub oldest_age_secs: i64,
    /// Entries left behind (still failing, or beyond `max_entries`).
    pub remaining: bool,
}

/// Publishes what is in the outbox, oldest first, until it is empty, EventBridge refuses
/// something, or `max_entries` were handled. An entry is removed only after `PutEvents` took
/// it; a sweep that dies between the two republishes it next time (same `id`).
pub async fn sweep<S, P>(
    store: &S,
    publisher: &P,
    now: i64,
    max_entries: usize,
) -> Result<SweepReport, StoreError>
where
    S: EventRecordStore,
    P: EventPublisher,
{
    let mut report = SweepReport::default();
    if max_entries == 0 {
        return Ok(report);
    }
    let mut handled = 0usize;
    let mut first = true;
    loop {
        let page = store.outbox(SWEEP_PAGE.min(max_entries - handled)).await?;
        if first {
            report.oldest_age_secs = page
                .iter()
                .map(|e| now - e.enqueued_at)
                .max()
                .unwrap_or(0)
                .max(0);
            first = false;
        }
        if page.is_empty() {
            return Ok(report);
        }
        let (valid, invalid): (Vec<_>, Vec<_>) = page
            .iter()
            .map(|e| (e, from_outbox(e)))
            .partition(|(_, entry)| entry.is_some());
        for (bad, _) in invalid {
            // Not an event type this version knows: it can never be published. Dropped, loudly.
            tracing::error!(id = %bad.id, detail_type = %bad.detail_type, "outbox entry of an unknown detail-type dropped");
            store.remove_from_outbox(bad).await?;
        }
        let entries: Vec<EventEntry> = valid.iter().filter_map(|(_, e)| e.clone()).collect();
        let published = publisher.publish(&entries).await;
        for (i, (stored, _)) in valid.iter().enumerate() {
            if published.failed_index(i) {
                report.failed += 1;
            } else {
                store.remove_from_outbox(stored).await?;
                report.republished += 1;
            }
        }
        handled += page.len();
        if !published.all_published() || handled >= max_entries {
            report.remaining = true;
            return Ok(report);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::DetailType;
    use crate::events::publish::{FailedEntry, PublishReport};
    use crate::store::outbox::MemoryEventRecords;
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicBool, Ordering};

    /// A bus that can be switched off; records what it took.
    #[derive(Default)]
    struct Bus {
        down: AtomicBool,
        taken: Mutex<Vec<String>>,
    }

    impl EventPublisher for Bus {
        async fn publish(&self, entries: &[EventEntry]) -> PublishReport {
            let mut report = PublishReport {
                calls: 1,
                ..Default::default()
            };
            for (index, e) in entries.iter().enumerate() {
                if self.down.load(Ordering::SeqCst) {
                    report.failed.push(FailedEntry {
                        index,
                        cause: "down".into(),
                    });
                } else if let Ok(mut t) = self.taken.lock() {
                    t.push(e.id.clone());
                }
            }
            report
        }
    }

    fn entry(id: &str) -> EventEntry {
        EventEntry {
            id: id.into(),
            detail_type: DetailType::AuthorizerMessage,
            detail: format!("{{\"id\":\"{id}\"}}"),
        }
    }

    #[tokio::test]
    async fn retry_is_recalled_and_concurrent_copy_keeps_the_first_answer() {
        let store = MemoryEventRecords::new();
        let bus = Bus::default();
        assert_eq!(recall(&store, "e1").await.unwrap(), None);
        let memo = ReplyMemo::Reply {
            xml: "<xml/>".into(),
        };
        let d = deliver(&store, &bus, &entry("e1"), memo.clone(), 10)
            .await
            .unwrap();
        assert!(d.published && !d.deferred && !d.duplicate);
        assert_eq!(recall(&store, "e1").await.unwrap(), Some(memo.clone()));
        // A concurrent delivery that missed the record: its own answer loses.
        let d = deliver(&store, &bus, &entry("e1"), ReplyMemo::Success, 11)
            .await
            .unwrap();
        assert!(d.duplicate);
        assert_eq!(d.answer, memo);
    }

    #[tokio::test]
    async fn bus_down_then_back_every_event_once_swept() {
        let store = MemoryEventRecords::new();
        let bus = Bus::default();
        bus.down.store(true, Ordering::SeqCst);
        for i in 0..5 {
            let d = deliver(
                &store,
                &bus,
                &entry(&format!("e{i}")),
                ReplyMemo::Success,
                100 + i,
            )
            .await
            .unwrap();
            assert!(d.deferred && !d.published);
        }
        let r = sweep(&store, &bus, 200, 1000).await.unwrap();
        assert_eq!((r.republished, r.failed, r.remaining), (0, 5, true));
        assert_eq!(r.oldest_age_secs, 100);
        bus.down.store(false, Ordering::SeqCst);
        let r = sweep(&store, &bus, 300, 1000).await.unwrap();
        assert_eq!((r.republished, r.failed, r.remaining), (5, 0, false));
        let again = sweep(&store, &bus, 400, 1000).await.unwrap();
        assert_eq!(again, SweepReport::default());
        let taken = bus.taken.lock().unwrap().clone();
        assert_eq!(taken, vec!["e0", "e1", "e2", "e3", "e4"]);
    }

    #[tokio::test]
    async fn publish_or_defer_keeps_only_the_refused() {
        let store = MemoryEventRecords::new();
        let bus = Bus::default();
        assert_eq!(
            publish_or_defer(&store, &bus, &[entry("a")], 1)
                .await
                .unwrap(),
            0
        );
        bus.down.store(true, Ordering::SeqCst);
        assert_eq!(
            publish_or_defer(&store, &bus, &[entry("b"), entry("c")], 2)
                .await
                .unwrap(),
            2
        );
        assert_eq!(store.outbox(10).await.unwrap().len(), 2);
    }
}
