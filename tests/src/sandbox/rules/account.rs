//! Official account APIs for a merchant (`/cgi-bin/…` with the authorizer token): parametric
//! QR codes, user info, customer-service messages.

use serde_json::{Value, json};

use super::super::CustomMessage;
use super::super::api::{Answer, err_json};
use super::super::state::{Kind, QrCode, State, push_bounded};
use super::super::util::{int_field, random_alnum, random_from, str_field, unionid};
use super::Call;

/// Longest temporary QR code lifetime.
pub const QR_MAX_EXPIRE: i64 = 2_592_000;

fn some(actor: &str) -> Option<String> {
    Some(actor.to_string())
}

pub fn qrcode_create(st: &mut State, call: &Call<'_>) -> Answer {
    let (actor, obj) = (call.actor, call.body);
    let Some(m) = st.merchants.get(actor) else {
        return Answer::err(61003, some(actor));
    };
    if m.kind != Kind::OfficialAccount || m.service_type != 2 || m.verify_type < 0 {
        return Answer::err(48001, some(actor));
    }
    let scene = match str_field(obj, "action_name").as_deref() {
        Some("QR_STR_SCENE") => obj
            .get("action_info")
            .and_then(|v| v.pointer("/scene/scene_str"))
            .and_then(Value::as_str)
            .map(str::to_string),
        Some("QR_SCENE") => obj
            .get("action_info")
            .and_then(|v| v.pointer("/scene/scene_id"))
            .and_then(Value::as_u64)
            .filter(|id| *id > 0)
            .map(|id| id.to_string()),
        _ => None,
    };
    let Some(scene) = scene.filter(|s| (1..=64).contains(&s.chars().count())) else {
        return Answer::err(47001, some(actor));
    };
    let expire = match int_field(obj, "expire_seconds") {
        Ok(None) => 30,
        Ok(Some(n)) if n > 0 => n.min(QR_MAX_EXPIRE),
        _ => return Answer::err(47001, some(actor)),
    };
    // Real tickets are base64 (with `+`, `/`, `=`): clients must URL-encode them.
    let ticket = format!(
        "gQ{}==",
        random_from(
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/",
            94
        )
    );
    let url = format!("http://weixin.qq.com/q/{}", random_alnum(22));
    let expires_at = st.now().saturating_add(expire);
    st.qrcodes.insert(
        ticket.clone(),
        QrCode {
            appid: actor.to_string(),
            scene,
            expires_at,
        },
    );
    Answer::ok(
        json!({ "ticket": ticket, "expire_seconds": expire, "url": url }),
        some(actor),
    )
}

pub fn user_info(st: &mut State, call: &Call<'_>) -> Answer {
    let (actor, query) = (call.actor, call.query);
    let id = query.get("openid").map(String::as_str).unwrap_or_default();
    let Some(m) = st.merchants.get(actor) else {
        return Answer::err(61003, some(actor));
    };
    let Some((user, f)) = m.user_by_openid(id) else {
        return Answer::err(40003, some(actor));
    };
    let mut out = if f.subscribed {
        json!({
            "subscribe": 1,
            "openid": f.openid,
            "language": "zh_CN",
            "subscribe_time": f.subscribe_time,
            "remark": "",
            "groupid": 0,
            "tagid_list": [],
            "subscribe_scene": f.subscribe_scene,
            "qr_scene": 0,
            "qr_scene_str": f.qr_scene_str,
        })
    } else {
        json!({ "subscribe": 0, "openid": f.openid })
    };
    if let (Some(open), Some(o)) = (&m.open_appid, out.as_object_mut()) {
        o.insert("unionid".to_string(), Value::String(unionid(open, user)));
    }
    Answer::ok(out, some(actor))
}

pub fn custom_send(st: &mut State, call: &Call<'_>) -> Answer {
    let (actor, obj) = (call.actor, call.body);
    let touser = str_field(obj, "touser").unwrap_or_default();
    let Some(m) = st.merchants.get(actor) else {
        return Answer::err(61003, some(actor));
    };
    let Some((_, f)) = m.user_by_openid(&touser) else {
        return Answer::err(40003, some(actor));
    };
    if !f.subscribed {
        return Answer::err(43004, some(actor));
    }
    if str_field(obj, "msgtype").as_deref() != Some("text") {
        return Answer::err(40008, some(actor));
    }
    let Some(content) = obj
        .get("text")
        .and_then(|t| t.get("content"))
        .and_then(Value::as_str)
    else {
        return Answer::err(47001, some(actor));
    };
    let record = CustomMessage {
        appid: actor.to_string(),
        touser,
        content: content.to_string(),
        at: st.now(),
    };
    push_bounded(&mut st.custom_messages, record);
    Answer::ok(err_json(0), some(actor))
}
