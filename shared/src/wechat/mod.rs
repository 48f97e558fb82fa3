//! The WeChat HTTP client: one typed method per API wxopen uses, every `errcode` mapped to a
//! typed error, base URL from config (WeChat in production, the sandbox in tests).
//!
//! Layout: [`Api`] (the table of every API: name and path) in `api.rs`; the transport (this
//! file); one file of methods per area: `component.rs` (component token and authorizations),
//! `authorizer.rs` (an authorizer's account APIs), `open_account.rs`, `code.rs` (mini program
//! code: the template library, commit, audit, release), `registration.rs` (fast registration),
//! `sns.rs` (sign-in on behalf); errcodes
//! in `error.rs`, answer types in `types.rs`. Binary answers (the trial QR code) are decided by
//! `Content-Type`, never by status.
//!
//! Tokens travel in query strings, so no URL is ever logged or put into an error: transport
//! errors are stripped of their URL, and `errmsg` texts are not kept (only the IP of 61004).

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use serde::de::DeserializeOwned;

mod api;
mod authorizer;
mod code;
mod component;
mod error;
pub mod forward;
mod open_account;
mod registration;
mod sns;
mod types;

pub use api::Api;
pub use code::*;
pub use error::{ErrorKind, WeChatError};
pub use registration::{EnterpriseEndpoint, EnterpriseTask, OaFastRegistration};
pub use sns::{Code2Session, OauthToken, SnsUserInfo};
pub use types::*;

/// Default per-request timeout. Callbacks have a 5 s budget in all; callers can pass less.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(4);

/// One client per process (it owns the connection pool).
#[derive(Debug, Clone)]
pub struct WeChatClient {
    http: reqwest::Client,
    api_base: String,
    timeout: Duration,
    template_token_param: TokenParam,
}

/// The query parameter that carries the component token where WeChat's sources disagree (the
/// template library: its docs write `access_token`, some SDKs send `component_access_token`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum TokenParam {
    #[default]
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

    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "access_token" => Some(TokenParam::AccessToken),
            "component_access_token" => Some(TokenParam::ComponentAccessToken),
            _ => None,
        }
    }
}

/// Which token authenticates a call (the sandbox records it; the anchors mix them up).
enum Auth<'a> {
    None,
    Component(&'a SecretString),
    /// The component token under another parameter name (see [`TokenParam`]): the template
    /// library and fast registration, whose parameter names the sources disagree on.
    ComponentAs(&'a SecretString, TokenParam),
    Authorizer(&'a SecretString),
    /// A user's web OAuth access token (`sns/userinfo`).
    User(&'a SecretString),
}

impl Auth<'_> {
    fn query(&self) -> Option<(&'static str, &str)> {
        match self {
            Auth::None => None,
            Auth::Component(t) => Some(("component_access_token", t.expose_secret())),
            Auth::ComponentAs(t, param) => Some((param.as_str(), t.expose_secret())),
            Auth::Authorizer(t) | Auth::User(t) => Some(("access_token", t.expose_secret())),
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
            timeout,
            template_token_param: TokenParam::default(),
        })
    }

    /// Sends the component token of the template-library APIs as `param`
    /// (`WECHAT_TEMPLATE_TOKEN_PARAM`; default `access_token`).
    pub fn with_template_token_param(mut self, param: TokenParam) -> Self {
        self.template_token_param = param;
        self
    }

    pub fn template_token_param(&self) -> TokenParam {
        self.template_token_param
    }

    /// The per-request timeout (`WECHAT_TIMEOUT_MS`): what a refresh lease must cover.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    pub fn api_base(&self) -> &str {
        &self.api_base
    }

    /// Sends one request; answers the status check's survivor: (content type, body bytes).
    async fn send(
        &self,
        api: Api,
        auth: Auth<'_>,
        extra_query: &[(&str, &str)],
        body: Option<&serde_json::Value>,
    ) -> Result<(Option<String>, Vec<u8>), WeChatError> {
        self.send_at(api, api.path(), auth, extra_query, body).await
    }

    /// [`Self::send`] at a configured path (an API whose path is not confirmed).
    async fn send_at(
        &self,
        api: Api,
        path: &str,
        auth: Auth<'_>,
        extra_query: &[(&str, &str)],
        body: Option<&serde_json::Value>,
    ) -> Result<(Option<String>, Vec<u8>), WeChatError> {
        let url = format!("{}{}", self.api_base, path);
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
        let content_type = resp
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let bytes = resp.bytes().await.map_err(|e| transport(api, e))?;
        if !status.is_success() {
            return Err(WeChatError::Http {
                api,
                status: status.as_u16(),
            });
        }
        Ok((content_type, bytes.to_vec()))
    }

    async fn call<R: DeserializeOwned>(
        &self,
        api: Api,
        auth: Auth<'_>,
        extra_query: &[(&str, &str)],
        body: Option<&serde_json::Value>,
    ) -> Result<R, WeChatError> {
        let (_, bytes) = self.send(api, auth, extra_query, body).await?;
        parse_json(api, &bytes)
    }

    /// [`Self::call`] at a configured path.
    async fn call_at<R: DeserializeOwned>(
        &self,
        api: Api,
        path: &str,
        auth: Auth<'_>,
        extra_query: &[(&str, &str)],
        body: Option<&serde_json::Value>,
    ) -> Result<R, WeChatError> {
        let (_, bytes) = self.send_at(api, path, auth, extra_query, body).await?;
        parse_json(api, &bytes)
    }

    /// A binary API (an image on success, JSON `{errcode, errmsg}` on failure, both HTTP 200):
    /// decided by `Content-Type`, falling back to a body that starts with `{`.
    async fn call_bytes(
        &self,
        api: Api,
        auth: Auth<'_>,
        extra_query: &[(&str, &str)],
    ) -> Result<Binary, WeChatError> {
        let (content_type, bytes) = self.send(api, auth, extra_query, None).await?;
        let content_type = content_type.unwrap_or_default();
        let essence = content_type
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        let json_like = essence == "application/json"
            || essence == "text/plain"
            || (essence.is_empty() && bytes.first() == Some(&b'{'));
        if json_like {
            let _: serde_json::Value = parse_json(api, &bytes)?;
            // JSON without an errcode where an image was due is not an image either.
            return Err(WeChatError::Decode { api });
        }
        Ok(Binary {
            content_type: if essence.is_empty() {
                "application/octet-stream".to_string()
            } else {
                essence
            },
            bytes,
        })
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
}

/// A binary answer: its media type (without parameters) and bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct Binary {
    pub content_type: String,
    pub bytes: Vec<u8>,
}

impl std::fmt::Debug for Binary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Binary")
            .field("content_type", &self.content_type)
            .field("len", &self.bytes.len())
            .finish()
    }
}

/// WeChat's JSON answer: an `errcode` other than 0 (a number, or a number in a string as some
/// doc samples show it) is the typed error; otherwise the body as `R`.
fn parse_json<R: DeserializeOwned>(api: Api, bytes: &[u8]) -> Result<R, WeChatError> {
    let value: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|_| WeChatError::Decode { api })?;
    let code = value.get("errcode").and_then(|c| match c {
        serde_json::Value::String(s) => s.trim().parse::<i64>().ok(),
        other => other.as_i64(),
    });
    if let Some(code) = code
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
