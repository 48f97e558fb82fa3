//! Identities and sign-in results (IAM):
//! * `POST /login/codes/{code}`: redeems a one-time login code (once) →
//!   `{flow, appid, openid, unionid, identity_id, user_id, known_user, conflict?}`.
//! * `GET /identities/{id}`; `GET /identities?unionid=` | `?appid=&openid=` | `?user_id=` →
//!   `{identities: [...]}`.
//! * `PUT /identities/{id}/user` `{"user_id", "replace"?}` binds (409 if bound to another user
//!   unless `replace`); `DELETE /identities/{id}/user` unbinds (404 if not bound).

use lambda_http::http::Method;
use lambda_http::{Body, Error, Request, Response};
use wxopen::clock::{Clock, SystemClock};
use wxopen::http::views::{identity_json, redeemed_json};
use wxopen::http::{
    ApiError, json_object, json_response, json_text, path_param, query_param, store_failed,
    valid_appid,
};
use wxopen::identity::{self, valid_identity_id, valid_user_id};
use wxopen::login_codes::{self, valid_code};
use wxopen::runtime::{FromRuntime, Runtime};
use wxopen::store::{DynamoStore, IdentityStore, LoginCodeStore};

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

pub async fn handle<S, K>(app: &App<S, K>, req: Request) -> Result<Response<Body>, Error>
where
    S: IdentityStore + LoginCodeStore,
    K: Clock,
{
    Ok(process(app, &req)
        .await
        .unwrap_or_else(ApiError::into_response))
}

async fn process<S, K>(app: &App<S, K>, req: &Request) -> Result<Response<Body>, ApiError>
where
    S: IdentityStore + LoginCodeStore,
    K: Clock,
{
    let path = req.uri().path().trim_end_matches('/').to_string();
    if path.starts_with("/login/codes/") {
        return redeem(app, req).await;
    }
    if path.ends_with("/user") {
        return binding(app, req).await;
    }
    if req.method() != Method::GET {
        return Err(ApiError::method_not_allowed("GET"));
    }
    match path_param(req, "id") {
        Some(id) => one(app, &id).await,
        None => lookup(app, req).await,
    }
}

async fn redeem<S, K>(app: &App<S, K>, req: &Request) -> Result<Response<Body>, ApiError>
where
    S: IdentityStore + LoginCodeStore,
    K: Clock,
{
    if req.method() != Method::POST {
        return Err(ApiError::method_not_allowed("POST"));
    }
    let code = path_param(req, "code").unwrap_or_default();
    if !valid_code(&code) {
        return Err(ApiError::new(
            400,
            "invalid_login_code",
            "a login code is 64 lowercase hex digits",
        ));
    }
    match login_codes::redeem(&app.store, &code, app.clock.now())
        .await
        .map_err(store_failed)?
    {
        Some(r) => Ok(json_response(200, &redeemed_json(&r))),
        None => Err(ApiError::new(
            404,
            "unknown_login_code",
            "no such login code, or it was already used or has expired",
        )),
    }
}

fn identity_id(req: &Request) -> Result<String, ApiError> {
    let id = path_param(req, "id").unwrap_or_default();
    if valid_identity_id(&id) {
        Ok(id)
    } else {
        Err(ApiError::new(
            400,
            "invalid_identity_id",
            "an identity id is 32 lowercase hex digits",
        ))
    }
}

async fn one<S: IdentityStore, K>(app: &App<S, K>, id: &str) -> Result<Response<Body>, ApiError> {
    if !valid_identity_id(id) {
        return Err(ApiError::new(
            400,
            "invalid_identity_id",
            "an identity id is 32 lowercase hex digits",
        ));
    }
    match identity::resolve(&app.store, id)
        .await
        .map_err(store_failed)?
    {
        Some(i) => Ok(json_response(200, &identity_json(&i))),
        None => Err(ApiError::new(
            404,
            "unknown_identity",
            "no identity with this id",
        )),
    }
}

fn short_text(v: Option<String>, name: &'static str) -> Result<Option<String>, ApiError> {
    match v {
        Some(s)
            if s.is_empty()
                || s.len() > 128
                || !s
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') =>
        {
            Err(ApiError::new(
                400,
                "invalid_parameter",
                format!("{name} must be 1 to 128 letters, digits, _ or -"),
            ))
        }
        other => Ok(other),
    }
}

async fn lookup<S: IdentityStore, K>(
    app: &App<S, K>,
    req: &Request,
) -> Result<Response<Body>, ApiError> {
    let unionid = short_text(query_param(req, "unionid"), "unionid")?;
    let openid = short_text(query_param(req, "openid"), "openid")?;
    let appid = query_param(req, "appid");
    let user_id = query_param(req, "user_id");
    let found = match (unionid, appid, openid, user_id) {
        (Some(u), None, None, None) => identity::by_unionid(&app.store, &u).await,
        (None, Some(a), Some(o), None) => {
            if !valid_appid(&a) {
                return Err(wxopen::http::invalid_appid());
            }
            identity::by_openid(&app.store, &a, &o).await
        }
        (None, None, None, Some(u)) => {
            if !valid_user_id(&u) {
                return Err(invalid_user_id());
            }
            identity::by_user(&app.store, &u).await
        }
        _ => {
            return Err(ApiError::new(
                400,
                "missing_parameter",
                "look up by exactly one of ?unionid=, ?appid=&openid= or ?user_id=",
            ));
        }
    }
    .map_err(store_failed)?;
    Ok(json_response(
        200,
        &serde_json::json!({ "identities": found.iter().map(identity_json).collect::<Vec<_>>() }),
    ))
}

fn invalid_user_id() -> ApiError {
    ApiError::new(
        400,
        "invalid_user_id",
        "user_id must be 1 to 128 of A-Z a-z 0-9 . _ : @ -",
    )
}

async fn binding<S: IdentityStore, K>(
    app: &App<S, K>,
    req: &Request,
) -> Result<Response<Body>, ApiError> {
    let result = match *req.method() {
        Method::PUT => {
            let id = identity_id(req)?;
            let body = json_object(req)?.ok_or_else(|| {
                ApiError::new(
                    400,
                    "missing_field",
                    "the body must be {\"user_id\": \"...\"}",
                )
            })?;
            let user_id = json_text(&body, "user_id")?
                .ok_or_else(|| ApiError::new(400, "missing_field", "user_id is required"))?;
            if !valid_user_id(&user_id) {
                return Err(invalid_user_id());
            }
            let replace = match body.get("replace") {
                None | Some(serde_json::Value::Null) => false,
                Some(serde_json::Value::Bool(b)) => *b,
                Some(_) => {
                    return Err(ApiError::new(
                        400,
                        "invalid_parameter",
                        "replace must be true or false",
                    ));
                }
            };
            identity::bind(&app.store, &id, &user_id, replace).await
        }
        Method::DELETE => {
            let id = identity_id(req)?;
            identity::unbind(&app.store, &id).await
        }
        _ => return Err(ApiError::method_not_allowed("PUT or DELETE")),
    };
    match result {
        Ok(i) => Ok(json_response(200, &identity_json(&i))),
        Err(e) => {
            tracing::info!(error = %e, "identity binding refused");
            Err(ApiError::from(&e))
        }
    }
}
