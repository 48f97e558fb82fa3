//! Fast registration of mini programs (快速注册小程序): the enterprise successor API
//! (`fastregisterenterpriseweapp`, component token) and the official-account route
//! (`cgi-bin/account/fastregister`, the official account's authorizer token, set 27).
//!
//! The enterprise API's path and the query parameter carrying the component token are not
//! confirmed by WeChat's docs (one SDK listing): both come from [`EnterpriseEndpoint`]. Its
//! answer is read defensively: `taskid` as a string or a number, every field optional. No query
//! form is called: the successor has none documented (the personal API's `action=query` is a
//! different API); the registration's outcome comes from the `notify_third_fasteregister` push.

use secrecy::SecretString;
use serde::Deserialize;
use serde_json::json;

use super::*;

/// Where the enterprise fast-registration API lives (configurable: not confirmed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnterpriseEndpoint {
    /// Default `/wxa/component/fastregisterenterpriseweapp`.
    pub path: String,
    /// Query parameter of the component token: `access_token` (docs of the `wxa/component/…`
    /// family, the default) or `component_access_token` (older SDKs).
    pub token_param: TokenParam,
}

impl Default for EnterpriseEndpoint {
    fn default() -> Self {
        Self {
            path: Api::FastRegisterEnterprise.path().to_string(),
            token_param: TokenParam::AccessToken,
        }
    }
}

/// The enterprise API's answer: the task and the URL the legal person must open within 24 h.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EnterpriseTask {
    pub taskid: Option<String>,
    pub authorize_url: Option<String>,
    pub status: Option<i64>,
}

/// A JSON string or number as text (WeChat's ids come as either).
fn text(v: Option<&serde_json::Value>) -> Option<String> {
    match v? {
        serde_json::Value::String(s) if !s.is_empty() => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn number(v: Option<&serde_json::Value>) -> Option<i64> {
    match v? {
        serde_json::Value::Number(n) => n.as_i64(),
        serde_json::Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

impl EnterpriseTask {
    fn from_json(v: &serde_json::Value) -> Self {
        Self {
            taskid: text(v.get("taskid")),
            authorize_url: text(v.get("authorize_url")).filter(|u| u.starts_with("http")),
            status: number(v.get("status")),
        }
    }
}

/// `cgi-bin/account/fastregister`'s answer: the new mini program and a code for
/// `api_query_auth`.
#[derive(Deserialize)]
pub struct OaFastRegistration {
    pub appid: String,
    pub authorization_code: SecretString,
    #[serde(default)]
    pub is_wx_verify_succ: Option<serde_json::Value>,
    #[serde(default)]
    pub is_link_succ: Option<serde_json::Value>,
}

impl std::fmt::Debug for OaFastRegistration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OaFastRegistration")
            .field("appid", &self.appid)
            .finish_non_exhaustive()
    }
}

impl OaFastRegistration {
    /// WeChat sends these flags as booleans, 0/1 or "true"/"false".
    fn flag(v: Option<&serde_json::Value>) -> bool {
        match v {
            Some(serde_json::Value::Bool(b)) => *b,
            Some(serde_json::Value::Number(n)) => n.as_i64() == Some(1),
            Some(serde_json::Value::String(s)) => matches!(s.as_str(), "1" | "true"),
            _ => false,
        }
    }

    pub fn wx_verify_copied(&self) -> bool {
        Self::flag(self.is_wx_verify_succ.as_ref())
    }

    pub fn linked(&self) -> bool {
        Self::flag(self.is_link_succ.as_ref())
    }
}

impl WeChatClient {
    /// `fastregisterenterpriseweapp`: starts an enterprise registration (`code` is the 18-char
    /// unified social credit code; `new_version: true` asks for the authorisation URL).
    pub async fn fast_register_enterprise(
        &self,
        component_token: &SecretString,
        endpoint: &EnterpriseEndpoint,
        name: &str,
        code: &str,
        component_phone: &str,
    ) -> Result<EnterpriseTask, WeChatError> {
        let body = json!({
            "name": name,
            "code": code,
            "component_phone": component_phone,
            "new_version": true,
        });
        let v: serde_json::Value = self
            .call_at(
                Api::FastRegisterEnterprise,
                &endpoint.path,
                Auth::ComponentAs(component_token, endpoint.token_param),
                &[],
                Some(&body),
            )
            .await?;
        Ok(EnterpriseTask::from_json(&v))
    }

    /// `cgi-bin/account/fastregister`: the official account (its authorizer token) turns the
    /// ticket from WeChat's `fastregisterauth` page into a new mini program.
    pub async fn account_fast_register(
        &self,
        authorizer_token: &SecretString,
        ticket: &SecretString,
    ) -> Result<OaFastRegistration, WeChatError> {
        let body = json!({ "ticket": secrecy::ExposeSecret::expose_secret(ticket) });
        self.post(
            Api::AccountFastRegister,
            Auth::Authorizer(authorizer_token),
            &body,
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_read_defensively() {
        let t = EnterpriseTask::from_json(&json!({"taskid": 123, "status": "0"}));
        assert_eq!(t.taskid.as_deref(), Some("123"));
        assert_eq!(t.status, Some(0));
        assert_eq!(t.authorize_url, None);
        let t = EnterpriseTask::from_json(
            &json!({"taskid": "abc", "authorize_url": "https://x/y", "status": 1}),
        );
        assert_eq!(t.authorize_url.as_deref(), Some("https://x/y"));
        assert_eq!(
            EnterpriseTask::from_json(&json!({})),
            EnterpriseTask::default()
        );
        assert!(OaFastRegistration::flag(Some(&json!(1))));
        assert!(OaFastRegistration::flag(Some(&json!(true))));
        assert!(!OaFastRegistration::flag(Some(&json!("0"))));
        assert!(!OaFastRegistration::flag(None));
    }
}
