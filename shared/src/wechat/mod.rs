//! The WeChat HTTP client: one typed method per API wxopen uses, every `errcode` mapped to a
//! typed error, base URL from config (WeChat in production, the sandbox in tests).
//!
//! Layout: [`Api`] (the table of every API: name and path) in `api.rs`; the transport (this
//! file); one file of methods per area: `component.rs` (component token and authorizations),
//! `authorizer.rs` (an authorizer's account APIs), `open_account.rs`; errcodes in `error.rs`,
//! answer types in `types.rs`. Mini program and `sns/` APIs get `miniprogram.rs` and `sns.rs`
//! with their first method.
//!
//! Tokens travel in query strings, so no URL is ever logged or put into an error: transport
//! errors are stripped of their URL, and `errmsg` texts are not kept (only the IP of 61004).

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use serde::de::DeserializeOwned;

mod api;
mod authorizer;
mod component;
mod error;
pub mod forward;
mod open_account;
mod registration;
mod sns;
mod types;

pub use api::Api;
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
}

/// Which token authenticates a call (the sandbox records it; the anchors mix them up).
enum Auth<'a> {
    None,
    Component(&'a SecretString),
    Authorizer(&'a SecretString),
    /// A user's web OAuth access token (`sns/userinfo`).
    User(&'a SecretString),
    /// The component token under a configured query parameter (APIs whose parameter name the
    /// sources disagree on: fast registration).
    ComponentAs(&'a SecretString, &'a str),
}

impl Auth<'_> {
    fn query(&self) -> Option<(&str, &str)> {
        match self {
            Auth::None => None,
            Auth::Component(t) => Some(("component_access_token", t.expose_secret())),
            Auth::Authorizer(t) | Auth::User(t) => Some(("access_token", t.expose_secret())),
            Auth::ComponentAs(t, param) => Some((param, t.expose_secret())),
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
        })
    }

    /// The per-request timeout (`WECHAT_TIMEOUT_MS`): what a refresh lease must cover.
    pub fn timeout(&self) -> Duration {
        self.timeout
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
        self.call_at(api, api.path(), auth, extra_query, body).await
    }

    /// [`Self::call`] at a configured path (an API whose path is not confirmed).
    async fn call_at<R: DeserializeOwned>(
        &self,
        api: Api,
        path: &str,
        auth: Auth<'_>,
        extra_query: &[(&str, &str)],
        body: Option<&serde_json::Value>,
    ) -> Result<R, WeChatError> {
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
