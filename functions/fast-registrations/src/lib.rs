//! Fast registration of mini programs:
//! * `POST /fast-registrations` (IAM) `{kind?, name, code, component_phone, customer_ref,
//!   oa_appid?, return_to?}` → 201 `{id, state, authorize_url, qr_code, expires_at, …}`
//!   (`qr_code`: a `data:image/png;base64,…` URL of the QR code of `authorize_url`);
//! * `GET /fast-registrations/{id}` (IAM) → its state;
//! * `GET /fast-registrations/{id}/callback?ticket=` (public): where WeChat's
//!   `fastregisterauth` page sends the official account's admin back. Only a live, pending
//!   official-account registration is acted on; anything else is a 404 page after one read.
//!
//! Every field is validated before any write or WeChat call.

use lambda_http::http::Method;
use lambda_http::{Body, Error, Request, Response};
use wxopen::app::Deps;
use wxopen::authorization::LinkSettings;
use wxopen::callbacks::fast_registration;
use wxopen::clock::{Clock, SystemClock};
use wxopen::events::outbox;
use wxopen::events::{EventBridgePublisher, EventEntry, EventPublisher};
use wxopen::html::{escape_html, page};
use wxopen::http::views::registration_json;
use wxopen::http::{
    ApiError, html_response, json_object, json_response, json_text, path_param, public_base,
    query_param, redirect_response, store_failed,
};
use wxopen::registration::{
    self, NewRegistration, RegistrationError, RegistrationRequest, RegistrationSettings,
};
use wxopen::runtime::{FromRuntime, Runtime};
use wxopen::secrets::CredentialsProvider;
use wxopen::store::outbox::EventRecordStore;
use wxopen::store::{DynamoStore, RegistrationStore, TokenServiceStore};

/// The ports this function needs.
pub trait FastRegistrationStore: TokenServiceStore + RegistrationStore + EventRecordStore {}
impl<T: TokenServiceStore + RegistrationStore + EventRecordStore> FastRegistrationStore for T {}

pub struct App<S, C, K, P = EventBridgePublisher> {
    pub deps: Deps<S, C, K>,
    pub settings: RegistrationSettings,
    /// The `return_to` allow-list (`AUTHORIZE_RETURN_TO_ALLOWLIST`, as for links).
    pub links: LinkSettings,
    pub public_base: Option<String>,
    /// Where `registration.changed` (and `authorization.changed`) are published.
    pub publisher: P,
}

impl<C> FromRuntime<C> for App<DynamoStore, C, SystemClock> {
    fn from_runtime(rt: Runtime<C>) -> Self {
        Self {
            settings: RegistrationSettings::from_config(&rt.config),
            links: LinkSettings::from_config(&rt.config),
            public_base: rt.config.public_base_url.clone(),
            publisher: rt.event_publisher(),
            deps: rt.into_deps(),
        }
    }
}

pub async fn handle<S, C, K, P>(
    app: &App<S, C, K, P>,
    req: Request,
) -> Result<Response<Body>, Error>
where
    S: FastRegistrationStore,
    C: CredentialsProvider,
    K: Clock,
    P: EventPublisher,
{
    let json = |r: Result<Response<Body>, ApiError>| r.unwrap_or_else(ApiError::into_response);
    let is_callback = req
        .uri()
        .path()
        .trim_end_matches('/')
        .ends_with("/callback");
    Ok(
        match (req.method().clone(), path_param(&req, "id"), is_callback) {
            (Method::GET, Some(id), true) => callback(app, &req, &id).await,
            (Method::GET, Some(id), false) => json(status(app, &id).await),
            (Method::POST, None, _) => json(create(app, &req).await),
            (_, Some(_), _) => ApiError::method_not_allowed("GET").into_response(),
            _ => ApiError::method_not_allowed("POST").into_response(),
        },
    )
}

async fn create<S, C, K, P>(
    app: &App<S, C, K, P>,
    req: &Request,
) -> Result<Response<Body>, ApiError>
where
    S: FastRegistrationStore,
    C: CredentialsProvider,
    K: Clock,
{
    let obj = json_object(req)?.unwrap_or_default();
    let text = |k: &str| json_text(&obj, k);
    let (kind, name, code, phone, customer_ref, oa_appid) = (
        text("kind")?,
        text("name")?,
        text("code")?,
        text("component_phone")?,
        text("customer_ref")?,
        text("oa_appid")?,
    );
    let return_to = match text("return_to")?.filter(|r| !r.trim().is_empty()) {
        Some(r) => Some(
            app.links
                .check_return_to(&r)
                .map_err(|_| ApiError::from(&RegistrationError::ReturnTo))?
                .to_string(),
        ),
        None => None,
    };
    let request = NewRegistration::parse(
        &RegistrationRequest {
            kind: kind.as_deref(),
            name: name.as_deref(),
            code: code.as_deref(),
            component_phone: phone.as_deref(),
            customer_ref: customer_ref.as_deref(),
            oa_appid: oa_appid.as_deref(),
        },
        return_to,
    )
    .map_err(|e| ApiError::from(&e))?;
    let base = public_base(app.public_base.as_deref(), req)
        .ok_or_else(|| ApiError::new(400, "missing_host", "the request has no Host header"))?;
    let svc = app.deps.tokens();
    let created = registration::start(&svc, &app.settings, &base, &request)
        .await
        .map_err(|e| {
            tracing::warn!(error = %e, "fast registration not started");
            ApiError::from(&e)
        })?;
    let mut body = registration_json(&created, app.deps.clock.now());
    if let Some(o) = body.as_object_mut() {
        o.insert(
            "qr_code".into(),
            wxopen::qr::png_data_url(&created.authorize_url).into(),
        );
    }
    Ok(json_response(201, &body))
}

async fn status<S, C, K, P>(app: &App<S, C, K, P>, id: &str) -> Result<Response<Body>, ApiError>
where
    S: FastRegistrationStore,
    K: Clock,
{
    let unknown = || {
        ApiError::new(
            404,
            "unknown_registration",
            "no fast registration with this id",
        )
    };
    if !registration::is_registration_id(id) {
        return Err(unknown());
    }
    let r = app
        .deps
        .store
        .get_registration(id)
        .await
        .map_err(store_failed)?
        .ok_or_else(unknown)?;
    Ok(json_response(
        200,
        &registration_json(&r, app.deps.clock.now()),
    ))
}

const NOT_FOUND: &str = "This registration link is unknown, already used or expired. Ask the provider for a new one. \
                         此注册链接无效、已使用或已过期，请向服务商索取新的链接。";

fn result_page(status: u16, title: &str, text: &str) -> Response<Body> {
    let class = if status == 200 { "ok" } else { "fail" };
    html_response(
        status,
        page(
            title,
            &format!(
                "<h1 class=\"{class}\">{}</h1><p>{}</p>",
                escape_html(title),
                escape_html(text)
            ),
        ),
    )
}

async fn callback<S, C, K, P>(app: &App<S, C, K, P>, req: &Request, id: &str) -> Response<Body>
where
    S: FastRegistrationStore,
    C: CredentialsProvider,
    K: Clock,
    P: EventPublisher,
{
    let not_found = || result_page(404, "Link not usable 链接不可用", NOT_FOUND);
    let Some(ticket) = query_param(req, "ticket").filter(|t| !t.is_empty() && t.len() <= 512)
    else {
        return not_found();
    };
    if !registration::is_registration_id(id) {
        return not_found();
    }
    let now = app.deps.clock.now();
    let reg = match registration::live_registration(&app.deps.store, id, now).await {
        Ok(Some(r)) => r,
        Ok(None) => return not_found(),
        Err(e) => {
            tracing::warn!(error = %e, "fast registration callback: store unavailable");
            return result_page(
                503,
                "Try again 请重试",
                "the state store failed; reload this page",
            );
        }
    };
    let svc = app.deps.tokens();
    let ticket = ticket.into();
    match fast_registration::on_ticket(&svc, &reg, &ticket, now).await {
        Ok((appid, events)) => {
            publish(app, &events, now).await;
            match &reg.return_to {
                Some(to) => {
                    let sep = if to.contains('?') { '&' } else { '?' };
                    redirect_response(&format!("{to}{sep}registration={}", reg.id))
                }
                None => result_page(
                    200,
                    "Mini program registered 小程序已注册",
                    &format!(
                        "The new mini program {appid} is authorized to the provider. 新小程序已授权给服务商。"
                    ),
                ),
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, registration = %reg.id, "official account fast registration failed");
            let api = ApiError::from(&e);
            result_page(api.status, "Registration failed 注册失败", &api.message)
        }
    }
}

async fn publish<S, C, K, P>(app: &App<S, C, K, P>, events: &[wxopen::events::Event], now: i64)
where
    S: FastRegistrationStore,
    P: EventPublisher,
{
    let entries: Result<Vec<_>, _> = events.iter().map(EventEntry::from_event).collect();
    let result = match entries {
        Ok(entries) => outbox::publish_or_defer(&app.deps.store, &app.publisher, &entries, now)
            .await
            .map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    if let Err(e) = result {
        tracing::error!(error = %e, "registration events neither published nor deferred");
    }
}
