//! The table of every WeChat API the client calls: its name (for logs and metrics) and path.
//! Adding an API starts here; see CONTRIBUTING.md.

/// The API a call was for (names as in WeChat's paths).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Api {
    ClientSetup,
    ComponentToken,
    CreatePreauthcode,
    QueryAuth,
    AuthorizerToken,
    GetAuthorizerInfo,
    GetAuthorizerList,
    StartPushTicket,
    OpenCreate,
    OpenBind,
    OpenUnbind,
    OpenGet,
    QrcodeCreate,
    UserInfo,
    CustomSend,
    Jscode2session,
    OauthComponentAccessToken,
    SnsUserinfo,
    /// Fast registration of an enterprise mini program (successor API; its path is
    /// configurable, this is the default).
    FastRegisterEnterprise,
    /// Registering a mini program reusing an official account's subject (set 27).
    AccountFastRegister,
    // Mini program code management (`code.rs`): the template library (component token) …
    GetTemplateDraftList,
    AddToTemplate,
    GetTemplateList,
    DeleteTemplate,
    // … and one mini program's code (its authorizer token, permission set 18).
    Commit,
    GetQrcode,
    GetCategory,
    GetPage,
    SubmitAudit,
    GetAuditStatus,
    GetLatestAuditStatus,
    UndoCodeAudit,
    SpeedUpAudit,
    QueryQuota,
    Release,
    RevertCodeRelease,
    GrayRelease,
    GetGrayReleasePlan,
    RevertGrayRelease,
    /// `wxa/getversioninfo`: the trial and live versions (fleet releases reconcile with it).
    GetVersionInfo,
}

impl Api {
    pub fn path(self) -> &'static str {
        match self {
            Api::ClientSetup => "",
            Api::ComponentToken => "/cgi-bin/component/api_component_token",
            Api::CreatePreauthcode => "/cgi-bin/component/api_create_preauthcode",
            Api::QueryAuth => "/cgi-bin/component/api_query_auth",
            Api::AuthorizerToken => "/cgi-bin/component/api_authorizer_token",
            Api::GetAuthorizerInfo => "/cgi-bin/component/api_get_authorizer_info",
            Api::GetAuthorizerList => "/cgi-bin/component/api_get_authorizer_list",
            Api::StartPushTicket => "/cgi-bin/component/api_start_push_ticket",
            Api::OpenCreate => "/cgi-bin/open/create",
            Api::OpenBind => "/cgi-bin/open/bind",
            Api::OpenUnbind => "/cgi-bin/open/unbind",
            Api::OpenGet => "/cgi-bin/open/get",
            Api::QrcodeCreate => "/cgi-bin/qrcode/create",
            Api::UserInfo => "/cgi-bin/user/info",
            Api::CustomSend => "/cgi-bin/message/custom/send",
            Api::Jscode2session => "/sns/component/jscode2session",
            Api::OauthComponentAccessToken => "/sns/oauth2/component/access_token",
            Api::SnsUserinfo => "/sns/userinfo",
            Api::FastRegisterEnterprise => "/wxa/component/fastregisterenterpriseweapp",
            Api::AccountFastRegister => "/cgi-bin/account/fastregister",
            Api::GetTemplateDraftList => "/wxa/gettemplatedraftlist",
            Api::AddToTemplate => "/wxa/addtotemplate",
            Api::GetTemplateList => "/wxa/gettemplatelist",
            Api::DeleteTemplate => "/wxa/deletetemplate",
            Api::Commit => "/wxa/commit",
            Api::GetQrcode => "/wxa/get_qrcode",
            Api::GetCategory => "/wxa/get_category",
            Api::GetPage => "/wxa/get_page",
            Api::SubmitAudit => "/wxa/submit_audit",
            Api::GetAuditStatus => "/wxa/get_auditstatus",
            Api::GetLatestAuditStatus => "/wxa/get_latest_auditstatus",
            Api::UndoCodeAudit => "/wxa/undocodeaudit",
            Api::SpeedUpAudit => "/wxa/speedupaudit",
            Api::QueryQuota => "/wxa/queryquota",
            Api::Release => "/wxa/release",
            Api::RevertCodeRelease => "/wxa/revertcoderelease",
            Api::GrayRelease => "/wxa/grayrelease",
            Api::GetGrayReleasePlan => "/wxa/getgrayreleaseplan",
            Api::RevertGrayRelease => "/wxa/revertgrayrelease",
            Api::GetVersionInfo => "/wxa/getversioninfo",
        }
    }

    /// Short name for logs and metrics.
    pub fn name(self) -> &'static str {
        self.path().rsplit('/').next().unwrap_or_default()
    }
}

impl std::fmt::Display for Api {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}
