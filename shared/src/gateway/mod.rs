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

use crate::config::Config;
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
pub const DEFAULT_MAX_REQUEST_BYTES: usize =
    crate::config::DEFAULT_GATEWAY_MAX_REQUEST_BYTES as usize;

/// The gateway's settings, built from [`Config`] (validated there, once at start).
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
    pub fn from_config(config: &Config) -> Self {
        let defaults = Self::default();
        Self {
            allowlist: config
                .gateway_allowed_prefixes
                .clone()
                .map_or(defaults.allowlist, Allowlist::from_prefixes),
            cache: CacheSettings {
                max_age_secs: i64::try_from(config.gateway_token_cache.as_secs())
                    .unwrap_or(defaults.cache.max_age_secs),
                ..defaults.cache
            },
            timeout: config.gateway_timeout,
            max_request_bytes: config.gateway_max_request_bytes,
            max_response_bytes: defaults.max_response_bytes,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config(pairs: &[(&str, &str)]) -> Config {
        let mut map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        map.insert("TABLE_NAME".into(), "t".into());
        map.insert("SECRET_ID".into(), "s".into());
        Config::from_lookup(|k| map.get(k).cloned()).unwrap()
    }

    #[test]
    fn settings_from_config() {
        assert_eq!(
            GatewaySettings::from_config(&config(&[])),
            GatewaySettings::default()
        );
        let s = GatewaySettings::from_config(&config(&[
            ("GATEWAY_ALLOWED_PREFIXES", "cgi-bin/,wxa/"),
            ("GATEWAY_TOKEN_CACHE_SECONDS", "0"),
            ("GATEWAY_TIMEOUT_MS", "2500"),
            ("GATEWAY_MAX_REQUEST_BYTES", "1024"),
        ]));
        assert_eq!(s.allowlist.prefixes(), ["cgi-bin/", "wxa/"]);
        assert_eq!(s.cache.max_age_secs, 0);
        assert_eq!(s.timeout, Duration::from_millis(2500));
        assert_eq!(s.max_request_bytes, 1024);
    }
}
