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
    /// WeChat API host (`WECHAT_API_BASE`, default `https://api.weixin.qq.com`).
    pub wechat_api_base: String,
    /// Authorization page host (`WECHAT_MP_BASE`, default `https://mp.weixin.qq.com`).
    pub wechat_mp_base: String,
    /// Mobile authorization host (`WECHAT_OPEN_BASE`, default `https://open.weixin.qq.com`).
    pub wechat_open_base: String,
    /// Public base URL of the API (`PUBLIC_BASE_URL`, e.g. a custom domain registered with
    /// WeChat); when unset, taken from each request's Host header.
    pub public_base_url: Option<String>,
    /// Per-request timeout for WeChat calls (`WECHAT_TIMEOUT_MS`, default 4000).
    pub wechat_timeout: Duration,
    /// The query parameter carrying the component token on the template-library APIs
    /// (`WECHAT_TEMPLATE_TOKEN_PARAM`: `access_token`, the default, as WeChat's docs write it, or
    /// `component_access_token`, as some SDKs send it).
    pub wechat_template_token_param: String,
    /// Follow-to-log-in QR lifetime (`LOGIN_QR_EXPIRE_SECONDS`, default 300).
    pub login_qr_expire: Duration,
    /// Text sent to a user whose scan confirmed a login (`LOGIN_REPLY_TEXT`).
    pub login_reply_text: Option<String>,
    /// Tokens expiring within this window are refreshed by the scheduled refresher
    /// (`REFRESH_WINDOW_SECONDS`, default 900; the schedule runs every 5 minutes).
    pub refresh_window: Duration,
    /// API prefixes the WeChat API gateway forwards (`GATEWAY_ALLOWED_PREFIXES`, comma-separated,
    /// each ending with `/`, e.g. `cgi-bin/,wxa/`); `None`: the gateway's default list.
    pub gateway_allowed_prefixes: Option<Vec<String>>,
    /// How long the gateway's warm Lambda reuses a token read from the store
    /// (`GATEWAY_TOKEN_CACHE_SECONDS`, default 300; 0 turns the cache off).
    pub gateway_token_cache: Duration,
    /// Per-attempt timeout of a forwarded WeChat call (`GATEWAY_TIMEOUT_MS`, default 8000).
    pub gateway_timeout: Duration,
    /// Largest request body the gateway forwards (`GATEWAY_MAX_REQUEST_BYTES`, default 4 MiB,
    /// at most Lambda's 6 MiB payload).
    pub gateway_max_request_bytes: usize,
    /// How long an authorization link stays usable (`AUTHORIZE_LINK_TTL_SECONDS`, default
    /// 604800 = 7 days, 300 to 2592000).
    pub authorize_link_ttl: Duration,
    /// URL prefixes a link's `return_to` must start with (`AUTHORIZE_RETURN_TO_ALLOWLIST`,
    /// comma-separated http(s) URLs; empty = no `return_to` accepted).
    pub authorize_return_to_allowlist: Vec<String>,
    /// Origins sign-in may send a browser back to (`SIGN_IN_RETURN_TO_ORIGINS`, comma-separated
    /// `scheme://host[:port]`; empty: no hosted sign-in page or OAuth can be used).
    pub sign_in_return_to_origins: Vec<String>,
    /// Lifetime of a one-time login code (`LOGIN_CODE_TTL_SECONDS`, default 300).
    pub login_code_ttl: Duration,
    /// A forced refresh of a token refreshed less than this long ago returns the stored token
    /// (`TOKEN_MIN_REFRESH_INTERVAL_SECONDS`, default 30, 0..=600): WeChat's token APIs see at
    /// most one call per token per interval.
    pub token_min_refresh_interval: Duration,
    /// The EventBridge bus every push is published to (`EVENT_BUS_NAME`, default `default`).
    pub event_bus_name: String,
    /// The reply hook as a Lambda function (`REPLY_HOOK_FUNCTION_ARN`; wins over the URL).
    pub reply_hook_function_arn: Option<String>,
    /// The reply hook as an HTTPS URL (`REPLY_HOOK_URL`, signed with `reply_hook_secret`).
    pub reply_hook_url: Option<String>,
    /// Time the reply hook gets (`REPLY_HOOK_BUDGET_MS`, default 3000, at most 4000: WeChat
    /// waits 5 s).
    pub reply_hook_budget: Duration,
    /// Path of the enterprise fast-registration API (`FAST_REGISTER_PATH`, default
    /// `/wxa/component/fastregisterenterpriseweapp`; not confirmed by WeChat's docs).
    pub fast_register_path: String,
    /// Query parameter carrying the component token on that API (`FAST_REGISTER_TOKEN_PARAM`:
    /// `access_token`, the default, or `component_access_token`).
    pub fast_register_token_param: String,
    /// Host of WeChat's `fastregisterauth` page (`FAST_REGISTER_AUTH_BASE`; default
    /// `WECHAT_MP_BASE`).
    pub fast_register_auth_base: Option<String>,
    /// Fleet releases: the work queue (`RELEASE_QUEUE_URL`; unset where no function sends to it).
    pub release_queue_url: Option<String>,
    /// `RELEASE_AUDIT_POLL_AFTER_SECONDS`: an audit without a result push after this long is
    /// polled by the scheduled run (default 6 h).
    pub release_audit_poll_after: Duration,
    /// `RELEASE_SUBMIT_DELAY_SECONDS`: wait between commit and submit (WeChat's privacy scan
    /// runs about a minute after a commit; default 60 s).
    pub release_submit_delay: Duration,
    /// `RELEASE_STEP_LEASE_SECONDS`: how long a recorded step belongs to its worker before
    /// another may reconcile it (default 120 s; above the worker's WeChat timeout).
    pub release_step_lease: Duration,
}

pub const DEFAULT_PUSH_WINDOW_SECS: u64 = 300;
pub const DEFAULT_SECRET_TTL_SECS: u64 = 300;
pub const DEFAULT_WECHAT_API_BASE: &str = "https://api.weixin.qq.com";
pub const DEFAULT_WECHAT_MP_BASE: &str = "https://mp.weixin.qq.com";
pub const DEFAULT_WECHAT_OPEN_BASE: &str = "https://open.weixin.qq.com";
/// Default `GATEWAY_MAX_REQUEST_BYTES`: 4 MiB arrive as 5.3 MiB of base64, inside Lambda's 6 MB.
pub const DEFAULT_GATEWAY_MAX_REQUEST_BYTES: u64 = 4 * 1024 * 1024;
/// Lambda's payload limit (request and response), in bytes.
pub const LAMBDA_PAYLOAD_LIMIT: u64 = 6 * 1024 * 1024;

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
            wechat_api_base: base_url(&get, "WECHAT_API_BASE", DEFAULT_WECHAT_API_BASE)?,
            wechat_mp_base: base_url(&get, "WECHAT_MP_BASE", DEFAULT_WECHAT_MP_BASE)?,
            wechat_open_base: base_url(&get, "WECHAT_OPEN_BASE", DEFAULT_WECHAT_OPEN_BASE)?,
            public_base_url: match get("PUBLIC_BASE_URL").filter(|v| !v.trim().is_empty()) {
                Some(_) => Some(base_url(&get, "PUBLIC_BASE_URL", "")?),
                None => None,
            },
            wechat_timeout: Duration::from_millis(number(
                &get,
                "WECHAT_TIMEOUT_MS",
                4000,
                100,
                60_000,
            )?),
            wechat_template_token_param: match optional(&get, "WECHAT_TEMPLATE_TOKEN_PARAM")
                .as_deref()
            {
                None | Some("access_token") => "access_token".to_string(),
                Some("component_access_token") => "component_access_token".to_string(),
                Some(_) => {
                    return Err(ConfigError::Invalid(
                        "WECHAT_TEMPLATE_TOKEN_PARAM",
                        "use access_token or component_access_token",
                    ));
                }
            },
            refresh_window: seconds(&get, "REFRESH_WINDOW_SECONDS", 900, 60, 7000)?,
            login_qr_expire: seconds(&get, "LOGIN_QR_EXPIRE_SECONDS", 300, 30, 2_592_000)?,
            login_reply_text: get("LOGIN_REPLY_TEXT")
                .filter(|t| !t.trim().is_empty() && t.len() <= 600),
            gateway_allowed_prefixes: match get("GATEWAY_ALLOWED_PREFIXES")
                .filter(|v| !v.trim().is_empty())
            {
                None => None,
                Some(v) => Some(api_prefixes(&v).ok_or(ConfigError::Invalid(
                    "GATEWAY_ALLOWED_PREFIXES",
                    "use comma-separated path prefixes ending with '/', e.g. cgi-bin/,wxa/",
                ))?),
            },
            gateway_token_cache: seconds(&get, "GATEWAY_TOKEN_CACHE_SECONDS", 300, 0, 7200)?,
            gateway_timeout: Duration::from_millis(number(
                &get,
                "GATEWAY_TIMEOUT_MS",
                8000,
                100,
                60_000,
            )?),
            gateway_max_request_bytes: usize::try_from(number(
                &get,
                "GATEWAY_MAX_REQUEST_BYTES",
                DEFAULT_GATEWAY_MAX_REQUEST_BYTES,
                1,
                LAMBDA_PAYLOAD_LIMIT,
            )?)
            .map_err(|_| ConfigError::Invalid("GATEWAY_MAX_REQUEST_BYTES", "out of range"))?,
            authorize_link_ttl: seconds(
                &get,
                "AUTHORIZE_LINK_TTL_SECONDS",
                604_800,
                300,
                2_592_000,
            )?,
            authorize_return_to_allowlist: url_list(&get, "AUTHORIZE_RETURN_TO_ALLOWLIST")?,
            sign_in_return_to_origins: origins(&get, "SIGN_IN_RETURN_TO_ORIGINS")?,
            login_code_ttl: seconds(&get, "LOGIN_CODE_TTL_SECONDS", 300, 30, 3600)?,
            token_min_refresh_interval: seconds(
                &get,
                "TOKEN_MIN_REFRESH_INTERVAL_SECONDS",
                30,
                0,
                600,
            )?,
            event_bus_name: get("EVENT_BUS_NAME")
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
                .unwrap_or_else(|| "default".to_string()),
            reply_hook_function_arn: optional(&get, "REPLY_HOOK_FUNCTION_ARN"),
            reply_hook_url: match optional(&get, "REPLY_HOOK_URL") {
                Some(_) => Some(base_url(&get, "REPLY_HOOK_URL", "")?),
                None => None,
            },
            reply_hook_budget: Duration::from_millis(number(
                &get,
                "REPLY_HOOK_BUDGET_MS",
                3000,
                100,
                4000,
            )?),
            fast_register_path: match optional(&get, "FAST_REGISTER_PATH") {
                None => "/wxa/component/fastregisterenterpriseweapp".to_string(),
                Some(p)
                    if p.starts_with('/')
                        && p.len() <= 200
                        && p.bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b"/_-.".contains(&b))
                        && !p.contains("..") =>
                {
                    p
                }
                Some(_) => {
                    return Err(ConfigError::Invalid(
                        "FAST_REGISTER_PATH",
                        "use an absolute API path such as /wxa/component/fastregisterenterpriseweapp",
                    ));
                }
            },
            fast_register_token_param: match optional(&get, "FAST_REGISTER_TOKEN_PARAM").as_deref()
            {
                None | Some("access_token") => "access_token".to_string(),
                Some("component_access_token") => "component_access_token".to_string(),
                Some(_) => {
                    return Err(ConfigError::Invalid(
                        "FAST_REGISTER_TOKEN_PARAM",
                        "use access_token or component_access_token",
                    ));
                }
            },
            fast_register_auth_base: match optional(&get, "FAST_REGISTER_AUTH_BASE") {
                Some(_) => Some(base_url(&get, "FAST_REGISTER_AUTH_BASE", "")?),
                None => None,
            },
            release_queue_url: optional(&get, "RELEASE_QUEUE_URL"),
            release_audit_poll_after: seconds(
                &get,
                "RELEASE_AUDIT_POLL_AFTER_SECONDS",
                21_600,
                0,
                2_592_000,
            )?,
            release_submit_delay: seconds(&get, "RELEASE_SUBMIT_DELAY_SECONDS", 60, 0, 900)?,
            release_step_lease: seconds(&get, "RELEASE_STEP_LEASE_SECONDS", 120, 1, 3600)?,
        })
    }
}

/// A comma-separated list of WeChat API path prefixes (`cgi-bin/,wxa/`): each made of plain
/// segments (ASCII letters, digits, `-`, `_`, `.`; no `.` or `..`) and ending with `/`; a leading
/// `/` is dropped. `None` when an item is malformed or the list is empty.
pub fn api_prefixes(setting: &str) -> Option<Vec<String>> {
    let mut prefixes = Vec::new();
    for item in setting.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let prefix = item.trim_start_matches('/');
        let body = prefix.strip_suffix('/')?;
        let plain = |seg: &str| {
            !matches!(seg, "" | "." | "..")
                && seg
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        };
        if !body.split('/').all(plain) {
            return None;
        }
        prefixes.push(prefix.to_string());
    }
    (!prefixes.is_empty()).then_some(prefixes)
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

fn optional(get: &impl Fn(&str) -> Option<String>, key: &'static str) -> Option<String> {
    get(key)
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

fn base_url(
    get: &impl Fn(&str) -> Option<String>,
    key: &'static str,
    default: &str,
) -> Result<String, ConfigError> {
    let value = get(key)
        .filter(|v| !v.trim().is_empty())
        .unwrap_or_else(|| default.to_string());
    let parsed =
        url::Url::parse(value.trim()).map_err(|_| ConfigError::Invalid(key, "not a URL"))?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
        return Err(ConfigError::Invalid(key, "must be an http(s) URL"));
    }
    Ok(value.trim().trim_end_matches('/').to_string())
}

fn url_list(
    get: &impl Fn(&str) -> Option<String>,
    key: &'static str,
) -> Result<Vec<String>, ConfigError> {
    let raw = get(key).unwrap_or_default();
    let mut out = Vec::new();
    for entry in raw.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let parsed = url::Url::parse(entry).map_err(|_| ConfigError::Invalid(key, "not a URL"))?;
        if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
            return Err(ConfigError::Invalid(key, "entries must be http(s) URLs"));
        }
        out.push(entry.to_string());
    }
    Ok(out)
}

/// A comma-separated list of http(s) origins, each normalized to `scheme://host[:port]`.
fn origins(
    get: &impl Fn(&str) -> Option<String>,
    key: &'static str,
) -> Result<Vec<String>, ConfigError> {
    let mut out = Vec::new();
    for part in get(key).unwrap_or_default().split(',') {
        let part = part.trim();
        if part.is_empty() {
            continue;
        }
        let url = url::Url::parse(part).map_err(|_| ConfigError::Invalid(key, "not a URL"))?;
        if !matches!(url.scheme(), "http" | "https")
            || url.host_str().is_none()
            || url.path() != "/"
            || url.query().is_some()
        {
            return Err(ConfigError::Invalid(
                key,
                "each entry must be an http(s) origin like https://shop.example",
            ));
        }
        out.push(url.origin().ascii_serialization());
    }
    Ok(out)
}

fn seconds(
    get: &impl Fn(&str) -> Option<String>,
    key: &'static str,
    default: u64,
    min: u64,
    max: u64,
) -> Result<Duration, ConfigError> {
    number(get, key, default, min, max).map(Duration::from_secs)
}

fn number(
    get: &impl Fn(&str) -> Option<String>,
    key: &'static str,
    default: u64,
    min: u64,
    max: u64,
) -> Result<u64, ConfigError> {
    let value = match get(key) {
        None => default,
        Some(v) if v.trim().is_empty() => default,
        Some(v) => v
            .trim()
            .parse::<u64>()
            .map_err(|_| ConfigError::Invalid(key, "not a whole number"))?,
    };
    if !(min..=max).contains(&value) {
        return Err(ConfigError::Invalid(key, "out of range"));
    }
    Ok(value)
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
        assert_eq!(c.wechat_api_base, "https://api.weixin.qq.com");
        assert_eq!(c.wechat_timeout, Duration::from_millis(4000));
        assert_eq!(c.wechat_template_token_param, "access_token");
        assert_eq!(c.refresh_window, Duration::from_secs(900));
        assert_eq!(c.gateway_allowed_prefixes, None);
        assert_eq!(c.gateway_token_cache, Duration::from_secs(300));
        assert_eq!(c.gateway_timeout, Duration::from_millis(8000));
        assert_eq!(c.gateway_max_request_bytes, 4 * 1024 * 1024);
    }

    #[test]
    fn gateway_settings_are_validated() {
        let base = [("TABLE_NAME", "t"), ("SECRET_ID", "s")];
        let with = |extra: &[(&str, &str)]| {
            let mut pairs = base.to_vec();
            pairs.extend_from_slice(extra);
            Config::from_lookup(lookup(&pairs))
        };
        let c = with(&[
            ("GATEWAY_ALLOWED_PREFIXES", " cgi-bin/ , /wxa/,,"),
            ("GATEWAY_TOKEN_CACHE_SECONDS", "0"),
            ("GATEWAY_TIMEOUT_MS", "2500"),
            ("GATEWAY_MAX_REQUEST_BYTES", "1024"),
        ])
        .unwrap();
        assert_eq!(
            c.gateway_allowed_prefixes,
            Some(vec!["cgi-bin/".to_string(), "wxa/".to_string()])
        );
        assert_eq!(c.gateway_token_cache, Duration::ZERO);
        assert_eq!(c.gateway_timeout, Duration::from_millis(2500));
        assert_eq!(c.gateway_max_request_bytes, 1024);
        for (k, v) in [
            ("GATEWAY_ALLOWED_PREFIXES", "cgi-bin"),
            ("GATEWAY_ALLOWED_PREFIXES", "cgi-bin/,../"),
            ("GATEWAY_ALLOWED_PREFIXES", "a b/"),
            ("GATEWAY_ALLOWED_PREFIXES", ","),
            ("GATEWAY_TOKEN_CACHE_SECONDS", "-1"),
            ("GATEWAY_TOKEN_CACHE_SECONDS", "7201"),
            ("GATEWAY_TIMEOUT_MS", "abc"),
            ("GATEWAY_MAX_REQUEST_BYTES", "0"),
            ("GATEWAY_MAX_REQUEST_BYTES", "6291457"),
        ] {
            assert!(
                matches!(with(&[(k, v)]), Err(ConfigError::Invalid(key, _)) if key == k),
                "{k}={v}"
            );
        }
    }

    #[test]
    fn the_template_token_parameter_is_one_of_two_names() {
        let with = |v: &str| {
            Config::from_lookup(lookup(&[
                ("TABLE_NAME", "t"),
                ("SECRET_ID", "s"),
                ("WECHAT_TEMPLATE_TOKEN_PARAM", v),
            ]))
        };
        assert_eq!(
            with("component_access_token")
                .unwrap()
                .wechat_template_token_param,
            "component_access_token"
        );
        assert_eq!(
            with(" ").unwrap().wechat_template_token_param,
            "access_token"
        );
        assert!(matches!(
            with("token"),
            Err(ConfigError::Invalid("WECHAT_TEMPLATE_TOKEN_PARAM", _))
        ));
    }

    #[test]
    fn base_urls_are_validated() {
        let c = Config::from_lookup(lookup(&[
            ("TABLE_NAME", "t"),
            ("SECRET_ID", "s"),
            ("WECHAT_API_BASE", "http://127.0.0.1:9/"),
        ]))
        .unwrap();
        assert_eq!(c.wechat_api_base, "http://127.0.0.1:9");
        assert!(matches!(
            Config::from_lookup(lookup(&[
                ("TABLE_NAME", "t"),
                ("SECRET_ID", "s"),
                ("WECHAT_API_BASE", "ftp://x")
            ])),
            Err(ConfigError::Invalid("WECHAT_API_BASE", _))
        ));
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

    #[test]
    fn sign_in_origins_are_origins() {
        let c = Config::from_lookup(lookup(&[
            ("TABLE_NAME", "t"),
            ("SECRET_ID", "s"),
            (
                "SIGN_IN_RETURN_TO_ORIGINS",
                "https://shop.example, http://127.0.0.1:9000/",
            ),
        ]))
        .unwrap();
        assert_eq!(
            c.sign_in_return_to_origins,
            vec!["https://shop.example", "http://127.0.0.1:9000"]
        );
        assert!(matches!(
            Config::from_lookup(lookup(&[
                ("TABLE_NAME", "t"),
                ("SECRET_ID", "s"),
                ("SIGN_IN_RETURN_TO_ORIGINS", "https://shop.example/path"),
            ])),
            Err(ConfigError::Invalid("SIGN_IN_RETURN_TO_ORIGINS", _))
        ));
    }

    #[test]
    fn reply_hook_settings_are_validated() {
        let base = [("TABLE_NAME", "t"), ("SECRET_ID", "s")];
        let with = |extra: &[(&'static str, &'static str)]| {
            let mut pairs = base.to_vec();
            pairs.extend_from_slice(extra);
            Config::from_lookup(lookup(&pairs))
        };
        let d = with(&[]).unwrap();
        assert_eq!(d.event_bus_name, "default");
        assert_eq!(d.reply_hook_budget, Duration::from_millis(3000));
        assert_eq!((d.reply_hook_function_arn, d.reply_hook_url), (None, None));
        let c = with(&[
            ("EVENT_BUS_NAME", "wx-bus"),
            ("REPLY_HOOK_URL", "https://hooks.example.com/wx"),
            ("REPLY_HOOK_FUNCTION_ARN", " "),
            ("REPLY_HOOK_BUDGET_MS", "1500"),
        ])
        .unwrap();
        assert_eq!(c.event_bus_name, "wx-bus");
        assert_eq!(
            c.reply_hook_url.as_deref(),
            Some("https://hooks.example.com/wx")
        );
        assert_eq!(c.reply_hook_function_arn, None);
        assert_eq!(c.reply_hook_budget, Duration::from_millis(1500));
        assert!(matches!(
            with(&[("REPLY_HOOK_BUDGET_MS", "5000")]),
            Err(ConfigError::Invalid("REPLY_HOOK_BUDGET_MS", _))
        ));
        assert!(matches!(
            with(&[("REPLY_HOOK_URL", "ftp://x")]),
            Err(ConfigError::Invalid("REPLY_HOOK_URL", _))
        ));
    }
}
