//! Mini program code in the sandbox's world: the development mini program's drafts, the
//! platform's template library, each mini program's audits, releases and gray release, the
//! platform's monthly audit quota, and audits finishing with their pushes.
//!
//! Time: an audit finishes `audit_delay_secs` (sandbox time) after its submission, with the
//! outcome set for its mini program (approve; reject with a reason and screenshots; or delay
//! once, then approve after another delay). Its status changes when it is due, whoever looks
//! first; its push (`weapp_audit_success` / `weapp_audit_fail` / `weapp_audit_delay`, encrypted,
//! to the message URL) goes out when the control API runs the audits
//! (`POST /sandbox/code/audits/run`, `{"all": true}` finishes every audit now), or by itself
//! after each submit and clock move when `audit_auto_push` is on. A mini program set to
//! `lose_push` never gets its push (WeChat's push lost): only polling finds the result.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::http::StatusCode;
use serde::Serialize;
use serde_json::{Map, Value, json};

use super::push::{self, F, Outgoing};
use super::reply::{Fail, Outcome, bad, bad_request, ok};
use super::state::{Kind, State};
use super::util::{openid, str_field};
use super::{Delivery, Shared};

/// The platform's development mini program (3rdMiniProgramAppid), where drafts come from.
pub const DEV_APPID: &str = "wxdev0000000000001";
/// Templates the library holds at most (85065 beyond).
pub const TEMPLATE_LIMIT: usize = 100;
/// Versions a rollback can reach.
pub const HISTORY_KEEP: usize = 5;
/// Undos per mini program per sandbox day (87013 beyond).
pub const UNDO_PER_DAY: u32 = 5;
/// The pages every sandbox draft has unless it names its own.
pub const DEFAULT_PAGES: [&str; 2] = ["pages/index/index", "pages/about/about"];

/// A draft uploaded from the development mini program.
#[derive(Debug, Clone, Serialize)]
pub struct Draft {
    pub draft_id: i64,
    pub user_version: String,
    pub user_desc: String,
    pub create_time: i64,
    pub pages: Vec<String>,
}

/// A template of the library.
#[derive(Debug, Clone, Serialize)]
pub struct Template {
    pub template_id: i64,
    pub template_type: i64,
    pub draft_id: i64,
    pub user_version: String,
    pub user_desc: String,
    pub create_time: i64,
    pub pages: Vec<String>,
}

/// How a mini program's next audits end.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum AuditOutcome {
    Approve,
    Reject {
        reason: String,
        screenshot: String,
    },
    /// Delayed once (with `reason`), then approved after another delay.
    Delay {
        reason: String,
    },
}

/// One `submit_audit`.
#[derive(Debug, Clone, Serialize)]
pub struct Audit {
    pub auditid: i64,
    /// 0 approved, 1 rejected, 2 in review, 3 withdrawn, 4 delayed.
    pub status: i64,
    pub reason: Option<String>,
    pub screenshot: Option<String>,
    pub submitted_at: i64,
    /// When it next changes (sandbox time).
    pub finish_at: i64,
    pub template_id: i64,
    pub user_version: String,
    pub user_desc: String,
    /// The submit body as received (the fields wxopen passes through).
    pub submission: Value,
    pub outcome: AuditOutcome,
    pub sped_up: bool,
    pub released: bool,
}

/// A released (live) version.
#[derive(Debug, Clone, Serialize)]
pub struct Version {
    pub app_version: i64,
    pub template_id: i64,
    pub user_version: String,
    pub user_desc: String,
    pub commit_time: i64,
    pub released_at: i64,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Gray {
    /// 0 init, 1 running, 2 paused, 3 done, 4 deleted.
    pub status: i64,
    pub create_timestamp: i64,
    pub gray_percentage: i64,
    pub support_experiencer_first: bool,
    pub support_debuger_first: bool,
}

/// One mini program's code state beyond its commit (which is `Merchant::committed`).
#[derive(Debug, Clone, Serialize)]
pub struct Program {
    pub audits: Vec<Audit>,
    pub outcome: AuditOutcome,
    pub lose_push: bool,
    /// Every code API answers this (61007: set 18 not granted to this platform; 86000: the
    /// mini program's code is not the platform's).
    pub refuse: Option<i64>,
    pub released: Option<Version>,
    /// Earlier releases, newest last (≤ 5).
    pub history: Vec<Version>,
    pub gray: Option<Gray>,
    /// (sandbox day, undos that day).
    pub undos: (i64, u32),
    pub next_app_version: i64,
}

impl Default for Program {
    fn default() -> Self {
        Self {
            audits: Vec::new(),
            outcome: AuditOutcome::Approve,
            lose_push: false,
            refuse: None,
            released: None,
            history: Vec::new(),
            gray: None,
            undos: (0, 0),
            next_app_version: 1,
        }
    }
}

impl Program {
    pub fn current(&self) -> Option<&Audit> {
        self.audits.last()
    }

    pub fn current_mut(&mut self) -> Option<&mut Audit> {
        self.audits.last_mut()
    }

    /// An audit is in review (or delayed, still in review).
    pub fn in_review(&self) -> bool {
        self.current().is_some_and(|a| matches!(a.status, 2 | 4))
    }
}

/// An audit push waiting to go out.
#[derive(Debug, Clone, Serialize)]
pub struct AuditPush {
    pub appid: String,
    pub auditid: i64,
    pub event: &'static str,
    pub at: i64,
    pub reason: Option<String>,
    pub screenshot: Option<String>,
}

/// The code world.
#[derive(Debug, Clone, Serialize)]
pub struct CodeWorld {
    pub drafts: BTreeMap<i64, Draft>,
    pub templates: BTreeMap<i64, Template>,
    pub next_draft: i64,
    pub next_template: i64,
    pub next_auditid: i64,
    /// (30-day sandbox month) → audits submitted.
    pub audits_used: BTreeMap<i64, i64>,
    pub speedups_used: BTreeMap<i64, i64>,
    pub programs: BTreeMap<String, Program>,
    /// Pushes due, oldest first.
    pub outbox: Vec<AuditPush>,
    /// Pushes that were lost (`lose_push`).
    pub lost: Vec<AuditPush>,
}

impl Default for CodeWorld {
    fn default() -> Self {
        let mut w = Self {
            drafts: BTreeMap::new(),
            templates: BTreeMap::new(),
            next_draft: 1,
            next_template: 1,
            next_auditid: 412_000_001,
            audits_used: BTreeMap::new(),
            speedups_used: BTreeMap::new(),
            programs: BTreeMap::new(),
            outbox: Vec::new(),
            lost: Vec::new(),
        };
        // Two drafts uploaded from the development mini program before the sandbox started.
        w.add_draft("1.0.0", "first draft", None, 0);
        w.add_draft("1.1.0", "second draft", None, 0);
        w
    }
}

pub fn month(now: i64) -> i64 {
    now.div_euclid(30 * 86_400)
}

impl CodeWorld {
    pub fn add_draft(
        &mut self,
        user_version: &str,
        user_desc: &str,
        pages: Option<Vec<String>>,
        now: i64,
    ) -> Draft {
        let draft = Draft {
            draft_id: self.next_draft,
            user_version: user_version.to_string(),
            user_desc: user_desc.to_string(),
            create_time: now,
            pages: pages.unwrap_or_else(|| DEFAULT_PAGES.iter().map(|p| p.to_string()).collect()),
        };
        self.next_draft += 1;
        self.drafts.insert(draft.draft_id, draft.clone());
        draft
    }

    pub fn program(&mut self, appid: &str) -> &mut Program {
        self.programs.entry(appid.to_string()).or_default()
    }

    /// Moves every due audit on (`all`: every audit in review is due now) and queues its push.
    pub fn settle(&mut self, now: i64, all: bool, delay_secs: i64) {
        let mut pushes = Vec::new();
        for (appid, p) in self.programs.iter_mut() {
            let lose = p.lose_push;
            let Some(a) = p.audits.last_mut() else {
                continue;
            };
            // A delayed audit may be delayed once, then approved: at most two steps.
            for _ in 0..2 {
                if !matches!(a.status, 2 | 4) || (!all && now < a.finish_at) {
                    break;
                }
                let at = if all { now } else { a.finish_at };
                let event = match (&a.outcome, a.status) {
                    (AuditOutcome::Reject { reason, screenshot }, _) => {
                        a.status = 1;
                        a.reason = Some(reason.clone());
                        a.screenshot = Some(screenshot.clone());
                        "weapp_audit_fail"
                    }
                    (AuditOutcome::Delay { reason }, 2) => {
                        a.status = 4;
                        a.reason = Some(reason.clone());
                        a.finish_at = at.saturating_add(delay_secs.max(1));
                        "weapp_audit_delay"
                    }
                    _ => {
                        a.status = 0;
                        a.reason = None;
                        "weapp_audit_success"
                    }
                };
                let push = AuditPush {
                    appid: appid.clone(),
                    auditid: a.auditid,
                    event,
                    at,
                    reason: a.reason.clone(),
                    screenshot: a.screenshot.clone(),
                };
                pushes.push((lose, push));
                // `all` finishes a delayed audit in one run too.
                if !all {
                    break;
                }
            }
        }
        for (lose, push) in pushes {
            if lose {
                self.lost.push(push);
            } else {
                self.outbox.push(push);
            }
        }
    }

    pub fn audits_rest(&self, now: i64, limit: i64) -> i64 {
        limit
            .saturating_sub(self.audits_used.get(&month(now)).copied().unwrap_or(0))
            .max(0)
    }

    pub fn speedups_rest(&self, now: i64, limit: i64) -> i64 {
        limit
            .saturating_sub(self.speedups_used.get(&month(now)).copied().unwrap_or(0))
            .max(0)
    }
}

/// The plaintext WeChat pushes for an audit result.
pub fn audit_xml(gh: &str, from: &str, push: &AuditPush) -> String {
    let time = push.at.to_string();
    let mut fields = vec![("Event", F::Text(push.event.to_string()))];
    match push.event {
        "weapp_audit_success" => fields.push(("SuccTime", F::Num(time))),
        "weapp_audit_fail" => {
            fields.push(("Reason", F::Text(push.reason.clone().unwrap_or_default())));
            fields.push(("FailTime", F::Num(time)));
            fields.push((
                "ScreenShot",
                F::Text(push.screenshot.clone().unwrap_or_default()),
            ));
        }
        _ => {
            fields.push(("Reason", F::Text(push.reason.clone().unwrap_or_default())));
            fields.push(("DelayTime", F::Num(time)));
        }
    }
    push::message_xml(gh, from, push.at, "event", &fields)
}

/// What became of one audit push.
#[derive(Debug, Clone, Serialize)]
pub struct AuditDelivery {
    pub appid: String,
    pub auditid: i64,
    pub event: &'static str,
    pub delivery: Delivery,
}

/// Settles due audits (all of them with `all`), then delivers the queued pushes, one after the
/// other, each with WeChat's retries.
pub async fn run_audits(shared: &Arc<Shared>, all: bool) -> Vec<AuditDelivery> {
    let queued = {
        let mut st = shared.lock();
        let now = st.now();
        let delay = st.config.audit_delay_secs;
        st.code.settle(now, all, delay);
        let outbox = std::mem::take(&mut st.code.outbox);
        let base = st.config.message_callback_base.clone();
        outbox
            .into_iter()
            .map(|p| {
                let gh = st
                    .merchants
                    .get(&p.appid)
                    .map(|m| m.user_name.clone())
                    .unwrap_or_default();
                let url = base
                    .as_deref()
                    .map(|b| format!("{}/{}", b.trim_end_matches('/'), p.appid));
                let from = openid(&p.appid, "wechat-audit");
                (audit_xml(&gh, &from, &p), gh, url, p)
            })
            .collect::<Vec<_>>()
    };
    let mut out = Vec::new();
    for (xml, gh, url, p) in queued {
        let delivery = push::deliver(
            shared,
            Outgoing {
                kind: format!("event:{}", p.event),
                target: "message",
                url,
                plaintext: xml,
                outer_tag: "ToUserName",
                outer_value: gh,
                require_success: false,
            },
        )
        .await;
        out.push(AuditDelivery {
            appid: p.appid,
            auditid: p.auditid,
            event: p.event,
            delivery,
        });
    }
    out
}

// ---- the control API: `/sandbox/code/…` ----

fn program_json(st: &State, appid: &str) -> Value {
    let committed = st.merchants.get(appid).and_then(|m| m.committed.clone());
    json!({
        "appid": appid,
        "committed": committed,
        "program": st.code.programs.get(appid).cloned().unwrap_or_default(),
    })
}

fn outcome_of(obj: &Map<String, Value>, current: &AuditOutcome) -> Result<AuditOutcome, Fail> {
    let reason = str_field(obj, "reason");
    Ok(match str_field(obj, "outcome").as_deref() {
        None => current.clone(),
        Some("approve") => AuditOutcome::Approve,
        Some("reject") => AuditOutcome::Reject {
            reason: reason.unwrap_or_else(|| "小程序内容不符合规范<br>".to_string()),
            screenshot: str_field(obj, "screenshot").unwrap_or_else(|| "sbmedia1|sbmedia2".into()),
        },
        Some("delay") => AuditOutcome::Delay {
            reason: reason.unwrap_or_else(|| "审核排队中，预计延迟".to_string()),
        },
        Some(_) => return Err(bad_request("outcome must be approve, reject or delay")),
    })
}

/// `POST /sandbox/code/programs/{appid}`: how its audits end, whether their pushes are lost, and
/// whether every code API refuses it (`refuse`: 61007, 86000 or null).
pub fn set_program(shared: &Arc<Shared>, appid: &str, obj: Map<String, Value>) -> Outcome {
    let mut st = shared.lock();
    match st.merchants.get(appid) {
        None => return Err(bad(StatusCode::NOT_FOUND, "unknown merchant")),
        Some(m) if m.kind != Kind::MiniProgram => {
            return Err(bad_request("not a mini program"));
        }
        Some(_) => {}
    }
    let p = st.code.program(appid);
    let outcome = outcome_of(&obj, &p.outcome)?;
    let lose_push = match obj.get("lose_push") {
        None | Some(Value::Null) => p.lose_push,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(bad_request("lose_push must be a boolean")),
    };
    let refuse = match obj.get("refuse") {
        None => p.refuse,
        Some(Value::Null) => None,
        Some(v) => match v.as_i64() {
            Some(code @ (61007 | 86000)) => Some(code),
            _ => return Err(bad_request("refuse must be 61007, 86000 or null")),
        },
    };
    p.outcome = outcome;
    p.lose_push = lose_push;
    p.refuse = refuse;
    ok(program_json(&st, appid))
}

/// `POST /sandbox/code/programs` `{appids: [...], outcome?, reason?, lose_push?, refuse?}`: the
/// same settings for many mini programs at once.
pub fn set_programs(shared: &Arc<Shared>, obj: Map<String, Value>) -> Outcome {
    let appids: Vec<String> = obj
        .get("appids")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .ok_or_else(|| bad_request("appids must be a list of appids"))?;
    for appid in &appids {
        set_program(shared, appid, obj.clone())?;
    }
    ok(json!({ "updated": appids.len() }))
}

/// `POST /sandbox/code/drafts` `{user_version, user_desc?, pages?}`: the developer uploads a
/// draft from the development mini program.
pub fn add_draft(shared: &Arc<Shared>, obj: Map<String, Value>) -> Outcome {
    let user_version = str_field(&obj, "user_version")
        .filter(|v| (1..=64).contains(&v.chars().count()))
        .ok_or_else(|| bad_request("user_version must be 1-64 characters"))?;
    let user_desc = str_field(&obj, "user_desc").unwrap_or_default();
    let pages = match obj.get("pages") {
        None | Some(Value::Null) => None,
        Some(Value::Array(a)) if !a.is_empty() && a.iter().all(Value::is_string) => Some(
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect(),
        ),
        Some(_) => return Err(bad_request("pages must be a non-empty list of paths")),
    };
    let mut st = shared.lock();
    let now = st.now();
    let draft = st.code.add_draft(&user_version, &user_desc, pages, now);
    ok(json!(draft))
}

/// The `/sandbox/code/…` routes (after the prefix).
pub async fn route(shared: &Arc<Shared>, post: bool, segs: &[&str], body: &[u8]) -> Outcome {
    use super::reply::body_object;
    match segs {
        [] if !post => {
            let st = shared.lock();
            let now = st.now();
            let (limit, speedup) = (st.config.audit_quota, st.config.speedup_quota);
            ok(json!({
                "dev_appid": DEV_APPID,
                "drafts": st.code.drafts.values().collect::<Vec<_>>(),
                "templates": st.code.templates.values().collect::<Vec<_>>(),
                "quota": {
                    "limit": limit,
                    "rest": st.code.audits_rest(now, limit),
                    "speedup_limit": speedup,
                    "speedup_rest": st.code.speedups_rest(now, speedup),
                },
                "lost": st.code.lost,
                "pending_pushes": st.code.outbox.len(),
            }))
        }
        ["drafts"] if post => add_draft(shared, body_object(body)?),
        ["programs"] if post => set_programs(shared, body_object(body)?),
        ["programs", appid] if post => set_program(shared, appid, body_object(body)?),
        ["programs", appid] if !post => {
            let mut st = shared.lock();
            let now = st.now();
            let delay = st.config.audit_delay_secs;
            st.code.settle(now, false, delay);
            ok(program_json(&st, appid))
        }
        ["audits", "run"] if post => {
            let obj = body_object(body)?;
            let all = match obj.get("all") {
                None | Some(Value::Null) => false,
                Some(Value::Bool(b)) => *b,
                Some(_) => return Err(bad_request("all must be a boolean")),
            };
            ok(json!({ "pushed": run_audits(shared, all).await }))
        }
        _ => Err(bad(
            StatusCode::NOT_FOUND,
            format!("no control route /sandbox/code/{}", segs.join("/")),
        )),
    }
}
