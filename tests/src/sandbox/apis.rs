//! The WeChat APIs the sandbox serves: one typed table. Routing (`http.rs`), the method and
//! token checks, quotas and faults (`api.rs`, `state.rs`), the control API's API names
//! (`control.rs`) and the call log all read it; nothing else names an API.
//!
//! # To add a WeChat API to the sandbox
//!
//! 1. Add one row to the `apis!` table below: the variant, the API's name (what the call log,
//!    `/sandbox/faults` and the daily quota call it), WeChat's exact path, the method, the token
//!    it takes and its rule.
//! 2. Write the rule, `fn(&mut State, &Call) -> Answer`, in the file of its area under `rules/`
//!    (`component`, `account`, `open`, `code`, `sns`, `business`; a new area gets a new file). It sees the
//!    acting account, the JSON body (POST) and the query; it answers JSON or bytes. A new errcode
//!    gets its `errmsg` in `api::errmsg`. State it needs goes in `state.rs`; a control-API
//!    action that drives it (a user, a merchant) goes in `actors/`.
//! 3. Test it over real HTTP in `tests/tests/it/sandbox/`: the happy path, a wrong or stale
//!    token, and each errcode the rule answers.
//!
//! Everything else applies with no more code: routing by path, 43001/43002 for a wrong method,
//! 41001/40001/42001 for a missing, wrong or expired token, 47001 for a POST body that is not a
//! JSON object, faults, quotas (45009) and the call log. A path not in the table answers
//! 40066 "invalid url" (WeChat's errcode for a URL it does not serve, from its global errcode
//! table) with HTTP 404.
//!
//! Names: the path without `/cgi-bin/` (and without `component/` for the component APIs, as
//! WeChat's docs name them: `api_query_auth`, `open/create`); APIs on other paths keep their
//! first segment (`wxa/commit`, `sns/component/jscode2session`).

use super::api::Answer;
use super::rules::{Call, account, business, code, component, open, registration, sns};
use super::state::{State, Want};

/// The HTTP method an API is served with (the other one answers 43001 / 43002).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
    /// POST with a `multipart/form-data` body (media uploads): the rule reads the raw body.
    Upload,
}

/// The token an API takes, and the query parameter that carries it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Token {
    /// No token (credentials travel in the body).
    None,
    /// The component access token.
    Component(&'static str),
    /// An authorizer access token.
    Authorizer(&'static str),
    /// The component access token, under the configured parameter (see [`TEMPLATE`]).
    Template,
}

/// `?component_access_token=`: the component APIs and the `sns/component/…` APIs.
pub const COMPONENT: Token = Token::Component("component_access_token");
/// `?access_token=`: everything done for a merchant.
pub const AUTHORIZER: Token = Token::Authorizer("access_token");
/// The template library: the component token under the parameter the sandbox's
/// `template_token_param` names (`access_token` by default, as WeChat's docs write it).
pub const TEMPLATE: Token = Token::Template;

impl Token {
    /// Which token the API wants and the query parameter carrying it (`template_param`: the
    /// template library's, from the configuration).
    pub(super) fn wants(self, template_param: &'static str) -> Option<(Want, &'static str)> {
        match self {
            Token::None => None,
            Token::Component(param) => Some((Want::Component, param)),
            Token::Authorizer(param) => Some((Want::Authorizer, param)),
            Token::Template => Some((Want::Component, template_param)),
        }
    }
}

/// An API's rule: the answer to one call (after the token, quota and body checks).
pub(super) type Rule = fn(&mut State, &Call<'_>) -> Answer;

/// One row of the table.
#[derive(Clone, Copy)]
pub struct ApiSpec {
    pub api: Api,
    pub name: &'static str,
    /// WeChat's path, from the host root (`/cgi-bin/…`, `/wxa/…`, `/sns/…`, `/wxaapi/…`).
    pub path: &'static str,
    pub method: Method,
    pub token: Token,
    pub(super) rule: Rule,
}

impl std::fmt::Debug for ApiSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiSpec")
            .field("name", &self.name)
            .field("path", &self.path)
            .field("method", &self.method)
            .field("token", &self.token)
            .finish_non_exhaustive()
    }
}

macro_rules! apis {
    ($($(#[$doc:meta])* $variant:ident = $name:literal, $path:literal, $method:ident, $token:expr, $rule:path;)*) => {
        /// A WeChat API the sandbox serves.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Api {
            $($(#[$doc])* $variant,)*
        }

        impl Api {
            /// This API's row.
            pub const fn spec(self) -> &'static ApiSpec {
                match self {
                    $(Api::$variant => {
                        const SPEC: ApiSpec = ApiSpec {
                            api: Api::$variant,
                            name: $name,
                            path: $path,
                            method: Method::$method,
                            token: $token,
                            rule: $rule,
                        };
                        &SPEC
                    })*
                }
            }
        }

        /// Every API the sandbox serves, in table order.
        pub const APIS: &[ApiSpec] = &[$(*Api::$variant.spec(),)*];
    };
}

apis! {
    // variant = name, path, method, token, rule;

    // Component APIs (`rules/component.rs`).
    ComponentToken = "api_component_token", "/cgi-bin/component/api_component_token", Post, Token::None, component::component_token;
    StartPushTicket = "api_start_push_ticket", "/cgi-bin/component/api_start_push_ticket", Post, Token::None, component::start_push_ticket;
    CreatePreauthcode = "api_create_preauthcode", "/cgi-bin/component/api_create_preauthcode", Post, COMPONENT, component::create_preauthcode;
    QueryAuth = "api_query_auth", "/cgi-bin/component/api_query_auth", Post, COMPONENT, component::query_auth;
    AuthorizerToken = "api_authorizer_token", "/cgi-bin/component/api_authorizer_token", Post, COMPONENT, component::authorizer_token;
    GetAuthorizerInfo = "api_get_authorizer_info", "/cgi-bin/component/api_get_authorizer_info", Post, COMPONENT, component::get_authorizer_info;
    GetAuthorizerList = "api_get_authorizer_list", "/cgi-bin/component/api_get_authorizer_list", Post, COMPONENT, component::get_authorizer_list;

    // Open accounts (`rules/open.rs`).
    OpenCreate = "open/create", "/cgi-bin/open/create", Post, AUTHORIZER, open::create;
    OpenBind = "open/bind", "/cgi-bin/open/bind", Post, AUTHORIZER, open::bind;
    OpenUnbind = "open/unbind", "/cgi-bin/open/unbind", Post, AUTHORIZER, open::unbind;
    OpenGet = "open/get", "/cgi-bin/open/get", Post, AUTHORIZER, open::get;

    // Official account APIs (`rules/account.rs`).
    QrcodeCreate = "qrcode/create", "/cgi-bin/qrcode/create", Post, AUTHORIZER, account::qrcode_create;
    UserInfo = "user/info", "/cgi-bin/user/info", Get, AUTHORIZER, account::user_info;
    MessageCustomSend = "message/custom/send", "/cgi-bin/message/custom/send", Post, AUTHORIZER, account::custom_send;

    // The template library, component token (`rules/code.rs`).
    WxaGetTemplateDraftList = "wxa/gettemplatedraftlist", "/wxa/gettemplatedraftlist", Get, TEMPLATE, code::get_template_draft_list;
    WxaAddToTemplate = "wxa/addtotemplate", "/wxa/addtotemplate", Post, TEMPLATE, code::add_to_template;
    WxaGetTemplateList = "wxa/gettemplatelist", "/wxa/gettemplatelist", Get, TEMPLATE, code::get_template_list;
    WxaDeleteTemplate = "wxa/deletetemplate", "/wxa/deletetemplate", Post, TEMPLATE, code::delete_template;

    // One mini program's code, its authorizer token and set 18 (`rules/code.rs`).
    WxaGetCategory = "wxa/get_category", "/wxa/get_category", Get, AUTHORIZER, code::get_category;
    WxaGetPage = "wxa/get_page", "/wxa/get_page", Get, AUTHORIZER, code::get_page;
    WxaCommit = "wxa/commit", "/wxa/commit", Post, AUTHORIZER, code::commit;
    /// Binary: the trial version's QR code as `image/jpeg`.
    WxaGetQrcode = "wxa/get_qrcode", "/wxa/get_qrcode", Get, AUTHORIZER, code::get_qrcode;
    WxaSubmitAudit = "wxa/submit_audit", "/wxa/submit_audit", Post, AUTHORIZER, code::submit_audit;
    WxaGetAuditStatus = "wxa/get_auditstatus", "/wxa/get_auditstatus", Post, AUTHORIZER, code::get_auditstatus;
    WxaGetLatestAuditStatus = "wxa/get_latest_auditstatus", "/wxa/get_latest_auditstatus", Get, AUTHORIZER, code::get_latest_auditstatus;
    WxaUndoCodeAudit = "wxa/undocodeaudit", "/wxa/undocodeaudit", Get, AUTHORIZER, code::undocodeaudit;
    WxaSpeedUpAudit = "wxa/speedupaudit", "/wxa/speedupaudit", Post, AUTHORIZER, code::speedupaudit;
    WxaQueryQuota = "wxa/queryquota", "/wxa/queryquota", Get, AUTHORIZER, code::queryquota;
    /// The body must be the literal `{}`.
    WxaRelease = "wxa/release", "/wxa/release", Post, AUTHORIZER, code::release;
    /// `?action=get_history_version` lists instead of rolling back.
    WxaRevertCodeRelease = "wxa/revertcoderelease", "/wxa/revertcoderelease", Get, AUTHORIZER, code::revertcoderelease;
    WxaGrayRelease = "wxa/grayrelease", "/wxa/grayrelease", Post, AUTHORIZER, code::grayrelease;
    WxaGetGrayReleasePlan = "wxa/getgrayreleaseplan", "/wxa/getgrayreleaseplan", Get, AUTHORIZER, code::getgrayreleaseplan;
    WxaRevertGrayRelease = "wxa/revertgrayrelease", "/wxa/revertgrayrelease", Get, AUTHORIZER, code::revertgrayrelease;
    /// The trial (`exp_info`) and live (`release_info`) versions; added for fleet releases.
    WxaGetVersionInfo = "wxa/getversioninfo", "/wxa/getversioninfo", Post, AUTHORIZER, code::getversioninfo;

    // Sign-in on behalf (`rules/sns.rs`).
    SnsJscode2session = "sns/component/jscode2session", "/sns/component/jscode2session", Get, COMPONENT, sns::jscode2session;

    // Business APIs a provider's services call through wxopen's API gateway (`rules/business.rs`).
    MenuCreate = "menu/create", "/cgi-bin/menu/create", Post, AUTHORIZER, business::menu_create;
    UserGet = "user/get", "/cgi-bin/user/get", Get, AUTHORIZER, business::user_get;
    /// `multipart/form-data` with a `media` part; `?type=image|voice|video|thumb`.
    MediaUpload = "media/upload", "/cgi-bin/media/upload", Upload, AUTHORIZER, business::media_upload;
    /// Binary: the uploaded bytes with their `Content-Type` and `Content-disposition`.
    MediaGet = "media/get", "/cgi-bin/media/get", Get, AUTHORIZER, business::media_get;
    ClearQuota = "clear_quota", "/cgi-bin/clear_quota", Post, AUTHORIZER, business::clear_quota;
    // Named with `component/`: `clear_quota` is the account's API above.
    ComponentClearQuota = "component/clear_quota", "/cgi-bin/component/clear_quota", Post, COMPONENT, business::component_clear_quota;
    /// No token: `{component_appid, appsecret}` in the body (works while 45009 blocks the token).
    ComponentClearQuotaV2 = "component/clear_quota/v2", "/cgi-bin/component/clear_quota/v2", Post, Token::None, business::component_clear_quota_v2;
    QuotaGet = "openapi/quota/get", "/cgi-bin/openapi/quota/get", Post, AUTHORIZER, business::quota_get;
    QuotaClear = "openapi/quota/clear", "/cgi-bin/openapi/quota/clear", Post, AUTHORIZER, business::quota_clear;
    SnsOauthAccessToken = "sns/oauth2/component/access_token", "/sns/oauth2/component/access_token", Get, COMPONENT, sns::oauth_access_token;
    /// The user's OAuth token (`?access_token=`), checked by the rule.
    SnsUserinfo = "sns/userinfo", "/sns/userinfo", Get, Token::None, sns::userinfo;

    // Fast registration (`rules/registration.rs`): the enterprise successor API takes the
    // component token as `access_token` (the `wxa/component/…` family's docs).
    FastRegisterEnterprise = "wxa/component/fastregisterenterpriseweapp", "/wxa/component/fastregisterenterpriseweapp", Post, Token::Component("access_token"), registration::enterprise;
    AccountFastRegister = "account/fastregister", "/cgi-bin/account/fastregister", Post, AUTHORIZER, registration::account_fastregister;
}

impl Api {
    /// The API's name (call log, faults, quotas).
    pub const fn name(self) -> &'static str {
        self.spec().name
    }

    pub fn from_name(name: &str) -> Option<Api> {
        APIS.iter().find(|s| s.name == name).map(|s| s.api)
    }

    /// The API served at `path` (from the host root; a trailing `/` is ignored).
    pub fn from_path(path: &str) -> Option<Api> {
        let path = path.trim_end_matches('/');
        APIS.iter().find(|s| s.path == path).map(|s| s.api)
    }

    pub fn method(self) -> Method {
        self.spec().method
    }

    pub fn token(self) -> Token {
        self.spec().token
    }
}

/// Every API name, in table order.
pub fn api_names() -> impl Iterator<Item = &'static str> {
    APIS.iter().map(|s| s.name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_map_to_apis() {
        assert_eq!(
            Api::from_path("/cgi-bin/component/api_component_token"),
            Some(Api::ComponentToken)
        );
        assert_eq!(
            Api::from_path("/cgi-bin/open/create/"),
            Some(Api::OpenCreate)
        );
        assert_eq!(Api::from_path("/cgi-bin/user/info"), Some(Api::UserInfo));
        assert_eq!(Api::UserInfo.method(), Method::Get);
        assert_eq!(Api::OpenCreate.method(), Method::Post);
        assert_eq!(
            Api::from_path("/cgi-bin/message/custom/send"),
            Some(Api::MessageCustomSend)
        );
        assert_eq!(Api::from_path("/wxa/commit"), Some(Api::WxaCommit));
        assert_eq!(
            Api::from_path("/sns/component/jscode2session"),
            Some(Api::SnsJscode2session)
        );
        assert_eq!(Api::from_path("/cgi-bin/api_component_token"), None);
        assert_eq!(Api::from_path("/cgi-bin/component/open/create"), None);
        assert_eq!(Api::from_path("/cgi-bin/nope"), None);
        assert_eq!(Api::from_path("/wxa/nope"), None);
    }

    #[test]
    fn the_table_is_consistent() {
        let mut names: Vec<_> = api_names().collect();
        let mut paths: Vec<_> = APIS.iter().map(|s| s.path).collect();
        names.sort_unstable();
        names.dedup();
        paths.sort_unstable();
        paths.dedup();
        assert_eq!(names.len(), APIS.len(), "names are unique");
        assert_eq!(paths.len(), APIS.len(), "paths are unique");
        for spec in APIS {
            assert_eq!(spec.api.spec().name, spec.name);
            assert_eq!(spec.api.name(), spec.name);
            assert_eq!(Api::from_name(spec.name), Some(spec.api));
            assert_eq!(Api::from_path(spec.path), Some(spec.api));
            assert!(
                ["/cgi-bin/", "/wxa/", "/sns/", "/wxaapi/"]
                    .iter()
                    .any(|p| spec.path.starts_with(p)),
                "{}: a WeChat API path",
                spec.path
            );
        }
    }
}
