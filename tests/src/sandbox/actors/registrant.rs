//! The people who finish a fast registration on WeChat's side: the company's legal person
//! (opens the enterprise task's URL, then confirms, refuses or lets the 24 h pass; WeChat pushes
//! `notify_third_fasteregister` to the component callback) and an official account's admin
//! (confirms on the `fastregisterauth` page, whose browser is sent back with a `ticket`).
//!
//! Control routes under `/sandbox/fast-registrations/`:
//! * `GET` — the enterprise tasks; `POST settings {platform_lacks_sets}` — the 89254 knob;
//! * `POST {taskid}/confirm {authorized_push?: "none" | "after" | "before"}` — a new mini
//!   program, authorized for the platform, pushed with status 0 and its auth code (optionally
//!   also an `authorized` push carrying the same code, after or before the notice);
//! * `POST {taskid}/refuse {status?}` (default -1: names mismatch; e.g. 103, 1001) and
//!   `POST {taskid}/timeout` (100003) — the failure pushed;
//! * `POST oa/confirm {url}` — the admin opens a `fastregisterauth` URL and confirms.

use std::sync::Arc;

use axum::http::{Method, StatusCode};
use serde_json::{Map, Value, json};

use super::super::Shared;
use super::super::push::{self, AuthPush, deliver_component, redirect_with};
use super::super::reply::{Outcome, bad, bad_request, body_object, ok, required};
use super::super::rules::registration::{Task, new_mini_program};
use super::super::util::{cdata, int_field, random_alnum};

pub async fn route(shared: &Arc<Shared>, method: &Method, segs: &[&str], body: &[u8]) -> Outcome {
    let post = *method == Method::POST;
    match segs {
        [] | [""] if *method == Method::GET => {
            let st = shared.lock();
            ok(json!(st.registrations.tasks.values().collect::<Vec<_>>()))
        }
        ["settings"] if post => {
            let obj = body_object(body)?;
            let lacks = match obj.get("platform_lacks_sets") {
                Some(Value::Bool(b)) => *b,
                _ => return Err(bad_request("platform_lacks_sets must be a boolean")),
            };
            shared.lock().registrations.platform_lacks_sets = lacks;
            ok(json!({ "platform_lacks_sets": lacks }))
        }
        ["oa", "confirm"] if post => oa_confirm(shared, body_object(body)?).await,
        [taskid, "confirm"] if post => confirm(shared, taskid, body_object(body)?).await,
        [taskid, "refuse"] if post => {
            let obj = body_object(body)?;
            let status = int_field(&obj, "status")
                .map_err(|_| bad_request("status must be an integer"))?
                .unwrap_or(-1);
            if status == 0 {
                return Err(bad_request("a refusal has a non-zero status"));
            }
            fail(shared, taskid, status, "refused").await
        }
        [taskid, "timeout"] if post => fail(shared, taskid, 100_003, "timed_out").await,
        _ => Err(bad(
            StatusCode::NOT_FOUND,
            format!(
                "no control route {method} /sandbox/fast-registrations/{}",
                segs.join("/")
            ),
        )),
    }
}

/// The notice WeChat pushes (`appid` and `auth_code` only on success).
fn notice_xml(
    component_appid: &str,
    now: i64,
    task: &Task,
    status: i64,
    appid: Option<(&str, &str)>,
) -> String {
    let success = appid
        .map(|(a, code)| {
            format!(
                "<appid>{}</appid><auth_code>{}</auth_code>",
                cdata(a),
                cdata(code)
            )
        })
        .unwrap_or_default();
    format!(
        "<xml><AppId>{}</AppId><CreateTime>{now}</CreateTime><InfoType>{}</InfoType>{success}<status>{status}</status><msg>{}</msg><info><name>{}</name><code>{}</code><code_type>1</code_type><legal_persona_wechat></legal_persona_wechat><legal_persona_name></legal_persona_name><component_phone>{}</component_phone></info></xml>",
        cdata(component_appid),
        cdata("notify_third_fasteregister"),
        cdata(if status == 0 { "OK" } else { "failed" }),
        cdata(&task.name),
        cdata(&task.code),
        cdata(&task.component_phone),
    )
}

/// Takes a pending task (409 when it is not pending any more).
fn take_pending(
    shared: &Arc<Shared>,
    taskid: &str,
    new_state: &str,
) -> Result<Task, super::super::reply::Fail> {
    let mut st = shared.lock();
    let Some(task) = st.registrations.tasks.get_mut(taskid) else {
        return Err(bad(StatusCode::NOT_FOUND, "unknown task"));
    };
    if task.state != "pending" {
        return Err(bad(StatusCode::CONFLICT, format!("task is {}", task.state)));
    }
    task.state = new_state.to_string();
    Ok(task.clone())
}

async fn fail(shared: &Arc<Shared>, taskid: &str, status: i64, state: &str) -> Outcome {
    let task = take_pending(shared, taskid, state)?;
    let xml = {
        let st = shared.lock();
        notice_xml(&st.config.component_appid, st.now(), &task, status, None)
    };
    let push = deliver_component(shared, "notify_third_fasteregister", xml).await;
    ok(json!({ "status": status, "push": push }))
}

async fn confirm(shared: &Arc<Shared>, taskid: &str, obj: Map<String, Value>) -> Outcome {
    let order = match obj.get("authorized_push").and_then(Value::as_str) {
        None | Some("none") => None,
        Some("after") => Some(false),
        Some("before") => Some(true),
        Some(_) => return Err(bad_request("authorized_push must be none, after or before")),
    };
    let task = take_pending(shared, taskid, "confirmed")?;
    let (appid, code, notice, authorized) = {
        let mut st = shared.lock();
        let Some((appid, code)) = new_mini_program(&mut st, &task.name, &task.name) else {
            return Err(bad(
                StatusCode::INTERNAL_SERVER_ERROR,
                "could not create the mini program",
            ));
        };
        if let Some(t) = st.registrations.tasks.get_mut(taskid) {
            t.appid = Some(appid.clone());
        }
        let now = st.now();
        let c = st.config.component_appid.clone();
        let notice = notice_xml(&c, now, &task, 0, Some((&appid, &code)));
        let authorized = push::authorized_xml(&AuthPush {
            info_type: "authorized",
            component_appid: &c,
            now,
            authorizer_appid: &appid,
            code: &code,
            code_expires_at: now.saturating_add(st.config.auth_code_ttl_secs),
            pre_auth_code: None,
        });
        (appid, code, notice, authorized)
    };
    let (notice_push, authorized_push) = match order {
        None => (
            deliver_component(shared, "notify_third_fasteregister", notice).await,
            None,
        ),
        Some(false) => {
            let n = deliver_component(shared, "notify_third_fasteregister", notice).await;
            (
                n,
                Some(deliver_component(shared, "authorized", authorized).await),
            )
        }
        Some(true) => {
            let a = deliver_component(shared, "authorized", authorized).await;
            (
                deliver_component(shared, "notify_third_fasteregister", notice).await,
                Some(a),
            )
        }
    };
    ok(json!({
        "appid": appid,
        "auth_code": code,
        "push": notice_push,
        "authorized_push": authorized_push,
    }))
}

async fn oa_confirm(shared: &Arc<Shared>, obj: Map<String, Value>) -> Outcome {
    let link = required(&obj, "url")?;
    let url = url::Url::parse(link.trim()).map_err(|_| bad_request("url is not a URL"))?;
    if !url.path().ends_with("/cgi-bin/fastregisterauth") {
        return Err(bad_request("url is not a fastregisterauth URL"));
    }
    let q = super::super::http::parse_query(url.query());
    let get = |k: &str| q.get(k).filter(|v| !v.is_empty()).cloned();
    let (Some(oa), Some(component), Some(redirect_uri)) =
        (get("appid"), get("component_appid"), get("redirect_uri"))
    else {
        return Err(bad_request(
            "url needs appid, component_appid and redirect_uri",
        ));
    };
    let ticket = {
        let mut st = shared.lock();
        if component != st.config.component_appid {
            return Err(bad_request(
                "component_appid does not match the sandbox component",
            ));
        }
        match st.merchants.get(&oa) {
            Some(m) if m.kind == super::super::state::Kind::OfficialAccount => {}
            _ => return Err(bad(StatusCode::NOT_FOUND, "unknown official account")),
        }
        let ticket = format!("fastregisterticket@@@{}", random_alnum(40));
        st.registrations.tickets.insert(
            ticket.clone(),
            super::super::rules::registration::OaTicket {
                oa_appid: oa,
                used: false,
            },
        );
        ticket
    };
    let redirect = redirect_with(shared, &redirect_uri, &[("ticket", &ticket)]).await;
    ok(json!({ "ticket": ticket, "redirect": redirect }))
}
