//! The forwarded API path (`{path+}`): validated as it arrived (still percent-encoded), then held
//! to the allowlist of API prefixes and the token-API denylist.
//!
//! WeChat's API paths are plain: ASCII letters, digits, `-`, `_`, `.` and `/`. Anything else
//! (percent-encoding of any kind, `@`, `\`, `:`, spaces, control characters) is refused rather
//! than normalised, so no layer between the caller and WeChat can read the path differently.

use super::Target;

/// Longest API path accepted (WeChat's are under 80 bytes).
pub const MAX_PATH_BYTES: usize = 256;

/// API prefixes forwarded by default (setting `GATEWAY_ALLOWED_PREFIXES` replaces the list).
/// `sns/` is deliberately absent: user OAuth and `jscode2session` answer user tokens and
/// session keys, which wxopen's own routes handle.
pub const DEFAULT_PREFIXES: &[&str] = &[
    "cgi-bin/",
    "wxa/",
    "wxaapi/",
    "datacube/",
    "card/",
    "customservice/",
    "merchant/",
    "shop/",
    "product/",
    "union/",
    "channels/",
    "cv/",
    "semantic/",
    "tcb/",
    "componenttcb/",
    "guide/",
    "marketing/",
    "poi/",
    "bizwifi/",
    "shakearound/",
    "scan/",
];

/// Token-minting and credential-returning APIs: refused on both routes, whatever the allowlist
/// says (compared case-insensitively). Forwarding them would hand a caller tokens, refresh tokens
/// or codes wxopen does not record, and a new token from WeChat invalidates the one wxopen holds.
/// wechat-spec.md §3, wechat-spec-platform.md §7–§8; WxJava `WxOpenComponentService` constants.
pub const TOKEN_APIS: &[&str] = &[
    "cgi-bin/token",
    "cgi-bin/stable_token",
    "cgi-bin/component/api_component_token",
    "cgi-bin/component/api_authorizer_token",
    "cgi-bin/component/api_query_auth",
    "cgi-bin/component/api_create_preauthcode",
    "cgi-bin/component/api_get_authorizer_list",
    "cgi-bin/component/api_start_push_ticket",
    // Secret in the body: wxopen's clear-quota route makes these calls itself.
    "cgi-bin/component/clear_quota/v2",
    "cgi-bin/clear_quota/v2",
    // Under `sns/` (not allowlisted by default), in case an operator adds it.
    "sns/oauth2/component/access_token",
    "sns/oauth2/component/refresh_token",
    "sns/component/jscode2session",
];

/// Component APIs under `cgi-bin/component/` that take the component token as `access_token`
/// (docs and WxJava `API_MODIFY_WXA_SERVER_DOMAIN` & co.; wechat-spec-platform.md §8).
const COMPONENT_APIS_WITH_ACCESS_TOKEN: &[&str] = &[
    "cgi-bin/component/modify_wxa_server_domain",
    "cgi-bin/component/modify_wxa_jump_domain",
    "cgi-bin/component/get_domain_confirmfile",
];

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("the API path is empty")]
    Empty,
    #[error("the API path is longer than {MAX_PATH_BYTES} bytes")]
    TooLong,
    #[error(
        "the API path must be relative to the WeChat API host (no scheme, host or leading '/')"
    )]
    Absolute,
    #[error("the API path must not be percent-encoded")]
    Encoded,
    #[error("the API path contains {0:?}, which is not allowed")]
    BadCharacter(char),
    #[error("the API path has an empty segment")]
    EmptySegment,
    #[error("the API path has a '.' or '..' segment")]
    DotSegment,
    #[error("token APIs are not forwarded; wxopen keeps the tokens")]
    TokenApi,
    #[error("the API path is not under an allowed prefix")]
    NotAllowed,
}

/// A validated API path under the WeChat API host, without a leading `/`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ApiPath(String);

impl ApiPath {
    /// A path as the caller sent it, checked, held to the denylist and then the allowlist.
    pub fn parse(raw: &str, allow: &Allowlist) -> Result<Self, PathError> {
        let path = Self::checked(raw)?;
        if is_token_api(&path.0) {
            return Err(PathError::TokenApi);
        }
        if !allow.permits(&path.0) {
            return Err(PathError::NotAllowed);
        }
        Ok(path)
    }

    /// Only the shape checks (no allowlist, no denylist): for `cgi_path` values quoted in a body.
    pub fn checked(raw: &str) -> Result<Self, PathError> {
        if raw.is_empty() {
            return Err(PathError::Empty);
        }
        if raw.len() > MAX_PATH_BYTES {
            return Err(PathError::TooLong);
        }
        if raw.starts_with('/') || raw.contains("://") {
            return Err(PathError::Absolute);
        }
        if raw.contains('%') {
            return Err(PathError::Encoded);
        }
        if let Some(c) = raw
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/')))
        {
            return Err(PathError::BadCharacter(c));
        }
        for segment in raw.split('/') {
            match segment {
                "" => return Err(PathError::EmptySegment),
                "." | ".." => return Err(PathError::DotSegment),
                _ => {}
            }
        }
        Ok(Self(raw.to_string()))
    }

    /// A path wxopen itself calls (quota routes); not held to the lists.
    pub(crate) fn fixed(path: &'static str) -> Self {
        Self(path.to_string())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for ApiPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

fn matches_entry(path: &str, entry: &str) -> bool {
    path.as_bytes()
        .get(..entry.len())
        .is_some_and(|head| head.eq_ignore_ascii_case(entry.as_bytes()))
        && matches!(path.as_bytes().get(entry.len()), None | Some(b'/'))
}

/// Whether `path` is (or is under) a token API, ignoring ASCII case.
pub fn is_token_api(path: &str) -> bool {
    TOKEN_APIS.iter().any(|api| matches_entry(path, api))
}

/// The allowed API prefixes. Each ends with `/`; a path is allowed when it starts with one
/// (case-sensitive: WeChat's paths are lowercase, and a differently cased one is refused).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Allowlist(Vec<String>);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("allowed prefix {0:?} is invalid: use path segments ending with '/', e.g. \"cgi-bin/\"")]
pub struct AllowlistError(pub String);

impl Default for Allowlist {
    fn default() -> Self {
        Self(DEFAULT_PREFIXES.iter().map(|p| p.to_string()).collect())
    }
}

impl Allowlist {
    /// A comma-separated list (`cgi-bin/,wxa/`); a leading `/` is tolerated and dropped (the
    /// rules of [`crate::config::api_prefixes`], which validates `GATEWAY_ALLOWED_PREFIXES`).
    pub fn parse(setting: &str) -> Result<Self, AllowlistError> {
        crate::config::api_prefixes(setting)
            .map(Self)
            .ok_or_else(|| AllowlistError(setting.to_string()))
    }

    /// Prefixes already validated (by [`crate::config::Config`]).
    pub fn from_prefixes(prefixes: Vec<String>) -> Self {
        Self(prefixes)
    }

    pub fn permits(&self, path: &str) -> bool {
        self.0.iter().any(|p| path.starts_with(p.as_str()))
    }

    pub fn prefixes(&self) -> &[String] {
        &self.0
    }
}

/// The query parameter that carries the token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenParam {
    AccessToken,
    ComponentAccessToken,
}

impl TokenParam {
    pub fn as_str(self) -> &'static str {
        match self {
            TokenParam::AccessToken => "access_token",
            TokenParam::ComponentAccessToken => "component_access_token",
        }
    }

    /// A caller's explicit choice (header `x-wxopen-token-param`), for the APIs whose parameter
    /// name the docs and SDKs disagree on.
    pub fn parse(s: &str) -> Option<Self> {
        match s.trim() {
            "access_token" => Some(TokenParam::AccessToken),
            "component_access_token" => Some(TokenParam::ComponentAccessToken),
            _ => None,
        }
    }

    /// The parameter for `path` on `target`'s route: always `access_token` with an authorizer
    /// token; with the component token, `component_access_token` for `cgi-bin/component/…` (but
    /// the domain APIs) and `access_token` for the rest (`wxa/…` template library and
    /// registration APIs, `cgi-bin/openapi/…`, `cgi-bin/clear_quota`).
    pub fn for_path(target: &Target, path: &ApiPath) -> Self {
        match target {
            Target::Authorizer(_) => TokenParam::AccessToken,
            Target::Component => {
                let p = path.as_str();
                if p.starts_with("cgi-bin/component/")
                    && !COMPONENT_APIS_WITH_ACCESS_TOKEN
                        .iter()
                        .any(|api| matches_entry(p, api))
                {
                    TokenParam::ComponentAccessToken
                } else {
                    TokenParam::AccessToken
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(raw: &str) -> Result<ApiPath, PathError> {
        ApiPath::parse(raw, &Allowlist::default())
    }

    #[test]
    fn plain_paths_under_the_allowlist_pass() {
        for ok in [
            "cgi-bin/menu/create",
            "cgi-bin/user/get",
            "cgi-bin/media/upload",
            "wxa/getwxacodeunlimit",
            "wxa/get_qrcode",
            "datacube/getweanalysisappiddailysummarytrend",
            "cgi-bin/component/setprivacysetting",
            "channels/ec/order/get",
            "cgi-bin/media/get.jpg",
        ] {
            assert_eq!(parse(ok).map(|p| p.to_string()), Ok(ok.to_string()), "{ok}");
        }
    }

    #[test]
    fn hostile_paths_are_refused_with_their_reason() {
        use PathError::*;
        let long = format!("cgi-bin/{}", "a".repeat(MAX_PATH_BYTES));
        let cases: &[(&str, PathError)] = &[
            ("", Empty),
            (&long, TooLong),
            ("/cgi-bin/menu/create", Absolute),
            ("http://evil.example/cgi-bin/menu/create", Absolute),
            ("https:/evil.example", BadCharacter(':')),
            ("//evil.example/cgi-bin/x", Absolute),
            ("cgi-bin/../component/api_component_token", DotSegment),
            ("cgi-bin/./menu/create", DotSegment),
            ("cgi-bin/menu/..", DotSegment),
            ("..", DotSegment),
            ("cgi-bin//menu/create", EmptySegment),
            ("cgi-bin/menu/create/", EmptySegment),
            ("cgi-bin%2fmenu%2fcreate", Encoded),
            ("cgi-bin%2Fmenu", Encoded),
            ("cgi-bin/%2e%2e/token", Encoded),
            ("cgi-bin/%2E%2E/token", Encoded),
            ("cgi-bin%5cmenu", Encoded),
            ("cgi-bin/%00", Encoded),
            ("cgi-bin\\menu\\create", BadCharacter('\\')),
            ("cgi-bin/menu@evil.example", BadCharacter('@')),
            ("user@evil.example/cgi-bin/x", BadCharacter('@')),
            ("cgi-bin/menu\n/create", BadCharacter('\n')),
            ("cgi-bin/menu\u{0}", BadCharacter('\u{0}')),
            ("cgi-bin/menu create", BadCharacter(' ')),
            ("cgi-bin/menu?x=1", BadCharacter('?')),
            ("cgi-bin/menu#x", BadCharacter('#')),
            ("cgi-bin/ménu", BadCharacter('é')),
            ("sns/userinfo", NotAllowed),
            ("evil/cgi-bin/menu", NotAllowed),
            ("CGI-BIN/menu/create", NotAllowed),
            ("cgi-bin", NotAllowed),
            ("cgi-bin/token", TokenApi),
            ("CGI-BIN/Token", TokenApi),
            ("cgi-bin/stable_token", TokenApi),
            ("cgi-bin/component/api_component_token", TokenApi),
            ("cgi-bin/component/api_authorizer_token", TokenApi),
            ("cgi-bin/component/API_QUERY_AUTH", TokenApi),
            ("cgi-bin/component/api_create_preauthcode", TokenApi),
            ("cgi-bin/component/api_get_authorizer_list", TokenApi),
            ("cgi-bin/component/api_start_push_ticket", TokenApi),
            ("cgi-bin/component/clear_quota/v2", TokenApi),
        ];
        for (raw, want) in cases {
            assert_eq!(parse(raw).as_ref(), Err(want), "{raw:?}");
        }
    }

    #[test]
    fn denylist_matches_whole_segments_only() {
        assert!(is_token_api("cgi-bin/token"));
        assert!(is_token_api("cgi-bin/token/x"));
        assert!(!is_token_api("cgi-bin/tokenizer"));
        assert!(!is_token_api("cgi-bin/ticket/getticket"));
        // The older quota form with a token is an ordinary API.
        assert!(!is_token_api("cgi-bin/component/clear_quota"));
    }

    #[test]
    fn allowlist_setting_is_parsed_and_validated() {
        let a = Allowlist::parse(" cgi-bin/ , /wxa/,,").unwrap();
        assert_eq!(a.prefixes(), ["cgi-bin/", "wxa/"]);
        assert!(a.permits("wxa/commit"));
        assert!(!a.permits("datacube/x"));
        for bad in ["cgi-bin", "", " , ", "cgi-bin/../", "a%2f/", "a//"] {
            assert!(Allowlist::parse(bad).is_err(), "{bad:?}");
        }
        // A narrower list refuses what the default allows.
        assert_eq!(ApiPath::parse("datacube/x", &a), Err(PathError::NotAllowed));
    }

    #[test]
    fn token_parameter_follows_the_route_and_path() {
        let p = |s: &str| ApiPath::checked(s).unwrap();
        let authorizer = Target::Authorizer("wx0000000000000001".into());
        for path in ["cgi-bin/menu/create", "cgi-bin/component/setprivacysetting"] {
            assert_eq!(
                TokenParam::for_path(&authorizer, &p(path)),
                TokenParam::AccessToken
            );
        }
        let c = |s: &str| TokenParam::for_path(&Target::Component, &p(s)).as_str();
        assert_eq!(
            c("cgi-bin/component/api_get_authorizer_info"),
            "component_access_token"
        );
        assert_eq!(
            c("cgi-bin/component/fastregisterweapp"),
            "component_access_token"
        );
        assert_eq!(
            c("cgi-bin/component/modify_wxa_server_domain"),
            "access_token"
        );
        assert_eq!(
            c("cgi-bin/component/modify_wxa_jump_domain"),
            "access_token"
        );
        assert_eq!(c("wxa/gettemplatelist"), "access_token");
        assert_eq!(c("wxa/addtotemplate"), "access_token");
        assert_eq!(c("wxa/component/fastregisterbetaweapp"), "access_token");
        assert_eq!(c("cgi-bin/openapi/quota/get"), "access_token");
        assert_eq!(
            TokenParam::parse(" component_access_token"),
            Some(TokenParam::ComponentAccessToken)
        );
        assert_eq!(TokenParam::parse("token"), None);
    }
}
