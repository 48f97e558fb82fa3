//! `POST /wechat/component`: the authorization event URL (授权事件接收URL).
//!
//! Verifies, decrypts, applies and records each push, publishes every push but the ticket as
//! `component.event` (and wxopen's own state changes as `authorization.changed`), and answers
//! `success` for every accepted push (duplicates and unknown InfoTypes included). Bad input gets
//! the JSON error shape and changes nothing.

use std::time::Duration;

use lambda_http::{Body, Error, Request, Response};
use secrecy::ExposeSecret;
use wxopen::app::Deps;
use wxopen::callbacks::component::{
    ComponentPushError, PushOutcome, apply_push, authorization_changes, complete_within,
    deliver_push_event, push_event,
};
use wxopen::callbacks::fast_registration::{self, FastRegistrationError};
use wxopen::clock::Clock;
use wxopen::clock::SystemClock;
use wxopen::events::metrics::{self, MetricSink};
use wxopen::events::{EventBridgePublisher, EventPublisher};
use wxopen::http::{ApiError, open_push, rejected_plaintext, wechat_success};
use wxopen::runtime::{FromRuntime, Runtime};
use wxopen::secrets::CredentialsProvider;
use wxopen::store::ComponentEventStore;
use wxopen::store::DynamoStore;
use wxopen::xml::{ComponentPush, FastRegisterNotice};

/// The ports this function needs.
pub struct App<S, C, K, P = EventBridgePublisher> {
    pub deps: Deps<S, C, K>,
    pub push_window: Duration,
    /// Time allowed to complete an authorization before answering WeChat (which waits 5 s).
    pub completion_budget: Duration,
    /// Where `component.event` and `authorization.changed` are published.
    pub publisher: P,
    /// Where the EMF metric lines go (stdout when deployed).
    pub metrics: MetricSink,
}

impl<C> FromRuntime<C> for App<DynamoStore, C, SystemClock> {
    fn from_runtime(rt: Runtime<C>) -> Self {
        Self {
            push_window: rt.config.push_window,
            completion_budget: DEFAULT_COMPLETION_BUDGET,
            publisher: rt.event_publisher(),
            metrics: rt.metrics.clone(),
            deps: rt.into_deps(),
        }
    }
}

/// Leaves room within WeChat's 5 s for verification, storage, publishing and the answer.
pub const DEFAULT_COMPLETION_BUDGET: Duration = Duration::from_millis(3000);

pub async fn handle<S, C, K, P>(
    app: &App<S, C, K, P>,
    req: Request,
) -> Result<Response<Body>, Error>
where
    S: ComponentEventStore,
    C: CredentialsProvider,
    K: Clock,
    P: EventPublisher,
{
    Ok(match process(app, &req).await {
        Ok(()) => wechat_success(),
        Err(e) => e.into_response(),
    })
}

fn not_recorded(e: ComponentPushError, info_type: &str) -> ApiError {
    tracing::error!(error = %e, info_type, "could not record push");
    match e {
        ComponentPushError::Store(_) => ApiError::new(
            503,
            "store_unavailable",
            "the push could not be recorded; WeChat will retry",
        ),
        ComponentPushError::Event(_) => ApiError::internal(),
    }
}

async fn process<S, C, K, P>(app: &App<S, C, K, P>, req: &Request) -> Result<(), ApiError>
where
    S: ComponentEventStore,
    C: CredentialsProvider,
    K: Clock,
    P: EventPublisher,
{
    let now = app.deps.clock.now();
    let (creds, opened) = open_push(req, &app.deps.credentials, now, app.push_window).await?;
    let plaintext = opened.plaintext.expose_secret();
    let parsed = ComponentPush::parse(plaintext).map_err(rejected_plaintext)?;
    if parsed.component_appid() != creds.component_appid {
        tracing::warn!("push names another component appid");
        return Err(ApiError::new(
            401,
            "wrong_appid",
            "the push is addressed to another component",
        ));
    }
    let info_type = parsed.info_type();
    let event = push_event(&app.deps.store, plaintext, now)
        .await
        .map_err(|e| not_recorded(e, info_type))?;
    if event.as_ref().is_some_and(|e| e.duplicate) {
        tracing::info!(
            info_type,
            outcome = PushOutcome::Duplicate.as_str(),
            "push accepted"
        );
        return Ok(());
    }
    let outcome = apply_push(&app.deps.store, &parsed, now)
        .await
        .map_err(|e| not_recorded(e.into(), info_type))?;
    tracing::info!(info_type, outcome = outcome.as_str(), "push accepted");
    let mut exchange = None;
    if outcome == PushOutcome::AuthorizationPending {
        let svc = app.deps.tokens();
        match complete_within(&svc, &parsed, now, app.completion_budget).await {
            Some(Ok(done)) => {
                tracing::info!(
                    authorizer = done.authorizer_appid(),
                    "authorization completed in the callback"
                );
                exchange = Some(done);
            }
            Some(Err(e)) => {
                tracing::warn!(error = %e, "authorization left pending for the refresher")
            }
            None => {}
        }
    }
    let Some(event) = event else {
        return Ok(());
    };
    // The customer: as recorded before the push, or (a completed authorization may just have
    // been tied to its link) as recorded now.
    let customer_ref = match &exchange {
        Some(done) => app
            .deps
            .store
            .get_authorizer(done.authorizer_appid())
            .await
            .map_err(|e| not_recorded(e.into(), info_type))?
            .and_then(|r| r.customer_ref),
        None => event.customer_ref.clone(),
    };
    let mut changes = authorization_changes(
        &parsed,
        outcome,
        exchange.as_ref(),
        &event.entry.id,
        customer_ref.as_deref(),
        now,
    );
    if let ComponentPush::FastRegister(notice) = &parsed {
        changes.extend(fast_registration_outcome(app, notice, &event.entry.id, now).await?);
    }
    let (delivered, deferred) =
        deliver_push_event(&app.deps.store, &app.publisher, &event, &changes, now)
            .await
            .map_err(|e| not_recorded(e, info_type))?;
    if deferred > 0 {
        tracing::warn!(deferred, "authorization.changed deferred to the outbox");
    }
    app.metrics.emit(metrics::delivery_line(
        "component-events",
        &delivered,
        app.deps.clock.now().saturating_mul(1000),
    ));
    Ok(())
}

/// A fast-registration notice: the registration's outcome recorded (a success exchanges the
/// code) before WeChat is answered. If that cannot be done, nothing is recorded and WeChat is
/// asked to retry (503).
async fn fast_registration_outcome<S, C, K, P>(
    app: &App<S, C, K, P>,
    notice: &FastRegisterNotice,
    cause: &str,
    now: i64,
) -> Result<Vec<wxopen::events::Event>, ApiError>
where
    S: ComponentEventStore,
    C: CredentialsProvider,
    K: Clock,
{
    let svc = app.deps.tokens();
    let outcome = tokio::time::timeout(
        app.completion_budget,
        fast_registration::on_notice(&svc, notice, cause, now),
    )
    .await;
    let retry = |why: &str| {
        tracing::warn!(
            why,
            "fast-registration notice not completed; WeChat will retry"
        );
        ApiError::new(
            503,
            "not_completed",
            "the registration's outcome could not be recorded; WeChat will retry",
        )
    };
    match outcome {
        Ok(Ok(o)) => Ok(o.events),
        Ok(Err(FastRegistrationError::Store(e))) => {
            Err(not_recorded(e.into(), "notify_third_fasteregister"))
        }
        Ok(Err(e)) => Err(retry(&e.to_string())),
        Err(_) => Err(retry("budget")),
    }
}
