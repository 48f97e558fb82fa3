//! WeChat errcodes as typed errors.

use std::net::IpAddr;

use super::Api;

/// What an errcode means for the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// -1: retry with bounded backoff.
    SystemBusy,
    /// 40001 / 40014 / 42001: re-read the stored token, refresh that version once.
    TokenStale,
    /// 41001: a bug in the caller.
    TokenMissing,
    /// 40013.
    InvalidAppId,
    /// 40029 / 40163 / 42003 / 61009 / 61010: code invalid, used or expired; do not retry.
    InvalidCode,
    /// 45009: daily quota reached; stop calling.
    QuotaReached,
    /// 48001: the merchant did not grant the permission set.
    NoPermission,
    /// 61003 / 61007: the component is not authorized by this account / for this API.
    ComponentNotAuthorized,
    /// 61004: the caller's IP is not whitelisted.
    IpNotWhitelisted,
    /// 61005 / 61006: the component ticket expired or is invalid.
    TicketInvalid,
    /// 61023: the refresh token is invalid.
    RefreshTokenInvalid,
    /// 89000: the account is already bound to an open account.
    OpenAlreadyBound,
    /// 89001: authorizer and open account are not the same subject.
    OpenNotSameSubject,
    /// 89002: the account is not bound to an open account.
    OpenNotBound,
    /// 89003: the open account was not created through the API.
    OpenNotCreatedByApi,
    /// 89004: the open account reached its limit of bound accounts.
    OpenLimitReached,
    /// 85014 / 85064: no such template (85014 on commit, often a quoted id) or draft/template
    /// (85064, the template library).
    TemplateNotFound,
    /// 85013 / 85048: `ext_json` is invalid or does not parse.
    InvalidExtJson,
    /// 85009: a version of this mini program is already in review (undo it or wait).
    AuditInProgress,
    /// 85085: the platform's monthly audit quota is used up.
    AuditQuotaUsed,
    /// 85086 / 86001: nothing committed yet (submit before any commit, QR code of no trial).
    NothingCommitted,
    /// 85019 / 85020: no approved version to release, or the audit state does not allow it.
    NoApprovedVersion,
    /// 85052: this version is already released.
    AlreadyReleased,
    /// 61039: the privacy scan after a commit is still running; submit again in about a minute.
    PrivacyScanRunning,
    Unknown,
}

impl ErrorKind {
    pub fn from_errcode(code: i64) -> Self {
        match code {
            -1 => ErrorKind::SystemBusy,
            40001 | 40014 | 42001 => ErrorKind::TokenStale,
            41001 => ErrorKind::TokenMissing,
            40013 => ErrorKind::InvalidAppId,
            40029 | 40163 | 42003 | 61009 | 61010 => ErrorKind::InvalidCode,
            45009 => ErrorKind::QuotaReached,
            48001 => ErrorKind::NoPermission,
            // 86000: "not called by a third party": the MP's code is not the platform's to manage.
            61003 | 61007 | 86000 => ErrorKind::ComponentNotAuthorized,
            61004 => ErrorKind::IpNotWhitelisted,
            61005 | 61006 => ErrorKind::TicketInvalid,
            61023 => ErrorKind::RefreshTokenInvalid,
            89000 => ErrorKind::OpenAlreadyBound,
            89001 => ErrorKind::OpenNotSameSubject,
            89002 => ErrorKind::OpenNotBound,
            89003 => ErrorKind::OpenNotCreatedByApi,
            89004 => ErrorKind::OpenLimitReached,
            85014 | 85064 => ErrorKind::TemplateNotFound,
            85013 | 85048 => ErrorKind::InvalidExtJson,
            85009 => ErrorKind::AuditInProgress,
            85085 => ErrorKind::AuditQuotaUsed,
            85086 | 86001 => ErrorKind::NothingCommitted,
            85019 | 85020 => ErrorKind::NoApprovedVersion,
            85052 => ErrorKind::AlreadyReleased,
            61039 => ErrorKind::PrivacyScanRunning,
            _ => ErrorKind::Unknown,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::SystemBusy => "system_busy",
            ErrorKind::TokenStale => "token_stale",
            ErrorKind::TokenMissing => "token_missing",
            ErrorKind::InvalidAppId => "invalid_appid",
            ErrorKind::InvalidCode => "invalid_code",
            ErrorKind::QuotaReached => "quota_reached",
            ErrorKind::NoPermission => "no_permission",
            ErrorKind::ComponentNotAuthorized => "component_not_authorized",
            ErrorKind::IpNotWhitelisted => "ip_not_whitelisted",
            ErrorKind::TicketInvalid => "ticket_invalid",
            ErrorKind::RefreshTokenInvalid => "refresh_token_invalid",
            ErrorKind::OpenAlreadyBound => "open_already_bound",
            ErrorKind::OpenNotSameSubject => "open_not_same_subject",
            ErrorKind::OpenNotBound => "open_not_bound",
            ErrorKind::OpenNotCreatedByApi => "open_not_created_by_api",
            ErrorKind::OpenLimitReached => "open_limit_reached",
            ErrorKind::TemplateNotFound => "template_not_found",
            ErrorKind::InvalidExtJson => "invalid_ext_json",
            ErrorKind::AuditInProgress => "audit_in_progress",
            ErrorKind::AuditQuotaUsed => "audit_quota_used",
            ErrorKind::NothingCommitted => "nothing_committed",
            ErrorKind::NoApprovedVersion => "no_approved_version",
            ErrorKind::AlreadyReleased => "already_released",
            ErrorKind::PrivacyScanRunning => "privacy_scan_running",
            ErrorKind::Unknown => "unknown",
        }
    }
}

impl std::fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum WeChatError {
    #[error("{api}: WeChat did not answer in time")]
    Timeout { api: Api },
    #[error("{api}: could not reach WeChat")]
    Transport {
        api: Api,
        #[source]
        source: reqwest::Error,
    },
    #[error("{api}: WeChat answered HTTP {status}")]
    Http { api: Api, status: u16 },
    #[error("{api}: WeChat's answer could not be read")]
    Decode { api: Api },
    #[error("{api}: WeChat errcode {errcode} ({kind})")]
    Api {
        api: Api,
        errcode: i64,
        kind: ErrorKind,
        /// For 61004: the caller IP WeChat reported, to whitelist.
        ip: Option<IpAddr>,
    },
}

impl WeChatError {
    pub(crate) fn api(api: Api, errcode: i64, errmsg: &str) -> Self {
        let kind = ErrorKind::from_errcode(errcode);
        let ip = if kind == ErrorKind::IpNotWhitelisted {
            reported_ip(errmsg)
        } else {
            None
        };
        WeChatError::Api {
            api,
            errcode,
            kind,
            ip,
        }
    }

    pub fn errcode(&self) -> Option<i64> {
        match self {
            WeChatError::Api { errcode, .. } => Some(*errcode),
            _ => None,
        }
    }

    pub fn kind(&self) -> Option<ErrorKind> {
        match self {
            WeChatError::Api { kind, .. } => Some(*kind),
            _ => None,
        }
    }

    /// Worth a bounded retry: timeouts, transport failures, 5xx, and errcode -1.
    pub fn is_retryable(&self) -> bool {
        match self {
            WeChatError::Timeout { .. } | WeChatError::Transport { .. } => true,
            WeChatError::Http { status, .. } => *status >= 500,
            WeChatError::Api { kind, .. } => *kind == ErrorKind::SystemBusy,
            WeChatError::Decode { .. } => false,
        }
    }

    /// The token sent was invalid, expired or not the latest (40001 / 40014 / 42001).
    pub fn is_token_stale(&self) -> bool {
        self.kind() == Some(ErrorKind::TokenStale)
    }
}

/// Finds the IP in a 61004 message, e.g. `invalid ip 203.0.113.7 ipv6 ::ffff:203.0.113.7, not in whitelist`.
fn reported_ip(errmsg: &str) -> Option<IpAddr> {
    let rest = errmsg.split("invalid ip").nth(1)?;
    rest.split(|c: char| c.is_whitespace() || c == ',')
        .find(|w| !w.is_empty())
        .and_then(|w| w.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ip_is_extracted_from_61004() {
        let e = WeChatError::api(
            Api::ComponentToken,
            61004,
            "access clientip is not registered, invalid ip 203.0.113.7 ipv6 ::ffff:203.0.113.7, not in whitelist rid: 1",
        );
        assert!(
            matches!(e, WeChatError::Api { ip: Some(ip), .. } if ip.to_string() == "203.0.113.7")
        );
        assert!(matches!(
            WeChatError::api(Api::ComponentToken, 61004, "garbage"),
            WeChatError::Api { ip: None, .. }
        ));
    }

    #[test]
    fn codes_map_to_kinds() {
        for (code, kind) in [
            (-1, ErrorKind::SystemBusy),
            (40001, ErrorKind::TokenStale),
            (40014, ErrorKind::TokenStale),
            (42001, ErrorKind::TokenStale),
            (45009, ErrorKind::QuotaReached),
            (61023, ErrorKind::RefreshTokenInvalid),
            (89004, ErrorKind::OpenLimitReached),
            (86000, ErrorKind::ComponentNotAuthorized),
            (85009, ErrorKind::AuditInProgress),
            (85048, ErrorKind::InvalidExtJson),
            (85085, ErrorKind::AuditQuotaUsed),
            (61039, ErrorKind::PrivacyScanRunning),
            (12345, ErrorKind::Unknown),
        ] {
            assert_eq!(ErrorKind::from_errcode(code), kind, "{code}");
        }
        let e = WeChatError::api(Api::OpenBind, 89001, "secret-looking errmsg");
        assert_eq!(
            e.to_string(),
            "bind: WeChat errcode 89001 (open_not_same_subject)"
        );
        assert!(!e.is_retryable());
        assert!(WeChatError::api(Api::OpenBind, -1, "").is_retryable());
    }
}
