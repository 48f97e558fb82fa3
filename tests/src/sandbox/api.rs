//! The WeChat APIs: token checks, quotas and each API's rules. Synchronous, on the locked state.

use std::collections::HashMap;

use serde_json::{Map, Value, json};

use super::state::{Kind, OpenAccount, Owner, PreAuthCode, QrCode, State, Want, push_bounded};
use super::util::{
    func_info_json, int_field, json_object, random_alnum, random_from, str_field, unionid,
};
use super::{CallRecord, CustomMessage};

/// Longest temporary QR code lifetime.
pub const QR_MAX_EXPIRE: i64 = 2_592_000;

/// Something to do after the lock is released.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    PushTicket,
}

pub struct Answer {
    pub json: Value,
    pub errcode: i64,
    pub authorizer_appid: Option<String>,
    pub effect: Option<Effect>,
}

impl Answer {
    fn ok(json: Value, appid: Option<String>) -> Self {
        Self {
            json,
            errcode: 0,
            authorizer_appid: appid,
            effect: None,
        }
    }

    pub fn err(code: i64, appid: Option<String>) -> Self {
        Self {
            json: err_json(code),
            errcode: code,
            authorizer_appid: appid,
            effect: None,
        }
    }
}

pub fn errmsg(code: i64) -> &'static str {
    match code {
        -1 => "system error",
        0 => "ok",
        40001 => "invalid credential, access_token is invalid or not latest",
        40003 => "invalid openid",
        40008 => "invalid message type",
        40013 => "invalid appid",
        40029 => "invalid code",
        40125 => "invalid appsecret",
        40163 => "code been used",
        41001 => "access_token missing",
        41002 => "appid missing",
        42001 => "access_token expired",
        43001 => "require GET method",
        43002 => "require POST method",
        43004 => "require subscribe",
        45009 => "reach max api daily quota limit",
        47001 => "data format error",
        48001 => "api unauthorized",
        61003 => "component is not authorized by this account",
        61004 => "invalid ip 203.0.113.7 ipv6 ::ffff:203.0.113.7, not in whitelist",
        61005 => "component ticket is expired",
        61006 => "component ticket is invalid",
        61010 => "code is expired",
        61023 => "refresh_token is invalid",
        89000 => "account has bound open",
        89001 => "not same contractor",
        89002 => "open not exists",
        89003 => "open account was not created by api",
        89004 => "open account bound accounts reached limit",
        _ => "sandbox injected error",
    }
}

pub fn err_json(code: i64) -> Value {
    json!({ "errcode": code, "errmsg": errmsg(code) })
}

/// The sandbox's API name for a path under `/cgi-bin/`, and whether it is served with GET.
pub fn api_for_path(rest: &str) -> Option<(&'static str, bool)> {
    let rest = rest.trim_end_matches('/');
    let name = super::API_NAMES
        .iter()
        .copied()
        .find(|n| rest == *n || rest.strip_prefix("component/") == Some(*n))?;
    // Component APIs live under /cgi-bin/component/, the others directly under /cgi-bin/.
    let component_path = rest.starts_with("component/");
    if component_path != name.starts_with("api_") {
        return None;
    }
    Some((name, name == "user/info"))
}

/// Which token an API wants, and the query parameter that carries it.
pub fn token_param(api: &str) -> Option<(Want, &'static str)> {
    match api {
        "api_component_token" | "api_start_push_ticket" => None,
        a if a.starts_with("api_") => Some((Want::Component, "component_access_token")),
        _ => Some((Want::Authorizer, "access_token")),
    }
}

/// Handles one API call (after faults): token, quota, then the API's own rules.
pub fn process(st: &mut State, api: &str, query: &HashMap<String, String>, body: &[u8]) -> Answer {
    let want = token_param(api);
    let token = want.and_then(|(_, param)| query.get(param).map(String::as_str));
    let (_, token_appid) = st.token_kind(token);
    let actor = match want {
        None => st.config.component_appid.clone(),
        Some((want, _)) => match st.check_token(token, want) {
            Ok(Owner::Component) => st.config.component_appid.clone(),
            Ok(Owner::Authorizer(appid)) => appid,
            Err(code) => return Answer::err(code, token_appid),
        },
    };
    if !st.spend_quota(api, &actor) {
        let appid = (want.map(|w| w.0) == Some(Want::Authorizer)).then(|| actor.clone());
        return Answer::err(45009, appid);
    }
    let obj = if api == "user/info" {
        Map::new()
    } else {
        match json_object(body) {
            Some(o) => o,
            None => return Answer::err(47001, token_appid),
        }
    };
    match api {
        "api_component_token" => component_token(st, &obj),
        "api_start_push_ticket" => start_push_ticket(st, &obj),
        "api_create_preauthcode" => with_component(st, &obj, create_preauthcode),
        "api_query_auth" => with_component(st, &obj, query_auth),
        "api_authorizer_token" => with_component(st, &obj, authorizer_token),
        "api_get_authorizer_info" => with_component(st, &obj, get_authorizer_info),
        "api_get_authorizer_list" => with_component(st, &obj, get_authorizer_list),
        "open/create" => open_create(st, &actor, &obj),
        "open/bind" => open_bind(st, &actor, &obj),
        "open/unbind" => open_unbind(st, &actor, &obj),
        "open/get" => open_get(st, &actor, &obj),
        "qrcode/create" => qrcode_create(st, &actor, &obj),
        "user/info" => user_info(st, &actor, query),
        "message/custom/send" => custom_send(st, &actor, &obj),
        _ => Answer::err(-1, None),
    }
}

type ComponentApi = fn(&mut State, &Map<String, Value>) -> Answer;

/// Component APIs: the body's `component_appid` must name this component.
fn with_component(st: &mut State, obj: &Map<String, Value>, f: ComponentApi) -> Answer {
    match str_field(obj, "component_appid") {
        None => Answer::err(41002, None),
        Some(a) if a != st.config.component_appid => Answer::err(40013, None),
        Some(_) => f(st, obj),
    }
}

fn component_token(st: &mut State, obj: &Map<String, Value>) -> Answer {
    match str_field(obj, "component_appid") {
        None => return Answer::err(41002, None),
        Some(a) if a != st.config.component_appid => return Answer::err(40013, None),
        Some(_) => {}
    }
    if str_field(obj, "component_appsecret").as_deref()
        != Some(st.config.component_appsecret.as_str())
    {
        return Answer::err(40125, None);
    }
    let ticket = str_field(obj, "component_verify_ticket").unwrap_or_default();
    let Some(&pushed_at) = st.tickets.get(&ticket) else {
        return Answer::err(61006, None);
    };
    if st.now().saturating_sub(pushed_at) > st.config.ticket_ttl_secs {
        return Answer::err(61005, None);
    }
    let token = st.issue_token(Owner::Component);
    Answer::ok(
        json!({ "component_access_token": token, "expires_in": st.config.token_ttl_secs }),
        None,
    )
}

fn start_push_ticket(st: &mut State, obj: &Map<String, Value>) -> Answer {
    match str_field(obj, "component_appid") {
        None => return Answer::err(41002, None),
        Some(a) if a != st.config.component_appid => return Answer::err(40013, None),
        Some(_) => {}
    }
    if str_field(obj, "component_secret").as_deref() != Some(st.config.component_appsecret.as_str())
    {
        return Answer::err(40125, None);
    }
    let mut answer = Answer::ok(err_json(0), None);
    answer.effect = Some(Effect::PushTicket);
    answer
}

fn create_preauthcode(st: &mut State, _obj: &Map<String, Value>) -> Answer {
    let code = format!("preauthcode@@@{}", random_alnum(48));
    let ttl = st.config.pre_auth_code_ttl_secs;
    let expires_at = st.now().saturating_add(ttl);
    st.pre_auth_codes.insert(
        code.clone(),
        PreAuthCode {
            expires_at,
            used: false,
        },
    );
    Answer::ok(json!({ "pre_auth_code": code, "expires_in": ttl }), None)
}

fn query_auth(st: &mut State, obj: &Map<String, Value>) -> Answer {
    let code = str_field(obj, "authorization_code").unwrap_or_default();
    let now = st.now();
    let Some(entry) = st.auth_codes.get_mut(&code) else {
        return Answer::err(40029, None);
    };
    let appid = Some(entry.appid.clone());
    if entry.used {
        return Answer::err(40163, appid);
    }
    if now >= entry.expires_at {
        return Answer::err(61010, appid);
    }
    entry.used = true;
    let appid_s = entry.appid.clone();
    let Some(auth) = st
        .merchants
        .get(&appid_s)
        .and_then(|m| m.authorization.clone())
    else {
        return Answer::err(61003, appid);
    };
    let token = st.issue_token(Owner::Authorizer(appid_s.clone()));
    Answer::ok(
        json!({ "authorization_info": {
            "authorizer_appid": appid_s,
            "authorizer_access_token": token,
            "expires_in": st.config.token_ttl_secs,
            "authorizer_refresh_token": auth.refresh_token,
            "func_info": func_info_json(&auth.func_info),
        }}),
        appid,
    )
}

fn authorizer_token(st: &mut State, obj: &Map<String, Value>) -> Answer {
    let appid = str_field(obj, "authorizer_appid").unwrap_or_default();
    let refresh = str_field(obj, "authorizer_refresh_token").unwrap_or_default();
    let log_appid = (!appid.is_empty()).then(|| appid.clone());
    let current = st
        .merchants
        .get(&appid)
        .and_then(|m| m.authorization.as_ref())
        .map(|a| a.refresh_token.clone());
    match current {
        Some(current) if !refresh.is_empty() && current == refresh => {
            let token = st.issue_token(Owner::Authorizer(appid));
            Answer::ok(
                json!({
                    "authorizer_access_token": token,
                    "expires_in": st.config.token_ttl_secs,
                    "authorizer_refresh_token": current,
                }),
                log_appid,
            )
        }
        _ => Answer::err(61023, log_appid),
    }
}

fn get_authorizer_info(st: &mut State, obj: &Map<String, Value>) -> Answer {
    let appid = str_field(obj, "authorizer_appid").unwrap_or_default();
    let log_appid = (!appid.is_empty()).then(|| appid.clone());
    let Some(m) = st.merchants.get(&appid) else {
        return Answer::err(61003, log_appid);
    };
    let Some(auth) = &m.authorization else {
        return Answer::err(61003, log_appid);
    };
    let mut info = json!({
        "nick_name": m.nick_name,
        "head_img": format!("http://wx.qlogo.cn/mmopen/sandbox/{}/0", m.appid),
        "service_type_info": { "id": m.service_type },
        "verify_type_info": { "id": m.verify_type },
        "user_name": m.user_name,
        "principal_name": m.subject,
        "alias": "",
        "qrcode_url": format!("http://mmbiz.qpic.cn/sandbox/{}/0", m.appid),
        "business_info": { "open_pay": 0, "open_shake": 0, "open_scan": 0, "open_card": 0, "open_store": 0 },
    });
    if m.kind == Kind::MiniProgram
        && let Some(o) = info.as_object_mut()
    {
        o.insert(
            "MiniProgramInfo".to_string(),
            json!({ "network": {}, "categories": [], "visit_status": 0 }),
        );
    }
    Answer::ok(
        json!({
            "authorizer_info": info,
            "authorization_info": {
                "authorizer_appid": m.appid,
                "func_info": func_info_json(&auth.func_info),
            },
        }),
        log_appid,
    )
}

fn get_authorizer_list(st: &mut State, obj: &Map<String, Value>) -> Answer {
    let (Ok(offset), Ok(count)) = (int_field(obj, "offset"), int_field(obj, "count")) else {
        return Answer::err(47001, None);
    };
    let offset = offset.unwrap_or(0);
    let count = count.unwrap_or(500);
    if !(0..=500).contains(&count) || offset < 0 {
        return Answer::err(47001, None);
    }
    let mut authorized: Vec<_> = st
        .merchants
        .values()
        .filter_map(|m| {
            m.authorization
                .as_ref()
                .map(|a| (a.seq, m.appid.clone(), a))
        })
        .collect();
    authorized.sort_by_key(|(seq, _, _)| *seq);
    let total = authorized.len();
    let list: Vec<Value> = authorized
        .iter()
        .skip(usize::try_from(offset).unwrap_or(usize::MAX))
        .take(usize::try_from(count).unwrap_or(0))
        .map(|(_, appid, a)| {
            json!({ "authorizer_appid": appid, "refresh_token": a.refresh_token, "auth_time": a.auth_time })
        })
        .collect();
    Answer::ok(json!({ "total_count": total, "list": list }), None)
}

/// Open-account APIs: the body `appid` must be the acting account, and the grant must hold the
/// open-account permission set (24 for official accounts, 25 for mini programs).
fn open_precheck(st: &State, actor: &str, obj: &Map<String, Value>) -> Result<(), i64> {
    if str_field(obj, "appid").as_deref() != Some(actor) {
        return Err(40013);
    }
    let m = st.merchants.get(actor).ok_or(61003)?;
    let needed = match m.kind {
        Kind::OfficialAccount => 24,
        Kind::MiniProgram => 25,
    };
    if !m.granted().contains(&needed) {
        return Err(48001);
    }
    Ok(())
}

fn some(actor: &str) -> Option<String> {
    Some(actor.to_string())
}

fn open_create(st: &mut State, actor: &str, obj: &Map<String, Value>) -> Answer {
    if let Err(code) = open_precheck(st, actor, obj) {
        return Answer::err(code, some(actor));
    }
    let open_appid = st.new_open_appid();
    let Some(m) = st.merchants.get_mut(actor) else {
        return Answer::err(61003, some(actor));
    };
    if m.open_appid.is_some() {
        return Answer::err(89000, some(actor));
    }
    m.open_appid = Some(open_appid.clone());
    let subject = m.subject.clone();
    st.open_accounts.insert(
        open_appid.clone(),
        OpenAccount {
            open_appid: open_appid.clone(),
            subject,
            created_by_api: true,
            bound: vec![actor.to_string()],
        },
    );
    Answer::ok(
        json!({ "errcode": 0, "errmsg": "ok", "open_appid": open_appid }),
        some(actor),
    )
}

fn open_bind(st: &mut State, actor: &str, obj: &Map<String, Value>) -> Answer {
    if let Err(code) = open_precheck(st, actor, obj) {
        return Answer::err(code, some(actor));
    }
    let open_appid = str_field(obj, "open_appid").unwrap_or_default();
    let limit = st.config.open_account_bind_limit;
    let Some(m) = st.merchants.get_mut(actor) else {
        return Answer::err(61003, some(actor));
    };
    if m.open_appid.is_some() {
        return Answer::err(89000, some(actor));
    }
    let Some(open) = st.open_accounts.get_mut(&open_appid) else {
        return Answer::err(40013, some(actor));
    };
    let code = if open.subject != m.subject {
        89001
    } else if !open.created_by_api {
        89003
    } else if open.bound.len() >= limit {
        89004
    } else {
        open.bound.push(actor.to_string());
        m.open_appid = Some(open_appid);
        0
    };
    if code == 0 {
        Answer::ok(err_json(0), some(actor))
    } else {
        Answer::err(code, some(actor))
    }
}

fn open_unbind(st: &mut State, actor: &str, obj: &Map<String, Value>) -> Answer {
    if let Err(code) = open_precheck(st, actor, obj) {
        return Answer::err(code, some(actor));
    }
    let open_appid = str_field(obj, "open_appid").unwrap_or_default();
    let Some(m) = st.merchants.get_mut(actor) else {
        return Answer::err(61003, some(actor));
    };
    let Some(open) = st.open_accounts.get_mut(&open_appid) else {
        return Answer::err(40013, some(actor));
    };
    if m.open_appid.as_deref() != Some(open_appid.as_str()) {
        return Answer::err(89002, some(actor));
    }
    if !open.created_by_api {
        return Answer::err(89003, some(actor));
    }
    open.bound.retain(|a| a != actor);
    m.open_appid = None;
    Answer::ok(err_json(0), some(actor))
}

fn open_get(st: &mut State, actor: &str, obj: &Map<String, Value>) -> Answer {
    if let Err(code) = open_precheck(st, actor, obj) {
        return Answer::err(code, some(actor));
    }
    match st.merchants.get(actor).and_then(|m| m.open_appid.clone()) {
        Some(open_appid) => Answer::ok(
            json!({ "errcode": 0, "errmsg": "ok", "open_appid": open_appid }),
            some(actor),
        ),
        None => Answer::err(89002, some(actor)),
    }
}

fn qrcode_create(st: &mut State, actor: &str, obj: &Map<String, Value>) -> Answer {
    let Some(m) = st.merchants.get(actor) else {
        return Answer::err(61003, some(actor));
    };
    if m.kind != Kind::OfficialAccount || m.service_type != 2 || m.verify_type < 0 {
        return Answer::err(48001, some(actor));
    }
    let scene = match str_field(obj, "action_name").as_deref() {
        Some("QR_STR_SCENE") => obj
            .get("action_info")
            .and_then(|v| v.pointer("/scene/scene_str"))
            .and_then(Value::as_str)
            .map(str::to_string),
        Some("QR_SCENE") => obj
            .get("action_info")
            .and_then(|v| v.pointer("/scene/scene_id"))
            .and_then(Value::as_u64)
            .filter(|id| *id > 0)
            .map(|id| id.to_string()),
        _ => None,
    };
    let Some(scene) = scene.filter(|s| (1..=64).contains(&s.chars().count())) else {
        return Answer::err(47001, some(actor));
    };
    let expire = match int_field(obj, "expire_seconds") {
        Ok(None) => 30,
        Ok(Some(n)) if n > 0 => n.min(QR_MAX_EXPIRE),
        _ => return Answer::err(47001, some(actor)),
    };
    // Real tickets are base64 (with `+`, `/`, `=`): clients must URL-encode them.
    let ticket = format!(
        "gQ{}==",
        random_from(
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/",
            94
        )
    );
    let url = format!("http://weixin.qq.com/q/{}", random_alnum(22));
    let expires_at = st.now().saturating_add(expire);
    st.qrcodes.insert(
        ticket.clone(),
        QrCode {
            appid: actor.to_string(),
            scene,
            expires_at,
        },
    );
    Answer::ok(
        json!({ "ticket": ticket, "expire_seconds": expire, "url": url }),
        some(actor),
    )
}

fn user_info(st: &mut State, actor: &str, query: &HashMap<String, String>) -> Answer {
    let id = query.get("openid").map(String::as_str).unwrap_or_default();
    let Some(m) = st.merchants.get(actor) else {
        return Answer::err(61003, some(actor));
    };
    let Some((user, f)) = m.user_by_openid(id) else {
        return Answer::err(40003, some(actor));
    };
    let mut out = if f.subscribed {
        json!({
            "subscribe": 1,
            "openid": f.openid,
            "language": "zh_CN",
            "subscribe_time": f.subscribe_time,
            "remark": "",
            "groupid": 0,
            "tagid_list": [],
            "subscribe_scene": f.subscribe_scene,
            "qr_scene": 0,
            "qr_scene_str": f.qr_scene_str,
        })
    } else {
        json!({ "subscribe": 0, "openid": f.openid })
    };
    if let (Some(open), Some(o)) = (&m.open_appid, out.as_object_mut()) {
        o.insert("unionid".to_string(), Value::String(unionid(open, user)));
    }
    Answer::ok(out, some(actor))
}

fn custom_send(st: &mut State, actor: &str, obj: &Map<String, Value>) -> Answer {
    let touser = str_field(obj, "touser").unwrap_or_default();
    let Some(m) = st.merchants.get(actor) else {
        return Answer::err(61003, some(actor));
    };
    let Some((_, f)) = m.user_by_openid(&touser) else {
        return Answer::err(40003, some(actor));
    };
    if !f.subscribed {
        return Answer::err(43004, some(actor));
    }
    if str_field(obj, "msgtype").as_deref() != Some("text") {
        return Answer::err(40008, some(actor));
    }
    let Some(content) = obj
        .get("text")
        .and_then(|t| t.get("content"))
        .and_then(Value::as_str)
    else {
        return Answer::err(47001, some(actor));
    };
    let record = CustomMessage {
        appid: actor.to_string(),
        touser,
        content: content.to_string(),
        at: st.now(),
    };
    push_bounded(&mut st.custom_messages, record);
    Answer::ok(err_json(0), some(actor))
}

/// Appends a call to the log.
pub fn log_call(st: &mut State, api: &str, token_kind: &str, appid: Option<String>, errcode: i64) {
    let record = CallRecord {
        api: api.to_string(),
        token_kind: token_kind.to_string(),
        authorizer_appid: appid,
        errcode,
        at: st.now(),
    };
    push_bounded(&mut st.calls, record);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_map_to_api_names() {
        assert_eq!(
            api_for_path("component/api_component_token"),
            Some(("api_component_token", false))
        );
        assert_eq!(api_for_path("open/create"), Some(("open/create", false)));
        assert_eq!(api_for_path("user/info"), Some(("user/info", true)));
        assert_eq!(
            api_for_path("message/custom/send"),
            Some(("message/custom/send", false))
        );
        assert_eq!(api_for_path("api_component_token"), None);
        assert_eq!(api_for_path("component/open/create"), None);
        assert_eq!(api_for_path("nope"), None);
    }
}
