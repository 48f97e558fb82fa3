//! Mini program sign-in on behalf (`/sns/component/jscode2session`): the user actor's
//! `wx.login` code exchanged with the component token for openid, session key and unionid.

use super::*;

/// The user opens the mini program: a fresh `js_code`.
async fn login(sb: &Sb, appid: &str, user: &str) -> String {
    let v = sb
        .post(
            "/sandbox/users/login",
            json!({ "appid": appid, "user": user }),
        )
        .await;
    assert_eq!(v["expires_in"], 300, "{v}");
    v["js_code"].as_str().expect("js_code").to_string()
}

fn exchange_url(sb: &Sb, appid: &str, code: &str, component: &str, token: &str) -> String {
    let mut url = url::Url::parse(&sb.url("/sns/component/jscode2session")).unwrap();
    url.query_pairs_mut()
        .append_pair("appid", appid)
        .append_pair("js_code", code)
        .append_pair("grant_type", "authorization_code")
        .append_pair("component_appid", component)
        .append_pair("component_access_token", token);
    url.to_string()
}

async fn exchange(sb: &Sb, appid: &str, code: &str, token: &str) -> Value {
    let (s, v) = sb
        .send(sb.http.get(exchange_url(sb, appid, code, APPID, token)))
        .await;
    assert_eq!(s, 200, "{v}");
    v
}

#[tokio::test]
async fn a_login_code_is_exchanged_once_for_openid_and_session_key() {
    let sb = Sb::start().await;
    let ct = sb.component_token().await;
    let (atm, _) = sb.authorizer(&ct, MP1, None).await;
    let code = login(&sb, MP1, "alice").await;
    let v = exchange(&sb, MP1, &code, &ct).await;
    assert_eq!(errcode(&v), 0, "{v}");
    let openid = v["openid"].as_str().expect("openid").to_string();
    assert_eq!(openid.len(), 28);
    let session_key = v["session_key"].as_str().expect("session_key");
    assert_eq!(session_key.len(), 24);
    assert!(
        v.get("unionid").is_none(),
        "not bound to an open account: {v}"
    );

    // Single use: 40163. Unknown: 40029. Same user again: same openid, new session key.
    assert_eq!(errcode(&exchange(&sb, MP1, &code, &ct).await), 40163);
    assert_eq!(errcode(&exchange(&sb, MP1, "nope", &ct).await), 40029);
    let again = exchange(&sb, MP1, &login(&sb, MP1, "alice").await, &ct).await;
    assert_eq!(again["openid"], openid.as_str());
    assert_ne!(again["session_key"], session_key);
    let bob = exchange(&sb, MP1, &login(&sb, MP1, "bob").await, &ct).await;
    assert_ne!(bob["openid"], openid.as_str());

    // Tokens: the authorizer token is the wrong kind, a bogus one unknown, none missing.
    let code = login(&sb, MP1, "alice").await;
    assert_eq!(errcode(&exchange(&sb, MP1, &code, &atm).await), 40001);
    assert_eq!(errcode(&exchange(&sb, MP1, &code, "nope").await), 40001);
    let (_, v) = sb
        .send(
            sb.http
                .get(sb.url("/sns/component/jscode2session"))
                .query(&[
                    ("appid", MP1),
                    ("js_code", code.as_str()),
                    ("grant_type", "authorization_code"),
                    ("component_appid", APPID),
                ]),
        )
        .await;
    assert_eq!(errcode(&v), 41001, "{v}");
    // A stale component token (superseded, past the overlap): 40001. The code is still good.
    let _newer = sb.component_token().await;
    let newest = sb.component_token().await;
    assert_eq!(errcode(&exchange(&sb, MP1, &code, &ct).await), 40001);
    assert_eq!(errcode(&exchange(&sb, MP1, &code, &newest).await), 0);

    let calls = calls_of(&sb.handle.calls(), "sns/component/jscode2session");
    assert!(
        calls
            .iter()
            .filter(|c| c.errcode == 0)
            .all(|c| c.token_kind == "component" && c.authorizer_appid.as_deref() == Some(MP1)),
        "{calls:?}"
    );
}

#[tokio::test]
async fn the_exchange_checks_component_app_grant_and_expiry() {
    let sb = Sb::start().await;
    let ct = sb.component_token().await;
    let code = {
        // Not authorized yet: no wx.login through the platform.
        let (s, v) = sb
            .post_status(
                "/sandbox/users/login",
                json!({ "appid": MP1, "user": "alice" }),
            )
            .await;
        assert_eq!((s, v["error"].as_str()), (409, Some("not_authorized")));
        sb.authorizer(&ct, MP1, None).await;
        login(&sb, MP1, "alice").await
    };
    // Official accounts have no wx.login; unknown accounts are 404.
    sb.authorizer(&ct, OA1, None).await;
    let (s, _) = sb
        .post_status(
            "/sandbox/users/login",
            json!({ "appid": OA1, "user": "alice" }),
        )
        .await;
    assert_eq!(s, 400);
    let (s, _) = sb
        .post_status(
            "/sandbox/users/login",
            json!({ "appid": "wxnobody", "user": "alice" }),
        )
        .await;
    assert_eq!(s, 404);

    let with = |appid: &str, component: &str, grant: &str| {
        let mut url = url::Url::parse(&exchange_url(&sb, appid, &code, component, &ct)).unwrap();
        let pairs: Vec<(String, String)> = url
            .query_pairs()
            .map(|(k, v)| {
                let v = if k == "grant_type" {
                    grant.to_string()
                } else {
                    v.into_owned()
                };
                (k.into_owned(), v)
            })
            .collect();
        url.query_pairs_mut().clear().extend_pairs(pairs);
        url.to_string()
    };
    let release_mp = "wxd101a85aa106f53e";
    let cases = [
        (with(MP1, "", "authorization_code"), 41018),
        (with(MP1, "wx0000000000000000", "authorization_code"), 40013),
        (with("", APPID, "authorization_code"), 41002),
        (with("wxnobody", APPID, "authorization_code"), 40013),
        (with(release_mp, APPID, "authorization_code"), 61003),
        (with(MP1, APPID, "client_credential"), 40002),
    ];
    for (url, expected) in cases {
        let (s, v) = sb.send(sb.http.get(&url)).await;
        assert_eq!((s, errcode(&v)), (200, expected), "{url}: {v}");
    }
    // The code is MP1's: another authorized mini program cannot use it.
    sb.authorizer(&ct, release_mp, None).await;
    let (_, v) = sb
        .send(sb.http.get(with(release_mp, APPID, "authorization_code")))
        .await;
    assert_eq!(errcode(&v), 40029, "{v}");
    // None of that used the code; after five minutes it is gone.
    sb.advance(301).await;
    let ct = sb.component_token().await;
    assert_eq!(errcode(&exchange(&sb, MP1, &code, &ct).await), 40029);
}

#[tokio::test]
async fn a_mini_program_bound_to_an_open_account_gives_the_unionid() {
    let sb = Sb::start().await;
    let ct = sb.component_token().await;
    let (atm, _) = sb.authorizer(&ct, MP1, None).await;
    let v = sb
        .authorizer_api("open/create", &atm, json!({ "appid": MP1 }))
        .await;
    assert_eq!(errcode(&v), 0, "{v}");
    let a = exchange(&sb, MP1, &login(&sb, MP1, "alice").await, &ct).await;
    let b = exchange(&sb, MP1, &login(&sb, MP1, "alice").await, &ct).await;
    let c = exchange(&sb, MP1, &login(&sb, MP1, "carol").await, &ct).await;
    let unionid = a["unionid"].as_str().expect("unionid");
    assert!(unionid.starts_with('u') && unionid.len() == 28, "{a}");
    assert_eq!(b["unionid"], unionid);
    assert_ne!(c["unionid"], unionid);
}
