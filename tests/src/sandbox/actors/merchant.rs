//! The merchant actor: an account (official account or mini program) that exists, authorizes
//! the platform through a link (push and/or redirect, in any order), updates or cancels its
//! authorization; and the open accounts its subject registers on the website.

use std::sync::Arc;

use axum::http::StatusCode;
use serde_json::{Map, Value, json};

use super::super::Shared;
use super::super::push::{self, AuthPush, deliver_component};
use super::super::reply::{Fail, Outcome, bad, bad_request, ok, required};
use super::super::state::{Kind, Merchant, OpenAccount, Owner};
use super::super::util::{func_ids, int_field, str_field};

fn valid_appid(appid: &str) -> bool {
    (1..=64).contains(&appid.len())
        && appid
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

pub fn upsert(shared: &Arc<Shared>, obj: Map<String, Value>) -> Outcome {
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
    let q = super::super::http::parse_query(url.query());
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

pub async fn authorize(shared: &Arc<Shared>, appid: &str, obj: Map<String, Value>) -> Outcome {
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

pub async fn update_authorization(
    shared: &Arc<Shared>,
    appid: &str,
    obj: Map<String, Value>,
) -> Outcome {
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

pub async fn cancel(shared: &Arc<Shared>, appid: &str) -> Outcome {
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

pub fn create_open_account(shared: &Arc<Shared>, obj: Map<String, Value>) -> Outcome {
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

/// Creates `count` merchants already authorized (no pushes): seeds benchmarks and scale tests.
/// Answers their appids and refresh tokens.
pub fn bulk(shared: &Arc<Shared>, obj: Map<String, Value>) -> Outcome {
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
        let user_name = merchant.user_name.clone();
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
        out.push(json!({
            "appid": appid,
            "refresh_token": refresh,
            "func_info": func,
            "user_name": user_name,
        }));
    }
    ok(json!(out))
}
