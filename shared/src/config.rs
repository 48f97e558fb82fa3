//! Environment → typed configuration, validated once at start.

use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("environment variable {0} is required")]
    Missing(&'static str),
    #[error("environment variable {0} is invalid: {1}")]
    Invalid(&'static str, &'static str),
}

/// Settings every function shares. Secrets are not here: they come from Secrets Manager.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// The one DynamoDB table (`TABLE_NAME`).
    pub table_name: String,
    /// ARN or name of the component credentials secret (`SECRET_ID`).
    pub secret_id: String,
    /// Accepted clock skew of a push's `timestamp` (`PUSH_TIMESTAMP_WINDOW_SECONDS`, default 300).
    pub push_window: Duration,
    /// How long fetched credentials are reused (`SECRET_CACHE_TTL_SECONDS`, default 300).
    pub secret_ttl: Duration,
}

pub const DEFAULT_PUSH_WINDOW_SECS: u64 = 300;
pub const DEFAULT_SECRET_TTL_SECS: u64 = 300;

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// Builds the config from any key lookup (the environment in production, a map in tests).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        Ok(Self {
            table_name: required(&get, "TABLE_NAME")?,
            secret_id: required(&get, "SECRET_ID")?,
            push_window: seconds(
                &get,
                "PUSH_TIMESTAMP_WINDOW_SECONDS",
                DEFAULT_PUSH_WINDOW_SECS,
                1,
                86_400,
            )?,
            secret_ttl: seconds(
                &get,
                "SECRET_CACHE_TTL_SECONDS",
                DEFAULT_SECRET_TTL_SECS,
                0,
                86_400,
            )?,
        })
    }
}

fn required(
    get: &impl Fn(&str) -> Option<String>,
    key: &'static str,
) -> Result<String, ConfigError> {
    match get(key) {
        Some(v) if !v.trim().is_empty() => Ok(v.trim().to_string()),
        _ => Err(ConfigError::Missing(key)),
    }
}

fn seconds(
    get: &impl Fn(&str) -> Option<String>,
    key: &'static str,
    default: u64,
    min: u64,
    max: u64,
) -> Result<Duration, ConfigError> {
    let value = match get(key) {
        None => default,
        Some(v) if v.trim().is_empty() => default,
        Some(v) => v
            .trim()
            .parse::<u64>()
            .map_err(|_| ConfigError::Invalid(key, "not a whole number of seconds"))?,
    };
    if !(min..=max).contains(&value) {
        return Err(ConfigError::Invalid(key, "out of range"));
    }
    Ok(Duration::from_secs(value))
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
    fn defaults_apply() {
        let c = Config::from_lookup(lookup(&[("TABLE_NAME", "t"), ("SECRET_ID", "s")])).unwrap();
        assert_eq!(c.push_window, Duration::from_secs(300));
        assert_eq!(c.secret_ttl, Duration::from_secs(300));
    }

    #[test]
    fn missing_and_invalid_are_named() {
        assert_eq!(
            Config::from_lookup(lookup(&[("SECRET_ID", "s")])),
            Err(ConfigError::Missing("TABLE_NAME"))
        );
        assert_eq!(
            Config::from_lookup(lookup(&[("TABLE_NAME", " "), ("SECRET_ID", "s")])),
            Err(ConfigError::Missing("TABLE_NAME"))
        );
        assert!(matches!(
            Config::from_lookup(lookup(&[
                ("TABLE_NAME", "t"),
                ("SECRET_ID", "s"),
                ("PUSH_TIMESTAMP_WINDOW_SECONDS", "abc")
            ])),
            Err(ConfigError::Invalid("PUSH_TIMESTAMP_WINDOW_SECONDS", _))
        ));
        assert!(matches!(
            Config::from_lookup(lookup(&[
                ("TABLE_NAME", "t"),
                ("SECRET_ID", "s"),
                ("PUSH_TIMESTAMP_WINDOW_SECONDS", "0")
            ])),
            Err(ConfigError::Invalid("PUSH_TIMESTAMP_WINDOW_SECONDS", _))
        ));
        let c = Config::from_lookup(lookup(&[
            ("TABLE_NAME", "t"),
            ("SECRET_ID", "s"),
            ("PUSH_TIMESTAMP_WINDOW_SECONDS", "60"),
        ]))
        .unwrap();
        assert_eq!(c.push_window, Duration::from_secs(60));
    }
}
