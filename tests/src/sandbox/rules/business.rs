//! Business APIs a provider's services call for a merchant through wxopen's API gateway: the
//! custom menu, the follower list, temporary media (a multipart upload and a binary download),
//! and the quota APIs (wechat-spec-platform.md §7: resets are limited to 10 a month).

use serde_json::{Value, json};

use super::super::api::{Answer, err_json};
use super::super::apis::{Api, Token};
use super::super::state::{Kind, Media, State};
use super::super::util::{random_alnum, str_field};
use super::{Call, check_component_appid};

/// Buttons a menu may have at its top level (WeChat: 1 to 3).
pub const MAX_MENU_BUTTONS: usize = 3;
/// Openids `user/get` lists per page (WeChat: 10000).
pub const USER_GET_PAGE: usize = 10_000;
/// Largest temporary image (WeChat: 10 MB).
pub const MAX_MEDIA_BYTES: usize = 10 * 1024 * 1024;
/// Quota resets an account may make per month (all reset APIs together).
pub const MAX_QUOTA_RESETS: u32 = 10;

/// `menu/create`: a `button` array of 1..=3 named buttons; recorded as the account's menu.
/// Official accounts only (48001 for a mini program).
pub fn menu_create(st: &mut State, call: &Call<'_>) -> Answer {
    let actor = call.actor_appid();
    match st.merchants.get(call.actor) {
        None => return Answer::err(61003, actor),
        Some(m) if m.kind != Kind::OfficialAccount => return Answer::err(48001, actor),
        Some(_) => {}
    }
    let Some(buttons) = call.body.get("button").and_then(Value::as_array) else {
        return Answer::err(47001, actor);
    };
    if buttons.is_empty() || buttons.len() > MAX_MENU_BUTTONS {
        return Answer::err(40016, actor);
    }
    let named = |b: &Value| {
        b.get("name")
            .and_then(Value::as_str)
            .is_some_and(|n| (1..=16).contains(&n.len()))
    };
    if !buttons.iter().all(named) {
        return Answer::err(40018, actor);
    }
    st.menus
        .insert(call.actor.to_string(), Value::Object(call.body.clone()));
    Answer::ok(err_json(0), actor)
}

/// `user/get?next_openid=`: the account's followers, in openid order, one page after
/// `next_openid` (40003 if it is not a follower's openid).
pub fn user_get(st: &mut State, call: &Call<'_>) -> Answer {
    let actor = call.actor_appid();
    let Some(m) = st.merchants.get(call.actor) else {
        return Answer::err(61003, actor);
    };
    let mut openids: Vec<&str> = m
        .followers
        .values()
        .filter(|f| f.subscribed)
        .map(|f| f.openid.as_str())
        .collect();
    openids.sort_unstable();
    let start = match call.query_param("next_openid") {
        None => 0,
        Some(next) => match openids.iter().position(|o| *o == next) {
            Some(i) => i + 1,
            None => return Answer::err(40003, actor),
        },
    };
    let page: Vec<&str> = openids
        .iter()
        .skip(start)
        .take(USER_GET_PAGE)
        .copied()
        .collect();
    let mut out = json!({
        "total": openids.len(),
        "count": page.len(),
        "next_openid": page.last().copied().unwrap_or_default(),
    });
    if let (false, Some(o)) = (page.is_empty(), out.as_object_mut()) {
        o.insert("data".into(), json!({ "openid": page }));
    }
    Answer::ok(out, actor)
}

/// One part of a multipart form: its name, file name, content type and bytes.
struct Part<'a> {
    name: String,
    filename: Option<String>,
    content_type: Option<String>,
    bytes: &'a [u8],
}

fn find(haystack: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    haystack
        .get(from..)?
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|i| i + from)
}

/// A quoted or bare parameter of a header value (`name="media"`, `boundary=xyz`).
fn param(header: &str, key: &str) -> Option<String> {
    header.split(';').map(str::trim).find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case(key)
            .then(|| v.trim().trim_matches('"').to_string())
    })
}

/// The parts of a `multipart/form-data` body (RFC 7578); `None` when it is not one.
fn multipart<'a>(content_type: &str, body: &'a [u8]) -> Option<Vec<Part<'a>>> {
    let essence = content_type.split(';').next()?.trim();
    if !essence.eq_ignore_ascii_case("multipart/form-data") {
        return None;
    }
    let boundary = format!("--{}", param(content_type, "boundary")?);
    let mut parts = Vec::new();
    let mut at = find(body, boundary.as_bytes(), 0)? + boundary.len();
    loop {
        if body.get(at..at + 2) == Some(b"--") {
            return Some(parts);
        }
        let head_start = at + 2; // CRLF after the boundary
        let head_end = find(body, b"\r\n\r\n", head_start)?;
        let head = std::str::from_utf8(body.get(head_start..head_end)?).ok()?;
        let data_start = head_end + 4;
        let next = find(body, format!("\r\n{boundary}").as_bytes(), data_start)?;
        let (mut name, mut filename, mut part_type) = (None, None, None);
        for line in head.split("\r\n") {
            let Some((h, v)) = line.split_once(':') else {
                continue;
            };
            if h.trim().eq_ignore_ascii_case("content-disposition") {
                name = param(v, "name");
                filename = param(v, "filename");
            } else if h.trim().eq_ignore_ascii_case("content-type") {
                part_type = Some(v.trim().to_string());
            }
        }
        parts.push(Part {
            name: name?,
            filename,
            content_type: part_type,
            bytes: body.get(data_start..next)?,
        });
        at = next + 2 + boundary.len();
    }
}

/// `media/upload?type=`: a `multipart/form-data` body with a `media` file part (41005 when
/// missing, 40004 for a type other than image, voice, video or thumb, 40006 over 10 MB).
pub fn media_upload(st: &mut State, call: &Call<'_>) -> Answer {
    let actor = call.actor_appid();
    let kind = call.query_param("type").unwrap_or_default();
    if !matches!(kind, "image" | "voice" | "video" | "thumb") {
        return Answer::err(40004, actor);
    }
    let parts = call
        .content_type
        .and_then(|ct| multipart(ct, call.raw))
        .unwrap_or_default();
    let Some(part) = parts.into_iter().find(|p| p.name == "media") else {
        return Answer::err(41005, actor);
    };
    if part.bytes.is_empty() || part.bytes.len() > MAX_MEDIA_BYTES {
        return Answer::err(40006, actor);
    }
    let media_id = random_alnum(64);
    let created_at = st.now();
    st.media.insert(
        media_id.clone(),
        Media {
            appid: call.actor.to_string(),
            content_type: part
                .content_type
                .unwrap_or_else(|| "application/octet-stream".to_string()),
            filename: part.filename.unwrap_or_else(|| format!("{media_id}.bin")),
            bytes: part.bytes.to_vec(),
        },
    );
    Answer::ok(
        json!({ "type": kind, "media_id": media_id, "created_at": created_at }),
        actor,
    )
}

/// `media/get?media_id=`: the bytes this account uploaded, with their content type and an
/// attachment name (40007 for an unknown id or another account's).
pub fn media_get(st: &mut State, call: &Call<'_>) -> Answer {
    let actor = call.actor_appid();
    let id = call.query_param("media_id").unwrap_or_default();
    match st.media.get(id) {
        Some(m) if m.appid == call.actor => Answer::bytes(
            m.content_type.clone(),
            m.filename.clone(),
            m.bytes.clone(),
            actor,
        ),
        _ => Answer::err(40007, actor),
    }
}

/// Counts one reset for `account` this month; false (48006) past [`MAX_QUOTA_RESETS`].
fn spend_reset(st: &mut State, account: &str) -> bool {
    let month = st.now().div_euclid(30 * 86_400);
    let used = st
        .quota_resets
        .entry((account.to_string(), month))
        .or_insert(0);
    if *used >= MAX_QUOTA_RESETS {
        return false;
    }
    *used += 1;
    true
}

/// Resets every API's daily count of `account` (or only `api`'s).
fn reset(st: &mut State, account: &str, api: Option<Api>) -> Answer {
    let appid = Some(account.to_string());
    if !spend_reset(st, account) {
        return Answer::err(48006, appid);
    }
    st.quota_used
        .retain(|(a, who, _), _| who != account || api.is_some_and(|only| only != *a));
    Answer::ok(err_json(0), appid)
}

/// `clear_quota` `{appid}` with the account's own token (40013 for another appid).
pub fn clear_quota(st: &mut State, call: &Call<'_>) -> Answer {
    match str_field(call.body, "appid") {
        None => Answer::err(41002, call.actor_appid()),
        Some(a) if a != call.actor => Answer::err(40013, call.actor_appid()),
        Some(_) => reset(st, call.actor, None),
    }
}

/// `component/clear_quota` `{component_appid}` with the component token.
pub fn component_clear_quota(st: &mut State, call: &Call<'_>) -> Answer {
    if let Err(answer) = check_component_appid(st, call.body) {
        return answer;
    }
    let me = st.config.component_appid.clone();
    let mut answer = reset(st, &me, None);
    answer.authorizer_appid = None;
    answer
}

/// `component/clear_quota/v2` `{component_appid, appsecret}`, no token (40125 wrong secret).
pub fn component_clear_quota_v2(st: &mut State, call: &Call<'_>) -> Answer {
    if let Err(answer) = check_component_appid(st, call.body) {
        return answer;
    }
    if str_field(call.body, "appsecret").as_deref() != Some(st.config.component_appsecret.as_str())
    {
        return Answer::err(40125, None);
    }
    let me = st.config.component_appid.clone();
    let mut answer = reset(st, &me, None);
    answer.authorizer_appid = None;
    answer
}

/// The API a `{cgi_path}` body names, if the token's account may call it: 76021 for a path the
/// sandbox does not serve, 76022 for one that takes no authorizer token.
fn cgi_api(call: &Call<'_>) -> Result<Api, Answer> {
    let path = str_field(call.body, "cgi_path").unwrap_or_default();
    let api = Api::from_path(&path).ok_or_else(|| Answer::err(76021, call.actor_appid()))?;
    match api.token() {
        Token::Authorizer(_) => Ok(api),
        _ => Err(Answer::err(76022, call.actor_appid())),
    }
}

/// `openapi/quota/get` `{cgi_path}`: today's count of that API for the account.
pub fn quota_get(st: &mut State, call: &Call<'_>) -> Answer {
    let api = match cgi_api(call) {
        Ok(api) => api,
        Err(answer) => return answer,
    };
    let day = st.now().div_euclid(86_400);
    let limit = st.config.daily_quota.limit(api.name());
    let used = st
        .quota_used
        .get(&(api, call.actor.to_string(), day))
        .copied()
        .unwrap_or(0);
    Answer::ok(
        json!({
            "errcode": 0,
            "errmsg": "ok",
            "quota": { "daily_limit": limit, "used": used, "remain": limit.saturating_sub(used) },
        }),
        call.actor_appid(),
    )
}

/// `openapi/quota/clear` `{cgi_path}`: resets one API's count (a reset like `clear_quota`).
pub fn quota_clear(st: &mut State, call: &Call<'_>) -> Answer {
    match cgi_api(call) {
        Ok(api) => reset(st, call.actor, Some(api)),
        Err(answer) => answer,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multipart_parts_are_read() {
        let body = b"--XyZ\r\nContent-Disposition: form-data; name=\"media\"; filename=\"a.png\"\r\nContent-Type: image/png\r\n\r\n\x89PNG\r\n\x00\xff\r\n--XyZ\r\nContent-Disposition: form-data; name=\"x\"\r\n\r\nv\r\n--XyZ--\r\n";
        let parts = multipart("multipart/form-data; boundary=XyZ", body).unwrap();
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0].name, "media");
        assert_eq!(parts[0].filename.as_deref(), Some("a.png"));
        assert_eq!(parts[0].content_type.as_deref(), Some("image/png"));
        assert_eq!(parts[0].bytes, b"\x89PNG\r\n\x00\xff");
        assert_eq!(parts[1].bytes, b"v");
        assert!(multipart("application/json", body).is_none());
        assert!(multipart("multipart/form-data; boundary=nope", body).is_none());
    }
}
