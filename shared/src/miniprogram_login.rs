//! Mini program login on behalf (`sns/component/jscode2session` with the component token): the
//! provider's backend hands over the `js_code` from `wx.login`; wxopen records the identity and
//! answers openid, unionid, the session key (the caller needs it to decrypt user data; it is
//! never stored or logged here), the bound `user_id` and `known_user`.

use secrecy::SecretString;

use crate::clock::Clock;
use crate::identity::{self, IdentityError, Sighting, SignIn};
use crate::model::SignInFlow;
use crate::permissions::{self, SignInRefusal};
use crate::secrets::CredentialsProvider;
use crate::store::{IdentityStore, StoreError, TokenServiceStore};
use crate::tokens::{TokenError, TokenService};

#[derive(Debug, thiserror::Error)]
pub enum MiniProgramLoginError {
    #[error(transparent)]
    Token(#[from] TokenError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Refused(#[from] SignInRefusal),
    #[error(transparent)]
    Identity(#[from] IdentityError),
}

/// A mini program sign-in (the session key redacted in `Debug`).
pub struct MiniProgramSession {
    pub openid: String,
    pub unionid: Option<String>,
    pub session_key: SecretString,
    pub sign_in: SignIn,
}

impl std::fmt::Debug for MiniProgramSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MiniProgramSession")
            .field("openid", &self.openid)
            .field("unionid", &self.unionid)
            .field("session_key", &"[redacted]")
            .field("identity", &self.sign_in.identity.id)
            .finish()
    }
}

/// A `wx.login` code: 1 to 128 of `A-Z a-z 0-9 _ -`.
pub fn valid_js_code(code: &str) -> bool {
    !code.is_empty()
        && code.len() <= 128
        && code
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

pub async fn sign_in<S, C, K>(
    svc: &TokenService<'_, S, C, K>,
    appid: &str,
    js_code: &str,
) -> Result<MiniProgramSession, MiniProgramLoginError>
where
    S: TokenServiceStore + IdentityStore,
    C: CredentialsProvider,
    K: Clock,
{
    let record = crate::tokens::authorized_record(svc.store, appid).await?;
    permissions::check_sign_in(&record, &permissions::MINI_PROGRAM_SIGN_IN)?;
    let creds = svc
        .credentials
        .credentials()
        .await
        .map_err(TokenError::from)?;
    let component_appid = creds.component_appid.clone();
    let session = svc
        .with_component_token(|t| {
            let component_appid = component_appid.clone();
            async move {
                svc.wechat
                    .jscode2session(&t, &component_appid, appid, js_code)
                    .await
            }
        })
        .await?;
    let unionid = session.unionid.filter(|u| !u.trim().is_empty());
    let sign_in = identity::record(
        svc.store,
        &Sighting {
            appid,
            openid: &session.openid,
            unionid: unionid.as_deref(),
            flow: SignInFlow::MiniProgram,
            now: svc.clock.now(),
        },
    )
    .await?;
    Ok(MiniProgramSession {
        openid: session.openid,
        unionid,
        session_key: session.session_key,
        sign_in,
    })
}
