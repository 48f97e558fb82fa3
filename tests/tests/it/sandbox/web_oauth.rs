//! Web OAuth on behalf of an official account: the user actor's approval of a
//! `connect/oauth2/authorize` link, `sns/oauth2/component/access_token` (the code exchanged once,
//! with the component token) and `sns/userinfo` (the user's token, for `snsapi_userinfo` only).

use super::*;

fn authorize_link(sb: &Sb, appid: &str, scope: &str, state: &str) -> String {
    let mut url = url::Url::parse(&sb.url("/connect/oauth2/authorize")).unwrap();
    url.query_pairs_mut()
        .append_pair("appid", appid)
        .append_pair("redirect_uri", "https://wxopen.example/oauth/cb")
        .append_pair("response_type", "code")
        .append_pair("scope", scope)
        .append_pair("state", state)
        .append_pair("component_appid", APPID);
    url.to_string()
}

/// The user approves: (code, the redirect's query).
async fn approve(
    sb: &Sb,
    appid: &str,
    scope: &str,
    user: &str,
) -> (String, HashMap<String, String>) {
    let v = sb
        .post(
            "/sandbox/users/oauth",
            json!({ "user": user, "url": authorize_link(sb, appid, scope, "st") }),
        )
        .await;
    let redirect = url::Url::parse(v["redirect"].as_str().unwrap()).unwrap();
    assert!(
        redirect
            .as_str()
            .starts_with("https://wxopen.example/oauth/cb?")
    );
    let q: HashMap<String, String> = redirect.query_pairs().into_owned().collect();
    (q["code"].clone(), q)
}

fn exchange_url(sb: &Sb, params: &[(&str, &str)]) -> String {
    let mut url = url::Url::parse(&sb.url("/sns/oauth2/component/access_token")).unwrap();
    url.query_pairs_mut().extend_pairs(params);
    url.to_string()
}

async fn exchange(sb: &Sb, appid: &str, code: &str, ct: &str) -> Value {
    sb.send(sb.http.get(exchange_url(
        sb,
        &[
            ("appid", appid),
            ("code", code),
            ("grant_type", "authorization_code"),
            ("component_appid", APPID),
            ("component_access_token", ct),
        ],
    )))
    .await
    .1
}

async fn userinfo(sb: &Sb, token: &str, openid: &str) -> Value {
    let mut url = url::Url::parse(&sb.url("/sns/userinfo")).unwrap();
    url.query_pairs_mut()
        .append_pair("access_token", token)
        .append_pair("openid", openid)
        .append_pair("lang", "zh_CN");
    sb.send(sb.http.get(url.as_str())).await.1
}

#[tokio::test]
async fn a_code_is_exchanged_once_and_userinfo_needs_the_userinfo_scope() {
    let sb = Sb::start().await;
    let ct = sb.component_token().await;
    sb.authorizer(&ct, OA1, None).await;

    let (code, q) = approve(&sb, OA1, "snsapi_userinfo", "alice").await;
    assert_eq!((q["state"].as_str(), q["appid"].as_str()), ("st", OA1));
    let v = exchange(&sb, OA1, &code, &ct).await;
    assert_eq!(errcode(&v), 0, "{v}");
    assert_eq!(v["scope"], "snsapi_userinfo");
    let (token, openid) = (
        v["access_token"].as_str().unwrap().to_string(),
        v["openid"].as_str().unwrap().to_string(),
    );
    assert!(
        v["refresh_token"].is_string() && v.get("unionid").is_none(),
        "{v}"
    );
    // Used once: 40163; unknown: 40029; another account's: 40029.
    assert_eq!(errcode(&exchange(&sb, OA1, &code, &ct).await), 40163);
    assert_eq!(errcode(&exchange(&sb, OA1, "nope", &ct).await), 40029);
    let (other, _) = approve(&sb, OA1, "snsapi_base", "alice").await;
    sb.authorizer(&ct, OA2, None).await;
    assert_eq!(errcode(&exchange(&sb, OA2, &other, &ct).await), 40029);

    let info = userinfo(&sb, &token, &openid).await;
    assert_eq!(errcode(&info), 0, "{info}");
    assert_eq!(
        (info["openid"].as_str(), info["nickname"].as_str()),
        (Some(openid.as_str()), Some("alice"))
    );
    assert_eq!(
        errcode(&userinfo(&sb, &token, "o_someone_else").await),
        40003
    );
    assert_eq!(errcode(&userinfo(&sb, "sns_unknown", &openid).await), 40001);
    let (s, v) = sb.send(sb.http.get(sb.url("/sns/userinfo?openid=x"))).await;
    assert_eq!((s, errcode(&v)), (200, 41001));

    // snsapi_base: openid only, and no profile with its token.
    let v = exchange(&sb, OA1, &other, &ct).await;
    assert_eq!(v["scope"], "snsapi_base");
    assert_eq!(
        v["openid"],
        openid.as_str(),
        "one openid per user and account"
    );
    let base = v["access_token"].as_str().unwrap();
    assert_eq!(errcode(&userinfo(&sb, base, &openid).await), 48001);

    // The user token expires after 7200 s: 42001.
    sb.advance(7201).await;
    assert_eq!(errcode(&userinfo(&sb, &token, &openid).await), 42001);
}

async fn refuse(sb: &Sb, url: String) -> (u16, Value) {
    sb.post_status(
        "/sandbox/users/oauth",
        json!({ "user": "carol", "url": url }),
    )
    .await
}

async fn errcode_of(sb: &Sb, params: &[(&str, &str)]) -> i64 {
    errcode(&sb.send(sb.http.get(exchange_url(sb, params))).await.1)
}

/// The exchange's parameters with `key` dropped or (with `value`) replaced.
fn params<'a>(
    base: &[(&'a str, &'a str)],
    key: &str,
    value: Option<&'a str>,
) -> Vec<(&'a str, &'a str)> {
    let mut p: Vec<(&str, &str)> = base.iter().filter(|(k, _)| *k != key).copied().collect();
    if let Some(v) = value {
        p.push((base.iter().find(|(k, _)| *k == key).unwrap().0, v));
    }
    p
}

#[tokio::test]
async fn the_exchange_checks_component_grant_code_and_expiry() {
    let sb = Sb::start().await;
    let ct = sb.component_token().await;
    sb.authorizer(&ct, OA1, None).await;
    let (code, _) = approve(&sb, OA1, "snsapi_base", "bob").await;
    let base = [
        ("appid", OA1),
        ("code", code.as_str()),
        ("grant_type", "authorization_code"),
        ("component_appid", APPID),
        ("component_access_token", ct.as_str()),
    ];
    let cases: &[(&str, Option<&str>, i64)] = &[
        ("component_appid", None, 41018),
        ("component_appid", Some("wx0000000000000bad"), 40013),
        ("appid", None, 41002),
        ("appid", Some("wx0000000000000bad"), 40013),
        ("appid", Some(OA3), 61003),
        ("grant_type", Some("refresh_token"), 40002),
        ("code", None, 41008),
    ];
    for (key, value, want) in cases {
        assert_eq!(
            errcode_of(&sb, &params(&base, key, *value)).await,
            *want,
            "{key} {value:?}"
        );
    }
    // None of those used the code; once it is older than 300 s: 42003.
    sb.advance(301).await;
    assert_eq!(errcode_of(&sb, &base).await, 42003);
}

#[tokio::test]
async fn wechat_refuses_links_it_would_not_open() {
    let sb = Sb::start().await;
    let ct = sb.component_token().await;
    sb.authorizer(&ct, OA1, None).await;
    sb.authorizer(&ct, OA4, None).await;
    let (s, v) = refuse(&sb, authorize_link(&sb, OA1, "snsapi_login", "st")).await;
    assert!(s == 400 && v.to_string().contains("10005"), "{s} {v}");
    // An unverified subscription account has no web OAuth scope.
    let (s, v) = refuse(&sb, authorize_link(&sb, OA4, "snsapi_base", "st")).await;
    assert!(s == 400 && v.to_string().contains("10005"), "{s} {v}");
    let (s, v) = refuse(
        &sb,
        authorize_link(&sb, OA1, "snsapi_base", "st").replace(APPID, "wx0000000000000bad"),
    )
    .await;
    assert!(s == 400 && v.to_string().contains("10016"), "{s} {v}");
    let (s, _) = refuse(
        &sb,
        authorize_link(&sb, OA1, "snsapi_base", &"s".repeat(129)),
    )
    .await;
    assert_eq!(s, 400);
    // Refusing: back to redirect_uri with the state only.
    let v = sb
        .post(
            "/sandbox/users/oauth",
            json!({ "user": "carol", "url": authorize_link(&sb, OA1, "snsapi_base", "st"), "approve": false }),
        )
        .await;
    assert_eq!(v["redirect"], "https://wxopen.example/oauth/cb?state=st");
}
