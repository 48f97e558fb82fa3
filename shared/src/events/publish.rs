//! Publishing: the `EventPublisher` port and its EventBridge adapter.
//!
//! PutEvents takes at most 10 entries per call, each entry under 256 KB (Source + DetailType +
//! Detail, UTF-8 bytes), and the request under 256 KB in total. Failures are per entry: the
//! call can succeed with some entries refused (throttled, internal failure), or fail as a whole.
//! The port never errors; it says which entries did not get through, and the caller defers
//! those to the outbox.

use std::future::Future;
use std::ops::Range;
use std::time::Duration;

use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use serde::{Deserialize, Serialize};

use super::detail::{DetailType, Event, EventError, SOURCE};
use crate::config::Config;

/// EventBridge's limit for one entry and for one request.
pub const MAX_ENTRY_BYTES: usize = 256 * 1024;
/// PutEvents' limit of entries per call.
pub const MAX_BATCH_ENTRIES: usize = 10;

/// One event ready to be put on the bus.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventEntry {
    /// `detail.id`, to track the entry (also the outbox key).
    pub id: String,
    pub detail_type: DetailType,
    /// The detail as JSON.
    pub detail: String,
}

/// The detail holds message text: ids and sizes only.
impl std::fmt::Debug for EventEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventEntry")
            .field("id", &self.id)
            .field("detail_type", &self.detail_type)
            .field("detail_bytes", &self.detail.len())
            .finish()
    }
}

impl EventEntry {
    /// The entry of an event, its detail truncated to fit one entry.
    pub fn from_event(event: &Event) -> Result<Self, EventError> {
        let overhead = SOURCE.len() + event.detail_type.as_str().len();
        Ok(Self {
            id: event.detail.id.clone(),
            detail_type: event.detail_type,
            detail: event.detail_json(MAX_ENTRY_BYTES - 1 - overhead)?,
        })
    }

    /// The size EventBridge counts for the entry.
    pub fn size(&self) -> usize {
        SOURCE.len() + self.detail_type.as_str().len() + self.detail.len()
    }
}

/// An entry that did not get through, by its index in the published slice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailedEntry {
    pub index: usize,
    /// EventBridge's error code, or what failed locally (`request_failed`, `too_large`).
    pub cause: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PublishReport {
    pub failed: Vec<FailedEntry>,
    /// PutEvents calls made.
    pub calls: u32,
}

impl PublishReport {
    pub fn all_published(&self) -> bool {
        self.failed.is_empty()
    }

    pub fn failed_index(&self, index: usize) -> bool {
        self.failed.iter().any(|f| f.index == index)
    }
}

/// Puts events on the bus.
pub trait EventPublisher: Send + Sync {
    fn publish(&self, entries: &[EventEntry]) -> impl Future<Output = PublishReport> + Send;
}

/// Splits entries into PutEvents calls: at most 10 entries and 256 KB per call, in order.
/// Entries that are too large on their own are left out (the caller reports them).
pub fn batches(entries: &[EventEntry]) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let mut start = 0usize;
    let mut bytes = 0usize;
    for (i, e) in entries.iter().enumerate() {
        let size = e.size();
        if size >= MAX_ENTRY_BYTES {
            if start < i {
                out.push(start..i);
            }
            start = i + 1;
            bytes = 0;
            continue;
        }
        if i - start == MAX_BATCH_ENTRIES || bytes + size >= MAX_ENTRY_BYTES {
            out.push(start..i);
            start = i;
            bytes = 0;
        }
        bytes += size;
    }
    if start < entries.len() {
        out.push(start..entries.len());
    }
    out
}

/// Longest a `PutEvents` call may take on the answer path (both attempts together): an
/// EventBridge outage costs at most this much of WeChat's 5 s, then the event goes to the outbox.
pub const PUBLISH_TIMEOUT: Duration = Duration::from_millis(1000);

/// The bus settings as deployed (`EVENT_BUS_NAME`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventSettings {
    pub bus_name: String,
    pub publish_timeout: Duration,
}

impl EventSettings {
    pub fn from_config(config: &Config) -> Self {
        Self {
            bus_name: config.event_bus_name.clone(),
            publish_timeout: PUBLISH_TIMEOUT,
        }
    }
}

/// The EventBridge adapter: one custom bus.
#[derive(Debug, Clone)]
pub struct EventBridgePublisher {
    client: aws_sdk_eventbridge::Client,
    bus_name: String,
}

impl EventBridgePublisher {
    pub fn new(client: aws_sdk_eventbridge::Client, bus_name: impl Into<String>) -> Self {
        Self {
            client,
            bus_name: bus_name.into(),
        }
    }

    /// The publisher of a deployment: its own EventBridge client with a short operation timeout
    /// and two attempts, so an outage defers events instead of eating WeChat's deadline.
    pub fn from_settings(sdk: &aws_config::SdkConfig, settings: &EventSettings) -> Self {
        let config = aws_sdk_eventbridge::config::Builder::from(sdk)
            .timeout_config(
                aws_config::timeout::TimeoutConfig::builder()
                    .operation_timeout(settings.publish_timeout)
                    .build(),
            )
            .retry_config(aws_config::retry::RetryConfig::standard().with_max_attempts(2))
            .build();
        Self::new(
            aws_sdk_eventbridge::Client::from_conf(config),
            settings.bus_name.clone(),
        )
    }

    pub fn bus_name(&self) -> &str {
        &self.bus_name
    }

    async fn put(&self, entries: &[EventEntry], offset: usize, report: &mut PublishReport) {
        let request = entries.iter().map(|e| {
            PutEventsRequestEntry::builder()
                .event_bus_name(&self.bus_name)
                .source(SOURCE)
                .detail_type(e.detail_type.as_str())
                .detail(&e.detail)
                .build()
        });
        report.calls += 1;
        let fail_all = |report: &mut PublishReport, cause: &str| {
            for i in 0..entries.len() {
                report.failed.push(FailedEntry {
                    index: offset + i,
                    cause: cause.to_string(),
                });
            }
        };
        match self
            .client
            .put_events()
            .set_entries(Some(request.collect()))
            .send()
            .await
        {
            Ok(out) => {
                let results = out.entries();
                for i in 0..entries.len() {
                    let cause = match results.get(i) {
                        Some(r) if r.event_id().is_some() && r.error_code().is_none() => continue,
                        Some(r) => r.error_code().unwrap_or("unknown").to_string(),
                        None => "missing_result".to_string(),
                    };
                    report.failed.push(FailedEntry {
                        index: offset + i,
                        cause,
                    });
                }
            }
            Err(e) => {
                let code = aws_sdk_eventbridge::error::ProvideErrorMetadata::code(&e)
                    .unwrap_or("request_failed")
                    .to_string();
                tracing::warn!(error = %e, code = %code, entries = entries.len(), "PutEvents failed");
                fail_all(report, &code);
            }
        }
    }
}

impl EventPublisher for EventBridgePublisher {
    async fn publish(&self, entries: &[EventEntry]) -> PublishReport {
        let mut report = PublishReport::default();
        for (i, e) in entries.iter().enumerate() {
            if e.size() >= MAX_ENTRY_BYTES {
                report.failed.push(FailedEntry {
                    index: i,
                    cause: "too_large".into(),
                });
            }
        }
        for range in batches(entries) {
            let start = range.start;
            if let Some(slice) = entries.get(range) {
                self.put(slice, start, &mut report).await;
            }
        }
        report.failed.sort_by_key(|f| f.index);
        if !report.failed.is_empty() {
            tracing::warn!(
                failed = report.failed.len(),
                of = entries.len(),
                "some events were not published"
            );
        }
        report
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(detail_bytes: usize) -> EventEntry {
        EventEntry {
            id: "id".into(),
            detail_type: DetailType::AuthorizerMessage,
            detail: "x".repeat(detail_bytes),
        }
    }

    #[test]
    fn batches_hold_ten_entries_and_256_kb() {
        let small: Vec<_> = (0..25).map(|_| entry(100)).collect();
        assert_eq!(batches(&small), vec![0..10, 10..20, 20..25]);
        // Three 100 KB entries: two fit in one request, the third starts another.
        let big: Vec<_> = (0..3).map(|_| entry(100 * 1024)).collect();
        assert_eq!(batches(&big), vec![0..2, 2..3]);
        // An entry too large alone is skipped, the others still go.
        let mixed = vec![entry(10), entry(MAX_ENTRY_BYTES), entry(10)];
        assert_eq!(batches(&mixed), vec![0..1, 2..3]);
        assert!(batches(&[]).is_empty());
        let overhead = SOURCE.len() + "authorizer.message".len();
        assert_eq!(entry(5).size(), 5 + overhead);
    }

    #[test]
    fn debug_shows_no_detail() {
        let mut e = entry(0);
        e.detail = "{\"fields\":{\"Content\":\"private\"}}".into();
        assert!(!format!("{e:?}").contains("private"));
    }
}
