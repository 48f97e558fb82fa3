//! The one error shape of every internal route, and how each domain error maps to it.
//!
//! Body: `{"error": "<snake_case_code>", "message": "<for a human>"}` plus `"wechat_errcode"` when
//! WeChat said no. Messages never carry internal error text or secrets. The domain modules know
//! nothing of this: every mapping lives here.

use lambda_http::{Body, Response};

use crate::authorization::LinkError;
use crate::code::CodeError;
use crate::gateway::quota::QuotaError;
use crate::gateway::{GatewayError, PathError, RequestError};
use crate::identity::IdentityError;
use crate::login::LoginError;
use crate::login_codes::ReturnToError;
use crate::miniprogram_login::MiniProgramLoginError;
use crate::model::AuthorizerState;
use crate::oauth::OauthError;
use crate::open_account::OpenAccountError;
use crate::permissions::{self, MissingPermissions, SignInRefusal};
use crate::push::PushError;
use crate::releases::ReleaseError;
use crate::secrets::SecretsError;
use crate::store::StoreError;
use crate::tokens::TokenError;
use crate::wechat::forward::ForwardError;
use crate::wechat::{ErrorKind, WeChatError};
use crate::xml::XmlError;

use super::json_response;

/// An error as the caller sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: u16,
    pub code: &'static str,
    pub message: String,
    pub wechat_errcode: Option<i64>,
    /// Extra fields merged into the body (e.g. the bound `open_appid` of a 409).
    pub extra: Option<serde_json::Value>,
}

impl ApiError {
    pub fn new(status: u16, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            wechat_errcode: None,
            extra: None,
        }
    }

    pub fn internal() -> Self {
        Self::new(
            500,
            "internal_error",
            "an internal error occurred; it has been logged",
        )
    }

    pub fn method_not_allowed(allowed: &str) -> Self {
        Self::new(
            405,
            "method_not_allowed",
            format!("this route accepts {allowed} only"),
        )
    }

    pub fn body(&self) -> serde_json::Value {
        let mut v = serde_json::json!({"error": self.code, "message": self.message});
        if let Some(obj) = v.as_object_mut() {
            if let Some(code) = self.wechat_errcode {
                obj.insert("wechat_errcode".into(), code.into());
            }
            if let Some(serde_json::Value::Object(extra)) = &self.extra {
                for (k, val) in extra {
                    obj.entry(k.clone()).or_insert_with(|| val.clone());
                }
            }
        }
        v
    }

    pub fn into_response(self) -> Response<Body> {
        json_response(self.status, &self.body())
    }
}

impl From<&StoreError> for ApiError {
    fn from(_: &StoreError) -> Self {
        ApiError::new(
            503,
            "store_unavailable",
            "the state store failed; try again",
        )
    }
}

impl From<&SecretsError> for ApiError {
    fn from(e: &SecretsError) -> Self {
        match e {
            SecretsError::NotConfigured => ApiError::new(
                503,
                "not_configured",
                "the component credentials are not configured yet",
            ),
            _ => ApiError::new(
                503,
                "credentials_unavailable",
                "the component credentials could not be loaded",
            ),
        }
    }
}

impl From<&LinkError> for ApiError {
    fn from(e: &LinkError) -> Self {
        ApiError::new(400, "invalid_parameter", e.to_string())
    }
}

impl From<&TokenError> for ApiError {
    fn from(e: &TokenError) -> Self {
        match e {
            TokenError::NoTicket => ApiError::new(
                503,
                "no_ticket",
                "no component_verify_ticket has been received from WeChat yet; tickets arrive every 10 minutes",
            ),
            TokenError::UnknownAuthorizer => {
                ApiError::new(404, "unknown_authorizer", "no authorizer with this appid")
            }
            TokenError::NotAuthorized(AuthorizerState::NeedsReauth) => {
                ApiError::new(409, "authorizer_needs_reauth", e.to_string())
            }
            TokenError::NotAuthorized(_) => {
                ApiError::new(409, "authorizer_unauthorized", e.to_string())
            }
            TokenError::Busy => ApiError::new(503, "busy", e.to_string()),
            TokenError::VersionAhead { .. } => {
                ApiError::new(400, "invalid_parameter", e.to_string())
            }
            TokenError::WeChat(w) => ApiError::from(w),
            TokenError::Store(s) => ApiError::from(s),
            TokenError::Secrets(SecretsError::NotConfigured) => ApiError::new(
                503,
                "not_configured",
                "the component credentials are not configured yet",
            ),
            TokenError::Secrets(_) => ApiError::new(
                503,
                "credentials_unavailable",
                "the component credentials could not be loaded",
            ),
        }
    }
}

impl From<&WeChatError> for ApiError {
    fn from(e: &WeChatError) -> Self {
        let mut api = match e.kind() {
            Some(ErrorKind::QuotaReached) => ApiError::new(
                503,
                "wechat_quota_reached",
                "WeChat's daily quota for this API is used up",
            ),
            Some(ErrorKind::IpNotWhitelisted) => ApiError::new(
                502,
                "wechat_ip_not_whitelisted",
                "WeChat refused the caller IP: add the egress IP to the platform's whitelist",
            ),
            Some(ErrorKind::TicketInvalid) => ApiError::new(
                503,
                "ticket_invalid",
                "WeChat rejected the component ticket; a new one was requested",
            ),
            _ => match e {
                WeChatError::Timeout { .. } => {
                    ApiError::new(504, "wechat_timeout", "WeChat did not answer in time")
                }
                _ => ApiError::new(502, "wechat_error", e.to_string()),
            },
        };
        api.wechat_errcode = e.errcode();
        api
    }
}

impl From<&PushError> for ApiError {
    fn from(e: &PushError) -> Self {
        let msg = e.to_string();
        match e {
            PushError::TooLarge => ApiError::new(413, "body_too_large", msg),
            PushError::EmptyBody => ApiError::new(400, "empty_body", msg),
            PushError::MissingParameter(_) => ApiError::new(400, "missing_parameter", msg),
            PushError::InvalidParameter(_) => ApiError::new(400, "invalid_parameter", msg),
            PushError::StaleTimestamp => ApiError::new(401, "stale_timestamp", msg),
            PushError::Xml(XmlError::Doctype) => ApiError::new(400, "forbidden_xml", msg),
            PushError::Xml(XmlError::MissingField(_)) => ApiError::new(400, "missing_field", msg),
            PushError::Xml(_) => ApiError::new(400, "malformed_xml", msg),
            PushError::Crypto(crate::crypto::CryptoError::BadSignature) => {
                ApiError::new(401, "invalid_signature", msg)
            }
            PushError::Crypto(crate::crypto::CryptoError::WrongAppId) => {
                ApiError::new(401, "wrong_appid", msg)
            }
            PushError::Crypto(_) => ApiError::new(
                400,
                "decrypt_failed",
                format!("the message could not be decrypted: {msg}"),
            ),
        }
    }
}

/// The one error shape for open-account failures, with a message a person can act on.
impl From<&OpenAccountError> for ApiError {
    fn from(e: &OpenAccountError) -> Self {
        match e {
            OpenAccountError::Token(t) => ApiError::from(t),
            OpenAccountError::Store(s) => ApiError::from(s),
            OpenAccountError::ProfilePending => profile_pending(),
            OpenAccountError::MissingPermission(id) => ApiError::new(
                403,
                "permission_not_granted",
                format!(
                    "the merchant has not granted permission set {id} ({}); ask them to authorize again with it",
                    permissions::name(None, *id).unwrap_or("open platform account management")
                ),
            ),
            OpenAccountError::AlreadyBound { open_appid } => {
                let mut api = ApiError::new(
                    409,
                    "already_bound",
                    "the account is already bound to an open account; unbind it first to move it",
                );
                api.wechat_errcode = Some(89000);
                api.extra = Some(serde_json::json!({ "open_appid": open_appid }));
                api
            }
            OpenAccountError::WeChat(w) => {
                let (status, code, message) = match w.kind() {
                    Some(ErrorKind::OpenNotSameSubject) => (
                        409,
                        "not_same_subject",
                        "the account and the open account belong to different subjects (companies); only same-subject accounts can be bound",
                    ),
                    Some(ErrorKind::OpenNotBound) => (
                        404,
                        "not_bound",
                        "the account is not bound to this open account",
                    ),
                    Some(ErrorKind::OpenNotCreatedByApi) => (
                        409,
                        "not_created_by_api",
                        "the open account was registered on the Open Platform website; a third-party platform may not bind or unbind it",
                    ),
                    Some(ErrorKind::OpenLimitReached) => (
                        409,
                        "limit_reached",
                        "the open account has reached its limit of bound accounts",
                    ),
                    Some(ErrorKind::OpenAlreadyBound) => (
                        409,
                        "already_bound",
                        "the account is already bound to an open account",
                    ),
                    Some(ErrorKind::NoPermission) => (
                        403,
                        "permission_not_granted",
                        "WeChat says the open-account permission set (24 for official accounts, 25 for mini programs) is not granted",
                    ),
                    Some(ErrorKind::InvalidAppId) => (
                        400,
                        "invalid_appid",
                        "WeChat does not know this appid or open_appid",
                    ),
                    Some(ErrorKind::ComponentNotAuthorized) => (
                        409,
                        "component_not_authorized",
                        "the account has not authorized this platform for this operation",
                    ),
                    _ => return ApiError::from(w),
                };
                let mut api = ApiError::new(status, code, message);
                api.wechat_errcode = w.errcode();
                api
            }
        }
    }
}

/// Mini program code: WeChat's refusals that mean something to the caller get their own code.
impl From<&CodeError> for ApiError {
    fn from(e: &CodeError) -> Self {
        match e {
            CodeError::Token(t) => ApiError::from(t),
            CodeError::Store(s) => ApiError::from(s),
            CodeError::Missing(m) => ApiError::from(m),
            CodeError::NotAMiniProgram => ApiError::new(409, "not_a_mini_program", e.to_string()),
            CodeError::NoAudit => ApiError::new(404, "no_audit", e.to_string()),
            CodeError::Contended => ApiError::new(503, "code_record_contended", e.to_string()),
            CodeError::WeChat(w) => {
                let (status, code, message) = match w.kind() {
                    Some(ErrorKind::TemplateNotFound) => (
                        404,
                        "template_not_found",
                        "WeChat has no such template (or draft) in the library",
                    ),
                    Some(ErrorKind::InvalidExtJson) => (
                        400,
                        "invalid_ext_json",
                        "WeChat refused ext_json (invalid, or it does not parse)",
                    ),
                    Some(ErrorKind::AuditInProgress) => (
                        409,
                        "audit_in_progress",
                        "a version is already in review: undo it or wait for the result",
                    ),
                    Some(ErrorKind::AuditQuotaUsed) => (
                        409,
                        "audit_quota_used",
                        "the platform's monthly audit quota is used up",
                    ),
                    Some(ErrorKind::NothingCommitted) => (
                        409,
                        "nothing_committed",
                        "no code has been committed for this mini program yet",
                    ),
                    Some(ErrorKind::NoApprovedVersion) => (
                        409,
                        "no_approved_version",
                        "there is no approved version to release",
                    ),
                    Some(ErrorKind::AlreadyReleased) => {
                        (409, "already_released", "this version is already released")
                    }
                    Some(ErrorKind::PrivacyScanRunning) => (
                        409,
                        "privacy_scan_running",
                        "WeChat's privacy scan of the commit is still running; submit again in a minute",
                    ),
                    Some(ErrorKind::ComponentNotAuthorized) => (
                        403,
                        "component_not_authorized",
                        "the mini program has not authorized this platform to manage its code (set 18)",
                    ),
                    _ => return ApiError::from(w),
                };
                let mut api = ApiError::new(status, code, message);
                api.wechat_errcode = w.errcode();
                api
            }
        }
    }
}

impl From<&MissingPermissions> for ApiError {
    fn from(e: &MissingPermissions) -> Self {
        ApiError::new(
            403,
            "permission_not_granted",
            format!(
                "the merchant has not granted permission sets {}; ask them to authorize again with them",
                e.describe()
            ),
        )
    }
}

impl From<&LoginError> for ApiError {
    fn from(e: &LoginError) -> Self {
        match e {
            LoginError::Token(t) => ApiError::from(t),
            LoginError::Store(s) => ApiError::from(s),
            LoginError::Refused(r) => ApiError::from(r),
            LoginError::Identity(i) => ApiError::from(i),
        }
    }
}

/// A sign-in flow the authorizer cannot run: 409 for the account kind, 403 for permissions.
impl From<&SignInRefusal> for ApiError {
    fn from(e: &SignInRefusal) -> Self {
        match e {
            SignInRefusal::NotOfficialAccount { flow } => ApiError::new(
                409,
                "not_official_account",
                format!("{flow} needs an official account; mini programs cannot run it"),
            ),
            SignInRefusal::NotMiniProgram { flow } => ApiError::new(
                409,
                "not_mini_program",
                format!("{flow} needs a mini program; this authorizer is an official account"),
            ),
            SignInRefusal::NotVerifiedServiceAccount { flow } => ApiError::new(
                409,
                "not_verified_service_account",
                format!("{flow} needs a WeChat-verified service account (服务号, verified)"),
            ),
            SignInRefusal::Missing(m) => ApiError::from(m),
            SignInRefusal::ProfilePending { .. } => profile_pending(),
        }
    }
}

/// 503: the authorizer's profile (kind, verification) is still to be read from WeChat.
fn profile_pending() -> ApiError {
    ApiError::new(
        503,
        "profile_pending",
        "WeChat has not yet told wxopen what kind of account this is (its profile is read again within 5 minutes); retry shortly",
    )
}

impl From<&IdentityError> for ApiError {
    fn from(e: &IdentityError) -> Self {
        match e {
            IdentityError::Store(s) => ApiError::from(s),
            IdentityError::NotFound => {
                ApiError::new(404, "unknown_identity", "no identity with this id")
            }
            IdentityError::BoundToOtherUser => ApiError::new(
                409,
                "bound_to_other_user",
                "the identity is bound to another user; send \"replace\": true to move it",
            ),
            IdentityError::NotBound => {
                ApiError::new(404, "not_bound", "the identity is not bound to a user")
            }
            IdentityError::Contended => ApiError::new(
                503,
                "identity_contended",
                "the identity kept changing under concurrent writes; try again",
            ),
        }
    }
}

impl From<&ReturnToError> for ApiError {
    fn from(e: &ReturnToError) -> Self {
        match e {
            ReturnToError::Invalid => ApiError::new(400, "invalid_return_to", e.to_string()),
            ReturnToError::NotAllowed => ApiError::new(
                400,
                "return_to_not_allowed",
                "return_to is not on an allowed origin (SIGN_IN_RETURN_TO_ORIGINS)",
            ),
        }
    }
}

/// A WeChat code refused by a sign-in exchange: 400 (the user starts again), never retried.
fn code_refused(w: &WeChatError) -> Option<ApiError> {
    let (code, message) = match w.errcode()? {
        40163 => (
            "code_used",
            "this sign-in code was already used; start again",
        ),
        40029 => (
            "invalid_code",
            "WeChat does not know this code; start again",
        ),
        42003 => ("code_expired", "this sign-in code expired; start again"),
        _ => return None,
    };
    let mut api = ApiError::new(400, code, message);
    api.wechat_errcode = w.errcode();
    Some(api)
}

fn token_or_code(t: &TokenError) -> ApiError {
    match t {
        TokenError::WeChat(w) => code_refused(w).unwrap_or_else(|| ApiError::from(w)),
        _ => ApiError::from(t),
    }
}

impl From<&OauthError> for ApiError {
    fn from(e: &OauthError) -> Self {
        match e {
            OauthError::Token(t) => token_or_code(t),
            OauthError::Store(s) => ApiError::from(s),
            OauthError::Secrets(s) => ApiError::from(s),
            OauthError::Refused(r) => ApiError::from(r),
            OauthError::Identity(i) => ApiError::from(i),
            OauthError::ReturnTo(r) => ApiError::from(r),
            OauthError::BadState => ApiError::new(400, "invalid_state", e.to_string()),
            OauthError::Replayed => ApiError::new(400, "state_replayed", e.to_string()),
        }
    }
}

impl From<&MiniProgramLoginError> for ApiError {
    fn from(e: &MiniProgramLoginError) -> Self {
        match e {
            MiniProgramLoginError::Token(t) => token_or_code(t),
            MiniProgramLoginError::Store(s) => ApiError::from(s),
            MiniProgramLoginError::Refused(r) => ApiError::from(r),
            MiniProgramLoginError::Identity(i) => ApiError::from(i),
        }
    }
}

/// The WeChat API gateway's refusals and failures (a WeChat answer itself passes through).
impl From<&GatewayError> for ApiError {
    fn from(e: &GatewayError) -> Self {
        let msg = e.to_string();
        match e {
            GatewayError::Path(PathError::TokenApi) => ApiError::new(403, "token_api_refused", msg),
            GatewayError::Path(PathError::NotAllowed) => {
                ApiError::new(403, "path_not_allowed", msg)
            }
            GatewayError::Path(_) => ApiError::new(400, "invalid_path", msg),
            GatewayError::Request(RequestError::MethodNotAllowed) => {
                ApiError::new(405, "method_not_allowed", msg)
            }
            GatewayError::Request(RequestError::BodyTooLarge { .. }) => {
                ApiError::new(413, "body_too_large", msg)
            }
            GatewayError::Request(RequestError::InvalidQuery) => {
                ApiError::new(400, "invalid_query", msg)
            }
            GatewayError::Request(RequestError::InvalidContentType) => {
                ApiError::new(400, "invalid_content_type", msg)
            }
            GatewayError::Token(t) => ApiError::from(t),
            GatewayError::Upstream(ForwardError::Timeout) => {
                ApiError::new(504, "wechat_timeout", "WeChat did not answer in time")
            }
            GatewayError::Upstream(_) => ApiError::new(502, "wechat_unreachable", msg),
            GatewayError::ResponseTooLarge { .. } => ApiError::new(413, "response_too_large", msg),
            GatewayError::Redirected { .. } => ApiError::new(502, "wechat_redirect", msg),
        }
    }
}

/// A quota reset or read WeChat refused, with WeChat's errcode.
impl From<&QuotaError> for ApiError {
    fn from(e: &QuotaError) -> Self {
        let msg = e.to_string();
        let mut api = match e {
            QuotaError::Unreadable => ApiError::new(502, "wechat_error", msg),
            QuotaError::ResetLimitReached => ApiError::new(409, "quota_reset_limit_reached", msg),
            QuotaError::UnknownCgiPath(_) => ApiError::new(400, "invalid_cgi_path", msg),
            QuotaError::CgiPathNotOwned => ApiError::new(403, "cgi_path_not_owned", msg),
            QuotaError::QuotaReached => ApiError::new(503, "wechat_quota_reached", msg),
            QuotaError::Other(_) => ApiError::new(502, "wechat_error", msg),
        };
        api.wechat_errcode = e.errcode();
        api
    }
}

// ---- fast registration ----

impl From<&crate::registration::RegistrationError> for ApiError {
    fn from(e: &crate::registration::RegistrationError) -> Self {
        ApiError::new(400, "invalid_parameter", e.to_string())
    }
}

impl From<&crate::registration::StartError> for ApiError {
    fn from(e: &crate::registration::StartError) -> Self {
        use crate::registration::StartError;
        match e {
            StartError::Token(TokenError::WeChat(w)) => registration_wechat(w),
            StartError::Token(t) => ApiError::from(t),
            StartError::Store(s) => ApiError::from(s),
            StartError::NoAuthorizeUrl => ApiError::new(
                502,
                "wechat_error",
                "WeChat accepted the registration but gave no authorisation URL",
            ),
            StartError::UnknownOfficialAccount => ApiError::new(
                404,
                "unknown_authorizer",
                "oa_appid is not an authorized official account of this platform",
            ),
            StartError::Permissions(p) => ApiError::from(p),
        }
    }
}

impl From<&ReleaseError> for ApiError {
    fn from(e: &ReleaseError) -> Self {
        match e {
            ReleaseError::Invalid(m) => ApiError::new(400, "invalid_parameter", m.clone()),
            ReleaseError::UnknownTargets { .. } => {
                ApiError::new(422, "unknown_targets", e.to_string())
            }
            ReleaseError::NotMiniPrograms { .. } => {
                ApiError::new(422, "not_mini_programs", e.to_string())
            }
            ReleaseError::NoTargets => ApiError::new(422, "no_targets", e.to_string()),
            ReleaseError::UnknownJob => ApiError::new(404, "unknown_release", e.to_string()),
            ReleaseError::JobFinished(_) => ApiError::new(409, "release_finished", e.to_string()),
            ReleaseError::Store(s) => ApiError::from(s),
            ReleaseError::Queue(_) => {
                ApiError::new(503, "queue_unavailable", "the work queue failed; try again")
            }
        }
    }
}

impl From<&crate::callbacks::fast_registration::FastRegistrationError> for ApiError {
    fn from(e: &crate::callbacks::fast_registration::FastRegistrationError) -> Self {
        use crate::callbacks::fast_registration::FastRegistrationError;
        match e {
            FastRegistrationError::Token(TokenError::WeChat(w)) => registration_wechat(w),
            FastRegistrationError::Token(t) => ApiError::from(t),
            FastRegistrationError::Store(s) => ApiError::from(s),
            FastRegistrationError::Event(_) => ApiError::internal(),
        }
    }
}

/// WeChat's refusals of a fast registration.
fn registration_wechat(w: &WeChatError) -> ApiError {
    let mut api = match w.kind() {
        Some(ErrorKind::RegistrationRunning) => ApiError::new(
            409,
            "registration_running",
            "WeChat is already running a registration for this subject; retry 24 h after the last one",
        ),
        Some(ErrorKind::RegistrationInvalid) => ApiError::new(
            400,
            "registration_invalid",
            "WeChat refused the registration's parameters (name, credit code or phone)",
        ),
        Some(ErrorKind::PlatformNotPermitted) => ApiError::new(
            403,
            "platform_not_permitted",
            "the platform lacks the permission sets fast registration needs, or is not released",
        ),
        Some(ErrorKind::RegisterTicketInvalid) => ApiError::new(
            400,
            "ticket_invalid",
            "WeChat refused the registration ticket; open the official account's page again",
        ),
        Some(ErrorKind::RegistrationRefused) => ApiError::new(
            409,
            "registration_refused",
            "WeChat refused to register a mini program for this official account's subject",
        ),
        _ => return ApiError::from(w),
    };
    api.wechat_errcode = w.errcode();
    api
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gateway_errors_map_to_statuses_and_codes() {
        let cases: Vec<(GatewayError, u16, &str)> = vec![
            (PathError::TokenApi.into(), 403, "token_api_refused"),
            (PathError::NotAllowed.into(), 403, "path_not_allowed"),
            (PathError::DotSegment.into(), 400, "invalid_path"),
            (
                RequestError::MethodNotAllowed.into(),
                405,
                "method_not_allowed",
            ),
            (
                RequestError::BodyTooLarge { limit: 1 }.into(),
                413,
                "body_too_large",
            ),
            (
                ForwardError::TooLarge { limit: 1 }.into(),
                413,
                "response_too_large",
            ),
            (ForwardError::Timeout.into(), 504, "wechat_timeout"),
            (ForwardError::Connect.into(), 502, "wechat_unreachable"),
            (
                GatewayError::Redirected { status: 302 },
                502,
                "wechat_redirect",
            ),
            (
                TokenError::UnknownAuthorizer.into(),
                404,
                "unknown_authorizer",
            ),
            (
                TokenError::NotAuthorized(AuthorizerState::Unauthorized).into(),
                409,
                "authorizer_unauthorized",
            ),
        ];
        for (e, status, code) in cases {
            let api = ApiError::from(&e);
            assert_eq!((api.status, api.code), (status, code), "{e}");
        }
        assert!(GatewayError::from(PathError::Encoded).is_rejection());
        assert!(!GatewayError::from(ForwardError::Transport).is_rejection());
    }

    #[test]
    fn quota_errors_map_to_statuses_and_codes() {
        for (code, status, error) in [
            (48006, 409, "quota_reset_limit_reached"),
            (76003, 400, "invalid_cgi_path"),
            (76021, 400, "invalid_cgi_path"),
            (76022, 403, "cgi_path_not_owned"),
            (45009, 503, "wechat_quota_reached"),
            (40001, 502, "wechat_error"),
        ] {
            let api = ApiError::from(&QuotaError::from_errcode(code));
            assert_eq!(
                (api.status, api.code, api.wechat_errcode),
                (status, error, Some(code))
            );
        }
        let api = ApiError::from(&QuotaError::Unreadable);
        assert_eq!((api.status, api.wechat_errcode), (502, None));
    }
}
