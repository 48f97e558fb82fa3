//! `GET /status` (IAM, read-only): the operator's view behind `wxopen status`: ticket age,
//! component token expiry, authorizers by state, failing tokens, outbox age, release jobs not
//! yet finished (stalled past the audit-poll window, waiting on the audit quota). See
//! `wxopen::status`. Never returns a ticket or a token.
//!
//! Its own function (not the authorizers one) because it reads the ticket and token items,
//! which the authorizers function's policy keeps it off.

use lambda_http::http::Method;
use lambda_http::{Body, Error, Request, Response};
use wxopen::clock::{Clock, SystemClock};
use wxopen::http::views::status_json;
use wxopen::http::{ApiError, json_response, require_method, store_failed};
use wxopen::runtime::{FromRuntime, Runtime};
use wxopen::store::DynamoStore;
use wxopen::store::outbox::EventRecordStore;
use wxopen::store::{AuthorizerStore, ReleaseStore, TicketStore, TokenStore};

pub struct App<S, K = SystemClock> {
    pub store: S,
    pub clock: K,
    /// A release job none of whose open targets moved for this long is `stalled`: the
    /// engine's audit-poll delay (`RELEASE_AUDIT_POLL_AFTER_SECONDS`).
    pub stall_after_secs: i64,
}

impl<C> FromRuntime<C> for App<DynamoStore> {
    fn from_runtime(rt: Runtime<C>) -> Self {
        Self {
            stall_after_secs: i64::try_from(rt.config.release_audit_poll_after.as_secs())
                .unwrap_or(i64::MAX),
            store: rt.store,
            clock: SystemClock,
        }
    }
}

pub async fn handle<S, K>(app: &App<S, K>, req: Request) -> Result<Response<Body>, Error>
where
    S: TicketStore + TokenStore + AuthorizerStore + EventRecordStore + ReleaseStore,
    K: Clock,
{
    Ok(process(app, &req)
        .await
        .unwrap_or_else(ApiError::into_response))
}

async fn process<S, K>(app: &App<S, K>, req: &Request) -> Result<Response<Body>, ApiError>
where
    S: TicketStore + TokenStore + AuthorizerStore + EventRecordStore + ReleaseStore,
    K: Clock,
{
    require_method(req, Method::GET)?;
    let status = wxopen::status::platform_status(&app.store, &app.clock, app.stall_after_secs)
        .await
        .map_err(store_failed)?;
    Ok(json_response(200, &status_json(&status)))
}
