//! Authorization links (PC and mobile): their validated options, the URLs, and the pre-auth
//! code they are made from.

use secrecy::ExposeSecret;
use url::Url;

use crate::appid;
use crate::clock::Clock;
use crate::config::Config;
use crate::crypto;
use crate::model::{AuthorizationLink, LinkStatus, PreAuth};
use crate::secrets::CredentialsProvider;
use crate::store::{LinkStore, StoreError, TokenServiceStore};
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
    #[error("customer_ref is required: 1 to 128 characters, no control characters")]
    CustomerRef,
    #[error("return_to must be an http(s) URL under one of the deployment's allowed return URLs")]
    ReturnTo,
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

/// Settings of authorization links, built from [`Config`].
#[derive(Debug, Clone)]
pub struct LinkSettings {
    /// How long a link stays usable (`AUTHORIZE_LINK_TTL_SECONDS`).
    pub ttl_secs: i64,
    /// URL prefixes `return_to` must start with (`AUTHORIZE_RETURN_TO_ALLOWLIST`); empty = no
    /// `return_to` accepted.
    pub return_to_allowlist: Vec<Url>,
    /// A pre-auth code with less than this left is replaced before a page shows it.
    pub renew_margin_secs: i64,
}

impl LinkSettings {
    pub fn from_config(config: &Config) -> Self {
        Self {
            ttl_secs: i64::try_from(config.authorize_link_ttl.as_secs()).unwrap_or(86_400),
            return_to_allowlist: config
                .authorize_return_to_allowlist
                .iter()
                .filter_map(|u| Url::parse(u).ok())
                .collect(),
            renew_margin_secs: 120,
        }
    }

    /// `return_to` must be an http(s) URL with the scheme, host and port of an allow-list entry
    /// and a path under the entry's path; it may carry no user info and no fragment.
    pub fn check_return_to(&self, return_to: &str) -> Result<Url, LinkError> {
        let url = Url::parse(return_to.trim()).map_err(|_| LinkError::ReturnTo)?;
        if !matches!(url.scheme(), "http" | "https")
            || !url.username().is_empty()
            || url.password().is_some()
            || url.fragment().is_some()
            || return_to.len() > 1024
        {
            return Err(LinkError::ReturnTo);
        }
        let allowed = self.return_to_allowlist.iter().any(|a| {
            a.scheme() == url.scheme()
                && a.host_str() == url.host_str()
                && a.port_or_known_default() == url.port_or_known_default()
                && (a.path() == "/"
                    || url.path() == a.path().trim_end_matches('/')
                    || url
                        .path()
                        .starts_with(&format!("{}/", a.path().trim_end_matches('/'))))
        });
        if allowed {
            Ok(url)
        } else {
            Err(LinkError::ReturnTo)
        }
    }
}

/// The provider's reference to its customer: 1 to 128 characters, no control characters.
pub fn check_customer_ref(customer_ref: Option<&str>) -> Result<String, LinkError> {
    crate::model::customer_ref(customer_ref).ok_or(LinkError::CustomerRef)
}

/// A link id as issued: 32 lowercase hex characters. Anything else is never looked up.
pub fn is_link_id(id: &str) -> bool {
    id.len() == 32 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

fn new_link_id() -> String {
    format!("{:032x}", rand::random::<u128>())
}

/// Where WeChat sends the browser back for one link: `{public_base}/authorize/callback?link=<id>`
/// (WeChat appends `auth_code` and `expires_in` to this URL's query).
pub fn link_redirect_uri(public_base: &str, link_id: &str) -> String {
    format!("{}?link={link_id}", redirect_uri(public_base))
}

/// Where the merchant opens a link: `{public_base}/authorize?link=<id>`.
pub fn page_url(public_base: &str, link_id: &str) -> String {
    format!(
        "{}/authorize?link={link_id}",
        public_base.trim_end_matches('/')
    )
}

/// A link's status as `GET /authorize/links/{id}` shows it.
pub fn link_status(link: &AuthorizationLink, now: i64) -> &'static str {
    match link.status {
        LinkStatus::Authorized => "authorized",
        LinkStatus::Pending if link.expires_at <= now => "expired",
        LinkStatus::Pending => "pending",
    }
}

/// What `POST /authorize/links` asks for, validated.
#[derive(Debug, Clone)]
pub struct NewLink {
    pub customer_ref: String,
    pub options: LinkOptions,
    pub return_to: Option<String>,
}

/// A created link and the WeChat URLs of its first pre-auth code.
#[derive(Debug, Clone)]
pub struct CreatedLink {
    pub link: AuthorizationLink,
    pub urls: AuthorizationLinks,
}

fn options_of(link: &AuthorizationLink) -> LinkOptions {
    LinkOptions {
        auth_type: match link.auth_type {
            1 => AuthType::OfficialAccount,
            2 => AuthType::MiniProgram,
            _ => AuthType::Both,
        },
        biz_appid: link.biz_appid.clone(),
        category_id_list: link.category_id_list.clone(),
    }
}

async fn new_pre_auth<S, C, K>(svc: &TokenService<'_, S, C, K>) -> Result<PreAuth, TokenError>
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
    Ok(PreAuth {
        expires_at: svc.clock.now() + code.expires_in,
        code: code.pre_auth_code,
    })
}

async fn urls_for<S, C, K>(
    svc: &TokenService<'_, S, C, K>,
    hosts: &LinkHosts,
    public_base: &str,
    link: &AuthorizationLink,
    pre_auth: &PreAuth,
) -> Result<AuthorizationLinks, TokenError>
where
    S: TokenServiceStore,
    C: CredentialsProvider,
    K: Clock,
{
    let creds = svc.credentials.credentials().await?;
    build_links(
        &hosts.mp_base,
        &hosts.open_base,
        &creds.component_appid,
        pre_auth.code.expose_secret(),
        &link_redirect_uri(public_base, &link.id),
        &options_of(link),
        pre_auth.expires_at,
    )
    .map_err(|_| TokenError::Busy)
}

/// `POST /authorize/links`: a new link for one customer, with its first pre-auth code.
pub async fn create_link<S, C, K>(
    svc: &TokenService<'_, S, C, K>,
    hosts: &LinkHosts,
    settings: &LinkSettings,
    public_base: &str,
    request: &NewLink,
) -> Result<CreatedLink, TokenError>
where
    S: TokenServiceStore,
    C: CredentialsProvider,
    K: Clock,
{
    let pre_auth = new_pre_auth(svc).await?;
    let now = svc.clock.now();
    let link = AuthorizationLink {
        id: new_link_id(),
        customer_ref: request.customer_ref.clone(),
        auth_type: request.options.auth_type.code(),
        biz_appid: request.options.biz_appid.clone(),
        category_id_list: request.options.category_id_list.clone(),
        return_to: request.return_to.clone(),
        created_at: now,
        expires_at: now + settings.ttl_secs,
        status: LinkStatus::Pending,
        authorizer_appid: None,
        authorized_at: None,
    };
    svc.store
        .create_link(
            &link,
            &pre_auth,
            &crypto::sha1_hex(pre_auth.code.expose_secret()),
        )
        .await?;
    tracing::info!(link = %link.id, "authorization link created");
    let urls = urls_for(svc, hosts, public_base, &link, &pre_auth).await?;
    Ok(CreatedLink { link, urls })
}

/// What the public page shows for a `?link=` value.
#[derive(Debug)]
pub enum LinkPage {
    /// A live link: the WeChat URLs of its current pre-auth code.
    Live(AuthorizationLinks),
    /// Already authorized (the page says so and offers nothing more).
    Authorized(AuthorizationLink),
    /// Malformed, unknown or expired: a 404 page, nothing called.
    NotFound,
}

/// The page for `GET /authorize?link=<id>`. A stranger's request costs at most one read: the
/// pre-auth code is created only for a live link, at most once per code lifetime (a claim on
/// the link item picks the one worker that asks WeChat).
pub async fn link_page<S, C, K>(
    svc: &TokenService<'_, S, C, K>,
    hosts: &LinkHosts,
    settings: &LinkSettings,
    public_base: &str,
    id: Option<&str>,
) -> Result<LinkPage, TokenError>
where
    S: TokenServiceStore,
    C: CredentialsProvider,
    K: Clock,
{
    let Some(id) = id.filter(|i| is_link_id(i)) else {
        return Ok(LinkPage::NotFound);
    };
    let deadline = std::time::Instant::now() + svc.settings.wait_budget;
    loop {
        let Some((link, pre_auth)) = svc.store.get_link(id).await? else {
            return Ok(LinkPage::NotFound);
        };
        let now = svc.clock.now();
        match link.status {
            LinkStatus::Authorized => return Ok(LinkPage::Authorized(link)),
            LinkStatus::Pending if link.expires_at <= now => return Ok(LinkPage::NotFound),
            LinkStatus::Pending => {}
        }
        if let Some(p) = pre_auth
            .as_ref()
            .filter(|p| p.expires_at > now + settings.renew_margin_secs)
        {
            return Ok(LinkPage::Live(
                urls_for(svc, hosts, public_base, &link, p).await?,
            ));
        }
        let seen = pre_auth.as_ref().map_or(0, |p| p.expires_at);
        let until = now + svc.settings.lease_secs;
        if svc
            .store
            .claim_pre_auth_renewal(id, seen, now, until)
            .await?
        {
            let fresh = new_pre_auth(svc).await?;
            svc.store
                .set_pre_auth(id, &fresh, &crypto::sha1_hex(fresh.code.expose_secret()))
                .await?;
            return Ok(LinkPage::Live(
                urls_for(svc, hosts, public_base, &link, &fresh).await?,
            ));
        }
        if std::time::Instant::now() >= deadline {
            return Err(TokenError::Busy);
        }
        tokio::time::sleep(svc.settings.poll).await;
    }
}

/// The link a browser redirect names, if it may complete an authorization: a pending link
/// that has not expired, or one already authorized (the redirect after the push did the work).
pub async fn callback_link<S: LinkStore>(
    store: &S,
    id: Option<&str>,
    now: i64,
) -> Result<Option<AuthorizationLink>, StoreError> {
    let Some(id) = id.filter(|i| is_link_id(i)) else {
        return Ok(None);
    };
    Ok(store
        .get_link(id)
        .await?
        .map(|(l, _)| l)
        .filter(|l| l.status == LinkStatus::Authorized || l.expires_at > now))
}

/// How an authorization names its link: the redirect's `link` (already read), the push's
/// `PreAuthCode` (by digest), or nothing (made from WeChat's console).
#[derive(Debug, Clone)]
pub enum LinkHint {
    None,
    Link(Box<AuthorizationLink>),
    PreAuthDigest(String),
}

/// Ties an authorizer to the customer of the link that authorized it (whichever of the push
/// and the redirect arrives first; the second finds it done). An authorization that names no
/// link is left with no customer.
pub async fn bind_authorization<S: LinkStore>(
    store: &S,
    hint: &LinkHint,
    appid: &str,
    now: i64,
) -> Result<Option<String>, StoreError> {
    let link = match hint {
        LinkHint::None => return Ok(None),
        LinkHint::Link(l) => Some((**l).clone()),
        LinkHint::PreAuthDigest(d) => match store.link_for_pre_auth(d).await? {
            Some(id) => store.get_link(&id).await?.map(|(l, _)| l),
            None => None,
        },
    };
    let Some(link) = link else {
        tracing::info!(
            authorizer = appid,
            "authorization matches no link; recorded with no customer"
        );
        return Ok(None);
    };
    if store.bind_link(&link, appid, now).await? {
        tracing::info!(authorizer = appid, link = %link.id, "authorization tied to its link");
        Ok(Some(link.id))
    } else {
        tracing::warn!(authorizer = appid, link = %link.id, "link already used by another authorizer");
        Ok(None)
    }
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
