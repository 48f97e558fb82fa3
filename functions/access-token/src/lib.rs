//! `GET /authorizers/{appid}/access-token` and `GET /component/access-token` (IAM).
//!
//! Vends the current token with its version. A caller whose call WeChat rejected with
//! 40001/42001 asks again with `?stale_version=<version>` and gets the newer token (refreshed
//! at most once for all callers).

use lambda_http::http::Method;
use lambda_http::{Body, Error, Request, Response};
use secrecy::ExposeSecret;
use wxopen::clock::Clock;
use wxopen::http::{ApiError, appid_param, json_response, path_param, query_param, require_method};
use wxopen::model::TokenKey;
use wxopen::secrets::CredentialsProvider;
use wxopen::store::TokenServiceStore;

pub use wxopen::app::Deps as App;

pub async fn handle<S, C, K>(app: &App<S, C, K>, req: Request) -> Result<Response<Body>, Error>
where
    S: TokenServiceStore,
    C: CredentialsProvider,
    K: Clock,
{
    Ok(match process(app, &req).await {
        Ok(resp) => resp,
        Err(e) => e.into_response(),
    })
}

async fn process<S, C, K>(app: &App<S, C, K>, req: &Request) -> Result<Response<Body>, ApiError>
where
    S: TokenServiceStore,
    C: CredentialsProvider,
    K: Clock,
{
    require_method(req, Method::GET)?;
    let key = if path_param(req, "appid").is_some() {
        TokenKey::Authorizer(appid_param(req)?.into_string())
    } else {
        TokenKey::Component
    };
    let stale_version = match query_param(req, "stale_version") {
        None => None,
        Some(v) => Some(v.trim().parse::<u64>().map_err(|_| {
            ApiError::new(
                400,
                "invalid_parameter",
                "stale_version must be a non-negative whole number",
            )
        })?),
    };
    let svc = app.tokens();
    let token = svc.token(&key, stale_version).await.map_err(|e| {
        tracing::warn!(error = %e, token = key.label(), "token not vended");
        ApiError::from(&e)
    })?;
    let mut body = serde_json::json!({
        "access_token": token.token.expose_secret(),
        "version": token.version,
        "expires_at": token.expires_at,
    });
    if let (TokenKey::Authorizer(appid), Some(obj)) = (&key, body.as_object_mut()) {
        obj.insert("appid".into(), appid.clone().into());
    }
    Ok(json_response(200, &body))
}
