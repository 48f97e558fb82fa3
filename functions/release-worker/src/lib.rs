//! The fleet-release worker: SQS event source (batch, `ReportBatchItemFailures`), one step per
//! message (`wxopen::releases::engine`). A message whose step could not finish (the store or the
//! queue failed, or an audit result came before its submission was recorded) is reported
//! failed and comes back after the visibility timeout; WeChat's own refusals and backoffs are
//! handled inside the step and the message is done.

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use lambda_runtime::{Error, LambdaEvent};
use wxopen::app::Deps;
use wxopen::clock::{Clock, SystemClock};
use wxopen::events::{EventBridgePublisher, EventPublisher, EventSettings};
use wxopen::queue::{SqsQueue, WorkQueue};
use wxopen::releases::{Engine, NoHook, ReleaseSettings, StepHook, TokenCalls};
use wxopen::runtime::{FromRuntime, Runtime};
use wxopen::secrets::CredentialsProvider;
use wxopen::store::{DynamoStore, ReleaseStore, TokenServiceStore};

pub struct App<S, C, K, Q = SqsQueue, P = EventBridgePublisher, H = NoHook> {
    pub deps: Deps<S, C, K>,
    pub queue: Q,
    pub publisher: P,
    pub settings: ReleaseSettings,
    /// Step boundaries (the kill test's hook; nothing in production).
    pub hook: H,
}

impl<C> FromRuntime<C> for App<DynamoStore, C, SystemClock> {
    fn from_runtime(rt: Runtime<C>) -> Self {
        Self {
            queue: SqsQueue::new(
                aws_sdk_sqs::Client::new(&rt.aws),
                rt.config.release_queue_url.clone().unwrap_or_default(),
            ),
            publisher: EventBridgePublisher::from_settings(
                &rt.aws,
                &EventSettings::from_config(&rt.config),
            ),
            settings: ReleaseSettings::from_config(&rt.config),
            deps: rt.into_deps(),
            hook: NoHook,
        }
    }
}

pub async fn handle<S, C, K, Q, P, H>(
    app: &App<S, C, K, Q, P, H>,
    event: LambdaEvent<SqsEvent>,
) -> Result<SqsBatchResponse, Error>
where
    S: TokenServiceStore + ReleaseStore,
    C: CredentialsProvider,
    K: Clock,
    Q: WorkQueue,
    P: EventPublisher,
    H: StepHook,
{
    let messages: Vec<(String, String)> = event
        .payload
        .records
        .into_iter()
        .map(|r| (r.message_id.unwrap_or_default(), r.body.unwrap_or_default()))
        .collect();
    let mut response = SqsBatchResponse::default();
    response.set_failures(process(app, &messages).await);
    Ok(response)
}

/// Handles `(message id, body)` pairs; answers the ids to deliver again.
pub async fn process<S, C, K, Q, P, H>(
    app: &App<S, C, K, Q, P, H>,
    messages: &[(String, String)],
) -> Vec<String>
where
    S: TokenServiceStore + ReleaseStore,
    C: CredentialsProvider,
    K: Clock,
    Q: WorkQueue,
    P: EventPublisher,
    H: StepHook,
{
    let tokens = app.deps.tokens();
    let calls = TokenCalls::new(&tokens, &app.deps.wechat);
    let engine = Engine {
        store: &app.deps.store,
        calls: &calls,
        queue: &app.queue,
        publisher: &app.publisher,
        clock: &app.deps.clock,
        settings: &app.settings,
        hook: &app.hook,
    };
    let mut pending = Vec::with_capacity(messages.len());
    for (id, body) in messages {
        pending.push(one(&engine, id, body));
    }
    futures_util::future::join_all(pending)
        .await
        .into_iter()
        .flatten()
        .collect()
}

/// One message: `Some(id)` when it must be delivered again.
async fn one<S, W, Q, P, K, H>(
    engine: &Engine<'_, S, W, Q, P, K, H>,
    id: &str,
    body: &str,
) -> Option<String>
where
    S: ReleaseStore + wxopen::store::AuthorizerStore,
    W: wxopen::releases::CodeCalls,
    Q: WorkQueue,
    P: EventPublisher,
    K: Clock,
    H: StepHook,
{
    match engine.handle_body(body).await {
        Ok(()) => None,
        Err(e) => {
            tracing::warn!(error = %e, message = %id, "release step not finished; it will be delivered again");
            Some(id.to_string())
        }
    }
}
