//! Mini program code management under `/wxa/`: categories, commit, and the trial QR code as a
//! binary answer (`image/jpeg` with `Content-Disposition`), with the mini program's authorizer
//! token, stale or wrong tokens, and permission set 18.

use super::*;

/// `GET {path}` answering raw: (status, content type, content disposition, bytes).
async fn get_raw(sb: &Sb, path: &str) -> (u16, String, Option<String>, Vec<u8>) {
    let resp = sb.http.get(sb.url(path)).send().await.expect("request");
    let header = |name: reqwest::header::HeaderName| {
        resp.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let status = resp.status().as_u16();
    let content_type = header(reqwest::header::CONTENT_TYPE).unwrap_or_default();
    let disposition = header(reqwest::header::CONTENT_DISPOSITION);
    let bytes = resp.bytes().await.expect("body").to_vec();
    (status, content_type, disposition, bytes)
}

#[tokio::test]
async fn get_category_answers_an_authorized_mini_program_and_40001_for_a_stale_token() {
    let sb = Sb::start().await;
    let ct = sb.component_token().await;
    let (atm, refresh) = sb.authorizer(&ct, MP1, None).await;
    let v = sb
        .get(&format!("/wxa/get_category?access_token={atm}"))
        .await;
    assert_eq!(errcode(&v), 0, "{v}");
    let list = v["category_list"].as_array().expect("category_list");
    assert!(!list.is_empty());
    for c in list {
        assert!(
            c["first_class"].is_string() && c["second_class"].is_string(),
            "{c}"
        );
        assert!(c["first_id"].is_i64() && c["second_id"].is_i64(), "{c}");
    }

    // A refresh supersedes the token; past the overlap the old one is stale: 40001.
    let fresh = sb.refresh(&ct, MP1, &refresh).await;
    let fresh = fresh["authorizer_access_token"]
        .as_str()
        .unwrap()
        .to_string();
    sb.advance(301).await;
    let v = sb
        .get(&format!("/wxa/get_category?access_token={atm}"))
        .await;
    assert_eq!(errcode(&v), 40001, "{v}");
    let v = sb
        .get(&format!("/wxa/get_category?access_token={fresh}"))
        .await;
    assert_eq!(errcode(&v), 0, "{v}");
    // The component token is the wrong kind; no token is 41001.
    let v = sb
        .get(&format!("/wxa/get_category?access_token={ct}"))
        .await;
    assert_eq!(errcode(&v), 40001, "{v}");
    assert_eq!(errcode(&sb.get("/wxa/get_category").await), 41001);

    let calls = calls_of(&sb.handle.calls(), "wxa/get_category");
    let summary: Vec<(i64, &str, Option<&str>)> = calls
        .iter()
        .map(|c| {
            (
                c.errcode,
                c.token_kind.as_str(),
                c.authorizer_appid.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (0, "authorizer", Some(MP1)),
            (40001, "authorizer", Some(MP1)),
            (0, "authorizer", Some(MP1)),
            (40001, "component", None),
            (41001, "none", None),
        ]
    );
}

#[tokio::test]
async fn code_management_needs_a_mini_program_with_permission_set_18() {
    let sb = Sb::start().await;
    let ct = sb.component_token().await;
    // An official account never granted 18.
    let (at, _) = sb.authorizer(&ct, OA1, None).await;
    let v = sb
        .get(&format!("/wxa/get_category?access_token={at}"))
        .await;
    assert_eq!(errcode(&v), 61007, "{v}");
    // A mini program that withheld 18.
    let (atm, _) = sb.authorizer(&ct, MP1, Some(json!([17, 19, 25]))).await;
    let v = sb
        .get(&format!("/wxa/get_category?access_token={atm}"))
        .await;
    assert_eq!(errcode(&v), 61007, "{v}");
    let v = sb
        .post(
            &format!("/wxa/commit?access_token={atm}"),
            json!({ "template_id": 1, "user_version": "1.0.0" }),
        )
        .await;
    assert_eq!(errcode(&v), 61007, "{v}");
    // An official account holding 18 anyway is still not a mini program.
    let (at2, _) = sb.authorizer(&ct, OA2, Some(json!([1, 18]))).await;
    let v = sb
        .get(&format!("/wxa/get_category?access_token={at2}"))
        .await;
    assert_eq!(errcode(&v), 85015, "{v}");
}

#[tokio::test]
async fn commit_checks_its_body_then_the_trial_qr_code_is_a_jpeg() {
    let sb = Sb::start().await;
    let ct = sb.component_token().await;
    let (atm, _) = sb.authorizer(&ct, MP1, None).await;
    let commit = format!("/wxa/commit?access_token={atm}");
    let qrcode = format!("/wxa/get_qrcode?access_token={atm}&path=pages%2Findex%3Fa%3D1");
    // The library's first template (from the sandbox's first draft) is template 1.
    let v = sb
        .post(
            &format!("/wxa/addtotemplate?access_token={ct}"),
            json!({ "draft_id": 1 }),
        )
        .await;
    assert_eq!(errcode(&v), 0, "{v}");

    // Before any commit: a JSON error, not an image.
    let (s, content_type, disposition, bytes) = get_raw(&sb, &qrcode).await;
    assert_eq!(s, 200);
    assert!(
        content_type.starts_with("application/json"),
        "{content_type}"
    );
    assert!(disposition.is_none());
    let v: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(errcode(&v), 86001, "{v}");

    for (body, code) in [
        (
            json!({ "template_id": "1", "user_version": "1.0.0" }),
            85014,
        ),
        (json!({ "user_version": "1.0.0" }), 85014),
        (json!({ "template_id": -1, "user_version": "1.0.0" }), 85014),
        (
            json!({ "template_id": 1, "user_version": "1.0.0", "ext_json": "{nope" }),
            85048,
        ),
        (
            json!({ "template_id": 1, "user_version": "1.0.0", "ext_json": { "a": 1 } }),
            85013,
        ),
        (
            json!({ "template_id": 1, "user_version": "1.0.0", "ext_json": "[1]" }),
            85013,
        ),
        (json!({ "template_id": 1 }), 85015),
        (
            json!({ "template_id": 1, "user_version": "x".repeat(65) }),
            85015,
        ),
    ] {
        let v = sb.post(&commit, body.clone()).await;
        assert_eq!(errcode(&v), code, "{body}: {v}");
    }
    let (s, v) = sb
        .send(sb.http.post(sb.url(&commit)).body("not json"))
        .await;
    assert_eq!((s, errcode(&v)), (200, 47001));
    let merchant = sb.get(&format!("/sandbox/merchants/{MP1}")).await;
    assert!(
        merchant["committed"].is_null(),
        "nothing committed: {merchant}"
    );

    let v = sb
        .post(
            &commit,
            json!({
                "template_id": 1,
                "ext_json": "{\"extAppid\": \"wxmp00000000000001\", \"ext\": {\"shop\": 1}}",
                "user_version": "1.0.0",
                "user_desc": "first",
            }),
        )
        .await;
    assert_eq!(v, json!({ "errcode": 0, "errmsg": "ok" }));
    let merchant = sb.get(&format!("/sandbox/merchants/{MP1}")).await;
    assert_eq!(merchant["committed"]["template_id"], 1, "{merchant}");
    assert_eq!(merchant["committed"]["user_version"], "1.0.0");
    assert_eq!(merchant["committed"]["ext_json"]["ext"]["shop"], 1);

    let (s, content_type, disposition, bytes) = get_raw(&sb, &qrcode).await;
    assert_eq!(s, 200);
    assert_eq!(content_type, "image/jpeg");
    assert_eq!(
        disposition.as_deref(),
        Some("attachment; filename=\"QRCode.jpg\"")
    );
    assert!(bytes.len() > 100);
    assert_eq!(bytes[..3], [0xFF, 0xD8, 0xFF], "JPEG start of image");
    assert_eq!(bytes[bytes.len() - 2..], [0xFF, 0xD9], "JPEG end of image");

    // An expired token gets JSON again, never bytes.
    sb.advance(7200).await;
    let (_, content_type, _, bytes) = get_raw(&sb, &qrcode).await;
    assert!(
        content_type.starts_with("application/json"),
        "{content_type}"
    );
    let v: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(errcode(&v), 42001, "{v}");
    let codes: Vec<i64> = calls_of(&sb.handle.calls(), "wxa/get_qrcode")
        .iter()
        .map(|c| c.errcode)
        .collect();
    assert_eq!(codes, [86001, 0, 42001]);
}
