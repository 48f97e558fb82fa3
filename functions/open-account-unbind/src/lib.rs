//! `DELETE /authorizers/{appid}/open-account?open_appid=...` (IAM): unbinds the authorizer from
//! the open account (`open/unbind`). 204; not bound → 404 `not_bound`.

use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, Error, Request, Response};
pub use wxopen::app::Deps as App;
use wxopen::clock::Clock;
use wxopen::http::{ApiError, appid_param, query_param, require_method, valid_appid};
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
    require_method(req, Method::DELETE)?;
    let appid = appid_param(req)?;
    let open_appid = match query_param(req, "open_appid") {
        Some(o) if valid_appid(o.trim()) => o.trim().to_string(),
        Some(_) => {
            return Err(ApiError::new(
                400,
                "invalid_parameter",
                "open_appid must be \"wx\" followed by 16 lowercase letters or digits",
            ));
        }
        None => {
            return Err(ApiError::new(
                400,
                "missing_parameter",
                "the open_appid query parameter is required",
            ));
        }
    };
    open_account::unbind(&app.tokens(), &appid, &open_appid)
        .await
        .map_err(|e| {
            tracing::warn!(error = %e, authorizer = %appid, "open/unbind not done");
            ApiError::from(&e)
        })?;
    let mut resp = Response::new(Body::Empty);
    *resp.status_mut() = StatusCode::NO_CONTENT;
    Ok(resp)
}
