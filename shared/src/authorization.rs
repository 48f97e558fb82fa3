//! Merchant authorization: the authorization links (PC and mobile), their validated options, the
//! HTML pages merchants see, and the names of the permission sets.

use secrecy::ExposeSecret;
use url::Url;

use crate::clock::Clock;
use crate::http::valid_appid;
use crate::secrets::CredentialsProvider;
use crate::store::TokenServiceStore;
use crate::model::AccountKind;
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
            Some(a) if valid_appid(a) => Some(a.to_string()),
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

/// Gets a fresh pre-auth code (one 40001 retry with a refreshed component token) and builds
/// the links.
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
    let mut component = svc.component_token(None).await?;
    let code = match svc
        .wechat
        .create_preauthcode(&component.token, &creds.component_appid)
        .await
    {
        Err(e) if e.is_token_stale() => {
            component = svc.component_token(Some(component.version)).await?;
            svc.wechat
                .create_preauthcode(&component.token, &creds.component_appid)
                .await?
        }
        other => other?,
    };
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

/// Escapes text for HTML content and attribute values.
pub fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

const STYLE: &str = "body{font-family:-apple-system,BlinkMacSystemFont,'Segoe UI','PingFang SC','Microsoft YaHei',sans-serif;background:#f5f6f7;color:#1f2329;margin:0}\
main{max-width:32rem;margin:12vh auto;background:#fff;border-radius:12px;padding:2.5rem;box-shadow:0 2px 12px rgba(0,0,0,.08);text-align:center}\
h1{font-size:1.4rem;margin:0 0 .75rem}p{line-height:1.6;color:#4e5969}\
a.button{display:inline-block;margin-top:1.25rem;padding:.8rem 1.6rem;border-radius:8px;background:#07c160;color:#fff;text-decoration:none;font-weight:600}\
a.secondary{display:block;margin-top:1rem;color:#576b95}.ok{color:#07c160}.fail{color:#f53f3f}small{color:#86909c}";

fn page(title: &str, body: &str) -> String {
    format!(
        "<!doctype html><html lang=\"zh-CN\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width,initial-scale=1\"><title>{}</title><style>{STYLE}</style></head><body><main>{body}</main></body></html>",
        escape_html(title)
    )
}

/// The authorization page: WeChat requires the link to be opened by a click on a page of the
/// registered domain, so this page is served by wxopen itself.
pub fn authorize_page(links: &AuthorizationLinks) -> String {
    page(
        "授权公众号/小程序 · Authorize",
        &format!(
            "<h1>授权给服务商 · Authorize the provider</h1><p>使用公众号或小程序管理员微信扫码完成授权。<br>Scan with the WeChat of the account's administrator to authorize.</p>\
             <a class=\"button\" id=\"authorize-pc\" href=\"{}\">前往授权 · Authorize</a>\
             <a class=\"secondary\" id=\"authorize-mobile\" href=\"{}\">在微信中打开 · Open in WeChat (mobile)</a>\
             <p><small>This link works once and expires soon; reload the page for a new one.</small></p>",
            escape_html(&links.pc_url),
            escape_html(&links.mobile_url)
        ),
    )
}

/// The page after a successful authorization.
pub fn success_page(appid: &str, nick_name: Option<&str>) -> String {
    let who = match nick_name {
        Some(n) if !n.is_empty() => format!("{} ({})", escape_html(n), escape_html(appid)),
        _ => escape_html(appid),
    };
    page(
        "授权成功 · Authorized",
        &format!(
            "<h1 class=\"ok\">授权成功 · Authorization complete</h1><p id=\"authorizer\">{who}</p><p>You can close this page.</p>"
        ),
    )
}

/// The page after a failed authorization (never a 500).
pub fn failure_page(reason: &str) -> String {
    page(
        "授权未完成 · Not authorized",
        &format!(
            "<h1 class=\"fail\">授权未完成 · Authorization not completed</h1><p id=\"reason\">{}</p><p>Go back to the authorization page and start again.</p>",
            escape_html(reason)
        ),
    )
}

/// Names of the permission sets (func_info ids) as the SDKs cite them; verify against WeChat's
/// current documentation before relying on a name.
pub fn permission_set_name(kind: Option<AccountKind>, id: u32) -> Option<&'static str> {
    let mp = match id {
        17 => Some("account management"),
        18 => Some("development and data"),
        19 => Some("customer service messages"),
        25 => Some("open platform account management"),
        30 => Some("basic info"),
        31 => Some("verification"),
        37 => Some("nearby"),
        40 => Some("plugins"),
        49 => Some("live streaming"),
        _ => None,
    };
    let oa = match id {
        1 => Some("message management"),
        2 => Some("user management"),
        3 => Some("account service"),
        4 => Some("web service"),
        5 => Some("WeChat store"),
        6 => Some("customer service"),
        7 => Some("mass messaging and notifications"),
        8 => Some("cards and coupons"),
        9 => Some("scan"),
        10 => Some("Wi-Fi"),
        11 => Some("material management"),
        12 => Some("shake nearby"),
        13 => Some("stores"),
        15 => Some("custom menu"),
        22 => Some("city service"),
        23 => Some("ads management"),
        24 => Some("open platform account management"),
        26 => Some("e-invoice"),
        27 => Some("fast mini program registration"),
        33 => Some("mini program management"),
        _ => None,
    };
    match kind {
        Some(AccountKind::MiniProgram) => mp.or(oa),
        _ => oa.or(mp),
    }
}

/// The permission set the open-account operations need for this kind of account.
pub fn open_account_permission(kind: Option<AccountKind>) -> u32 {
    match kind {
        Some(AccountKind::MiniProgram) => 25,
        _ => 24,
    }
}

/// The public view of an authorizer (never a token).
pub fn authorizer_json(r: &crate::model::AuthorizerRecord) -> serde_json::Value {
    let kind = r.profile.as_ref().map(|p| p.kind);
    let state = match r.state {
        crate::model::AuthorizerState::Authorized => "authorized",
        crate::model::AuthorizerState::Unauthorized => "unauthorized",
        crate::model::AuthorizerState::NeedsReauth => "needs_reauth",
    };
    serde_json::json!({
        "appid": r.appid,
        "type": kind.map(|k| match k {
            AccountKind::OfficialAccount => "official_account",
            AccountKind::MiniProgram => "mini_program",
        }),
        "nick_name": r.profile.as_ref().map(|p| p.nick_name.clone()),
        "user_name": r.profile.as_ref().map(|p| p.user_name.clone()),
        "principal_name": r.profile.as_ref().and_then(|p| p.principal_name.clone()),
        "service_type": r.profile.as_ref().map(|p| p.service_type),
        "verify_type": r.profile.as_ref().map(|p| p.verify_type),
        "state": state,
        "permission_sets": r.func_info.iter().map(|id| serde_json::json!({
            "id": id,
            "name": permission_set_name(kind, *id),
        })).collect::<Vec<_>>(),
        "authorized_at": r.authorized_at,
        "updated_at": r.updated_at,
        "open_appid": r.open_appid,
    })
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

    #[test]
    fn pages_escape() {
        let links = AuthorizationLinks {
            pc_url: "https://a/?x=1&y=\"2\"".into(),
            mobile_url: "m".into(),
            expires_at: 0,
        };
        let html = authorize_page(&links);
        assert!(html.contains("href=\"https://a/?x=1&amp;y=&quot;2&quot;\""));
        assert!(failure_page("<script>").contains("&lt;script&gt;"));
        assert!(success_page("wxa", Some("A & B")).contains("A &amp; B (wxa)"));
    }

    #[test]
    fn permission_names() {
        assert_eq!(
            permission_set_name(Some(AccountKind::OfficialAccount), 24),
            Some("open platform account management")
        );
        assert_eq!(
            permission_set_name(Some(AccountKind::MiniProgram), 25),
            Some("open platform account management")
        );
        assert_eq!(permission_set_name(None, 9999), None);
        assert_eq!(open_account_permission(Some(AccountKind::MiniProgram)), 25);
    }
}
