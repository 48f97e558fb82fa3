//! The user actor: someone with WeChat who scans a platform's QR code (follows, or scans
//! again), sends messages and events to an official account, and signs in to a mini program
//! (`wx.login`). Each message is pushed to the platform's message URL and the passive reply read.

use std::sync::Arc;

use axum::http::StatusCode;
use serde_json::{Map, Value, json};

use super::super::Shared;
use super::super::push::{self, F, Outgoing};
use super::super::reply::{Fail, Outcome, bad, bad_request, ok, required};
use super::super::state::{Kind, Merchant, State as World};
use super::super::util::{msg_id, openid, random_from, str_field};

struct MessagePush {
    appid: String,
    gh: String,
    openid: String,
    url: Option<String>,
    event: String,
    xml: String,
    /// WeChat's retries: the same message delivered this many times (1 to 5).
    repeat: u32,
    /// The retries start while the first delivery is still running (WeChat gave up waiting on
    /// it), instead of one after the other.
    overlap: bool,
}

/// `overlap` of a control request (default false).
fn overlap_of(obj: &Map<String, Value>) -> bool {
    obj.get("overlap") == Some(&Value::Bool(true))
}

/// `repeat` of a control request: how many times WeChat delivers the same message (its retries
/// of a push that was answered late), default 1.
fn repeat_of(obj: &Map<String, Value>) -> Result<u32, Fail> {
    match obj.get("repeat") {
        None | Some(Value::Null) => Ok(1),
        Some(v) => v
            .as_u64()
            .filter(|n| (1..=5).contains(n))
            .and_then(|n| u32::try_from(n).ok())
            .ok_or_else(|| bad_request("repeat must be 1 to 5")),
    }
}

fn user_name(obj: &Map<String, Value>) -> Result<String, Fail> {
    let user = required(obj, "user")?;
    if user.chars().count() > 128 {
        return Err(bad_request("user is too long"));
    }
    Ok(user)
}

fn message_url(st: &World, appid: &str) -> Option<String> {
    st.config
        .message_callback_base
        .as_deref()
        .map(|base| format!("{}/{appid}", base.trim_end_matches('/')))
}

/// The merchant a user acts on: it must exist and be authorized to the component (otherwise
/// WeChat would not push to the component's message URL).
fn acted_on<'a>(st: &'a mut World, appid: &str) -> Result<&'a mut Merchant, Fail> {
    match st.merchants.get_mut(appid) {
        None => Err(bad(StatusCode::NOT_FOUND, "unknown merchant")),
        Some(m) if m.authorization.is_none() => Err(bad(StatusCode::CONFLICT, "not_authorized")),
        Some(m) => Ok(m),
    }
}

pub async fn scan(shared: &Arc<Shared>, obj: Map<String, Value>) -> Outcome {
    let user = user_name(&obj)?;
    let ticket = required(&obj, "ticket")?;
    let repeat = repeat_of(&obj)?;
    let msg = {
        let mut st = shared.lock();
        let now = st.now();
        let qr = st
            .qrcodes
            .get(&ticket)
            .filter(|q| q.expires_at > now)
            .cloned()
            .ok_or_else(|| bad_request("qr_expired"))?;
        let url = message_url(&st, &qr.appid);
        let m = acted_on(&mut st, &qr.appid)?;
        let newly = m.follow(&user, now, "ADD_SCENE_QR_CODE", &qr.scene);
        let (event, key) = if newly {
            ("subscribe", format!("qrscene_{}", qr.scene))
        } else {
            ("SCAN", qr.scene.clone())
        };
        let id = openid(&m.appid, &user);
        let xml = push::message_xml(
            &m.user_name,
            &id,
            now,
            "event",
            &[
                ("Event", F::Text(event.to_string())),
                ("EventKey", F::Text(key)),
                ("Ticket", F::Text(ticket.clone())),
            ],
        );
        MessagePush {
            appid: m.appid.clone(),
            gh: m.user_name.clone(),
            openid: id,
            url,
            event: event.to_string(),
            xml,
            repeat,
            overlap: false,
        }
    };
    ok(deliver_message(shared, msg).await)
}

pub async fn message(shared: &Arc<Shared>, obj: Map<String, Value>) -> Outcome {
    let appid = required(&obj, "appid")?;
    let user = user_name(&obj)?;
    let content = str_field(&obj, "content").ok_or_else(|| bad_request("content is required"))?;
    let repeat = repeat_of(&obj)?;
    let overlap = overlap_of(&obj);
    let msg = {
        let mut st = shared.lock();
        let now = st.now();
        let url = message_url(&st, &appid);
        let m = acted_on(&mut st, &appid)?;
        m.follow(&user, now, "ADD_SCENE_OTHERS", "");
        let id = openid(&m.appid, &user);
        let msg_id = msg_id();
        let xml = push::message_xml(
            &m.user_name,
            &id,
            now,
            "text",
            &[("Content", F::Text(content)), ("MsgId", F::Num(msg_id))],
        );
        MessagePush {
            appid: m.appid.clone(),
            gh: m.user_name.clone(),
            openid: id,
            url,
            event: "text".to_string(),
            xml,
            repeat,
            overlap,
        }
    };
    ok(deliver_message(shared, msg).await)
}

pub async fn event(shared: &Arc<Shared>, obj: Map<String, Value>) -> Outcome {
    let appid = required(&obj, "appid")?;
    let user = user_name(&obj)?;
    let event = required(&obj, "event")?;
    if event.chars().count() > 64 {
        return Err(bad_request("event is too long"));
    }
    let event_key = str_field(&obj, "event_key");
    let repeat = repeat_of(&obj)?;
    let msg = {
        let mut st = shared.lock();
        let now = st.now();
        let url = message_url(&st, &appid);
        let m = acted_on(&mut st, &appid)?;
        match event.as_str() {
            "subscribe" => {
                m.follow(&user, now, "ADD_SCENE_SEARCH", "");
            }
            "unsubscribe" => {
                m.follow(&user, now, "ADD_SCENE_OTHERS", "");
                if let Some(f) = m.followers.get_mut(&user) {
                    f.subscribed = false;
                }
            }
            _ => {
                m.follow(&user, now, "ADD_SCENE_OTHERS", "");
            }
        }
        let mut fields = vec![("Event", F::Text(event.clone()))];
        if let Some(k) = event_key {
            fields.push(("EventKey", F::Text(k)));
        }
        if event == "LOCATION" {
            fields.push(("Latitude", F::Num("23.137466".to_string())));
            fields.push(("Longitude", F::Num("113.352425".to_string())));
            fields.push(("Precision", F::Num("119.385040".to_string())));
        }
        let id = openid(&m.appid, &user);
        let xml = push::message_xml(&m.user_name, &id, now, "event", &fields);
        MessagePush {
            appid: m.appid.clone(),
            gh: m.user_name.clone(),
            openid: id,
            url,
            event,
            xml,
            repeat,
            overlap: false,
        }
    };
    ok(deliver_message(shared, msg).await)
}

/// Sends any message from `user` to `appid`'s message URL (the release-test robot uses it).
pub async fn send_as_user(
    shared: &Arc<Shared>,
    appid: &str,
    user: &str,
    msg_type: &str,
    fields: &[(&str, F)],
) -> Result<Value, Fail> {
    let msg = {
        let mut st = shared.lock();
        let now = st.now();
        let url = message_url(&st, appid);
        let m = acted_on(&mut st, appid)?;
        m.follow(user, now, "ADD_SCENE_OTHERS", "");
        let id = openid(&m.appid, user);
        let event = fields
            .iter()
            .find_map(|(k, v)| match (k, v) {
                (&"Event", F::Text(e)) => Some(e.clone()),
                _ => None,
            })
            .unwrap_or_else(|| msg_type.to_string());
        MessagePush {
            appid: m.appid.clone(),
            gh: m.user_name.clone(),
            xml: push::message_xml(&m.user_name, &id, now, msg_type, fields),
            openid: id,
            url,
            event,
            repeat: 1,
            overlap: false,
        }
    };
    Ok(deliver_message(shared, msg).await)
}

async fn deliver_message(shared: &Arc<Shared>, msg: MessagePush) -> Value {
    let kind = if msg.event == "text" {
        "text".to_string()
    } else {
        format!("event:{}", msg.event)
    };
    let once = || async {
        let delivery = push::deliver(
            shared,
            Outgoing {
                kind: kind.clone(),
                target: "message",
                url: msg.url.clone(),
                plaintext: msg.xml.clone(),
                outer_tag: "ToUserName",
                outer_value: msg.gh.clone(),
                require_success: false,
            },
        )
        .await;
        let (reply, reply_error) = if delivery.status.is_some() {
            push::open_reply(shared, &delivery.body)
        } else {
            (None, None)
        };
        (delivery, reply, reply_error)
    };
    let mut deliveries = Vec::new();
    if msg.overlap {
        deliveries = futures_util::future::join_all((0..msg.repeat.max(1)).map(|_| once())).await;
    } else {
        for _ in 0..msg.repeat.max(1) {
            deliveries.push(once().await);
        }
    }
    let repeats: Vec<Value> = deliveries
        .iter()
        .map(|(d, reply, reply_error)| {
            json!({ "status": d.status, "reply": reply, "reply_error": reply_error, "body": d.body, "elapsed_attempts": d.attempts })
        })
        .collect();
    let Some((delivery, reply, reply_error)) = deliveries.into_iter().next() else {
        return json!({ "error": "not delivered" });
    };
    json!({
        "appid": msg.appid,
        "openid": msg.openid,
        "event": msg.event,
        "status": delivery.status,
        "reply": reply,
        "reply_error": reply_error,
        "delivery": delivery,
        "repeats": repeats,
    })
}

/// The user opens mini program `appid`, which calls `wx.login`: a fresh login code for the
/// platform to exchange through `sns/component/jscode2session` (single use, 5 minutes).
pub fn login(shared: &Arc<Shared>, obj: Map<String, Value>) -> Outcome {
    let appid = required(&obj, "appid")?;
    let user = user_name(&obj)?;
    let mut st = shared.lock();
    let ttl = st.config.js_code_ttl_secs;
    if acted_on(&mut st, &appid)?.kind != Kind::MiniProgram {
        return Err(bad_request("wx.login is for mini programs"));
    }
    let code = st.new_js_code(&appid, &user);
    ok(json!({ "appid": appid, "js_code": code, "expires_in": ttl }))
}

/// The user opens an official account's web OAuth link (`connect/oauth2/authorize`) in WeChat
/// and approves (or, with `"approve": false`, refuses): the redirect WeChat's browser would
/// follow, `redirect_uri?code=&state=&appid=` (refusal: `redirect_uri?state=`). A link WeChat
/// would refuse answers 400 with WeChat's page error (10003 bad redirect_uri, 10005 the account
/// lacks the scope: not a verified service account or set 4 missing).
pub fn oauth(shared: &Arc<Shared>, obj: Map<String, Value>) -> Outcome {
    let user = user_name(&obj)?;
    let link = required(&obj, "url")?;
    let approve = !matches!(obj.get("approve"), Some(Value::Bool(false)));
    let url = url::Url::parse(&link).map_err(|_| bad_request("url is not a URL"))?;
    let q: std::collections::HashMap<String, String> = url.query_pairs().into_owned().collect();
    let get = |k: &str| q.get(k).cloned().unwrap_or_default();
    let mut st = shared.lock();
    if !url.path().ends_with("/connect/oauth2/authorize") || get("response_type") != "code" {
        return Err(bad_request("not a connect/oauth2/authorize link"));
    }
    if get("component_appid") != st.config.component_appid {
        return Err(bad_request("10016: component_appid does not match"));
    }
    let scope = get("scope");
    if scope != "snsapi_base" && scope != "snsapi_userinfo" {
        return Err(bad_request("10005: invalid scope"));
    }
    let redirect = url::Url::parse(&get("redirect_uri"))
        .map_err(|_| bad_request("10003: redirect_uri is not a URL"))?;
    let appid = get("appid");
    let m = acted_on(&mut st, &appid)?;
    if m.kind != Kind::OfficialAccount
        || m.service_type != 2
        || m.verify_type < 0
        || !m.func_info.contains(&4)
    {
        return Err(bad_request("10005: the account has no web OAuth scope"));
    }
    let state = get("state");
    if state.len() > 128 {
        return Err(bad_request("state is longer than 128 bytes"));
    }
    let mut target = redirect;
    if approve {
        let code = random_from(
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
            32,
        );
        let expires_at = st.now().saturating_add(300);
        st.oauth_codes.insert(
            code.clone(),
            super::super::state::OauthCode {
                appid: appid.clone(),
                user: user.clone(),
                scope,
                expires_at,
                used: false,
            },
        );
        target
            .query_pairs_mut()
            .append_pair("code", &code)
            .append_pair("state", &state)
            .append_pair("appid", &appid);
    } else {
        target.query_pairs_mut().append_pair("state", &state);
    }
    ok(json!({ "redirect": target.to_string(), "openid": openid(&appid, &user) }))
}
