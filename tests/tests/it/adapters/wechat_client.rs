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
