//! `POST /login/sessions` `{"appid"}` (IAM): a follow-to-log-in session with a short-lived
//! parametric QR code. 201 `{id, qr_url, expires_at}`.

use lambda_http::http::Method;
use lambda_http::{Body, Error, Request, Response};
use wxopen::app::Deps;
use wxopen::clock::Clock;
use wxopen::clock::SystemClock;
use wxopen::http::{ApiError, json_object, json_response, json_text, require_method, valid_appid};
use wxopen::login::{self, LoginSettings};
use wxopen::runtime::{FromRuntime, Runtime};
use wxopen::secrets::CredentialsProvider;
use wxopen::store::DynamoStore;
use wxopen::store::{LoginStore, TokenServiceStore};

pub struct App<S, C, K> {
    pub deps: Deps<S, C, K>,
    pub login: LoginSettings,
}

impl<C> FromRuntime<C> for App<DynamoStore, C, SystemClock> {
    fn from_runtime(rt: Runtime<C>) -> Self {
        Self {
            login: LoginSettings::from_config(&rt.config),
            deps: rt.into_deps(),
        }
    }
}

pub async fn handle<S, C, K>(app: &App<S, C, K>, req: Request) -> Result<Response<Body>, Error>
where
    S: TokenServiceStore + LoginStore,
    C: CredentialsProvider,
    K: Clock,
{
    Ok(process(app, &req)
        .await
        .unwrap_or_else(ApiError::into_response))
}

async fn process<S, C, K>(app: &App<S, C, K>, req: &Request) -> Result<Response<Body>, ApiError>
where
    S: TokenServiceStore + LoginStore,
    C: CredentialsProvider,
    K: Clock,
{
    require_method(req, Method::POST)?;
    let body = json_object(req)?.ok_or_else(|| {
        ApiError::new(
            400,
            "missing_field",
            "the body must be {\"appid\": \"wx...\"}",
        )
    })?;
    let appid = match json_text(&body, "appid")? {
        Some(a) if valid_appid(a.trim()) => a.trim().to_string(),
        Some(_) => {
            return Err(ApiError::new(
                400,
                "invalid_appid",
                "appid must be \"wx\" followed by 16 lowercase letters or digits",
            ));
        }
        None => return Err(ApiError::new(400, "missing_field", "appid is required")),
    };
    let session = login::create_session(&app.deps.tokens(), &app.login, &appid)
        .await
        .map_err(|e| {
            tracing::warn!(error = %e, authorizer = %appid, "login session not created");
            ApiError::from(&e)
        })?;
    Ok(json_response(
        201,
        &serde_json::json!({
            "id": session.id,
            "appid": session.appid,
            "qr_url": session.qr_url,
            "expires_at": session.expires_at,
        }),
    ))
}
