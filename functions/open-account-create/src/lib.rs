//! `POST /authorizers/{appid}/open-account` (IAM): creates an open account under the
//! authorizer's subject and binds the authorizer to it (`open/create`). 201 `{appid, open_appid}`.
//! Already bound → 409 `already_bound` with the bound `open_appid`; never a second account.

use lambda_http::http::Method;
use lambda_http::{Body, Error, Request, Response};
pub use wxopen::app::Deps as App;
use wxopen::clock::Clock;
use wxopen::http::{ApiError, appid_param, json_object, json_response, require_method};
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
    require_method(req, Method::POST)?;
    let appid = appid_param(req)?;
    // No fields are needed; a body, if sent, must still be a JSON object.
    json_object(req)?;
    let open_appid = open_account::create(&app.tokens(), &appid)
        .await
        .map_err(|e| {
            tracing::warn!(error = %e, authorizer = %appid, "open/create not done");
            ApiError::from(&e)
        })?;
    tracing::info!(authorizer = %appid, open_appid = %open_appid, "open account created and bound");
    Ok(json_response(
        201,
        &serde_json::json!({ "appid": appid, "open_appid": open_appid }),
    ))
}
