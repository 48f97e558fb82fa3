//! The scheduled refresher (EventBridge, every 5 minutes). See `wxopen::refresher`.

use std::time::{Duration, UNIX_EPOCH};

use lambda_runtime::{Error, LambdaEvent};
use wxopen::app::Deps;
use wxopen::clock::Clock;
use wxopen::clock::SystemClock;
use wxopen::events::outbox::{self, SweepReport};
use wxopen::events::{EventBridgePublisher, EventPublisher, metrics};
use wxopen::queue::{SqsQueue, WorkQueue};
use wxopen::refresher::{self, RefreshReport, RefreshSettings};
use wxopen::releases::engine::ScheduledReport;
use wxopen::releases::{Engine, NoHook, ReleaseSettings, TokenCalls};
use wxopen::runtime::{FromRuntime, Runtime};
use wxopen::secrets::CredentialsProvider;
use wxopen::store::DynamoStore;
use wxopen::store::ReleaseStore;
use wxopen::store::TokenServiceStore;
use wxopen::store::outbox::EventRecordStore;

pub struct App<S, C, K, P = EventBridgePublisher, Q = SqsQueue> {
    pub deps: Deps<S, C, K>,
    pub settings: RefreshSettings,
    /// Where the outbox's events are republished (and `release.target` events go).
    pub publisher: P,
    /// Fleet releases: the work queue (resumed quota-parked targets) and the engine settings
    /// (when an audit's push is overdue).
    pub release_queue: Q,
    pub release_settings: ReleaseSettings,
}

impl<C> FromRuntime<C> for App<DynamoStore, C, SystemClock> {
    fn from_runtime(rt: Runtime<C>) -> Self {
        Self {
            settings: RefreshSettings::from_config(&rt.config),
            publisher: rt.event_publisher(),
            release_queue: SqsQueue::new(
                aws_sdk_sqs::Client::new(&rt.aws),
                rt.config.release_queue_url.clone().unwrap_or_default(),
            ),
            release_settings: ReleaseSettings::from_config(&rt.config),
            deps: rt.into_deps(),
        }
    }
}

/// One run. The event's content is not needed (any schedule event starts a run). Metrics go to
/// stdout as CloudWatch embedded-metric-format lines; the report is the result.
pub async fn handle<S, C, K, P, Q>(
    app: &App<S, C, K, P, Q>,
    event: LambdaEvent<serde_json::Value>,
) -> Result<RefreshReport, Error>
where
    S: TokenServiceStore + EventRecordStore + ReleaseStore,
    C: CredentialsProvider,
    K: Clock,
    P: EventPublisher,
    Q: WorkQueue,
{
    let deadline = UNIX_EPOCH + Duration::from_millis(event.context.deadline);
    let (report, swept) = run_and_publish(app, &app.settings.until(deadline)).await;
    let released = releases(app).await;
    tracing::info!(
        audits_polled = released.audits_polled,
        audits_settled = released.audits_settled,
        targets_resumed = released.targets_resumed,
        failures = released.failures,
        "fleet releases: scheduled part finished"
    );
    let now_ms = app.deps.clock.now().saturating_mul(1000);
    for line in refresher::emf_lines(&report, now_ms) {
        println!("{line}");
    }
    println!("{}", metrics::sweep_line("token-refresh", &swept, now_ms));
    Ok(report)
}

/// Most overdue audits polled per run (the rest next run).
pub const AUDIT_POLLS_PER_RUN: usize = 500;

/// The fleet-release part of a run: audits whose push is overdue polled (`get_auditstatus`),
/// quota-parked targets resumed when the quota is back.
pub async fn releases<S, C, K, P, Q>(app: &App<S, C, K, P, Q>) -> ScheduledReport
where
    S: TokenServiceStore + ReleaseStore,
    C: CredentialsProvider,
    K: Clock,
    P: EventPublisher,
    Q: WorkQueue,
{
    let tokens = app.deps.tokens();
    let calls = TokenCalls::new(&tokens, &app.deps.wechat);
    Engine {
        store: &app.deps.store,
        calls: &calls,
        queue: &app.release_queue,
        publisher: &app.publisher,
        clock: &app.deps.clock,
        settings: &app.release_settings,
        hook: &NoHook,
    }
    .scheduled(AUDIT_POLLS_PER_RUN)
    .await
}

/// A whole run as the schedule makes it: the refresh, its `authorization.changed` events
/// published, then the outbox swept (events refused now or earlier).
pub async fn run_and_publish<S, C, K, P, Q>(
    app: &App<S, C, K, P, Q>,
    settings: &RefreshSettings,
) -> (RefreshReport, SweepReport)
where
    S: TokenServiceStore + EventRecordStore,
    C: CredentialsProvider,
    K: Clock,
    P: EventPublisher,
{
    let report = run_with(app, settings).await;
    publish_changes(app, &report).await;
    let swept = sweep(app).await;
    (report, swept)
}

/// Publishes the run's `authorization.changed` events (batched by the publisher); what
/// EventBridge refuses goes to the outbox, which this run's sweep retries.
pub async fn publish_changes<S, C, K, P, Q>(app: &App<S, C, K, P, Q>, report: &RefreshReport)
where
    S: EventRecordStore,
    K: Clock,
    P: EventPublisher,
{
    outbox::publish_own(
        &app.deps.store,
        &app.publisher,
        &report.changes,
        app.deps.clock.now(),
    )
    .await;
}

/// The outbox sweep of a run (events EventBridge refused earlier).
pub async fn sweep<S, C, K, P, Q>(app: &App<S, C, K, P, Q>) -> SweepReport
where
    S: EventRecordStore,
    K: Clock,
    P: EventPublisher,
{
    refresher::sweep_outbox(&app.deps.store, &app.publisher, app.deps.clock.now()).await
}

/// The run itself, without the Lambda event (tests, benchmarks).
pub async fn run<S, C, K, P, Q>(app: &App<S, C, K, P, Q>) -> RefreshReport
where
    S: TokenServiceStore,
    C: CredentialsProvider,
    K: Clock,
{
    run_with(app, &app.settings).await
}

/// [`run`] with other settings (the invocation's deadline).
pub async fn run_with<S, C, K, P, Q>(
    app: &App<S, C, K, P, Q>,
    settings: &RefreshSettings,
) -> RefreshReport
where
    S: TokenServiceStore,
    C: CredentialsProvider,
    K: Clock,
{
    let svc = app.deps.tokens();
    let report = refresher::run(&svc, settings).await;
    tracing::info!(
        due = report.due,
        refreshed = report.refreshed,
        skipped = report.skipped,
        failures = report.failure_count(),
        recovered = report.recovered,
        "refresh run finished"
    );
    report
}
