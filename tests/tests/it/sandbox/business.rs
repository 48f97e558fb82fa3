//! The business APIs the WeChat API gateway's e2e calls: menus, followers, media (multipart up,
//! binary down) and the quota APIs, each with its refusals and the state they leave.

use super::*;

const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\x00\r\n";

use wxopen_tests::media_multipart as multipart;

#[tokio::test]
async fn menu_create_records_the_menu_and_refuses_bad_ones() {
    let sb = Sb::start().await;
    let ct = sb.component_token().await;
    let (at, _) = sb.authorizer(&ct, OA1, None).await;
    let menu = json!({ "button": [{ "type": "click", "name": "今日歌曲", "key": "V1001" }] });
    let v = sb.authorizer_api("menu/create", &at, menu.clone()).await;
    assert_eq!(errcode(&v), 0, "{v}");
    let recorded = sb.get(&format!("/sandbox/merchants/{OA1}/menu")).await;
    assert_eq!(recorded["menu"], menu);
    for (body, code) in [
        (json!({}), 47001),
        (json!({ "button": [] }), 40016),
        (
            json!({ "button": [{"name": "a"}, {"name": "b"}, {"name": "c"}, {"name": "d"}] }),
            40016,
        ),
        (json!({ "button": [{ "type": "click" }] }), 40018),
    ] {
        let v = sb.authorizer_api("menu/create", &at, body.clone()).await;
        assert_eq!(errcode(&v), code, "{body}: {v}");
    }
    let recorded = sb.get(&format!("/sandbox/merchants/{OA1}/menu")).await;
    assert_eq!(recorded["menu"], menu, "a refused menu changes nothing");
    // A stale token is WeChat's 40001, an expired one 42001.
    sb.post(
        &format!("/sandbox/merchants/{OA1}/invalidate-token"),
        json!({}),
    )
    .await;
    let v = sb.authorizer_api("menu/create", &at, menu.clone()).await;
    assert_eq!(errcode(&v), 40001, "{v}");
    let (at, _) = sb.authorizer(&ct, OA2, None).await;
    sb.advance(7200).await;
    let v = sb.authorizer_api("menu/create", &at, menu).await;
    assert_eq!(errcode(&v), 42001, "{v}");
}

#[tokio::test]
async fn user_get_lists_followers_page_after_next_openid() {
    let (base, _log) = message_receiver().await;
    let sb = Sb::start().await;
    sb.handle
        .set_callbacks(None, Some(format!("{base}/wechat/message")));
    let ct = sb.component_token().await;
    let (at, _) = sb.authorizer(&ct, OA1, None).await;
    let empty = sb
        .get(&format!("/cgi-bin/user/get?access_token={at}"))
        .await;
    assert_eq!(empty, json!({ "total": 0, "count": 0, "next_openid": "" }));
    for user in ["alice", "bob", "carol"] {
        sb.post(
            "/sandbox/users/event",
            json!({ "appid": OA1, "user": user, "event": "subscribe" }),
        )
        .await;
    }
    let all = sb
        .get(&format!("/cgi-bin/user/get?access_token={at}"))
        .await;
    assert_eq!(
        (all["total"].clone(), all["count"].clone()),
        (json!(3), json!(3)),
        "{all}"
    );
    let ids: Vec<String> = all["data"]["openid"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    let mut sorted = ids.clone();
    sorted.sort();
    assert_eq!(ids, sorted);
    assert_eq!(all["next_openid"], json!(ids[2]));
    let rest = sb
        .get(&format!(
            "/cgi-bin/user/get?access_token={at}&next_openid={}",
            ids[0]
        ))
        .await;
    assert_eq!(rest["count"], 2);
    assert_eq!(rest["data"]["openid"], json!(ids[1..]));
    let v = sb
        .get(&format!(
            "/cgi-bin/user/get?access_token={at}&next_openid=onobody"
        ))
        .await;
    assert_eq!(errcode(&v), 40003);
}

#[tokio::test]
async fn media_upload_then_get_returns_the_same_bytes() {
    let sb = Sb::start().await;
    let ct = sb.component_token().await;
    let (at, _) = sb.authorizer(&ct, OA1, None).await;
    let upload = |kind: &'static str, ct: &'static str, body: Vec<u8>| {
        sb.http
            .post(sb.url("/cgi-bin/media/upload"))
            .query(&[("access_token", at.as_str()), ("type", kind)])
            .header("content-type", ct)
            .body(body)
    };
    let (_, v) = sb
        .send(upload(
            "image",
            "multipart/form-data; boundary=b0undary",
            multipart("b0undary", PNG),
        ))
        .await;
    assert_eq!(v["type"], "image", "{v}");
    let media_id = v["media_id"].as_str().unwrap().to_string();
    let got = sb
        .http
        .get(sb.url("/cgi-bin/media/get"))
        .query(&[("access_token", at.as_str()), ("media_id", &media_id)])
        .send()
        .await
        .unwrap();
    assert_eq!(got.headers()["content-type"], "image/png");
    assert_eq!(
        got.headers()["content-disposition"],
        "attachment; filename=\"logo.png\""
    );
    assert_eq!(got.bytes().await.unwrap().as_ref(), PNG);
    for (kind, ct, body, code) in [
        ("image", "application/json", b"{}".to_vec(), 41005),
        (
            "image",
            "multipart/form-data; boundary=x",
            b"junk".to_vec(),
            41005,
        ),
        (
            "file",
            "multipart/form-data; boundary=b",
            multipart("b", PNG),
            40004,
        ),
        (
            "image",
            "multipart/form-data; boundary=b",
            multipart("b", b""),
            40006,
        ),
    ] {
        let (_, v) = sb.send(upload(kind, ct, body)).await;
        assert_eq!(errcode(&v), code, "{kind} {ct}: {v}");
    }
    // Another account's media, or an unknown id: 40007.
    let (other, _) = sb.authorizer(&ct, OA2, None).await;
    for (token, id) in [(other.as_str(), media_id.as_str()), (at.as_str(), "nope")] {
        let (_, v) = sb
            .send(
                sb.http
                    .get(sb.url("/cgi-bin/media/get"))
                    .query(&[("access_token", token), ("media_id", id)]),
            )
            .await;
        assert_eq!(errcode(&v), 40007, "{v}");
    }
}

#[tokio::test]
async fn quota_apis_read_and_reset_counts_ten_times_a_month() {
    let sb = Sb::start().await;
    let ct = sb.component_token().await;
    let (at, _) = sb.authorizer(&ct, OA1, None).await;
    let menu = json!({ "button": [{ "type": "click", "name": "a", "key": "k" }] });
    for _ in 0..3 {
        sb.authorizer_api("menu/create", &at, menu.clone()).await;
    }
    let q = sb
        .authorizer_api(
            "openapi/quota/get",
            &at,
            json!({ "cgi_path": "/cgi-bin/menu/create" }),
        )
        .await;
    assert_eq!(q["quota"]["used"], 3, "{q}");
    assert_eq!(q["quota"]["remain"], json!(100_000 - 3));
    for (path, code) in [
        ("/cgi-bin/nope", 76021),
        ("/cgi-bin/component/api_query_auth", 76022),
    ] {
        let v = sb
            .authorizer_api("openapi/quota/get", &at, json!({ "cgi_path": path }))
            .await;
        assert_eq!(errcode(&v), code, "{path}: {v}");
    }
    let v = sb
        .authorizer_api("clear_quota", &at, json!({ "appid": OA1 }))
        .await;
    assert_eq!(errcode(&v), 0, "{v}");
    let q = sb
        .authorizer_api(
            "openapi/quota/get",
            &at,
            json!({ "cgi_path": "/cgi-bin/menu/create" }),
        )
        .await;
    assert_eq!(q["quota"]["used"], 0, "{q}");
    let v = sb
        .authorizer_api("clear_quota", &at, json!({ "appid": OA2 }))
        .await;
    assert_eq!(errcode(&v), 40013, "{v}");
    // The component's resets: with its token, or v2 with the secret and no token.
    let v = sb.component("clear_quota", &ct, json!({})).await;
    assert_eq!(errcode(&v), 0, "{v}");
    let v = sb
        .post(
            "/cgi-bin/component/clear_quota/v2",
            json!({ "component_appid": APPID, "appsecret": "wrong" }),
        )
        .await;
    assert_eq!(errcode(&v), 40125, "{v}");
    for n in 2..=11 {
        let v = sb
            .post(
                "/cgi-bin/component/clear_quota/v2",
                json!({ "component_appid": APPID, "appsecret": APPSECRET }),
            )
            .await;
        let want = if n <= 10 { 0 } else { 48006 };
        assert_eq!(errcode(&v), want, "reset {n} this month: {v}");
    }
}
