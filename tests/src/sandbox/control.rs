//! The control API under `/sandbox/`: configuration, clock, the merchant and user actors, pushes,
//! faults and the records tests assert on. Answers JSON; errors are `{"error": "…"}` with 4xx.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{Method, StatusCode, Uri};
use axum::response::{IntoResponse, Json, Response};
use serde_json::{Map, Value, json};

use super::http::deliver_component;
use super::push::{self, AuthPush, F, Outgoing};
use super::state::{Fault, Kind, Merchant, OpenAccount, Owner, State as World};
use super::util::{func_ids, int_field, json_object, openid, random_from, str_field};
use super::{API_NAMES, SandboxConfig, Shared};

type Reply = Result<Response, Fail>;

/// A control-API error: `{"error": "…"}` with a 4xx status.
pub struct Fail {
    status: StatusCode,
    error: String,
}

impl IntoResponse for Fail {
    fn into_response(self) -> Response {
        (self.status, Json(json!({ "error": self.error }))).into_response()
    }
}

fn ok(value: Value) -> Reply {
    Ok((StatusCode::OK, Json(value)).into_response())
}

fn bad(status: StatusCode, error: impl Into<String>) -> Fail {
    Fail {
        status,
        error: error.into(),
    }
}

fn bad_request(error: impl Into<String>) -> Fail {
    bad(StatusCode::BAD_REQUEST, error)
}

fn body_object(body: &[u8]) -> Result<Map<String, Value>, Fail> {
    json_object(body).ok_or_else(|| bad_request("body must be a JSON object"))
}

fn required(obj: &Map<String, Value>, key: &str) -> Result<String, Fail> {
    str_field(obj, key)
        .filter(|s| !s.trim().is_empty())
        .ok_or_else(|| bad_request(format!("{key} is required")))
}

pub async fn handle(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    body: Bytes,
) -> Response {
    let path = uri
        .path()
        .strip_prefix("/sandbox/")
        .unwrap_or_default()
        .trim_end_matches('/');
    let segs: Vec<&str> = path.split('/').collect();
    match route(&shared, &method, &segs, &body).await {
        Ok(r) => r,
        Err(f) => f.into_response(),
    }
}

async fn route(shared: &Arc<Shared>, method: &Method, segs: &[&str], body: &[u8]) -> Reply {
    let get = *method == Method::GET;
    let post = *method == Method::POST;
    let delete = *method == Method::DELETE;
    match segs {
        ["config"] if get => ok(config_json(&shared.lock().config)),
        ["config"] if post => update_config(shared, body_object(body)?),
        ["clock"] if get => {
            let st = shared.lock();
            ok(json!({ "now": st.now(), "offset": st.clock_offset }))
        }
        ["clock", "advance"] if post => {
            let obj = body_object(body)?;
            let seconds = int_field(&obj, "seconds")
                .ok()
                .flatten()
                .ok_or_else(|| bad_request("seconds must be an integer"))?;
            let mut st = shared.lock();
            st.clock_offset = st.clock_offset.saturating_add(seconds);
            ok(json!({ "now": st.now(), "offset": st.clock_offset }))
        }
        ["push", "ticket"] if post => ok(push_ticket(shared).await),
        ["pushes"] if get => ok(json!(shared.lock().pushes)),
        ["pushes"] if delete => {
            shared.lock().pushes.clear();
            ok(json!({ "ok": true }))
        }
        ["calls"] if get => ok(json!(shared.lock().calls)),
        ["calls"] if delete => {
            shared.lock().calls.clear();
            ok(json!({ "ok": true }))
        }
        ["custom-messages"] if get => ok(json!(shared.lock().custom_messages)),
        ["custom-messages"] if delete => {
            shared.lock().custom_messages.clear();
            ok(json!({ "ok": true }))
        }
        ["state"] if get => ok(shared.lock().summary()),
        ["faults"] if get => ok(json!(shared.lock().faults)),
        ["faults"] if post => add_fault(shared, body_object(body)?),
        ["faults"] if delete => {
            shared.lock().faults.clear();
            ok(json!({ "ok": true }))
        }
        ["merchants"] if get => {
            let st = shared.lock();
            ok(json!(st.merchants.values().collect::<Vec<_>>()))
        }
        ["merchants"] if post => upsert_merchant(shared, body_object(body)?),
        ["merchants", appid] if get => {
            let st = shared.lock();
            match st.merchants.get(*appid) {
                Some(m) => ok(json!(m)),
                None => Err(bad(StatusCode::NOT_FOUND, "unknown merchant")),
            }
        }
        ["merchants", appid, "authorize"] if post => {
            authorize(shared, appid, body_object(body)?).await
        }
        ["merchants", appid, "update"] if post => {
            update_authorization(shared, appid, body_object(body)?).await
        }
        ["merchants", appid, "cancel"] if post => cancel(shared, appid).await,
        ["open-accounts"] if get => {
            let st = shared.lock();
            ok(json!(st.open_accounts.values().collect::<Vec<_>>()))
        }
        ["open-accounts"] if post => create_open_account(shared, body_object(body)?),
        ["open-accounts", id] if get => {
            let st = shared.lock();
            match st.open_accounts.get(*id) {
                Some(o) => ok(json!(o)),
                None => Err(bad(StatusCode::NOT_FOUND, "unknown open account")),
            }
        }
        ["merchants", "bulk"] if post => bulk_merchants(shared, body_object(body)?),
        ["release-test", "run"] if post => {
            let obj = body_object(body)?;
            let appid =
                str_field(&obj, "appid").unwrap_or_else(|| "wx570bc396a51b8ff8".to_string());
            match super::release::run(shared, &appid, ControlDeliver).await {
                Ok(v) => ok(v),
                Err(e) => Err(bad_request(e)),
            }
        }
        ["users", "scan"] if post => user_scan(shared, body_object(body)?).await,
        ["users", "message"] if post => user_message(shared, body_object(body)?).await,
        ["users", "event"] if post => user_event(shared, body_object(body)?).await,
        _ => Err(bad(
            StatusCode::NOT_FOUND,
            format!("no control route {method} /sandbox/{}", segs.join("/")),
        )),
    }
}

// ---- configuration ----

fn config_json(c: &SandboxConfig) -> Value {
    json!({
        "component_appid": c.component_appid,
        "component_callback_url": c.component_callback_url,
        "message_callback_base": c.message_callback_base,
        "token_ttl_secs": c.token_ttl_secs,
        "token_overlap_secs": c.token_overlap_secs,
        "pre_auth_code_ttl_secs": c.pre_auth_code_ttl_secs,
        "auth_code_ttl_secs": c.auth_code_ttl_secs,
        "ticket_ttl_secs": c.ticket_ttl_secs,
        "daily_quota": c.daily_quota,
        "open_account_bind_limit": c.open_account_bind_limit,
        "push_deadline_ms": u64::try_from(c.push_deadline.as_millis()).unwrap_or(u64::MAX),
        "push_attempts": c.push_attempts,
        "drop_delay_ms": u64::try_from(c.drop_delay.as_millis()).unwrap_or(u64::MAX),
    })
}

fn callback_url(value: &Value, key: &str) -> Result<Option<String>, Fail> {
    match value {
        Value::Null => Ok(None),
        Value::String(s) => match url::Url::parse(s) {
            Ok(u) if matches!(u.scheme(), "http" | "https") => Ok(Some(s.clone())),
            _ => Err(bad_request(format!("{key} must be an http(s) URL"))),
        },
        _ => Err(bad_request(format!("{key} must be a URL or null"))),
    }
}

fn non_negative(value: &Value, key: &str) -> Result<u64, Fail> {
    value
        .as_u64()
        .ok_or_else(|| bad_request(format!("{key} must be a non-negative integer")))
}

fn secs(value: &Value, key: &str) -> Result<i64, Fail> {
    i64::try_from(non_negative(value, key)?).map_err(|_| bad_request(format!("{key} is too large")))
}

fn update_config(shared: &Arc<Shared>, obj: Map<String, Value>) -> Reply {
    let mut st = shared.lock();
    let mut c = st.config.clone();
    for (key, value) in &obj {
        match key.as_str() {
            "component_callback_url" => c.component_callback_url = callback_url(value, key)?,
            "message_callback_base" => c.message_callback_base = callback_url(value, key)?,
            "token_ttl_secs" => c.token_ttl_secs = secs(value, key)?,
            "token_overlap_secs" => c.token_overlap_secs = secs(value, key)?,
            "pre_auth_code_ttl_secs" => c.pre_auth_code_ttl_secs = secs(value, key)?,
            "auth_code_ttl_secs" => c.auth_code_ttl_secs = secs(value, key)?,
            "ticket_ttl_secs" => c.ticket_ttl_secs = secs(value, key)?,
            "open_account_bind_limit" => {
                c.open_account_bind_limit = usize::try_from(non_negative(value, key)?)
                    .map_err(|_| bad_request("open_account_bind_limit is too large"))?;
            }
            "push_deadline_ms" => {
                c.push_deadline = std::time::Duration::from_millis(non_negative(value, key)?);
            }
            "push_attempts" => {
                c.push_attempts = u32::try_from(non_negative(value, key)?)
                    .ok()
                    .filter(|n| (1..=10).contains(n))
                    .ok_or_else(|| bad_request("push_attempts must be 1..=10"))?;
            }
            "drop_delay_ms" => {
                c.drop_delay = std::time::Duration::from_millis(non_negative(value, key)?);
            }
            "daily_quota" => {
                let quotas = value
                    .as_object()
                    .ok_or_else(|| bad_request("daily_quota must be an object"))?;
                for (api, limit) in quotas {
                    match api.as_str() {
                        "default" => c.daily_quota.default = non_negative(limit, "default")?,
                        "per_api" => {
                            let per = limit
                                .as_object()
                                .ok_or_else(|| bad_request("per_api must be an object"))?;
                            for (api, limit) in per {
                                set_quota(&mut c, api, limit)?;
                            }
                        }
                        _ => set_quota(&mut c, api, limit)?,
                    }
                }
            }
            other => return Err(bad_request(format!("unknown config key {other}"))),
        }
    }
    st.config = c;
    ok(config_json(&st.config))
}

fn set_quota(c: &mut SandboxConfig, api: &str, limit: &Value) -> Result<(), Fail> {
    if !API_NAMES.contains(&api) {
        return Err(bad_request(format!("unknown API {api}")));
    }
    let limit = non_negative(limit, api)?;
    c.daily_quota.per_api.insert(api.to_string(), limit);
    Ok(())
}

fn add_fault(shared: &Arc<Shared>, obj: Map<String, Value>) -> Reply {
    let api = required(&obj, "api")?;
    if api != "*" && !API_NAMES.contains(&api.as_str()) {
        return Err(bad_request(format!(
            "unknown API {api}; known: {}",
            API_NAMES.join(", ")
        )));
    }
    let count = match obj.get("count") {
        None | Some(Value::Null) => 1,
        Some(v) => u32::try_from(non_negative(v, "count")?)
            .ok()
            .filter(|n| *n >= 1)
            .ok_or_else(|| bad_request("count must be at least 1"))?,
    };
    let errcode = match obj.get("errcode") {
        None | Some(Value::Null) => None,
        Some(v) => Some(
            v.as_i64()
                .filter(|c| *c != 0)
                .ok_or_else(|| bad_request("errcode must be a non-zero integer"))?,
        ),
    };
    let latency_ms = match obj.get("latency_ms") {
        None | Some(Value::Null) => None,
        Some(v) => Some(non_negative(v, "latency_ms")?),
    };
    let drop = match obj.get("drop") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(bad_request("drop must be a boolean")),
    };
    // A bare fault is a "system busy".
    let errcode = if errcode.is_none() && latency_ms.is_none() && !drop {
        Some(-1)
    } else {
        errcode
    };
    let mut st = shared.lock();
    st.faults.push(Fault {
        api,
        remaining: count,
        errcode,
        latency_ms,
        drop,
    });
    ok(json!({ "faults": st.faults }))
}

// ---- merchants ----

fn valid_appid(appid: &str) -> bool {
    (1..=64).contains(&appid.len())
        && appid
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

fn upsert_merchant(shared: &Arc<Shared>, obj: Map<String, Value>) -> Reply {
    let appid = required(&obj, "appid")?;
    if !valid_appid(&appid) {
        return Err(bad_request("appid must be 1-64 letters, digits, _ or -"));
    }
    let kind =
        match str_field(&obj, "kind") {
            None => None,
            Some(k) => Some(Kind::parse(&k).ok_or_else(|| {
                bad_request("kind must be \"official_account\" or \"mini_program\"")
            })?),
        };
    let int = |key: &str| {
        int_field(&obj, key).map_err(|_| bad_request(format!("{key} must be an integer")))
    };
    let service_type = int("service_type")?;
    let verify_type = int("verify_type")?;
    let func_info = match obj.get("func_info") {
        None | Some(Value::Null) => None,
        Some(v) => Some(func_ids(v).ok_or_else(|| bad_request("func_info must be a list of ids"))?),
    };
    let mut st = shared.lock();
    if st.open_accounts.contains_key(&appid) {
        return Err(bad_request("appid is taken by an open account"));
    }
    let existing = st.merchants.remove(&appid);
    let mut m = match existing {
        Some(mut m) => {
            if let Some(k) = kind {
                m.kind = k;
            }
            m
        }
        None => {
            let Some(kind) = kind else {
                return Err(bad_request("kind is required for a new merchant"));
            };
            Merchant::new(&appid, kind, "Acme Ltd")
        }
    };
    if let Some(s) = str_field(&obj, "subject") {
        m.subject = s;
    }
    if let Some(s) = str_field(&obj, "nick_name") {
        m.nick_name = s;
    }
    if let Some(s) = str_field(&obj, "user_name") {
        m.user_name = s;
    }
    if let Some(v) = service_type {
        m.service_type = v;
    }
    if let Some(v) = verify_type {
        m.verify_type = v;
    }
    if let Some(f) = func_info {
        m.func_info = f;
    }
    let out = json!(m);
    st.merchants.insert(appid, m);
    ok(out)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Order {
    PushFirst,
    RedirectFirst,
    Concurrent,
    PushOnly,
    RedirectOnly,
    /// The merchant authorizes but neither the push nor the redirect reaches the platform.
    Neither,
}

struct Link {
    component_appid: String,
    pre_auth_code: String,
    redirect_uri: Option<String>,
    auth_type: Option<String>,
    biz_appid: Option<String>,
}

fn parse_link(link: &str) -> Result<Link, String> {
    let url = url::Url::parse(link.trim()).map_err(|_| "link is not a URL".to_string())?;
    let path = url.path().trim_end_matches('/');
    if !(path.ends_with("/cgi-bin/componentloginpage")
        || path.ends_with("/wxaopen/safe/bindcomponent"))
    {
        return Err(
            "link is neither a componentloginpage nor a bindcomponent authorization link"
                .to_string(),
        );
    }
    let q = super::http::parse_query(url.query());
    let get = |k: &str| q.get(k).filter(|v| !v.is_empty()).cloned();
    Ok(Link {
        component_appid: get("component_appid").ok_or("link has no component_appid")?,
        pre_auth_code: get("pre_auth_code").ok_or("link has no pre_auth_code")?,
        redirect_uri: get("redirect_uri"),
        auth_type: get("auth_type"),
        biz_appid: get("biz_appid"),
    })
}

fn admits(link: &Link, m: &Merchant) -> Result<(), String> {
    if let Some(biz) = &link.biz_appid {
        return if *biz == m.appid {
            Ok(())
        } else {
            Err(format!("biz_appid {biz} excludes this merchant"))
        };
    }
    match (link.auth_type.as_deref().unwrap_or("3"), m.kind) {
        ("1", Kind::OfficialAccount) | ("2", Kind::MiniProgram) | ("3", _) => Ok(()),
        (t @ ("1" | "2"), _) => Err(format!("auth_type {t} excludes this merchant")),
        (t, _) => Err(format!("auth_type {t} is not supported by the sandbox")),
    }
}

fn func_override(obj: &Map<String, Value>) -> Result<Option<Vec<u32>>, Fail> {
    match obj.get("func_info") {
        None | Some(Value::Null) => Ok(None),
        Some(v) => func_ids(v)
            .map(Some)
            .ok_or_else(|| bad_request("func_info must be a list of ids")),
    }
}

async fn authorize(shared: &Arc<Shared>, appid: &str, obj: Map<String, Value>) -> Reply {
    let link = required(&obj, "link")?;
    let order = match str_field(&obj, "order").as_deref() {
        None | Some("push_first") => Order::PushFirst,
        Some("redirect_first") => Order::RedirectFirst,
        Some("concurrent") => Order::Concurrent,
        Some("push_only") => Order::PushOnly,
        Some("redirect_only") => Order::RedirectOnly,
        Some("none") => Order::Neither,
        Some(o) => return Err(bad_request(format!("unknown order {o}"))),
    };
    let func = func_override(&obj)?;
    let link = parse_link(&link).map_err(bad_request)?;
    let (xml, info_type, code, ttl, redirect_uri) = {
        let mut st = shared.lock();
        let now = st.now();
        if link.component_appid != st.config.component_appid {
            return Err(bad_request(
                "component_appid does not match the sandbox component",
            ));
        }
        match st.pre_auth_codes.get(&link.pre_auth_code) {
            None => return Err(bad_request("unknown pre_auth_code")),
            Some(c) if c.used => return Err(bad_request("pre_auth_code already used")),
            Some(c) if c.expires_at <= now => return Err(bad_request("pre_auth_code expired")),
            Some(_) => {}
        }
        let Some(m) = st.merchants.get(appid) else {
            return Err(bad(StatusCode::NOT_FOUND, "unknown merchant"));
        };
        admits(&link, m).map_err(bad_request)?;
        let wants_redirect = !matches!(order, Order::PushOnly | Order::Neither);
        let redirect_uri = if wants_redirect {
            match link.redirect_uri.as_deref().map(url::Url::parse) {
                Some(Ok(u)) if matches!(u.scheme(), "http" | "https") => Some(u.to_string()),
                _ => return Err(bad_request("link has no usable http(s) redirect_uri")),
            }
        } else {
            None
        };
        let func = func.unwrap_or_else(|| m.func_info.clone());
        if let Some(c) = st.pre_auth_codes.get_mut(&link.pre_auth_code) {
            c.used = true;
        }
        let Some((code, was_authorized)) = st.authorize(appid, func) else {
            return Err(bad(StatusCode::NOT_FOUND, "unknown merchant"));
        };
        let info_type = if was_authorized {
            "updateauthorized"
        } else {
            "authorized"
        };
        let ttl = st.config.auth_code_ttl_secs;
        let xml = push::authorized_xml(&AuthPush {
            info_type,
            component_appid: &st.config.component_appid,
            now,
            authorizer_appid: appid,
            code: &code,
            code_expires_at: now.saturating_add(ttl),
            pre_auth_code: Some(&link.pre_auth_code),
        });
        (xml, info_type, code, ttl, redirect_uri)
    };
    let push_fut = deliver_component(shared, info_type, xml);
    let redirect_fut = async {
        match &redirect_uri {
            Some(uri) => Some(push::redirect(shared, uri, &code, ttl).await),
            None => None,
        }
    };
    let (push, redirect) = match order {
        Order::PushFirst => {
            let p = push_fut.await;
            (Some(p), redirect_fut.await)
        }
        Order::RedirectFirst => {
            let r = redirect_fut.await;
            (Some(push_fut.await), r)
        }
        Order::Concurrent => {
            let (p, r) = tokio::join!(push_fut, redirect_fut);
            (Some(p), r)
        }
        Order::PushOnly => (Some(push_fut.await), None),
        Order::RedirectOnly => (None, redirect_fut.await),
        Order::Neither => (None, None),
    };
    ok(json!({
        "auth_code": code,
        "info_type": info_type,
        "push": push,
        "redirect": redirect,
    }))
}

async fn update_authorization(shared: &Arc<Shared>, appid: &str, obj: Map<String, Value>) -> Reply {
    let func = func_override(&obj)?.ok_or_else(|| bad_request("func_info is required"))?;
    let (xml, code) = {
        let mut st = shared.lock();
        let now = st.now();
        let Some(m) = st.merchants.get_mut(appid) else {
            return Err(bad(StatusCode::NOT_FOUND, "unknown merchant"));
        };
        let Some(auth) = m.authorization.as_mut() else {
            return Err(bad(StatusCode::CONFLICT, "not_authorized"));
        };
        auth.func_info = func;
        let code = st.new_auth_code(appid);
        let xml = push::authorized_xml(&AuthPush {
            info_type: "updateauthorized",
            component_appid: &st.config.component_appid,
            now,
            authorizer_appid: appid,
            code: &code,
            code_expires_at: now.saturating_add(st.config.auth_code_ttl_secs),
            pre_auth_code: None,
        });
        (xml, code)
    };
    let push = deliver_component(shared, "updateauthorized", xml).await;
    ok(json!({ "auth_code": code, "push": push }))
}

async fn cancel(shared: &Arc<Shared>, appid: &str) -> Reply {
    let xml = {
        let mut st = shared.lock();
        let now = st.now();
        let Some(m) = st.merchants.get_mut(appid) else {
            return Err(bad(StatusCode::NOT_FOUND, "unknown merchant"));
        };
        if m.authorization.take().is_none() {
            return Err(bad(StatusCode::CONFLICT, "not_authorized"));
        }
        st.revoke_tokens(&Owner::Authorizer(appid.to_string()));
        push::unauthorized_xml(&st.config.component_appid, now, appid)
    };
    let push = deliver_component(shared, "unauthorized", xml).await;
    ok(json!({ "push": push }))
}

// ---- open accounts ----

fn create_open_account(shared: &Arc<Shared>, obj: Map<String, Value>) -> Reply {
    let subject = required(&obj, "subject")?;
    let created_by_api = match obj.get("created_by_api") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(bad_request("created_by_api must be a boolean")),
    };
    let bind: Vec<String> = match obj.get("bind") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(list)) => list
            .iter()
            .map(|v| v.as_str().map(str::to_string))
            .collect::<Option<_>>()
            .ok_or_else(|| bad_request("bind must be a list of appids"))?,
        Some(_) => return Err(bad_request("bind must be a list of appids")),
    };
    let mut st = shared.lock();
    for appid in &bind {
        match st.merchants.get(appid) {
            None => return Err(bad_request(format!("unknown merchant {appid}"))),
            Some(m) if m.open_appid.is_some() => {
                return Err(bad_request(format!("{appid} is already bound")));
            }
            Some(m) if m.subject != subject => {
                return Err(bad_request(format!("{appid} has another subject")));
            }
            Some(_) => {}
        }
    }
    let open_appid = st.new_open_appid();
    for appid in &bind {
        if let Some(m) = st.merchants.get_mut(appid) {
            m.open_appid = Some(open_appid.clone());
        }
    }
    st.open_accounts.insert(
        open_appid.clone(),
        OpenAccount {
            open_appid: open_appid.clone(),
            subject,
            created_by_api,
            bound: bind,
        },
    );
    ok(json!({ "open_appid": open_appid }))
}

// ---- component verify ticket ----

/// Pushes a fresh `component_verify_ticket` and waits for the delivery.
pub async fn push_ticket(shared: &Arc<Shared>) -> Value {
    let (ticket, xml) = {
        let mut st = shared.lock();
        let (ticket, now) = st.new_ticket();
        let xml = push::ticket_xml(&st.config.component_appid, now, &ticket);
        (ticket, xml)
    };
    let delivery = deliver_component(shared, "component_verify_ticket", xml).await;
    json!({ "ticket": ticket, "delivery": delivery })
}

// ---- users ----

struct MessagePush {
    appid: String,
    gh: String,
    openid: String,
    url: Option<String>,
    event: String,
    xml: String,
}

fn user_name(obj: &Map<String, Value>) -> Result<String, Fail> {
    let user = required(obj, "user")?;
    if user.chars().count() > 128 {
        return Err(bad_request("user is too long"));
    }
    Ok(user)
}

fn message_url(st: &World, appid: &str) -> Option<String> {
    st.config
        .message_callback_base
        .as_deref()
        .map(|base| format!("{}/{appid}", base.trim_end_matches('/')))
}

/// The merchant a user acts on: it must exist and be authorized to the component (otherwise
/// WeChat would not push to the component's message URL).
fn acted_on<'a>(st: &'a mut World, appid: &str) -> Result<&'a mut Merchant, Fail> {
    match st.merchants.get_mut(appid) {
        None => Err(bad(StatusCode::NOT_FOUND, "unknown merchant")),
        Some(m) if m.authorization.is_none() => Err(bad(StatusCode::CONFLICT, "not_authorized")),
        Some(m) => Ok(m),
    }
}

async fn user_scan(shared: &Arc<Shared>, obj: Map<String, Value>) -> Reply {
    let user = user_name(&obj)?;
    let ticket = required(&obj, "ticket")?;
    let msg = {
        let mut st = shared.lock();
        let now = st.now();
        let qr = st
            .qrcodes
            .get(&ticket)
            .filter(|q| q.expires_at > now)
            .cloned()
            .ok_or_else(|| bad_request("qr_expired"))?;
        let url = message_url(&st, &qr.appid);
        let m = acted_on(&mut st, &qr.appid)?;
        let newly = m.follow(&user, now, "ADD_SCENE_QR_CODE", &qr.scene);
        let (event, key) = if newly {
            ("subscribe", format!("qrscene_{}", qr.scene))
        } else {
            ("SCAN", qr.scene.clone())
        };
        let id = openid(&m.appid, &user);
        let xml = push::message_xml(
            &m.user_name,
            &id,
            now,
            "event",
            &[
                ("Event", F::Text(event.to_string())),
                ("EventKey", F::Text(key)),
                ("Ticket", F::Text(ticket.clone())),
            ],
        );
        MessagePush {
            appid: m.appid.clone(),
            gh: m.user_name.clone(),
            openid: id,
            url,
            event: event.to_string(),
            xml,
        }
    };
    ok(deliver_message(shared, msg).await)
}

async fn user_message(shared: &Arc<Shared>, obj: Map<String, Value>) -> Reply {
    let appid = required(&obj, "appid")?;
    let user = user_name(&obj)?;
    let content = str_field(&obj, "content").ok_or_else(|| bad_request("content is required"))?;
    let msg = {
        let mut st = shared.lock();
        let now = st.now();
        let url = message_url(&st, &appid);
        let m = acted_on(&mut st, &appid)?;
        m.follow(&user, now, "ADD_SCENE_OTHERS", "");
        let id = openid(&m.appid, &user);
        let msg_id = format!(
            "{}{}",
            random_from(b"123456789", 1),
            random_from(b"0123456789", 18)
        );
        let xml = push::message_xml(
            &m.user_name,
            &id,
            now,
            "text",
            &[("Content", F::Text(content)), ("MsgId", F::Num(msg_id))],
        );
        MessagePush {
            appid: m.appid.clone(),
            gh: m.user_name.clone(),
            openid: id,
            url,
            event: "text".to_string(),
            xml,
        }
    };
    ok(deliver_message(shared, msg).await)
}

async fn user_event(shared: &Arc<Shared>, obj: Map<String, Value>) -> Reply {
    let appid = required(&obj, "appid")?;
    let user = user_name(&obj)?;
    let event = required(&obj, "event")?;
    if event.chars().count() > 64 {
        return Err(bad_request("event is too long"));
    }
    let event_key = str_field(&obj, "event_key");
    let msg = {
        let mut st = shared.lock();
        let now = st.now();
        let url = message_url(&st, &appid);
        let m = acted_on(&mut st, &appid)?;
        match event.as_str() {
            "subscribe" => {
                m.follow(&user, now, "ADD_SCENE_SEARCH", "");
            }
            "unsubscribe" => {
                m.follow(&user, now, "ADD_SCENE_OTHERS", "");
                if let Some(f) = m.followers.get_mut(&user) {
                    f.subscribed = false;
                }
            }
            _ => {
                m.follow(&user, now, "ADD_SCENE_OTHERS", "");
            }
        }
        let mut fields = vec![("Event", F::Text(event.clone()))];
        if let Some(k) = event_key {
            fields.push(("EventKey", F::Text(k)));
        }
        if event == "LOCATION" {
            fields.push(("Latitude", F::Num("23.137466".to_string())));
            fields.push(("Longitude", F::Num("113.352425".to_string())));
            fields.push(("Precision", F::Num("119.385040".to_string())));
        }
        let id = openid(&m.appid, &user);
        let xml = push::message_xml(&m.user_name, &id, now, "event", &fields);
        MessagePush {
            appid: m.appid.clone(),
            gh: m.user_name.clone(),
            openid: id,
            url,
            event,
            xml,
        }
    };
    ok(deliver_message(shared, msg).await)
}

/// Sends any message from `user` to `appid`'s message URL (the release-test robot uses it).
async fn send_as_user(
    shared: &Arc<Shared>,
    appid: &str,
    user: &str,
    msg_type: &str,
    fields: &[(&str, F)],
) -> Result<Value, Fail> {
    let msg = {
        let mut st = shared.lock();
        let now = st.now();
        let url = message_url(&st, appid);
        let m = acted_on(&mut st, appid)?;
        m.follow(user, now, "ADD_SCENE_OTHERS", "");
        let id = openid(&m.appid, user);
        let event = fields
            .iter()
            .find_map(|(k, v)| match (k, v) {
                (&"Event", F::Text(e)) => Some(e.clone()),
                _ => None,
            })
            .unwrap_or_else(|| msg_type.to_string());
        MessagePush {
            appid: m.appid.clone(),
            gh: m.user_name.clone(),
            xml: push::message_xml(&m.user_name, &id, now, msg_type, fields),
            openid: id,
            url,
            event,
        }
    };
    Ok(deliver_message(shared, msg).await)
}

struct ControlDeliver;

impl super::release::AsyncDeliver for ControlDeliver {
    async fn message(
        &self,
        shared: &Arc<Shared>,
        appid: &str,
        user: &str,
        msg_type: &'static str,
        fields: Vec<(&'static str, F)>,
    ) -> Value {
        send_as_user(shared, appid, user, msg_type, &fields)
            .await
            .unwrap_or_else(|f| json!({ "error": f.error }))
    }
}

/// Creates `count` merchants already authorized (no pushes): seeds benchmarks and scale tests.
/// Answers their appids and refresh tokens.
fn bulk_merchants(shared: &Arc<Shared>, obj: Map<String, Value>) -> Reply {
    let count = int_field(&obj, "count")
        .ok()
        .flatten()
        .filter(|c| (1..=200_000).contains(c))
        .ok_or_else(|| bad_request("count must be 1 to 200000"))?;
    let start = int_field(&obj, "start").ok().flatten().unwrap_or(1).max(0);
    let kind = match str_field(&obj, "kind").as_deref() {
        None | Some("official_account") => Kind::OfficialAccount,
        Some("mini_program") => Kind::MiniProgram,
        Some(_) => return Err(bad_request("kind must be official_account or mini_program")),
    };
    let subject = str_field(&obj, "subject").unwrap_or_else(|| "Bulk Co".to_string());
    let mut st = shared.lock();
    let mut out = Vec::new();
    for i in start..start.saturating_add(count) {
        let appid = format!("wxb{:015}", i);
        let merchant = Merchant::new(&appid, kind, &subject);
        let func = merchant.func_info.clone();
        st.merchants.insert(appid.clone(), merchant);
        if let Some((code, _)) = st.authorize(&appid, func.clone()) {
            st.auth_codes.remove(&code);
        }
        let refresh = st
            .merchants
            .get(&appid)
            .and_then(|m| m.authorization.as_ref())
            .map(|a| a.refresh_token.clone())
            .unwrap_or_default();
        out.push(json!({ "appid": appid, "refresh_token": refresh, "func_info": func }));
    }
    ok(json!(out))
}

async fn deliver_message(shared: &Arc<Shared>, msg: MessagePush) -> Value {
    let kind = if msg.event == "text" {
        "text".to_string()
    } else {
        format!("event:{}", msg.event)
    };
    let delivery = push::deliver(
        shared,
        Outgoing {
            kind,
            target: "message",
            url: msg.url,
            plaintext: msg.xml,
            outer_tag: "ToUserName",
            outer_value: msg.gh,
            require_success: false,
        },
    )
    .await;
    let (reply, reply_error) = if delivery.status.is_some() {
        push::open_reply(shared, &delivery.body)
    } else {
        (None, None)
    };
    json!({
        "appid": msg.appid,
        "openid": msg.openid,
        "event": msg.event,
        "status": delivery.status,
        "reply": reply,
        "reply_error": reply_error,
        "delivery": delivery,
    })
}
