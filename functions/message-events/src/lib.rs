//! `POST /wechat/messages/{appid}`: the message URL registered as `/wechat/messages/$APPID$`.
//!
//! The same verification as the authorization event URL; the path appid must match the
//! message's account. Runs the full-network release test responder and follow-to-log-in, and
//! answers every other message with `success`.

use std::time::Duration;

use lambda_http::http::header::{CONTENT_TYPE, HeaderValue};
use lambda_http::{Body, Error, Request, Response};
use secrecy::ExposeSecret;
use wxopen::app::Deps;
use wxopen::callbacks::messages::{self, Reply};
use wxopen::clock::Clock;
use wxopen::clock::SystemClock;
use wxopen::crypto;
use wxopen::http::{
    ApiError, appid_param, open_push, rejected_plaintext, store_failed, text_response,
    wechat_success,
};
use wxopen::login::LoginSettings;
use wxopen::model::AuthorizerState;
use wxopen::release_test::is_release_test_account;
use wxopen::runtime::{FromRuntime, Runtime};
use wxopen::secrets::CredentialsProvider;
use wxopen::store::DynamoStore;
use wxopen::store::{MessageEventStore, PushClaim};
use wxopen::xml::{Message, text_reply};

pub struct App<S, C, K> {
    pub deps: Deps<S, C, K>,
    pub push_window: Duration,
    pub login: LoginSettings,
}

impl<C> FromRuntime<C> for App<DynamoStore, C, SystemClock> {
    fn from_runtime(rt: Runtime<C>) -> Self {
        Self {
            push_window: rt.config.push_window,
            login: LoginSettings::from_config(&rt.config),
            deps: rt.into_deps(),
        }
    }
}

pub async fn handle<S, C, K>(app: &App<S, C, K>, req: Request) -> Result<Response<Body>, Error>
where
    S: MessageEventStore,
    C: CredentialsProvider,
    K: Clock,
{
    Ok(process(app, &req)
        .await
        .unwrap_or_else(ApiError::into_response))
}

async fn process<S, C, K>(app: &App<S, C, K>, req: &Request) -> Result<Response<Body>, ApiError>
where
    S: MessageEventStore,
    C: CredentialsProvider,
    K: Clock,
{
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
    match app
        .deps
        .store
        .get_authorizer(&appid)
        .await
        .map_err(store_failed)?
    {
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
            if r.state != AuthorizerState::Authorized && !release_test {
                tracing::info!(authorizer = %appid, "message for an authorizer that is not authorized; ignored");
                return Ok(wechat_success());
            }
        }
        None if release_test => {}
        None => {
            return Err(ApiError::new(
                404,
                "unknown_authorizer",
                "no authorizer with this appid",
            ));
        }
    }
    let kind = format!("message:{}", msg.msg_type.trim());
    if app
        .deps
        .store
        .claim_push(&opened.dedupe_key, &kind, now)
        .await
        .map_err(store_failed)?
        == PushClaim::Done
    {
        tracing::info!(authorizer = %appid, "duplicate message; already handled");
        return Ok(wechat_success());
    }
    let reply = messages::handle(&app.deps.tokens(), &app.login, &appid, &msg).await;
    app.deps
        .store
        .complete_push(&opened.dedupe_key)
        .await
        .map_err(store_failed)?;
    Ok(match reply {
        Reply::Success => wechat_success(),
        Reply::Empty => text_response(200, ""),
        Reply::Text(content) => {
            let xml = text_reply(&msg.from_user_name, &msg.to_user_name, now, &content);
            let envelope = crypto::seal_reply(
                creds.current_key(),
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
