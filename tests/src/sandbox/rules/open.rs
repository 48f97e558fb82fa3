//! Open accounts (`/cgi-bin/open/…`): create, bind, unbind, get, with WeChat's rules on the
//! subject, the bind limit and accounts registered on the website.

use serde_json::{Map, Value, json};

use super::super::api::{Answer, err_json};
use super::super::state::{Kind, OpenAccount, State};
use super::super::util::str_field;
use super::Call;

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

pub fn create(st: &mut State, call: &Call<'_>) -> Answer {
    let (actor, obj) = (call.actor, call.body);
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

pub fn bind(st: &mut State, call: &Call<'_>) -> Answer {
    let (actor, obj) = (call.actor, call.body);
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

pub fn unbind(st: &mut State, call: &Call<'_>) -> Answer {
    let (actor, obj) = (call.actor, call.body);
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

pub fn get(st: &mut State, call: &Call<'_>) -> Answer {
    let (actor, obj) = (call.actor, call.body);
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
