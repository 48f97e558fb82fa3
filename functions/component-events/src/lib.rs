//! `POST /wechat/component`: the authorization event URL (授权事件接收URL).
//!
//! Verifies, decrypts, dedupes and records each push, and answers `success` for every accepted
//! push (duplicates and unknown InfoTypes included). Bad input gets the JSON error shape and
//! changes nothing.

use std::time::Duration;

use lambda_http::{Body, Error, Request, Response};
use secrecy::ExposeSecret;
use wxopen::app::Deps;
use wxopen::callbacks::component::{PushOutcome, apply_push, complete_within};
use wxopen::clock::Clock;
use wxopen::clock::SystemClock;
use wxopen::http::{ApiError, open_push, rejected_plaintext, wechat_success};
use wxopen::runtime::{FromRuntime, Runtime};
use wxopen::secrets::CredentialsProvider;
use wxopen::store::ComponentEventStore;
use wxopen::store::DynamoStore;
use wxopen::xml::ComponentPush;

/// The ports this function needs.
pub struct App<S, C, K> {
    pub deps: Deps<S, C, K>,
    pub push_window: Duration,
    /// Time allowed to complete an authorization before answering WeChat (which waits 5 s).
    pub completion_budget: Duration,
}

impl<C> FromRuntime<C> for App<DynamoStore, C, SystemClock> {
    fn from_runtime(rt: Runtime<C>) -> Self {
        Self {
            push_window: rt.config.push_window,
            completion_budget: DEFAULT_COMPLETION_BUDGET,
            deps: rt.into_deps(),
        }
    }
}

/// Leaves room within WeChat's 5 s for verification, storage and the answer.
pub const DEFAULT_COMPLETION_BUDGET: Duration = Duration::from_millis(3000);

pub async fn handle<S, C, K>(app: &App<S, C, K>, req: Request) -> Result<Response<Body>, Error>
where
    S: ComponentEventStore,
    C: CredentialsProvider,
    K: Clock,
{
    Ok(match process(app, &req).await {
        Ok(()) => wechat_success(),
        Err(e) => e.into_response(),
    })
}

async fn process<S, C, K>(app: &App<S, C, K>, req: &Request) -> Result<(), ApiError>
where
    S: ComponentEventStore,
    C: CredentialsProvider,
    K: Clock,
{
    let now = app.deps.clock.now();
    let (creds, opened) = open_push(req, &app.deps.credentials, now, app.push_window).await?;
    let parsed =
        ComponentPush::parse(opened.plaintext.expose_secret()).map_err(rejected_plaintext)?;
    if parsed.component_appid() != creds.component_appid {
        tracing::warn!("push names another component appid");
        return Err(ApiError::new(
            401,
            "wrong_appid",
            "the push is addressed to another component",
        ));
    }
    let outcome = apply_push(&app.deps.store, &parsed, &opened.dedupe_key, now)
        .await
        .map_err(|e| {
            tracing::error!(error = %e, info_type = parsed.info_type(), "could not record push");
            ApiError::new(
                503,
                "store_unavailable",
                "the push could not be recorded; WeChat will retry",
            )
        })?;
    tracing::info!(
        info_type = parsed.info_type(),
        outcome = outcome.as_str(),
        "push accepted"
    );
    if outcome == PushOutcome::AuthorizationPending {
        let svc = app.deps.tokens();
        match complete_within(&svc, &parsed, now, app.completion_budget).await {
            Some(Ok(exchange)) => {
                tracing::info!(
                    authorizer = exchange.authorizer_appid(),
                    "authorization completed in the callback"
                )
            }
            Some(Err(e)) => {
                tracing::warn!(error = %e, "authorization left pending for the refresher")
            }
            None => {}
        }
    }
    Ok(())
}
