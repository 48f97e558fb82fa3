//! Fast registration in the sandbox: the enterprise task, its legal person's three endings
//! pushed to the component callback, and the control routes' refusals.

use super::*;

#[tokio::test]
async fn the_legal_person_confirms_refuses_or_lets_the_day_pass() {
    let sb = Sb::start().await;
    let (url, log) = component_receiver().await;
    sb.config(json!({ "component_callback_url": url })).await;
    let ct = sb.component_token().await;
    let path = format!("/wxa/component/fastregisterenterpriseweapp?access_token={ct}");
    let code = |n: u32| wxopen::registration::with_check_char(&format!("91350100M{n:08}")).unwrap();
    let mut tasks = Vec::new();
    for n in 1..=3 {
        let v = sb
            .post(&path, json!({"name": format!("Co {n}"), "code": code(n), "component_phone": "13800138000", "new_version": true}))
            .await;
        assert_eq!(errcode(&v), 0, "{v}");
        tasks.push(v["taskid"].as_str().unwrap().to_string());
    }
    let confirmed = sb
        .post(
            &format!("/sandbox/fast-registrations/{}/confirm", tasks[0]),
            json!({"authorized_push": "after"}),
        )
        .await;
    let appid = confirmed["appid"].as_str().unwrap();
    sb.post(
        &format!("/sandbox/fast-registrations/{}/refuse", tasks[1]),
        json!({"status": 1001}),
    )
    .await;
    sb.post(
        &format!("/sandbox/fast-registrations/{}/timeout", tasks[2]),
        json!({}),
    )
    .await;
    let pushes: Vec<String> = log
        .lock()
        .unwrap()
        .iter()
        .map(open_push)
        .filter(|p| !p.contains("component_verify_ticket"))
        .collect();
    assert_eq!(
        pushes.len(),
        4,
        "notice + authorized, two failures: {pushes:?}"
    );
    assert_eq!(
        field(&pushes[0], "InfoType").as_deref(),
        Some("notify_third_fasteregister")
    );
    assert_eq!(field(&pushes[0], "status").as_deref(), Some("0"));
    assert_eq!(field(&pushes[0], "appid").as_deref(), Some(appid));
    let auth_code = field(&pushes[0], "auth_code").unwrap();
    assert_eq!(field(&pushes[1], "InfoType").as_deref(), Some("authorized"));
    assert_eq!(
        field(&pushes[1], "AuthorizationCode"),
        Some(auth_code.clone()),
        "the same code"
    );
    assert_eq!(field(&pushes[2], "status").as_deref(), Some("1001"));
    assert_eq!(field(&pushes[2], "appid"), None);
    assert_eq!(field(&pushes[3], "status").as_deref(), Some("100003"));
    assert_eq!(field(&pushes[3], "code"), Some(code(3)));
    // The new mini program is authorized: its code exchanges once.
    let v = sb
        .component(
            "api_query_auth",
            &ct,
            json!({"authorization_code": auth_code}),
        )
        .await;
    assert_eq!(v["authorization_info"]["authorizer_appid"], appid, "{v}");

    // Finished tasks, unknown tasks, bad refusals.
    let (s, _) = sb
        .post_status(
            &format!("/sandbox/fast-registrations/{}/timeout", tasks[0]),
            json!({}),
        )
        .await;
    assert_eq!(s, 409);
    let (s, _) = sb
        .post_status("/sandbox/fast-registrations/nope/confirm", json!({}))
        .await;
    assert_eq!(s, 404);
    let v = sb
        .post(
            &path,
            json!({"name": "Co 9", "code": code(9), "component_phone": "13800138000"}),
        )
        .await;
    let t = v["taskid"].as_str().unwrap();
    let (s, _) = sb
        .post_status(
            &format!("/sandbox/fast-registrations/{t}/refuse"),
            json!({"status": 0}),
        )
        .await;
    assert_eq!(s, 400);
    let (s, _) = sb
        .post_status(
            "/sandbox/fast-registrations/settings",
            json!({"platform_lacks_sets": "yes"}),
        )
        .await;
    assert_eq!(s, 400);
    let (s, _) = sb
        .post_status(
            "/sandbox/fast-registrations/oa/confirm",
            json!({"url": "https://x.example/other"}),
        )
        .await;
    assert_eq!(s, 400);
    // A running task for the same subject; no component token; bad code.
    let v = sb
        .post(
            &path,
            json!({"name": "Co 9", "code": code(9), "component_phone": "13800138000"}),
        )
        .await;
    assert_eq!(errcode(&v), 89249);
    let v = sb
        .post(
            "/wxa/component/fastregisterenterpriseweapp",
            json!({"name": "Co 8", "code": code(8), "component_phone": "1"}),
        )
        .await;
    assert_eq!(errcode(&v), 41001);
    let v = sb
        .post(
            &path,
            json!({"name": "Co 8", "code": "91350100M000000", "component_phone": "1"}),
        )
        .await;
    assert_eq!(errcode(&v), 89255);
}
