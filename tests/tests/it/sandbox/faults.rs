//! Faults and limits: the daily quota, injected errcodes, latency and dropped answers.

use super::*;

#[tokio::test]
async fn daily_quota_gives_45009() {
    let sb = Sb::start().await;
    sb.config(json!({ "daily_quota": { "api_create_preauthcode": 2 } }))
        .await;
    let ct = sb.component_token().await;
    for _ in 0..2 {
        assert_eq!(
            errcode(&sb.component("api_create_preauthcode", &ct, json!({})).await),
            0
        );
    }
    assert_eq!(
        errcode(&sb.component("api_create_preauthcode", &ct, json!({})).await),
        45009
    );
    // A new sandbox day resets it.
    sb.advance(86_400).await;
    let ct = sb.component_token().await;
    assert_eq!(
        errcode(&sb.component("api_create_preauthcode", &ct, json!({})).await),
        0
    );
}

#[tokio::test]
async fn fault_errcode_answers_then_clears() {
    let sb = Sb::start().await;
    let ticket = sb.ticket().await;
    sb.post(
        "/sandbox/faults",
        json!({ "api": "api_component_token", "count": 2, "errcode": 61004 }),
    )
    .await;
    for _ in 0..2 {
        let v = sb.component_token_with(&ticket).await;
        assert_eq!(errcode(&v), 61004);
        assert_eq!(
            v["errmsg"],
            "invalid ip 203.0.113.7 ipv6 ::ffff:203.0.113.7, not in whitelist"
        );
    }
    assert!(sb.component_token_with(&ticket).await["component_access_token"].is_string());
    // DELETE clears pending faults.
    sb.post(
        "/sandbox/faults",
        json!({ "api": "api_component_token", "count": 5 }),
    )
    .await;
    let resp = sb
        .http
        .delete(sb.url("/sandbox/faults"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(errcode(&sb.component_token_with(&ticket).await), 0);
    let codes: Vec<i64> = calls_of(&sb.handle.calls(), "api_component_token")
        .iter()
        .map(|c| c.errcode)
        .collect();
    assert_eq!(codes, [61004, 61004, 0, 0]);
}

#[tokio::test]
async fn fault_latency_delays_the_answer() {
    let sb = Sb::start().await;
    let ct = sb.component_token().await;
    sb.post(
        "/sandbox/faults",
        json!({ "api": "api_create_preauthcode", "count": 1, "latency_ms": 800 }),
    )
    .await;
    let started = Instant::now();
    let v = sb.component("api_create_preauthcode", &ct, json!({})).await;
    assert!(started.elapsed() >= Duration::from_millis(800));
    assert!(v["pre_auth_code"].is_string(), "{v}");
    let started = Instant::now();
    sb.component("api_create_preauthcode", &ct, json!({})).await;
    assert!(started.elapsed() < Duration::from_millis(800));
}

#[tokio::test]
async fn fault_drop_times_out_the_client_but_changes_state() {
    let sb = Sb::with(SandboxConfig {
        drop_delay: Duration::from_secs(3),
        ..SandboxConfig::default()
    })
    .await;
    let ct = sb.component_token().await;
    let (at, _) = sb.authorizer(&ct, OA1, None).await;
    sb.post(
        "/sandbox/faults",
        json!({ "api": "open/create", "count": 1, "drop": true }),
    )
    .await;
    let impatient = client(Duration::from_millis(300));
    let err = impatient
        .post(sb.url(&format!("/cgi-bin/open/create?access_token={at}")))
        .json(&json!({ "appid": OA1 }))
        .send()
        .await
        .expect_err("client times out");
    assert!(err.is_timeout(), "{err}");
    // The create happened: the account is bound now.
    let v = sb
        .authorizer_api("open/get", &at, json!({ "appid": OA1 }))
        .await;
    assert!(v["open_appid"].is_string(), "{v}");
    let v = sb
        .authorizer_api("open/create", &at, json!({ "appid": OA1 }))
        .await;
    assert_eq!(errcode(&v), 89000);
}
