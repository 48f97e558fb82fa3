//! Merchant authorization: pre-auth codes, links, the push and the redirect, authorization
//! codes, cancel, the authorizer list and info, permission sets.

use super::*;

#[tokio::test]
async fn pre_auth_code_is_single_use_and_expires() {
    let sb = Sb::start().await;
    let ct = sb.component_token().await;
    let pre = sb.preauthcode(&ct).await;
    let body =
        json!({ "link": sb.link(&pre, 3, "https://wxopen.example/cb"), "order": "push_only" });
    let v = sb
        .post(&format!("/sandbox/merchants/{OA1}/authorize"), body.clone())
        .await;
    assert!(v["auth_code"].is_string());
    let (status, v) = sb
        .post_status(&format!("/sandbox/merchants/{OA2}/authorize"), body)
        .await;
    assert_eq!(
        (status, v["error"].as_str()),
        (400, Some("pre_auth_code already used"))
    );

    let pre = sb.preauthcode(&ct).await;
    sb.advance(601).await;
    let ct = sb.component_token().await;
    let (status, v) = sb
        .post_status(
            &format!("/sandbox/merchants/{OA2}/authorize"),
            json!({ "link": sb.link(&pre, 3, "https://wxopen.example/cb"), "order": "push_only" }),
        )
        .await;
    assert_eq!(
        (status, v["error"].as_str()),
        (400, Some("pre_auth_code expired"))
    );
    let state = sb.get(&format!("/sandbox/merchants/{OA2}")).await;
    assert!(state["authorization"].is_null(), "nothing changed: {state}");
    let _ = ct;
}

#[tokio::test]
async fn authorization_link_rules() {
    let sb = Sb::start().await;
    let ct = sb.component_token().await;
    let pre = sb.preauthcode(&ct).await;
    let try_link = |appid: &'static str, link: String| {
        let sb = &sb;
        async move {
            sb.post_status(
                &format!("/sandbox/merchants/{appid}/authorize"),
                json!({ "link": link, "order": "push_only" }),
            )
            .await
        }
    };
    let (s, v) = try_link(MP1, sb.link(&pre, 1, "https://x.example/")).await;
    assert_eq!(
        (s, v["error"].as_str()),
        (400, Some("auth_type 1 excludes this merchant"))
    );
    let (s, _) = try_link(OA1, sb.link(&pre, 2, "https://x.example/")).await;
    assert_eq!(s, 400);
    let wrong_component = sb
        .link(&pre, 3, "https://x.example/")
        .replace(APPID, "wx0000000000000000");
    let (s, v) = try_link(OA1, wrong_component).await;
    assert_eq!(s, 400, "{v}");
    let (s, _) = try_link(
        OA1,
        format!("{}&biz_appid={OA2}", sb.link(&pre, 3, "https://x.example/")),
    )
    .await;
    assert_eq!(s, 400);
    let (s, _) = try_link(
        OA1,
        sb.link("preauthcode@@@unknown", 3, "https://x.example/"),
    )
    .await;
    assert_eq!(s, 400);
    // Nothing was consumed: the mobile link with biz_appid for the right merchant works.
    let mobile = format!(
        "{}/wxaopen/safe/bindcomponent?action=bindcomponent&no_scan=1&component_appid={APPID}&pre_auth_code={}&redirect_uri=https%3A%2F%2Fx.example%2F&auth_type=3&biz_appid={MP1}#wechat_redirect",
        sb.handle.base_url(),
        url::form_urlencoded::byte_serialize(pre.as_bytes()).collect::<String>()
    );
    let (s, v) = try_link(MP1, mobile).await;
    assert_eq!(s, 200, "{v}");
    // The informational pages answer.
    let page = sb
        .http
        .get(sb.link(&pre, 3, "https://x.example/"))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("already used"));
}

#[tokio::test]
async fn authorization_push_and_redirect_then_reauthorization() {
    let (cb, pushes) = component_receiver().await;
    let redirects: Log = Arc::default();
    let r = redirects.clone();
    let redirect_base = receiver(move |c| {
        let r = r.clone();
        async move {
            r.lock().unwrap().push(c);
            (200, "welcome".to_string())
        }
    })
    .await;
    let sb = Sb::start().await;
    sb.handle.set_callbacks(Some(cb), None);
    let ct = sb.component_token().await;
    let pre = sb.preauthcode(&ct).await;
    let v = sb
        .post(
            &format!("/sandbox/merchants/{OA1}/authorize"),
            json!({ "link": sb.link(&pre, 1, &format!("{redirect_base}/done?x=1")), "order": "concurrent" }),
        )
        .await;
    let code = v["auth_code"].as_str().unwrap().to_string();
    assert_eq!(v["push"]["delivered"], true, "{v}");
    assert_eq!(v["redirect"]["status"], 200, "{v}");
    assert_eq!(v["redirect"]["body"], "welcome");
    let hit = redirects.lock().unwrap()[0].clone();
    assert_eq!(hit.path, "/done");
    assert_eq!(hit.query["x"], "1");
    assert_eq!(hit.query["auth_code"], code);
    assert_eq!(hit.query["expires_in"], "3600");
    let push = pushes
        .lock()
        .unwrap()
        .iter()
        .map(open_push)
        .find(|p| p.contains("<InfoType><![CDATA[authorized]]>"))
        .expect("authorized push");
    assert_eq!(field(&push, "AuthorizationCode"), Some(code.clone()));
    assert_eq!(field(&push, "AuthorizerAppid").as_deref(), Some(OA1));
    assert_eq!(field(&push, "PreAuthCode"), Some(pre));

    let q = sb
        .component("api_query_auth", &ct, json!({ "authorization_code": code }))
        .await;
    let refresh1 = q["authorization_info"]["authorizer_refresh_token"]
        .as_str()
        .unwrap()
        .to_string();
    let ids: Vec<i64> = q["authorization_info"]["func_info"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["funcscope_category"]["id"].as_i64().unwrap())
        .collect();
    assert!(ids.contains(&24));

    // Re-authorization: updateauthorized, and a new refresh token replaces the old one.
    let code2 = sb.authorize(&ct, OA1, Some(json!([1, 2]))).await;
    let q2 = sb
        .component(
            "api_query_auth",
            &ct,
            json!({ "authorization_code": code2 }),
        )
        .await;
    let refresh2 = q2["authorization_info"]["authorizer_refresh_token"]
        .as_str()
        .unwrap()
        .to_string();
    assert_ne!(refresh1, refresh2);
    assert_eq!(errcode(&sb.refresh(&ct, OA1, &refresh1).await), 61023);
    let v = sb.refresh(&ct, OA1, &refresh2).await;
    assert_eq!(v["authorizer_refresh_token"], refresh2.as_str(), "{v}");
    let kinds: Vec<String> = pushes
        .lock()
        .unwrap()
        .iter()
        .map(|c| field(&open_push(c), "InfoType").unwrap())
        .collect();
    assert!(kinds.contains(&"updateauthorized".to_string()), "{kinds:?}");
}

#[tokio::test]
async fn auth_code_single_use_unknown_and_expired() {
    let sb = Sb::start().await;
    let ct = sb.component_token().await;
    let code = sb.authorize(&ct, OA1, None).await;
    let v = sb
        .component("api_query_auth", &ct, json!({ "authorization_code": code }))
        .await;
    assert_eq!(errcode(&v), 0, "{v}");
    let v = sb
        .component("api_query_auth", &ct, json!({ "authorization_code": code }))
        .await;
    assert_eq!(errcode(&v), 40163);
    let v = sb
        .component(
            "api_query_auth",
            &ct,
            json!({ "authorization_code": "queryauthcode@@@nope" }),
        )
        .await;
    assert_eq!(errcode(&v), 40029);
    let code = sb.authorize(&ct, OA2, None).await;
    sb.advance(3601).await;
    let ct = sb.component_token().await;
    let v = sb
        .component("api_query_auth", &ct, json!({ "authorization_code": code }))
        .await;
    assert_eq!(errcode(&v), 61010);
}

#[tokio::test]
async fn cancel_invalidates_refresh_and_access_tokens() {
    let (cb, pushes) = component_receiver().await;
    let sb = Sb::start().await;
    sb.handle.set_callbacks(Some(cb), None);
    let ct = sb.component_token().await;
    let (at, refresh) = sb.authorizer(&ct, OA1, None).await;
    assert_eq!(errcode(&sb.refresh(&ct, OA1, &refresh).await), 0);
    let v = sb
        .post(&format!("/sandbox/merchants/{OA1}/cancel"), json!({}))
        .await;
    assert_eq!(v["push"]["delivered"], true, "{v}");
    assert_eq!(errcode(&sb.refresh(&ct, OA1, &refresh).await), 61023);
    let v = sb
        .authorizer_api("open/get", &at, json!({ "appid": OA1 }))
        .await;
    assert_eq!(errcode(&v), 40001);
    let v = sb
        .component(
            "api_get_authorizer_info",
            &ct,
            json!({ "authorizer_appid": OA1 }),
        )
        .await;
    assert_eq!(errcode(&v), 61003);
    let last = pushes.lock().unwrap().last().cloned().unwrap();
    let plain = open_push(&last);
    assert_eq!(field(&plain, "InfoType").as_deref(), Some("unauthorized"));
    assert_eq!(field(&plain, "AuthorizerAppid").as_deref(), Some(OA1));
    let (status, _) = sb
        .post_status(&format!("/sandbox/merchants/{OA1}/cancel"), json!({}))
        .await;
    assert_eq!(status, 409);
}

#[tokio::test]
async fn authorizer_list_and_info() {
    let sb = Sb::start().await;
    let ct = sb.component_token().await;
    sb.authorize(&ct, OA2, None).await;
    sb.authorize(&ct, MP1, None).await;
    sb.authorize(&ct, OA1, None).await;
    let v = sb
        .component(
            "api_get_authorizer_list",
            &ct,
            json!({ "offset": 0, "count": 2 }),
        )
        .await;
    assert_eq!(v["total_count"], 3);
    let list: Vec<&str> = v["list"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["authorizer_appid"].as_str().unwrap())
        .collect();
    assert_eq!(list, [OA2, MP1]);
    let v = sb
        .component(
            "api_get_authorizer_list",
            &ct,
            json!({ "offset": 2, "count": 2 }),
        )
        .await;
    assert_eq!(v["list"][0]["authorizer_appid"], OA1);
    assert!(v["list"][0]["refresh_token"].is_string());
    let v = sb
        .component(
            "api_get_authorizer_list",
            &ct,
            json!({ "offset": 0, "count": 501 }),
        )
        .await;
    assert_eq!(errcode(&v), 47001);

    let mp = sb
        .component(
            "api_get_authorizer_info",
            &ct,
            json!({ "authorizer_appid": MP1 }),
        )
        .await;
    assert!(mp["authorizer_info"]["MiniProgramInfo"].is_object(), "{mp}");
    let oa = sb
        .component(
            "api_get_authorizer_info",
            &ct,
            json!({ "authorizer_appid": OA1 }),
        )
        .await;
    assert!(oa["authorizer_info"].get("MiniProgramInfo").is_none());
    assert_eq!(oa["authorizer_info"]["user_name"], "gh_oa000000000001");
    assert_eq!(oa["authorizer_info"]["service_type_info"]["id"], 2);
    assert_eq!(oa["authorizer_info"]["principal_name"], "Acme Ltd");
    assert_eq!(oa["authorization_info"]["authorizer_appid"], OA1);
    let v = sb
        .component(
            "api_get_authorizer_info",
            &ct,
            json!({ "authorizer_appid": OA3 }),
        )
        .await;
    assert_eq!(errcode(&v), 61003);
}

#[tokio::test]
async fn permission_sets_and_token_kinds() {
    let sb = Sb::start().await;
    let ct = sb.component_token().await;
    // Without permission set 24 the official account cannot manage open accounts.
    let (at, _) = sb.authorizer(&ct, OA1, Some(json!([1, 2, 3]))).await;
    let v = sb
        .authorizer_api("open/create", &at, json!({ "appid": OA1 }))
        .await;
    assert_eq!(errcode(&v), 48001);
    // A mini program needs 25, not 24.
    let (atm, _) = sb.authorizer(&ct, MP1, Some(json!([17, 24]))).await;
    let v = sb
        .authorizer_api("open/create", &atm, json!({ "appid": MP1 }))
        .await;
    assert_eq!(errcode(&v), 48001);
    // Parametric QR codes need a verified service account.
    let (at4, _) = sb.authorizer(&ct, OA4, None).await;
    assert_eq!(errcode(&sb.qrcode(&at4, "login-1").await), 48001);
    assert_eq!(errcode(&sb.qrcode(&at, "login-1").await), 0);
    assert_eq!(errcode(&sb.qrcode(&at, &"x".repeat(65)).await), 47001);
    assert_eq!(errcode(&sb.qrcode(&at, "").await), 47001);
    // The component token on an authorizer API, and the reverse: 40001, logged with its kind.
    let v = sb
        .authorizer_api("open/get", &ct, json!({ "appid": OA1 }))
        .await;
    assert_eq!(errcode(&v), 40001);
    let v = sb.component("api_create_preauthcode", &at, json!({})).await;
    assert_eq!(errcode(&v), 40001);
    let calls = sb.handle.calls();
    let get = calls_of(&calls, "open/get");
    assert_eq!(get.last().unwrap().token_kind, "component");
    let pre = calls_of(&calls, "api_create_preauthcode");
    let last = pre.last().unwrap();
    assert_eq!(
        (
            last.token_kind.as_str(),
            last.authorizer_appid.as_deref(),
            last.errcode
        ),
        ("authorizer", Some(OA1), 40001)
    );
}
