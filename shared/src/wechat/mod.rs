//! The WeChat HTTP client: one typed method per API wxopen uses, every `errcode` mapped to a
//! typed error, base URL from config (WeChat in production, the sandbox in tests).
//!
//! Tokens travel in query strings, so no URL is ever logged or put into an error: transport
//! errors are stripped of their URL, and `errmsg` texts are not kept (only the IP of 61004).

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::json;

mod error;
pub mod forward;
mod types;

pub use error::{Api, ErrorKind, WeChatError};
pub use types::*;

/// Default per-request timeout. Callbacks have a 5 s budget in all; callers can pass less.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(4);

/// One client per process (it owns the connection pool).
#[derive(Debug, Clone)]
pub struct WeChatClient {
    http: reqwest::Client,
    api_base: String,
}

/// Which token authenticates a call (the sandbox records it; the anchors mix them up).
enum Auth<'a> {
    None,
    Component(&'a SecretString),
    Authorizer(&'a SecretString),
}

impl Auth<'_> {
    fn query(&self) -> Option<(&'static str, &str)> {
        match self {
            Auth::None => None,
            Auth::Component(t) => Some(("component_access_token", t.expose_secret())),
            Auth::Authorizer(t) => Some(("access_token", t.expose_secret())),
        }
    }
}

impl WeChatClient {
    /// `api_base` is e.g. `https://api.weixin.qq.com` (no trailing slash needed).
    pub fn new(api_base: &str, timeout: Duration) -> Result<Self, WeChatError> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(2)))
            // WeChat's API host never redirects; a redirect is never followed (API gateway rule).
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| WeChatError::Transport {
                api: Api::ClientSetup,
                source: e.without_url(),
            })?;
        Ok(Self {
            http,
            api_base: api_base.trim_end_matches('/').to_string(),
        })
    }

    pub fn api_base(&self) -> &str {
        &self.api_base
    }

    async fn call<R: DeserializeOwned>(
        &self,
        api: Api,
        auth: Auth<'_>,
        extra_query: &[(&str, &str)],
        body: Option<&serde_json::Value>,
    ) -> Result<R, WeChatError> {
        let url = format!("{}{}", self.api_base, api.path());
        let mut query: Vec<(&str, &str)> = auth.query().into_iter().collect();
        query.extend_from_slice(extra_query);
        let req = match body {
            Some(b) => self.http.post(url).json(b),
            None => self.http.get(url),
        };
        let resp = req
            .query(&query)
            .send()
            .await
            .map_err(|e| transport(api, e))?;
        let status = resp.status();
        let bytes = resp.bytes().await.map_err(|e| transport(api, e))?;
        if !status.is_success() {
            return Err(WeChatError::Http {
                api,
                status: status.as_u16(),
            });
        }
        let value: serde_json::Value =
            serde_json::from_slice(&bytes).map_err(|_| WeChatError::Decode { api })?;
        if let Some(code) = value.get("errcode").and_then(serde_json::Value::as_i64)
            && code != 0
        {
            let errmsg = value
                .get("errmsg")
                .and_then(serde_json::Value::as_str)
                .unwrap_or_default();
            return Err(WeChatError::api(api, code, errmsg));
        }
        serde_json::from_value(value).map_err(|_| WeChatError::Decode { api })
    }

    async fn post<R: DeserializeOwned, B: Serialize>(
        &self,
        api: Api,
        auth: Auth<'_>,
        body: &B,
    ) -> Result<R, WeChatError> {
        let body = serde_json::to_value(body).map_err(|_| WeChatError::Decode { api })?;
        self.call(api, auth, &[], Some(&body)).await
    }

    /// A call whose answer carries nothing but `errcode: 0`.
    async fn post_ok<B: Serialize>(
        &self,
        api: Api,
        auth: Auth<'_>,
        body: &B,
    ) -> Result<(), WeChatError> {
        let _: serde_json::Value = self.post(api, auth, body).await?;
        Ok(())
    }

    /// `open/create` and `open/get`: `{appid}` in, `open_appid` out.
    async fn open_appid(
        &self,
        api: Api,
        authorizer_token: &SecretString,
        appid: &str,
    ) -> Result<String, WeChatError> {
        let r: OpenAppid = self
            .post(
                api,
                Auth::Authorizer(authorizer_token),
                &json!({ "appid": appid }),
            )
            .await?;
        Ok(r.open_appid)
    }

    /// `api_component_token`: a component access token from appid, appsecret and the ticket.
    pub async fn component_token(
        &self,
        component_appid: &str,
        component_appsecret: &SecretString,
        ticket: &SecretString,
    ) -> Result<AccessToken, WeChatError> {
        let body = json!({
            "component_appid": component_appid,
            "component_appsecret": component_appsecret.expose_secret(),
            "component_verify_ticket": ticket.expose_secret(),
        });
        let r: ComponentTokenResponse = self.post(Api::ComponentToken, Auth::None, &body).await?;
        Ok(AccessToken {
            token: r.component_access_token,
            expires_in: r.expires_in,
        })
    }

    /// `api_create_preauthcode`: a single-use pre-auth code for the authorization link.
    pub async fn create_preauthcode(
        &self,
        component_token: &SecretString,
        component_appid: &str,
    ) -> Result<PreAuthCode, WeChatError> {
        let body = json!({ "component_appid": component_appid });
        self.post(
            Api::CreatePreauthcode,
            Auth::Component(component_token),
            &body,
        )
        .await
    }

    /// `api_query_auth`: exchanges an authorization code for the authorizer's tokens.
    pub async fn query_auth(
        &self,
        component_token: &SecretString,
        component_appid: &str,
        authorization_code: &SecretString,
    ) -> Result<AuthorizationInfo, WeChatError> {
        let body = json!({
            "component_appid": component_appid,
            "authorization_code": authorization_code.expose_secret(),
        });
        let r: QueryAuthResponse = self
            .post(Api::QueryAuth, Auth::Component(component_token), &body)
            .await?;
        Ok(r.authorization_info)
    }

    /// `api_authorizer_token`: refreshes an authorizer access token.
    pub async fn authorizer_token(
        &self,
        component_token: &SecretString,
        component_appid: &str,
        authorizer_appid: &str,
        refresh_token: &SecretString,
    ) -> Result<AuthorizerTokens, WeChatError> {
        let body = json!({
            "component_appid": component_appid,
            "authorizer_appid": authorizer_appid,
            "authorizer_refresh_token": refresh_token.expose_secret(),
        });
        self.post(
            Api::AuthorizerToken,
            Auth::Component(component_token),
            &body,
        )
        .await
    }

    /// `api_get_authorizer_info`: the account's profile and granted permission sets.
    pub async fn get_authorizer_info(
        &self,
        component_token: &SecretString,
        component_appid: &str,
        authorizer_appid: &str,
    ) -> Result<AuthorizerInfoResponse, WeChatError> {
        let body =
            json!({ "component_appid": component_appid, "authorizer_appid": authorizer_appid });
        self.post(
            Api::GetAuthorizerInfo,
            Auth::Component(component_token),
            &body,
        )
        .await
    }

    /// `api_get_authorizer_list`: one page (count ≤ 500) of authorizers with refresh tokens.
    pub async fn get_authorizer_list(
        &self,
        component_token: &SecretString,
        component_appid: &str,
        offset: u32,
        count: u32,
    ) -> Result<AuthorizerList, WeChatError> {
        let body = json!({ "component_appid": component_appid, "offset": offset, "count": count.min(500) });
        self.post(
            Api::GetAuthorizerList,
            Auth::Component(component_token),
            &body,
        )
        .await
    }

    /// `api_start_push_ticket`: asks WeChat to push a ticket now.
    pub async fn start_push_ticket(
        &self,
        component_appid: &str,
        component_appsecret: &SecretString,
    ) -> Result<(), WeChatError> {
        let body = json!({
            "component_appid": component_appid,
            "component_secret": component_appsecret.expose_secret(),
        });
        self.post_ok(Api::StartPushTicket, Auth::None, &body).await
    }

    /// `open/create` with the **authorizer** token: creates an open account and binds the account.
    pub async fn open_create(
        &self,
        authorizer_token: &SecretString,
        appid: &str,
    ) -> Result<String, WeChatError> {
        self.open_appid(Api::OpenCreate, authorizer_token, appid)
            .await
    }

    /// `open/bind` with the authorizer token.
    pub async fn open_bind(
        &self,
        authorizer_token: &SecretString,
        appid: &str,
        open_appid: &str,
    ) -> Result<(), WeChatError> {
        let body = json!({ "appid": appid, "open_appid": open_appid });
        self.post_ok(Api::OpenBind, Auth::Authorizer(authorizer_token), &body)
            .await
    }

    /// `open/unbind` with the authorizer token.
    pub async fn open_unbind(
        &self,
        authorizer_token: &SecretString,
        appid: &str,
        open_appid: &str,
    ) -> Result<(), WeChatError> {
        let body = json!({ "appid": appid, "open_appid": open_appid });
        self.post_ok(Api::OpenUnbind, Auth::Authorizer(authorizer_token), &body)
            .await
    }

    /// `open/get` with the authorizer token: the bound open account.
    pub async fn open_get(
        &self,
        authorizer_token: &SecretString,
        appid: &str,
    ) -> Result<String, WeChatError> {
        self.open_appid(Api::OpenGet, authorizer_token, appid).await
    }

    /// `qrcode/create` (`QR_STR_SCENE`, temporary) with the authorizer token.
    pub async fn qrcode_create(
        &self,
        authorizer_token: &SecretString,
        scene_str: &str,
        expire_seconds: u32,
    ) -> Result<QrCode, WeChatError> {
        let body = json!({
            "expire_seconds": expire_seconds,
            "action_name": "QR_STR_SCENE",
            "action_info": { "scene": { "scene_str": scene_str } },
        });
        self.post(Api::QrcodeCreate, Auth::Authorizer(authorizer_token), &body)
            .await
    }

    /// `user/info` with the authorizer token.
    pub async fn user_info(
        &self,
        authorizer_token: &SecretString,
        openid: &str,
    ) -> Result<UserInfo, WeChatError> {
        self.call(
            Api::UserInfo,
            Auth::Authorizer(authorizer_token),
            &[("openid", openid), ("lang", "zh_CN")],
            None,
        )
        .await
    }

    /// `message/custom/send` (text) with the authorizer token.
    pub async fn send_custom_text(
        &self,
        authorizer_token: &SecretString,
        touser: &str,
        content: &str,
    ) -> Result<(), WeChatError> {
        let body = json!({ "touser": touser, "msgtype": "text", "text": { "content": content } });
        self.post_ok(Api::CustomSend, Auth::Authorizer(authorizer_token), &body)
            .await
    }
}

fn transport(api: Api, e: reqwest::Error) -> WeChatError {
    if e.is_timeout() {
        WeChatError::Timeout { api }
    } else {
        WeChatError::Transport {
            api,
            source: e.without_url(),
        }
    }
}
