//! Fleet releases: one durable job ships a template to many mini programs.
//!
//! * this file: the job request (validated before anything is written), the job's creation and
//!   cancel, `ext_json` rendering, the settings;
//! * [`calls`]: the WeChat code-management calls a target needs, as a port (`CodeCalls`);
//! * [`engine`]: one idempotent step per queue message, audit results from the bus and the
//!   scheduled run's polling of overdue audits and of quota-parked targets.
//!
//! Composition (layer 4): it uses tokens, permissions, events and the authorizer records.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::appid;
use crate::authorization::check_customer_ref;
use crate::config::Config;
use crate::model::{
    AccountKind, AuthorizerRecord, AuthorizerState, JobState, ReleaseJob, ReleaseTarget,
    TargetSpec, TargetState,
};
use crate::queue::{QueueError, WorkQueue};
use crate::store::{AuthorizerStore, LinkStore, ReleaseStore, StoreError};

pub mod calls;
pub mod engine;
mod wechat;

pub use calls::{AuditStatus, CodeCalls, LatestAudit, Quota, VersionInfo};
pub use engine::{Boundary, Engine, NoHook, StepHook, StepMessage};
pub use wechat::TokenCalls;

/// Most targets one job may have.
pub const MAX_TARGETS: usize = 10_000;
pub const DEFAULT_CONCURRENCY: u32 = 10;
pub const MAX_CONCURRENCY: u32 = 100;
/// `user_version` is at most 64 characters (WeChat's limit).
pub const MAX_USER_VERSION: usize = 64;
pub const MAX_USER_DESC: usize = 1024;
/// The rendered `ext_json` counts toward the package; 64 KB is far above any real one.
pub const MAX_EXT_JSON_BYTES: usize = 64 * 1024;
/// The `submit_audit` fields passed through (anything else in the request is refused).
pub const AUDIT_FIELDS: &[&str] = &[
    "item_list",
    "preview_info",
    "version_desc",
    "feedback_info",
    "feedback_stuff",
    "ugc_declare",
    "privacy_api_not_use",
    "order_path",
];
const JOB_FIELDS: &[&str] = &[
    "template_id",
    "user_version",
    "user_desc",
    "ext_json",
    "targets",
    "auto_release",
    "concurrency",
];
/// The placeholders string values of `ext_json` may use.
pub const PLACEHOLDERS: &[&str] = &["{{appid}}", "{{customer_ref}}"];

#[derive(Debug, thiserror::Error)]
pub enum ReleaseError {
    /// Bad input: the field and what is wrong (no value echoed).
    #[error("{0}")]
    Invalid(String),
    #[error("{count} target(s) are not known authorized authorizers (first: {first})")]
    UnknownTargets { count: usize, first: String },
    #[error("{count} target(s) are not mini programs (first: {first})")]
    NotMiniPrograms { count: usize, first: String },
    #[error("no authorized mini program matches the targets")]
    NoTargets,
    #[error("no release job with this id")]
    UnknownJob,
    #[error("the job is already {0}")]
    JobFinished(&'static str),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Queue(#[from] QueueError),
}

fn invalid(msg: impl Into<String>) -> ReleaseError {
    ReleaseError::Invalid(msg.into())
}

/// The engine's settings, from `Config`.
#[derive(Debug, Clone)]
pub struct ReleaseSettings {
    /// How long a recorded step belongs to its worker.
    pub step_lease_secs: i64,
    /// Between commit and submit.
    pub submit_delay_secs: u32,
    /// First backoff after 45009 / -1 / a transport failure; doubles per attempt.
    pub backoff_secs: u32,
    /// WeChat calls one target may make before it is `failed` (retries included).
    pub max_attempts: u32,
    /// An audit without a push after this long is polled.
    pub audit_poll_after_secs: i64,
    /// How far WeChat's clock (submit time, trial version time) may lag ours when reconciling.
    pub reconcile_slack_secs: i64,
}

impl ReleaseSettings {
    pub fn from_config(config: &Config) -> Self {
        let secs = |d: std::time::Duration| i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
        Self {
            step_lease_secs: secs(config.release_step_lease),
            submit_delay_secs: u32::try_from(config.release_submit_delay.as_secs()).unwrap_or(60),
            audit_poll_after_secs: secs(config.release_audit_poll_after),
            ..Self::default()
        }
    }
}

impl Default for ReleaseSettings {
    fn default() -> Self {
        Self {
            step_lease_secs: 120,
            submit_delay_secs: 60,
            backoff_secs: 30,
            max_attempts: 12,
            audit_poll_after_secs: 21_600,
            reconcile_slack_secs: 300,
        }
    }
}

/// A validated `POST /releases` body.
#[derive(Debug, Clone, PartialEq)]
pub struct NewRelease {
    pub template_id: i64,
    pub user_version: String,
    pub user_desc: String,
    pub ext_json: Map<String, Value>,
    pub audit: Map<String, Value>,
    pub targets: TargetSpec,
    pub auto_release: bool,
    pub concurrency: u32,
}

impl NewRelease {
    /// Checks every field; nothing is looked up yet.
    pub fn parse(body: &Value) -> Result<Self, ReleaseError> {
        let obj = body
            .as_object()
            .ok_or_else(|| invalid("the body must be a JSON object"))?;
        if let Some(k) = obj
            .keys()
            .find(|k| !JOB_FIELDS.contains(&k.as_str()) && !AUDIT_FIELDS.contains(&k.as_str()))
        {
            return Err(invalid(format!(
                "unknown field `{}` (audit fields: {})",
                k.chars().take(64).collect::<String>(),
                AUDIT_FIELDS.join(", ")
            )));
        }
        let template_id = match obj.get("template_id") {
            Some(Value::Number(n)) => n.as_i64().filter(|v| *v >= 0),
            Some(Value::String(s)) if !s.is_empty() && s.len() <= 19 => {
                s.parse::<i64>().ok().filter(|v| *v >= 0)
            }
            _ => None,
        }
        .ok_or_else(|| invalid("template_id must be a template id (a non-negative integer)"))?;
        let user_version = match obj.get("user_version") {
            Some(Value::String(s))
                if !s.trim().is_empty()
                    && s.chars().count() <= MAX_USER_VERSION
                    && !s.chars().any(char::is_control) =>
            {
                s.clone()
            }
            _ => {
                return Err(invalid(format!(
                    "user_version must be a non-empty string of at most {MAX_USER_VERSION} characters"
                )));
            }
        };
        let user_desc = match obj.get("user_desc") {
            None => String::new(),
            Some(Value::String(s)) if s.chars().count() <= MAX_USER_DESC => s.clone(),
            _ => {
                return Err(invalid(format!(
                    "user_desc must be a string of at most {MAX_USER_DESC} characters"
                )));
            }
        };
        let ext_json = match obj.get("ext_json") {
            None => Map::new(),
            Some(Value::Object(m)) => m.clone(),
            Some(_) => return Err(invalid("ext_json must be a JSON object")),
        };
        check_placeholders(&Value::Object(ext_json.clone()))?;
        // The longest rendering: every placeholder replaced by a 128-character value.
        let probe = render(&ext_json, &"x".repeat(32), Some(&"x".repeat(128)));
        if serde_json::to_string(&probe).map_or(usize::MAX, |s| s.len()) > MAX_EXT_JSON_BYTES {
            return Err(invalid(format!(
                "ext_json must be at most {MAX_EXT_JSON_BYTES} bytes once rendered"
            )));
        }
        let audit: Map<String, Value> = obj
            .iter()
            .filter(|(k, _)| AUDIT_FIELDS.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        if let Some(items) = audit.get("item_list")
            && !items
                .as_array()
                .is_some_and(|a| a.len() <= 5 && a.iter().all(Value::is_object))
        {
            return Err(invalid("item_list must be a list of at most 5 objects"));
        }
        let targets = parse_targets(obj.get("targets"))?;
        let auto_release = match obj.get("auto_release") {
            None => true,
            Some(Value::Bool(b)) => *b,
            Some(_) => return Err(invalid("auto_release must be true or false")),
        };
        let concurrency = match obj.get("concurrency") {
            None => DEFAULT_CONCURRENCY,
            Some(v) => v
                .as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .filter(|n| (1..=MAX_CONCURRENCY).contains(n))
                .ok_or_else(|| invalid(format!("concurrency must be 1 to {MAX_CONCURRENCY}")))?,
        };
        Ok(Self {
            template_id,
            user_version,
            user_desc,
            ext_json,
            audit,
            targets,
            auto_release,
            concurrency,
        })
    }
}

fn parse_targets(v: Option<&Value>) -> Result<TargetSpec, ReleaseError> {
    const SHAPE: &str =
        "targets must be {\"appids\": [..]} or {\"all\": true, \"customer_ref\"?: \"..\"}";
    let obj = v.and_then(Value::as_object).ok_or_else(|| invalid(SHAPE))?;
    match (obj.get("appids"), obj.get("all")) {
        (Some(Value::Array(list)), None) if obj.len() == 1 => {
            if list.is_empty() || list.len() > MAX_TARGETS {
                return Err(invalid(format!(
                    "targets.appids must hold 1 to {MAX_TARGETS} appids"
                )));
            }
            let mut seen = std::collections::BTreeSet::new();
            let mut out = Vec::with_capacity(list.len());
            for a in list {
                let a = a
                    .as_str()
                    .filter(|a| appid::is_valid(a))
                    .ok_or_else(|| invalid("targets.appids must hold valid appids"))?;
                if !seen.insert(a) {
                    return Err(invalid("targets.appids holds an appid twice"));
                }
                out.push(a.to_string());
            }
            Ok(TargetSpec::Appids(out))
        }
        (None, Some(Value::Bool(true)))
            if obj.keys().all(|k| k == "all" || k == "customer_ref") =>
        {
            let customer_ref = match obj.get("customer_ref") {
                None => None,
                Some(Value::String(c)) => Some(
                    check_customer_ref(Some(c))
                        .map_err(|_| invalid("targets.customer_ref is not a valid customer_ref"))?,
                ),
                Some(_) => return Err(invalid("targets.customer_ref must be a string")),
            };
            Ok(TargetSpec::All { customer_ref })
        }
        _ => Err(invalid(SHAPE)),
    }
}

/// Every `{{…}}` in a string value must be a known placeholder.
fn check_placeholders(v: &Value) -> Result<(), ReleaseError> {
    match v {
        Value::String(s) => {
            let mut rest = s.as_str();
            while let Some(i) = rest.find("{{") {
                let tail = rest.get(i..).unwrap_or_default();
                match PLACEHOLDERS.iter().find(|p| tail.starts_with(**p)) {
                    Some(p) => rest = tail.get(p.len()..).unwrap_or_default(),
                    None => {
                        return Err(invalid(format!(
                            "ext_json may use only the placeholders {}",
                            PLACEHOLDERS.join(" and ")
                        )));
                    }
                }
            }
            Ok(())
        }
        Value::Array(a) => a.iter().try_for_each(check_placeholders),
        Value::Object(m) => m.values().try_for_each(check_placeholders),
        _ => Ok(()),
    }
}

/// The target's `ext_json`: placeholders in string values replaced (`{{customer_ref}}` by ""
/// when the authorizer has none).
pub fn render(
    ext_json: &Map<String, Value>,
    appid: &str,
    customer_ref: Option<&str>,
) -> Map<String, Value> {
    fn walk(v: &Value, appid: &str, customer: &str) -> Value {
        match v {
            Value::String(s) => Value::String(
                s.replace("{{appid}}", appid)
                    .replace("{{customer_ref}}", customer),
            ),
            Value::Array(a) => Value::Array(a.iter().map(|x| walk(x, appid, customer)).collect()),
            Value::Object(m) => Value::Object(
                m.iter()
                    .map(|(k, x)| (k.clone(), walk(x, appid, customer)))
                    .collect(),
            ),
            other => other.clone(),
        }
    }
    let customer = customer_ref.unwrap_or_default();
    ext_json
        .iter()
        .map(|(k, v)| (k.clone(), walk(v, appid, customer)))
        .collect()
}

/// A new job's id: 128 random bits, hex.
pub fn new_job_id() -> String {
    format!("{:032x}", rand::random::<u128>())
}

/// A job id as issued. Anything else is never looked up.
pub fn is_job_id(id: &str) -> bool {
    id.len() == 32 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

fn is_mini_program(r: &AuthorizerRecord) -> bool {
    r.profile
        .as_ref()
        .is_some_and(|p| p.kind == AccountKind::MiniProgram)
}

/// The appids a request targets, checked: known, authorized mini programs.
pub async fn resolve_targets<S>(store: &S, spec: &TargetSpec) -> Result<Vec<String>, ReleaseError>
where
    S: AuthorizerStore + LinkStore,
{
    match spec {
        TargetSpec::Appids(list) => {
            let mut records: Vec<Option<AuthorizerRecord>> = Vec::with_capacity(list.len());
            for chunk in list.chunks(16) {
                let mut reads = Vec::with_capacity(chunk.len());
                for a in chunk {
                    reads.push(store.get_authorizer(a.as_str()));
                }
                for r in futures_util::future::join_all(reads).await {
                    records.push(r?);
                }
            }
            let unknown: Vec<&String> = list
                .iter()
                .zip(&records)
                .filter(|(_, r)| {
                    r.as_ref()
                        .is_none_or(|r| r.state != AuthorizerState::Authorized)
                })
                .map(|(a, _)| a)
                .collect();
            if let Some(first) = unknown.first() {
                return Err(ReleaseError::UnknownTargets {
                    count: unknown.len(),
                    first: (*first).clone(),
                });
            }
            let not_mp: Vec<&String> = list
                .iter()
                .zip(&records)
                .filter(|(_, r)| r.as_ref().is_some_and(|r| !is_mini_program(r)))
                .map(|(a, _)| a)
                .collect();
            if let Some(first) = not_mp.first() {
                return Err(ReleaseError::NotMiniPrograms {
                    count: not_mp.len(),
                    first: (*first).clone(),
                });
            }
            Ok(list.clone())
        }
        TargetSpec::All { customer_ref } => {
            let mut out = Vec::new();
            let mut cursor: Option<String> = None;
            loop {
                let state = Some(AuthorizerState::Authorized);
                let (page, next) = match customer_ref {
                    Some(c) => {
                        store
                            .customer_authorizers(c, state, 1000, cursor.as_deref())
                            .await?
                    }
                    None => {
                        store
                            .list_authorizers(state, 1000, cursor.as_deref())
                            .await?
                    }
                };
                out.extend(
                    page.iter()
                        .filter(|r| is_mini_program(r))
                        .map(|r| r.appid.clone()),
                );
                if out.len() > MAX_TARGETS {
                    return Err(invalid(format!(
                        "the targets match more than {MAX_TARGETS} mini programs"
                    )));
                }
                match next {
                    Some(n) => cursor = Some(n),
                    None => break,
                }
            }
            if out.is_empty() {
                return Err(ReleaseError::NoTargets);
            }
            Ok(out)
        }
    }
}

/// Creates the job: targets resolved (nothing written if any is refused), the job and its
/// targets written, the first `concurrency` targets handed to the queue.
pub async fn create_job<S, Q>(
    store: &S,
    queue: &Q,
    req: NewRelease,
    now: i64,
) -> Result<(ReleaseJob, Vec<ReleaseTarget>), ReleaseError>
where
    S: ReleaseStore + AuthorizerStore + LinkStore,
    Q: WorkQueue,
{
    let appids = resolve_targets(store, &req.targets).await?;
    let id = new_job_id();
    let total = u32::try_from(appids.len()).unwrap_or(u32::MAX);
    let job = ReleaseJob {
        id: id.clone(),
        template_id: req.template_id,
        user_version: req.user_version,
        user_desc: req.user_desc,
        ext_json: req.ext_json,
        audit: req.audit,
        targets: req.targets,
        auto_release: req.auto_release,
        concurrency: req.concurrency,
        created_at: now,
        state: JobState::Running,
        total,
        dispatched: 0,
        counts: BTreeMap::from([(TargetState::Queued, i64::from(total))]),
        quota_wait: None,
        undo_audits: false,
        updated_at: now,
    };
    let targets: Vec<ReleaseTarget> = appids
        .into_iter()
        .enumerate()
        .map(|(i, appid)| {
            ReleaseTarget::queued(&id, u32::try_from(i).unwrap_or(u32::MAX), appid, now)
        })
        .collect();
    store.create_job(&job, &targets).await?;
    let (range, _) = store.dispatch(&id, job.concurrency).await?;
    let bodies: Vec<String> = range.map(|seq| StepMessage::new(&id, seq).body()).collect();
    queue.send(&bodies, 0).await?;
    Ok((job, targets))
}

/// `POST /releases/{id}/cancel`: no new step starts; the worker sweeps the job's targets to
/// `cancelled` (undoing audits in progress only when `undo_audits`).
pub async fn cancel_job<S, Q>(
    store: &S,
    queue: &Q,
    id: &str,
    undo_audits: bool,
    now: i64,
) -> Result<ReleaseJob, ReleaseError>
where
    S: ReleaseStore,
    Q: WorkQueue,
{
    let job = store.get_job(id).await?.ok_or(ReleaseError::UnknownJob)?;
    match job.state {
        JobState::Done | JobState::Cancelled => {
            return Err(ReleaseError::JobFinished(job.state.as_str()));
        }
        JobState::Running | JobState::Cancelling => {}
    }
    store
        .set_job_state(
            id,
            &[JobState::Running, JobState::Cancelling],
            JobState::Cancelling,
            Some(undo_audits),
            now,
        )
        .await?;
    queue.send(&[StepMessage::sweep(id).body()], 0).await?;
    store.get_job(id).await?.ok_or(ReleaseError::UnknownJob)
}

/// What `GET /releases/{id}` pages with.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TargetPage {
    pub targets: Vec<ReleaseTarget>,
    pub next_cursor: Option<u32>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn body() -> Value {
        json!({
            "template_id": 7,
            "user_version": "1.2.0",
            "user_desc": "spring",
            "ext_json": {"extAppid": "{{appid}}", "ext": {"shop": "{{customer_ref}}", "n": 3}},
            "item_list": [{"address": "pages/index"}],
            "targets": {"appids": ["wx1234567890abcdef"]},
        })
    }

    #[test]
    fn a_full_request_parses_with_defaults() {
        let r = NewRelease::parse(&body()).unwrap();
        assert_eq!(r.template_id, 7);
        assert!(r.auto_release);
        assert_eq!(r.concurrency, DEFAULT_CONCURRENCY);
        assert!(r.audit.contains_key("item_list"));
        assert_eq!(
            r.targets,
            TargetSpec::Appids(vec!["wx1234567890abcdef".into()])
        );
    }

    #[test]
    fn each_bad_field_is_refused() {
        let cases: Vec<(&str, Value)> = vec![
            ("template_id", json!(-1)),
            ("template_id", json!("x")),
            ("user_version", json!("")),
            ("user_version", json!("v".repeat(65))),
            ("user_desc", json!(3)),
            ("ext_json", json!("{}")),
            ("ext_json", json!({"a": "{{secret}}"})),
            ("targets", json!({"appids": []})),
            ("targets", json!({"appids": ["nope"]})),
            (
                "targets",
                json!({"appids": ["wx1234567890abcdef", "wx1234567890abcdef"]}),
            ),
            ("targets", json!({"all": false})),
            ("targets", json!({"all": true, "appids": []})),
            ("auto_release", json!("yes")),
            ("concurrency", json!(0)),
            ("concurrency", json!(101)),
            ("item_list", json!([1])),
            ("bogus", json!(1)),
        ];
        for (field, value) in cases {
            let mut b = body();
            b[field] = value.clone();
            assert!(
                matches!(NewRelease::parse(&b), Err(ReleaseError::Invalid(_))),
                "{field} = {value}"
            );
        }
        assert!(NewRelease::parse(&json!([])).is_err());
    }

    #[test]
    fn rendering_fills_both_placeholders() {
        let r = NewRelease::parse(&body()).unwrap();
        let v = Value::Object(render(&r.ext_json, "wxabc", Some("shop-9")));
        assert_eq!(
            v,
            json!({"extAppid": "wxabc", "ext": {"shop": "shop-9", "n": 3}})
        );
        let v = render(&r.ext_json, "wxabc", None);
        assert_eq!(v["ext"]["shop"], "");
    }

    #[test]
    fn job_ids_are_long_and_checked() {
        let id = new_job_id();
        assert!(is_job_id(&id));
        assert!(!is_job_id("../x"));
        assert_ne!(id, new_job_id());
    }
}
