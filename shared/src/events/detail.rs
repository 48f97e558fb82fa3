//! The event model: what goes on the bus for every verified push, and for wxopen's own
//! authorization state changes.
//!
//! `detail` = `{id, appid, received_at, create_time, msg_type?, event?, event_key?, from_user?,
//! msg_id?, customer_ref?, authorizer_known, fields, truncated?}`:
//!
//! * `id` is stable across WeChat's retries of one push. It is derived from the push's content,
//!   never from the query string: WeChat documents `MsgId` as the retry key of messages and
//!   `FromUserName + CreateTime` as the key of events, and says nothing about retries keeping
//!   `timestamp`/`nonce`/`msg_signature`. See [`Event::message_id_parts`] for the exact tuples.
//! * `fields` holds every XML field as a flat string map (`Parent.Child` for the one nested
//!   level, `Name[1]`, `Name[2]` for repeats), minus the credentials listed at
//!   [`is_secret_field`].
//! * `truncated` names the fields whose values were emptied to fit EventBridge's entry limit.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::xml::{self, Fields, XmlError};

/// `source` of every event wxopen publishes.
pub const SOURCE: &str = "wxopen";

/// The release test's `QUERY_AUTH_CODE:<code>` text carries an authorization code.
use crate::xml::RELEASE_QUERY_AUTH_PREFIX;

/// What replaces a credential that is part of a longer value.
pub const REDACTED: &str = "<redacted>";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum DetailType {
    /// A user message to an authorizer (`MsgType` other than `event`).
    #[serde(rename = "authorizer.message")]
    AuthorizerMessage,
    /// An event for an authorizer (`MsgType` `event`), mini program audit results included.
    #[serde(rename = "authorizer.event")]
    AuthorizerEvent,
    /// A push to the authorization event URL other than the ticket.
    #[serde(rename = "component.event")]
    ComponentEvent,
    /// wxopen's own state change of an authorizer.
    #[serde(rename = "authorization.changed")]
    AuthorizationChanged,
    /// Reserved: a fleet-release target changed state.
    #[serde(rename = "release.target")]
    ReleaseTarget,
    /// A fast registration changed state.
    #[serde(rename = "registration.changed")]
    RegistrationChanged,
}

impl DetailType {
    pub const ALL: [DetailType; 6] = [
        DetailType::AuthorizerMessage,
        DetailType::AuthorizerEvent,
        DetailType::ComponentEvent,
        DetailType::AuthorizationChanged,
        DetailType::ReleaseTarget,
        DetailType::RegistrationChanged,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DetailType::AuthorizerMessage => "authorizer.message",
            DetailType::AuthorizerEvent => "authorizer.event",
            DetailType::ComponentEvent => "component.event",
            DetailType::AuthorizationChanged => "authorization.changed",
            DetailType::ReleaseTarget => "release.target",
            DetailType::RegistrationChanged => "registration.changed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == s)
    }
}

impl std::fmt::Display for DetailType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An event's `detail`. Holds user message text: `Debug` shows the id and field names only.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Detail {
    pub id: String,
    /// The authorizer the event is about (the component appid for component pushes that name
    /// no authorizer).
    pub appid: String,
    /// When wxopen received the push (seconds).
    pub received_at: i64,
    /// WeChat's `CreateTime` (for `authorization.changed`: the time of the change's cause).
    pub create_time: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub msg_type: Option<String>,
    /// `Event` for authorizer events, `InfoType` for component events, the change for
    /// `authorization.changed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_key: Option<String>,
    /// The user's openid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub msg_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_ref: Option<String>,
    /// False for a message to an authorizer wxopen has no record of (yet).
    pub authorizer_known: bool,
    pub fields: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub truncated: Vec<String>,
}

impl std::fmt::Debug for Detail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Detail")
            .field("id", &self.id)
            .field("appid", &self.appid)
            .field("msg_type", &self.msg_type)
            .field("event", &self.event)
            .field("authorizer_known", &self.authorizer_known)
            .field("fields", &self.fields.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

/// One event: its `detail-type` and `detail`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub detail_type: DetailType,
    pub detail: Detail,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    #[error("{0}")]
    Xml(#[from] XmlError),
    #[error("the event does not fit in {0} bytes even with every field emptied")]
    TooLarge(usize),
    #[error("the event could not be serialised")]
    Serialise,
}

/// What the caller knows of the authorizer an event is about.
#[derive(Debug, Clone, Copy, Default)]
pub struct Known<'a> {
    pub authorizer_known: bool,
    pub customer_ref: Option<&'a str>,
}

/// An authorization state change made by wxopen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthorizationChange {
    Authorized,
    Updated,
    Unauthorized,
    NeedsReauth,
    Recovered,
}

impl AuthorizationChange {
    pub fn as_str(self) -> &'static str {
        match self {
            AuthorizationChange::Authorized => "authorized",
            AuthorizationChange::Updated => "updated",
            AuthorizationChange::Unauthorized => "unauthorized",
            AuthorizationChange::NeedsReauth => "needs_reauth",
            AuthorizationChange::Recovered => "recovered",
        }
    }
}

/// True for a field that carries a credential, which never leaves wxopen in an event.
///
/// The name is compared case-insensitively with `_` and `-` removed; it is a credential when it
/// * contains `token` or `ticket`: `ComponentVerifyTicket` (gets the component token),
///   `Ticket` of QR-scan events (shows the QR code again, and a login QR code is what signs a
///   user in; `EventKey` carries the scene, which is all a consumer needs to correlate), and any
///   access/refresh token a future push might carry;
/// * ends in `authcode` or is `authorizationcode`: `AuthorizationCode` (authorized /
///   updateauthorized), `PreAuthCode`, `auth_code` (fast registration): each is exchangeable or
///   usable once, so whoever reads it first wins;
/// * contains `secret`, `password` or `sessionkey`, or is `Encrypt`: defensive, none is pushed
///   today.
///
/// Not credentials, and kept: `EventKey` (menu key, URL, QR scene), `MsgId`/`MsgID`,
/// `AuthorizationCodeExpiredTime` (a time), `info.code` / `code_type` (a company's public
/// registration number), `ErrorCode`, `ScanCodeInfo` (what a user scanned).
pub fn is_secret_field(name: &str) -> bool {
    let n: String = name
        .chars()
        .filter(|c| !matches!(c, '_' | '-'))
        .flat_map(char::to_lowercase)
        .collect();
    n.contains("token")
        || n.contains("ticket")
        || n.ends_with("authcode")
        || n == "authorizationcode"
        || n.contains("secret")
        || n.contains("password")
        || n.contains("sessionkey")
        || n == "encrypt"
}

/// The flat, credential-free field map of a document.
pub fn public_fields(f: &Fields<'_>) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for (parent, name, value) in f.iter() {
        if is_secret_field(name) || parent.is_some_and(is_secret_field) {
            continue;
        }
        let key = match parent {
            Some(p) => format!("{p}.{name}"),
            None => name.to_string(),
        };
        let value = redact_value(&key, value);
        if out.contains_key(&key) {
            let mut i = 1usize;
            while out.contains_key(&format!("{key}[{i}]")) {
                i += 1;
            }
            out.insert(format!("{key}[{i}]"), value);
        } else {
            out.insert(key, value);
        }
    }
    out
}

/// Credentials inside an otherwise public value: the release test's `QUERY_AUTH_CODE:<code>`.
fn redact_value(key: &str, value: &str) -> String {
    if key == "Content" && value.starts_with(RELEASE_QUERY_AUTH_PREFIX) {
        return format!("{RELEASE_QUERY_AUTH_PREFIX}{REDACTED}");
    }
    value.to_string()
}

/// A 128-bit hex digest of length-prefixed parts (no two tuples collide by concatenation).
fn stable_id(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_be_bytes());
        h.update(p.as_bytes());
    }
    let digest = h.finalize();
    hex::encode(digest.get(..16).unwrap_or_default())
}

fn owned(f: &Fields<'_>, name: &str) -> Option<String> {
    f.get(name).map(str::to_string)
}

/// What wxopen's own events (not a push) are made of.
struct Own<'a> {
    appid: &'a str,
    event_time: i64,
    now: i64,
    customer_ref: Option<&'a str>,
    /// Filtered again here: no credential leaves.
    fields: BTreeMap<String, String>,
}

impl Own<'_> {
    fn into_event(self, detail_type: DetailType, id: String, event: &str, known: bool) -> Event {
        Event {
            detail_type,
            detail: Detail {
                id,
                appid: self.appid.to_string(),
                received_at: self.now,
                create_time: Some(self.event_time),
                msg_type: None,
                event: Some(event.to_string()),
                event_key: None,
                from_user: None,
                msg_id: None,
                customer_ref: self.customer_ref.map(str::to_string),
                authorizer_known: known,
                fields: self
                    .fields
                    .into_iter()
                    .filter(|(k, _)| !k.split('.').any(is_secret_field))
                    .collect(),
                truncated: Vec::new(),
            },
        }
    }
}

impl Event {
    /// The tuple a message event's `id` is the digest of. Each holds only what WeChat keeps the same
    /// when it retries a push (the same document is sent again):
    /// * a message with `MsgId`: `("msg", appid, FromUserName, MsgId)`. `MsgId` is WeChat's
    ///   documented retry key; the openid is added because concurrent voice messages of
    ///   different users have been reported with the same `MsgId` (WxJava issue 333).
    /// * an event, or a message without `MsgId`: `("evt", appid, ToUserName, FromUserName,
    ///   CreateTime, MsgType, Event, EventKey)`. `FromUserName + CreateTime` is the documented
    ///   key; `CreateTime` has whole seconds, so the event and its key are added (as WxJava does)
    ///   to keep two different events of one second apart.
    /// * a component push: `("cmp", AppId, InfoType, CreateTime, AuthorizerAppid, appid,
    ///   status)`.
    pub fn message_id_parts<'f>(appid: &'f str, f: &'f Fields<'_>) -> Vec<&'f str> {
        let get = |name: &str| f.get(name).unwrap_or_default();
        match f.get("MsgId") {
            Some(msg_id) if get("MsgType") != "event" => {
                vec!["msg", appid, get("FromUserName"), msg_id]
            }
            _ => vec![
                "evt",
                appid,
                get("ToUserName"),
                get("FromUserName"),
                get("CreateTime"),
                get("MsgType"),
                get("Event"),
                get("EventKey"),
            ],
        }
    }

    /// The component-push tuple (see [`Event::message_id_parts`]).
    pub fn component_id_parts<'f>(f: &'f Fields<'_>) -> Vec<&'f str> {
        let get = |name: &str| f.get(name).unwrap_or_default();
        vec![
            "cmp",
            get("AppId"),
            get("InfoType"),
            get("CreateTime"),
            get("AuthorizerAppid"),
            get("appid"),
            get("status"),
        ]
    }

    /// A decrypted message-URL push for the authorizer `appid` (from the path).
    pub fn from_message(
        appid: &str,
        plaintext: &str,
        received_at: i64,
        known: Known<'_>,
    ) -> Result<Self, EventError> {
        Self::from_message_fields(appid, &xml::fields(plaintext)?, received_at, known)
    }

    pub fn from_message_fields(
        appid: &str,
        f: &Fields<'_>,
        received_at: i64,
        known: Known<'_>,
    ) -> Result<Self, EventError> {
        let msg_type = f.get("MsgType").ok_or(XmlError::MissingField("MsgType"))?;
        let is_event = msg_type == "event";
        let detail = Detail {
            id: stable_id(&Self::message_id_parts(appid, f)),
            appid: appid.to_string(),
            received_at,
            create_time: f.get("CreateTime").and_then(|v| v.parse().ok()),
            msg_type: Some(msg_type.to_string()),
            event: if is_event { owned(f, "Event") } else { None },
            event_key: owned(f, "EventKey"),
            from_user: owned(f, "FromUserName"),
            msg_id: owned(f, "MsgId"),
            customer_ref: known.customer_ref.map(str::to_string),
            authorizer_known: known.authorizer_known,
            fields: public_fields(f),
            truncated: Vec::new(),
        };
        Ok(Self {
            detail_type: if is_event {
                DetailType::AuthorizerEvent
            } else {
                DetailType::AuthorizerMessage
            },
            detail,
        })
    }

    /// The authorizer a component push is about (`AuthorizerAppid`, or `appid` of a fast
    /// registration), to look up `Known` before building the event.
    pub fn component_subject<'f>(f: &'f Fields<'_>) -> Option<&'f str> {
        f.get("AuthorizerAppid").or_else(|| f.get("appid"))
    }

    /// A decrypted authorization-event-URL push. `None` for the ticket, which is not an event.
    pub fn from_component_push(
        plaintext: &str,
        received_at: i64,
        known: Known<'_>,
    ) -> Result<Option<Self>, EventError> {
        Self::from_component_fields(&xml::fields(plaintext)?, received_at, known)
    }

    pub fn from_component_fields(
        f: &Fields<'_>,
        received_at: i64,
        known: Known<'_>,
    ) -> Result<Option<Self>, EventError> {
        let info_type = f
            .get("InfoType")
            .ok_or(XmlError::MissingField("InfoType"))?;
        if info_type == "component_verify_ticket" {
            return Ok(None);
        }
        let component_appid = f.get("AppId").ok_or(XmlError::MissingField("AppId"))?;
        let appid = Self::component_subject(f).unwrap_or(component_appid);
        let detail = Detail {
            id: stable_id(&Self::component_id_parts(f)),
            appid: appid.to_string(),
            received_at,
            create_time: f.get("CreateTime").and_then(|v| v.parse().ok()),
            msg_type: None,
            event: Some(info_type.to_string()),
            event_key: None,
            from_user: None,
            msg_id: None,
            customer_ref: known.customer_ref.map(str::to_string),
            authorizer_known: known.authorizer_known,
            fields: public_fields(f),
            truncated: Vec::new(),
        };
        Ok(Some(Self {
            detail_type: DetailType::ComponentEvent,
            detail,
        }))
    }

    /// wxopen changed an authorizer's state. `cause` identifies what caused it, stably across
    /// retries: the component event's `id`, or for the refresher the refresh-token version
    /// (`needs_reauth:v7`). `fields` must hold no credential (it is filtered again anyway).
    pub fn authorization_changed(
        appid: &str,
        change: AuthorizationChange,
        cause: &str,
        event_time: i64,
        now: i64,
        customer_ref: Option<&str>,
        fields: BTreeMap<String, String>,
    ) -> Self {
        let mut fields = fields;
        fields.insert("change".into(), change.as_str().into());
        Own {
            appid,
            event_time,
            now,
            customer_ref,
            fields,
        }
        .into_event(
            DetailType::AuthorizationChanged,
            stable_id(&["auth", appid, change.as_str(), cause]),
            change.as_str(),
            true,
        )
    }

    /// A fast registration changed state (`state`: succeeded, failed). `appid` is the new mini
    /// program (or the official account whose subject was reused, or empty when none is known).
    #[allow(clippy::too_many_arguments)]
    pub fn registration_changed(
        appid: &str,
        registration_id: &str,
        state: &str,
        cause: &str,
        event_time: i64,
        now: i64,
        customer_ref: Option<&str>,
        fields: BTreeMap<String, String>,
    ) -> Self {
        Own {
            appid,
            event_time,
            now,
            customer_ref,
            fields,
        }
        .into_event(
            DetailType::RegistrationChanged,
            stable_id(&["reg", registration_id, state, cause]),
            state,
            !appid.is_empty(),
        )
    }

    /// A fleet-release target changed state (`release.target`): `fields` carries `job_id`,
    /// `seq`, `from`, `to` and what the change recorded (`auditid`, `reason`, `errcode`); stable
    /// per (job, target, new state), so a retried transition publishes the same id.
    pub fn release_target(
        appid: &str,
        job_id: &str,
        seq: u32,
        to: &str,
        now: i64,
        fields: BTreeMap<String, String>,
    ) -> Self {
        let seq = seq.to_string();
        Self {
            detail_type: DetailType::ReleaseTarget,
            detail: Detail {
                id: stable_id(&["release", job_id, &seq, to]),
                appid: appid.to_string(),
                received_at: now,
                create_time: Some(now),
                msg_type: None,
                event: Some(to.to_string()),
                event_key: None,
                from_user: None,
                msg_id: None,
                customer_ref: None,
                authorizer_known: true,
                fields,
                truncated: Vec::new(),
            },
        }
    }

    /// The detail as JSON of at most `max_bytes`: when it is larger, the longest field values
    /// are emptied (and named in `truncated`) until it fits.
    pub fn detail_json(&self, max_bytes: usize) -> Result<String, EventError> {
        let mut json = serde_json::to_string(&self.detail).map_err(|_| EventError::Serialise)?;
        if json.len() <= max_bytes {
            return Ok(json);
        }
        let mut detail = self.detail.clone();
        while json.len() > max_bytes {
            let longest = detail
                .fields
                .iter()
                .filter(|(_, v)| !v.is_empty())
                .max_by_key(|(_, v)| v.len())
                .map(|(k, _)| k.clone());
            let Some(key) = longest else {
                return Err(EventError::TooLarge(max_bytes));
            };
            if let Some(v) = detail.fields.get_mut(&key) {
                v.clear();
            }
            detail.truncated.push(key);
            json = serde_json::to_string(&detail).map_err(|_| EventError::Serialise)?;
        }
        Ok(json)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const APPID: &str = "wxoa00000000000001";
    const NOW: i64 = 1_763_856_100;

    fn known() -> Known<'static> {
        Known {
            authorizer_known: true,
            customer_ref: Some("cust-42"),
        }
    }

    fn message(body: &str) -> Event {
        let xml = format!(
            "<xml><ToUserName><![CDATA[gh_0000000001]]></ToUserName><FromUserName><![CDATA[o_alice]]></FromUserName><CreateTime>1763856000</CreateTime>{body}</xml>"
        );
        Event::from_message(APPID, &xml, NOW, known()).unwrap()
    }

    #[test]
    fn text_message() {
        let e = message(
            "<MsgType><![CDATA[text]]></MsgType><Content><![CDATA[你好 ]]>]]></Content><MsgId>23456789012345678</MsgId>",
        );
        assert_eq!(e.detail_type, DetailType::AuthorizerMessage);
        let d = &e.detail;
        assert_eq!(d.appid, APPID);
        assert_eq!(d.msg_type.as_deref(), Some("text"));
        assert_eq!(d.event, None);
        assert_eq!(d.from_user.as_deref(), Some("o_alice"));
        assert_eq!(d.msg_id.as_deref(), Some("23456789012345678"));
        assert_eq!(d.create_time, Some(1_763_856_000));
        assert_eq!(d.received_at, NOW);
        assert_eq!(d.customer_ref.as_deref(), Some("cust-42"));
        assert!(d.authorizer_known);
        assert_eq!(d.fields["Content"], "你好 ]]>");
        assert_eq!(d.fields["ToUserName"], "gh_0000000001");
        assert_eq!(d.id.len(), 32);
        let json: serde_json::Value =
            serde_json::from_str(&e.detail_json(262_000).unwrap()).unwrap();
        assert_eq!(json["msg_id"], "23456789012345678");
        assert!(
            json.get("event").is_none(),
            "absent typed fields are omitted"
        );
        assert!(json.get("truncated").is_none());
    }

    #[test]
    fn subscribe_with_qr_scene_drops_the_ticket() {
        let e = message(
            "<MsgType><![CDATA[event]]></MsgType><Event><![CDATA[subscribe]]></Event><EventKey><![CDATA[qrscene_login-1]]></EventKey><Ticket><![CDATA[gQH47joAAAAAAAAAASxodHRwOi8v]]></Ticket>",
        );
        assert_eq!(e.detail_type, DetailType::AuthorizerEvent);
        assert_eq!(e.detail.event.as_deref(), Some("subscribe"));
        assert_eq!(e.detail.event_key.as_deref(), Some("qrscene_login-1"));
        assert!(!e.detail.fields.contains_key("Ticket"));
        assert!(
            !e.detail_json(262_000)
                .unwrap()
                .contains("gQH47joAAAAAAAAAASxodHRwOi8v")
        );
    }

    #[test]
    fn menu_click() {
        let e = message(
            "<MsgType><![CDATA[event]]></MsgType><Event><![CDATA[CLICK]]></Event><EventKey><![CDATA[V1001_TODAY_MUSIC]]></EventKey>",
        );
        assert_eq!(e.detail_type, DetailType::AuthorizerEvent);
        assert_eq!(e.detail.event.as_deref(), Some("CLICK"));
        assert_eq!(e.detail.event_key.as_deref(), Some("V1001_TODAY_MUSIC"));
        assert_eq!(e.detail.msg_id, None);
    }

    #[test]
    fn weapp_audit_success_and_unknown_events() {
        for (event, extra) in [
            ("weapp_audit_success", "<SuccTime>1763856000</SuccTime>"),
            (
                "weapp_audit_fail",
                "<Reason><![CDATA[a<br>b]]></Reason><FailTime>1</FailTime><ScreenShot><![CDATA[m1|m2]]></ScreenShot>",
            ),
            (
                "some_future_event",
                "<Whatever>1</Whatever><Nested><A>x</A></Nested>",
            ),
        ] {
            let e = message(&format!(
                "<MsgType><![CDATA[event]]></MsgType><Event><![CDATA[{event}]]></Event>{extra}"
            ));
            assert_eq!(e.detail_type, DetailType::AuthorizerEvent, "{event}");
            assert_eq!(e.detail.event.as_deref(), Some(event));
        }
        let e = message(
            "<MsgType><![CDATA[event]]></MsgType><Event><![CDATA[weapp_audit_success]]></Event><SuccTime>1763856000</SuccTime>",
        );
        assert_eq!(e.detail.fields["SuccTime"], "1763856000");
        let e = message(
            "<MsgType><![CDATA[event]]></MsgType><Event>x</Event><Nested><A>1</A><A>2</A></Nested>",
        );
        assert_eq!(e.detail.fields["Nested.A"], "1");
        assert_eq!(e.detail.fields["Nested.A[1]"], "2");
    }

    #[test]
    fn unauthorized_component_push() {
        let xml = "<xml><AppId><![CDATA[wx1234567890abcdef]]></AppId><CreateTime>1763856000</CreateTime><InfoType><![CDATA[unauthorized]]></InfoType><AuthorizerAppid><![CDATA[wxoa00000000000001]]></AuthorizerAppid></xml>";
        let e = Event::from_component_push(xml, NOW, known())
            .unwrap()
            .unwrap();
        assert_eq!(e.detail_type, DetailType::ComponentEvent);
        assert_eq!(e.detail.appid, "wxoa00000000000001");
        assert_eq!(e.detail.event.as_deref(), Some("unauthorized"));
        assert_eq!(e.detail.fields["AppId"], "wx1234567890abcdef");
        assert_eq!(e.detail.create_time, Some(1_763_856_000));
    }

    #[test]
    fn authorized_push_loses_its_codes_and_the_ticket_is_no_event() {
        let xml = "<xml><AppId>wxc</AppId><CreateTime>1</CreateTime><InfoType>authorized</InfoType><AuthorizerAppid>wxa</AuthorizerAppid><AuthorizationCode>queryauthcode@@@SECRET1</AuthorizationCode><AuthorizationCodeExpiredTime>3601</AuthorizationCodeExpiredTime><PreAuthCode>preauthcode@@@SECRET2</PreAuthCode></xml>";
        let e = Event::from_component_push(xml, NOW, Known::default())
            .unwrap()
            .unwrap();
        let json = e.detail_json(262_000).unwrap();
        assert!(!json.contains("SECRET"), "{json}");
        assert_eq!(e.detail.fields["AuthorizationCodeExpiredTime"], "3601");
        assert!(!e.detail.authorizer_known);
        let fast = "<xml><AppId>wxc</AppId><CreateTime>1</CreateTime><InfoType>notify_third_fasteregister</InfoType><appid>wxnew</appid><status>0</status><auth_code>SECRET3</auth_code><msg>OK</msg><info><name>Acme</name><code>91310000</code></info></xml>";
        let e = Event::from_component_push(fast, NOW, Known::default())
            .unwrap()
            .unwrap();
        assert_eq!(e.detail.appid, "wxnew");
        assert_eq!(e.detail.fields["info.code"], "91310000");
        assert!(!e.detail_json(262_000).unwrap().contains("SECRET3"));
        let ticket = "<xml><AppId>wxc</AppId><CreateTime>1</CreateTime><InfoType>component_verify_ticket</InfoType><ComponentVerifyTicket>ticket@@@x</ComponentVerifyTicket></xml>";
        assert!(
            Event::from_component_push(ticket, NOW, Known::default())
                .unwrap()
                .is_none()
        );
        let unknown = "<xml><AppId>wxc</AppId><CreateTime>1</CreateTime><InfoType>notify_third_fastverifybetaapp</InfoType></xml>";
        let e = Event::from_component_push(unknown, NOW, Known::default())
            .unwrap()
            .unwrap();
        assert_eq!(e.detail.appid, "wxc");
    }

    #[test]
    fn release_test_code_in_text_is_redacted() {
        let e = message(
            "<MsgType>text</MsgType><Content>QUERY_AUTH_CODE:queryauthcode@@@SECRET</Content><MsgId>1</MsgId>",
        );
        assert_eq!(e.detail.fields["Content"], "QUERY_AUTH_CODE:<redacted>");
    }

    #[test]
    fn ids_are_stable_across_retries_and_distinct_otherwise() {
        let text = |msg_id: &str, create: &str| {
            let xml = format!(
                "<xml><ToUserName>gh</ToUserName><FromUserName>o1</FromUserName><CreateTime>{create}</CreateTime><MsgType>text</MsgType><Content>hi</Content><MsgId>{msg_id}</MsgId></xml>"
            );
            Event::from_message(APPID, &xml, NOW, known())
                .unwrap()
                .detail
                .id
        };
        // A retry: the same document, received later: the same id.
        let first = text("100", "1");
        let later = Event::from_message(
            APPID,
            "<xml><ToUserName>gh</ToUserName><FromUserName>o1</FromUserName><CreateTime>1</CreateTime><MsgType>text</MsgType><Content>hi</Content><MsgId>100</MsgId></xml>",
            NOW + 10,
            Known::default(),
        )
        .unwrap();
        assert_eq!(later.detail.id, first);
        assert_ne!(text("101", "1"), first);
        // MsgId is the key of messages: CreateTime is not part of it.
        assert_eq!(text("100", "2"), first);
        let event = |from: &str, create: &str, ev: &str, key: &str| {
            let xml = format!(
                "<xml><ToUserName>gh</ToUserName><FromUserName>{from}</FromUserName><CreateTime>{create}</CreateTime><MsgType>event</MsgType><Event>{ev}</Event><EventKey>{key}</EventKey></xml>"
            );
            Event::from_message(APPID, &xml, NOW, known())
                .unwrap()
                .detail
                .id
        };
        let base = event("o1", "5", "CLICK", "A");
        assert_eq!(event("o1", "5", "CLICK", "A"), base);
        for other in [
            event("o2", "5", "CLICK", "A"),
            event("o1", "6", "CLICK", "A"),
            event("o1", "5", "VIEW", "A"),
            event("o1", "5", "CLICK", "B"),
        ] {
            assert_ne!(other, base);
        }
        // Another authorizer's identical document is another event.
        let xml = "<xml><ToUserName>gh</ToUserName><FromUserName>o1</FromUserName><CreateTime>5</CreateTime><MsgType>event</MsgType><Event>CLICK</Event><EventKey>A</EventKey></xml>";
        let other_app = Event::from_message("wxoa00000000000002", xml, NOW, known()).unwrap();
        assert_ne!(other_app.detail.id, base);
    }

    #[test]
    fn authorization_changed_is_stable_per_cause() {
        let a = Event::authorization_changed(
            APPID,
            AuthorizationChange::NeedsReauth,
            "v7",
            10,
            NOW,
            None,
            BTreeMap::from([
                ("state".to_string(), "needs_reauth".to_string()),
                ("refresh_token".to_string(), "SECRET".to_string()),
            ]),
        );
        assert_eq!(a.detail_type, DetailType::AuthorizationChanged);
        assert_eq!(a.detail.event.as_deref(), Some("needs_reauth"));
        assert_eq!(a.detail.fields["change"], "needs_reauth");
        assert!(!a.detail_json(262_000).unwrap().contains("SECRET"));
        let again = Event::authorization_changed(
            APPID,
            AuthorizationChange::NeedsReauth,
            "v7",
            10,
            NOW + 300,
            None,
            BTreeMap::new(),
        );
        assert_eq!(again.detail.id, a.detail.id);
    }

    #[test]
    fn oversized_details_are_truncated_longest_first() {
        let big = "\u{1}".repeat(60_000);
        let e = message(&format!(
            "<MsgType>text</MsgType><Content>{big}</Content><MsgId>1</MsgId>"
        ));
        // Control characters become six-byte escapes: far over the limit.
        assert!(serde_json::to_string(&e.detail).unwrap().len() > 262_000);
        let json = e.detail_json(262_000).unwrap();
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(v["truncated"], serde_json::json!(["Content"]));
        assert_eq!(v["fields"]["Content"], "");
        assert_eq!(v["msg_id"], "1");
        assert!(matches!(e.detail_json(10), Err(EventError::TooLarge(10))));
    }

    #[test]
    fn debug_shows_no_text() {
        let e = message("<MsgType>text</MsgType><Content>private words</Content><MsgId>1</MsgId>");
        let shown = format!("{e:?}");
        assert!(shown.contains("Content"), "{shown}");
        assert!(!shown.contains("private words"), "{shown}");
    }

    #[test]
    fn secret_field_names() {
        for secret in [
            "ComponentVerifyTicket",
            "AuthorizationCode",
            "PreAuthCode",
            "auth_code",
            "Ticket",
            "authorizer_access_token",
            "refresh_token",
            "Encrypt",
            "session_key",
        ] {
            assert!(is_secret_field(secret), "{secret}");
        }
        for public in [
            "EventKey",
            "MsgId",
            "MsgID",
            "AuthorizationCodeExpiredTime",
            "code",
            "code_type",
            "ErrorCode",
            "ScanCodeInfo",
            "Content",
        ] {
            assert!(!is_secret_field(public), "{public}");
        }
    }

    fn name_strategy() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("ComponentVerifyTicket".to_string()),
            Just("AuthorizationCode".to_string()),
            Just("PreAuthCode".to_string()),
            Just("auth_code".to_string()),
            Just("Ticket".to_string()),
            Just("access_token".to_string()),
            Just("AuthorizerRefreshToken".to_string()),
            "[A-Za-z][A-Za-z0-9_]{0,12}",
        ]
    }

    proptest! {
        /// Whatever fields a push carries, no credential's value reaches the event: every value
        /// of a credential field is a marker that must not appear in the published JSON.
        #[test]
        fn no_token_or_code_ever_appears(
            fields in proptest::collection::vec((name_strategy(), "[a-z0-9@]{0,16}", any::<bool>()), 0..12),
            component in any::<bool>(),
        ) {
            let mut body = String::new();
            let mut markers = Vec::new();
            for (i, (name, value, nested)) in fields.iter().enumerate() {
                let v = if is_secret_field(name) {
                    let m = format!("SECRETMARK{i}X");
                    markers.push(m.clone());
                    m
                } else {
                    value.clone()
                };
                if *nested {
                    body.push_str(&format!("<Wrap{i}><{name}><![CDATA[{v}]]></{name}></Wrap{i}>"));
                } else {
                    body.push_str(&format!("<{name}><![CDATA[{v}]]></{name}>"));
                }
            }
            let json = if component {
                let xml = format!("<xml><AppId>wxc</AppId><CreateTime>1</CreateTime><InfoType>authorized</InfoType>{body}</xml>");
                match Event::from_component_push(&xml, NOW, Known::default()) {
                    Ok(Some(e)) => e.detail_json(262_000).unwrap(),
                    // The push's own fields may be overridden by generated ones: nothing built.
                    Ok(None) | Err(_) => return Ok(()),
                }
            } else {
                let xml = format!("<xml><ToUserName>gh</ToUserName><FromUserName>o</FromUserName><CreateTime>1</CreateTime><MsgType>event</MsgType>{body}</xml>");
                match Event::from_message(APPID, &xml, NOW, Known::default()) {
                    Ok(e) => e.detail_json(262_000).unwrap(),
                    Err(_) => return Ok(()),
                }
            };
            for m in &markers {
                prop_assert!(!json.contains(m.as_str()), "{} leaked in {}", m, json);
            }
        }
    }
}
