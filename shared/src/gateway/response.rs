//! WeChat's answer: errcode sniffing (JSON bodies only, bounded), text or binary, and the size
//! it will have in Lambda's response payload.
//!
//! WeChat reports errors as HTTP 200 with a small JSON body, also for APIs whose success is an
//! image: decide by `Content-Type` (fallback: a body that starts with `{` under a text or missing
//! content type), never by status (wechat-spec-platform.md §8).

use serde::Deserialize;

use crate::wechat::forward::RawResponse;

/// Only bodies up to this size are parsed for an errcode (WeChat's error bodies are under 200
/// bytes; a large JSON body is a successful answer).
pub const MAX_SNIFF_BYTES: usize = 64 * 1024;

/// Lambda's synchronous response payload limit (6 MB), of which this much is kept for the
/// envelope (status, headers, `isBase64Encoded`).
pub const LAMBDA_RESPONSE_LIMIT: usize = crate::config::LAMBDA_PAYLOAD_LIMIT as usize;
pub const ENVELOPE_RESERVE: usize = 16 * 1024;

fn media_type(content_type: Option<&str>) -> String {
    content_type
        .and_then(|c| c.split(';').next())
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase()
}

/// Whether the answer is JSON (so may carry an errcode).
pub fn looks_json(content_type: Option<&str>, body: &[u8]) -> bool {
    let media = media_type(content_type);
    if media.contains("json") {
        return true;
    }
    let textual = media.is_empty() || media.starts_with("text/");
    textual
        && body
            .iter()
            .find(|b| !b.is_ascii_whitespace())
            .is_some_and(|b| *b == b'{')
}

#[derive(Deserialize)]
struct Probe {
    #[serde(default)]
    errcode: Option<i64>,
}

/// WeChat's `errcode`, when the answer is a JSON object (of at most [`MAX_SNIFF_BYTES`]) that has
/// one.
pub fn errcode(resp: &RawResponse) -> Option<i64> {
    let object = resp
        .body
        .iter()
        .find(|b| !b.is_ascii_whitespace())
        .is_some_and(|b| *b == b'{');
    // (serde would also read a struct from a JSON array: only objects are probed.)
    if !object
        || resp.body.len() > MAX_SNIFF_BYTES
        || !looks_json(resp.content_type.as_deref(), &resp.body)
    {
        return None;
    }
    serde_json::from_slice::<Probe>(&resp.body)
        .ok()
        .and_then(|p| p.errcode)
}

/// Whether the body goes back as text (else binary, which API Gateway base64-encodes): a
/// textual content type and valid UTF-8.
pub fn is_text(content_type: Option<&str>, body: &[u8]) -> bool {
    let media = media_type(content_type);
    let textual = media.starts_with("text/")
        || media.contains("json")
        || media.contains("xml")
        || media.contains("javascript");
    textual && std::str::from_utf8(body).is_ok()
}

/// Bytes the body takes in Lambda's JSON response payload: base64 for binary; for text, one more
/// byte per `"` or `\`, five more per control character (`\u00XX`).
pub fn encoded_len(body: &[u8], text: bool) -> usize {
    if text {
        body.iter().fold(body.len(), |n, b| match b {
            b'"' | b'\\' => n.saturating_add(1),
            0..=0x1f => n.saturating_add(5),
            _ => n,
        })
    } else {
        body.len().div_ceil(3).saturating_mul(4)
    }
}

/// The budget a body may use in the payload, given the total limit.
pub fn body_budget(limit: usize) -> usize {
    limit.saturating_sub(ENVELOPE_RESERVE)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resp(ct: Option<&str>, body: &[u8]) -> RawResponse {
        RawResponse {
            status: 200,
            content_type: ct.map(str::to_string),
            content_disposition: None,
            body: body.to_vec(),
        }
    }

    #[test]
    fn errcode_is_read_from_json_bodies_only() {
        let err = br#"{"errcode":40001,"errmsg":"invalid credential"}"#;
        assert_eq!(
            errcode(&resp(Some("application/json; encoding=utf-8"), err)),
            Some(40001)
        );
        assert_eq!(errcode(&resp(Some("text/plain"), err)), Some(40001));
        assert_eq!(errcode(&resp(None, b"  {\"errcode\":-1}")), Some(-1));
        assert_eq!(
            errcode(&resp(Some("application/json"), br#"{"errcode":0}"#)),
            Some(0)
        );
        assert_eq!(
            errcode(&resp(Some("application/json"), br#"{"button":[]}"#)),
            None
        );
        // An image that happens to start with '{' is an image.
        assert_eq!(errcode(&resp(Some("image/jpeg"), err)), None);
        assert_eq!(errcode(&resp(Some("application/octet-stream"), err)), None);
        // Not JSON, not an object, a string errcode: no errcode, no failure.
        assert_eq!(errcode(&resp(Some("application/json"), b"{oops")), None);
        assert_eq!(errcode(&resp(Some("application/json"), b"[1]")), None);
        assert_eq!(
            errcode(&resp(Some("application/json"), br#"{"errcode":"40001"}"#)),
            None
        );
        // Bounded: a huge JSON body is not parsed.
        let mut big = br#"{"errcode":45009,"pad":""#.to_vec();
        big.extend(std::iter::repeat_n(b'a', MAX_SNIFF_BYTES));
        big.extend(br#""}"#);
        assert_eq!(errcode(&resp(Some("application/json"), &big)), None);
    }

    #[test]
    fn text_or_binary() {
        assert!(is_text(Some("application/json; encoding=utf-8"), b"{}"));
        assert!(is_text(Some("text/plain"), b"ok"));
        assert!(!is_text(Some("image/jpeg"), b"\xff\xd8"));
        assert!(!is_text(Some("text/plain"), b"\xff\xfe"));
        assert!(!is_text(None, b"{}"));
    }

    #[test]
    fn payload_sizes() {
        assert_eq!(encoded_len(&[0; 3], false), 4);
        assert_eq!(encoded_len(&[0; 4], false), 8);
        assert_eq!(encoded_len(b"", false), 0);
        assert_eq!(encoded_len(br#"{"a":"\n"}"#, true), 10 + 4 + 1);
        assert_eq!(encoded_len(b"a\nb", true), 3 + 5);
        assert_eq!(
            body_budget(LAMBDA_RESPONSE_LIMIT),
            6 * 1024 * 1024 - 16 * 1024
        );
        assert_eq!(body_budget(10), 0);
    }
}
