//! Sign-in results as one-time codes: every browser sign-in flow ends by sending the browser to
//! an allowlisted `return_to` with `login_code` (and the provider's `state`), never an identity.
//! The provider's backend redeems the code once (`POST /login/codes/{code}`). A code is 32
//! random bytes (64 hex digits), lives minutes, and only its SHA-256 is stored.

use sha2::{Digest, Sha256};

use crate::config::Config;
use crate::identity::{self, SignIn};
use crate::model::{IdentityConflict, LoginCodeRecord, SignInFlow};
use crate::store::{IdentityStore, LoginCodeStore, StoreError};

/// Longest accepted `return_to` and `state`.
pub const MAX_RETURN_TO_LEN: usize = 1024;
pub const MAX_STATE_LEN: usize = 128;

/// Where sign-in may send a browser, and how long its code lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignInSettings {
    /// Allowed origins of `return_to` (`scheme://host[:port]`).
    pub return_to_origins: Vec<String>,
    pub code_ttl_secs: i64,
}

impl SignInSettings {
    /// As deployed (`SIGN_IN_RETURN_TO_ORIGINS`, `LOGIN_CODE_TTL_SECONDS`).
    pub fn from_config(config: &Config) -> Self {
        Self {
            return_to_origins: config.sign_in_return_to_origins.clone(),
            code_ttl_secs: i64::try_from(config.login_code_ttl.as_secs()).unwrap_or(300),
        }
    }

    /// The `return_to` if it is an http(s) URL of an allowed origin, with no fragment and no
    /// credentials.
    pub fn check_return_to(&self, return_to: &str) -> Result<url::Url, ReturnToError> {
        if return_to.len() > MAX_RETURN_TO_LEN {
            return Err(ReturnToError::Invalid);
        }
        let url = url::Url::parse(return_to).map_err(|_| ReturnToError::Invalid)?;
        if !matches!(url.scheme(), "http" | "https")
            || url.host_str().is_none()
            || url.fragment().is_some()
            || !url.username().is_empty()
            || url.password().is_some()
        {
            return Err(ReturnToError::Invalid);
        }
        let origin = url.origin().ascii_serialization();
        if self.return_to_origins.contains(&origin) {
            Ok(url)
        } else {
            Err(ReturnToError::NotAllowed)
        }
    }
}

/// The provider's `state`: up to 128 printable ASCII characters.
pub fn valid_state(state: &str) -> bool {
    state.len() <= MAX_STATE_LEN && state.bytes().all(|b| b.is_ascii_graphic())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ReturnToError {
    #[error("return_to must be an absolute http(s) URL without a fragment")]
    Invalid,
    #[error("return_to is not on an allowed origin")]
    NotAllowed,
}

/// A redeemed sign-in.
#[derive(Debug, Clone)]
pub struct Redeemed {
    pub flow: SignInFlow,
    pub appid: String,
    pub openid: String,
    pub unionid: Option<String>,
    pub identity_id: String,
    pub user_id: Option<String>,
    pub known_user: bool,
    pub conflict: Option<IdentityConflict>,
}

fn hash(code: &str) -> String {
    hex::encode(Sha256::digest(code.as_bytes()))
}

pub fn valid_code(code: &str) -> bool {
    code.len() == 64
        && code
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Issues a code for a recorded sign-in; the code itself goes to the browser only.
pub async fn issue<S: LoginCodeStore>(
    store: &S,
    settings: &SignInSettings,
    flow: SignInFlow,
    appid: &str,
    openid: &str,
    sign_in: &SignIn,
    now: i64,
) -> Result<String, StoreError> {
    let code = hex::encode(rand::random::<[u8; 32]>());
    store
        .put_login_code(&LoginCodeRecord {
            code_hash: hash(&code),
            flow,
            appid: appid.to_string(),
            openid: openid.to_string(),
            unionid: sign_in.identity.unionid.clone(),
            identity_id: sign_in.identity.id.clone(),
            known_user: sign_in.known_user,
            conflict: sign_in.conflict.clone(),
            created_at: now,
            expires_at: now + settings.code_ttl_secs,
        })
        .await?;
    Ok(code)
}

/// Redeems a code once; the `user_id` is the identity's binding now.
pub async fn redeem<S: LoginCodeStore + IdentityStore>(
    store: &S,
    code: &str,
    now: i64,
) -> Result<Option<Redeemed>, StoreError> {
    let Some(r) = store.take_login_code(&hash(code), now).await? else {
        return Ok(None);
    };
    let identity = identity::resolve(store, &r.identity_id).await?;
    Ok(Some(Redeemed {
        flow: r.flow,
        appid: r.appid,
        openid: r.openid,
        unionid: r
            .unionid
            .or_else(|| identity.as_ref().and_then(|i| i.unionid.clone())),
        identity_id: identity.as_ref().map_or(r.identity_id, |i| i.id.clone()),
        user_id: identity.as_ref().and_then(|i| i.user_id.clone()),
        known_user: r.known_user,
        conflict: r.conflict.or_else(|| identity.and_then(|i| i.conflict)),
    }))
}

/// `return_to` with `login_code` (or `login_error`) and the provider's `state` appended.
pub fn return_url(return_to: &url::Url, param: (&str, &str), state: Option<&str>) -> String {
    let mut url = return_to.clone();
    {
        let mut q = url.query_pairs_mut();
        q.append_pair(param.0, param.1);
        if let Some(s) = state {
            q.append_pair("state", s);
        }
    }
    url.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn return_to_is_allowlisted() {
        let s = SignInSettings {
            return_to_origins: vec![
                "https://shop.example".into(),
                "http://127.0.0.1:9000".into(),
            ],
            code_ttl_secs: 300,
        };
        assert!(s.check_return_to("https://shop.example/cb?x=1").is_ok());
        assert!(s.check_return_to("http://127.0.0.1:9000/").is_ok());
        assert_eq!(
            s.check_return_to("https://shop.example.evil.com/"),
            Err(ReturnToError::NotAllowed)
        );
        assert_eq!(
            s.check_return_to("https://shop.example:444/"),
            Err(ReturnToError::NotAllowed)
        );
        assert_eq!(
            s.check_return_to("https://u:p@shop.example/"),
            Err(ReturnToError::Invalid)
        );
        assert_eq!(
            s.check_return_to("javascript:alert(1)"),
            Err(ReturnToError::Invalid)
        );
        assert_eq!(s.check_return_to("/relative"), Err(ReturnToError::Invalid));
        let url = s.check_return_to("https://shop.example/cb?x=1").unwrap();
        assert_eq!(
            return_url(&url, ("login_code", "abc"), Some("s 1")),
            "https://shop.example/cb?x=1&login_code=abc&state=s+1"
        );
        assert!(valid_state("abc-123"));
        assert!(!valid_state("a b"));
    }
}
