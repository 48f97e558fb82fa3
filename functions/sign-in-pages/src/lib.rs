//! The public sign-in pages (no IAM: a visitor's browser calls them):
//! * `GET /login/{id}`: the hosted follow-to-log-in page; once the session is confirmed, a 303 to
//!   `return_to?login_code=…&state=…` (once).
//! * `GET /login/{id}/status`: `{"status": "pending" | "confirmed" | "expired"}` and nothing else.
//! * `GET /oauth/{appid}/authorize?scope=&return_to=&state=`: a 302 to WeChat's authorize page.
//! * `GET /oauth/{appid}/callback`: the code exchanged, the identity recorded, a 302 to
//!   `return_to?login_code=…&state=…`.
//!
//! Every refusal is a page (4xx) that changed nothing. A stranger's request costs one read at
//! most: no write and no WeChat call happens before a valid session or a valid signed state.

use lambda_http::http::Method;
use lambda_http::{Body, Error, Request, Response};
use wxopen::app::Deps;
use wxopen::clock::{Clock, SystemClock};
use wxopen::html::script_nonce;
use wxopen::http::{
    ApiError, json_response, page_response, path_param, public_base, query_param,
    redirect_response, store_failed,
};
use wxopen::login::page::{Page, login_page, message_page};
use wxopen::login::{self, HandOff, valid_session_id};
use wxopen::login_codes::{SignInSettings, valid_state};
use wxopen::oauth::{self, Callback, OauthSettings, Scope, Start};
use wxopen::runtime::{FromRuntime, Runtime};
use wxopen::secrets::CredentialsProvider;
use wxopen::store::{DynamoStore, IdentityStore, LoginCodeStore, LoginStore, TokenServiceStore};

pub struct App<S, C, K> {
    pub deps: Deps<S, C, K>,
    pub sign_in: SignInSettings,
    pub oauth: OauthSettings,
    pub public_base: Option<String>,
}

impl<C> FromRuntime<C> for App<DynamoStore, C, SystemClock> {
    fn from_runtime(rt: Runtime<C>) -> Self {
        Self {
            sign_in: SignInSettings::from_config(&rt.config),
            oauth: OauthSettings::from_config(&rt.config),
            public_base: rt.config.public_base_url.clone(),
            deps: rt.into_deps(),
        }
    }
}

pub async fn handle<S, C, K>(app: &App<S, C, K>, req: Request) -> Result<Response<Body>, Error>
where
    S: TokenServiceStore + LoginStore + IdentityStore + LoginCodeStore,
    C: CredentialsProvider,
    K: Clock,
{
    if req.method() != Method::GET {
        return Ok(ApiError::method_not_allowed("GET").into_response());
    }
    let path = req.uri().path().trim_end_matches('/').to_string();
    Ok(
        if path.starts_with("/oauth/") && path.ends_with("/authorize") {
            authorize(app, &req).await
        } else if path.starts_with("/oauth/") && path.ends_with("/callback") {
            callback(app, &req).await
        } else if path.ends_with("/status") {
            status(app, &req)
                .await
                .unwrap_or_else(ApiError::into_response)
        } else {
            page(app, &req).await
        },
    )
}

fn refused(e: &ApiError) -> Response<Body> {
    let Page { html, csp } = message_page(
        "无法登录",
        "Sign-in not possible",
        &format!("{} ({})", e.message, e.code),
    );
    page_response(
        e.status,
        html.replacen("<main>", &format!("<main data-error=\"{}\">", e.code), 1),
        &csp,
    )
}

fn session_id(req: &Request) -> Result<String, ApiError> {
    let id = path_param(req, "id").unwrap_or_default();
    if valid_session_id(&id) {
        Ok(id)
    } else {
        Err(ApiError::new(
            400,
            "invalid_session_id",
            "a session id is 32 lowercase hex digits",
        ))
    }
}

async fn load<S: LoginStore, C, K>(
    app: &App<S, C, K>,
    req: &Request,
) -> Result<wxopen::model::LoginSession, ApiError> {
    let id = session_id(req)?;
    app.deps
        .store
        .get_session(&id)
        .await
        .map_err(store_failed)?
        .ok_or_else(|| ApiError::new(404, "unknown_session", "no login session with this id"))
}

async fn status<S, C, K>(app: &App<S, C, K>, req: &Request) -> Result<Response<Body>, ApiError>
where
    S: LoginStore,
    K: Clock,
{
    let session = load(app, req).await?;
    let mut r = json_response(
        200,
        &serde_json::json!({ "status": login::public_status(&session, app.deps.clock.now()) }),
    );
    r.headers_mut().insert(
        lambda_http::http::header::CACHE_CONTROL,
        lambda_http::http::HeaderValue::from_static("no-store"),
    );
    Ok(r)
}

async fn page<S, C, K>(app: &App<S, C, K>, req: &Request) -> Response<Body>
where
    S: LoginStore + IdentityStore + LoginCodeStore,
    K: Clock,
{
    let session = match load(app, req).await {
        Ok(s) => s,
        Err(e) => return refused(&e),
    };
    let now = app.deps.clock.now();
    match login::hand_off(&app.deps.store, &app.sign_in, session, now).await {
        Ok(HandOff::Show(session)) => {
            let nonce = script_nonce();
            let Page { html, csp } = login_page(&session, now, &nonce);
            page_response(200, html, &csp)
        }
        Ok(HandOff::Redirect(url)) => redirect_response(&url),
        Ok(HandOff::NoPage) => refused(&ApiError::new(
            404,
            "no_page",
            "this session has no sign-in page",
        )),
        Ok(HandOff::AlreadyUsed) => refused(&ApiError::new(
            410,
            "already_used",
            "this sign-in was already completed; 请重新登录 · start again",
        )),
        Err(e) => {
            tracing::error!(error = %e, "login hand-off failed");
            refused(&ApiError::from(&e))
        }
    }
}

fn appid(req: &Request) -> Result<String, ApiError> {
    wxopen::http::appid_param(req).map(|a| a.to_string())
}

fn required(req: &Request, name: &'static str) -> Result<String, ApiError> {
    query_param(req, name)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| ApiError::new(400, "missing_parameter", format!("{name} is required")))
}

fn provider_state(req: &Request, name: &str) -> Result<Option<String>, ApiError> {
    match query_param(req, name) {
        Some(s) if !valid_state(&s) => Err(ApiError::new(
            400,
            "invalid_state",
            "state must be at most 128 printable ASCII characters without spaces",
        )),
        other => Ok(other),
    }
}

async fn authorize<S, C, K>(app: &App<S, C, K>, req: &Request) -> Response<Body>
where
    S: TokenServiceStore,
    C: CredentialsProvider,
    K: Clock,
{
    let run = async {
        let appid = appid(req)?;
        let scope = Scope::parse(&required(req, "scope")?).ok_or_else(|| {
            ApiError::new(
                400,
                "invalid_scope",
                "scope must be snsapi_base or snsapi_userinfo",
            )
        })?;
        let return_to = required(req, "return_to")?;
        let state = provider_state(req, "state")?;
        let base = public_base(app.public_base.as_deref(), req)
            .ok_or_else(|| ApiError::new(400, "missing_host", "the request has no Host header"))?;
        let start = Start {
            appid: &appid,
            scope,
            return_to: &return_to,
            state: state.as_deref(),
        };
        oauth::authorize_url(
            &app.deps.store,
            &app.deps.credentials,
            &app.oauth,
            &base,
            &start,
            app.deps.clock.now(),
        )
        .await
        .map_err(|e| {
            tracing::warn!(error = %e, authorizer = %appid, "web OAuth not started");
            ApiError::from(&e)
        })
    };
    match run.await {
        Ok(url) => {
            let mut r = redirect_response(&url);
            *r.status_mut() = lambda_http::http::StatusCode::FOUND;
            r
        }
        Err(e) => refused(&e),
    }
}

async fn callback<S, C, K>(app: &App<S, C, K>, req: &Request) -> Response<Body>
where
    S: TokenServiceStore + IdentityStore + LoginCodeStore,
    C: CredentialsProvider,
    K: Clock,
{
    let run = async {
        let appid = appid(req)?;
        let wechat_state = required(req, "state")?;
        let scope = required(req, "scope")?;
        let return_to = required(req, "return_to")?;
        let state = provider_state(req, "ps")?;
        let code = query_param(req, "code").filter(|c| !c.is_empty());
        let cb = Callback {
            appid: &appid,
            code: code.as_deref(),
            wechat_state: &wechat_state,
            scope: &scope,
            return_to: &return_to,
            state: state.as_deref(),
        };
        oauth::complete(&app.deps.tokens(), &app.oauth, &cb)
            .await
            .map_err(|e| {
                tracing::warn!(error = %e, authorizer = %appid, "web OAuth callback refused");
                ApiError::from(&e)
            })
    };
    match run.await {
        Ok(url) => {
            let mut r = redirect_response(&url);
            *r.status_mut() = lambda_http::http::StatusCode::FOUND;
            r
        }
        Err(e) => refused(&e),
    }
}
