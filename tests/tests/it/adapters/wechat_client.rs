//! The WeChat client over real HTTP against the sandbox: every method's happy path, and every
//! mapped errcode reaching the caller as its typed error.

use std::time::Duration;

use crate::common::OA1 as OA;
use reqwest::Method;
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;
use wxopen::wechat::{Api, ErrorKind, WeChatClient, WeChatError};
use wxopen_tests::stack::Stack;
use wxopen_tests::{APPID, APPSECRET};

/// Every method, in the order a provider meets them, on one sandbox.
#[tokio::test]
async fn every_method_works_over_http() {
    let stack = Stack::start().await;
    let w = &stack.wechat;
    let secret: SecretString = APPSECRET.into();
    // A ticket only the sandbox's push carries: take it from the store the push filled.
    stack.push_ticket().await;
    let ticket = wxopen::store::TicketStore::get_ticket(&stack.store)
        .await
        .unwrap()
        .unwrap()
        .ticket;
    let component = w.component_token(APPID, &secret, &ticket).await.unwrap();
    assert_eq!(component.expires_in, 7200);
    let pre = w.create_preauthcode(&component.token, APPID).await.unwrap();
    assert!(
        pre.pre_auth_code
            .expose_secret()
            .starts_with("preauthcode@@@")
            && pre.expires_in > 0
    );

    // A merchant authorizes (redirect only, to nowhere: the code stays unexchanged for us).
    let link = format!(
        "{}/cgi-bin/componentloginpage?component_appid={APPID}&pre_auth_code={}&redirect_uri=http%3A%2F%2F127.0.0.1%3A9%2Fcb&auth_type=3",
        stack.sandbox.base_url(),
        url::form_urlencoded::byte_serialize(pre.pre_auth_code.expose_secret().as_bytes())
            .collect::<String>()
    );
    let (s, auth) = stack
        .control(
            Method::POST,
            &format!("merchants/{OA}/authorize"),
            json!({"link": link, "order": "redirect_only"}),
        )
        .await;
    assert_eq!(s, 200, "{auth}");
    let code: SecretString = auth["auth_code"].as_str().unwrap().to_string().into();
    let info = w.query_auth(&component.token, APPID, &code).await.unwrap();
    assert_eq!(info.authorizer_appid, OA);
    assert_eq!(info.func_info, vec![1, 2, 3, 4, 6, 7, 11, 15, 24]);
    let refreshed = w
        .authorizer_token(&component.token, APPID, OA, &info.authorizer_refresh_token)
        .await
        .unwrap();
    assert_eq!(
        refreshed.authorizer_refresh_token.expose_secret(),
        info.authorizer_refresh_token.expose_secret()
    );
    let profile = w
        .get_authorizer_info(&component.token, APPID, OA)
        .await
        .unwrap();
    assert_eq!(
        (
            profile.authorizer_info.service_type_info.id,
            profile.authorizer_info.is_mini_program()
        ),
        (2, false)
    );
    let list = w
        .get_authorizer_list(&component.token, APPID, 0, 500)
        .await
        .unwrap();
    assert_eq!(
        (list.total_count, list.list[0].authorizer_appid.as_str()),
        (1, OA)
    );
    w.start_push_ticket(APPID, &secret).await.unwrap();

    let at = &refreshed.authorizer_access_token;
    let open_appid = w.open_create(at, OA).await.unwrap();
    assert_eq!(w.open_get(at, OA).await.unwrap(), open_appid);
    w.open_unbind(at, OA, &open_appid).await.unwrap();
    w.open_bind(at, OA, &open_appid).await.unwrap();
    let qr = w.qrcode_create(at, "scene-1", 300).await.unwrap();
    assert!(qr.expire_seconds > 0 && !qr.ticket.is_empty() && qr.url.starts_with("http"));
    let (s, scan) = stack
        .control(
            Method::POST,
            "users/scan",
            json!({"user": "zoe", "ticket": qr.ticket}),
        )
        .await;
    assert_eq!(s, 200, "{scan}");
    let openid = scan["openid"].as_str().unwrap();
    let user = w.user_info(at, openid).await.unwrap();
    assert_eq!(
        (user.subscribe, user.qr_scene_str.as_deref()),
        (1, Some("scene-1"))
    );
    assert!(
        user.unionid.is_some(),
        "bound to an open account: a unionid"
    );
    w.send_custom_text(at, openid, "hello").await.unwrap();
    assert_eq!(
        stack.sandbox.custom_messages().last().unwrap().content,
        "hello"
    );
}

async fn fault(stack: &Stack, api: &str, errcode: i64) {
    let (s, b) = stack
        .control(
            Method::POST,
            "faults",
            json!({"api": api, "errcode": errcode, "count": 1}),
        )
        .await;
    assert_eq!(s, 200, "{b}");
}

/// Each errcode the client maps (the cases below, one per mapped code, plus an unmapped one)
/// becomes its typed error, on the call it was injected into.
#[tokio::test]
async fn every_mapped_errcode_reaches_the_caller_typed() {
    let stack = Stack::start().await;
    let w = &stack.wechat;
    let token: SecretString = "any".into();
    let cases = [
        (-1, ErrorKind::SystemBusy),
        (40001, ErrorKind::TokenStale),
        (40014, ErrorKind::TokenStale),
        (42001, ErrorKind::TokenStale),
        (41001, ErrorKind::TokenMissing),
        (40013, ErrorKind::InvalidAppId),
        (40029, ErrorKind::InvalidCode),
        (40163, ErrorKind::InvalidCode),
        (61009, ErrorKind::InvalidCode),
        (61010, ErrorKind::InvalidCode),
        (45009, ErrorKind::QuotaReached),
        (48001, ErrorKind::NoPermission),
        (61003, ErrorKind::ComponentNotAuthorized),
        (61007, ErrorKind::ComponentNotAuthorized),
        (61004, ErrorKind::IpNotWhitelisted),
        (61005, ErrorKind::TicketInvalid),
        (61006, ErrorKind::TicketInvalid),
        (61023, ErrorKind::RefreshTokenInvalid),
        (89000, ErrorKind::OpenAlreadyBound),
        (89001, ErrorKind::OpenNotSameSubject),
        (89002, ErrorKind::OpenNotBound),
        (89003, ErrorKind::OpenNotCreatedByApi),
        (89004, ErrorKind::OpenLimitReached),
        (89249, ErrorKind::RegistrationRunning),
        (61057, ErrorKind::RegistrationRunning),
        (89253, ErrorKind::RegistrationInvalid),
        (89255, ErrorKind::RegistrationInvalid),
        (89254, ErrorKind::PlatformNotPermitted),
        (61058, ErrorKind::RegisterTicketInvalid),
        (61055, ErrorKind::RegistrationRefused),
        (12345, ErrorKind::Unknown),
    ];
    for (errcode, kind) in cases {
        fault(&stack, "open/get", errcode).await;
        let e = w.open_get(&token, OA).await.unwrap_err();
        assert_eq!(
            (e.errcode(), e.kind()),
            (Some(errcode), Some(kind)),
            "{errcode}"
        );
        assert_eq!(e.is_retryable(), errcode == -1, "{errcode}");
        assert_eq!(
            e.is_token_stale(),
            kind == ErrorKind::TokenStale,
            "{errcode}"
        );
        // No token, URL or errmsg in the error's text.
        assert!(
            !e.to_string().contains("any") && !e.to_string().contains("http"),
            "{e}"
        );
        if errcode == 61004 {
            assert!(
                matches!(e, WeChatError::Api { ip: Some(ip), .. } if ip.to_string() == "203.0.113.7"),
                "{e:?}"
            );
        }
    }
}

#[tokio::test]
async fn timeouts_and_unreachable_hosts_are_typed_and_carry_no_url() {
    let stack = Stack::start().await;
    let slow = WeChatClient::new(&stack.sandbox.base_url(), Duration::from_millis(300)).unwrap();
    let (s, _) = stack
        .control(
            Method::POST,
            "faults",
            json!({"api": "open/get", "latency_ms": 1500, "count": 1}),
        )
        .await;
    assert_eq!(s, 200);
    let e = slow
        .open_get(&"secret-token-value".into(), OA)
        .await
        .unwrap_err();
    assert!(
        matches!(e, WeChatError::Timeout { api: Api::OpenGet }),
        "{e:?}"
    );
    assert!(e.is_retryable());
    let closed = WeChatClient::new("http://127.0.0.1:9", Duration::from_millis(300)).unwrap();
    let e = closed
        .open_get(&"secret-token-value".into(), OA)
        .await
        .unwrap_err();
    assert!(matches!(e, WeChatError::Transport { .. }), "{e:?}");
    let debug = format!("{e:?} {e}");
    assert!(
        !debug.contains("secret-token-value") && !debug.contains("access_token="),
        "{debug}"
    );
}

// ---- fast registration ----

/// A valid unified social credit code, different for each `n`.
fn credit_code(n: u32) -> String {
    wxopen::registration::with_check_char(&format!("91350100M{n:08}")).unwrap()
}

#[tokio::test]
async fn fast_registration_enterprise_api_over_http() {
    use wxopen::wechat::EnterpriseEndpoint;
    let stack = Stack::start().await;
    stack.push_ticket().await;
    let deps = stack.deps();
    let svc = deps.tokens();
    let token = svc.component_token(None).await.unwrap().token;
    let w = &stack.wechat;
    let endpoint = EnterpriseEndpoint::default();
    assert_eq!(endpoint.path, "/wxa/component/fastregisterenterpriseweapp");
    let code = credit_code(1);
    let task = w
        .fast_register_enterprise(&token, &endpoint, "Acme Ltd", &code, "13800138000")
        .await
        .unwrap();
    assert!(
        task.taskid.as_deref().is_some_and(|t| t.len() == 32),
        "{task:?}"
    );
    assert!(
        task.authorize_url
            .as_deref()
            .is_some_and(|u| u.starts_with("https://"))
    );
    assert_eq!(task.status, Some(0));
    let call = stack.sandbox.calls().last().cloned().unwrap();
    assert_eq!(
        (call.api.as_str(), call.token_kind.as_str()),
        ("wxa/component/fastregisterenterpriseweapp", "component")
    );
    // One task per subject at a time.
    let e = w
        .fast_register_enterprise(&token, &endpoint, "Acme Ltd", &code, "13800138000")
        .await
        .unwrap_err();
    assert_eq!(
        (e.errcode(), e.kind()),
        (Some(89249), Some(ErrorKind::RegistrationRunning))
    );
    // WeChat's own refusals: a code it does not accept, a missing parameter.
    let e = w
        .fast_register_enterprise(
            &token,
            &endpoint,
            "Acme Ltd",
            "91350100M0001",
            "13800138000",
        )
        .await
        .unwrap_err();
    assert_eq!(e.errcode(), Some(89255));
    let e = w
        .fast_register_enterprise(&token, &endpoint, "Acme Ltd", &credit_code(2), "")
        .await
        .unwrap_err();
    assert_eq!(
        (e.errcode(), e.kind()),
        (Some(89253), Some(ErrorKind::RegistrationInvalid))
    );
    // The token parameter is configuration: the other name is not where this WeChat looks.
    let other = EnterpriseEndpoint {
        token_param: wxopen::wechat::TokenParam::ComponentAccessToken,
        ..EnterpriseEndpoint::default()
    };
    let e = w
        .fast_register_enterprise(&token, &other, "Acme Ltd", &credit_code(3), "13800138000")
        .await
        .unwrap_err();
    assert_eq!(e.kind(), Some(ErrorKind::TokenMissing));
    // And so is the path.
    let elsewhere = EnterpriseEndpoint {
        path: "/wxa/component/fastregisterweapp_v2".into(),
        ..EnterpriseEndpoint::default()
    };
    let e = w
        .fast_register_enterprise(
            &token,
            &elsewhere,
            "Acme Ltd",
            &credit_code(3),
            "13800138000",
        )
        .await
        .unwrap_err();
    assert!(matches!(e, WeChatError::Http { status: 404, .. }), "{e}");
    // A platform without the sets.
    let (s, b) = stack
        .control(
            Method::POST,
            "fast-registrations/settings",
            json!({"platform_lacks_sets": true}),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    let e = w
        .fast_register_enterprise(
            &token,
            &endpoint,
            "Acme Ltd",
            &credit_code(4),
            "13800138000",
        )
        .await
        .unwrap_err();
    assert_eq!(
        (e.errcode(), e.kind()),
        (Some(89254), Some(ErrorKind::PlatformNotPermitted))
    );
}

#[tokio::test]
async fn fast_registration_official_account_api_over_http() {
    let stack = Stack::start().await;
    stack.push_ticket().await;
    let (s, b) = stack
        .control(
            Method::POST,
            "merchants",
            json!({"appid": OA, "func_info": [1, 2, 3, 4, 6, 7, 11, 15, 24, 27]}),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    stack.authorize(OA, "push_only").await;
    let url = wxopen::registration::fastregisterauth_url(
        &stack.sandbox.base_url(),
        OA,
        APPID,
        "http://127.0.0.1:9/back",
    )
    .unwrap();
    let (s, confirmed) = stack
        .control(
            Method::POST,
            "fast-registrations/oa/confirm",
            json!({"url": url}),
        )
        .await;
    assert_eq!(s, 200, "{confirmed}");
    let ticket: SecretString = confirmed["ticket"].as_str().unwrap().to_string().into();
    let deps = stack.deps();
    let svc = deps.tokens();
    let registered = svc
        .with_authorizer_token(OA, |t| {
            let ticket = ticket.clone();
            let w = stack.wechat.clone();
            async move { w.account_fast_register(&t, &ticket).await }
        })
        .await
        .unwrap();
    assert!(registered.appid.starts_with("wx") && registered.appid.len() == 18);
    assert!(
        registered
            .authorization_code
            .expose_secret()
            .starts_with("queryauthcode@@@")
    );
    assert!(registered.wx_verify_copied() && registered.linked());
    assert!(
        !format!("{registered:?}").contains("queryauthcode"),
        "Debug is redacted"
    );
    let call = stack.sandbox.calls().last().cloned().unwrap();
    assert_eq!(
        (
            call.api.as_str(),
            call.token_kind.as_str(),
            call.authorizer_appid.as_deref()
        ),
        ("account/fastregister", "authorizer", Some(OA))
    );
    // A ticket works once.
    let e = svc
        .with_authorizer_token(OA, |t| {
            let ticket = ticket.clone();
            let w = stack.wechat.clone();
            async move { w.account_fast_register(&t, &ticket).await }
        })
        .await
        .unwrap_err();
    assert!(
        matches!(&e, wxopen::tokens::TokenError::WeChat(w) if w.kind() == Some(ErrorKind::RegisterTicketInvalid)),
        "{e}"
    );
}
