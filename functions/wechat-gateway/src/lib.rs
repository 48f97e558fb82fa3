//! The WeChat API gateway (IAM), one Lambda for the proxy and the quota help:
//!
//! * `ANY /authorizers/{appid}/wechat/{path+}`: forwards to WeChat's API host with the
//!   authorizer's token; `ANY /component/wechat/{path+}`: with the component token.
//! * `POST /component/clear-quota`, `POST /authorizers/{appid}/clear-quota` (optional JSON body
//!   `{"cgi_path"}`), `GET /authorizers/{appid}/quota?cgi_path=`.
//!
//! The route is read from the raw path (as the caller sent it, still percent-encoded), so the
//! forwarded path is checked before any layer could decode or normalise it. Domain rules live in
//! `wxopen::gateway`; this is glue: parse, call, map to a response, one metric line per call.

use lambda_http::http::header::{CONTENT_DISPOSITION, CONTENT_TYPE, HeaderName, HeaderValue};
use lambda_http::http::{HeaderMap, StatusCode};
use lambda_http::{Body, Error, Request, RequestExt, Response};
use wxopen::app::Deps;
use wxopen::clock::{Clock, SystemClock};
use wxopen::gateway::metrics::CallRecord;
use wxopen::gateway::quota::{CgiPath, QuotaOp};
use wxopen::gateway::request::{query_from_pairs, strip_query};
use wxopen::gateway::{
    Allowlist, ApiPath, ForwardRequest, GatewayError, GatewaySettings, PathError, Proxied, Proxy,
    RequestError, Target, TokenCache, TokenParam,
};
use wxopen::http::{
    ApiError, body_bytes, json_object, json_response, json_text, query_param, valid_appid,
};
use wxopen::runtime::{FromRuntime, Runtime};
use wxopen::secrets::CredentialsProvider;
use wxopen::store::{DynamoStore, TokenServiceStore};

/// The function's name in metric lines.
pub const FUNCTION: &str = "wechat-gateway";

/// Header a caller may set to choose the token parameter name for APIs where the docs and SDKs
/// disagree (`access_token` or `component_access_token`).
pub const TOKEN_PARAM_HEADER: &str = "x-wxopen-token-param";

/// The function's state: shared dependencies plus the warm token cache (lives as long as the
/// Lambda instance).
pub struct App<S, C, K> {
    pub deps: Deps<S, C, K>,
    pub settings: GatewaySettings,
    pub cache: TokenCache,
}

impl<C> FromRuntime<C> for App<DynamoStore, C, SystemClock> {
    fn from_runtime(rt: Runtime<C>) -> Self {
        let settings = GatewaySettings::from_config(&rt.config);
        Self::new(rt.into_deps(), settings)
    }
}

impl<S, C, K> App<S, C, K> {
    pub fn new(deps: Deps<S, C, K>, settings: GatewaySettings) -> Self {
        Self {
            cache: TokenCache::new(settings.cache.clone()),
            deps,
            settings,
        }
    }
}

pub async fn handle<S, C, K>(app: &App<S, C, K>, req: Request) -> Result<Response<Body>, Error>
where
    S: TokenServiceStore,
    C: CredentialsProvider,
    K: Clock,
{
    let (resp, record) = process(app, &req).await;
    println!(
        "{}",
        record.emf_line(FUNCTION, app.deps.clock.now().saturating_mul(1000))
    );
    Ok(resp)
}

/// One call: the response and what it did (the metric line's content).
pub async fn process<S, C, K>(app: &App<S, C, K>, req: &Request) -> (Response<Body>, CallRecord)
where
    S: TokenServiceStore,
    C: CredentialsProvider,
    K: Clock,
{
    let started = std::time::Instant::now();
    let raw_path = match req.raw_http_path() {
        "" => req.uri().path(),
        p => p,
    };
    let (resp, mut record) = match route(raw_path) {
        Err(e) => (e.into_response(), CallRecord::new("unknown")),
        Ok(Route::Proxy(target, rest)) => proxy(app, req, target, rest).await,
        Ok(Route::ClearQuota(target)) => quota(app, req, Op::Clear(target)).await,
        Ok(Route::Quota(appid)) => quota(app, req, Op::Get(appid)).await,
    };
    record.status = resp.status().as_u16();
    record.latency_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    (resp, record)
}

enum Route<'r> {
    Proxy(Target, &'r str),
    ClearQuota(Target),
    Quota(String),
}

fn authorizer(appid: &str) -> Result<Target, ApiError> {
    if valid_appid(appid) {
        Ok(Target::Authorizer(appid.to_string()))
    } else {
        Err(ApiError::new(
            400,
            "invalid_appid",
            "appid must be \"wx\" followed by 16 lowercase letters or digits",
        ))
    }
}

fn route(raw: &str) -> Result<Route<'_>, ApiError> {
    let unknown = || ApiError::new(404, "unknown_route", "no such route");
    if let Some(rest) = raw.strip_prefix("/component/wechat/") {
        return Ok(Route::Proxy(Target::Component, rest));
    }
    if raw == "/component/clear-quota" {
        return Ok(Route::ClearQuota(Target::Component));
    }
    let (appid, tail) = raw
        .strip_prefix("/authorizers/")
        .and_then(|r| r.split_once('/'))
        .ok_or_else(unknown)?;
    if let Some(rest) = tail.strip_prefix("wechat/") {
        return Ok(Route::Proxy(authorizer(appid)?, rest));
    }
    match tail {
        "clear-quota" => Ok(Route::ClearQuota(authorizer(appid)?)),
        "quota" => authorizer(appid).map(|_| Route::Quota(appid.to_string())),
        _ => Err(unknown()),
    }
}

fn gateway_failed(e: &GatewayError, record: &mut CallRecord) -> Response<Body> {
    record.outcome = if e.is_rejection() {
        "rejected"
    } else {
        "failed"
    };
    if !e.is_rejection() {
        record.failure = Some(e.failure_label());
    }
    match e {
        GatewayError::Path(_) | GatewayError::Request(_) => {
            tracing::warn!(reason = %e, "gateway request refused");
        }
        _ => tracing::warn!(error = %e, api = %record.api, "gateway call failed"),
    }
    ApiError::from(e).into_response()
}

/// The request as WeChat should see it: method, path, query minus caller tokens, content type,
/// body. Nothing else of the caller's (no `Authorization`, no `X-Amz-*`).
fn forward_request(
    req: &Request,
    path: ApiPath,
    settings: &GatewaySettings,
) -> Result<ForwardRequest, GatewayError> {
    let query = match req.uri().query() {
        Some(raw) => strip_query(raw)?,
        None => query_from_pairs(
            req.query_string_parameters_ref()
                .into_iter()
                .flat_map(|q| q.iter()),
        )?,
    };
    let content_type = match req.headers().get(CONTENT_TYPE).map(|v| v.to_str()) {
        None => None,
        Some(Ok(ct)) => Some(ct),
        Some(Err(_)) => return Err(RequestError::InvalidContentType.into()),
    };
    let body = body_bytes(req);
    if body.len() > settings.max_request_bytes {
        return Err(RequestError::BodyTooLarge {
            limit: settings.max_request_bytes,
        }
        .into());
    }
    Ok(ForwardRequest::new(
        req.method().as_str(),
        path,
        query,
        content_type,
        body.to_vec(),
        settings.max_request_bytes,
    )?)
}

fn token_param(req: &Request, target: &Target, path: &ApiPath) -> Result<TokenParam, ApiError> {
    match req.headers().get(TOKEN_PARAM_HEADER) {
        None => Ok(TokenParam::for_path(target, path)),
        Some(v) => v.to_str().ok().and_then(TokenParam::parse).ok_or_else(|| {
            ApiError::new(
                400,
                "invalid_parameter",
                "x-wxopen-token-param must be access_token or component_access_token",
            )
        }),
    }
}

async fn proxy<S, C, K>(
    app: &App<S, C, K>,
    req: &Request,
    target: Target,
    rest: &str,
) -> (Response<Body>, CallRecord)
where
    S: TokenServiceStore,
    C: CredentialsProvider,
    K: Clock,
{
    let mut record = CallRecord::new(target.route());
    record.authorizer = target.authorizer().map(str::to_string);
    let path = match ApiPath::parse(rest, &app.settings.allowlist) {
        Ok(p) => p,
        Err(e) => return (gateway_failed(&e.into(), &mut record), record),
    };
    record.api = path.to_string();
    let param = match token_param(req, &target, &path) {
        Ok(p) => p,
        Err(e) => return (e.into_response(), record),
    };
    let forward = match forward_request(req, path, &app.settings) {
        Ok(f) => f,
        Err(e) => return (gateway_failed(&e, &mut record), record),
    };
    let tokens = app.deps.tokens();
    let proxy = Proxy {
        tokens: &tokens,
        forwarder: &app.deps.wechat,
        cache: &app.cache,
        clock: &app.deps.clock,
        settings: &app.settings,
    };
    match proxy
        .send(&target, &forward, Some(param), &mut record)
        .await
    {
        Ok(p) => {
            record.outcome = "answered";
            let resp = passthrough(&target, p, record.attempts);
            (resp, record)
        }
        Err(e) => (gateway_failed(&e, &mut record), record),
    }
}

fn insert(headers: &mut HeaderMap, name: HeaderName, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        headers.insert(name, v);
    }
}

/// WeChat's status, content type, content disposition and body, unchanged, plus wxopen's
/// headers. Text goes back as text, anything else as binary (API Gateway base64-encodes it).
fn passthrough(target: &Target, p: Proxied, attempts: u32) -> Response<Body> {
    let Proxied {
        response,
        errcode,
        token_version,
        text,
    } = p;
    let body = if response.body.is_empty() {
        Body::Empty
    } else if text {
        match String::from_utf8(response.body) {
            Ok(s) => Body::Text(s),
            Err(e) => Body::Binary(e.into_bytes()),
        }
    } else {
        Body::Binary(response.body)
    };
    let mut r = Response::new(body);
    *r.status_mut() = StatusCode::from_u16(response.status).unwrap_or(StatusCode::BAD_GATEWAY);
    let h = r.headers_mut();
    if let Some(ct) = &response.content_type {
        insert(h, CONTENT_TYPE, ct);
    }
    if let Some(cd) = &response.content_disposition {
        insert(h, CONTENT_DISPOSITION, cd);
    }
    if let Some(appid) = target.authorizer() {
        insert(h, HeaderName::from_static("x-wxopen-authorizer"), appid);
    }
    if let Some(v) = token_version {
        insert(
            h,
            HeaderName::from_static("x-wxopen-token-version"),
            &v.to_string(),
        );
    }
    if let Some(code) = errcode.filter(|c| *c != 0) {
        insert(
            h,
            HeaderName::from_static("x-wxopen-errcode"),
            &code.to_string(),
        );
    }
    insert(
        h,
        HeaderName::from_static("x-wxopen-attempts"),
        &attempts.to_string(),
    );
    r
}

enum Op {
    Clear(Target),
    Get(String),
}

fn quota_op(req: &Request, op: Op, allow: &Allowlist) -> Result<QuotaOp, ApiError> {
    let bad_path = |e: PathError| ApiError::new(400, "invalid_cgi_path", format!("cgi_path: {e}"));
    match op {
        Op::Clear(target) => {
            wxopen::http::require_method(req, lambda_http::http::Method::POST)?;
            let cgi_path = match json_object(req)? {
                None => None,
                Some(obj) => json_text(&obj, "cgi_path")?,
            };
            match (target, cgi_path) {
                (Target::Component, None) => Ok(QuotaOp::ClearComponent),
                (Target::Component, Some(_)) => Err(ApiError::new(
                    400,
                    "invalid_parameter",
                    "cgi_path applies to an authorizer's quota only",
                )),
                (Target::Authorizer(appid), cgi_path) => Ok(QuotaOp::ClearAuthorizer {
                    appid,
                    cgi_path: cgi_path
                        .as_deref()
                        .map(|p| CgiPath::parse_allowed(p, allow))
                        .transpose()
                        .map_err(bad_path)?,
                }),
            }
        }
        Op::Get(appid) => {
            wxopen::http::require_method(req, lambda_http::http::Method::GET)?;
            let raw = query_param(req, "cgi_path").ok_or_else(|| {
                ApiError::new(
                    400,
                    "missing_parameter",
                    "cgi_path is required, e.g. ?cgi_path=/cgi-bin/message/custom/send",
                )
            })?;
            Ok(QuotaOp::Get {
                appid,
                cgi_path: CgiPath::parse_allowed(&raw, allow).map_err(bad_path)?,
            })
        }
    }
}

async fn quota<S, C, K>(app: &App<S, C, K>, req: &Request, op: Op) -> (Response<Body>, CallRecord)
where
    S: TokenServiceStore,
    C: CredentialsProvider,
    K: Clock,
{
    let mut record = CallRecord::new("quota");
    if let Op::Clear(Target::Authorizer(a)) | Op::Get(a) = &op {
        record.authorizer = Some(a.clone());
    }
    let op = match quota_op(req, op, &app.settings.allowlist) {
        Ok(op) => op,
        Err(e) => return (e.into_response(), record),
    };
    let creds = match app.deps.credentials.credentials().await {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "component credentials unavailable");
            record.outcome = "failed";
            return (ApiError::from(&e).into_response(), record);
        }
    };
    let call = op.call(&creds);
    record.api = call.request.path.to_string();
    let tokens = app.deps.tokens();
    let proxy = Proxy {
        tokens: &tokens,
        forwarder: &app.deps.wechat,
        cache: &app.cache,
        clock: &app.deps.clock,
        settings: &app.settings,
    };
    let proxied = match proxy
        .send(&call.target, &call.request, call.token, &mut record)
        .await
    {
        Ok(p) => p,
        Err(e) => return (gateway_failed(&e, &mut record), record),
    };
    record.outcome = "answered";
    match op.answer(&proxied) {
        Ok(body) => (json_response(200, &body), record),
        Err(e) => {
            tracing::warn!(errcode = e.errcode(), api = %record.api, "quota call refused by WeChat");
            (ApiError::from(&e).into_response(), record)
        }
    }
}
