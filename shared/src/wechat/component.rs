//! Component APIs (`cgi-bin/component/…`), with the component token or the component's own
//! credentials: tokens, pre-auth codes, authorizations and authorizer listings.

use secrecy::SecretString;
use serde_json::json;

use super::*;

impl WeChatClient {
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
}
