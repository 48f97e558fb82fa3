//! The WeChat API pipeline: for one call, the token check, the daily quota, the body, then the
//! API's rule (`rules/`, named by the table in `apis.rs`); WeChat's errcodes and errmsgs; the
//! call log. Synchronous, on the locked state.

use std::collections::HashMap;

use serde_json::{Map, Value, json};

use super::CallRecord;
use super::apis::{Api, Method};
use super::rules::Call;
use super::state::{Owner, State, Want, push_bounded};
use super::util::json_object;

/// Something to do after the lock is released.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    PushTicket,
    /// Deliver the audit pushes that are due (`audit_auto_push`).
    AuditPushes,
}

/// What a call answers with: JSON (errors always are), or raw bytes for the binary APIs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    Json(Value),
    /// HTTP 200 with `Content-Type` and `Content-Disposition: attachment; filename="…"`.
    Bytes {
        content_type: String,
        filename: String,
        bytes: Vec<u8>,
    },
}

pub struct Answer {
    pub reply: Reply,
    pub errcode: i64,
    /// The authorizer the call was about, for the call log.
    pub authorizer_appid: Option<String>,
    pub effect: Option<Effect>,
}

impl Answer {
    pub fn ok(json: Value, appid: Option<String>) -> Self {
        Self {
            reply: Reply::Json(json),
            errcode: 0,
            authorizer_appid: appid,
            effect: None,
        }
    }

    pub fn err(code: i64, appid: Option<String>) -> Self {
        Self {
            reply: Reply::Json(err_json(code)),
            errcode: code,
            authorizer_appid: appid,
            effect: None,
        }
    }

    /// A binary answer (an image, a media file).
    pub fn bytes(
        content_type: impl Into<String>,
        filename: impl Into<String>,
        bytes: Vec<u8>,
        appid: Option<String>,
    ) -> Self {
        Self {
            reply: Reply::Bytes {
                content_type: content_type.into(),
                filename: filename.into(),
                bytes,
            },
            errcode: 0,
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
        40002 => "invalid grant_type",
        40013 => "invalid appid",
        40029 => "invalid code",
        40125 => "invalid appsecret",
        40066 => "invalid url",
        40163 => "code been used",
        42003 => "code expired",
        41001 => "access_token missing",
        41002 => "appid missing",
        41008 => "missing code",
        41018 => "missing component_appid",
        42001 => "access_token expired",
        43001 => "require GET method",
        43002 => "require POST method",
        43004 => "require subscribe",
        45009 => "reach max api daily quota limit",
        40004 => "invalid media type",
        40006 => "invalid meida size",
        40007 => "invalid media_id",
        40016 => "invalid button size",
        40018 => "invalid button name size",
        41005 => "media data missing",
        48006 => "forbid to clear quota because of reaching the limit",
        76021 => "cgi_path not found, please check",
        76022 => "could not use this cgi_path, no permission",
        47001 => "data format error",
        48001 => "api unauthorized",
        61003 => "component is not authorized by this account",
        61004 => "invalid ip 203.0.113.7 ipv6 ::ffff:203.0.113.7, not in whitelist",
        61005 => "component ticket is expired",
        61006 => "component ticket is invalid",
        61007 => "api is unauthorized to component",
        61010 => "code is expired",
        61023 => "refresh_token is invalid",
        40097 => "invalid args",
        44002 => "empty post data",
        85009 => "already submit a version for audit",
        85012 => "invalid audit id",
        85019 => "no audit version approved",
        85023 => "item list count invalid",
        85052 => "app is already released",
        85064 => "template not found",
        85065 => "template list is full",
        85079 => "miniprogram has no online release",
        85080 => "miniprogram commit not approved",
        85081 => "invalid gray percentage",
        85082 => "gray percentage must be higher",
        85085 => "submit audit reach limit",
        85086 => "must commit before submit audit",
        86000 => "should be called only from third party",
        87011 => "current version is in gray release, can not revert",
        87012 => "no version to revert",
        87013 => "undo code audit reach limit",
        89402 => "audit is not in the queue",
        89404 => "already speed up",
        89405 => "speed up quota reached",
        85013 => "invalid ext_json",
        85014 => "template not found",
        85015 => "invalid version or not a mini program",
        85048 => "ext_json parse error",
        86001 => "no third-party code committed",
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

/// Handles one API call (after the method check and faults): token, quota, body, then the
/// API's rule. `content_type` is the request's (uploads read their multipart boundary from it).
pub fn process(
    st: &mut State,
    api: Api,
    query: &HashMap<String, String>,
    body: &[u8],
    content_type: Option<&str>,
) -> Answer {
    let want = api.token().wants(st.config.template_token_param);
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
    let raw = body;
    let body = match api.method() {
        Method::Get | Method::Upload => Map::new(),
        Method::Post => match json_object(body) {
            Some(o) => o,
            None => return Answer::err(47001, token_appid),
        },
    };
    let call = Call {
        actor: &actor,
        body: &body,
        query,
        raw,
        content_type,
    };
    (api.spec().rule)(st, &call)
}

/// Appends a call to the log.
/// `token_current`: the call carried its owner's newest token ([`State::token_is_current`]).
pub fn log_call(
    st: &mut State,
    api: Api,
    token_kind: &str,
    appid: Option<String>,
    errcode: i64,
    token_current: bool,
) {
    let account = appid
        .clone()
        .unwrap_or_else(|| st.config.component_appid.clone());
    let count = st
        .call_counts
        .entry(account)
        .or_default()
        .entry(api.name().to_string())
        .or_default();
    count.calls += 1;
    if errcode == 0 {
        count.ok += 1;
    }
    let record = CallRecord {
        api: api.name().to_string(),
        token_kind: token_kind.to_string(),
        authorizer_appid: appid,
        errcode,
        at: st.now(),
        token_current,
    };
    push_bounded(&mut st.calls, record);
}
