//! Fast registration: the enterprise successor API (`fastregisterenterpriseweapp`: a task and
//! the URL the legal person opens within 24 h) and the official account's route
//! (`cgi-bin/account/fastregister`: the ticket from WeChat's `fastregisterauth` page becomes a
//! new mini program). What the legal person and the admin do is in `actors/registrant.rs`.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;
use serde_json::json;

use super::super::api::Answer;
use super::super::state::{Kind, Merchant, State};
use super::super::util::{random_alnum, random_hex, str_field};
use super::Call;

/// A confirmation has 24 h.
pub const TASK_TTL_SECS: i64 = 86_400;

#[derive(Debug, Clone, Serialize)]
pub struct Task {
    pub taskid: String,
    pub name: String,
    pub code: String,
    pub component_phone: String,
    pub created_at: i64,
    /// `pending`, `confirmed`, `refused`, `timed_out`.
    pub state: String,
    pub appid: Option<String>,
}

/// A ticket WeChat's `fastregisterauth` page gave an official account's admin.
#[derive(Debug, Clone)]
pub struct OaTicket {
    pub oa_appid: String,
    pub used: bool,
}

#[derive(Debug, Default)]
pub struct Registrations {
    pub tasks: BTreeMap<String, Task>,
    pub tickets: HashMap<String, OaTicket>,
    /// Knob: the platform lacks the permission sets (89254).
    pub platform_lacks_sets: bool,
}

/// A new mini program of `subject`, authorized to the platform (sets 17, 18, 19, 25, 30), with
/// its single-use authorization code.
pub fn new_mini_program(st: &mut State, subject: &str, name: &str) -> Option<(String, String)> {
    let appid = loop {
        let id = format!("wx{}", random_hex(16));
        if !st.merchants.contains_key(&id) {
            break id;
        }
    };
    let mut m = Merchant::new(&appid, Kind::MiniProgram, subject);
    m.nick_name = name.to_string();
    let func = m.func_info.clone();
    st.merchants.insert(appid.clone(), m);
    let (code, _) = st.authorize(&appid, func)?;
    Some((appid, code))
}

pub fn enterprise(st: &mut State, call: &Call<'_>) -> Answer {
    if st.registrations.platform_lacks_sets {
        return Answer::err(89254, None);
    }
    let b = call.body;
    let field = |k: &str| str_field(b, k).filter(|v| !v.trim().is_empty());
    let (Some(name), Some(code), Some(phone)) =
        (field("name"), field("code"), field("component_phone"))
    else {
        return Answer::err(89253, None);
    };
    if wxopen::registration::check_credit_code(Some(&code)).is_err() {
        return Answer::err(89255, None);
    }
    let now = st.now();
    let running = st
        .registrations
        .tasks
        .values()
        .any(|t| t.code == code && t.state == "pending" && now < t.created_at + TASK_TTL_SECS);
    if running {
        return Answer::err(89249, None);
    }
    let taskid = random_hex(32);
    let authorize_url = format!(
        "https://sandbox.wxopen.invalid/wxopen/fastregister/authorize?taskid={taskid}&token={}",
        random_alnum(24)
    );
    st.registrations.tasks.insert(
        taskid.clone(),
        Task {
            taskid: taskid.clone(),
            name,
            code,
            component_phone: phone,
            created_at: now,
            state: "pending".to_string(),
            appid: None,
        },
    );
    Answer::ok(
        json!({ "errcode": 0, "errmsg": "ok", "taskid": taskid, "authorize_url": authorize_url, "status": 0 }),
        None,
    )
}

pub fn account_fastregister(st: &mut State, call: &Call<'_>) -> Answer {
    let actor = call.actor.to_string();
    let log = Some(actor.clone());
    let ticket = str_field(call.body, "ticket").unwrap_or_default();
    match st.registrations.tickets.get(&ticket) {
        Some(t) if !t.used && t.oa_appid == actor => {}
        _ => return Answer::err(61058, log),
    }
    let Some(oa) = st.merchants.get(&actor) else {
        return Answer::err(61003, log);
    };
    if !oa.granted().contains(&27) {
        return Answer::err(61007, log);
    }
    let (subject, name) = (oa.subject.clone(), format!("{} mini program", oa.nick_name));
    if let Some(t) = st.registrations.tickets.get_mut(&ticket) {
        t.used = true;
    }
    let Some((appid, code)) = new_mini_program(st, &subject, &name) else {
        return Answer::err(-1, log);
    };
    Answer::ok(
        json!({
            "errcode": 0,
            "errmsg": "ok",
            "appid": appid,
            "authorization_code": code,
            "is_wx_verify_succ": true,
            "is_link_succ": true,
        }),
        log,
    )
}
