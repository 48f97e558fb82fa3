//! Response types. Tokens and codes are `SecretString`, so `Debug` never shows them.

use secrecy::SecretString;
use serde::{Deserialize, Deserializer};

#[derive(Debug, Deserialize)]
pub(crate) struct ComponentTokenResponse {
    pub component_access_token: SecretString,
    pub expires_in: i64,
}

/// An access token and its lifetime in seconds.
#[derive(Debug, Clone)]
pub struct AccessToken {
    pub token: SecretString,
    pub expires_in: i64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct PreAuthCode {
    pub pre_auth_code: SecretString,
    pub expires_in: i64,
}

#[derive(Debug, Deserialize)]
pub(crate) struct QueryAuthResponse {
    pub authorization_info: AuthorizationInfo,
}

#[derive(Deserialize)]
struct FuncScope {
    id: u32,
}

#[derive(Deserialize)]
struct FuncInfoEntry {
    funcscope_category: FuncScope,
}

/// `func_info: [{"funcscope_category": {"id": 1}}, …]` → `[1, …]`.
fn func_ids<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u32>, D::Error> {
    let entries: Option<Vec<FuncInfoEntry>> = Option::deserialize(d)?;
    Ok(entries
        .unwrap_or_default()
        .into_iter()
        .map(|e| e.funcscope_category.id)
        .collect())
}

/// The result of `api_query_auth`.
#[derive(Debug, Clone, Deserialize)]
pub struct AuthorizationInfo {
    pub authorizer_appid: String,
    pub authorizer_access_token: SecretString,
    pub expires_in: i64,
    pub authorizer_refresh_token: SecretString,
    /// Granted permission-set ids.
    #[serde(default, deserialize_with = "func_ids")]
    pub func_info: Vec<u32>,
}

/// The result of `api_authorizer_token`.
#[derive(Debug, Clone, Deserialize)]
pub struct AuthorizerTokens {
    pub authorizer_access_token: SecretString,
    pub expires_in: i64,
    /// Usually the same refresh token; store whatever comes back.
    pub authorizer_refresh_token: SecretString,
}

#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
pub struct IdInfo {
    pub id: i64,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct AuthorizerProfile {
    #[serde(default)]
    pub nick_name: String,
    #[serde(default)]
    pub head_img: Option<String>,
    #[serde(default)]
    pub service_type_info: IdInfo,
    #[serde(default)]
    pub verify_type_info: IdInfo,
    /// The `gh_` original id.
    #[serde(default)]
    pub user_name: String,
    #[serde(default)]
    pub principal_name: Option<String>,
    #[serde(default)]
    pub alias: Option<String>,
    #[serde(default)]
    pub qrcode_url: Option<String>,
    /// Present only for mini programs.
    #[serde(rename = "MiniProgramInfo", default)]
    pub mini_program_info: Option<serde_json::Value>,
}

impl AuthorizerProfile {
    pub fn is_mini_program(&self) -> bool {
        self.mini_program_info.is_some()
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct AuthorizerGrant {
    pub authorizer_appid: String,
    #[serde(default, deserialize_with = "func_ids")]
    pub func_info: Vec<u32>,
}

/// The result of `api_get_authorizer_info`.
#[derive(Debug, Clone, Deserialize)]
pub struct AuthorizerInfoResponse {
    pub authorizer_info: AuthorizerProfile,
    pub authorization_info: AuthorizerGrant,
}

#[derive(Debug, Clone, Deserialize)]
pub struct AuthorizerListEntry {
    pub authorizer_appid: String,
    pub refresh_token: SecretString,
    #[serde(default)]
    pub auth_time: i64,
}

/// One page of `api_get_authorizer_list`.
#[derive(Debug, Clone, Deserialize)]
pub struct AuthorizerList {
    pub total_count: u32,
    #[serde(default)]
    pub list: Vec<AuthorizerListEntry>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct OpenAppid {
    pub open_appid: String,
}

/// A parametric QR code.
#[derive(Debug, Clone, Deserialize)]
pub struct QrCode {
    pub ticket: String,
    #[serde(default)]
    pub expire_seconds: i64,
    pub url: String,
}

/// `user/info`. Nickname and avatar are no longer returned by WeChat.
#[derive(Debug, Clone, Deserialize)]
pub struct UserInfo {
    #[serde(default)]
    pub subscribe: i64,
    pub openid: String,
    #[serde(default)]
    pub unionid: Option<String>,
    #[serde(default)]
    pub subscribe_time: Option<i64>,
    #[serde(default)]
    pub subscribe_scene: Option<String>,
    #[serde(default)]
    pub qr_scene_str: Option<String>,
}
