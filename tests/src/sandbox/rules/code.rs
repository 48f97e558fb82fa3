//! Mini program code management (`/wxa/…`): the template library with the component token,
//! and one mini program's code with its authorizer token (permission set 18): categories and
//! pages, commit (the trial version) and its QR code (a binary answer), audits against the
//! platform's monthly quota, release, rollback and gray release. The world it acts on is in
//! `code.rs` (drafts, templates, audits and their pushes).

use serde_json::{Map, Value, json};

use super::super::api::{Answer, err_json};
use super::super::code::{
    Gray, HISTORY_KEEP, TEMPLATE_LIMIT, Template, UNDO_PER_DAY, Version, month,
};
use super::super::state::{CodeCommit, Kind, State};
use super::super::util::str_field;
use super::Call;

/// Permission set 18 (小程序开发与数据分析): code management.
const CODE_MANAGEMENT: u32 = 18;

fn ok_with(call: &Call<'_>, fields: Value) -> Answer {
    let mut out = err_json(0);
    if let (Some(o), Value::Object(extra)) = (out.as_object_mut(), fields) {
        o.extend(extra);
    }
    Answer::ok(out, call.actor_appid())
}

fn ok(call: &Call<'_>) -> Answer {
    Answer::ok(err_json(0), call.actor_appid())
}

fn err(call: &Call<'_>, code: i64) -> Answer {
    Answer::err(code, call.actor_appid())
}

/// The categories every sandbox mini program has (WeChat's shape, ids from its catalogue).
fn categories() -> Value {
    json!([
        { "first_class": "工具", "second_class": "效率", "first_id": 287, "second_id": 616 },
        { "first_class": "教育", "second_class": "在线教育", "first_id": 6, "second_id": 1058 },
    ])
}

/// The account must be a mini program that granted set 18 (61007 otherwise; an official
/// account holding it anyway gets 85015), not refused by a knob (61007 / 86000); then due
/// audits are settled, so every answer sees the sandbox's present.
fn precheck(st: &mut State, call: &Call<'_>) -> Result<(), Answer> {
    let Some(m) = st.merchants.get(call.actor) else {
        return Err(err(call, 61003));
    };
    if !m.granted().contains(&CODE_MANAGEMENT) {
        return Err(err(call, 61007));
    }
    if m.kind != Kind::MiniProgram {
        return Err(err(call, 85015));
    }
    if let Some(code) = st.code.programs.get(call.actor).and_then(|p| p.refuse) {
        return Err(err(call, code));
    }
    let (now, delay) = (st.now(), st.config.audit_delay_secs);
    st.code.settle(now, false, delay);
    Ok(())
}

fn committed<'a>(st: &'a State, call: &Call<'_>) -> Option<&'a CodeCommit> {
    st.merchants
        .get(call.actor)
        .and_then(|m| m.committed.as_ref())
}

/// A body field WeChat wants as a number (a quoted number is a common mistake: refused).
fn int(body: &Map<String, Value>, key: &str) -> Option<i64> {
    body.get(key).and_then(Value::as_i64)
}

// ---- the template library (component token) ----

pub fn get_template_draft_list(st: &mut State, _call: &Call<'_>) -> Answer {
    let list: Vec<Value> = st
        .code
        .drafts
        .values()
        .map(|d| {
            json!({
                "draft_id": d.draft_id,
                "user_version": d.user_version,
                "user_desc": d.user_desc,
                "create_time": d.create_time,
                "source_miniprogram_appid": super::super::code::DEV_APPID,
                "source_miniprogram": "Sandbox template dev",
                "developer": "sandbox-dev",
            })
        })
        .collect();
    Answer::ok(
        json!({ "errcode": 0, "errmsg": "ok", "draft_list": list }),
        None,
    )
}

/// `{draft_id, template_type?}`: 85064 no such draft, 40097 a type other than 0 / 1, 85065 the
/// library is full.
pub fn add_to_template(st: &mut State, call: &Call<'_>) -> Answer {
    let Some(draft) = int(call.body, "draft_id").and_then(|id| st.code.drafts.get(&id).cloned())
    else {
        return Answer::err(85064, None);
    };
    let template_type = match call.body.get("template_type") {
        None | Some(Value::Null) => 0,
        Some(v) => match v.as_i64() {
            Some(t @ (0 | 1)) => t,
            _ => return Answer::err(40097, None),
        },
    };
    if st.code.templates.len() >= TEMPLATE_LIMIT {
        return Answer::err(85065, None);
    }
    let now = st.now();
    let template_id = st.code.next_template;
    st.code.next_template += 1;
    st.code.templates.insert(
        template_id,
        Template {
            template_id,
            template_type,
            draft_id: draft.draft_id,
            user_version: draft.user_version,
            user_desc: draft.user_desc,
            create_time: now,
            pages: draft.pages,
        },
    );
    Answer::ok(err_json(0), None)
}

pub fn get_template_list(st: &mut State, call: &Call<'_>) -> Answer {
    let kind = call.query_param("template_type").map(str::parse::<i64>);
    let kind = match kind {
        None => None,
        Some(Ok(t)) => Some(t),
        Some(Err(_)) => return Answer::err(40097, None),
    };
    let list: Vec<Value> = st
        .code
        .templates
        .values()
        .filter(|t| kind.is_none_or(|k| k == t.template_type))
        .map(|t| {
            json!({
                "template_id": t.template_id,
                "template_type": t.template_type,
                "draft_id": t.draft_id,
                "user_version": t.user_version,
                "user_desc": t.user_desc,
                "create_time": t.create_time,
                "source_miniprogram_appid": super::super::code::DEV_APPID,
                "source_miniprogram": "Sandbox template dev",
                "developer": "sandbox-dev",
                "category_list": [],
                "audit_scene": 0,
                "audit_status": 0,
                "reason": "",
            })
        })
        .collect();
    Answer::ok(
        json!({ "errcode": 0, "errmsg": "ok", "template_list": list }),
        None,
    )
}

/// `{template_id}`: 85064 when there is no such template.
pub fn delete_template(st: &mut State, call: &Call<'_>) -> Answer {
    match int(call.body, "template_id").and_then(|id| st.code.templates.remove(&id)) {
        Some(_) => Answer::ok(err_json(0), None),
        None => Answer::err(85064, None),
    }
}

// ---- one mini program's code (authorizer token) ----

pub fn get_category(st: &mut State, call: &Call<'_>) -> Answer {
    if let Err(answer) = precheck(st, call) {
        return answer;
    }
    ok_with(call, json!({ "category_list": categories() }))
}

/// The pages of the committed template; 86001 before any commit.
pub fn get_page(st: &mut State, call: &Call<'_>) -> Answer {
    if let Err(answer) = precheck(st, call) {
        return answer;
    }
    let Some(c) = committed(st, call) else {
        return err(call, 86001);
    };
    let pages: Vec<String> = st
        .code
        .templates
        .get(&c.template_id)
        .map(|t| t.pages.clone())
        .unwrap_or_else(|| {
            super::super::code::DEFAULT_PAGES
                .iter()
                .map(|p| p.to_string())
                .collect()
        });
    ok_with(call, json!({ "page_list": pages }))
}

/// `{template_id, ext_json: "<JSON as a string>", user_version (≤ 64 chars), user_desc}`:
/// 85014 no such template in the library (a quoted id does not find it either), 85048
/// `ext_json` does not parse, 85013 it is not an object (or not a string), 85015 a missing or
/// too long `user_version`.
pub fn commit(st: &mut State, call: &Call<'_>) -> Answer {
    if let Err(answer) = precheck(st, call) {
        return answer;
    }
    let body = call.body;
    let Some(template_id) =
        int(body, "template_id").filter(|id| st.code.templates.contains_key(id))
    else {
        return err(call, 85014);
    };
    let ext_json = match body.get("ext_json") {
        None | Some(Value::Null) => None,
        Some(Value::String(text)) => match serde_json::from_str::<Value>(text) {
            Ok(v @ Value::Object(_)) => Some(v),
            Ok(_) => return err(call, 85013),
            Err(_) => return err(call, 85048),
        },
        Some(_) => return err(call, 85013),
    };
    let user_version = str_field(body, "user_version").unwrap_or_default();
    if !(1..=64).contains(&user_version.chars().count()) {
        return err(call, 85015);
    }
    let user_desc = str_field(body, "user_desc").unwrap_or_default();
    let at = st.now();
    let Some(m) = st.merchants.get_mut(call.actor) else {
        return err(call, 61003);
    };
    m.committed = Some(CodeCommit {
        template_id,
        user_version,
        user_desc,
        ext_json,
        at,
    });
    ok(call)
}

/// The trial version's QR code: `image/jpeg` bytes (`QRCode.jpg`); 86001 before any commit.
/// The optional `path` query parameter is the page to open (any page is accepted).
pub fn get_qrcode(st: &mut State, call: &Call<'_>) -> Answer {
    if let Err(answer) = precheck(st, call) {
        return answer;
    }
    if committed(st, call).is_none() {
        return err(call, 86001);
    }
    Answer::bytes("image/jpeg", "QRCode.jpg", jpeg(), call.actor_appid())
}

/// `item_list` when given: a list of 1 to 5 objects (85023 otherwise). The other fields are kept
/// as sent (`GET /sandbox/code/programs/{appid}` shows them).
pub fn submit_audit(st: &mut State, call: &Call<'_>) -> Answer {
    if let Err(answer) = precheck(st, call) {
        return answer;
    }
    let Some(c) = committed(st, call).cloned() else {
        return err(call, 85086);
    };
    if let Some(items) = call.body.get("item_list") {
        let fine = items
            .as_array()
            .is_some_and(|a| (1..=5).contains(&a.len()) && a.iter().all(Value::is_object));
        if !fine {
            return err(call, 85023);
        }
    }
    let now = st.now();
    if st
        .code
        .programs
        .get(call.actor)
        .is_some_and(|p| p.in_review())
    {
        return err(call, 85009);
    }
    if st.code.audits_rest(now, st.config.audit_quota) == 0 {
        return err(call, 85085);
    }
    *st.code.audits_used.entry(month(now)).or_insert(0) += 1;
    let auditid = st.code.next_auditid;
    st.code.next_auditid += 1;
    let finish_at = now.saturating_add(st.config.audit_delay_secs);
    let p = st.code.program(call.actor);
    let outcome = p.outcome.clone();
    p.audits.push(super::super::code::Audit {
        auditid,
        status: 2,
        reason: None,
        screenshot: None,
        submitted_at: now,
        finish_at,
        template_id: c.template_id,
        user_version: c.user_version,
        user_desc: c.user_desc,
        submission: Value::Object(call.body.clone()),
        outcome,
        sped_up: false,
        released: false,
    });
    let mut answer = ok_with(call, json!({ "auditid": auditid }));
    if st.config.audit_auto_push {
        answer.effect = Some(super::super::api::Effect::AuditPushes);
    }
    answer
}

fn status_fields(a: &super::super::code::Audit, screenshot_key: &str) -> Map<String, Value> {
    let mut o = Map::new();
    o.insert("status".into(), json!(a.status));
    if let Some(r) = &a.reason {
        o.insert("reason".into(), json!(r));
    }
    if let Some(s) = &a.screenshot {
        o.insert(screenshot_key.into(), json!(s));
    }
    o
}

/// `{auditid}`: that audit of this mini program (85012 for another's or an unknown id).
pub fn get_auditstatus(st: &mut State, call: &Call<'_>) -> Answer {
    if let Err(answer) = precheck(st, call) {
        return answer;
    }
    let id = int(call.body, "auditid");
    let audit = st
        .code
        .programs
        .get(call.actor)
        .and_then(|p| p.audits.iter().find(|a| Some(a.auditid) == id));
    match audit {
        Some(a) => ok_with(call, Value::Object(status_fields(a, "screenshot"))),
        None => err(call, 85012),
    }
}

/// The newest audit with its id and version (`ScreenShot` capitalised, as WeChat's sample has
/// it); 85012 when there never was one.
pub fn get_latest_auditstatus(st: &mut State, call: &Call<'_>) -> Answer {
    if let Err(answer) = precheck(st, call) {
        return answer;
    }
    let Some(a) = st.code.programs.get(call.actor).and_then(|p| p.current()) else {
        return err(call, 85012);
    };
    let mut o = status_fields(a, "ScreenShot");
    o.insert("auditid".into(), json!(a.auditid));
    o.insert("user_version".into(), json!(a.user_version));
    o.insert("user_desc".into(), json!(a.user_desc));
    o.insert("submit_audit_time".into(), json!(a.submitted_at));
    ok_with(call, Value::Object(o))
}

/// Withdraws the audit in review (status 3; the quota is not given back): 85012 when none is in
/// review, 87013 past 5 undos in a day.
pub fn undocodeaudit(st: &mut State, call: &Call<'_>) -> Answer {
    if let Err(answer) = precheck(st, call) {
        return answer;
    }
    let day = st.now().div_euclid(86_400);
    let p = st.code.program(call.actor);
    if !p.in_review() {
        return err(call, 85012);
    }
    let used = if p.undos.0 == day { p.undos.1 } else { 0 };
    if used >= UNDO_PER_DAY {
        return err(call, 87013);
    }
    p.undos = (day, used + 1);
    if let Some(a) = p.current_mut() {
        a.status = 3;
        a.reason = None;
    }
    ok(call)
}

/// `{auditid}` of the audit in review: it finishes in half the remaining time. 89402 not in
/// review, 89404 already sped up, 89405 the month's speed-ups are used.
pub fn speedupaudit(st: &mut State, call: &Call<'_>) -> Answer {
    if let Err(answer) = precheck(st, call) {
        return answer;
    }
    let now = st.now();
    let id = int(call.body, "auditid");
    let rest = st.code.speedups_rest(now, st.config.speedup_quota);
    let p = st.code.program(call.actor);
    let in_review = p.in_review();
    let Some(a) = p
        .current_mut()
        .filter(|a| Some(a.auditid) == id && in_review)
    else {
        return err(call, 89402);
    };
    if a.sped_up {
        return err(call, 89404);
    }
    if rest == 0 {
        return err(call, 89405);
    }
    a.sped_up = true;
    a.finish_at = now.saturating_add(a.finish_at.saturating_sub(now).max(0) / 2);
    *st.code.speedups_used.entry(month(now)).or_insert(0) += 1;
    ok(call)
}

pub fn queryquota(st: &mut State, call: &Call<'_>) -> Answer {
    if let Err(answer) = precheck(st, call) {
        return answer;
    }
    let now = st.now();
    let (limit, speedup) = (st.config.audit_quota, st.config.speedup_quota);
    ok_with(
        call,
        json!({
            "rest": st.code.audits_rest(now, limit),
            "limit": limit,
            "speedup_rest": st.code.speedups_rest(now, speedup),
            "speedup_limit": speedup,
        }),
    )
}

/// The approved version goes live: 85019 when the newest audit is not approved, 85052 when it
/// is already released. The body must be `{}`: an empty one is 44002.
pub fn release(st: &mut State, call: &Call<'_>) -> Answer {
    if let Err(answer) = precheck(st, call) {
        return answer;
    }
    if call.raw.iter().all(u8::is_ascii_whitespace) {
        return err(call, 44002);
    }
    let now = st.now();
    let p = st.code.program(call.actor);
    let Some(a) = p.current_mut().filter(|a| a.status == 0) else {
        return err(call, 85019);
    };
    if a.released {
        return err(call, 85052);
    }
    a.released = true;
    let version = Version {
        app_version: 0,
        template_id: a.template_id,
        user_version: a.user_version.clone(),
        user_desc: a.user_desc.clone(),
        commit_time: a.submitted_at,
        released_at: now,
    };
    let app_version = p.next_app_version;
    p.next_app_version += 1;
    if let Some(previous) = p.released.take() {
        p.history.push(previous);
        if p.history.len() > HISTORY_KEEP {
            p.history.remove(0);
        }
    }
    p.released = Some(Version {
        app_version,
        ..version
    });
    if let Some(g) = p.gray.as_mut().filter(|g| g.status == 1) {
        g.status = 3;
    }
    ok(call)
}

/// `?action=get_history_version` lists the versions a rollback reaches (newest first); without
/// it, back to the previous version or `?app_version=`: 87011 while a gray release runs, 87012
/// nothing (or no such version) to roll back to.
pub fn revertcoderelease(st: &mut State, call: &Call<'_>) -> Answer {
    if let Err(answer) = precheck(st, call) {
        return answer;
    }
    let now = st.now();
    let p = st.code.program(call.actor);
    if call.query_param("action") == Some("get_history_version") {
        let list: Vec<Value> = p
            .history
            .iter()
            .rev()
            .map(|v| {
                json!({
                    "app_version": v.app_version,
                    "user_version": v.user_version,
                    "user_desc": v.user_desc,
                    "commit_time": v.commit_time,
                })
            })
            .collect();
        return ok_with(call, json!({ "version_list": list }));
    }
    if p.gray.as_ref().is_some_and(|g| g.status == 1) {
        return err(call, 87011);
    }
    let wanted = match call.query_param("app_version") {
        None => p.history.len().checked_sub(1),
        Some(v) => v
            .parse::<i64>()
            .ok()
            .and_then(|v| p.history.iter().position(|h| h.app_version == v)),
    };
    let (Some(i), Some(current)) = (wanted, p.released.clone()) else {
        return err(call, 87012);
    };
    let mut target = p.history.remove(i);
    target.released_at = now;
    p.history.push(current);
    p.released = Some(target);
    ok(call)
}

/// `{gray_percentage 0..=100, support_experiencer_first?, support_debuger_first?}` of the
/// approved, unreleased version: 85079 no live version yet, 85080 nothing approved to release,
/// 85081 a bad percentage (or 0 without a flag), 85082 not higher than the running plan's.
pub fn grayrelease(st: &mut State, call: &Call<'_>) -> Answer {
    if let Err(answer) = precheck(st, call) {
        return answer;
    }
    let now = st.now();
    let body = call.body;
    let flag = |k: &str| body.get(k).and_then(Value::as_bool).unwrap_or(false);
    let (experiencer, debuger) = (
        flag("support_experiencer_first"),
        flag("support_debuger_first"),
    );
    let percentage = int(body, "gray_percentage").filter(|p| (0..=100).contains(p));
    let p = st.code.program(call.actor);
    if p.released.is_none() {
        return err(call, 85079);
    }
    if !p.current().is_some_and(|a| a.status == 0 && !a.released) {
        return err(call, 85080);
    }
    let Some(percentage) = percentage.filter(|v| *v > 0 || experiencer || debuger) else {
        return err(call, 85081);
    };
    if let Some(g) = p.gray.as_ref().filter(|g| g.status == 1)
        && percentage <= g.gray_percentage
    {
        return err(call, 85082);
    }
    p.gray = Some(Gray {
        status: 1,
        create_timestamp: now,
        gray_percentage: percentage,
        support_experiencer_first: experiencer,
        support_debuger_first: debuger,
    });
    ok(call)
}

pub fn getgrayreleaseplan(st: &mut State, call: &Call<'_>) -> Answer {
    if let Err(answer) = precheck(st, call) {
        return answer;
    }
    let plan = st
        .code
        .programs
        .get(call.actor)
        .and_then(|p| p.gray.clone())
        .unwrap_or_default();
    ok_with(call, json!({ "gray_release_plan": plan }))
}

/// Cancels the running gray release (status 4); 85079 when none runs.
pub fn revertgrayrelease(st: &mut State, call: &Call<'_>) -> Answer {
    if let Err(answer) = precheck(st, call) {
        return answer;
    }
    match st
        .code
        .program(call.actor)
        .gray
        .as_mut()
        .filter(|g| g.status == 1)
    {
        Some(g) => {
            g.status = 4;
            ok(call)
        }
        None => err(call, 85079),
    }
}

/// A valid 1×1 grey baseline JPEG standing in for a QR code: one quantization table, one-code
/// Huffman tables, one block whose DC and AC codes are both `0`.
pub fn jpeg() -> Vec<u8> {
    let mut out = vec![0xFF, 0xD8]; // SOI
    out.extend([0xFF, 0xDB, 0x00, 0x43, 0x00]); // DQT, table 0
    out.extend([1u8; 64]);
    // SOF0: 8-bit, 1×1, one component (id 1, 1×1 sampling, table 0).
    out.extend([
        0xFF, 0xC0, 0x00, 0x0B, 0x08, 0x00, 0x01, 0x00, 0x01, 0x01, 0x01, 0x11, 0x00,
    ]);
    // DHT: DC table 0 and AC table 0, each one code of length 1 for symbol 0.
    for class in [0x00, 0x10] {
        out.extend([0xFF, 0xC4, 0x00, 0x14, class, 0x01]);
        out.extend([0u8; 15]);
        out.push(0x00);
    }
    // SOS: one component, tables 0/0, spectral 0..63; then DC 0 + EOB, padded with ones.
    out.extend([
        0xFF, 0xDA, 0x00, 0x08, 0x01, 0x01, 0x00, 0x00, 0x3F, 0x00, 0x3F,
    ]);
    out.extend([0xFF, 0xD9]); // EOI
    out
}

// Added for fleet releases (issue 19, part 3).

/// `getversioninfo`: the trial version (the last commit) and the live version, each absent
/// when there is none.
pub fn getversioninfo(st: &mut State, call: &Call<'_>) -> Answer {
    if let Err(answer) = precheck(st, call) {
        return answer;
    }
    let exp = st
        .merchants
        .get(call.actor)
        .and_then(|m| m.committed.as_ref())
        .map(|c| json!({"exp_time": c.at, "exp_version": c.user_version, "exp_desc": c.user_desc}));
    let live = st
        .code
        .programs
        .get(call.actor)
        .and_then(|p| p.released.as_ref())
        .map(|v| {
            json!({"release_time": v.released_at, "release_version": v.user_version, "release_desc": v.user_desc})
        });
    let mut fields = Map::new();
    if let Some(e) = exp {
        fields.insert("exp_info".into(), e);
    }
    if let Some(r) = live {
        fields.insert("release_info".into(), r);
    }
    ok_with(call, Value::Object(fields))
}
