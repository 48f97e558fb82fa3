//! `GET /authorize/callback?link=<id>&auth_code=…&expires_in=…`: where WeChat sends the
//! merchant's browser after authorization (the link's `redirect_uri` carries `link`; WeChat
//! appends its parameters). Only a redirect naming a live link is acted on; anything else is a
//! 400 that writes nothing and calls nothing. The exchange is the same code path as the
//! `authorized` push (whichever arrives first does the work; the other finds it done). After
//! success the browser goes to the link's `return_to` (with `link=<id>`) or sees a success page.

use lambda_http::http::Method;
use lambda_http::{Body, Error, Request, Response};
use wxopen::authorization::{self, LinkHint, failure_page, success_page};
use wxopen::clock::Clock;
use wxopen::http::{ApiError, html_response, query_param, redirect_response, store_failed};
use wxopen::model::LinkStatus;
use wxopen::secrets::CredentialsProvider;
use wxopen::store::TokenServiceStore;
use wxopen::tokens::TokenError;
use wxopen::wechat::ErrorKind;

pub use wxopen::app::Deps as App;

pub async fn handle<S, C, K>(app: &App<S, C, K>, req: Request) -> Result<Response<Body>, Error>
where
    S: TokenServiceStore,
    C: CredentialsProvider,
    K: Clock,
{
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
        &app.store,
        query_param(&req, "link").as_deref(),
        app.clock.now(),
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
        let done = app
            .store
            .code_done_for(&wxopen::crypto::sha1_hex(&code))
            .await;
        return Ok(match done {
            Ok(Some(appid)) if link.authorizer_appid.as_deref() == Some(appid.as_str()) => {
                finished(app, &link, &appid).await
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
    let svc = app.tokens();
    let hint = LinkHint::Link(Box::new(link.clone()));
    Ok(
        match authorization::exchange_code(&svc, &code.into(), None, &hint).await {
            Ok(exchange) => finished(app, &link, exchange.authorizer_appid()).await,
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
    app: &App<S, C, K>,
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
