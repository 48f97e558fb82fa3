//! `GET /login/sessions/{id}` (IAM): `pending`, `expired`, or `confirmed` with
//! `{openid, unionid, appid, known_user, linked_appids, identity_id, conflict}`.

use lambda_http::http::Method;
use lambda_http::{Body, Error, Request, Response};
use wxopen::clock::Clock;
use wxopen::clock::SystemClock;
use wxopen::http::views::login_session_json;
use wxopen::http::{ApiError, json_response, path_param, require_method, store_failed};
use wxopen::login::valid_session_id;
use wxopen::runtime::{FromRuntime, Runtime};
use wxopen::store::DynamoStore;
use wxopen::store::{IdentityStore, LoginStore};

pub struct App<S, K> {
    pub store: S,
    pub clock: K,
}

impl<C> FromRuntime<C> for App<DynamoStore, SystemClock> {
    fn from_runtime(rt: Runtime<C>) -> Self {
        Self {
            store: rt.store,
            clock: SystemClock,
        }
    }
}

pub async fn handle<S: LoginStore + IdentityStore, K: Clock>(
    app: &App<S, K>,
    req: Request,
) -> Result<Response<Body>, Error> {
    Ok(process(app, &req)
        .await
        .unwrap_or_else(ApiError::into_response))
}

async fn process<S: LoginStore + IdentityStore, K: Clock>(
    app: &App<S, K>,
    req: &Request,
) -> Result<Response<Body>, ApiError> {
    require_method(req, Method::GET)?;
    let id = path_param(req, "id").unwrap_or_default();
    if !valid_session_id(&id) {
        return Err(ApiError::new(
            400,
            "invalid_session_id",
            "a session id is 32 lowercase hex digits",
        ));
    }
    let session = app
        .store
        .get_session(&id)
        .await
        .map_err(store_failed)?
        .ok_or_else(|| ApiError::new(404, "unknown_session", "no login session with this id"))?;
    let body = login_session_json(&app.store, &session, app.clock.now())
        .await
        .map_err(store_failed)?;
    Ok(json_response(200, &body))
}
