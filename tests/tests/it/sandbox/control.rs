//! The control API and WeChat-style errors for bad input.

use super::*;

#[tokio::test]
async fn bad_input_gets_wechat_style_errors() {
    let sb = Sb::start().await;
    let ct = sb.component_token().await;
    let raw = |path: String, body: &'static str| {
        let sb = &sb;
        async move {
            sb.send(
                sb.http
                    .post(sb.url(&path))
                    .header("content-type", "application/json")
                    .body(body),
            )
            .await
        }
    };
    let (s, v) = raw(
        format!("/cgi-bin/component/api_create_preauthcode?component_access_token={ct}"),
        "{not json",
    )
    .await;
    assert_eq!((s, errcode(&v)), (200, 47001));
    let (_, v) = raw("/cgi-bin/component/api_component_token".into(), "[1,2]").await;
    assert_eq!(errcode(&v), 47001);
    let (_, v) = raw(
        "/cgi-bin/component/api_component_token".into(),
        "{\"component_appid\": {\"deep\": [null]}}",
    )
    .await;
    assert_eq!(errcode(&v), 41002);
    let (_, v) = sb
        .send(
            sb.http
                .get(sb.url("/cgi-bin/component/api_component_token")),
        )
        .await;
    assert_eq!(errcode(&v), 43002);
    let (s, v) = sb.send(sb.http.get(sb.url("/cgi-bin/no/such/api"))).await;
    assert_eq!(s, 404);
    assert!(v["errcode"].is_i64());
    let (s, v) = raw("/sandbox/config".into(), "nope").await;
    assert_eq!(s, 400);
    assert!(v["error"].is_string());
    let (s, _) = sb
        .post_status("/sandbox/config", json!({ "no_such_key": 1 }))
        .await;
    assert_eq!(s, 400);
    let (s, _) = sb
        .post_status("/sandbox/faults", json!({ "api": "no/such/api" }))
        .await;
    assert_eq!(s, 400);
    let (s, _) = sb
        .post_status(
            &format!("/sandbox/merchants/{OA1}/authorize"),
            json!({ "link": "::::" }),
        )
        .await;
    assert_eq!(s, 400);
    let (s, _) = sb.send(sb.http.get(sb.url("/sandbox/nothing/here"))).await;
    assert_eq!(s, 404);
    let (s, _) = sb
        .post_status(
            "/sandbox/users/scan",
            json!({ "user": "alice", "ticket": 5 }),
        )
        .await;
    assert_eq!(s, 400);
    // Still serving.
    let state = sb.get("/sandbox/state").await;
    assert!(state["merchants"].as_array().unwrap().len() >= 7);
}

#[tokio::test]
async fn control_api_merchants_and_clock() {
    let sb = Sb::start().await;
    let now = sb.get("/sandbox/clock").await["now"].as_i64().unwrap();
    sb.advance(1000).await;
    let later = sb.get("/sandbox/clock").await["now"].as_i64().unwrap();
    assert!((1000..1005).contains(&(later - now)));
    let m = sb
        .post(
            "/sandbox/merchants",
            json!({
                "appid": "wxnew0000000000001", "kind": "official_account", "subject": "Acme Ltd",
                "nick_name": "New", "user_name": "gh_new000000001", "service_type": 2,
                "verify_type": 0, "func_info": [1, 24],
            }),
        )
        .await;
    assert_eq!(m["user_name"], "gh_new000000001");
    let ct = sb.component_token().await;
    let (at, _) = sb.authorizer(&ct, "wxnew0000000000001", None).await;
    let v = sb
        .authorizer_api("open/create", &at, json!({ "appid": "wxnew0000000000001" }))
        .await;
    assert_eq!(errcode(&v), 0, "{v}");
    let state = sb.get("/sandbox/state").await;
    assert!(
        state["authorized"]
            .as_array()
            .unwrap()
            .contains(&json!("wxnew0000000000001"))
    );
    let cfg = sb.get("/sandbox/config").await;
    assert_eq!(cfg["token_overlap_secs"], 300);
    assert_eq!(cfg["daily_quota"]["per_api"]["api_component_token"], 2000);
}
