//! Outbound traffic: encrypted pushes to the component callback and the message URL (with
//! WeChat's retry rules), the browser redirect after authorization, and reading passive replies.

use std::sync::Arc;
use std::time::{Duration, Instant};

use wxopen::crypto::{self, AesKey};

use super::state::push_bounded;
use super::util::{cdata, random_nonce, real_now, truncate, xml_field};
use super::{Delivery, PushRecord, Shared};

/// Kept of a response body in records.
const BODY_KEEP: usize = 64 * 1024;
/// How long the "browser" waits for the redirect target.
const REDIRECT_TIMEOUT: Duration = Duration::from_secs(10);

pub fn ticket_xml(component_appid: &str, now: i64, ticket: &str) -> String {
    format!(
        "<xml><AppId>{}</AppId><CreateTime>{now}</CreateTime><InfoType>{}</InfoType><ComponentVerifyTicket>{}</ComponentVerifyTicket></xml>",
        cdata(component_appid),
        cdata("component_verify_ticket"),
        cdata(ticket)
    )
}

pub struct AuthPush<'a> {
    pub info_type: &'a str,
    pub component_appid: &'a str,
    pub now: i64,
    pub authorizer_appid: &'a str,
    pub code: &'a str,
    pub code_expires_at: i64,
    pub pre_auth_code: Option<&'a str>,
}

pub fn authorized_xml(p: &AuthPush<'_>) -> String {
    let pre = p
        .pre_auth_code
        .map(|c| format!("<PreAuthCode>{}</PreAuthCode>", cdata(c)))
        .unwrap_or_default();
    format!(
        "<xml><AppId>{}</AppId><CreateTime>{}</CreateTime><InfoType>{}</InfoType><AuthorizerAppid>{}</AuthorizerAppid><AuthorizationCode>{}</AuthorizationCode><AuthorizationCodeExpiredTime>{}</AuthorizationCodeExpiredTime>{pre}</xml>",
        cdata(p.component_appid),
        p.now,
        cdata(p.info_type),
        cdata(p.authorizer_appid),
        cdata(p.code),
        p.code_expires_at,
    )
}

pub fn unauthorized_xml(component_appid: &str, now: i64, authorizer_appid: &str) -> String {
    format!(
        "<xml><AppId>{}</AppId><CreateTime>{now}</CreateTime><InfoType>{}</InfoType><AuthorizerAppid>{}</AuthorizerAppid></xml>",
        cdata(component_appid),
        cdata("unauthorized"),
        cdata(authorizer_appid)
    )
}

/// A field of a message-URL push: text goes into CDATA, numbers do not.
pub enum F {
    Text(String),
    Num(String),
}

/// A message-URL plaintext as WeChat builds it: ToUserName (the account's gh_ id), FromUserName
/// (the user's openid), CreateTime, MsgType, then `fields`.
pub fn message_xml(
    gh: &str,
    openid: &str,
    now: i64,
    msg_type: &str,
    fields: &[(&str, F)],
) -> String {
    let mut xml = format!(
        "<xml><ToUserName>{}</ToUserName><FromUserName>{}</FromUserName><CreateTime>{now}</CreateTime><MsgType>{}</MsgType>",
        cdata(gh),
        cdata(openid),
        cdata(msg_type)
    );
    for (name, value) in fields {
        match value {
            F::Text(t) => xml.push_str(&format!("<{name}>{}</{name}>", cdata(t))),
            F::Num(n) => xml.push_str(&format!("<{name}>{n}</{name}>")),
        }
    }
    xml.push_str("</xml>");
    xml
}

/// What to push where.
pub struct Outgoing {
    pub kind: String,
    /// `"component"` or `"message"`.
    pub target: &'static str,
    pub url: Option<String>,
    pub plaintext: String,
    /// Outer tag naming the receiver: `AppId` (component URL) or `ToUserName` (message URL).
    pub outer_tag: &'static str,
    pub outer_value: String,
    /// The component URL must answer exactly `success`; the message URL any 200.
    pub require_success: bool,
}

struct Keys {
    key: AesKey,
    token: String,
    component_appid: String,
    deadline: Duration,
    attempts: u32,
}

fn keys(shared: &Shared) -> Result<Keys, String> {
    let st = shared.lock();
    let key = AesKey::from_encoding_aes_key(&st.config.encoding_aes_key)
        .map_err(|e| format!("encoding_aes_key: {e}"))?;
    Ok(Keys {
        key,
        token: st.config.token.clone(),
        component_appid: st.config.component_appid.clone(),
        deadline: st
            .config
            .push_deadline
            .clamp(Duration::from_millis(1), Duration::from_secs(600)),
        attempts: st.config.push_attempts.max(1),
    })
}

fn failed(error: String) -> Delivery {
    Delivery {
        attempts: 0,
        status: None,
        body: String::new(),
        delivered: false,
        error: Some(error),
    }
}

/// Encrypts, signs and posts a push, retrying (timeout, connection error, non-200, or — for the
/// component URL — a body other than `success`) up to `push_attempts` times. Every attempt is
/// recorded.
pub async fn deliver(shared: &Arc<Shared>, out: Outgoing) -> Delivery {
    let Some(url) = out.url.clone() else {
        return failed(format!("no {} callback configured", out.target));
    };
    let k = match keys(shared) {
        Ok(k) => k,
        Err(e) => return failed(e),
    };
    let timestamp = real_now().to_string();
    let nonce = random_nonce();
    let sealed = match crypto::seal(
        &k.key,
        &k.token,
        &k.component_appid,
        &out.plaintext,
        &timestamp,
        &nonce,
    ) {
        Ok(s) => s,
        Err(e) => return failed(format!("encrypt: {e}")),
    };
    let body = format!(
        "<xml><{tag}>{}</{tag}><Encrypt>{}</Encrypt></xml>",
        cdata(&out.outer_value),
        cdata(&sealed.encrypt),
        tag = out.outer_tag
    );
    let query = [
        ("timestamp", timestamp.clone()),
        ("nonce", nonce.clone()),
        ("encrypt_type", "aes".to_string()),
        ("msg_signature", sealed.msg_signature.clone()),
        (
            "signature",
            crypto::url_signature(&k.token, &timestamp, &nonce),
        ),
    ];
    let push_id = shared.lock().next_push_id();
    let mut last = failed("not attempted".to_string());
    for attempt in 1..=k.attempts {
        let started = Instant::now();
        let result = shared
            .http
            .post(&url)
            .query(&query)
            .header("content-type", "text/xml")
            .body(body.clone())
            .timeout(k.deadline)
            .send()
            .await;
        let (status, text, error) = match result {
            Ok(resp) => {
                let status = resp.status().as_u16();
                match resp.text().await {
                    Ok(t) => (Some(status), t, None),
                    Err(e) => (Some(status), String::new(), Some(describe(&e))),
                }
            }
            Err(e) => (None, String::new(), Some(describe(&e))),
        };
        let delivered = error.is_none()
            && status == Some(200)
            && (!out.require_success || text.trim() == "success");
        let text = truncate(text, BODY_KEEP);
        {
            let mut st = shared.lock();
            let at = st.now();
            let record = PushRecord {
                push_id,
                kind: out.kind.clone(),
                target: out.target.to_string(),
                url: url.clone(),
                attempt,
                status,
                body: text.clone(),
                error: error.clone(),
                delivered,
                elapsed_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
                at,
                plaintext: out.plaintext.clone(),
            };
            push_bounded(&mut st.pushes, record);
        }
        last = Delivery {
            attempts: attempt,
            status,
            body: text,
            delivered,
            error,
        };
        if delivered {
            break;
        }
    }
    last
}

fn describe(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timeout".to_string()
    } else if e.is_connect() {
        "connection failed".to_string()
    } else if e.is_builder() {
        "invalid callback URL".to_string()
    } else {
        format!("request failed: {e}")
    }
}

/// The browser's visit of `redirect_uri?auth_code=…&expires_in=…` (no further redirects).
#[derive(Debug, Clone, serde::Serialize)]
pub struct Redirect {
    pub url: String,
    pub status: Option<u16>,
    pub location: Option<String>,
    pub body: String,
    pub error: Option<String>,
}

pub async fn redirect(shared: &Arc<Shared>, redirect_uri: &str, code: &str, ttl: i64) -> Redirect {
    redirect_with(
        shared,
        redirect_uri,
        &[("auth_code", code), ("expires_in", &ttl.to_string())],
    )
    .await
}

/// The browser sent to `redirect_uri` with `pairs` appended to its query.
pub async fn redirect_with(
    shared: &Arc<Shared>,
    redirect_uri: &str,
    pairs: &[(&str, &str)],
) -> Redirect {
    let mut url = match url::Url::parse(redirect_uri) {
        Ok(u) => u,
        Err(_) => {
            return Redirect {
                url: redirect_uri.to_string(),
                status: None,
                location: None,
                body: String::new(),
                error: Some("invalid redirect_uri".to_string()),
            };
        }
    };
    url.query_pairs_mut().extend_pairs(pairs);
    let result = shared
        .http
        .get(url.as_str())
        .timeout(REDIRECT_TIMEOUT)
        .send()
        .await;
    let (status, location, body, error) = match result {
        Ok(resp) => {
            let status = resp.status().as_u16();
            let location = resp
                .headers()
                .get("location")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            match resp.text().await {
                Ok(t) => (Some(status), location, t, None),
                Err(e) => (Some(status), location, String::new(), Some(describe(&e))),
            }
        }
        Err(e) => (None, None, String::new(), Some(describe(&e))),
    };
    Redirect {
        url: url.to_string(),
        status,
        location,
        body: truncate(body, BODY_KEEP),
        error,
    }
}

/// Reads a passive reply from the message URL: an encrypted envelope is verified
/// (`MsgSignature` over its own `TimeStamp` and `Nonce`) and decrypted; `success` or an empty
/// body is returned as is. Returns (reply, problem).
pub fn open_reply(shared: &Shared, body: &str) -> (Option<String>, Option<String>) {
    let trimmed = body.trim();
    if trimmed.is_empty() || trimmed == "success" {
        return (Some(trimmed.to_string()), None);
    }
    if wxopen::xml::check_safe(trimmed).is_err() {
        return (
            Some(body.to_string()),
            Some("reply is neither success, empty, nor well-formed XML".to_string()),
        );
    }
    let Some(encrypt) = xml_field(trimmed, "Encrypt") else {
        return (
            Some(body.to_string()),
            Some("reply is not encrypted (safe mode requires an Encrypt envelope)".to_string()),
        );
    };
    let k = match keys(shared) {
        Ok(k) => k,
        Err(e) => return (None, Some(e)),
    };
    let signature = xml_field(trimmed, "MsgSignature").unwrap_or_default();
    let timestamp = xml_field(trimmed, "TimeStamp").unwrap_or_default();
    let nonce = xml_field(trimmed, "Nonce").unwrap_or_default();
    if crypto::verify_msg_signature(&k.token, &timestamp, &nonce, &encrypt, &signature).is_err() {
        return (None, Some("reply MsgSignature does not verify".to_string()));
    }
    match k.key.decrypt(&encrypt, &k.component_appid) {
        Ok(plain) => {
            // The sandbox plays WeChat, which reads the reply: it may hold it in the clear.
            let plain = secrecy::ExposeSecret::expose_secret(&plain).to_string();
            let problem = wxopen::xml::check_safe(&plain)
                .err()
                .map(|e| format!("decrypted reply: {e}"));
            (Some(plain), problem)
        }
        Err(e) => (None, Some(format!("reply does not decrypt: {e}"))),
    }
}

/// A push to the component callback URL (tickets and authorization events).
pub async fn deliver_component(shared: &Arc<Shared>, kind: &str, plaintext: String) -> Delivery {
    let (url, appid) = {
        let st = shared.lock();
        (
            st.config.component_callback_url.clone(),
            st.config.component_appid.clone(),
        )
    };
    deliver(
        shared,
        Outgoing {
            kind: kind.to_string(),
            target: "component",
            url,
            plaintext,
            outer_tag: "AppId",
            outer_value: appid,
            require_success: true,
        },
    )
    .await
}

/// Pushes a fresh `component_verify_ticket` and waits for the delivery (WeChat does this every
/// 10 minutes, and on `api_start_push_ticket`).
pub async fn push_ticket(shared: &Arc<Shared>) -> serde_json::Value {
    let (ticket, xml) = {
        let mut st = shared.lock();
        let (ticket, now) = st.new_ticket();
        let xml = ticket_xml(&st.config.component_appid, now, &ticket);
        (ticket, xml)
    };
    let delivery = deliver_component(shared, "component_verify_ticket", xml).await;
    serde_json::json!({ "ticket": ticket, "delivery": delivery })
}
