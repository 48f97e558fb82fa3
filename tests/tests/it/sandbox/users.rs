//! The user actor: scanning QR codes, following, messages, events and customer-service messages.

use super::*;

#[tokio::test]
async fn scan_subscribes_a_new_follower_then_scans() {
    let (base, log) = message_receiver().await;
    let sb = Sb::start().await;
    sb.handle
        .set_callbacks(None, Some(format!("{base}/wechat/message")));
    let ct = sb.component_token().await;
    let (at, _) = sb.authorizer(&ct, OA1, None).await;
    let qr = sb.qrcode(&at, "login-42").await;
    assert_eq!(qr["expire_seconds"], 300);
    let ticket = qr["ticket"].as_str().unwrap().to_string();
    let image = sb
        .http
        .get(sb.url("/cgi-bin/showqrcode"))
        .query(&[("ticket", &ticket)])
        .send()
        .await
        .unwrap();
    assert_eq!(image.status(), 200);

    let v = sb
        .post(
            "/sandbox/users/scan",
            json!({ "user": "alice", "ticket": ticket }),
        )
        .await;
    assert_eq!(v["event"], "subscribe", "{v}");
    assert_eq!(v["status"], 200);
    assert!(
        v["reply"].as_str().unwrap().contains("got subscribe"),
        "{v}"
    );
    assert!(v["reply_error"].is_null(), "{v}");
    let first = log.lock().unwrap()[0].clone();
    assert_eq!(first.path, format!("/wechat/message/{OA1}"));
    assert_eq!(
        field(&first.body, "EventKey").as_deref(),
        Some("qrscene_login-42")
    );
    assert_eq!(field(&first.body, "Ticket"), Some(ticket.clone()));
    assert_eq!(
        field(&first.body, "ToUserName").as_deref(),
        Some("gh_oa000000000001")
    );
    let openid = field(&first.body, "FromUserName").unwrap();

    let v = sb
        .post(
            "/sandbox/users/scan",
            json!({ "user": "alice", "ticket": ticket }),
        )
        .await;
    assert_eq!(v["event"], "SCAN");
    let second = log.lock().unwrap()[1].clone();
    assert_eq!(field(&second.body, "EventKey").as_deref(), Some("login-42"));
    assert_eq!(field(&second.body, "FromUserName"), Some(openid.clone()));

    let info = sb
        .http
        .get(sb.url("/cgi-bin/user/info"))
        .query(&[
            ("access_token", at.as_str()),
            ("openid", &openid),
            ("lang", "zh_CN"),
        ])
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    assert_eq!(info["subscribe"], 1);
    assert_eq!(info["qr_scene_str"], "login-42");
    assert!(info.get("unionid").is_none(), "not bound: {info}");

    // Expired QR codes are refused and nothing is sent.
    sb.advance(301).await;
    let (status, v) = sb
        .post_status(
            "/sandbox/users/scan",
            json!({ "user": "bob", "ticket": ticket }),
        )
        .await;
    assert_eq!((status, v["error"].as_str()), (400, Some("qr_expired")));
    assert_eq!(log.lock().unwrap().len(), 2);
    let image = sb
        .http
        .get(sb.url("/cgi-bin/showqrcode"))
        .query(&[("ticket", &ticket)])
        .send()
        .await
        .unwrap();
    assert_eq!(image.status(), 404);
}

#[tokio::test]
async fn user_messages_events_and_custom_messages() {
    let (base, log) = message_receiver().await;
    let sb = Sb::start().await;
    sb.handle.set_callbacks(None, Some(base));
    let ct = sb.component_token().await;
    let (at, _) = sb.authorizer(&ct, "wx570bc396a51b8ff8", None).await;
    let v = sb
        .post(
            "/sandbox/users/message",
            json!({ "appid": "wx570bc396a51b8ff8", "user": "robot", "content": "TESTCOMPONENT_MSG_TYPE_TEXT" }),
        )
        .await;
    assert!(
        v["reply"]
            .as_str()
            .unwrap()
            .contains("got TESTCOMPONENT_MSG_TYPE_TEXT"),
        "{v}"
    );
    let v = sb
        .post(
            "/sandbox/users/event",
            json!({ "appid": "wx570bc396a51b8ff8", "user": "robot", "event": "LOCATION" }),
        )
        .await;
    assert!(v["reply"].as_str().unwrap().contains("got LOCATION"), "{v}");
    assert!(log.lock().unwrap()[1].body.contains("<Latitude>"));
    let openid = v["openid"].as_str().unwrap().to_string();
    let v = sb
        .authorizer_api(
            "message/custom/send",
            &at,
            json!({ "touser": openid, "msgtype": "text", "text": { "content": "code_from_api" } }),
        )
        .await;
    assert_eq!(errcode(&v), 0, "{v}");
    let v = sb
        .authorizer_api(
            "message/custom/send",
            &at,
            json!({ "touser": "o-unknown", "msgtype": "text", "text": { "content": "x" } }),
        )
        .await;
    assert_eq!(errcode(&v), 40003);
    let msgs = sb.handle.custom_messages();
    assert_eq!(msgs.len(), 1);
    assert_eq!(
        (
            msgs[0].appid.as_str(),
            msgs[0].touser.as_str(),
            msgs[0].content.as_str()
        ),
        ("wx570bc396a51b8ff8", openid.as_str(), "code_from_api")
    );
    let listed = sb.get("/sandbox/custom-messages").await;
    assert_eq!(listed[0]["content"], "code_from_api");
    // A user can act only on an authorized account.
    let (status, _) = sb
        .post_status(
            "/sandbox/users/message",
            json!({ "appid": OA3, "user": "robot", "content": "hi" }),
        )
        .await;
    assert_eq!(status, 409);
}
