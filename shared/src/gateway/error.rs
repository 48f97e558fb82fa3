//! Why a gateway call got no WeChat answer to pass on, and its one error shape at the edge.

use crate::http::ApiError;
use crate::tokens::TokenError;
use crate::wechat::forward::ForwardError;

use super::path::PathError;
use super::request::RequestError;

#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    #[error(transparent)]
    Path(#[from] PathError),
    #[error(transparent)]
    Request(#[from] RequestError),
    #[error("no token: {0}")]
    Token(#[from] TokenError),
    #[error(transparent)]
    Upstream(ForwardError),
    #[error(
        "WeChat's answer does not fit in a Lambda response ({limit} bytes of payload once encoded)"
    )]
    ResponseTooLarge { limit: usize },
    #[error("WeChat answered with a redirect (HTTP {status}); redirects are not followed")]
    Redirected { status: u16 },
}

impl From<ForwardError> for GatewayError {
    fn from(e: ForwardError) -> Self {
        match e {
            ForwardError::TooLarge { limit } => GatewayError::ResponseTooLarge { limit },
            other => GatewayError::Upstream(other),
        }
    }
}

impl GatewayError {
    /// Refused before any WeChat call (the caller's request was at fault).
    pub fn is_rejection(&self) -> bool {
        matches!(self, GatewayError::Path(_) | GatewayError::Request(_))
    }

    /// A metric label for a failure (no secrets).
    pub fn failure_label(&self) -> &'static str {
        match self {
            GatewayError::Path(_) => "path",
            GatewayError::Request(_) => "request",
            GatewayError::Token(_) => "token",
            GatewayError::Upstream(ForwardError::Timeout) => "timeout",
            GatewayError::Upstream(ForwardError::Connect) => "connect",
            GatewayError::Upstream(_) => "transport",
            GatewayError::ResponseTooLarge { .. } => "too_large",
            GatewayError::Redirected { .. } => "redirect",
        }
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_and_codes() {
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
                TokenError::NotAuthorized(crate::model::AuthorizerState::Unauthorized).into(),
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
}
