//! Component and authorizer tokens: the overlap after a refresh, expiry, missing and unknown
//! tokens, tickets and the component credentials.

use super::*;

#[tokio::test]
async fn component_token_overlap_then_40001_and_older_tokens_die_at_once() {
    let sb = Sb::start().await;
    let a = sb.component_token().await;
    let b = sb.component_token().await;
    // Within the overlap both work.
    assert_eq!(
        errcode(&sb.component("api_create_preauthcode", &a, json!({})).await),
        0
    );
    assert_eq!(
        errcode(&sb.component("api_create_preauthcode", &b, json!({})).await),
        0
    );
    sb.advance(301).await;
    let v = sb.component("api_create_preauthcode", &a, json!({})).await;
    assert_eq!(errcode(&v), 40001, "{v}");
    assert_eq!(
        errcode(&sb.component("api_create_preauthcode", &b, json!({})).await),
        0
    );

    // Two refreshes in a row: the oldest is invalid immediately, the middle one overlaps.
    let c = sb.component_token().await;
    let d = sb.component_token().await;
    assert_eq!(
        errcode(&sb.component("api_create_preauthcode", &b, json!({})).await),
        40001
    );
    assert_eq!(
        errcode(&sb.component("api_create_preauthcode", &c, json!({})).await),
        0
    );
    assert_eq!(
        errcode(&sb.component("api_create_preauthcode", &d, json!({})).await),
        0
    );

    // The log names the token kind of each call.
    let calls = calls_of(&sb.handle.calls(), "api_create_preauthcode");
    assert!(calls.iter().all(|c| c.token_kind == "component"));
    assert_eq!(calls.iter().filter(|c| c.errcode == 40001).count(), 2);
}

#[tokio::test]
async fn expired_missing_and_unknown_tokens() {
    let sb = Sb::start().await;
    let ct = sb.component_token().await;
    let (at, _) = sb.authorizer(&ct, OA1, None).await;
    sb.advance(7200).await;
    assert_eq!(
        errcode(&sb.component("api_create_preauthcode", &ct, json!({})).await),
        42001
    );
    let v = sb
        .authorizer_api("open/get", &at, json!({ "appid": OA1 }))
        .await;
    assert_eq!(errcode(&v), 42001, "{v}");
    let v = sb
        .post(
            "/cgi-bin/component/api_create_preauthcode",
            json!({ "component_appid": APPID }),
        )
        .await;
    assert_eq!(errcode(&v), 41001);
    let v = sb
        .component("api_create_preauthcode", "not-a-token", json!({}))
        .await;
    assert_eq!(errcode(&v), 40001);
    let kinds: Vec<String> = calls_of(&sb.handle.calls(), "api_create_preauthcode")
        .into_iter()
        .map(|c| c.token_kind)
        .collect();
    assert!(kinds.ends_with(&["component".into(), "none".into(), "unknown".into()]));
}

#[tokio::test]
async fn ticket_and_credential_rules() {
    let sb = Sb::start().await;
    let v = sb.component_token_with("ticket@@@never-pushed").await;
    assert_eq!(errcode(&v), 61006, "{v}");
    let ticket = sb.ticket().await;
    let wrong_appid = sb
        .post(
            "/cgi-bin/component/api_component_token",
            json!({ "component_appid": "wx0000000000000000", "component_appsecret": APPSECRET, "component_verify_ticket": ticket }),
        )
        .await;
    assert_eq!(errcode(&wrong_appid), 40013);
    let wrong_secret = sb
        .post(
            "/cgi-bin/component/api_component_token",
            json!({ "component_appid": APPID, "component_appsecret": "nope", "component_verify_ticket": ticket }),
        )
        .await;
    assert_eq!(errcode(&wrong_secret), 40125);
    let v = sb.component_token_with(&ticket).await;
    assert_eq!(v["expires_in"], 7200, "{v}");
    sb.advance(43_201).await;
    assert_eq!(errcode(&sb.component_token_with(&ticket).await), 61005);
    let fresh = sb.ticket().await;
    assert_eq!(errcode(&sb.component_token_with(&fresh).await), 0);
}

#[tokio::test]
async fn start_push_ticket_pushes_a_usable_ticket() {
    let (url, log) = component_receiver().await;
    let sb = Sb::start().await;
    sb.handle.set_callbacks(Some(url), None);
    let v = sb
        .post(
            "/cgi-bin/component/api_start_push_ticket",
            json!({ "component_appid": APPID, "component_secret": APPSECRET }),
        )
        .await;
    assert_eq!(v, json!({ "errcode": 0, "errmsg": "ok" }));
    let bad = sb
        .post(
            "/cgi-bin/component/api_start_push_ticket",
            json!({ "component_appid": APPID, "component_secret": "nope" }),
        )
        .await;
    assert_eq!(errcode(&bad), 40125);
    let deadline = Instant::now() + Duration::from_secs(5);
    while log.lock().unwrap().is_empty() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let captured = log.lock().unwrap()[0].clone();
    assert_eq!(field(&captured.body, "AppId").as_deref(), Some(APPID));
    let plain = open_push(&captured);
    assert_eq!(
        field(&plain, "InfoType").as_deref(),
        Some("component_verify_ticket")
    );
    let ticket = field(&plain, "ComponentVerifyTicket").unwrap();
    let v = sb.component_token_with(&ticket).await;
    assert!(v["component_access_token"].is_string(), "{v}");
}
