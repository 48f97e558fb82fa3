//! Fleet releases on the local stack: the release queue on moto (with the bus rule that sends
//! `weapp_audit_*` events to it, as template.yaml's `ReleaseAuditRule`), and the local driver
//! that does what Lambda's SQS event source does for `release-worker`: receive a batch, hand it
//! to the worker, delete what succeeded, leave the rest to come back after the visibility
//! timeout. And the seeding every fleet-release test, the bench and the demo share: sandbox mini
//! programs imported as authorized, a template, the job.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};
use wxopen::clock::{Clock, SystemClock};
use wxopen::events::{EventPublisher, SOURCE};
use wxopen::model::{AccountKind, AuthorizationGrant, AuthorizerProfileRecord, JobState, NewToken};
use wxopen::queue::{QueueError, SqsQueue, WorkQueue};
use wxopen::releases::StepHook;
use wxopen::secrets::CredentialsProvider;
use wxopen::store::{DynamoStore, ReleaseStore, TokenServiceStore};

use crate::bus::{create_queue, route};
use crate::sandbox::SandboxHandle;
use crate::stack::Stack;

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
        let (url, arn) = create_queue(&sqs, queue_name, Some(visibility_secs)).await?;
        let events = aws_sdk_eventbridge::Client::new(config);
        route(
            &events,
            bus_name,
            &format!("{queue_name}-audits"),
            &audit_pattern(),
            ("release-queue", &arn),
        )
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

// ---------------------------------------------------------------------------------------------
// Seeding a fleet release: mini programs, a template, the job.

/// How [`seed_mini_programs`] writes the records.
#[derive(Debug, Clone, Copy, Default)]
pub struct Seed<'a> {
    /// Positions (in creation order) whose record lacks permission set 18, code management:
    /// a job skips them.
    pub without_18: &'a [usize],
    /// The `customer_ref` every record gets (none by default).
    pub customer: Option<&'a str>,
}

/// The store's records for the mini programs in a `POST /sandbox/merchants/bulk` answer:
/// authorized, their tokens expired (the first call refreshes through the sandbox), each with
/// the sandbox's own `gh_` user name (pushes are addressed to it, `ToUserName`, and the message
/// URL refuses one for another account); `without_18` as in [`Seed`].
pub fn bulk_grants(
    list: &Value,
    without_18: &[usize],
    now: i64,
) -> Result<Vec<AuthorizationGrant>, String> {
    let field = |m: &Value, k: &str| {
        m[k].as_str()
            .map(str::to_string)
            .ok_or_else(|| format!("merchants/bulk: no {k} in {m}"))
    };
    let list = list
        .as_array()
        .ok_or_else(|| format!("merchants/bulk answered {list}"))?;
    let mut grants = Vec::with_capacity(list.len());
    for (i, m) in list.iter().enumerate() {
        let mut func_info: Vec<u32> = serde_json::from_value(m["func_info"].clone())
            .map_err(|e| format!("merchants/bulk func_info: {e}"))?;
        if without_18.contains(&i) {
            func_info.retain(|f| *f != 18);
        }
        grants.push(AuthorizationGrant {
            appid: field(m, "appid")?,
            event_time: Some(now),
            func_info,
            token: NewToken {
                access_token: "seeded-expired".to_string().into(),
                expires_at: now - 1,
                refresh_token: Some(field(m, "refresh_token")?.into()),
            },
            profile: Some(AuthorizerProfileRecord {
                kind: AccountKind::MiniProgram,
                nick_name: format!("shop {i}"),
                user_name: field(m, "user_name")?,
                principal_name: None,
                service_type: 0,
                verify_type: 0,
                head_img: None,
            }),
            now,
        });
    }
    Ok(grants)
}

/// Creates `n` sandbox mini programs (`POST /sandbox/merchants/bulk`) and imports them into
/// `store` as authorized ([`bulk_grants`]), with `seed`'s customer; their appids, in order.
pub async fn seed_mini_programs(
    sandbox: &SandboxHandle,
    store: &DynamoStore,
    n: usize,
    seed: Seed<'_>,
) -> Result<Vec<String>, String> {
    let url = format!("{}/sandbox/merchants/bulk", sandbox.base_url());
    let resp = reqwest::Client::new()
        .post(&url)
        .json(&json!({"count": n, "kind": "mini_program"}))
        .send()
        .await
        .map_err(|e| format!("{url}: {e}"))?;
    let status = resp.status().as_u16();
    let text = resp.text().await.map_err(|e| format!("{url}: {e}"))?;
    if status != 200 {
        return Err(format!("merchants/bulk: {status} {text}"));
    }
    let list: Value = serde_json::from_str(&text).map_err(|e| format!("merchants/bulk: {e}"))?;
    let grants = bulk_grants(&list, seed.without_18, SystemClock.now())?;
    if grants.len() != n {
        return Err(format!("merchants/bulk gave {} of {n}", grants.len()));
    }
    store
        .import_authorizers(&grants)
        .await
        .map_err(|e| format!("import: {e}"))?;
    let appids: Vec<String> = grants.into_iter().map(|g| g.appid).collect();
    if let Some(c) = seed.customer {
        set_customer_ref(store, &appids, c).await?;
    }
    Ok(appids)
}

/// Writes `customer` as the `customer_ref` of each authorizer record (as an authorization
/// link of that customer would have).
pub async fn set_customer_ref<A: AsRef<str>>(
    store: &DynamoStore,
    appids: &[A],
    customer: &str,
) -> Result<(), String> {
    use aws_sdk_dynamodb::types::AttributeValue;
    for a in appids {
        store
            .client()
            .update_item()
            .table_name(store.table())
            .key(
                "pk",
                AttributeValue::S(format!("AUTHORIZER#{}", a.as_ref())),
            )
            .key("sk", AttributeValue::S("AUTHORIZER".into()))
            .update_expression("SET customer_ref = :c")
            .expression_attribute_values(":c", AttributeValue::S(customer.into()))
            .send()
            .await
            .map_err(|e| format!("customer_ref of {}: {e}", a.as_ref()))?;
    }
    Ok(())
}

/// The version every seeded release uses.
pub const USER_VERSION: &str = "2.0.0";

/// A template in the sandbox's library: a draft of [`USER_VERSION`], then `addtotemplate` with
/// the component token; its `template_id`.
pub async fn add_template(stack: &Stack) -> Result<i64, String> {
    library_template(stack, USER_VERSION).await
}

/// A template in the sandbox's library for a fleet release: a draft uploaded by the developer
/// tool (`user_version`), added with `addtotemplate` and the component token; its template id.
pub async fn library_template(stack: &Stack, user_version: &str) -> Result<i64, String> {
    let (s, draft) = stack
        .control(
            Method::POST,
            "code/drafts",
            json!({"user_version": user_version, "user_desc": "d"}),
        )
        .await;
    let draft_id = draft["draft_id"]
        .as_i64()
        .ok_or_else(|| format!("code/drafts: {s} {draft}"))?;
    let deps = stack.deps();
    deps.tokens()
        .with_component_token(|t| {
            let w = deps.wechat.clone();
            async move { w.add_to_template(&t, draft_id, 0).await }
        })
        .await
        .map_err(|e| format!("addtotemplate: {e}"))?;
    let (_, code) = stack.control(Method::GET, "code", json!({})).await;
    code["templates"]
        .as_array()
        .and_then(|ts| ts.iter().find(|t| t["draft_id"] == draft_id))
        .and_then(|t| t["template_id"].as_i64())
        .ok_or_else(|| format!("template of draft {draft_id} not listed: {code}"))
}

/// A `POST /releases` body of `template_id` over `targets` (concurrency 25).
pub fn job_body(template_id: i64, targets: Value) -> Value {
    json!({
        "template_id": template_id,
        "user_version": USER_VERSION,
        "user_desc": "spring",
        "ext_json": {"extAppid": "{{appid}}", "ext": {"shop": "{{customer_ref}}"}},
        "item_list": [{"address": "pages/index/index", "tag": "tools", "first_class": "工具", "second_class": "效率", "first_id": 287, "second_id": 616, "title": "home"}],
        "targets": targets,
        "concurrency": 25,
    })
}

/// `POST /releases` through the gateway, which must answer 201: the job's id and the answer.
pub async fn create_job(stack: &Stack, body: Value) -> Result<(String, Value), String> {
    let (s, created) = stack.api(Method::POST, "/releases", Some(body)).await;
    if s != 201 {
        return Err(format!("POST /releases: {s} {created}"));
    }
    let id = created["id"]
        .as_str()
        .ok_or_else(|| format!("POST /releases: no id in {created}"))?
        .to_string();
    Ok((id, created))
}

/// The job is `done` (a store error reads as not done).
pub async fn job_done(store: &DynamoStore, id: &str) -> bool {
    matches!(store.get_job(id).await, Ok(Some(j)) if j.state == JobState::Done)
}
