//! The scheduled refresher (EventBridge, every 5 minutes). See `wxopen::refresher`.

use std::time::{Duration, UNIX_EPOCH};

use lambda_runtime::{Error, LambdaEvent};
use wxopen::app::Deps;
use wxopen::clock::Clock;
use wxopen::clock::SystemClock;
use wxopen::events::outbox::{self, SweepReport};
use wxopen::events::{EventBridgePublisher, EventPublisher, metrics};
use wxopen::refresher::{self, RefreshReport, RefreshSettings};
use wxopen::runtime::{FromRuntime, Runtime};
use wxopen::secrets::CredentialsProvider;
use wxopen::store::DynamoStore;
use wxopen::store::TokenServiceStore;
use wxopen::store::outbox::EventRecordStore;

pub struct App<S, C, K, P = EventBridgePublisher> {
    pub deps: Deps<S, C, K>,
    pub settings: RefreshSettings,
    /// Where the outbox's events are republished.
    pub publisher: P,
}

impl<C> FromRuntime<C> for App<DynamoStore, C, SystemClock> {
    fn from_runtime(rt: Runtime<C>) -> Self {
        Self {
            settings: RefreshSettings::from_config(&rt.config),
            publisher: rt.event_publisher(),
            deps: rt.into_deps(),
        }
    }
}

/// One run. The event's content is not needed (any schedule event starts a run). Metrics go to
/// stdout as CloudWatch embedded-metric-format lines; the report is the result.
pub async fn handle<S, C, K, P>(
    app: &App<S, C, K, P>,
    event: LambdaEvent<serde_json::Value>,
) -> Result<RefreshReport, Error>
where
    S: TokenServiceStore + EventRecordStore,
    C: CredentialsProvider,
    K: Clock,
    P: EventPublisher,
{
    let deadline = UNIX_EPOCH + Duration::from_millis(event.context.deadline);
    let (report, swept) = run_and_publish(app, &app.settings.until(deadline)).await;
    let now_ms = app.deps.clock.now().saturating_mul(1000);
    for line in refresher::emf_lines(&report, now_ms) {
        println!("{line}");
    }
    println!("{}", metrics::sweep_line("token-refresh", &swept, now_ms));
    Ok(report)
}

/// A whole run as the schedule makes it: the refresh, its `authorization.changed` events
/// published, then the outbox swept (events refused now or earlier).
pub async fn run_and_publish<S, C, K, P>(
    app: &App<S, C, K, P>,
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
pub async fn publish_changes<S, C, K, P>(app: &App<S, C, K, P>, report: &RefreshReport)
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
pub async fn sweep<S, C, K, P>(app: &App<S, C, K, P>) -> SweepReport
where
    S: EventRecordStore,
    K: Clock,
    P: EventPublisher,
{
    refresher::sweep_outbox(&app.deps.store, &app.publisher, app.deps.clock.now()).await
}

/// The run itself, without the Lambda event (tests, benchmarks).
pub async fn run<S, C, K, P>(app: &App<S, C, K, P>) -> RefreshReport
where
    S: TokenServiceStore,
    C: CredentialsProvider,
    K: Clock,
{
    run_with(app, &app.settings).await
}

/// [`run`] with other settings (the invocation's deadline).
pub async fn run_with<S, C, K, P>(
    app: &App<S, C, K, P>,
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
