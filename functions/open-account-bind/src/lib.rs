//! `PUT /authorizers/{appid}/open-account` `{"open_appid": "..."}` (IAM): binds the authorizer to
//! an open account of the same subject (`open/bind`). 200 `{appid, open_appid, changed}`;
//! binding to the account it is already bound to is a no-op (`changed: false`).

use lambda_http::http::Method;
use lambda_http::{Body, Error, Request, Response};
pub use wxopen::app::Deps as App;
use wxopen::clock::Clock;
use wxopen::http::{
    ApiError, appid_param, json_object, json_response, json_text, require_method, valid_appid,
};
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
    require_method(req, Method::PUT)?;
    let appid = appid_param(req)?;
    let body = json_object(req)?.ok_or_else(|| {
        ApiError::new(
            400,
            "missing_field",
            "the body must be {\"open_appid\": \"wx...\"}",
        )
    })?;
    let open_appid = match json_text(&body, "open_appid")? {
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
                "missing_field",
                "open_appid is required",
            ));
        }
    };
    let changed = open_account::bind(&app.tokens(), &appid, &open_appid)
        .await
        .map_err(|e| {
            tracing::warn!(error = %e, authorizer = %appid, "open/bind not done");
            ApiError::from(&e)
        })?;
    Ok(json_response(
        200,
        &serde_json::json!({ "appid": appid, "open_appid": open_appid, "changed": changed }),
    ))
}
