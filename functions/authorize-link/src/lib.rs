//! `GET /authorize` (public HTML page) and `POST /authorize/links` (IAM, JSON): authorization
//! links made from a fresh single-use pre-auth code.

use lambda_http::http::Method;
use lambda_http::http::header::HOST;
use lambda_http::{Body, Error, Request, Response};
use wxopen::app::Deps;
use wxopen::authorization::{self, LinkHosts, LinkOptions, create_links, failure_page};
use wxopen::clock::Clock;
use wxopen::clock::SystemClock;
use wxopen::http::{ApiError, html_response, json_object, json_response, json_text, query_param};
use wxopen::runtime::{FromRuntime, Runtime};
use wxopen::secrets::CredentialsProvider;
use wxopen::store::DynamoStore;
use wxopen::store::TokenServiceStore;

pub struct App<S, C, K> {
    pub deps: Deps<S, C, K>,
    pub hosts: LinkHosts,
    /// `https://<api domain>`; when absent it is taken from the request's Host header.
    pub public_base: Option<String>,
}

impl<C> FromRuntime<C> for App<DynamoStore, C, SystemClock> {
    fn from_runtime(rt: Runtime<C>) -> Self {
        Self {
            hosts: LinkHosts::from_config(&rt.config),
            public_base: rt.config.public_base_url.clone(),
            deps: rt.into_deps(),
        }
    }
}

pub async fn handle<S, C, K>(app: &App<S, C, K>, req: Request) -> Result<Response<Body>, Error>
where
    S: TokenServiceStore,
    C: CredentialsProvider,
    K: Clock,
{
    Ok(match *req.method() {
        Method::GET => page(app, &req).await,
        Method::POST => links_json(app, &req)
            .await
            .unwrap_or_else(ApiError::into_response),
        _ => ApiError::method_not_allowed("GET (page) or POST (JSON)").into_response(),
    })
}

fn public_base<S, C, K>(app: &App<S, C, K>, req: &Request) -> Option<String> {
    if let Some(base) = &app.public_base {
        return Some(base.clone());
    }
    let host = req.headers().get(HOST)?.to_str().ok()?;
    let proto = req
        .headers()
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("https");
    Some(format!("{proto}://{host}"))
}

async fn page<S, C, K>(app: &App<S, C, K>, req: &Request) -> Response<Body>
where
    S: TokenServiceStore,
    C: CredentialsProvider,
    K: Clock,
{
    let options = match LinkOptions::parse(
        query_param(req, "auth_type").as_deref(),
        query_param(req, "biz_appid").as_deref(),
        query_param(req, "category_id_list").as_deref(),
    ) {
        Ok(o) => o,
        Err(e) => return html_response(400, failure_page(&e.to_string())),
    };
    let Some(base) = public_base(app, req) else {
        return html_response(400, failure_page("the request has no Host header"));
    };
    let svc = app.deps.tokens();
    match create_links(
        &svc,
        &app.hosts,
        &authorization::redirect_uri(&base),
        &options,
    )
    .await
    {
        Ok(links) => html_response(200, authorization::authorize_page(&links)),
        Err(e) => {
            tracing::warn!(error = %e, "authorization page unavailable");
            let api = ApiError::from(&e);
            html_response(api.status, failure_page(&api.message))
        }
    }
}

async fn links_json<S, C, K>(app: &App<S, C, K>, req: &Request) -> Result<Response<Body>, ApiError>
where
    S: TokenServiceStore,
    C: CredentialsProvider,
    K: Clock,
{
    let obj = json_object(req)?.unwrap_or_default();
    let text = |k: &str| json_text(&obj, k);
    let options = LinkOptions::parse(
        text("auth_type")?.as_deref(),
        text("biz_appid")?.as_deref(),
        text("category_id_list")?.as_deref(),
    )
    .map_err(|e| ApiError::new(400, "invalid_parameter", e.to_string()))?;
    let base = public_base(app, req)
        .ok_or_else(|| ApiError::new(400, "missing_host", "the request has no Host header"))?;
    let svc = app.deps.tokens();
    let links = create_links(
        &svc,
        &app.hosts,
        &authorization::redirect_uri(&base),
        &options,
    )
    .await
    .map_err(|e| {
        tracing::warn!(error = %e, "authorization links unavailable");
        ApiError::from(&e)
    })?;
    Ok(json_response(
        200,
        &serde_json::json!({
            "pc_url": links.pc_url,
            "mobile_url": links.mobile_url,
            "expires_at": links.expires_at,
            "note": "single use; open it from a page on the platform's registered authorization domain, by a click",
        }),
    ))
}
