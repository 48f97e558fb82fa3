//! The WeChat API gateway: the provider's services call any WeChat API for a merchant (or for
//! the component) through wxopen, which injects the right token, retries once after a token
//! error with the stale-version protocol, and passes WeChat's answer back untouched.
//!
//! Layout:
//! * [`path`]: the forwarded path: shape rules, allowlist, token-API denylist, token parameter.
//! * [`request`]: the forwarded request (method, query minus caller tokens, content type, body).
//! * [`response`]: errcode sniffing (JSON only, bounded), text or binary, Lambda payload size.
//! * [`retry`]: when a call is sent a second time.
//! * [`cache`]: the warm Lambda's token cache (single-flight per key).
//! * [`proxy`]: the loop over the two ports, [`proxy::TokenSource`] and [`proxy::Forwarder`].
//! * [`quota`]: the explicit quota resets and reads.
//! * [`metrics`]: one embedded-metric-format line per call.
//! * [`error`]: why a call got no answer to pass on, and its error shape.
//!
//! The outbound HTTP call itself is `WeChatClient::forward` (`crate::wechat::forward`): fixed
//! host, no redirects, no logging of the URL (the token travels in it).

use std::time::Duration;

use crate::config::ConfigError;
use crate::model::TokenKey;

pub mod cache;
pub mod error;
pub mod metrics;
pub mod path;
pub mod proxy;
pub mod quota;
pub mod request;
pub mod response;
pub mod retry;

pub use cache::{CacheSettings, TokenCache};
pub use error::GatewayError;
pub use path::{Allowlist, ApiPath, PathError, TokenParam};
pub use proxy::{Forwarder, Proxied, Proxy, TokenSource};
pub use request::{ForwardMethod, ForwardRequest, RequestError};

/// Whose token a call carries.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Target {
    Authorizer(String),
    Component,
}

impl Target {
    pub fn token_key(&self) -> TokenKey {
        match self {
            Target::Authorizer(appid) => TokenKey::Authorizer(appid.clone()),
            Target::Component => TokenKey::Component,
        }
    }

    /// The metric's `Route` dimension.
    pub fn route(&self) -> &'static str {
        match self {
            Target::Authorizer(_) => "authorizer",
            Target::Component => "component",
        }
    }

    pub fn authorizer(&self) -> Option<&str> {
        match self {
            Target::Authorizer(appid) => Some(appid),
            Target::Component => None,
        }
    }
}

/// Default request body limit: 4 MiB arrive as 5.3 MiB of base64, inside Lambda's 6 MB.
pub const DEFAULT_MAX_REQUEST_BYTES: usize = 4 * 1024 * 1024;

/// The gateway's settings (environment, validated once at start).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewaySettings {
    /// `GATEWAY_ALLOWED_PREFIXES` (comma-separated, default [`path::DEFAULT_PREFIXES`]).
    pub allowlist: Allowlist,
    /// `GATEWAY_TOKEN_CACHE_SECONDS` (default 300; 0 turns the warm cache off).
    pub cache: CacheSettings,
    /// Per-attempt timeout of a forwarded call (`GATEWAY_TIMEOUT_MS`, default 8000).
    pub timeout: Duration,
    /// Largest request body forwarded (`GATEWAY_MAX_REQUEST_BYTES`, default 4 MiB).
    pub max_request_bytes: usize,
    /// The response payload limit an answer must fit once encoded (Lambda: 6 MB).
    pub max_response_bytes: usize,
}

impl Default for GatewaySettings {
    fn default() -> Self {
        Self {
            allowlist: Allowlist::default(),
            cache: CacheSettings::default(),
            timeout: Duration::from_millis(8000),
            max_request_bytes: DEFAULT_MAX_REQUEST_BYTES,
            max_response_bytes: response::LAMBDA_RESPONSE_LIMIT,
        }
    }
}

impl GatewaySettings {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let defaults = Self::default();
        let allowlist = match get("GATEWAY_ALLOWED_PREFIXES").filter(|v| !v.trim().is_empty()) {
            None => defaults.allowlist,
            Some(v) => Allowlist::parse(&v).map_err(|_| {
                ConfigError::Invalid(
                    "GATEWAY_ALLOWED_PREFIXES",
                    "use comma-separated path prefixes ending with '/', e.g. cgi-bin/,wxa/",
                )
            })?,
        };
        let cache_secs = number(&get, "GATEWAY_TOKEN_CACHE_SECONDS", 300, 0, 7200)?;
        let timeout_ms = number(&get, "GATEWAY_TIMEOUT_MS", 8000, 100, 60_000)?;
        let max_request = number(
            &get,
            "GATEWAY_MAX_REQUEST_BYTES",
            DEFAULT_MAX_REQUEST_BYTES as u64,
            1,
            response::LAMBDA_RESPONSE_LIMIT as u64,
        )?;
        Ok(Self {
            allowlist,
            cache: CacheSettings {
                max_age_secs: i64::try_from(cache_secs).unwrap_or(300),
                ..defaults.cache
            },
            timeout: Duration::from_millis(timeout_ms),
            max_request_bytes: usize::try_from(max_request).unwrap_or(DEFAULT_MAX_REQUEST_BYTES),
            max_response_bytes: defaults.max_response_bytes,
        })
    }
}

fn number(
    get: &impl Fn(&str) -> Option<String>,
    key: &'static str,
    default: u64,
    min: u64,
    max: u64,
) -> Result<u64, ConfigError> {
    let value = match get(key).filter(|v| !v.trim().is_empty()) {
        None => default,
        Some(v) => v
            .trim()
            .parse::<u64>()
            .map_err(|_| ConfigError::Invalid(key, "not a whole number"))?,
    };
    if (min..=max).contains(&value) {
        Ok(value)
    } else {
        Err(ConfigError::Invalid(key, "out of range"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn lookup(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn settings_defaults_and_overrides() {
        let d = GatewaySettings::from_lookup(lookup(&[])).unwrap();
        assert_eq!(d, GatewaySettings::default());
        let s = GatewaySettings::from_lookup(lookup(&[
            ("GATEWAY_ALLOWED_PREFIXES", "cgi-bin/,wxa/"),
            ("GATEWAY_TOKEN_CACHE_SECONDS", "0"),
            ("GATEWAY_TIMEOUT_MS", "2500"),
            ("GATEWAY_MAX_REQUEST_BYTES", "1024"),
        ]))
        .unwrap();
        assert_eq!(s.allowlist.prefixes(), ["cgi-bin/", "wxa/"]);
        assert_eq!(s.cache.max_age_secs, 0);
        assert_eq!(s.timeout, Duration::from_millis(2500));
        assert_eq!(s.max_request_bytes, 1024);
        for (k, v) in [
            ("GATEWAY_ALLOWED_PREFIXES", "cgi-bin"),
            ("GATEWAY_TOKEN_CACHE_SECONDS", "-1"),
            ("GATEWAY_TOKEN_CACHE_SECONDS", "7201"),
            ("GATEWAY_TIMEOUT_MS", "abc"),
            ("GATEWAY_MAX_REQUEST_BYTES", "0"),
        ] {
            assert!(
                matches!(
                    GatewaySettings::from_lookup(lookup(&[(k, v)])),
                    Err(ConfigError::Invalid(key, _)) if key == k
                ),
                "{k}={v}"
            );
        }
    }
}
