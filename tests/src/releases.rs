//! Fleet releases on the local stack: the release queue on moto (with the bus rule that sends
//! `weapp_audit_*` events to it, as template.yaml's `ReleaseAuditRule`), and the local driver
//! that does what Lambda's SQS event source does for `release-worker`: receive a batch, hand it
//! to the worker, delete what succeeded, leave the rest to come back after the visibility
//! timeout.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;
use wxopen::clock::Clock;
use wxopen::events::{EventPublisher, SOURCE};
use wxopen::queue::{QueueError, SqsQueue, WorkQueue};
use wxopen::releases::StepHook;
use wxopen::secrets::CredentialsProvider;
use wxopen::store::{ReleaseStore, TokenServiceStore};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The release queue and its bus rule.
#[derive(Debug, Clone)]
pub struct ReleaseQueue {
    pub sqs: aws_sdk_sqs::Client,
    pub url: String,
    pub arn: String,
    /// How long a received message stays invisible (the template's 180 s is long for tests).
    pub visibility_secs: i32,
}

/// The rule's pattern (the same as template.yaml's `ReleaseAuditRule`).
pub fn audit_pattern() -> serde_json::Value {
    json!({
        "source": [SOURCE],
        "detail-type": ["authorizer.event"],
        "detail": {"event": ["weapp_audit_success", "weapp_audit_fail", "weapp_audit_delay"]},
    })
}

impl ReleaseQueue {
    /// Creates the queue and, on `bus_name`, the rule sending audit events to it.
    pub async fn create(
        config: &aws_config::SdkConfig,
        bus_name: &str,
        queue_name: &str,
        visibility_secs: i32,
    ) -> Result<Self, BoxError> {
        let sqs = aws_sdk_sqs::Client::new(config);
        let url = sqs
            .create_queue()
            .queue_name(queue_name)
            .attributes(
                aws_sdk_sqs::types::QueueAttributeName::VisibilityTimeout,
                visibility_secs.to_string(),
            )
            .send()
            .await?
            .queue_url
            .ok_or("no queue url")?;
        let arn = sqs
            .get_queue_attributes()
            .queue_url(&url)
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
            .send()
            .await?
            .attributes
            .and_then(|a| {
                a.get(&aws_sdk_sqs::types::QueueAttributeName::QueueArn)
                    .cloned()
            })
            .ok_or("no queue arn")?;
        let events = aws_sdk_eventbridge::Client::new(config);
        let rule = format!("{queue_name}-audits");
        events
            .put_rule()
            .name(&rule)
            .event_bus_name(bus_name)
            .event_pattern(audit_pattern().to_string())
            .send()
            .await?;
        events
            .put_targets()
            .rule(&rule)
            .event_bus_name(bus_name)
            .targets(
                aws_sdk_eventbridge::types::Target::builder()
                    .id("release-queue")
                    .arn(&arn)
                    .build()?,
            )
            .send()
            .await?;
        Ok(Self {
            sqs,
            url,
            arn,
            visibility_secs,
        })
    }

    pub fn queue(&self) -> SqsQueue {
        SqsQueue::new(self.sqs.clone(), &self.url)
    }

    /// Messages on the queue (visible, in flight and delayed), as SQS approximates them.
    pub async fn depth(&self) -> Result<u64, BoxError> {
        use aws_sdk_sqs::types::QueueAttributeName as A;
        let out = self
            .sqs
            .get_queue_attributes()
            .queue_url(&self.url)
            .attribute_names(A::ApproximateNumberOfMessages)
            .attribute_names(A::ApproximateNumberOfMessagesNotVisible)
            .attribute_names(A::ApproximateNumberOfMessagesDelayed)
            .send()
            .await?;
        let attrs = out.attributes.unwrap_or_default();
        Ok([
            A::ApproximateNumberOfMessages,
            A::ApproximateNumberOfMessagesNotVisible,
            A::ApproximateNumberOfMessagesDelayed,
        ]
        .iter()
        .filter_map(|k| attrs.get(k).and_then(|v| v.parse::<u64>().ok()))
        .sum())
    }
}

/// SQS requests made, by kind (the bench's "SQS requests per target").
#[derive(Debug, Default)]
pub struct SqsCounts {
    pub send: AtomicU64,
    pub receive: AtomicU64,
    pub delete: AtomicU64,
}

impl SqsCounts {
    pub fn total(&self) -> u64 {
        self.send.load(Ordering::Relaxed)
            + self.receive.load(Ordering::Relaxed)
            + self.delete.load(Ordering::Relaxed)
    }
}

/// A work queue that counts its SendMessageBatch requests.
#[derive(Debug, Clone)]
pub struct CountedQueue {
    pub inner: SqsQueue,
    pub counts: Arc<SqsCounts>,
}

impl WorkQueue for CountedQueue {
    async fn send(&self, bodies: &[String], delay_secs: u32) -> Result<(), QueueError> {
        let calls = bodies.len().div_ceil(wxopen::queue::MAX_BATCH) as u64;
        self.counts.send.fetch_add(calls, Ordering::Relaxed);
        self.inner.send(bodies, delay_secs).await
    }
}

/// What one receive did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Polled {
    pub received: usize,
    pub failed: usize,
}

/// Lambda's SQS event source, once: a batch of up to 10 (long poll of `wait_secs`), the worker,
/// then a delete of every message it did not report failed.
pub async fn poll_once<S, C, K, Q, P, H>(
    queue: &ReleaseQueue,
    app: &release_worker::App<S, C, K, Q, P, H>,
    wait_secs: i32,
    counts: Option<&SqsCounts>,
) -> Result<Polled, BoxError>
where
    S: TokenServiceStore + ReleaseStore,
    C: CredentialsProvider,
    K: Clock,
    Q: WorkQueue,
    P: EventPublisher,
    H: StepHook,
{
    let got = queue
        .sqs
        .receive_message()
        .queue_url(&queue.url)
        .max_number_of_messages(10)
        .wait_time_seconds(wait_secs)
        .visibility_timeout(queue.visibility_secs)
        .send()
        .await?;
    if let Some(c) = counts {
        c.receive.fetch_add(1, Ordering::Relaxed);
    }
    let messages = got.messages.unwrap_or_default();
    let pairs: Vec<(String, String)> = messages
        .iter()
        .map(|m| {
            (
                m.message_id().unwrap_or_default().to_string(),
                m.body().unwrap_or_default().to_string(),
            )
        })
        .collect();
    if pairs.is_empty() {
        return Ok(Polled::default());
    }
    let failed = release_worker::process(app, &pairs).await;
    let done: Vec<_> = messages
        .iter()
        .filter(|m| !failed.iter().any(|f| Some(f.as_str()) == m.message_id()))
        .collect();
    if !done.is_empty() {
        let mut req = queue.sqs.delete_message_batch().queue_url(&queue.url);
        for (i, m) in done.iter().enumerate() {
            req = req.entries(
                aws_sdk_sqs::types::DeleteMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .receipt_handle(m.receipt_handle().unwrap_or_default())
                    .build()?,
            );
        }
        req.send().await?;
        if let Some(c) = counts {
            c.delete.fetch_add(1, Ordering::Relaxed);
        }
    }
    Ok(Polled {
        received: pairs.len(),
        failed: failed.len(),
    })
}

/// Drives the queue until `done` says so or `within` passes; `true` when done.
pub async fn drive_until<S, C, K, Q, P, H, F, Fut>(
    queue: &ReleaseQueue,
    app: &release_worker::App<S, C, K, Q, P, H>,
    counts: Option<&SqsCounts>,
    within: Duration,
    done: F,
) -> Result<bool, BoxError>
where
    S: TokenServiceStore + ReleaseStore,
    C: CredentialsProvider,
    K: Clock,
    Q: WorkQueue,
    P: EventPublisher,
    H: StepHook,
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if done().await {
            return Ok(true);
        }
        poll_once(queue, app, 1, counts).await?;
    }
    Ok(done().await)
}

/// The driver as a background task (`make dev`, `make demo`): polls forever.
pub fn spawn_driver<S, C, K, Q, P, H>(
    queue: ReleaseQueue,
    app: Arc<release_worker::App<S, C, K, Q, P, H>>,
) -> tokio::task::JoinHandle<()>
where
    S: TokenServiceStore + ReleaseStore + 'static,
    C: CredentialsProvider + 'static,
    K: Clock + 'static,
    Q: WorkQueue + 'static,
    P: EventPublisher + 'static,
    H: StepHook + 'static,
{
    tokio::spawn(async move {
        loop {
            if let Err(e) = poll_once(&queue, &app, 5, None).await {
                tracing::warn!(error = %e, "release queue poll failed");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    })
}

/// A template in the sandbox's library for a fleet release: a draft uploaded by the developer
/// tool (`user_version`), added with `addtotemplate` and the component token; its template id.
pub async fn library_template(
    stack: &crate::stack::Stack,
    user_version: &str,
) -> Result<i64, String> {
    let (s, draft) = stack
        .control(
            reqwest::Method::POST,
            "code/drafts",
            json!({"user_version": user_version, "user_desc": "fleet"}),
        )
        .await;
    let draft_id = draft["draft_id"]
        .as_i64()
        .ok_or(format!("draft: {s} {draft}"))?;
    let deps = stack.deps();
    deps.tokens()
        .with_component_token(|t| {
            let w = deps.wechat.clone();
            async move { w.add_to_template(&t, draft_id, 0).await }
        })
        .await
        .map_err(|e| format!("addtotemplate: {e}"))?;
    let (_, code) = stack.control(reqwest::Method::GET, "code", json!({})).await;
    code["templates"]
        .as_array()
        .and_then(|ts| ts.iter().find(|t| t["draft_id"] == draft_id))
        .and_then(|t| t["template_id"].as_i64())
        .ok_or_else(|| format!("no template for draft {draft_id}"))
}
