//! `POST /authorize/links` (IAM): a link for one of the provider's customers;
//! `GET /authorize/links/{id}` (IAM): its outcome; `GET /authorize?link=<id>` (public): the
//! merchant's page, only for a live link (anything else is a 404 page that calls nothing).

use lambda_http::http::Method;
use lambda_http::http::header::HOST;
use lambda_http::{Body, Error, Request, Response};
use wxopen::app::Deps;
use wxopen::authorization::{
    self, LinkHosts, LinkOptions, LinkPage, LinkSettings, NewLink, failure_page,
};
use wxopen::clock::Clock;
use wxopen::clock::SystemClock;
use wxopen::http::views::link_json;
use wxopen::http::{
    ApiError, html_response, json_object, json_response, json_text, path_param, query_param,
    store_failed,
};
use wxopen::runtime::{FromRuntime, Runtime};
use wxopen::secrets::CredentialsProvider;
use wxopen::store::DynamoStore;
use wxopen::store::TokenServiceStore;

pub struct App<S, C, K> {
    pub deps: Deps<S, C, K>,
    pub hosts: LinkHosts,
    pub settings: LinkSettings,
    /// `https://<api domain>`; when absent it is taken from the request's Host header.
    pub public_base: Option<String>,
}

impl<C> FromRuntime<C> for App<DynamoStore, C, SystemClock> {
    fn from_runtime(rt: Runtime<C>) -> Self {
        Self {
            hosts: LinkHosts::from_config(&rt.config),
            settings: LinkSettings::from_config(&rt.config),
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
    let json = |r: Result<Response<Body>, ApiError>| r.unwrap_or_else(ApiError::into_response);
    Ok(match (req.method().clone(), path_param(&req, "id")) {
        (Method::GET, Some(id)) => json(link_status(app, &id).await),
        (Method::POST, None) => json(create(app, &req).await),
        (Method::GET, None) => page(app, &req).await,
        (_, Some(_)) => ApiError::method_not_allowed("GET").into_response(),
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

const NOT_FOUND: &str = "This authorization link is unknown or has expired. Ask the provider for a new one. \
                         此授权链接无效或已过期，请向服务商索取新的链接。";

async fn page<S, C, K>(app: &App<S, C, K>, req: &Request) -> Response<Body>
where
    S: TokenServiceStore,
    C: CredentialsProvider,
    K: Clock,
{
    let link = query_param(req, "link");
    if !link.as_deref().is_some_and(authorization::is_link_id) {
        return html_response(404, failure_page(NOT_FOUND));
    }
    let Some(base) = public_base(app, req) else {
        return html_response(400, failure_page("the request has no Host header"));
    };
    let svc = app.deps.tokens();
    match authorization::link_page(&svc, &app.hosts, &app.settings, &base, link.as_deref()).await {
        Ok(LinkPage::Live(links)) => html_response(200, authorization::authorize_page(&links)),
        Ok(LinkPage::Authorized(l)) => html_response(
            200,
            authorization::success_page(l.authorizer_appid.as_deref().unwrap_or_default(), None),
        ),
        Ok(LinkPage::NotFound) => html_response(404, failure_page(NOT_FOUND)),
        Err(e) => {
            tracing::warn!(error = %e, "authorization page unavailable");
            let api = ApiError::from(&e);
            html_response(api.status, failure_page(&api.message))
        }
    }
}

async fn create<S, C, K>(app: &App<S, C, K>, req: &Request) -> Result<Response<Body>, ApiError>
where
    S: TokenServiceStore,
    C: CredentialsProvider,
    K: Clock,
{
    let obj = json_object(req)?.unwrap_or_default();
    let text = |k: &str| json_text(&obj, k);
    let customer_ref = authorization::check_customer_ref(text("customer_ref")?.as_deref())
        .map_err(|e| ApiError::from(&e))?;
    let options = LinkOptions::parse(
        text("auth_type")?.as_deref(),
        text("biz_appid")?.as_deref(),
        text("category_id_list")?.as_deref(),
    )
    .map_err(|e| ApiError::from(&e))?;
    let return_to = match text("return_to")?.filter(|r| !r.trim().is_empty()) {
        Some(r) => Some(
            app.settings
                .check_return_to(&r)
                .map_err(|e| ApiError::from(&e))?
                .to_string(),
        ),
        None => None,
    };
    let base = public_base(app, req)
        .ok_or_else(|| ApiError::new(400, "missing_host", "the request has no Host header"))?;
    let svc = app.deps.tokens();
    let request = NewLink {
        customer_ref,
        options,
        return_to,
    };
    let created = authorization::create_link(&svc, &app.hosts, &app.settings, &base, &request)
        .await
        .map_err(|e| {
            tracing::warn!(error = %e, "authorization link not created");
            ApiError::from(&e)
        })?;
    Ok(json_response(
        201,
        &serde_json::json!({
            "id": created.link.id,
            "customer_ref": created.link.customer_ref,
            "page_url": authorization::page_url(&base, &created.link.id),
            "pc_url": created.urls.pc_url,
            "mobile_url": created.urls.mobile_url,
            "expires_at": created.link.expires_at,
            "urls_expire_at": created.urls.expires_at,
            "note": "send the merchant to page_url; pc_url and mobile_url work once, until urls_expire_at, and only when opened by a click from a page on the platform's registered domain",
        }),
    ))
}

async fn link_status<S, C, K>(app: &App<S, C, K>, id: &str) -> Result<Response<Body>, ApiError>
where
    S: TokenServiceStore,
    C: CredentialsProvider,
    K: Clock,
{
    let unknown = || ApiError::new(404, "unknown_link", "no authorization link with this id");
    if !authorization::is_link_id(id) {
        return Err(unknown());
    }
    let store = &app.deps.store;
    let (link, _) = store
        .get_link(id)
        .await
        .map_err(store_failed)?
        .ok_or_else(unknown)?;
    let authorizer = match &link.authorizer_appid {
        Some(appid) => store.get_authorizer(appid).await.map_err(store_failed)?,
        None => None,
    };
    Ok(json_response(
        200,
        &link_json(&link, authorizer.as_ref(), app.deps.clock.now()),
    ))
}
