//! The component's credentials: one JSON secret in Secrets Manager, fetched once and cached.
//!
//! Secret JSON:
//! `{"component_appid","component_appsecret","token","encoding_aes_key","previous_encoding_aes_key"?,"reply_hook_secret"?}`.
//!
//! `reply_hook_secret` signs the body of the HTTPS reply hook (`reply::hook`); it is needed only
//! when `ReplyHookUrl` is set.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use tokio::sync::RwLock;

use crate::crypto::{AesKey, CryptoError};

#[derive(Debug, thiserror::Error)]
pub enum SecretsError {
    #[error("the credentials secret is not filled in yet (see README: filling the secret)")]
    NotConfigured,
    #[error("the credentials secret is invalid: {0}")]
    Invalid(&'static str),
    #[error("the credentials secret could not be read")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// Validated component credentials. `Debug` shows only the appid.
#[derive(Clone)]
pub struct ComponentCredentials {
    pub component_appid: String,
    pub component_appsecret: SecretString,
    pub token: SecretString,
    current_key: AesKey,
    /// Accepted for decryption while a key rotation is under way.
    previous_key: Option<AesKey>,
    /// The HMAC key of the HTTPS reply hook (optional).
    pub reply_hook_secret: Option<SecretString>,
}

impl std::fmt::Debug for ComponentCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ComponentCredentials")
            .field("component_appid", &self.component_appid)
            .field("component_appsecret", &"<redacted>")
            .field("token", &"<redacted>")
            .field("rotating", &self.previous_key.is_some())
            .field(
                "reply_hook_secret",
                &self.reply_hook_secret.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

#[derive(Deserialize)]
struct RawCredentials {
    component_appid: Option<String>,
    component_appsecret: Option<SecretString>,
    token: Option<SecretString>,
    encoding_aes_key: Option<SecretString>,
    previous_encoding_aes_key: Option<SecretString>,
    reply_hook_secret: Option<SecretString>,
}

fn present(value: Option<SecretString>, what: &'static str) -> Result<SecretString, SecretsError> {
    match value {
        Some(v) if !v.expose_secret().trim().is_empty() => Ok(v),
        _ => Err(SecretsError::Invalid(what)),
    }
}

fn key(value: &SecretString, what: &'static str) -> Result<AesKey, SecretsError> {
    AesKey::from_encoding_aes_key(value.expose_secret().trim())
        .map_err(|_| SecretsError::Invalid(what))
}

impl ComponentCredentials {
    /// Parses and validates the secret's JSON. A placeholder secret gives `NotConfigured`.
    pub fn from_json(json: &str) -> Result<Self, SecretsError> {
        let raw: RawCredentials = serde_json::from_str(json)
            .map_err(|_| SecretsError::Invalid("not a JSON object with string fields"))?;
        let component_appid = raw
            .component_appid
            .map(|a| a.trim().to_string())
            .filter(|a| !a.is_empty() && a != "REPLACE_ME")
            .ok_or(SecretsError::NotConfigured)?;
        let current = present(raw.encoding_aes_key, "encoding_aes_key is missing")?;
        let current_key = key(&current, "encoding_aes_key must be 43 characters of base64")?;
        let previous_key = raw
            .previous_encoding_aes_key
            .filter(|p| !p.expose_secret().trim().is_empty())
            .map(|p| {
                key(
                    &p,
                    "previous_encoding_aes_key must be 43 characters of base64",
                )
            })
            .transpose()?;
        Ok(Self {
            current_key,
            previous_key,
            component_appid,
            component_appsecret: present(
                raw.component_appsecret,
                "component_appsecret is missing",
            )?,
            token: present(raw.token, "token is missing")?,
            reply_hook_secret: raw
                .reply_hook_secret
                .filter(|s| !s.expose_secret().trim().is_empty()),
        })
    }

    /// Builds credentials directly (tests, the sandbox).
    pub fn new(
        component_appid: &str,
        component_appsecret: &str,
        token: &str,
        encoding_aes_key: &str,
    ) -> Result<Self, CryptoError> {
        Ok(Self {
            component_appid: component_appid.to_string(),
            component_appsecret: component_appsecret.into(),
            token: token.into(),
            current_key: AesKey::from_encoding_aes_key(encoding_aes_key)?,
            previous_key: None,
            reply_hook_secret: None,
        })
    }

    /// Sets the HTTPS reply hook's signing secret.
    pub fn with_reply_hook_secret(mut self, secret: &str) -> Self {
        self.reply_hook_secret = Some(secret.into());
        self
    }

    /// Adds a previous key accepted for decryption during a rotation.
    pub fn with_previous_key(mut self, encoding_aes_key: &str) -> Result<Self, CryptoError> {
        self.previous_key = Some(AesKey::from_encoding_aes_key(encoding_aes_key)?);
        Ok(self)
    }

    /// The key used to encrypt (the current one).
    pub fn current_key(&self) -> &AesKey {
        &self.current_key
    }

    /// Keys accepted for decryption, current first.
    pub fn keys(&self) -> impl Iterator<Item = &AesKey> {
        std::iter::once(&self.current_key).chain(self.previous_key.as_ref())
    }
}

/// Where credentials come from.
pub trait CredentialsSource: Send + Sync {
    fn fetch(&self) -> impl Future<Output = Result<ComponentCredentials, SecretsError>> + Send;
}

/// What handlers depend on: the current credentials.
pub trait CredentialsProvider: Send + Sync {
    fn credentials(
        &self,
    ) -> impl Future<Output = Result<Arc<ComponentCredentials>, SecretsError>> + Send;
}

impl<T: CredentialsProvider> CredentialsProvider for Arc<T> {
    async fn credentials(&self) -> Result<Arc<ComponentCredentials>, SecretsError> {
        self.as_ref().credentials().await
    }
}

/// Fixed credentials (tests, the local gateway with a known secret).
#[derive(Debug, Clone)]
pub struct StaticCredentials(pub Arc<ComponentCredentials>);

impl CredentialsProvider for StaticCredentials {
    async fn credentials(&self) -> Result<Arc<ComponentCredentials>, SecretsError> {
        Ok(self.0.clone())
    }
}

/// Secrets Manager adapter.
#[derive(Debug, Clone)]
pub struct SecretsManagerSource {
    client: aws_sdk_secretsmanager::Client,
    secret_id: String,
}

impl SecretsManagerSource {
    pub fn new(client: aws_sdk_secretsmanager::Client, secret_id: impl Into<String>) -> Self {
        Self {
            client,
            secret_id: secret_id.into(),
        }
    }
}

impl CredentialsSource for SecretsManagerSource {
    async fn fetch(&self) -> Result<ComponentCredentials, SecretsError> {
        let out = self
            .client
            .get_secret_value()
            .secret_id(&self.secret_id)
            .send()
            .await
            .map_err(|e| {
                SecretsError::Unavailable(Box::new(aws_sdk_secretsmanager::Error::from(e)))
            })?;
        let json = out
            .secret_string()
            .ok_or(SecretsError::Invalid("the secret has no string value"))?;
        ComponentCredentials::from_json(json)
    }
}

/// Caches a source's credentials for a TTL; concurrent callers share one fetch.
#[derive(Debug)]
pub struct CachedCredentials<S> {
    source: S,
    ttl: Duration,
    cache: RwLock<Option<(Instant, Arc<ComponentCredentials>)>>,
}

impl<S: CredentialsSource> CachedCredentials<S> {
    pub fn new(source: S, ttl: Duration) -> Self {
        Self {
            source,
            ttl,
            cache: RwLock::new(None),
        }
    }

    fn fresh(
        &self,
        entry: &Option<(Instant, Arc<ComponentCredentials>)>,
    ) -> Option<Arc<ComponentCredentials>> {
        entry
            .as_ref()
            .filter(|(at, _)| at.elapsed() < self.ttl)
            .map(|(_, c)| c.clone())
    }
}

impl<S: CredentialsSource> CredentialsProvider for CachedCredentials<S> {
    async fn credentials(&self) -> Result<Arc<ComponentCredentials>, SecretsError> {
        if let Some(c) = self.fresh(&*self.cache.read().await) {
            return Ok(c);
        }
        let mut slot = self.cache.write().await;
        if let Some(c) = self.fresh(&slot) {
            return Ok(c);
        }
        let creds = Arc::new(self.source.fetch().await?);
        *slot = Some((Instant::now(), creds.clone()));
        Ok(creds)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    const KEY: &str = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG";
    const KEY2: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8";

    fn json(extra: &str) -> String {
        format!(
            r#"{{"component_appid":"wxc","component_appsecret":"very-secret","token":"tok-secret","encoding_aes_key":"{KEY}"{extra}}}"#
        )
    }

    #[test]
    fn parses_and_redacts() {
        let c = ComponentCredentials::from_json(&json("")).unwrap();
        assert_eq!(c.component_appid, "wxc");
        assert_eq!(c.keys().count(), 1);
        assert!(c.reply_hook_secret.is_none());
        let dbg = format!("{c:?}");
        assert!(!dbg.contains("very-secret") && !dbg.contains("tok-secret") && !dbg.contains(KEY));
    }

    #[test]
    fn reply_hook_secret_is_optional_and_redacted() {
        let c = ComponentCredentials::from_json(&json(r#","reply_hook_secret":"hook-hmac-key""#))
            .unwrap();
        assert_eq!(
            c.reply_hook_secret.as_ref().map(|s| s.expose_secret()),
            Some("hook-hmac-key")
        );
        let dbg = format!("{c:?}");
        assert!(!dbg.contains("hook-hmac-key") && dbg.contains("reply_hook_secret"));
        let blank = ComponentCredentials::from_json(&json(r#","reply_hook_secret":" ""#)).unwrap();
        assert!(blank.reply_hook_secret.is_none());
    }

    #[test]
    fn previous_key_is_kept_second() {
        let c = ComponentCredentials::from_json(&json(&format!(
            r#","previous_encoding_aes_key":"{KEY2}""#
        )))
        .unwrap();
        assert_eq!(c.keys().count(), 2);
        assert_eq!(
            c.current_key(),
            &AesKey::from_encoding_aes_key(KEY).unwrap()
        );
        let c =
            ComponentCredentials::from_json(&json(r#","previous_encoding_aes_key":"""#)).unwrap();
        assert_eq!(c.keys().count(), 1);
    }

    #[test]
    fn placeholder_and_invalid() {
        assert!(matches!(
            ComponentCredentials::from_json(r#"{"component_appid":"REPLACE_ME"}"#),
            Err(SecretsError::NotConfigured)
        ));
        assert!(matches!(
            ComponentCredentials::from_json("{}"),
            Err(SecretsError::NotConfigured)
        ));
        assert!(matches!(
            ComponentCredentials::from_json("nope"),
            Err(SecretsError::Invalid(_))
        ));
        let bad_key = json("").replace(KEY, "short");
        let err = ComponentCredentials::from_json(&bad_key).unwrap_err();
        assert!(matches!(err, SecretsError::Invalid(_)));
        assert!(!err.to_string().contains("short"));
        let no_token = json("").replace(r#""token":"tok-secret","#, "");
        assert!(matches!(
            ComponentCredentials::from_json(&no_token),
            Err(SecretsError::Invalid("token is missing"))
        ));
    }

    struct Counting(AtomicUsize);
    impl CredentialsSource for Counting {
        async fn fetch(&self) -> Result<ComponentCredentials, SecretsError> {
            self.0.fetch_add(1, Ordering::SeqCst);
            ComponentCredentials::from_json(&json(""))
        }
    }

    #[tokio::test]
    async fn cache_fetches_once_within_ttl() {
        let cached = CachedCredentials::new(Counting(AtomicUsize::new(0)), Duration::from_secs(60));
        for _ in 0..5 {
            cached.credentials().await.unwrap();
        }
        assert_eq!(cached.source.0.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn zero_ttl_refetches() {
        let cached = CachedCredentials::new(Counting(AtomicUsize::new(0)), Duration::ZERO);
        cached.credentials().await.unwrap();
        cached.credentials().await.unwrap();
        assert_eq!(cached.source.0.load(Ordering::SeqCst), 2);
    }
}
