//! When a forwarded call is sent again. At most [`MAX_ATTEMPTS`] in all:
//!
//! * 40001 / 40014 / 42001 (the token was rejected; the call did nothing): refresh *that version*
//!   of the token through the token service, then send once more, whatever the method.
//! * -1 (system busy), HTTP 5xx, a timeout or a lost answer: once more only for GET. A POST may
//!   have taken effect (a message sent, a menu replaced); its caller decides.
//! * A failed connection: once more for any method (nothing was sent).
//! * Anything else (45009 quota, 48001 no permission, …): passed through as WeChat said it.

use crate::wechat::ErrorKind;
use crate::wechat::forward::ForwardError;

use super::request::ForwardMethod;

pub const MAX_ATTEMPTS: u32 = 2;

/// How one attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome<'a> {
    Answered { status: u16, errcode: Option<i64> },
    Failed(&'a ForwardError),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Give the caller this outcome.
    Done,
    /// Refresh the token version just used, then send again.
    RefreshToken,
    /// Send again with the same token.
    Repeat,
}

/// What to do after attempt number `attempt` (1-based) ended with `outcome`.
pub fn decide(method: ForwardMethod, attempt: u32, outcome: Outcome<'_>) -> Decision {
    if attempt >= MAX_ATTEMPTS {
        return Decision::Done;
    }
    match outcome {
        Outcome::Answered {
            errcode: Some(code),
            ..
        } if ErrorKind::from_errcode(code) == ErrorKind::TokenStale => Decision::RefreshToken,
        Outcome::Answered {
            errcode: Some(code),
            ..
        } if ErrorKind::from_errcode(code) == ErrorKind::SystemBusy && method.is_safe() => {
            Decision::Repeat
        }
        Outcome::Answered {
            status,
            errcode: None,
        } if status >= 500 && method.is_safe() => Decision::Repeat,
        Outcome::Failed(ForwardError::Connect) => Decision::Repeat,
        Outcome::Failed(ForwardError::Timeout | ForwardError::Transport) if method.is_safe() => {
            Decision::Repeat
        }
        _ => Decision::Done,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ForwardMethod::{Get, Post};

    fn answered(errcode: Option<i64>) -> Outcome<'static> {
        Outcome::Answered {
            status: 200,
            errcode,
        }
    }

    #[test]
    fn token_errors_refresh_once_for_any_method() {
        for code in [40001, 40014, 42001] {
            for m in [Get, Post] {
                assert_eq!(decide(m, 1, answered(Some(code))), Decision::RefreshToken);
                assert_eq!(decide(m, 2, answered(Some(code))), Decision::Done);
            }
        }
    }

    #[test]
    fn busy_and_lost_answers_repeat_only_for_get() {
        let lost = [ForwardError::Timeout, ForwardError::Transport];
        assert_eq!(decide(Get, 1, answered(Some(-1))), Decision::Repeat);
        assert_eq!(decide(Post, 1, answered(Some(-1))), Decision::Done);
        for e in &lost {
            assert_eq!(decide(Get, 1, Outcome::Failed(e)), Decision::Repeat);
            assert_eq!(decide(Post, 1, Outcome::Failed(e)), Decision::Done);
            assert_eq!(decide(Get, 2, Outcome::Failed(e)), Decision::Done);
        }
        let gateway_error = Outcome::Answered {
            status: 502,
            errcode: None,
        };
        assert_eq!(decide(Get, 1, gateway_error), Decision::Repeat);
        assert_eq!(decide(Post, 1, gateway_error), Decision::Done);
        assert_eq!(decide(Get, 2, answered(Some(-1))), Decision::Done);
    }

    #[test]
    fn a_failed_connection_repeats_for_any_method() {
        assert_eq!(
            decide(Post, 1, Outcome::Failed(&ForwardError::Connect)),
            Decision::Repeat
        );
        assert_eq!(
            decide(Post, 2, Outcome::Failed(&ForwardError::Connect)),
            Decision::Done
        );
    }

    #[test]
    fn everything_else_passes_through() {
        for code in [0, 45009, 45011, 48001, 61004, 40013, 89000] {
            for m in [Get, Post] {
                assert_eq!(decide(m, 1, answered(Some(code))), Decision::Done, "{code}");
            }
        }
        assert_eq!(decide(Get, 1, answered(None)), Decision::Done);
        let too_large = ForwardError::TooLarge { limit: 1 };
        assert_eq!(decide(Get, 1, Outcome::Failed(&too_large)), Decision::Done);
        let client_error = Outcome::Answered {
            status: 404,
            errcode: None,
        };
        assert_eq!(decide(Get, 1, client_error), Decision::Done);
    }
}
