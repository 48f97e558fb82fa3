//! `GET /authorizers` (paged, `?customer_ref=`, `?state=`, `?limit=`, `?cursor=`) and
//! `GET /authorizers/{appid}`. IAM, read-only; never reads or returns a token (its reads are
//! projected, and its policy allows only the record's attributes).

use lambda_http::http::Method;
use lambda_http::{Body, Error, Request, Response};
use wxopen::authorization;
use wxopen::clock::{Clock, SystemClock};
use wxopen::http::views::authorizer_json;
use wxopen::http::{
    ApiError, appid_param, json_response, path_param, query_param, require_method, store_failed,
    valid_appid,
};
use wxopen::model::AuthorizerState;
use wxopen::runtime::{FromRuntime, Runtime};
use wxopen::store::DynamoStore;
use wxopen::store::{AuthorizerStore, LinkStore};

pub struct App<S, K = SystemClock> {
    pub store: S,
    pub clock: K,
}

impl<C> FromRuntime<C> for App<DynamoStore> {
    fn from_runtime(rt: Runtime<C>) -> Self {
        Self {
            store: rt.store,
            clock: SystemClock,
        }
    }
}

/// The store ports this function reads.
pub trait ReadStore: AuthorizerStore + LinkStore {}
impl<T: AuthorizerStore + LinkStore> ReadStore for T {}

pub const DEFAULT_LIMIT: usize = 50;
pub const MAX_LIMIT: usize = 100;

pub async fn handle<S, K>(app: &App<S, K>, req: Request) -> Result<Response<Body>, Error>
where
    S: ReadStore,
    K: Clock,
{
    Ok(process(app, &req)
        .await
        .unwrap_or_else(ApiError::into_response))
}

async fn process<S, K>(app: &App<S, K>, req: &Request) -> Result<Response<Body>, ApiError>
where
    S: ReadStore,
    K: Clock,
{
    require_method(req, Method::GET)?;
    if path_param(req, "appid").is_some() {
        let appid = appid_param(req)?;
        let record = app
            .store
            .get_authorizer(&appid)
            .await
            .map_err(store_failed)?;
        return match record {
            Some(r) => Ok(json_response(200, &authorizer_json(&r))),
            None => Err(ApiError::new(
                404,
                "unknown_authorizer",
                "no authorizer with this appid",
            )),
        };
    }
    let state = match query_param(req, "state").as_deref() {
        None | Some("") => None,
        Some("authorized") => Some(AuthorizerState::Authorized),
        Some("unauthorized") => Some(AuthorizerState::Unauthorized),
        Some("needs_reauth") => Some(AuthorizerState::NeedsReauth),
        Some(_) => {
            return Err(ApiError::new(
                400,
                "invalid_parameter",
                "state must be authorized, unauthorized or needs_reauth",
            ));
        }
    };
    let limit = match query_param(req, "limit") {
        None => DEFAULT_LIMIT,
        Some(l) => match l.trim().parse::<usize>() {
            Ok(n) if (1..=MAX_LIMIT).contains(&n) => n,
            _ => {
                return Err(ApiError::new(
                    400,
                    "invalid_parameter",
                    format!("limit must be 1 to {MAX_LIMIT}"),
                ));
            }
        },
    };
    let cursor = query_param(req, "cursor").filter(|c| !c.is_empty());
    if cursor.as_deref().is_some_and(|c| !valid_appid(c)) {
        return Err(ApiError::new(
            400,
            "invalid_parameter",
            "cursor must be a next_cursor from a previous page",
        ));
    }
    let customer_ref = match query_param(req, "customer_ref") {
        None => None,
        Some(c) => {
            Some(authorization::check_customer_ref(Some(&c)).map_err(|e| ApiError::from(&e))?)
        }
    };
    let (records, next) = match &customer_ref {
        Some(c) => app
            .store
            .customer_authorizers(c, state, limit, cursor.as_deref())
            .await
            .map_err(store_failed)?,
        None => app
            .store
            .list_authorizers(state, limit, cursor.as_deref())
            .await
            .map_err(store_failed)?,
    };
    Ok(json_response(
        200,
        &serde_json::json!({
            "authorizers": records.iter().map(authorizer_json).collect::<Vec<_>>(),
            "next_cursor": next,
        }),
    ))
}
