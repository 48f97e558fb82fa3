//! The scheduled refresher (EventBridge, every 5 minutes). See `wxopen::refresher`.

use lambda_runtime::{Error, LambdaEvent};
use wxopen::app::Deps;
use wxopen::clock::Clock;
use wxopen::clock::SystemClock;
use wxopen::refresher::{self, RefreshReport, RefreshSettings};
use wxopen::runtime::{FromRuntime, Runtime};
use wxopen::secrets::CredentialsProvider;
use wxopen::store::DynamoStore;
use wxopen::store::TokenServiceStore;

pub struct App<S, C, K> {
    pub deps: Deps<S, C, K>,
    pub settings: RefreshSettings,
}

impl<C> FromRuntime<C> for App<DynamoStore, C, SystemClock> {
    fn from_runtime(rt: Runtime<C>) -> Self {
        Self {
            settings: RefreshSettings::from_config(&rt.config),
            deps: rt.into_deps(),
        }
    }
}

/// One run. The event's content is not needed (any schedule event starts a run). Metrics go to
/// stdout as CloudWatch embedded-metric-format lines; the report is the result.
pub async fn handle<S, C, K>(
    app: &App<S, C, K>,
    _event: LambdaEvent<serde_json::Value>,
) -> Result<RefreshReport, Error>
where
    S: TokenServiceStore,
    C: CredentialsProvider,
    K: Clock,
{
    let report = run(app).await;
    for line in refresher::emf_lines(&report, app.deps.clock.now().saturating_mul(1000)) {
        println!("{line}");
    }
    Ok(report)
}

/// The run itself, without the Lambda event (tests, benchmarks).
pub async fn run<S, C, K>(app: &App<S, C, K>) -> RefreshReport
where
    S: TokenServiceStore,
    C: CredentialsProvider,
    K: Clock,
{
    let svc = app.deps.tokens();
    let report = refresher::run(&svc, &app.settings).await;
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
