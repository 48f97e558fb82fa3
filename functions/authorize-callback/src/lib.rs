//! `GET /authorize/callback?auth_code=…&expires_in=…`: where WeChat sends the merchant's browser
//! after authorization. Completes it through the same code path as the `authorized` push
//! (whichever arrives first does the work; the other finds it done) and shows a page.

use lambda_http::http::Method;
use lambda_http::{Body, Error, Request, Response};
use wxopen::authorization::{self, failure_page, success_page};
use wxopen::clock::Clock;
use wxopen::http::{ApiError, html_response, query_param};
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
    let svc = app.tokens();
    Ok(
        match authorization::exchange_code(&svc, &code.trim().into(), app.clock.now()).await {
            Ok(exchange) => {
                let appid = exchange.authorizer_appid().to_string();
                let nick = match app.store.get_authorizer(&appid).await {
                    Ok(r) => r.and_then(|r| r.profile).map(|p| p.nick_name),
                    Err(_) => None,
                };
                html_response(200, success_page(&appid, nick.as_deref()))
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
