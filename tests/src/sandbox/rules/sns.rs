//! Sign-in on behalf of a merchant (`/sns/component/…` with the component token): a mini
//! program's login code exchanged for the user's openid, session key and unionid.

use serde_json::json;

use super::super::api::Answer;
use super::super::state::{OauthUserToken, State};
use super::super::util::{openid, random_alnum, random_from, unionid};
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

/// `GET /sns/oauth2/component/access_token?appid=&code=&grant_type=authorization_code&
/// component_appid=&component_access_token=` → `{access_token, expires_in, refresh_token,
/// openid, scope[, unionid]}` (unionid for `snsapi_userinfo` when the account is bound to an
/// open account). 41018 / 40013 without this component's appid; 41002 / 40013 / 61003 for a
/// missing, unknown or unauthorized account; 40002 for another grant type; 41008 without a
/// code; 40029 for an unknown code or another account's; 40163 for a used one; 42003 expired.
pub fn oauth_access_token(st: &mut State, call: &Call<'_>) -> Answer {
    let appid = call.query_param("appid").map(str::to_string);
    match call.query_param("component_appid") {
        None => return Answer::err(41018, appid),
        Some(c) if c != st.config.component_appid => return Answer::err(40013, appid),
        Some(_) => {}
    }
    let Some(oa) = appid.clone() else {
        return Answer::err(41002, None);
    };
    let Some(m) = st.merchants.get(&oa) else {
        return Answer::err(40013, appid);
    };
    if m.authorization.is_none() {
        return Answer::err(61003, appid);
    }
    let open_appid = m.open_appid.clone();
    if call.query_param("grant_type") != Some("authorization_code") {
        return Answer::err(40002, appid);
    }
    let Some(code) = call.query_param("code") else {
        return Answer::err(41008, appid);
    };
    let now = st.now();
    let Some(entry) = st.oauth_codes.get_mut(code).filter(|c| c.appid == oa) else {
        return Answer::err(40029, appid);
    };
    if entry.used {
        return Answer::err(40163, appid);
    }
    if now >= entry.expires_at {
        return Answer::err(42003, appid);
    }
    entry.used = true;
    let (user, scope) = (entry.user.clone(), entry.scope.clone());
    let access_token = format!("sns_{}", random_alnum(40));
    st.oauth_tokens.insert(
        access_token.clone(),
        OauthUserToken {
            appid: oa.clone(),
            user: user.clone(),
            scope: scope.clone(),
            expires_at: now.saturating_add(7200),
        },
    );
    let mut out = json!({
        "access_token": access_token,
        "expires_in": 7200,
        "refresh_token": format!("snsr_{}", random_alnum(40)),
        "openid": openid(&oa, &user),
        "scope": scope,
    });
    if let (Some(open), Some(o), true) =
        (open_appid, out.as_object_mut(), scope == "snsapi_userinfo")
    {
        o.insert("unionid".to_string(), json!(unionid(&open, &user)));
    }
    Answer::ok(out, appid)
}

/// `GET /sns/userinfo?access_token=USER_TOKEN&openid=&lang=` → the profile (the user's OAuth
/// token, not an account's). 41001 / 40001 / 42001 for a missing, unknown or expired token;
/// 48001 for a `snsapi_base` token; 40003 for another openid.
pub fn userinfo(st: &mut State, call: &Call<'_>) -> Answer {
    let Some(token) = call.query_param("access_token") else {
        return Answer::err(41001, None);
    };
    let now = st.now();
    let Some(t) = st.oauth_tokens.get(token).cloned() else {
        return Answer::err(40001, None);
    };
    let appid = Some(t.appid.clone());
    if now >= t.expires_at {
        return Answer::err(42001, appid);
    }
    if t.scope != "snsapi_userinfo" {
        return Answer::err(48001, appid);
    }
    let id = openid(&t.appid, &t.user);
    if call.query_param("openid") != Some(id.as_str()) {
        return Answer::err(40003, appid);
    }
    let mut out = json!({
        "openid": id,
        "nickname": t.user,
        "sex": 0,
        "province": "",
        "city": "",
        "country": "",
        "headimgurl": "",
        "privilege": [],
    });
    let open_appid = st
        .merchants
        .get(&t.appid)
        .and_then(|m| m.open_appid.clone());
    if let (Some(open), Some(o)) = (open_appid, out.as_object_mut()) {
        o.insert("unionid".to_string(), json!(unionid(&open, &t.user)));
    }
    Answer::ok(out, appid)
}
