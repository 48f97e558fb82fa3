//! Why a gateway call got no WeChat answer to pass on (`http::errors` maps it to the error shape).

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
