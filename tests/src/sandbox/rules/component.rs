//! The component APIs (`/cgi-bin/component/…`): the component token, pushes of the ticket,
//! pre-authorization codes, exchanging an authorization code, authorizer tokens, info and list.

use serde_json::{Value, json};

use super::super::api::{Answer, Effect, err_json};
use super::super::state::{Kind, Owner, PreAuthCode, State};
use super::super::util::{func_info_json, int_field, random_alnum, str_field};
use super::{Call, check_component_appid};

pub fn component_token(st: &mut State, call: &Call<'_>) -> Answer {
    if let Err(answer) = check_component_appid(st, call.body) {
        return answer;
    }
    let obj = call.body;
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

pub fn start_push_ticket(st: &mut State, call: &Call<'_>) -> Answer {
    if let Err(answer) = check_component_appid(st, call.body) {
        return answer;
    }
    let obj = call.body;
    if str_field(obj, "component_secret").as_deref() != Some(st.config.component_appsecret.as_str())
    {
        return Answer::err(40125, None);
    }
    let mut answer = Answer::ok(err_json(0), None);
    answer.effect = Some(Effect::PushTicket);
    answer
}

pub fn create_preauthcode(st: &mut State, call: &Call<'_>) -> Answer {
    if let Err(answer) = check_component_appid(st, call.body) {
        return answer;
    }
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

pub fn query_auth(st: &mut State, call: &Call<'_>) -> Answer {
    if let Err(answer) = check_component_appid(st, call.body) {
        return answer;
    }
    let obj = call.body;
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

pub fn authorizer_token(st: &mut State, call: &Call<'_>) -> Answer {
    if let Err(answer) = check_component_appid(st, call.body) {
        return answer;
    }
    let obj = call.body;
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

pub fn get_authorizer_info(st: &mut State, call: &Call<'_>) -> Answer {
    if let Err(answer) = check_component_appid(st, call.body) {
        return answer;
    }
    let obj = call.body;
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

pub fn get_authorizer_list(st: &mut State, call: &Call<'_>) -> Answer {
    if let Err(answer) = check_component_appid(st, call.body) {
        return answer;
    }
    let obj = call.body;
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
