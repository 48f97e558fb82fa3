//! Authorization links (PC and mobile): their validated options, the URLs, and the pre-auth
//! code they are made from.

use secrecy::ExposeSecret;
use url::Url;

use crate::appid;
use crate::clock::Clock;
use crate::config::Config;
use crate::secrets::CredentialsProvider;
use crate::store::TokenServiceStore;
use crate::tokens::{TokenError, TokenService};

/// Which accounts the authorization page offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthType {
    OfficialAccount = 1,
    MiniProgram = 2,
    Both = 3,
}

impl AuthType {
    pub fn code(self) -> u8 {
        self as u8
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LinkError {
    #[error(
        "auth_type must be 1 (official accounts), 2 (mini programs) or 3 (both), or official_account, mini_program, both"
    )]
    AuthType,
    #[error("biz_appid must be \"wx\" followed by 16 lowercase letters or digits")]
    BizAppid,
    #[error("category_id_list must be category ids separated by |")]
    CategoryIdList,
}

/// Validated options of an authorization link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkOptions {
    pub auth_type: AuthType,
    /// Restricts the page to one account (and overrides `auth_type` at WeChat).
    pub biz_appid: Option<String>,
    /// Mini-program category ids, `|`-separated as WeChat expects.
    pub category_id_list: Option<String>,
}

impl LinkOptions {
    pub fn parse(
        auth_type: Option<&str>,
        biz_appid: Option<&str>,
        category_id_list: Option<&str>,
    ) -> Result<Self, LinkError> {
        let auth_type = match auth_type.map(str::trim).filter(|s| !s.is_empty()) {
            None | Some("3") | Some("both") => AuthType::Both,
            Some("1") | Some("official_account") => AuthType::OfficialAccount,
            Some("2") | Some("mini_program") => AuthType::MiniProgram,
            Some(_) => return Err(LinkError::AuthType),
        };
        let biz_appid = match biz_appid.map(str::trim).filter(|s| !s.is_empty()) {
            None => None,
            Some(a) if appid::is_valid(a) => Some(a.to_string()),
            Some(_) => return Err(LinkError::BizAppid),
        };
        let category_id_list = match category_id_list.map(str::trim).filter(|s| !s.is_empty()) {
            None => None,
            Some(list)
                if list.len() <= 512
                    && list.split('|').all(|id| {
                        !id.is_empty() && id.len() <= 12 && id.bytes().all(|b| b.is_ascii_digit())
                    }) =>
            {
                Some(list.to_string())
            }
            Some(_) => return Err(LinkError::CategoryIdList),
        };
        Ok(Self {
            auth_type,
            biz_appid,
            category_id_list,
        })
    }
}

/// The two links a merchant can use, made from one single-use pre-auth code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorizationLinks {
    /// `componentloginpage` on mp.weixin.qq.com (PC: the merchant scans with WeChat).
    pub pc_url: String,
    /// `bindcomponent` on open.weixin.qq.com (opened inside WeChat on a phone).
    pub mobile_url: String,
    pub expires_at: i64,
}

/// Where WeChat sends the browser back: `{public_base}/authorize/callback`.
pub fn redirect_uri(public_base: &str) -> String {
    format!("{}/authorize/callback", public_base.trim_end_matches('/'))
}

/// Builds both links (query values are URL-encoded by `url`).
pub fn build_links(
    mp_base: &str,
    open_base: &str,
    component_appid: &str,
    pre_auth_code: &str,
    redirect_uri: &str,
    options: &LinkOptions,
    expires_at: i64,
) -> Result<AuthorizationLinks, url::ParseError> {
    let auth_type = options.auth_type.code().to_string();
    let mut pc = Url::parse(&format!(
        "{}/cgi-bin/componentloginpage",
        mp_base.trim_end_matches('/')
    ))?;
    {
        let mut q = pc.query_pairs_mut();
        q.append_pair("component_appid", component_appid)
            .append_pair("pre_auth_code", pre_auth_code)
            .append_pair("redirect_uri", redirect_uri)
            .append_pair("auth_type", &auth_type);
        if let Some(b) = &options.biz_appid {
            q.append_pair("biz_appid", b);
        }
        if let Some(c) = &options.category_id_list {
            q.append_pair("category_id_list", c);
        }
    }
    let mut mobile = Url::parse(&format!(
        "{}/wxaopen/safe/bindcomponent",
        open_base.trim_end_matches('/')
    ))?;
    {
        let mut q = mobile.query_pairs_mut();
        q.append_pair("action", "bindcomponent")
            .append_pair("no_scan", "1")
            .append_pair("component_appid", component_appid)
            .append_pair("pre_auth_code", pre_auth_code)
            .append_pair("redirect_uri", redirect_uri)
            .append_pair("auth_type", &auth_type);
        if let Some(b) = &options.biz_appid {
            q.append_pair("biz_appid", b);
        }
        if let Some(c) = &options.category_id_list {
            q.append_pair("category_id_list", c);
        }
    }
    mobile.set_fragment(Some("wechat_redirect"));
    Ok(AuthorizationLinks {
        pc_url: pc.into(),
        mobile_url: mobile.into(),
        expires_at,
    })
}

/// Where the links point.
#[derive(Debug, Clone)]
pub struct LinkHosts {
    pub mp_base: String,
    pub open_base: String,
}

impl LinkHosts {
    /// The hosts as deployed (`WECHAT_MP_BASE`, `WECHAT_OPEN_BASE`).
    pub fn from_config(config: &Config) -> Self {
        Self {
            mp_base: config.wechat_mp_base.clone(),
            open_base: config.wechat_open_base.clone(),
        }
    }
}

/// Gets a fresh pre-auth code and builds the links.
pub async fn create_links<S, C, K>(
    svc: &TokenService<'_, S, C, K>,
    hosts: &LinkHosts,
    redirect_uri: &str,
    options: &LinkOptions,
) -> Result<AuthorizationLinks, TokenError>
where
    S: TokenServiceStore,
    C: CredentialsProvider,
    K: Clock,
{
    let creds = svc.credentials.credentials().await?;
    let code = svc
        .with_component_token(|t| {
            let appid = &creds.component_appid;
            async move { svc.wechat.create_preauthcode(&t, appid).await }
        })
        .await?;
    let expires_at = svc.clock.now() + code.expires_in;
    build_links(
        &hosts.mp_base,
        &hosts.open_base,
        &creds.component_appid,
        code.pre_auth_code.expose_secret(),
        redirect_uri,
        options,
        expires_at,
    )
    .map_err(|_| TokenError::Busy)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_validate() {
        assert_eq!(
            LinkOptions::parse(None, None, None).unwrap().auth_type,
            AuthType::Both
        );
        assert_eq!(
            LinkOptions::parse(Some("1"), None, None).unwrap().auth_type,
            AuthType::OfficialAccount
        );
        assert_eq!(
            LinkOptions::parse(Some("mini_program"), None, None)
                .unwrap()
                .auth_type,
            AuthType::MiniProgram
        );
        assert_eq!(
            LinkOptions::parse(Some("4"), None, None),
            Err(LinkError::AuthType)
        );
        assert_eq!(
            LinkOptions::parse(Some("x"), None, None),
            Err(LinkError::AuthType)
        );
        assert_eq!(
            LinkOptions::parse(None, Some("nope"), None),
            Err(LinkError::BizAppid)
        );
        assert_eq!(
            LinkOptions::parse(None, None, Some("1|x")),
            Err(LinkError::CategoryIdList)
        );
        assert_eq!(
            LinkOptions::parse(None, None, Some("1||2")),
            Err(LinkError::CategoryIdList)
        );
        let o = LinkOptions::parse(Some("2"), Some("wx570bc396a51b8ff8"), Some("1|2")).unwrap();
        assert_eq!(o.biz_appid.as_deref(), Some("wx570bc396a51b8ff8"));
    }

    #[test]
    fn links_are_encoded() {
        let o = LinkOptions::parse(Some("3"), Some("wx570bc396a51b8ff8"), None).unwrap();
        let l = build_links(
            "https://mp.weixin.qq.com",
            "https://open.weixin.qq.com/",
            "wxc",
            "preauthcode@@@abc",
            "https://x.example/authorize/callback",
            &o,
            1,
        )
        .unwrap();
        assert_eq!(
            l.pc_url,
            "https://mp.weixin.qq.com/cgi-bin/componentloginpage?component_appid=wxc&pre_auth_code=preauthcode%40%40%40abc&redirect_uri=https%3A%2F%2Fx.example%2Fauthorize%2Fcallback&auth_type=3&biz_appid=wx570bc396a51b8ff8"
        );
        assert!(l.mobile_url.starts_with("https://open.weixin.qq.com/wxaopen/safe/bindcomponent?action=bindcomponent&no_scan=1&component_appid=wxc&"));
        assert!(l.mobile_url.ends_with("#wechat_redirect"));
    }
}
