//! `POST /wechat/messages/{appid}`: the message URL registered as `/wechat/messages/$APPID$`.
//!
//! The same verification as the authorization event URL; the path appid must match the
//! message's account. Every message is published to the event bus (`authorizer.message` /
//! `authorizer.event`); follow-to-log-in and the full-network release test answer first, then
//! the reply hook, else `success` (see `wxopen::callbacks::messages`).

use std::time::Duration;

use lambda_http::http::header::{CONTENT_TYPE, HeaderValue};
use lambda_http::{Body, Error, Request, Response};
use secrecy::ExposeSecret;
use wxopen::app::Deps;
use wxopen::callbacks::messages::{self, AuthorizerStatus, HookCall, MessageError};
use wxopen::callbacks::release_test::is_release_test_account;
use wxopen::clock::Clock;
use wxopen::clock::SystemClock;
use wxopen::crypto;
use wxopen::events::metrics::{self, MetricSink};
use wxopen::events::{EventBridgePublisher, EventPublisher};
use wxopen::http::{
    ApiError, appid_param, open_push, rejected_plaintext, store_failed, text_response,
    wechat_success,
};
use wxopen::login::LoginSettings;
use wxopen::model::AuthorizerState;
use wxopen::reply::hook::{ConfiguredHook, HookSettings};
use wxopen::runtime::{FromRuntime, Runtime};
use wxopen::secrets::CredentialsProvider;
use wxopen::store::DynamoStore;
use wxopen::store::MessageEventStore;
use wxopen::store::outbox::ReplyMemo;
use wxopen::xml::Message;

pub struct App<S, C, K, P = EventBridgePublisher> {
    pub deps: Deps<S, C, K>,
    pub push_window: Duration,
    pub login: LoginSettings,
    /// Where every message is published.
    pub publisher: P,
    /// The deployment's reply hook (may be none).
    pub hook: ConfiguredHook,
    pub hook_budget: Duration,
    /// Where the EMF metric lines go (stdout when deployed).
    pub metrics: MetricSink,
}

impl<C> FromRuntime<C> for App<DynamoStore, C, SystemClock> {
    fn from_runtime(rt: Runtime<C>) -> Self {
        let hooks = HookSettings::from_config(&rt.config);
        let hook = ConfiguredHook::from_settings(&hooks, &rt.aws).unwrap_or_else(|e| {
            // The URL was validated with the config; a client that cannot be built leaves the
            // deployment without replies (every message is still published).
            tracing::error!(error = %e, "reply hook not usable; answering success");
            ConfiguredHook::None
        });
        Self {
            push_window: rt.config.push_window,
            login: LoginSettings::from_config(&rt.config),
            publisher: rt.event_publisher(),
            hook,
            hook_budget: hooks.budget,
            metrics: rt.metrics.clone(),
            deps: rt.into_deps(),
        }
    }
}

pub async fn handle<S, C, K, P>(
    app: &App<S, C, K, P>,
    req: Request,
) -> Result<Response<Body>, Error>
where
    S: MessageEventStore,
    C: CredentialsProvider,
    K: Clock,
    P: EventPublisher,
{
    Ok(process(app, &req)
        .await
        .unwrap_or_else(ApiError::into_response))
}

async fn process<S, C, K, P>(
    app: &App<S, C, K, P>,
    req: &Request,
) -> Result<Response<Body>, ApiError>
where
    S: MessageEventStore,
    C: CredentialsProvider,
    K: Clock,
    P: EventPublisher,
{
    let started = std::time::Instant::now();
    let appid = appid_param(req)?;
    let now = app.deps.clock.now();
    let (creds, opened) = open_push(req, &app.deps.credentials, now, app.push_window).await?;
    let msg = Message::parse(opened.plaintext.expose_secret()).map_err(rejected_plaintext)?;
    if opened
        .envelope
        .to_user_name
        .as_deref()
        .is_some_and(|t| !t.trim().is_empty() && t.trim() != msg.to_user_name.trim())
    {
        return Err(ApiError::new(
            401,
            "wrong_account",
            "the envelope and the message name different accounts",
        ));
    }
    let release_test = is_release_test_account(&appid, &msg.to_user_name);
    let record = app
        .deps
        .store
        .get_authorizer(&appid)
        .await
        .map_err(store_failed)?;
    let customer_ref = record.as_ref().and_then(|r| r.customer_ref.clone());
    let status = match record {
        Some(r) => {
            if let Some(p) = r.profile.as_ref().filter(|p| !p.user_name.is_empty())
                && p.user_name != msg.to_user_name.trim()
            {
                tracing::warn!(authorizer = %appid, "message for another account at this path");
                return Err(ApiError::new(
                    401,
                    "wrong_account",
                    "the message is for another account than the path's appid",
                ));
            }
            if r.state == AuthorizerState::Authorized || release_test {
                AuthorizerStatus::Authorized
            } else {
                AuthorizerStatus::Inactive
            }
        }
        // Not a 404: WeChat would tell the user "该公众号暂时无法提供服务". The authorization
        // may still be pending; the message is published with `authorizer_known: false`.
        None if release_test => AuthorizerStatus::Authorized,
        None => AuthorizerStatus::Unknown,
    };
    let hook = app.hook.signed(creds.reply_hook_secret.as_ref());
    let handled = messages::on_message(
        &app.deps.tokens(),
        &app.login,
        &app.publisher,
        app.hook.is_configured().then_some(HookCall {
            hook: &hook,
            budget: app.hook_budget,
        }),
        &appid,
        status,
        customer_ref.as_deref(),
        opened.plaintext.expose_secret(),
        &msg,
    )
    .await
    .map_err(|e| match e {
        MessageError::Store(e) => store_failed(e),
        MessageError::Event(e) => {
            tracing::error!(error = %e, authorizer = %appid, "message could not become an event");
            ApiError::internal()
        }
    })?;
    let now_ms = app.deps.clock.now().saturating_mul(1000);
    if let Some(d) = &handled.delivered {
        app.metrics
            .emit(metrics::delivery_line("message-events", d, now_ms));
    }
    if let Some(h) = &handled.hook {
        for line in h.emf_lines("message-events", now_ms) {
            app.metrics.emit(line);
        }
    }
    let reply = match &handled.answer {
        ReplyMemo::Success => "success",
        ReplyMemo::Empty => "empty",
        ReplyMemo::Reply { .. } => "reply",
        ReplyMemo::Retry => "retry",
    };
    app.metrics.emit(metrics::push_line(
        "message-events",
        &msg.msg_type,
        msg.event.as_deref(),
        reply,
        u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        now_ms,
    ));
    Ok(match handled.answer {
        ReplyMemo::Success => wechat_success(),
        ReplyMemo::Empty => text_response(200, ""),
        ReplyMemo::Retry => ApiError::new(
            503,
            "login_unconfirmed",
            "the login scan could not be confirmed yet; WeChat will retry",
        )
        .into_response(),
        ReplyMemo::Reply { xml } => {
            // Sealed with the key the push was decrypted with (during an EncodingAESKey
            // rotation WeChat may still be using the previous one).
            let envelope = crypto::seal_reply(
                &opened.key,
                creds.token.expose_secret(),
                &creds.component_appid,
                &xml,
                app.deps.clock.now(),
            )
            .map_err(|e| {
                tracing::error!(error = %e, "reply could not be encrypted");
                ApiError::internal()
            })?;
            let mut resp = text_response(200, envelope);
            resp.headers_mut().insert(
                CONTENT_TYPE,
                HeaderValue::from_static("application/xml; charset=utf-8"),
            );
            resp
        }
    })
}
