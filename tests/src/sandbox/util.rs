//! Small helpers: random identifiers, deterministic hashes, XML text, JSON field access.

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::Value;

const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// Real unix time in seconds.
pub fn real_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// A message's `MsgId`: 19 random digits, as WeChat's are (each message its own, so a platform
/// deduplicating on it sees a new message, and a retry carries the same one).
pub fn msg_id() -> String {
    format!(
        "{}{}",
        random_from(b"123456789", 1),
        random_from(b"0123456789", 18)
    )
}

/// `len` random characters from `alphabet`.
pub fn random_from(alphabet: &[u8], len: usize) -> String {
    let mut bytes = vec![0u8; len];
    rand::fill(&mut bytes[..]);
    bytes
        .iter()
        .map(|b| char::from(alphabet[usize::from(*b) % alphabet.len()]))
        .collect()
}

pub fn random_alnum(len: usize) -> String {
    random_from(ALNUM, len)
}

pub fn random_hex(len: usize) -> String {
    random_from(b"0123456789abcdef", len)
}

/// A nonce for push query strings (digits, like WeChat's).
pub fn random_nonce() -> String {
    random_from(b"0123456789", 10)
}

/// First `len` hex characters of sha1 over the parts joined with a separator.
pub fn short_hash(parts: &[&str], len: usize) -> String {
    let joined = parts.join("\u{1f}");
    let mut one = [joined.as_str()];
    let full = wxopen::crypto::sorted_sha1(&mut one);
    full.chars().take(len).collect()
}

/// The openid of `user` in account `appid` (28 characters, like WeChat's).
pub fn openid(appid: &str, user: &str) -> String {
    format!("o{}", short_hash(&["openid", appid, user], 27))
}

/// The unionid of `user` under open account `open_appid`.
pub fn unionid(open_appid: &str, user: &str) -> String {
    format!("u{}", short_hash(&["unionid", open_appid, user], 27))
}

/// A CDATA section holding any text (a `]]>` inside is split across two sections).
pub fn cdata(text: &str) -> String {
    format!("<![CDATA[{}]]>", text.replace("]]>", "]]]]><![CDATA[>"))
}

/// Escapes text for HTML.
pub fn html_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// The text of the first `<tag>…</tag>` of a flat WeChat XML document, CDATA unwrapped. Callers
/// run `wxopen::xml::check_safe` first; this never panics on any input.
pub fn xml_field(xml: &str, tag: &str) -> Option<String> {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    let start = xml.find(&open)? + open.len();
    let end = start + xml.get(start..)?.find(&close)?;
    let raw = xml.get(start..end)?;
    let mut out = String::new();
    let mut rest = raw;
    while let Some(i) = rest.find("<![CDATA[") {
        out.push_str(&unescape(&rest[..i]));
        let after = &rest[i + 9..];
        match after.find("]]>") {
            Some(j) => {
                out.push_str(&after[..j]);
                rest = &after[j + 3..];
            }
            None => {
                out.push_str(after);
                rest = "";
            }
        }
    }
    out.push_str(&unescape(rest));
    Some(out.trim().to_string())
}

fn unescape(text: &str) -> String {
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

/// Parses a JSON object body; `None` for anything else (bad UTF-8, bad JSON, not an object).
pub fn json_object(body: &[u8]) -> Option<serde_json::Map<String, Value>> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Some(serde_json::Map::new());
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Some(map),
        _ => None,
    }
}

/// A string field (numbers are accepted and rendered, as WeChat is lenient about that).
pub fn str_field(obj: &serde_json::Map<String, Value>, key: &str) -> Option<String> {
    match obj.get(key)? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// An integer field (numeric strings accepted). `Err(())` when present but not an integer.
#[allow(clippy::result_unit_err)]
pub fn int_field(obj: &serde_json::Map<String, Value>, key: &str) -> Result<Option<i64>, ()> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n.as_i64().map(Some).ok_or(()),
        Some(Value::String(s)) => s.trim().parse().map(Some).map_err(|_| ()),
        Some(_) => Err(()),
    }
}

/// A list of permission-set ids: `[1, 2]` or `[{"funcscope_category": {"id": 1}}]`.
pub fn func_ids(value: &Value) -> Option<Vec<u32>> {
    let list = value.as_array()?;
    let mut out = Vec::with_capacity(list.len());
    for item in list {
        let id = item
            .as_u64()
            .or_else(|| item.pointer("/funcscope_category/id")?.as_u64())?;
        out.push(u32::try_from(id).ok()?);
    }
    Some(out)
}

/// `func_info` as WeChat renders it.
pub fn func_info_json(ids: &[u32]) -> Value {
    Value::Array(
        ids.iter()
            .map(|id| serde_json::json!({ "funcscope_category": { "id": id } }))
            .collect(),
    )
}

/// Truncates a response body kept in records.
pub fn truncate(mut text: String, max: usize) -> String {
    if text.len() > max {
        let mut cut = max;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
        text.push('…');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xml_field_handles_cdata_and_garbage() {
        let xml = "<xml><A><![CDATA[x]]]]><![CDATA[>y]]></A><B>1 &amp; 2</B><C><![CDATA[open</C>";
        assert_eq!(xml_field(xml, "A").as_deref(), Some("x]]>y"));
        assert_eq!(xml_field(xml, "B").as_deref(), Some("1 & 2"));
        assert_eq!(xml_field(xml, "D"), None);
        assert_eq!(xml_field("<A>", "A"), None);
        assert_eq!(
            xml_field(&format!("<xml><A>{}</A></xml>", cdata("a]]>b")), "A").as_deref(),
            Some("a]]>b")
        );
    }

    #[test]
    fn ids_are_stable() {
        assert_eq!(openid("wx1", "alice"), openid("wx1", "alice"));
        assert_ne!(openid("wx1", "alice"), openid("wx2", "alice"));
        assert_eq!(openid("wx1", "alice").len(), 28);
        assert!(unionid("wxo", "alice").starts_with('u'));
    }
}
