//! Typed inbound XML: the encrypted envelope, the component pushes and the messages.
//!
//! WeChat's documents are flat (`<xml><Field>value</Field>…`, one nested level in fast-register
//! notices), so the fields are collected as (name, value) pairs borrowed from the document,
//! nested ones looked up as `parent.child`, and mapped onto typed structs.
//!
//! Two readers, one result. The canonical shape WeChat actually sends (flat fields of text and
//! CDATA, nothing else) is read by a short scanner with no allocation per field; anything else
//! (entities, nesting, attributes, comments, DOCTYPE…) goes to one pass of quick-xml's reader,
//! which does the safety checks: DOCTYPE (and with it entity declarations) refused, undeclared
//! entities malformed, nesting bounded, exactly one root element. The scanner never rejects,
//! it only declines; a differential property test holds it to quick-xml on arbitrary and
//! mutated documents. Measured: quick-xml's per-event cost was two thirds of the push path; a
//! quick-xml + serde deserializer before that was 4–5× slower again.

use std::borrow::Cow;

use quick_xml::Reader;
use quick_xml::events::Event;
use secrecy::SecretString;

/// The text prefix of the full-network release test's third case (`QUERY_AUTH_CODE:<auth code>`):
/// what follows it is an authorization code, a secret wherever the message is kept or shown.
pub const RELEASE_QUERY_AUTH_PREFIX: &str = "QUERY_AUTH_CODE:";

/// Deepest nesting accepted. Real pushes are two levels deep (three for fast-register notices).
pub const MAX_DEPTH: usize = 8;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum XmlError {
    #[error("XML is malformed")]
    Malformed,
    #[error("DOCTYPE and entity declarations are not accepted")]
    Doctype,
    #[error("XML nests deeper than {MAX_DEPTH} levels")]
    TooDeep,
    #[error("required field {0} is missing or empty")]
    MissingField(&'static str),
}

/// One field of a flat document: its parent element (for the one nested level), its name and
/// its text. Names and values borrow from the document; a value is owned only when it had to be
/// assembled (several text pieces, entities, line-ending normalisation).
#[derive(PartialEq, Eq)]
struct Field<'a> {
    parent: Option<&'a str>,
    name: &'a str,
    value: Cow<'a, str>,
}

/// The fields of a flat document: children of the root, and their children (looked up as
/// `parent.child`).
#[derive(Default, PartialEq, Eq)]
pub struct Fields<'a>(Vec<Field<'a>>);

/// Names only: values can be tickets, codes or message text.
impl std::fmt::Debug for Fields<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.0.iter().map(|field| match field.parent {
                Some(parent) => format!("{parent}.{}", field.name),
                None => field.name.to_string(),
            }))
            .finish()
    }
}

impl<'a> Fields<'a> {
    /// The first value of `name` (or `parent.child`), trimmed; `None` when absent or blank.
    pub fn get(&self, name: &str) -> Option<&str> {
        let (parent, name) = match name.split_once('.') {
            Some((parent, child)) => (Some(parent), child),
            None => (None, name),
        };
        self.0
            .iter()
            .find(|f| f.name == name && f.parent == parent)
            .map(|f| f.value.trim())
            .filter(|v| !v.is_empty())
    }

    /// Moves the first value of `name` out, trimmed; `None` when absent or blank.
    pub fn take(&mut self, name: &str) -> Option<Cow<'a, str>> {
        let i = self
            .0
            .iter()
            .position(|f| f.name == name && f.parent.is_none())?;
        let value = self.0.swap_remove(i).value;
        let trimmed = match value {
            Cow::Borrowed(v) => Cow::Borrowed(v.trim()),
            Cow::Owned(v) if v.trim().len() == v.len() => Cow::Owned(v),
            Cow::Owned(v) => Cow::Owned(v.trim().to_string()),
        };
        Some(trimmed).filter(|v| !v.is_empty())
    }

    /// Every field in document order as (parent, name, value), values trimmed. Values can be
    /// tickets or codes: callers decide what leaves the process.
    pub fn iter(&self) -> impl Iterator<Item = (Option<&str>, &str, &str)> + '_ {
        self.0.iter().map(|f| (f.parent, f.name, f.value.trim()))
    }

    fn owned(&self, name: &str) -> Option<String> {
        self.get(name).map(str::to_string)
    }

    fn required(&self, name: &'static str) -> Result<String, XmlError> {
        self.owned(name).ok_or(XmlError::MissingField(name))
    }

    fn required_str(&self, name: &'static str) -> Result<&str, XmlError> {
        self.get(name).ok_or(XmlError::MissingField(name))
    }

    fn number(&self, name: &'static str) -> Result<i64, XmlError> {
        self.get(name)
            .and_then(|v| v.parse().ok())
            .ok_or(XmlError::MissingField(name))
    }

    fn optional_number(&self, name: &str) -> Option<i64> {
        self.get(name).and_then(|v| v.parse().ok())
    }
}

/// `part` as a slice of `input` with `input`'s lifetime. quick-xml's element names borrow from
/// the event rather than from the input, although (reading from a `&str`) they point into it;
/// this finds them there by address and checks the bytes, so nothing is copied.
fn within<'a>(input: &'a str, part: &str) -> Option<&'a str> {
    let offset = (part.as_ptr() as usize).checked_sub(input.as_ptr() as usize)?;
    input
        .get(offset..offset.checked_add(part.len())?)
        .filter(|s| *s == part)
}

/// Adds a piece of text to a value, borrowing while the value is a single piece.
fn append<'a>(value: &mut Cow<'a, str>, piece: Cow<'a, str>) {
    if value.is_empty() {
        *value = piece;
    } else {
        value.to_mut().push_str(&piece);
    }
}

/// The bytes of a name in the canonical shape: ASCII letters, digits, `_`, `-`, `.`, `:`.
const NAME_BYTE: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        table[b] = c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-' | b'.' | b':');
        b += 1;
    }
    table
};

/// Splits a canonical element name off the front of `s`.
fn canonical_name(s: &str) -> Option<(&str, &str)> {
    let end = s.bytes().position(|b| !NAME_BYTE[usize::from(b)])?;
    let (name, rest) = s.split_at_checked(end)?;
    (!name.is_empty()).then_some((name, rest))
}

/// Splits `s` before the first `<`.
fn until_tag(s: &str) -> Option<(&str, &str)> {
    s.split_at_checked(memchr::memchr(b'<', s.as_bytes())?)
}

/// Where `]]>` starts (a per-call substring searcher costs more than these short sections).
fn cdata_end(s: &[u8]) -> Option<usize> {
    let mut from = 0usize;
    loop {
        let at = from.checked_add(memchr::memchr(b']', s.get(from..)?)?)?;
        if s.get(at..at.checked_add(3)?) == Some(b"]]>".as_slice()) {
            return Some(at);
        }
        from = at.checked_add(1)?;
    }
}

/// Text the canonical shape reads as is: no entity, no carriage return (line ends would need
/// normalising), no `]` (which the general reader treats specially after `]]`).
fn plain_text(text: &str) -> bool {
    memchr::memchr3(b'&', b'\r', b']', text.as_bytes()).is_none()
}

/// Reads the canonical shape WeChat sends without the general reader: `<root>`, then flat
/// fields `<Name>` holding text and CDATA sections (no entities, no carriage returns, no
/// attributes, no nesting), `</root>`, ASCII whitespace around. Anything else returns `None`
/// and goes to the general reader, which decides. So this never rejects, and what it accepts
/// it reads exactly as the general reader does (a property test compares the two on arbitrary
/// and mutated documents). It exists for speed: quick-xml's per-event cost was two thirds of
/// the push path.
/// Public (hidden) for the property test that holds it to the general reader.
#[doc(hidden)]
pub fn canonical_fields(xml: &str) -> Option<Fields<'_>> {
    let rest = xml.trim_start_matches(|c: char| c.is_ascii_whitespace());
    let (root, rest) = canonical_name(rest.strip_prefix('<')?)?;
    let mut rest = rest.strip_prefix('>')?;
    let mut out = Fields(Vec::with_capacity(8));
    loop {
        // Between fields (ignored, as the general reader ignores it), up to the next tag.
        let (between, tag) = until_tag(rest)?;
        if !plain_text(between) {
            return None;
        }
        let tag = tag.strip_prefix('<')?;
        if let Some(close) = tag.strip_prefix('/') {
            let after = close.strip_prefix(root)?.strip_prefix('>')?;
            return after
                .bytes()
                .all(|b| b.is_ascii_whitespace())
                .then_some(out);
        }
        let (name, after) = canonical_name(tag)?;
        rest = after.strip_prefix('>')?;
        let mut value = Cow::Borrowed("");
        loop {
            if let Some(cdata) = rest.strip_prefix("<![CDATA[") {
                let end = cdata_end(cdata.as_bytes())?;
                let (content, after) = cdata.split_at_checked(end)?;
                append(&mut value, Cow::Borrowed(content));
                rest = after.strip_prefix("]]>")?;
            } else if let Some(close) = rest.strip_prefix("</") {
                rest = close.strip_prefix(name)?.strip_prefix('>')?;
                break;
            } else {
                // A `<` that opens neither CDATA nor the closing tag is nesting: not canonical.
                let (text, after) = until_tag(rest)?;
                if text.is_empty() || !plain_text(text) {
                    return None;
                }
                append(&mut value, Cow::Borrowed(text));
                rest = after;
            }
        }
        out.0.push(Field {
            parent: None,
            name,
            value,
        });
    }
}

/// Parses a document into its fields: the canonical shape directly, anything else through the
/// general reader with every safety check.
pub fn fields(xml: &str) -> Result<Fields<'_>, XmlError> {
    match canonical_fields(xml) {
        Some(fields) => Ok(fields),
        None => general_fields(xml),
    }
}

/// quick-xml's reader, one pass: DOCTYPE (and with it entity declarations) refused, undeclared
/// entities malformed, nesting bounded, exactly one root element.
pub fn general_fields(xml: &str) -> Result<Fields<'_>, XmlError> {
    let mut reader = Reader::from_str(xml);
    let mut out = Fields(Vec::with_capacity(8));
    let mut depth = 0usize;
    let mut roots = 0usize;
    // The open elements at depth 2 and 3 (a child of the root and its child) and the text of
    // the innermost one.
    let mut open: [Option<&str>; 2] = [None, None];
    let mut text: Cow<'_, str> = Cow::Borrowed("");
    loop {
        match reader.read_event().map_err(|_| XmlError::Malformed)? {
            Event::DocType(_) => return Err(XmlError::Doctype),
            Event::Start(e) => {
                depth += 1;
                if depth > MAX_DEPTH {
                    return Err(XmlError::TooDeep);
                }
                if depth == 1 {
                    roots += 1;
                } else if let Some(slot) = open.get_mut(depth - 2) {
                    *slot = Some(within(xml, e.name().0).ok_or(XmlError::Malformed)?);
                    text = Cow::Borrowed("");
                }
            }
            Event::Empty(e) => {
                if depth == 0 {
                    roots += 1;
                } else if depth <= 2 {
                    let name = within(xml, e.name().0).ok_or(XmlError::Malformed)?;
                    let parent = if depth == 2 { open[0] } else { None };
                    out.0.push(Field {
                        parent,
                        name,
                        value: Cow::Borrowed(""),
                    });
                }
            }
            Event::End(_) => {
                if (2..=3).contains(&depth) {
                    let parent = if depth == 3 { open[0] } else { None };
                    if let Some(name) = open.get_mut(depth - 2).and_then(Option::take) {
                        out.0.push(Field {
                            parent,
                            name,
                            value: std::mem::take(&mut text),
                        });
                    }
                }
                depth = depth.saturating_sub(1);
            }
            Event::Text(t) => {
                let content = t.xml10_content();
                if depth == 0 {
                    if !content.trim().is_empty() {
                        return Err(XmlError::Malformed);
                    }
                } else if (2..=3).contains(&depth) {
                    append(&mut text, content);
                }
            }
            Event::CData(c) => {
                if depth == 0 {
                    return Err(XmlError::Malformed);
                }
                if (2..=3).contains(&depth) {
                    append(&mut text, c.into_inner());
                }
            }
            Event::GeneralRef(r) => {
                // Only the predefined entities and character references exist without a DTD.
                let raw = format!("&{};", r.into_inner());
                let resolved =
                    quick_xml::escape::unescape(&raw).map_err(|_| XmlError::Malformed)?;
                if depth == 0 {
                    return Err(XmlError::Malformed);
                }
                if (2..=3).contains(&depth) {
                    append(&mut text, Cow::Owned(resolved.into_owned()));
                }
            }
            Event::Eof => break,
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) => {}
        }
    }
    if depth != 0 || roots != 1 {
        return Err(XmlError::Malformed);
    }
    Ok(out)
}

/// Rejects DOCTYPE/entity declarations and deep nesting; checks well-formedness.
pub fn check_safe(xml: &str) -> Result<(), XmlError> {
    fields(xml).map(|_| ())
}

/// The outer, still-encrypted document WeChat posts to either callback URL. Borrows from the
/// request body.
#[derive(Debug, Clone)]
pub struct Envelope<'a> {
    /// Component appid (authorization event URL).
    pub app_id: Option<Cow<'a, str>>,
    /// The authorizer's `gh_` id (message URL).
    pub to_user_name: Option<Cow<'a, str>>,
    encrypt: Cow<'a, str>,
}

impl<'a> Envelope<'a> {
    pub fn parse(xml: &'a str) -> Result<Self, XmlError> {
        let mut f = fields(xml)?;
        Ok(Self {
            encrypt: f.take("Encrypt").ok_or(XmlError::MissingField("Encrypt"))?,
            app_id: f.take("AppId"),
            to_user_name: f.take("ToUserName"),
        })
    }

    /// The `Encrypt` text.
    pub fn encrypt(&self) -> &str {
        &self.encrypt
    }
}

/// An `authorized` or `updateauthorized` push.
#[derive(Debug, Clone)]
pub struct AuthorizationEvent {
    pub component_appid: String,
    pub create_time: i64,
    pub authorizer_appid: String,
    pub authorization_code: SecretString,
    pub code_expires_at: Option<i64>,
    /// The pre-auth code of the link the merchant used (absent for authorizations made
    /// elsewhere): resolves the authorization link.
    pub pre_auth_code: Option<SecretString>,
}

/// Result of a third-party quick mini-program registration (`notify_third_fasteregister`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FastRegisterInfo {
    pub name: Option<String>,
    pub code: Option<String>,
    pub code_type: Option<i64>,
    pub legal_persona_wechat: Option<String>,
    pub legal_persona_name: Option<String>,
    pub component_phone: Option<String>,
}

#[derive(Debug, Clone)]
pub struct FastRegisterNotice {
    pub component_appid: String,
    pub create_time: i64,
    /// The new mini program's appid (absent on failure).
    pub appid: Option<String>,
    /// The task id, if the successor API's notice carries one (not documented; read when
    /// present).
    pub taskid: Option<String>,
    pub status: i64,
    pub auth_code: Option<SecretString>,
    pub msg: Option<String>,
    pub info: FastRegisterInfo,
}

/// A decrypted push to the authorization event URL.
#[derive(Debug, Clone)]
pub enum ComponentPush {
    VerifyTicket {
        component_appid: String,
        create_time: i64,
        ticket: SecretString,
    },
    Authorized(AuthorizationEvent),
    UpdateAuthorized(AuthorizationEvent),
    Unauthorized {
        component_appid: String,
        create_time: i64,
        authorizer_appid: String,
    },
    FastRegister(FastRegisterNotice),
    /// An InfoType wxopen does not act on: accepted and ignored.
    Other {
        component_appid: String,
        create_time: i64,
        info_type: String,
    },
}

impl ComponentPush {
    pub fn parse(xml: &str) -> Result<Self, XmlError> {
        let f = fields(xml)?;
        let component_appid = f.required("AppId")?;
        let create_time = f.number("CreateTime")?;
        let info_type = f.required_str("InfoType")?;
        let authorization = || -> Result<AuthorizationEvent, XmlError> {
            Ok(AuthorizationEvent {
                component_appid: component_appid.clone(),
                create_time,
                authorizer_appid: f.required("AuthorizerAppid")?,
                authorization_code: f.required("AuthorizationCode")?.into(),
                code_expires_at: f.optional_number("AuthorizationCodeExpiredTime"),
                pre_auth_code: f.owned("PreAuthCode").map(Into::into),
            })
        };
        Ok(match info_type {
            "component_verify_ticket" => ComponentPush::VerifyTicket {
                ticket: f.required("ComponentVerifyTicket")?.into(),
                component_appid,
                create_time,
            },
            "authorized" => ComponentPush::Authorized(authorization()?),
            "updateauthorized" => ComponentPush::UpdateAuthorized(authorization()?),
            "unauthorized" => ComponentPush::Unauthorized {
                authorizer_appid: f.required("AuthorizerAppid")?,
                component_appid,
                create_time,
            },
            "notify_third_fasteregister" => ComponentPush::FastRegister(FastRegisterNotice {
                component_appid,
                create_time,
                appid: f.owned("appid"),
                taskid: f.owned("taskid"),
                status: f.number("status")?,
                auth_code: f.owned("auth_code").map(Into::into),
                msg: f.owned("msg"),
                info: FastRegisterInfo {
                    name: f.owned("info.name"),
                    code: f.owned("info.code"),
                    code_type: f.optional_number("info.code_type"),
                    legal_persona_wechat: f.owned("info.legal_persona_wechat"),
                    legal_persona_name: f.owned("info.legal_persona_name"),
                    component_phone: f.owned("info.component_phone"),
                },
            }),
            _ => ComponentPush::Other {
                info_type: info_type.to_string(),
                component_appid,
                create_time,
            },
        })
    }

    /// The InfoType, for logs and push records (never a secret).
    pub fn info_type(&self) -> &str {
        match self {
            ComponentPush::VerifyTicket { .. } => "component_verify_ticket",
            ComponentPush::Authorized(_) => "authorized",
            ComponentPush::UpdateAuthorized(_) => "updateauthorized",
            ComponentPush::Unauthorized { .. } => "unauthorized",
            ComponentPush::FastRegister(_) => "notify_third_fasteregister",
            ComponentPush::Other { info_type, .. } => info_type,
        }
    }

    /// The component appid stated inside the push.
    pub fn component_appid(&self) -> &str {
        match self {
            ComponentPush::VerifyTicket {
                component_appid, ..
            }
            | ComponentPush::Unauthorized {
                component_appid, ..
            }
            | ComponentPush::Other {
                component_appid, ..
            } => component_appid,
            ComponentPush::Authorized(a) | ComponentPush::UpdateAuthorized(a) => &a.component_appid,
            ComponentPush::FastRegister(f) => &f.component_appid,
        }
    }
}

/// A decrypted message or event pushed to the message URL.
#[derive(Debug, Clone)]
pub struct Message {
    /// The account's `gh_` id.
    pub to_user_name: String,
    /// The user's openid.
    pub from_user_name: String,
    pub create_time: Option<String>,
    pub msg_type: String,
    pub content: Option<String>,
    pub msg_id: Option<String>,
    pub event: Option<String>,
    pub event_key: Option<String>,
    pub ticket: Option<String>,
}

impl Message {
    pub fn parse(xml: &str) -> Result<Self, XmlError> {
        let f = fields(xml)?;
        Ok(Self {
            to_user_name: f.required("ToUserName")?,
            from_user_name: f.required("FromUserName")?,
            create_time: f.owned("CreateTime"),
            msg_type: f.required("MsgType")?,
            content: f.owned("Content"),
            msg_id: f.owned("MsgId"),
            event: f.owned("Event"),
            event_key: f.owned("EventKey"),
            ticket: f.owned("Ticket"),
        })
    }
}

/// Wraps text in CDATA, splitting any `]]>` inside it.
pub fn cdata(text: &str) -> String {
    format!("<![CDATA[{}]]>", text.replace("]]>", "]]]]><![CDATA[>"))
}

/// A passive text reply (plaintext; encrypt it before answering).
pub fn text_reply(to_openid: &str, from_gh_id: &str, create_time: i64, content: &str) -> String {
    format!(
        "<xml><ToUserName>{}</ToUserName><FromUserName>{}</FromUserName><CreateTime>{create_time}</CreateTime><MsgType><![CDATA[text]]></MsgType><Content>{}</Content></xml>",
        cdata(to_openid),
        cdata(from_gh_id),
        cdata(content)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    const TICKET: &str = "<xml><AppId><![CDATA[wx1234567890abcdef]]></AppId><CreateTime>1763856000</CreateTime><InfoType><![CDATA[component_verify_ticket]]></InfoType><ComponentVerifyTicket><![CDATA[ticket@@@example-ticket-value]]></ComponentVerifyTicket></xml>";

    #[test]
    fn parses_ticket() {
        match ComponentPush::parse(TICKET).unwrap() {
            ComponentPush::VerifyTicket {
                component_appid,
                create_time,
                ticket,
            } => {
                assert_eq!(component_appid, "wx1234567890abcdef");
                assert_eq!(create_time, 1763856000);
                assert_eq!(ticket.expose_secret(), "ticket@@@example-ticket-value");
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn debug_never_shows_secrets() {
        let push = ComponentPush::parse(TICKET).unwrap();
        assert!(!format!("{push:?}").contains("example-ticket-value"));
        let shown = format!("{:?}", fields(TICKET).unwrap());
        assert!(shown.contains("ComponentVerifyTicket"), "{shown}");
        assert!(!shown.contains("example-ticket-value"), "{shown}");
    }

    #[test]
    fn parses_authorized_and_update() {
        for (kind, is_update) in [("authorized", false), ("updateauthorized", true)] {
            let xml = format!(
                "<xml><AppId>wxc</AppId><CreateTime>1413192760</CreateTime><InfoType>{kind}</InfoType><AuthorizerAppid>wxa</AuthorizerAppid><AuthorizationCode>code-1</AuthorizationCode><AuthorizationCodeExpiredTime>1413196360</AuthorizationCodeExpiredTime><PreAuthCode>pre</PreAuthCode></xml>"
            );
            let push = ComponentPush::parse(&xml).unwrap();
            assert_eq!(push.info_type(), kind);
            let a = match push {
                ComponentPush::Authorized(a) if !is_update => a,
                ComponentPush::UpdateAuthorized(a) if is_update => a,
                other => panic!("unexpected {other:?}"),
            };
            assert_eq!(a.authorizer_appid, "wxa");
            assert_eq!(a.authorization_code.expose_secret(), "code-1");
            assert_eq!(a.code_expires_at, Some(1413196360));
        }
    }

    #[test]
    fn parses_unauthorized() {
        let xml = "<xml><AppId>wxc</AppId><CreateTime>1413192760</CreateTime><InfoType>unauthorized</InfoType><AuthorizerAppid>wxa</AuthorizerAppid></xml>";
        assert!(matches!(
            ComponentPush::parse(xml).unwrap(),
            ComponentPush::Unauthorized { authorizer_appid, create_time: 1413192760, .. } if authorizer_appid == "wxa"
        ));
    }

    #[test]
    fn parses_fast_register() {
        let xml = "<xml><AppId><![CDATA[wxc]]></AppId><CreateTime>1535442403</CreateTime><InfoType><![CDATA[notify_third_fasteregister]]></InfoType><appid>wxnew</appid><status>0</status><auth_code>xxx</auth_code><msg>OK</msg><info><name><![CDATA[company]]></name><code><![CDATA[123]]></code><code_type>1</code_type><legal_persona_wechat><![CDATA[wx]]></legal_persona_wechat><legal_persona_name><![CDATA[name]]></legal_persona_name><component_phone><![CDATA[1234567]]></component_phone></info></xml>";
        match ComponentPush::parse(xml).unwrap() {
            ComponentPush::FastRegister(f) => {
                assert_eq!(f.appid.as_deref(), Some("wxnew"));
                assert_eq!(f.status, 0);
                assert_eq!(f.info.code_type, Some(1));
                assert_eq!(f.info.name.as_deref(), Some("company"));
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn unknown_info_type_is_other() {
        let xml = "<xml><AppId>wxc</AppId><CreateTime>1</CreateTime><InfoType>notify_third_fastverifybetaapp</InfoType><Extra><Nested>1</Nested></Extra></xml>";
        assert!(matches!(
            ComponentPush::parse(xml).unwrap(),
            ComponentPush::Other { info_type, .. } if info_type == "notify_third_fastverifybetaapp"
        ));
    }

    #[test]
    fn missing_fields_are_named() {
        let xml = "<xml><AppId>wxc</AppId><CreateTime>1</CreateTime><InfoType>component_verify_ticket</InfoType></xml>";
        assert_eq!(
            ComponentPush::parse(xml).unwrap_err(),
            XmlError::MissingField("ComponentVerifyTicket")
        );
        let xml = "<xml><AppId>wxc</AppId><InfoType>unauthorized</InfoType></xml>";
        assert_eq!(
            ComponentPush::parse(xml).unwrap_err(),
            XmlError::MissingField("CreateTime")
        );
        let xml = "<xml><AppId>wxc</AppId><CreateTime>x</CreateTime><InfoType>unauthorized</InfoType></xml>";
        assert_eq!(
            ComponentPush::parse(xml).unwrap_err(),
            XmlError::MissingField("CreateTime")
        );
    }

    #[test]
    fn envelope_parses_both_shapes() {
        let e = Envelope::parse(
            "<xml><AppId><![CDATA[wxc]]></AppId><Encrypt><![CDATA[abc]]></Encrypt></xml>",
        )
        .unwrap();
        assert_eq!(e.app_id.as_deref(), Some("wxc"));
        assert_eq!(e.encrypt(), "abc");
        let e = Envelope::parse("<xml><ToUserName><![CDATA[gh_1]]></ToUserName><Encrypt><![CDATA[abc]]></Encrypt></xml>").unwrap();
        assert_eq!(e.to_user_name.as_deref(), Some("gh_1"));
        assert_eq!(
            Envelope::parse("<xml><AppId>wxc</AppId></xml>").unwrap_err(),
            XmlError::MissingField("Encrypt")
        );
    }

    #[test]
    fn rejects_doctype_and_entities() {
        let lol = r#"<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;">]><xml><Encrypt>&lol2;</Encrypt></xml>"#;
        assert_eq!(Envelope::parse(lol).unwrap_err(), XmlError::Doctype);
        let ext = r#"<!DOCTYPE xml SYSTEM "file:///etc/passwd"><xml><Encrypt>a</Encrypt></xml>"#;
        assert_eq!(Envelope::parse(ext).unwrap_err(), XmlError::Doctype);
        // An undeclared entity reference without a DOCTYPE is malformed, not expanded.
        let undeclared = "<xml><Encrypt>&xxe;</Encrypt></xml>";
        assert_eq!(
            Envelope::parse(undeclared).unwrap_err(),
            XmlError::Malformed
        );
    }

    #[test]
    fn parses_messages_and_builds_replies() {
        let m = Message::parse("<xml><ToUserName><![CDATA[gh_1]]></ToUserName><FromUserName><![CDATA[o1]]></FromUserName><CreateTime>1</CreateTime><MsgType><![CDATA[event]]></MsgType><Event><![CDATA[subscribe]]></Event><EventKey><![CDATA[qrscene_abc]]></EventKey><Ticket><![CDATA[t]]></Ticket></xml>").unwrap();
        assert_eq!(
            (m.event.as_deref(), m.event_key.as_deref()),
            (Some("subscribe"), Some("qrscene_abc"))
        );
        assert_eq!(
            Message::parse("<xml><ToUserName>gh</ToUserName><MsgType>text</MsgType></xml>")
                .unwrap_err(),
            XmlError::MissingField("FromUserName")
        );
        let reply = text_reply("o1", "gh_1", 5, "a]]>b");
        assert!(reply.contains("<Content><![CDATA[a]]]]><![CDATA[>b]]></Content>"));
        check_safe(&reply).unwrap();
    }

    #[test]
    fn entities_and_character_references_resolve() {
        let m = Message::parse("<xml><ToUserName>gh</ToUserName><FromUserName>o</FromUserName><MsgType>text</MsgType><Content>a &amp; b &lt;c&gt; &#x4F60;&#22909;</Content></xml>").unwrap();
        assert_eq!(m.content.as_deref(), Some("a & b <c> 你好"));
        assert_eq!(fields("<xml><![CDATA[x]]></xml>").unwrap().get("x"), None);
        assert_eq!(
            fields("<![CDATA[x]]><xml/>").unwrap_err(),
            XmlError::Malformed
        );
        assert_eq!(fields("&amp;<xml/>").unwrap_err(), XmlError::Malformed);
    }

    #[test]
    fn rejects_malformed_and_deep() {
        for bad in [
            "",
            "not xml",
            "<xml><Encrypt>a</Encrypt>",
            "<xml><Encrypt>a</Wrong></xml>",
            "<xml><Encrypt>a</Encrypt></xml><xml/>",
            "junk<xml><Encrypt>a</Encrypt></xml>",
        ] {
            assert!(Envelope::parse(bad).is_err(), "{bad:?}");
        }
        let deep = format!("{}{}", "<a>".repeat(100_000), "</a>".repeat(100_000));
        assert_eq!(check_safe(&deep).unwrap_err(), XmlError::TooDeep);
    }
}
