//! Opening a WeChat push: the checks both callback URLs share, in order: size, query parameters,
//! timestamp window, envelope XML, `msg_signature`, decryption (current key, then the previous
//! one during a rotation) with the receive-id check.

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};

use crate::crypto::{self, AesKey, CryptoError};
use crate::secrets::ComponentCredentials;
use crate::xml::{Envelope, XmlError};

/// Largest body accepted. Real pushes are well under 4 KiB.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PushError {
    #[error("request body exceeds {MAX_BODY_BYTES} bytes")]
    TooLarge,
    #[error("request body is empty")]
    EmptyBody,
    #[error("query parameter {0} is missing")]
    MissingParameter(&'static str),
    #[error("query parameter {0} is invalid")]
    InvalidParameter(&'static str),
    #[error("timestamp is outside the accepted window")]
    StaleTimestamp,
    #[error("{0}")]
    Xml(#[from] XmlError),
    #[error("{0}")]
    Crypto(#[from] CryptoError),
}

/// The query string WeChat adds to each push.
#[derive(Debug, Clone, Default)]
pub struct PushQuery {
    pub timestamp: Option<String>,
    pub nonce: Option<String>,
    pub msg_signature: Option<String>,
    pub encrypt_type: Option<String>,
}

fn param<'a>(value: &'a Option<String>, name: &'static str) -> Result<&'a str, PushError> {
    match value.as_deref().map(str::trim) {
        Some(v) if !v.is_empty() => Ok(v),
        _ => Err(PushError::MissingParameter(name)),
    }
}

/// A verified, decrypted push. The plaintext is secret: it never reaches logs.
pub struct OpenedPush<'a> {
    pub envelope: Envelope<'a>,
    pub plaintext: SecretString,
    /// `timestamp:nonce:msg_signature`: identifies a delivery and its retries.
    pub dedupe_key: String,
    /// The key that decrypted the push (the current one, or the previous one during a
    /// rotation): a passive reply is encrypted with it.
    pub key: AesKey,
}

impl std::fmt::Debug for OpenedPush<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenedPush")
            .field("dedupe_key", &self.dedupe_key)
            .field("plaintext", &"<redacted>")
            .finish()
    }
}

/// `timestamp:nonce:msg_signature` (signature lowercased), built in one allocation.
fn dedupe_key(timestamp: &str, nonce: &str, msg_signature: &str) -> String {
    let mut key = String::with_capacity(timestamp.len() + nonce.len() + msg_signature.len() + 2);
    key.push_str(timestamp);
    key.push(':');
    key.push_str(nonce);
    key.push(':');
    let signature_at = key.len();
    key.push_str(msg_signature);
    if let Some((_, signature)) = key.split_at_mut_checked(signature_at) {
        signature.make_ascii_lowercase();
    }
    key
}

/// Runs every check on a push and decrypts it.
pub fn open<'a>(
    creds: &ComponentCredentials,
    query: &PushQuery,
    body: &'a [u8],
    now: i64,
    window: Duration,
) -> Result<OpenedPush<'a>, PushError> {
    if body.len() > MAX_BODY_BYTES {
        return Err(PushError::TooLarge);
    }
    let timestamp = param(&query.timestamp, "timestamp")?;
    let nonce = param(&query.nonce, "nonce")?;
    let msg_signature = param(&query.msg_signature, "msg_signature")?;
    if let Some(t) = query.encrypt_type.as_deref().map(str::trim)
        && !t.is_empty()
        && t != "aes"
    {
        return Err(PushError::InvalidParameter("encrypt_type"));
    }
    let ts: i64 = timestamp
        .parse()
        .map_err(|_| PushError::InvalidParameter("timestamp"))?;
    let window = i64::try_from(window.as_secs()).unwrap_or(i64::MAX);
    if now.abs_diff(ts) > window.unsigned_abs() {
        return Err(PushError::StaleTimestamp);
    }
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(PushError::EmptyBody);
    }
    let text = std::str::from_utf8(body).map_err(|_| XmlError::Malformed)?;
    let envelope = Envelope::parse(text)?;
    crypto::verify_msg_signature(
        creds.token.expose_secret(),
        timestamp,
        nonce,
        envelope.encrypt(),
        msg_signature,
    )?;
    let mut first_err = None;
    let mut plaintext = None;
    for key in creds.keys() {
        match key.decrypt(envelope.encrypt(), &creds.component_appid) {
            Ok(p) => {
                plaintext = Some((p, key.clone()));
                break;
            }
            Err(e) => {
                first_err.get_or_insert(e);
            }
        }
    }
    let (plaintext, key) = match (plaintext, first_err) {
        (Some(p), _) => p,
        (None, Some(e)) => return Err(e.into()),
        (None, None) => return Err(CryptoError::BadKey.into()),
    };
    Ok(OpenedPush {
        envelope,
        plaintext,
        dedupe_key: dedupe_key(timestamp, nonce, msg_signature),
        key,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG";
    const OLD_KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8";
    const NOW: i64 = 1_763_856_000;

    fn creds() -> ComponentCredentials {
        ComponentCredentials::new("wxc", "secret", "tok", KEY).unwrap()
    }

    fn sealed(key: &str, ts: i64) -> (PushQuery, String) {
        let key = AesKey::from_encoding_aes_key(key).unwrap();
        let ts = ts.to_string();
        let s = crypto::seal(&key, "tok", "wxc", "<xml><A>1</A></xml>", &ts, "n1").unwrap();
        let body = format!(
            "<xml><AppId>wxc</AppId><Encrypt><![CDATA[{}]]></Encrypt></xml>",
            s.encrypt
        );
        let q = PushQuery {
            timestamp: Some(ts),
            nonce: Some("n1".into()),
            msg_signature: Some(s.msg_signature),
            encrypt_type: Some("aes".into()),
        };
        (q, body)
    }

    fn open_at<'a>(
        c: &ComponentCredentials,
        q: &PushQuery,
        body: &'a str,
        now: i64,
    ) -> Result<OpenedPush<'a>, PushError> {
        open(c, q, body.as_bytes(), now, Duration::from_secs(300))
    }

    #[test]
    fn opens_a_good_push() {
        let (q, body) = sealed(KEY, NOW);
        let p = open_at(&creds(), &q, &body, NOW + 299).unwrap();
        assert_eq!(p.plaintext.expose_secret(), "<xml><A>1</A></xml>");
        assert!(p.dedupe_key.starts_with("1763856000:n1:"));
        // A retry with the signature in upper case is the same delivery.
        let mut upper = q.clone();
        upper.msg_signature = q.msg_signature.as_deref().map(str::to_ascii_uppercase);
        let again = open_at(&creds(), &upper, &body, NOW).unwrap();
        assert_eq!(again.dedupe_key, p.dedupe_key);
        assert_eq!(
            p.dedupe_key,
            format!("1763856000:n1:{}", q.msg_signature.as_deref().unwrap())
        );
        assert!(!format!("{p:?}").contains("<A>"));
    }

    #[test]
    fn previous_key_accepted_during_rotation() {
        let (q, body) = sealed(OLD_KEY, NOW);
        assert!(matches!(
            open_at(&creds(), &q, &body, NOW).unwrap_err(),
            PushError::Crypto(_)
        ));
        let rotating = creds().with_previous_key(OLD_KEY).unwrap();
        let opened = open_at(&rotating, &q, &body, NOW).unwrap();
        assert!(opened.key == AesKey::from_encoding_aes_key(OLD_KEY).unwrap());
        let (q, body) = sealed(KEY, NOW);
        let opened = open_at(&rotating, &q, &body, NOW).unwrap();
        assert!(&opened.key == rotating.current_key());
    }

    #[test]
    fn each_check_has_its_error() {
        let c = creds();
        let (q, body) = sealed(KEY, NOW);
        assert_eq!(
            open_at(&c, &q, &body, NOW + 301).unwrap_err(),
            PushError::StaleTimestamp
        );
        assert_eq!(
            open_at(&c, &q, &body, NOW - 301).unwrap_err(),
            PushError::StaleTimestamp
        );
        let big = "x".repeat(MAX_BODY_BYTES + 1);
        assert_eq!(open_at(&c, &q, &big, NOW).unwrap_err(), PushError::TooLarge);
        assert_eq!(
            open_at(&c, &q, "  ", NOW).unwrap_err(),
            PushError::EmptyBody
        );
        for (field, name) in [(0, "timestamp"), (1, "nonce"), (2, "msg_signature")] {
            let mut q2 = q.clone();
            match field {
                0 => q2.timestamp = None,
                1 => q2.nonce = Some(String::new()),
                _ => q2.msg_signature = None,
            }
            assert_eq!(
                open_at(&c, &q2, &body, NOW).unwrap_err(),
                PushError::MissingParameter(name)
            );
        }
        let mut q2 = q.clone();
        q2.timestamp = Some("soon".into());
        assert_eq!(
            open_at(&c, &q2, &body, NOW).unwrap_err(),
            PushError::InvalidParameter("timestamp")
        );
        let mut q2 = q.clone();
        q2.encrypt_type = Some("raw".into());
        assert_eq!(
            open_at(&c, &q2, &body, NOW).unwrap_err(),
            PushError::InvalidParameter("encrypt_type")
        );
        let mut q2 = q.clone();
        q2.nonce = Some("n2".into());
        assert_eq!(
            open_at(&c, &q2, &body, NOW).unwrap_err(),
            PushError::Crypto(CryptoError::BadSignature)
        );
        assert_eq!(
            open_at(&c, &q, "<xml><Encrypt>", NOW).unwrap_err(),
            PushError::Xml(XmlError::Malformed)
        );
        assert_eq!(
            open(&c, &q, &[0xff, 0xfe], NOW, Duration::from_secs(300)).unwrap_err(),
            PushError::Xml(XmlError::Malformed)
        );
        let other = ComponentCredentials::new("wxother", "secret", "tok", KEY).unwrap();
        assert_eq!(
            open_at(&other, &q, &body, NOW).unwrap_err(),
            PushError::Crypto(CryptoError::WrongAppId)
        );
    }
}
