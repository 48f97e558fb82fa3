//! Sign-in on behalf of a merchant (`sns/…`): a mini program's `wx.login` code and a web OAuth
//! code exchanged with the component token, and the OAuth user's profile with the user's token.
//! Session keys and user tokens are `SecretString`s with redacted `Debug`.

use secrecy::SecretString;
use serde::Deserialize;

use super::*;

/// `sns/component/jscode2session`'s answer.
#[derive(Clone, Deserialize)]
pub struct Code2Session {
    pub openid: String,
    pub session_key: SecretString,
    #[serde(default)]
    pub unionid: Option<String>,
}

impl std::fmt::Debug for Code2Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Code2Session")
            .field("openid", &self.openid)
            .field("session_key", &"[redacted]")
            .field("unionid", &self.unionid)
            .finish()
    }
}

/// `sns/oauth2/component/access_token`'s answer (the user's tokens never leave wxopen).
#[derive(Clone, Deserialize)]
pub struct OauthToken {
    pub access_token: SecretString,
    #[serde(default)]
    pub refresh_token: Option<SecretString>,
    pub openid: String,
    #[serde(default)]
    pub scope: Option<String>,
    #[serde(default)]
    pub unionid: Option<String>,
}

impl std::fmt::Debug for OauthToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OauthToken")
            .field("access_token", &"[redacted]")
            .field("refresh_token", &"[redacted]")
            .field("openid", &self.openid)
            .field("scope", &self.scope)
            .field("unionid", &self.unionid)
            .finish()
    }
}

/// `sns/userinfo`'s answer (profile fields are optional since WeChat empties them).
#[derive(Debug, Clone, Deserialize)]
pub struct SnsUserInfo {
    pub openid: String,
    #[serde(default)]
    pub nickname: Option<String>,
    #[serde(default)]
    pub headimgurl: Option<String>,
    #[serde(default)]
    pub unionid: Option<String>,
}

impl WeChatClient {
    /// `sns/component/jscode2session` with the component token.
    pub async fn jscode2session(
        &self,
        component_token: &SecretString,
        component_appid: &str,
        appid: &str,
        js_code: &str,
    ) -> Result<Code2Session, WeChatError> {
        self.call(
            Api::Jscode2session,
            Auth::Component(component_token),
            &[
                ("appid", appid),
                ("js_code", js_code),
                ("grant_type", "authorization_code"),
                ("component_appid", component_appid),
            ],
            None,
        )
        .await
    }

    /// `sns/oauth2/component/access_token` with the component token.
    pub async fn oauth_component_access_token(
        &self,
        component_token: &SecretString,
        component_appid: &str,
        appid: &str,
        code: &str,
    ) -> Result<OauthToken, WeChatError> {
        self.call(
            Api::OauthComponentAccessToken,
            Auth::Component(component_token),
            &[
                ("appid", appid),
                ("code", code),
                ("grant_type", "authorization_code"),
                ("component_appid", component_appid),
            ],
            None,
        )
        .await
    }

    /// `sns/userinfo` with the user's OAuth token (`snsapi_userinfo` only; 48001 otherwise).
    pub async fn sns_userinfo(
        &self,
        user_token: &SecretString,
        openid: &str,
    ) -> Result<SnsUserInfo, WeChatError> {
        self.call(
            Api::SnsUserinfo,
            Auth::User(user_token),
            &[("openid", openid), ("lang", "zh_CN")],
            None,
        )
        .await
    }
}
