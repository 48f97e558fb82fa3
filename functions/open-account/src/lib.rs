//! `/authorizers/{appid}/open-account` (IAM): an authorizer's open account (开放平台账号), with the
//! authorizer's token. One function for the four methods (they need the same permissions):
//!
//! * `POST`: creates an open account under the authorizer's subject and binds it (`open/create`).
//!   201 `{appid, open_appid}`; an already bound authorizer → 409 `already_bound` with its
//!   `open_appid`.
//! * `PUT {"open_appid"}`: binds to an open account of the same subject (`open/bind`). 200
//!   `{appid, open_appid, changed}`; binding to the account it is already bound to is a no-op.
//! * `DELETE ?open_appid=`: unbinds (`open/unbind`). 204; not bound → 404 `not_bound`.
//! * `GET`: the bound open account (`open/get`). 200 `{appid, open_appid}`; none → 404.

use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, Error, Request, Response};
pub use wxopen::app::Deps as App;
use wxopen::appid::Appid;
use wxopen::clock::Clock;
use wxopen::http::{ApiError, appid_param, json_object, json_response, json_text, query_param};
use wxopen::open_account::{self, OpenAccountError};
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
    let method = req.method().clone();
    if ![Method::POST, Method::PUT, Method::DELETE, Method::GET].contains(&method) {
        return Err(ApiError::method_not_allowed("GET, POST, PUT or DELETE"));
    }
    let appid = appid_param(req)?;
    let svc = app.tokens();
    let failed = |op: &str, e: OpenAccountError| {
        tracing::warn!(error = %e, authorizer = %appid, "{op} not done");
        ApiError::from(&e)
    };
    match method {
        Method::POST => {
            // No fields are needed; a body, if sent, must still be a JSON object.
            json_object(req)?;
            let open_appid = open_account::create(&svc, &appid)
                .await
                .map_err(|e| failed("open/create", e))?;
            tracing::info!(authorizer = %appid, open_appid = %open_appid, "open account created and bound");
            Ok(json_response(
                201,
                &serde_json::json!({ "appid": appid, "open_appid": open_appid }),
            ))
        }
        Method::PUT => {
            let body = json_object(req)?.ok_or_else(|| {
                ApiError::new(
                    400,
                    "missing_field",
                    "the body must be {\"open_appid\": \"wx...\"}",
                )
            })?;
            let open_appid = open_appid(
                json_text(&body, "open_appid")?,
                "missing_field",
                || "open_appid is required",
            )?;
            let changed = open_account::bind(&svc, &appid, &open_appid)
                .await
                .map_err(|e| failed("open/bind", e))?;
            Ok(json_response(
                200,
                &serde_json::json!({ "appid": appid, "open_appid": open_appid, "changed": changed }),
            ))
        }
        Method::DELETE => {
            let open_appid = open_appid(
                query_param(req, "open_appid"),
                "missing_parameter",
                || "the open_appid query parameter is required",
            )?;
            open_account::unbind(&svc, &appid, &open_appid)
                .await
                .map_err(|e| failed("open/unbind", e))?;
            let mut resp = Response::new(Body::Empty);
            *resp.status_mut() = StatusCode::NO_CONTENT;
            Ok(resp)
        }
        _ => match open_account::get(&svc, &appid).await {
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
            Err(e) => Err(failed("open/get", e)),
        },
    }
}

/// The `open_appid` field or parameter: required, an appid (surrounding spaces allowed).
fn open_appid(
    value: Option<String>,
    missing_code: &'static str,
    missing: impl FnOnce() -> &'static str,
) -> Result<Appid, ApiError> {
    match value {
        Some(o) => Appid::parse(o.trim()).map_err(|_| {
            ApiError::new(
                400,
                "invalid_parameter",
                "open_appid must be \"wx\" followed by 16 lowercase letters or digits",
            )
        }),
        None => Err(ApiError::new(400, missing_code, missing())),
    }
}
