//! `POST /login/sessions` `{"appid", "return_to"?, "state"?}` (IAM): a follow-to-log-in session
//! with a short-lived parametric QR code. 201 `{id, appid, qr_url, expires_at}`, plus `page_url`
//! (the hosted page to send the visitor to) when `return_to` (allowlisted) is given.

use lambda_http::http::Method;
use lambda_http::{Body, Error, Request, Response};
use wxopen::app::Deps;
use wxopen::clock::Clock;
use wxopen::clock::SystemClock;
use wxopen::http::{
    ApiError, json_object, json_response, json_text, public_base, require_method, valid_appid,
};
use wxopen::login::{self, LoginSettings, SessionOptions};
use wxopen::login_codes::{SignInSettings, valid_state};
use wxopen::runtime::{FromRuntime, Runtime};
use wxopen::secrets::CredentialsProvider;
use wxopen::store::DynamoStore;
use wxopen::store::{LoginStore, TokenServiceStore};

pub struct App<S, C, K> {
    pub deps: Deps<S, C, K>,
    pub login: LoginSettings,
    pub sign_in: SignInSettings,
    /// `https://<api domain>`; when absent it is taken from the request's Host header.
    pub public_base: Option<String>,
}

impl<C> FromRuntime<C> for App<DynamoStore, C, SystemClock> {
    fn from_runtime(rt: Runtime<C>) -> Self {
        Self {
            login: LoginSettings::from_config(&rt.config),
            sign_in: SignInSettings::from_config(&rt.config),
            public_base: rt.config.public_base_url.clone(),
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
            "the body must be {\"appid\": \"wx...\", \"return_to\": \"https://...\"}",
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
    let return_to = match json_text(&body, "return_to")? {
        Some(r) => Some(
            app.sign_in
                .check_return_to(r.trim())
                .map_err(|e| ApiError::from(&e))?,
        ),
        None => None,
    };
    let state = json_text(&body, "state")?;
    if state.as_deref().is_some_and(|s| !valid_state(s)) {
        return Err(ApiError::new(
            400,
            "invalid_state",
            "state must be at most 128 printable ASCII characters without spaces",
        ));
    }
    if state.is_some() && return_to.is_none() {
        return Err(ApiError::new(
            400,
            "missing_field",
            "state goes back with return_to: give return_to too",
        ));
    }
    let page_base =
        match &return_to {
            Some(_) => Some(public_base(app.public_base.as_deref(), req).ok_or_else(|| {
                ApiError::new(400, "missing_host", "the request has no Host header")
            })?),
            None => None,
        };
    let options = SessionOptions { return_to, state };
    let session = login::create_session(&app.deps.tokens(), &app.login, &appid, options)
        .await
        .map_err(|e| {
            tracing::warn!(error = %e, authorizer = %appid, "login session not created");
            ApiError::from(&e)
        })?;
    let mut out = serde_json::json!({
        "id": session.id,
        "appid": session.appid,
        "qr_url": session.qr_url,
        "expires_at": session.expires_at,
    });
    if let (Some(base), Some(obj)) = (page_base, out.as_object_mut()) {
        obj.insert(
            "page_url".into(),
            format!("{base}/login/{}", session.id).into(),
        );
    }
    Ok(json_response(201, &out))
}
