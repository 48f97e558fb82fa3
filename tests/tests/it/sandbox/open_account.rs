//! Open accounts: create, bind, unbind, get with WeChat's errcodes, and the unionid they give.

use super::*;

#[tokio::test]
async fn open_account_rules() {
    let sb = Sb::start().await;
    let ct = sb.component_token().await;
    let (at1, _) = sb.authorizer(&ct, OA1, None).await;
    let (at2, _) = sb.authorizer(&ct, OA2, None).await;
    let (at3, _) = sb.authorizer(&ct, OA3, None).await;
    let (atm, _) = sb.authorizer(&ct, MP1, None).await;

    // 89002: not bound yet.
    let v = sb
        .authorizer_api("open/get", &at1, json!({ "appid": OA1 }))
        .await;
    assert_eq!(errcode(&v), 89002);
    // 40013: the body appid must be the token's account.
    let v = sb
        .authorizer_api("open/create", &at1, json!({ "appid": OA2 }))
        .await;
    assert_eq!(errcode(&v), 40013);

    let v = sb
        .authorizer_api("open/create", &at1, json!({ "appid": OA1 }))
        .await;
    let open = v["open_appid"].as_str().expect("open_appid").to_string();
    assert_eq!(errcode(&v), 0);
    let v = sb
        .authorizer_api("open/get", &at1, json!({ "appid": OA1 }))
        .await;
    assert_eq!(v["open_appid"], open.as_str());
    // 89000: already bound (create again, or bind anything).
    let v = sb
        .authorizer_api("open/create", &at1, json!({ "appid": OA1 }))
        .await;
    assert_eq!(errcode(&v), 89000);
    let v = sb
        .authorizer_api(
            "open/bind",
            &at1,
            json!({ "appid": OA1, "open_appid": open }),
        )
        .await;
    assert_eq!(errcode(&v), 89000);
    // 89001: another subject.
    let v = sb
        .authorizer_api(
            "open/bind",
            &at3,
            json!({ "appid": OA3, "open_appid": open }),
        )
        .await;
    assert_eq!(errcode(&v), 89001);
    // 40013: unknown open account.
    let v = sb
        .authorizer_api(
            "open/bind",
            &at2,
            json!({ "appid": OA2, "open_appid": "wx00000000000000ff" }),
        )
        .await;
    assert_eq!(errcode(&v), 40013);
    // 89004: the bind limit (lowered to 2).
    sb.config(json!({ "open_account_bind_limit": 2 })).await;
    let v = sb
        .authorizer_api(
            "open/bind",
            &at2,
            json!({ "appid": OA2, "open_appid": open }),
        )
        .await;
    assert_eq!(errcode(&v), 0, "{v}");
    let v = sb
        .authorizer_api(
            "open/bind",
            &atm,
            json!({ "appid": MP1, "open_appid": open }),
        )
        .await;
    assert_eq!(errcode(&v), 89004);
    let bound = sb.get(&format!("/sandbox/open-accounts/{open}")).await;
    assert_eq!(bound["bound"], json!([OA1, OA2]));
    // 89002 on unbind from an account not bound to it.
    let v = sb
        .authorizer_api(
            "open/unbind",
            &atm,
            json!({ "appid": MP1, "open_appid": open }),
        )
        .await;
    assert_eq!(errcode(&v), 89002);
    let v = sb
        .authorizer_api(
            "open/unbind",
            &at2,
            json!({ "appid": OA2, "open_appid": open }),
        )
        .await;
    assert_eq!(errcode(&v), 0);

    // 89003: an open account registered on the website (not through the API).
    let web = sb
        .post(
            "/sandbox/open-accounts",
            json!({ "subject": "Other Co", "created_by_api": false }),
        )
        .await["open_appid"]
        .as_str()
        .unwrap()
        .to_string();
    let v = sb
        .authorizer_api(
            "open/bind",
            &at3,
            json!({ "appid": OA3, "open_appid": web }),
        )
        .await;
    assert_eq!(errcode(&v), 89003);
    let web2 = sb
        .post(
            "/sandbox/open-accounts",
            json!({ "subject": "Acme Ltd", "bind": [MP1] }),
        )
        .await["open_appid"]
        .as_str()
        .unwrap()
        .to_string();
    let v = sb
        .authorizer_api(
            "open/unbind",
            &atm,
            json!({ "appid": MP1, "open_appid": web2 }),
        )
        .await;
    assert_eq!(errcode(&v), 89003);
    let v = sb
        .authorizer_api("open/get", &atm, json!({ "appid": MP1 }))
        .await;
    assert_eq!(v["open_appid"], web2.as_str());
}

#[tokio::test]
async fn unionid_is_shared_across_bound_accounts_and_absent_when_unbound() {
    let (base, _log) = message_receiver().await;
    let sb = Sb::start().await;
    sb.handle.set_callbacks(None, Some(base));
    let ct = sb.component_token().await;
    let (at1, _) = sb.authorizer(&ct, OA1, None).await;
    let (at2, _) = sb.authorizer(&ct, OA2, None).await;
    let open = sb
        .authorizer_api("open/create", &at1, json!({ "appid": OA1 }))
        .await["open_appid"]
        .as_str()
        .unwrap()
        .to_string();
    let v = sb
        .authorizer_api(
            "open/bind",
            &at2,
            json!({ "appid": OA2, "open_appid": open }),
        )
        .await;
    assert_eq!(errcode(&v), 0);

    let mut ids = Vec::new();
    for at in [&at1, &at2] {
        let ticket = sb.qrcode(at, "s").await["ticket"]
            .as_str()
            .unwrap()
            .to_string();
        let v = sb
            .post(
                "/sandbox/users/scan",
                json!({ "user": "alice", "ticket": ticket }),
            )
            .await;
        ids.push(v["openid"].as_str().unwrap().to_string());
    }
    assert_ne!(ids[0], ids[1], "openids are per account");
    let info = |at: String, openid: String| {
        let sb = &sb;
        async move {
            sb.http
                .get(sb.url("/cgi-bin/user/info"))
                .query(&[("access_token", at.as_str()), ("openid", openid.as_str())])
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()
        }
    };
    let i1 = info(at1.clone(), ids[0].clone()).await;
    let i2 = info(at2.clone(), ids[1].clone()).await;
    assert!(i1["unionid"].is_string(), "{i1}");
    assert_eq!(i1["unionid"], i2["unionid"]);
    // Another user has another unionid.
    let ticket = sb.qrcode(&at1, "s").await["ticket"]
        .as_str()
        .unwrap()
        .to_string();
    let bob = sb
        .post(
            "/sandbox/users/scan",
            json!({ "user": "bob", "ticket": ticket }),
        )
        .await["openid"]
        .as_str()
        .unwrap()
        .to_string();
    assert_ne!(info(at1.clone(), bob).await["unionid"], i1["unionid"]);
    // An openid of another account is unknown here.
    assert_eq!(errcode(&info(at1.clone(), ids[1].clone()).await), 40003);

    let v = sb
        .authorizer_api(
            "open/unbind",
            &at2,
            json!({ "appid": OA2, "open_appid": open }),
        )
        .await;
    assert_eq!(errcode(&v), 0);
    let i2 = info(at2, ids[1].clone()).await;
    assert!(i2.get("unionid").is_none(), "{i2}");
    assert!(info(at1, ids[0].clone()).await["unionid"].is_string());
}
