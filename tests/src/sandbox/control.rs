//! The control API under `/sandbox/`: its route table, plus the sandbox's own settings
//! (configuration, clock, faults) and the records tests assert on. The actors it drives live in
//! `actors/` (merchants, users) and `release.rs` (the release-test robot). Answers JSON; errors
//! are `{"error": "…"}` with 4xx.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use super::actors::{merchant, user};
use super::apis::{Api, api_names};
use super::reply::{Fail, Outcome, bad, bad_request, body_object, ok, required};
use super::state::{Fault, Owner};
use super::util::{int_field, str_field};
use super::{SandboxConfig, Shared, code, push, release};

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

async fn route(shared: &Arc<Shared>, method: &Method, segs: &[&str], body: &[u8]) -> Outcome {
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
            let (now, offset, auto) = {
                let mut st = shared.lock();
                st.clock_offset = st.clock_offset.saturating_add(seconds);
                (st.now(), st.clock_offset, st.config.audit_auto_push)
            };
            // Audits that came due are pushed now when pushes go by themselves.
            let pushed = if auto {
                code::run_audits(shared, false).await
            } else {
                Vec::new()
            };
            ok(json!({ "now": now, "offset": offset, "audit_pushes": pushed }))
        }
        ["push", "ticket"] if post => ok(push::push_ticket(shared).await),
        ["pushes"] if get => ok(json!(shared.lock().pushes)),
        ["pushes"] if delete => {
            shared.lock().pushes.clear();
            ok(json!({ "ok": true }))
        }
        ["calls"] if get => ok(json!(shared.lock().calls)),
        ["calls"] if delete => {
            let mut st = shared.lock();
            st.calls.clear();
            st.call_counts.clear();
            ok(json!({ "ok": true }))
        }
        ["calls", "counts"] if get => ok(json!(shared.lock().call_counts)),
        ["code", rest @ ..] if get || post => code::route(shared, post, rest, body).await,
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
        ["merchants"] if post => merchant::upsert(shared, body_object(body)?),
        ["merchants", appid] if get => {
            let st = shared.lock();
            match st.merchants.get(*appid) {
                Some(m) => ok(json!(m)),
                None => Err(bad(StatusCode::NOT_FOUND, "unknown merchant")),
            }
        }
        ["merchants", appid, "authorize"] if post => {
            merchant::authorize(shared, appid, body_object(body)?).await
        }
        ["merchants", appid, "update"] if post => {
            merchant::update_authorization(shared, appid, body_object(body)?).await
        }
        ["merchants", appid, "cancel"] if post => merchant::cancel(shared, appid).await,
        // WeChat invalidates the account's tokens (as when another party refreshed them): the
        // authorization stands, every token now answers 40001 until a refresh.
        ["merchants", appid, "invalidate-token"] if post => {
            let mut st = shared.lock();
            if !st.merchants.contains_key(*appid) {
                return Err(bad(StatusCode::NOT_FOUND, "unknown merchant"));
            }
            st.revoke_tokens(&Owner::Authorizer(appid.to_string()));
            ok(json!({ "invalidated": appid }))
        }
        ["merchants", appid, "menu"] if get => {
            ok(json!({ "menu": shared.lock().menus.get(*appid) }))
        }
        ["open-accounts"] if get => {
            let st = shared.lock();
            ok(json!(st.open_accounts.values().collect::<Vec<_>>()))
        }
        ["open-accounts"] if post => merchant::create_open_account(shared, body_object(body)?),
        ["open-accounts", id] if get => {
            let st = shared.lock();
            match st.open_accounts.get(*id) {
                Some(o) => ok(json!(o)),
                None => Err(bad(StatusCode::NOT_FOUND, "unknown open account")),
            }
        }
        ["merchants", "bulk"] if post => merchant::bulk(shared, body_object(body)?),
        ["release-test", "run"] if post => {
            let obj = body_object(body)?;
            let appid =
                str_field(&obj, "appid").unwrap_or_else(|| "wx570bc396a51b8ff8".to_string());
            // `retry_while_running`: WeChat delivers the QUERY_AUTH_CODE message again while the
            // first delivery is still being handled.
            let concurrent = obj.get("retry_while_running") == Some(&Value::Bool(true));
            match release::run(shared, &appid, concurrent).await {
                Ok(v) => ok(v),
                Err(e) => Err(bad_request(e)),
            }
        }
        ["users", "scan"] if post => user::scan(shared, body_object(body)?).await,
        ["users", "message"] if post => user::message(shared, body_object(body)?).await,
        ["users", "event"] if post => user::event(shared, body_object(body)?).await,
        ["users", "login"] if post => user::login(shared, body_object(body)?),
        ["users", "oauth"] if post => user::oauth(shared, body_object(body)?),
        _ => Err(bad(
            StatusCode::NOT_FOUND,
            format!("no control route {method} /sandbox/{}", segs.join("/")),
        )),
    }
}

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
        "js_code_ttl_secs": c.js_code_ttl_secs,
        "daily_quota": c.daily_quota,
        "open_account_bind_limit": c.open_account_bind_limit,
        "push_deadline_ms": u64::try_from(c.push_deadline.as_millis()).unwrap_or(u64::MAX),
        "push_attempts": c.push_attempts,
        "drop_delay_ms": u64::try_from(c.drop_delay.as_millis()).unwrap_or(u64::MAX),
        "audit_delay_secs": c.audit_delay_secs,
        "audit_quota": c.audit_quota,
        "speedup_quota": c.speedup_quota,
        "audit_auto_push": c.audit_auto_push,
        "template_token_param": c.template_token_param,
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

fn update_config(shared: &Arc<Shared>, obj: Map<String, Value>) -> Outcome {
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
            "js_code_ttl_secs" => c.js_code_ttl_secs = secs(value, key)?,
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
            "audit_delay_secs" => c.audit_delay_secs = secs(value, key)?,
            "audit_quota" => c.audit_quota = secs(value, key)?,
            "speedup_quota" => c.speedup_quota = secs(value, key)?,
            "audit_auto_push" => {
                c.audit_auto_push = value
                    .as_bool()
                    .ok_or_else(|| bad_request("audit_auto_push must be a boolean"))?;
            }
            "template_token_param" => {
                c.template_token_param = match value.as_str() {
                    Some("access_token") => "access_token",
                    Some("component_access_token") => "component_access_token",
                    _ => {
                        return Err(bad_request(
                            "template_token_param must be access_token or component_access_token",
                        ));
                    }
                };
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
    if Api::from_name(api).is_none() {
        return Err(bad_request(format!("unknown API {api}")));
    }
    let limit = non_negative(limit, api)?;
    c.daily_quota.per_api.insert(api.to_string(), limit);
    Ok(())
}

fn add_fault(shared: &Arc<Shared>, obj: Map<String, Value>) -> Outcome {
    let api = required(&obj, "api")?;
    if api != "*" && Api::from_name(&api).is_none() {
        return Err(bad_request(format!(
            "unknown API {api}; known: {}",
            api_names().collect::<Vec<_>>().join(", ")
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
