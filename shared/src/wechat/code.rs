//! Mini program code management (the third-party template model): the template library with the
//! component token, and one mini program's code with its authorizer token (permission set 18):
//! commit, the trial QR code, categories and pages, audit, release, roll back, gray release.
//!
//! The template library's token parameter is configurable ([`TokenParam`], default
//! `access_token`); every other call here sends the authorizer token as `access_token`.

use secrecy::SecretString;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value, json};

use super::*;

/// An integer WeChat may send as a number or as a string of digits.
fn lenient_i64<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    match Value::deserialize(d)? {
        Value::Number(n) => n
            .as_i64()
            .ok_or_else(|| serde::de::Error::custom("not an integer")),
        Value::String(s) => s
            .trim()
            .parse()
            .map_err(|_| serde::de::Error::custom("not an integer")),
        Value::Null => Ok(0),
        _ => Err(serde::de::Error::custom("not an integer")),
    }
}

fn lenient_opt_i64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    match Value::deserialize(d)? {
        Value::Null => Ok(None),
        Value::Number(n) => Ok(n.as_i64()),
        Value::String(s) => Ok(s.trim().parse().ok()),
        _ => Ok(None),
    }
}

/// `null` or missing as the empty string.
fn string_or_empty<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(Option::<String>::deserialize(d)?.unwrap_or_default())
}

/// A draft uploaded from the development mini program (`gettemplatedraftlist`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Draft {
    #[serde(deserialize_with = "lenient_i64")]
    pub draft_id: i64,
    #[serde(default, deserialize_with = "string_or_empty")]
    pub user_version: String,
    #[serde(default, deserialize_with = "string_or_empty")]
    pub user_desc: String,
    #[serde(default, deserialize_with = "lenient_i64")]
    pub create_time: i64,
    #[serde(default, deserialize_with = "string_or_empty")]
    pub source_miniprogram_appid: String,
    #[serde(default, deserialize_with = "string_or_empty")]
    pub source_miniprogram: String,
    #[serde(default, deserialize_with = "string_or_empty")]
    pub developer: String,
}

/// A template of the library (`gettemplatelist`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Template {
    #[serde(deserialize_with = "lenient_i64")]
    pub template_id: i64,
    /// 0 normal, 1 standard template.
    #[serde(default, deserialize_with = "lenient_i64")]
    pub template_type: i64,
    #[serde(default, deserialize_with = "string_or_empty")]
    pub user_version: String,
    #[serde(default, deserialize_with = "string_or_empty")]
    pub user_desc: String,
    #[serde(default, deserialize_with = "lenient_i64")]
    pub create_time: i64,
    #[serde(default, deserialize_with = "lenient_opt_i64")]
    pub draft_id: Option<i64>,
    #[serde(default, deserialize_with = "string_or_empty")]
    pub source_miniprogram_appid: String,
    #[serde(default, deserialize_with = "string_or_empty")]
    pub source_miniprogram: String,
    #[serde(default, deserialize_with = "string_or_empty")]
    pub developer: String,
    /// Standard templates: their audit in the library.
    #[serde(default, deserialize_with = "lenient_opt_i64")]
    pub audit_status: Option<i64>,
    #[serde(default)]
    pub reason: Option<String>,
}

#[derive(Deserialize)]
struct DraftList {
    #[serde(default)]
    draft_list: Vec<Draft>,
}

#[derive(Deserialize)]
struct TemplateList {
    #[serde(default)]
    template_list: Vec<Template>,
}

/// A `wxa/commit`: `ext_json` is a JSON object; it travels serialised into a string field.
#[derive(Debug, Clone, Copy)]
pub struct Commit<'a> {
    pub template_id: i64,
    pub ext_json: &'a Map<String, Value>,
    pub user_version: &'a str,
    pub user_desc: &'a str,
}

/// One category the mini program may submit under (`get_category`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Category {
    #[serde(default)]
    pub first_class: String,
    #[serde(default)]
    pub second_class: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub third_class: Option<String>,
    #[serde(default, deserialize_with = "lenient_i64")]
    pub first_id: i64,
    #[serde(default, deserialize_with = "lenient_i64")]
    pub second_id: i64,
    #[serde(
        default,
        deserialize_with = "lenient_opt_i64",
        skip_serializing_if = "Option::is_none"
    )]
    pub third_id: Option<i64>,
}

#[derive(Deserialize)]
struct CategoryList {
    #[serde(default)]
    category_list: Vec<Category>,
}

#[derive(Deserialize)]
struct PageList {
    #[serde(default)]
    page_list: Vec<String>,
}

/// The fields of `submit_audit`, passed through as given (all optional; WeChat checks them).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AuditSubmission {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub item_list: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub feedback_info: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub feedback_stuff: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ugc_declare: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub privacy_api_not_use: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preview_info: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version_desc: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_path: Option<Value>,
}

impl AuditSubmission {
    /// The names of the fields passed through.
    pub const FIELDS: [&'static str; 8] = [
        "item_list",
        "feedback_info",
        "feedback_stuff",
        "ugc_declare",
        "privacy_api_not_use",
        "preview_info",
        "version_desc",
        "order_path",
    ];
}

#[derive(Deserialize)]
struct AuditId {
    #[serde(deserialize_with = "lenient_i64")]
    auditid: i64,
}

/// An audit's `status`: 0 approved, 1 rejected, 2 in review, 3 withdrawn, 4 delayed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditState {
    Approved,
    Rejected,
    Auditing,
    Withdrawn,
    Delayed,
    /// A status WeChat's docs do not list.
    Unknown,
}

impl AuditState {
    pub fn from_status(status: i64) -> Self {
        match status {
            0 => AuditState::Approved,
            1 => AuditState::Rejected,
            2 => AuditState::Auditing,
            3 => AuditState::Withdrawn,
            4 => AuditState::Delayed,
            _ => AuditState::Unknown,
        }
    }
}

/// `get_auditstatus` / `get_latest_auditstatus`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct AuditStatus {
    /// Only `get_latest_auditstatus` names the audit.
    #[serde(default, deserialize_with = "lenient_opt_i64")]
    pub auditid: Option<i64>,
    #[serde(deserialize_with = "lenient_i64")]
    pub status: i64,
    /// Why rejected (1) or delayed (4).
    #[serde(default)]
    pub reason: Option<String>,
    /// Media ids joined by `|` (rejections); `ScreenShot` in the latest-status answer.
    #[serde(default, alias = "ScreenShot")]
    pub screenshot: Option<String>,
    #[serde(default)]
    pub user_version: Option<String>,
    #[serde(default)]
    pub user_desc: Option<String>,
    #[serde(default, deserialize_with = "lenient_opt_i64")]
    pub submit_audit_time: Option<i64>,
}

impl AuditStatus {
    pub fn state(&self) -> AuditState {
        AuditState::from_status(self.status)
    }
}

/// `queryquota`: the platform's monthly audit quota and speed-ups.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditQuota {
    #[serde(default, deserialize_with = "lenient_i64")]
    pub rest: i64,
    #[serde(default, deserialize_with = "lenient_i64")]
    pub limit: i64,
    #[serde(default, deserialize_with = "lenient_i64")]
    pub speedup_rest: i64,
    #[serde(default, deserialize_with = "lenient_i64")]
    pub speedup_limit: i64,
}

/// One version `revertcoderelease?action=get_history_version` lists.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryVersion {
    #[serde(deserialize_with = "lenient_i64")]
    pub app_version: i64,
    #[serde(default)]
    pub user_version: String,
    #[serde(default)]
    pub user_desc: String,
    #[serde(default, deserialize_with = "lenient_i64")]
    pub commit_time: i64,
}

#[derive(Deserialize)]
struct VersionList {
    #[serde(default)]
    version_list: Vec<HistoryVersion>,
}

/// `grayrelease`: a percentage 0..=100 (0 needs one of the flags).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GrayRelease {
    pub gray_percentage: u8,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub support_experiencer_first: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub support_debuger_first: Option<bool>,
}

/// `getgrayreleaseplan`: status 0 init, 1 running, 2 paused, 3 done, 4 deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GrayPlan {
    #[serde(default, deserialize_with = "lenient_i64")]
    pub status: i64,
    #[serde(default, deserialize_with = "lenient_i64")]
    pub create_timestamp: i64,
    #[serde(default, deserialize_with = "lenient_i64")]
    pub gray_percentage: i64,
    #[serde(default)]
    pub support_experiencer_first: bool,
    #[serde(default)]
    pub support_debuger_first: bool,
}

#[derive(Deserialize)]
struct GrayPlanAnswer {
    #[serde(default)]
    gray_release_plan: GrayPlan,
}

impl WeChatClient {
    fn template_auth<'a>(&self, component_token: &'a SecretString) -> Auth<'a> {
        Auth::ComponentAs(component_token, self.template_token_param)
    }

    /// `gettemplatedraftlist` with the component token: drafts of the development mini program.
    pub async fn get_template_draft_list(
        &self,
        component_token: &SecretString,
    ) -> Result<Vec<Draft>, WeChatError> {
        let r: DraftList = self
            .call(
                Api::GetTemplateDraftList,
                self.template_auth(component_token),
                &[],
                None,
            )
            .await?;
        Ok(r.draft_list)
    }

    /// `addtotemplate` with the component token: a draft into the library (`template_type` 0
    /// normal, 1 standard).
    pub async fn add_to_template(
        &self,
        component_token: &SecretString,
        draft_id: i64,
        template_type: i64,
    ) -> Result<(), WeChatError> {
        let body = json!({ "draft_id": draft_id, "template_type": template_type });
        self.post_ok(
            Api::AddToTemplate,
            self.template_auth(component_token),
            &body,
        )
        .await
    }

    /// `gettemplatelist` with the component token (all types when `template_type` is `None`).
    pub async fn get_template_list(
        &self,
        component_token: &SecretString,
        template_type: Option<i64>,
    ) -> Result<Vec<Template>, WeChatError> {
        let kind = template_type.map(|t| t.to_string());
        let query: Vec<(&str, &str)> = kind
            .as_deref()
            .map(|t| ("template_type", t))
            .into_iter()
            .collect();
        let r: TemplateList = self
            .call(
                Api::GetTemplateList,
                self.template_auth(component_token),
                &query,
                None,
            )
            .await?;
        Ok(r.template_list)
    }

    /// `deletetemplate` with the component token.
    pub async fn delete_template(
        &self,
        component_token: &SecretString,
        template_id: i64,
    ) -> Result<(), WeChatError> {
        self.post_ok(
            Api::DeleteTemplate,
            self.template_auth(component_token),
            &json!({ "template_id": template_id }),
        )
        .await
    }

    /// `commit`: the template as the mini program's trial version (`ext_json` serialised into a
    /// string, as WeChat wants it).
    pub async fn commit(
        &self,
        authorizer_token: &SecretString,
        commit: Commit<'_>,
    ) -> Result<(), WeChatError> {
        let ext_json = serde_json::to_string(commit.ext_json)
            .map_err(|_| WeChatError::Decode { api: Api::Commit })?;
        let body = json!({
            "template_id": commit.template_id,
            "ext_json": ext_json,
            "user_version": commit.user_version,
            "user_desc": commit.user_desc,
        });
        self.post_ok(Api::Commit, Auth::Authorizer(authorizer_token), &body)
            .await
    }

    /// `get_qrcode`: the trial version's QR code image (`path` is the page, with its query;
    /// `None`: the home page).
    pub async fn get_qrcode(
        &self,
        authorizer_token: &SecretString,
        path: Option<&str>,
    ) -> Result<Binary, WeChatError> {
        let query: Vec<(&str, &str)> = path.map(|p| ("path", p)).into_iter().collect();
        self.call_bytes(Api::GetQrcode, Auth::Authorizer(authorizer_token), &query)
            .await
    }

    /// `get_category`: the categories the mini program may submit under.
    pub async fn get_category(
        &self,
        authorizer_token: &SecretString,
    ) -> Result<Vec<Category>, WeChatError> {
        let r: CategoryList = self
            .authorizer_get(Api::GetCategory, authorizer_token, &[])
            .await?;
        Ok(r.category_list)
    }

    /// `get_page`: the pages of the committed code.
    pub async fn get_page(
        &self,
        authorizer_token: &SecretString,
    ) -> Result<Vec<String>, WeChatError> {
        let r: PageList = self
            .authorizer_get(Api::GetPage, authorizer_token, &[])
            .await?;
        Ok(r.page_list)
    }

    /// `submit_audit`: the trial version into review; answers the `auditid`.
    pub async fn submit_audit(
        &self,
        authorizer_token: &SecretString,
        submission: &AuditSubmission,
    ) -> Result<i64, WeChatError> {
        let r: AuditId = self
            .post(
                Api::SubmitAudit,
                Auth::Authorizer(authorizer_token),
                submission,
            )
            .await?;
        Ok(r.auditid)
    }

    /// `get_auditstatus` of one audit.
    pub async fn get_auditstatus(
        &self,
        authorizer_token: &SecretString,
        auditid: i64,
    ) -> Result<AuditStatus, WeChatError> {
        self.post(
            Api::GetAuditStatus,
            Auth::Authorizer(authorizer_token),
            &json!({ "auditid": auditid }),
        )
        .await
    }

    /// `get_latest_auditstatus`: the newest audit, with its id.
    pub async fn get_latest_auditstatus(
        &self,
        authorizer_token: &SecretString,
    ) -> Result<AuditStatus, WeChatError> {
        self.authorizer_get(Api::GetLatestAuditStatus, authorizer_token, &[])
            .await
    }

    /// `undocodeaudit`: withdraws the audit in review (5 a day, 10 a month).
    pub async fn undo_code_audit(
        &self,
        authorizer_token: &SecretString,
    ) -> Result<(), WeChatError> {
        self.get_ok(Api::UndoCodeAudit, authorizer_token, &[]).await
    }

    /// `speedupaudit` of one audit.
    pub async fn speedup_audit(
        &self,
        authorizer_token: &SecretString,
        auditid: i64,
    ) -> Result<(), WeChatError> {
        self.post_ok(
            Api::SpeedUpAudit,
            Auth::Authorizer(authorizer_token),
            &json!({ "auditid": auditid }),
        )
        .await
    }

    /// `queryquota`: the platform's audit quota (any authorizer's token shows it).
    pub async fn query_quota(
        &self,
        authorizer_token: &SecretString,
    ) -> Result<AuditQuota, WeChatError> {
        self.authorizer_get(Api::QueryQuota, authorizer_token, &[])
            .await
    }

    /// `release`: the approved version goes live (the body is the literal `{}`; an empty body
    /// is 44002).
    pub async fn release(&self, authorizer_token: &SecretString) -> Result<(), WeChatError> {
        self.post_ok(Api::Release, Auth::Authorizer(authorizer_token), &json!({}))
            .await
    }

    /// `revertcoderelease`: back to the previous live version, or to `app_version`.
    pub async fn revert_code_release(
        &self,
        authorizer_token: &SecretString,
        app_version: Option<i64>,
    ) -> Result<(), WeChatError> {
        let version = app_version.map(|v| v.to_string());
        let query: Vec<(&str, &str)> = version
            .as_deref()
            .map(|v| ("app_version", v))
            .into_iter()
            .collect();
        self.get_ok(Api::RevertCodeRelease, authorizer_token, &query)
            .await
    }

    /// `revertcoderelease?action=get_history_version`: the versions a rollback can reach (≤ 5).
    pub async fn get_history_versions(
        &self,
        authorizer_token: &SecretString,
    ) -> Result<Vec<HistoryVersion>, WeChatError> {
        let r: VersionList = self
            .authorizer_get(
                Api::RevertCodeRelease,
                authorizer_token,
                &[("action", "get_history_version")],
            )
            .await?;
        Ok(r.version_list)
    }

    /// `grayrelease`: releases to a percentage of users (call again with more to widen).
    pub async fn gray_release(
        &self,
        authorizer_token: &SecretString,
        gray: &GrayRelease,
    ) -> Result<(), WeChatError> {
        self.post_ok(Api::GrayRelease, Auth::Authorizer(authorizer_token), gray)
            .await
    }

    /// `getgrayreleaseplan`.
    pub async fn get_gray_release_plan(
        &self,
        authorizer_token: &SecretString,
    ) -> Result<GrayPlan, WeChatError> {
        let r: GrayPlanAnswer = self
            .authorizer_get(Api::GetGrayReleasePlan, authorizer_token, &[])
            .await?;
        Ok(r.gray_release_plan)
    }

    /// `revertgrayrelease`: cancels the gray release.
    pub async fn revert_gray_release(
        &self,
        authorizer_token: &SecretString,
    ) -> Result<(), WeChatError> {
        self.get_ok(Api::RevertGrayRelease, authorizer_token, &[])
            .await
    }

    /// A GET with the authorizer token.
    async fn authorizer_get<R: serde::de::DeserializeOwned>(
        &self,
        api: Api,
        authorizer_token: &SecretString,
        query: &[(&str, &str)],
    ) -> Result<R, WeChatError> {
        self.call(api, Auth::Authorizer(authorizer_token), query, None)
            .await
    }

    /// A GET with the authorizer token whose answer carries nothing but `errcode: 0`.
    async fn get_ok(
        &self,
        api: Api,
        authorizer_token: &SecretString,
        query: &[(&str, &str)],
    ) -> Result<(), WeChatError> {
        let _: Value = self
            .call(api, Auth::Authorizer(authorizer_token), query, None)
            .await?;
        Ok(())
    }
}

// Added for fleet releases (issue 19, part 3): `wxa/getversioninfo`.

/// The trial (experience) version, as `getversioninfo` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ExpInfo {
    #[serde(default)]
    pub exp_time: i64,
    #[serde(default)]
    pub exp_version: String,
    #[serde(default)]
    pub exp_desc: String,
}

/// The live version, as `getversioninfo` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ReleaseInfo {
    #[serde(default)]
    pub release_time: i64,
    #[serde(default)]
    pub release_version: String,
    #[serde(default)]
    pub release_desc: String,
}

/// `getversioninfo`: either part is absent when the mini program has none.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct VersionInfo {
    #[serde(default)]
    pub exp_info: Option<ExpInfo>,
    #[serde(default)]
    pub release_info: Option<ReleaseInfo>,
}

impl WeChatClient {
    /// `getversioninfo` (POST `{}`): the trial and live versions.
    pub async fn get_version_info(
        &self,
        authorizer_token: &SecretString,
    ) -> Result<VersionInfo, WeChatError> {
        self.post(
            Api::GetVersionInfo,
            Auth::Authorizer(authorizer_token),
            &json!({}),
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audit_status_reads_both_screenshot_spellings_and_string_numbers() {
        let a: AuditStatus = serde_json::from_value(json!({
            "errcode": 0, "auditid": "1234567", "status": 1, "reason": "bad<br>", "ScreenShot": "m1|m2"
        }))
        .unwrap();
        assert_eq!(a.auditid, Some(1_234_567));
        assert_eq!(a.state(), AuditState::Rejected);
        assert_eq!(a.screenshot.as_deref(), Some("m1|m2"));
        let b: AuditStatus =
            serde_json::from_value(json!({ "status": "4", "screenshot": "x" })).unwrap();
        assert_eq!(
            (b.state(), b.screenshot.as_deref()),
            (AuditState::Delayed, Some("x"))
        );
        assert_eq!(AuditState::from_status(9), AuditState::Unknown);
    }

    #[test]
    fn submissions_pass_only_what_was_given() {
        let s = AuditSubmission {
            version_desc: Some(json!("v2")),
            privacy_api_not_use: Some(json!(true)),
            ..AuditSubmission::default()
        };
        assert_eq!(
            serde_json::to_value(&s).unwrap(),
            json!({ "version_desc": "v2", "privacy_api_not_use": true })
        );
    }

    #[test]
    fn a_string_errcode_is_still_an_error() {
        let e =
            parse_json::<Value>(Api::Commit, br#"{"errcode":"85013","errmsg":"x"}"#).unwrap_err();
        assert_eq!(e.kind(), Some(ErrorKind::InvalidExtJson));
        let ok: Value = parse_json(Api::Commit, br#"{"errcode":"0"}"#).unwrap();
        assert_eq!(ok["errcode"], "0");
    }
}
