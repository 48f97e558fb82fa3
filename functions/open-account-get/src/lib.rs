//! `GET /authorizers/{appid}/open-account` (IAM): the open account the authorizer is bound to
//! (`open/get`). 200 `{appid, open_appid}`; not bound → 404 `not_bound`.

use lambda_http::http::Method;
use lambda_http::{Body, Error, Request, Response};
pub use wxopen::app::Deps as App;
use wxopen::clock::Clock;
use wxopen::http::{ApiError, appid_param, json_response, require_method};
use wxopen::open_account;
use wxopen::secrets::CredentialsProvider;
use wxopen::store::TokenServiceStore;

pub async fn handle<S, C, K>(app: &App<S, C, K>, req: Request) -> Result<Response<Body>, Error>
where
    S: TokenServiceStore,
    C: CredentialsProvider,
    K: Clock,
{
    Ok(process(app, &req)
        .await
        .unwrap_or_else(ApiError::into_response))
}

async fn process<S, C, K>(app: &App<S, C, K>, req: &Request) -> Result<Response<Body>, ApiError>
where
    S: TokenServiceStore,
    C: CredentialsProvider,
    K: Clock,
{
    require_method(req, Method::GET)?;
    let appid = appid_param(req)?;
    match open_account::get(&app.tokens(), &appid).await {
        Ok(Some(open_appid)) => Ok(json_response(
            200,
            &serde_json::json!({ "appid": appid, "open_appid": open_appid }),
        )),
        Ok(None) => {
            let mut e = ApiError::new(
                404,
                "not_bound",
                "the account is not bound to any open account",
            );
            e.wechat_errcode = Some(89002);
            Err(e)
        }
        Err(e) => {
            tracing::warn!(error = %e, authorizer = %appid, "open/get not done");
            Err(ApiError::from(&e))
        }
    }
}
