//! Sign-in on behalf of a merchant (`/sns/component/…` with the component token): a mini
//! program's login code exchanged for the user's openid, session key and unionid.

use serde_json::json;

use super::super::api::Answer;
use super::super::state::State;
use super::super::util::{openid, random_from, unionid};
use super::Call;

/// `GET /sns/component/jscode2session?appid=&js_code=&grant_type=authorization_code&
/// component_appid=&component_access_token=` → `{openid, session_key[, unionid]}`.
/// 41018 / 40013 without this component's appid; 41002 / 40013 / 61003 for a missing,
/// unknown or unauthorized mini program; 40002 for another grant type; 41008 without a code;
/// 40029 for a code that is unknown, expired or another mini program's; 40163 for a used one.
pub fn jscode2session(st: &mut State, call: &Call<'_>) -> Answer {
    let appid = call.query_param("appid").map(str::to_string);
    match call.query_param("component_appid") {
        None => return Answer::err(41018, appid),
        Some(c) if c != st.config.component_appid => return Answer::err(40013, appid),
        Some(_) => {}
    }
    let Some(mp) = appid.clone() else {
        return Answer::err(41002, None);
    };
    let Some(m) = st.merchants.get(&mp) else {
        return Answer::err(40013, appid);
    };
    if m.authorization.is_none() {
        return Answer::err(61003, appid);
    }
    let open_appid = m.open_appid.clone();
    if call.query_param("grant_type") != Some("authorization_code") {
        return Answer::err(40002, appid);
    }
    let Some(code) = call.query_param("js_code") else {
        return Answer::err(41008, appid);
    };
    let now = st.now();
    let Some(entry) = st.js_codes.get_mut(code).filter(|c| c.appid == mp) else {
        return Answer::err(40029, appid);
    };
    if entry.used {
        return Answer::err(40163, appid);
    }
    if now >= entry.expires_at {
        return Answer::err(40029, appid);
    }
    entry.used = true;
    let user = entry.user.clone();
    // A session key is 16 random bytes, base64: 22 characters and `==`.
    let session_key = format!(
        "{}==",
        random_from(
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/",
            22
        )
    );
    let mut out = json!({ "openid": openid(&mp, &user), "session_key": session_key });
    if let (Some(open), Some(o)) = (open_appid, out.as_object_mut()) {
        o.insert("unionid".to_string(), json!(unionid(&open, &user)));
    }
    Answer::ok(out, appid)
}
