//! `GET /authorize/callback?link=<id>&auth_code=…&expires_in=…`: where WeChat sends the
//! merchant's browser after authorization (the link's `redirect_uri` carries `link`; WeChat
//! appends its parameters). Only a redirect naming a live link is acted on; anything else is a
//! 400 that writes nothing and calls nothing. The exchange is the same code path as the
//! `authorized` push (whichever arrives first does the work; the other finds it done). The one
//! that records the authorization publishes `authorization.changed` (refused by EventBridge: the
//! outbox, swept by the scheduled run). After success the browser goes to the link's `return_to`
//! (with `link=<id>`) or sees a success page.

use lambda_http::http::Method;
use lambda_http::{Body, Error, Request, Response};
use wxopen::app::Deps;
use wxopen::authorization::{self, Exchange, LinkHint, failure_page, success_page};
use wxopen::clock::{Clock, SystemClock};
use wxopen::events::outbox;
use wxopen::events::{AuthorizationChange, EventBridgePublisher, EventPublisher};
use wxopen::http::{ApiError, html_response, query_param, redirect_response, store_failed};
use wxopen::model::LinkStatus;
use wxopen::runtime::{FromRuntime, Runtime};
use wxopen::secrets::CredentialsProvider;
use wxopen::store::outbox::EventRecordStore;
use wxopen::store::{DynamoStore, TokenServiceStore};
use wxopen::tokens::TokenError;
use wxopen::wechat::ErrorKind;

/// The ports this function needs.
pub struct App<S, C, K, P = EventBridgePublisher> {
    pub deps: Deps<S, C, K>,
    /// Where `authorization.changed` is published when the redirect records the authorization.
    pub publisher: P,
}

impl<C> FromRuntime<C> for App<DynamoStore, C, SystemClock> {
    fn from_runtime(rt: Runtime<C>) -> Self {
        Self {
            publisher: rt.event_publisher(),
            deps: rt.into_deps(),
        }
    }
}

pub async fn handle<S, C, K, P>(
    app: &App<S, C, K, P>,
    req: Request,
) -> Result<Response<Body>, Error>
where
    S: TokenServiceStore + EventRecordStore,
    C: CredentialsProvider,
    K: Clock,
    P: EventPublisher,
{
    let deps = &app.deps;
    if req.method() != Method::GET {
        return Ok(html_response(
            405,
            failure_page("this page accepts GET only"),
        ));
    }
    let Some(code) =
        query_param(&req, "auth_code").filter(|c| !c.trim().is_empty() && c.len() <= 512)
    else {
        return Ok(html_response(
            400,
            failure_page("the authorization code is missing"),
        ));
    };
    let code = code.trim().to_string();
    let link = match authorization::callback_link(
        &deps.store,
        query_param(&req, "link").as_deref(),
        deps.clock.now(),
    )
    .await
    {
        Ok(Some(l)) => l,
        Ok(None) => {
            return Ok(html_response(
                400,
                failure_page(
                    "this redirect does not come from a live authorization link of this platform",
                ),
            ));
        }
        Err(e) => {
            let api = store_failed(e);
            return Ok(html_response(api.status, failure_page(&api.message)));
        }
    };
    // A link already used: only the redirect of the authorization that used it is shown its
    // outcome (its code is recorded as done); any other code is refused without a write.
    if link.status == LinkStatus::Authorized {
        let done = deps
            .store
            .code_done_for(&wxopen::crypto::sha1_hex(&code))
            .await;
        return Ok(match done {
            Ok(Some(appid)) if link.authorizer_appid.as_deref() == Some(appid.as_str()) => {
                finished(deps, &link, &appid).await
            }
            Ok(_) => html_response(
                400,
                failure_page("this authorization link was already used"),
            ),
            Err(e) => {
                let api = store_failed(e);
                html_response(api.status, failure_page(&api.message))
            }
        });
    }
    let svc = deps.tokens();
    let hint = LinkHint::Link(Box::new(link.clone()));
    let code = code.into();
    Ok(
        match authorization::exchange_code(&svc, &code, None, &hint).await {
            Ok(exchange) => {
                publish_change(app, &exchange, &code).await;
                finished(deps, &link, exchange.authorizer_appid()).await
            }
            Err(TokenError::WeChat(e)) if e.kind() == Some(ErrorKind::InvalidCode) => {
                tracing::warn!(errcode = e.errcode(), "authorization code rejected");
                html_response(
                    400,
                    failure_page("this authorization code was already used or has expired"),
                )
            }
            Err(e) => {
                tracing::error!(error = %e, "authorization could not be completed");
                let api = ApiError::from(&e);
                html_response(api.status, failure_page(&api.message))
            }
        },
    )
}

/// The link's `return_to` (with `link=<id>` added) or the success page.
async fn finished<S, C, K>(
    app: &Deps<S, C, K>,
    link: &wxopen::model::AuthorizationLink,
    appid: &str,
) -> Response<Body>
where
    S: TokenServiceStore,
    C: CredentialsProvider,
    K: Clock,
{
    if let Some(mut url) = link
        .return_to
        .as_deref()
        .and_then(|r| url::Url::parse(r).ok())
    {
        url.query_pairs_mut().append_pair("link", &link.id);
        return redirect_response(url.as_str());
    }
    let nick = match app.store.get_authorizer(appid).await {
        Ok(r) => r.and_then(|r| r.profile).map(|p| p.nick_name),
        Err(_) => None,
    };
    html_response(200, success_page(appid, nick.as_deref()))
}

/// The redirect recorded the authorization (the push may come later or never): publishes its
/// `authorization.changed`, with the customer the link tied it to. What EventBridge refuses
/// goes to the outbox; a failure to do even that is logged (the authorization stands).
async fn publish_change<S, C, K, P>(
    app: &App<S, C, K, P>,
    exchange: &Exchange,
    code: &secrecy::SecretString,
) where
    S: TokenServiceStore + EventRecordStore,
    K: Clock,
    P: EventPublisher,
{
    if !matches!(exchange, Exchange::Recorded { .. }) {
        return; // The push recorded it and published.
    }
    let deps = &app.deps;
    let now = deps.clock.now();
    let customer_ref = match deps.store.get_authorizer(exchange.authorizer_appid()).await {
        Ok(r) => r.and_then(|r| r.customer_ref),
        Err(e) => {
            tracing::warn!(error = %e, "authorizer not read for its customer_ref");
            None
        }
    };
    let Some(event) = authorization::exchange_change(
        exchange,
        AuthorizationChange::Authorized,
        code,
        "redirect",
        now,
        now,
        customer_ref.as_deref(),
    ) else {
        return;
    };
    outbox::publish_own(&deps.store, &app.publisher, &[event], now).await;
}
