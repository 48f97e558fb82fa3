//! Open-account APIs (`cgi-bin/open/…`) with the authorizer token.

use secrecy::SecretString;
use serde_json::json;

use super::*;

impl WeChatClient {
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
}
