//! Checks and their verdicts, computed from what the API answers (pure, unit-tested).

use serde::Serialize;
use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Ok,
    /// Not known from here (e.g. a fact only a deployed stack has).
    Unknown,
    Attention,
    Broken,
}

impl Verdict {
    pub fn label(self) -> &'static str {
        match self {
            Verdict::Ok => "ok",
            Verdict::Unknown => "n/a",
            Verdict::Attention => "attention",
            Verdict::Broken => "broken",
        }
    }
}

/// One line of `status` or `doctor`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    pub check: String,
    pub verdict: Verdict,
    pub detail: String,
    /// What to do (empty when ok).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub action: String,
}

impl Check {
    pub fn new(check: &str, verdict: Verdict, detail: impl Into<String>) -> Self {
        Self {
            check: check.into(),
            verdict,
            detail: detail.into(),
            action: String::new(),
        }
    }
    pub fn todo(mut self, action: impl Into<String>) -> Self {
        self.action = action.into();
        self
    }
}

/// The worst verdict (unknown counts as ok).
pub fn overall(checks: &[Check]) -> Verdict {
    checks
        .iter()
        .map(|c| c.verdict)
        .filter(|v| *v != Verdict::Unknown)
        .max()
        .unwrap_or(Verdict::Ok)
}

/// `1h 05m`, `12m`, `40s`.
pub fn age(secs: i64) -> String {
    let s = secs.abs();
    let text = if s >= 3600 {
        format!("{}h {:02}m", s / 3600, (s % 3600) / 60)
    } else if s >= 60 {
        format!("{}m", s / 60)
    } else {
        format!("{s}s")
    };
    if secs < 0 { format!("-{text}") } else { text }
}

fn int(v: &Value, path: &[&str]) -> Option<i64> {
    path.iter()
        .try_fold(v, |v, k| v.get(*k))
        .and_then(Value::as_i64)
}

fn text<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    path.iter()
        .try_fold(v, |v, k| v.get(*k))
        .and_then(Value::as_str)
}

/// WeChat pushes a ticket every 10 minutes; it is valid for 12 hours.
pub const TICKET_ATTENTION_SECS: i64 = 3600;
pub const TICKET_BROKEN_SECS: i64 = 12 * 3600;
pub const OUTBOX_ATTENTION_SECS: i64 = 300;
pub const OUTBOX_BROKEN_SECS: i64 = 3600;

pub fn ticket(status: &Value) -> Check {
    match int(status, &["ticket", "age_seconds"]) {
        None => Check::new("ticket", Verdict::Broken, "no component_verify_ticket received yet").todo(
            "register the authorization event URL in the Open Platform console (`wxopen doctor` prints it); \
             WeChat pushes a ticket every 10 minutes",
        ),
        Some(a) if a > TICKET_BROKEN_SECS => Check::new(
            "ticket",
            Verdict::Broken,
            format!("last ticket {} ago: expired (valid 12 h)", age(a)),
        )
        .todo("check the authorization event URL and the component-events logs; see README runbook TicketAgeAlarm"),
        Some(a) if a > TICKET_ATTENTION_SECS => Check::new(
            "ticket",
            Verdict::Attention,
            format!("last ticket {} ago (WeChat pushes every 10 min)", age(a)),
        )
        .todo("check the authorization event URL and the component-events logs; see README runbook TicketAgeAlarm"),
        Some(a) => Check::new("ticket", Verdict::Ok, format!("received {} ago", age(a))),
    }
}

pub fn component_token(status: &Value) -> Check {
    let has_ticket = int(status, &["ticket", "age_seconds"]).is_some();
    let t = &status["component_token"];
    if t.is_null() {
        return if has_ticket {
            Check::new("component token", Verdict::Attention, "not obtained yet")
                .todo("the scheduled run obtains it within 5 minutes of the first ticket; if it does not, run `wxopen doctor` (61004: whitelist the egress IP)")
        } else {
            Check::new("component token", Verdict::Broken, "none (no ticket yet)")
                .todo("it follows the ticket: fix the ticket first")
        };
    }
    let expires_in = int(t, &["expires_in_seconds"]).unwrap_or(0);
    if let Some(err) = text(t, &["last_error"]) {
        return Check::new(
            "component token",
            Verdict::Broken,
            format!("refresh failing ({err}); expires in {}", age(expires_in)),
        )
        .todo(errcode_action(err));
    }
    if expires_in <= 0 {
        Check::new("component token", Verdict::Broken, format!("expired {} ago", age(-expires_in)))
            .todo("check the token-refresh logs and RefreshFailuresByCause; see README runbook RefreshFailuresAlarm")
    } else if expires_in < 600 {
        Check::new("component token", Verdict::Attention, format!("expires in {}", age(expires_in)))
            .todo("the scheduled run renews it in its window; if it keeps shrinking, check the token-refresh logs")
    } else {
        Check::new(
            "component token",
            Verdict::Ok,
            format!("expires in {}", age(expires_in)),
        )
    }
}

pub fn authorizers(status: &Value) -> Check {
    let n = |k: &str| int(status, &["authorizers", k]).unwrap_or(0);
    let (ok, off, reauth) = (n("authorized"), n("unauthorized"), n("needs_reauth"));
    let more = if status["authorizers"]["truncated"].as_bool() == Some(true) {
        " (first 2000 counted)"
    } else {
        ""
    };
    let detail = format!("{ok} authorized, {off} unauthorized, {reauth} needs_reauth{more}");
    if reauth > 0 {
        Check::new("authorizers", Verdict::Attention, detail).todo(
            "send each a new link (`wxopen authorizers --state needs_reauth`, then `wxopen links create --customer REF`)",
        )
    } else {
        Check::new("authorizers", Verdict::Ok, detail)
    }
}

pub fn failing_tokens(status: &Value) -> Check {
    let count = int(status, &["tokens_failing", "count"]).unwrap_or(0);
    if count == 0 {
        return Check::new("tokens failing", Verdict::Ok, "none");
    }
    let list: Vec<String> = status["tokens_failing"]["authorizers"]
        .as_array()
        .map(|a| {
            a.iter()
                .take(5)
                .map(|f| {
                    format!(
                        "{} ({})",
                        text(f, &["appid"]).unwrap_or("?"),
                        text(f, &["last_error"]).unwrap_or("failing")
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    let first_error = status["tokens_failing"]["authorizers"]
        .get(0)
        .and_then(|f| text(f, &["last_error"]))
        .unwrap_or("");
    Check::new(
        "tokens failing",
        Verdict::Attention,
        format!("{count}: {}", list.join(", ")),
    )
    .todo(errcode_action(first_error))
}

pub fn outbox(status: &Value) -> Check {
    let count = int(status, &["outbox", "count"]).unwrap_or(0);
    match int(status, &["outbox", "oldest_age_seconds"]) {
        None => Check::new("event outbox", Verdict::Ok, "empty"),
        Some(a) if a > OUTBOX_BROKEN_SECS => Check::new(
            "event outbox",
            Verdict::Broken,
            format!("{count} waiting, oldest {}", age(a)),
        )
        .todo("EventBridge refuses the events: check the bus and events:PutEvents; see README runbook OutboxAgeAlarm"),
        Some(a) if a > OUTBOX_ATTENTION_SECS => Check::new(
            "event outbox",
            Verdict::Attention,
            format!("{count} waiting, oldest {}", age(a)),
        )
        .todo("the scheduled sweep republishes them; if it grows, see README runbook OutboxAgeAlarm"),
        Some(a) => Check::new("event outbox", Verdict::Ok, format!("{count} waiting, oldest {}", age(a))),
    }
}

/// `releases` of `GET /status`: the jobs not yet finished, attention when one waits on the
/// audit quota or has open targets none of which moved within the stall window. A stack whose
/// status has no such section (older than this command) is `unknown`.
pub fn release_jobs(status: &Value) -> Check {
    let r = &status["releases"];
    if !r.is_object() {
        return Check::new(
            "release jobs",
            Verdict::Unknown,
            "not in this stack's GET /status: follow one with `wxopen releases watch ID`",
        );
    }
    let n = |k: &str| int(r, &[k]).unwrap_or(0);
    let (running, cancelling) = (n("running"), n("cancelling"));
    let (quota, stalled) = (n("waiting_quota"), n("stalled"));
    let window = int(r, &["stall_after_seconds"]).unwrap_or(0);
    let more = if r["truncated"].as_bool() == Some(true) {
        " (first 100 counted)"
    } else {
        ""
    };
    if running + cancelling == 0 {
        return Check::new("release jobs", Verdict::Ok, "none running");
    }
    let jobs = r["jobs"].as_array().map(Vec::as_slice).unwrap_or_default();
    let mut detail = format!("{running} running");
    if cancelling > 0 {
        detail.push_str(&format!(", {cancelling} cancelling"));
    }
    detail.push_str(more);
    let flagged: Vec<String> = jobs
        .iter()
        .filter(|j| j["stalled"].as_bool() == Some(true) || !j["quota_wait"].is_null())
        .take(3)
        .map(|j| {
            let id = text(j, &["id"]).unwrap_or("?");
            let open = int(j, &["open_targets"]).unwrap_or(0);
            let mut why = Vec::new();
            if !j["quota_wait"].is_null() {
                why.push("waiting on the audit quota".to_string());
            }
            if j["stalled"].as_bool() == Some(true) {
                let idle = int(j, &["idle_seconds"]).unwrap_or(0);
                why.push(format!("no target moved for {}", age(idle)));
            }
            format!("{id}: {open} open, {}", why.join(", "))
        })
        .collect();
    if quota + stalled == 0 {
        let list: Vec<String> = jobs
            .iter()
            .take(3)
            .map(|j| {
                format!(
                    "{} ({} of {} open)",
                    text(j, &["id"]).unwrap_or("?"),
                    int(j, &["open_targets"]).unwrap_or(0),
                    int(j, &["total"]).unwrap_or(0)
                )
            })
            .collect();
        if !list.is_empty() {
            detail.push_str(&format!(": {}", list.join(", ")));
        }
        return Check::new("release jobs", Verdict::Ok, detail);
    }
    let mut actions = Vec::new();
    if quota > 0 {
        actions.push(
            "WeChat's audit quota is used up: the scheduled run resumes the parked submissions when \
             `queryquota` shows some left (follow with `wxopen releases watch ID`)"
                .to_string(),
        );
    }
    if stalled > 0 {
        actions.push(format!(
            "no progress for over {}: `wxopen releases watch ID` shows where the targets stand; \
             `submitted` ones wait on WeChat's review (polled by the scheduled run), others should \
             move within minutes: check the release-worker logs and its queue's dead letters",
            age(window)
        ));
    }
    Check::new(
        "release jobs",
        Verdict::Attention,
        format!("{detail}; {}", flagged.join("; ")),
    )
    .todo(actions.join("; "))
}

/// What to do about a refresh failure label (`errcode_61004`, `timeout`, …).
pub fn errcode_action(label: &str) -> String {
    match label {
        "errcode_61004" => "WeChat refuses the caller's IP (61004): add the egress IP to the platform's API IP \
             whitelist (`wxopen doctor` prints it)"
            .into(),
        "errcode_45009" => "the API quota is used up (45009): `POST /component/clear-quota`, or wait for the daily reset".into(),
        "errcode_61023" => "the refresh token is dead (61023): the merchant must authorize again (send a new link)".into(),
        "errcode_40013" | "errcode_41002" | "errcode_40125" => {
            "the component credentials are wrong: check the secret (`wxopen doctor`)".into()
        }
        _ => "check the token-refresh logs and the RefreshFailuresByCause metric".into(),
    }
}

/// Every `status` check from `GET /status`.
pub fn status_checks(status: &Value) -> Vec<Check> {
    vec![
        ticket(status),
        component_token(status),
        authorizers(status),
        failing_tokens(status),
        outbox(status),
        release_jobs(status),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn healthy() -> Value {
        json!({
            "ticket": {"received_at": 1, "age_seconds": 120},
            "component_token": {"expires_at": 9, "expires_in_seconds": 6000, "failing_since": null, "last_error": null},
            "authorizers": {"authorized": 3, "unauthorized": 1, "needs_reauth": 0, "truncated": false},
            "tokens_failing": {"count": 0, "authorizers": []},
            "outbox": {"count": 0, "oldest_age_seconds": null, "truncated": false},
            "releases": {"running": 0, "cancelling": 0, "waiting_quota": 0, "stalled": 0,
                         "stall_after_seconds": 21600, "truncated": false, "jobs": []},
        })
    }

    fn job(id: &str, open: i64, quota: Option<&str>, idle: i64, stalled: bool) -> Value {
        json!({"id": id, "state": "running", "total": 3, "open_targets": open,
               "quota_wait": quota, "idle_seconds": idle, "stalled": stalled})
    }

    #[test]
    fn release_jobs_are_ok_while_they_move_and_need_attention_when_stuck() {
        let mut s = healthy();
        assert_eq!(
            (release_jobs(&s).verdict, release_jobs(&s).detail.as_str()),
            (Verdict::Ok, "none running")
        );
        s["releases"]["running"] = json!(1);
        s["releases"]["jobs"] = json!([job("rel-a", 2, None, 60, false)]);
        let c = release_jobs(&s);
        assert_eq!(
            (c.verdict, c.detail.as_str()),
            (Verdict::Ok, "1 running: rel-a (2 of 3 open)")
        );
        s["releases"]["running"] = json!(2);
        s["releases"]["stalled"] = json!(1);
        s["releases"]["waiting_quota"] = json!(1);
        s["releases"]["jobs"] = json!([
            job("rel-b", 3, Some("45009 audit quota"), 60, false),
            job("rel-a", 2, None, 7 * 3600, true),
        ]);
        let c = release_jobs(&s);
        assert_eq!(c.verdict, Verdict::Attention);
        assert_eq!(
            c.detail,
            "2 running; rel-b: 3 open, waiting on the audit quota; rel-a: 2 open, no target moved for 7h 00m"
        );
        assert!(c.action.contains("audit quota is used up"), "{c:?}");
        assert!(c.action.contains("no progress for over 6h 00m"), "{c:?}");
        s.as_object_mut().unwrap().remove("releases");
        assert_eq!(release_jobs(&s).verdict, Verdict::Unknown);
    }

    #[test]
    fn a_healthy_platform_is_ok() {
        let checks = status_checks(&healthy());
        assert!(
            checks.iter().all(|c| c.verdict == Verdict::Ok),
            "{checks:?}"
        );
        assert_eq!(overall(&checks), Verdict::Ok);
        assert_eq!(checks[0].detail, "received 2m ago");
    }

    #[test]
    fn each_fault_gets_its_verdict_and_an_action() {
        let mut s = healthy();
        s["ticket"] = Value::Null;
        s["component_token"] = Value::Null;
        assert_eq!(ticket(&s).verdict, Verdict::Broken);
        assert_eq!(component_token(&s).verdict, Verdict::Broken);
        s["ticket"] = json!({"age_seconds": 2 * 3600});
        assert_eq!(ticket(&s).verdict, Verdict::Attention);
        assert_eq!(component_token(&s).verdict, Verdict::Attention);
        s["component_token"] = json!({"expires_in_seconds": 100, "last_error": "errcode_61004"});
        let c = component_token(&s);
        assert_eq!(c.verdict, Verdict::Broken);
        assert!(c.action.contains("whitelist"), "{c:?}");
        s["authorizers"]["needs_reauth"] = json!(2);
        assert_eq!(authorizers(&s).verdict, Verdict::Attention);
        s["tokens_failing"] =
            json!({"count": 1, "authorizers": [{"appid": "wx1", "last_error": "errcode_45009"}]});
        let f = failing_tokens(&s);
        assert_eq!(
            (f.verdict, f.detail.as_str()),
            (Verdict::Attention, "1: wx1 (errcode_45009)")
        );
        s["outbox"] = json!({"count": 4, "oldest_age_seconds": 7200});
        assert_eq!(outbox(&s).verdict, Verdict::Broken);
        let all = status_checks(&s);
        assert_eq!(overall(&all), Verdict::Broken);
        assert!(
            all.iter()
                .filter(|c| c.verdict != Verdict::Ok)
                .all(|c| !c.action.is_empty())
        );
    }

    #[test]
    fn ages_read_naturally() {
        assert_eq!(
            (age(40), age(720), age(3900), age(-60)),
            ("40s".into(), "12m".into(), "1h 05m".into(), "-1m".into())
        );
    }
}
