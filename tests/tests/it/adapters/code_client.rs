//! The mini program code client (`wechat/code.rs`) over real HTTP against the sandbox, no AWS:
//! every method's typed answer, the template library's configurable token parameter both ways,
//! the QR image as bytes (and its JSON error as a typed error), and each errcode the code
//! feature branches on reaching the caller typed.

use std::time::Duration;

use secrecy::SecretString;
use serde_json::{Map, Value, json};
use wxopen::wechat::{
    Api, AuditState, AuditSubmission, Commit, ErrorKind, GrayRelease, TokenParam, WeChatClient,
};
use wxopen_tests::sandbox::{self, SandboxConfig, SandboxHandle};
use wxopen_tests::{APPID, APPSECRET};

struct Setup {
    sb: SandboxHandle,
    http: reqwest::Client,
    w: WeChatClient,
    component: SecretString,
}

impl Setup {
    async fn start() -> Self {
        let sb = sandbox::start(SandboxConfig {
            audit_delay_secs: 60,
            ..SandboxConfig::default()
        })
        .await
        .unwrap();
        let http = reqwest::Client::builder().no_proxy().build().unwrap();
        let w = WeChatClient::new(&sb.base_url(), Duration::from_secs(5)).unwrap();
        let mut s = Self {
            sb,
            http,
            w,
            component: SecretString::from(""),
        };
        // No callback: the ticket push fails, but the control call names the ticket.
        let t = s.control("push/ticket", json!({})).await;
        let ticket: SecretString = t["ticket"].as_str().unwrap().to_string().into();
        s.component =
            s.w.component_token(APPID, &APPSECRET.into(), &ticket)
                .await
                .unwrap()
                .token;
        s
    }

    async fn control(&self, path: &str, body: Value) -> Value {
        let resp = self
            .http
            .post(format!("{}/sandbox/{path}", self.sb.base_url()))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert!(resp.status().is_success(), "{path}");
        resp.json().await.unwrap()
    }

    /// `count` authorized mini programs: (appid, authorizer token).
    async fn mini_programs(&self, start: i64, count: i64) -> Vec<(String, SecretString)> {
        let list = self
            .control(
                "merchants/bulk",
                json!({ "count": count, "start": start, "kind": "mini_program" }),
            )
            .await;
        let mut out = Vec::new();
        for m in list.as_array().unwrap() {
            let appid = m["appid"].as_str().unwrap().to_string();
            let refresh: SecretString = m["refresh_token"].as_str().unwrap().to_string().into();
            let t = self
                .w
                .authorizer_token(&self.component, APPID, &appid, &refresh)
                .await
                .unwrap();
            out.push((appid, t.authorizer_access_token));
        }
        out
    }
}

fn ext_json() -> Map<String, Value> {
    json!({ "extEnable": true, "extAppid": "wxb000000000000001", "ext": { "shop": "s-1" } })
        .as_object()
        .unwrap()
        .clone()
}

#[tokio::test]
async fn every_code_method_works_over_http() {
    let s = Setup::start().await;
    let w = &s.w;
    let ct = &s.component;
    let drafts = w.get_template_draft_list(ct).await.unwrap();
    assert_eq!(drafts.len(), 2);
    assert_eq!(drafts[0].source_miniprogram_appid, sandbox::DEV_APPID);
    w.add_to_template(ct, drafts[1].draft_id, 0).await.unwrap();
    w.add_to_template(ct, drafts[0].draft_id, 1).await.unwrap();
    let all = w.get_template_list(ct, None).await.unwrap();
    assert_eq!(all.len(), 2);
    let standard = w.get_template_list(ct, Some(1)).await.unwrap();
    assert_eq!(
        (standard.len(), standard[0].draft_id),
        (1, Some(drafts[0].draft_id))
    );
    w.delete_template(ct, standard[0].template_id)
        .await
        .unwrap();
    let e = w
        .delete_template(ct, standard[0].template_id)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), Some(ErrorKind::TemplateNotFound));
    let template = w.get_template_list(ct, Some(0)).await.unwrap()[0].template_id;

    let mps = s.mini_programs(1, 1).await;
    let (appid, at) = &mps[0];
    // The QR code before any commit: WeChat's JSON error, typed, never an image.
    let e = w
        .get_qrcode(at, Some("pages/index/index?a=1"))
        .await
        .unwrap_err();
    assert_eq!(
        (e.kind(), e.errcode()),
        (Some(ErrorKind::NothingCommitted), Some(86001))
    );
    let ext = ext_json();
    w.commit(
        at,
        Commit {
            template_id: template,
            ext_json: &ext,
            user_version: "1.1.0",
            user_desc: "first",
        },
    )
    .await
    .unwrap();
    // ext_json went as a string holding the object.
    let (_, m) = get(&s, &format!("/sandbox/merchants/{appid}")).await;
    assert_eq!(
        m["committed"]["ext_json"],
        Value::Object(ext.clone()),
        "{m}"
    );
    let qr = w
        .get_qrcode(at, Some("pages/index/index?a=1"))
        .await
        .unwrap();
    assert_eq!(qr.content_type, "image/jpeg");
    assert_eq!(qr.bytes[..2], [0xFF, 0xD8]);
    assert!(format!("{qr:?}").contains("len"), "Debug shows no bytes");
    let categories = w.get_category(at).await.unwrap();
    assert!(!categories.is_empty() && categories[0].first_id > 0);
    let pages = w.get_page(at).await.unwrap();
    assert_eq!(pages, ["pages/index/index", "pages/about/about"]);

    let quota = w.query_quota(at).await.unwrap();
    assert_eq!((quota.rest, quota.limit), (100, 100));
    let submission = AuditSubmission {
        version_desc: Some(json!("first")),
        item_list: Some(
            json!([{ "address": "pages/index/index", "tag": "shop", "first_id": 287, "second_id": 616, "first_class": "工具", "second_class": "效率", "title": "Home" }]),
        ),
        ..AuditSubmission::default()
    };
    let auditid = w.submit_audit(at, &submission).await.unwrap();
    let st = w.get_auditstatus(at, auditid).await.unwrap();
    assert_eq!(st.state(), AuditState::Auditing);
    let e = w.submit_audit(at, &submission).await.unwrap_err();
    assert_eq!(e.kind(), Some(ErrorKind::AuditInProgress));
    w.speedup_audit(at, auditid).await.unwrap();
    w.undo_code_audit(at).await.unwrap();
    assert_eq!(
        w.get_auditstatus(at, auditid).await.unwrap().state(),
        AuditState::Withdrawn
    );
    let auditid = w.submit_audit(at, &submission).await.unwrap();
    assert_eq!(w.query_quota(at).await.unwrap().rest, 98);
    let e = w.release(at).await.unwrap_err();
    assert_eq!(e.kind(), Some(ErrorKind::NoApprovedVersion));
    s.sb.run_audits(true).await;
    let latest = w.get_latest_auditstatus(at).await.unwrap();
    assert_eq!(
        (
            latest.auditid,
            latest.state(),
            latest.user_version.as_deref()
        ),
        (Some(auditid), AuditState::Approved, Some("1.1.0"))
    );
    w.release(at).await.unwrap();
    let e = w.release(at).await.unwrap_err();
    assert_eq!(e.kind(), Some(ErrorKind::AlreadyReleased));
    assert!(w.get_history_versions(at).await.unwrap().is_empty());

    // A second version, gray first, then released; the first is in the history.
    w.commit(
        at,
        Commit {
            template_id: template,
            ext_json: &ext,
            user_version: "1.2.0",
            user_desc: "second",
        },
    )
    .await
    .unwrap();
    w.submit_audit(at, &AuditSubmission::default())
        .await
        .unwrap();
    s.sb.run_audits(true).await;
    w.gray_release(
        at,
        &GrayRelease {
            gray_percentage: 20,
            ..GrayRelease::default()
        },
    )
    .await
    .unwrap();
    let plan = w.get_gray_release_plan(at).await.unwrap();
    assert_eq!((plan.status, plan.gray_percentage), (1, 20));
    w.revert_gray_release(at).await.unwrap();
    assert_eq!(w.get_gray_release_plan(at).await.unwrap().status, 4);
    w.release(at).await.unwrap();
    let history = w.get_history_versions(at).await.unwrap();
    assert_eq!(history.len(), 1);
    assert_eq!(history[0].user_version, "1.1.0");
    w.revert_code_release(at, Some(history[0].app_version))
        .await
        .unwrap();
    let e = w.revert_code_release(at, Some(999)).await.unwrap_err();
    assert_eq!(e.errcode(), Some(87012));

    // The calls carried the tokens where WeChat wants them.
    let calls = s.sb.calls();
    for c in &calls {
        let want = if c.api.starts_with("wxa/gettemplate")
            || c.api == "wxa/addtotemplate"
            || c.api == "wxa/deletetemplate"
        {
            "component"
        } else if c.api.starts_with("wxa/") {
            "authorizer"
        } else {
            continue;
        };
        assert_eq!(c.token_kind, want, "{c:?}");
    }
    assert_eq!(s.sb.call_count(appid, "wxa/commit").ok, 2);
}

async fn get(s: &Setup, path: &str) -> (u16, Value) {
    let resp = s
        .http
        .get(format!("{}{path}", s.sb.base_url()))
        .send()
        .await
        .unwrap();
    (resp.status().as_u16(), resp.json().await.unwrap())
}

#[tokio::test]
async fn the_template_token_parameter_goes_where_it_is_configured() {
    let s = Setup::start().await;
    // WeChat's docs: `access_token` (the default); the sandbox wants it there.
    assert_eq!(s.w.template_token_param(), TokenParam::AccessToken);
    s.w.get_template_list(&s.component, None).await.unwrap();
    let other =
        s.w.clone()
            .with_template_token_param(TokenParam::ComponentAccessToken);
    let e = other
        .get_template_list(&s.component, None)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), Some(ErrorKind::TokenMissing));
    // A WeChat that wants `component_access_token`: only the other setting works.
    s.control(
        "config",
        json!({ "template_token_param": "component_access_token" }),
    )
    .await;
    other.get_template_draft_list(&s.component).await.unwrap();
    let e = s.w.get_template_draft_list(&s.component).await.unwrap_err();
    assert_eq!(e.kind(), Some(ErrorKind::TokenMissing));
}

/// The errcodes the code feature branches on reach the caller as their kinds.
#[tokio::test]
async fn code_errcodes_reach_the_caller_typed() {
    let s = Setup::start().await;
    let token: SecretString = "any".into();
    let ext = ext_json();
    let commit = Commit {
        template_id: 1,
        ext_json: &ext,
        user_version: "1",
        user_desc: "",
    };
    for (errcode, kind) in [
        (85009, ErrorKind::AuditInProgress),
        (85013, ErrorKind::InvalidExtJson),
        (85048, ErrorKind::InvalidExtJson),
        (85014, ErrorKind::TemplateNotFound),
        (85064, ErrorKind::TemplateNotFound),
        (85085, ErrorKind::AuditQuotaUsed),
        (85086, ErrorKind::NothingCommitted),
        (85019, ErrorKind::NoApprovedVersion),
        (85052, ErrorKind::AlreadyReleased),
        (86000, ErrorKind::ComponentNotAuthorized),
        (61007, ErrorKind::ComponentNotAuthorized),
        (61039, ErrorKind::PrivacyScanRunning),
        (45009, ErrorKind::QuotaReached),
        (-1, ErrorKind::SystemBusy),
        (85006, ErrorKind::Unknown),
    ] {
        s.control(
            "faults",
            json!({ "api": "wxa/commit", "errcode": errcode, "count": 1 }),
        )
        .await;
        let e = s.w.commit(&token, commit).await.unwrap_err();
        assert_eq!(
            (e.errcode(), e.kind()),
            (Some(errcode), Some(kind)),
            "{errcode}"
        );
        assert_eq!(e.is_retryable(), errcode == -1, "{errcode}");
        assert!(matches!(
            e,
            wxopen::wechat::WeChatError::Api {
                api: Api::Commit,
                ..
            }
        ));
    }
    // The binary API: an error is JSON, typed.
    s.control(
        "faults",
        json!({ "api": "wxa/get_qrcode", "errcode": 45009, "count": 1 }),
    )
    .await;
    let e = s.w.get_qrcode(&token, None).await.unwrap_err();
    assert_eq!(e.kind(), Some(ErrorKind::QuotaReached));
}
