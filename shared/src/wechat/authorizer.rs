//! An authorizer's own account APIs with its token: parametric QR codes, user info,
//! customer-service messages.

use secrecy::SecretString;
use serde_json::json;

use super::*;

impl WeChatClient {
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
