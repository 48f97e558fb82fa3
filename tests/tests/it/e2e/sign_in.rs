//! Sign-in end to end: web OAuth for both scopes and every refusal, mini program login, one
//! identity across an official account and a mini program of one open account, the
//! openid-only → UnionID merge, the conflict case, and 50 concurrent first logins.

use crate::common::{MP1, OA1, OA2, stack_with};
use reqwest::Method;
use serde_json::{Value, json};
use wxopen::identity::{self, Sighting};
use wxopen::model::SignInFlow;
use wxopen_tests::scan_all;
use wxopen_tests::stack::Stack;

/// Items of the table by key prefix.
async fn count(stack: &Stack, prefix: &str) -> usize {
    scan_all(&stack.store)
        .await
        .keys()
        .filter(|(pk, _)| pk.starts_with(prefix))
        .count()
}

async fn bind_open_account(stack: &Stack, first: &str, others: &[&str]) {
    let (s, created) = stack
        .api(
            Method::POST,
            &format!("/authorizers/{first}/open-account"),
            None,
        )
        .await;
    assert!(s == 200 || s == 201, "{created}");
    let open_appid = created["open_appid"].as_str().unwrap().to_string();
    for o in others {
        let (s, b) = stack
            .api(
                Method::PUT,
                &format!("/authorizers/{o}/open-account"),
                Some(json!({ "open_appid": open_appid })),
            )
            .await;
        assert_eq!(s, 200, "{b}");
    }
}

/// `GET` without following redirects: (status, Location).
async fn get(stack: &Stack, url: &str) -> (u16, String, String) {
    let resp = stack.http.get(url).send().await.unwrap();
    let status = resp.status().as_u16();
    let location = resp
        .headers()
        .get("location")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    (status, location, resp.text().await.unwrap_or_default())
}

fn param(url: &str, name: &str) -> Option<String> {
    url::Url::parse(url)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

async fn start_oauth(stack: &Stack, scope: &str, state: &str) -> String {
    let return_to = format!("{}/signed-in", stack.site.base_url);
    let url = format!(
        "{}/oauth/{OA1}/authorize?scope={scope}&return_to={}&state={state}",
        stack.gateway.base_url,
        url::form_urlencoded::byte_serialize(return_to.as_bytes()).collect::<String>()
    );
    let (status, location, body) = get(stack, &url).await;
    assert_eq!(status, 302, "{body}");
    assert!(location.starts_with(&format!(
        "{}/connect/oauth2/authorize?",
        stack.sandbox.base_url()
    )));
    assert_eq!(
        param(&location, "component_appid").as_deref(),
        Some(wxopen_tests::APPID)
    );
    assert_eq!(param(&location, "scope").as_deref(), Some(scope));
    location
}

async fn approve(stack: &Stack, user: &str, link: &str) -> String {
    let (s, b) = stack
        .control(
            Method::POST,
            "users/oauth",
            json!({ "user": user, "url": link }),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    b["redirect"].as_str().unwrap().to_string()
}

async fn redeem(stack: &Stack, code: &str) -> (u16, Value) {
    stack
        .api(Method::POST, &format!("/login/codes/{code}"), None)
        .await
}

#[tokio::test]
async fn web_oauth_both_scopes_and_every_refusal_changes_nothing() {
    let stack = stack_with(&[OA1, OA2]).await;
    bind_open_account(&stack, OA1, &[OA2]).await;

    // snsapi_userinfo: the unionid comes from sns/userinfo.
    let link = start_oauth(&stack, "snsapi_userinfo", "st-1").await;
    let callback = approve(&stack, "alice", &link).await;
    let (status, location, body) = get(&stack, &callback).await;
    assert_eq!(status, 302, "{body}");
    assert!(
        location.starts_with(&format!("{}/signed-in?", stack.site.base_url)),
        "{location}"
    );
    assert_eq!(param(&location, "state").as_deref(), Some("st-1"));
    assert!(param(&location, "openid").is_none() && !location.contains("unionid"));
    let code = param(&location, "login_code").unwrap();
    let (s, alice) = redeem(&stack, &code).await;
    assert_eq!(s, 200, "{alice}");
    assert_eq!(alice["flow"], "oauth");
    assert_eq!(alice["appid"], OA1);
    assert!(alice["unionid"].is_string(), "{alice}");
    assert_eq!(alice["known_user"], false);
    assert!(alice["user_id"].is_null());
    assert!(alice.get("conflict").is_none());
    // Single use.
    assert_eq!(redeem(&stack, &code).await.0, 404);
    assert!(stack.calls_to("sns/userinfo") == 1);

    // snsapi_base: openid only (no userinfo call), and the same person is known.
    let link = start_oauth(&stack, "snsapi_base", "st-2").await;
    let callback = approve(&stack, "alice", &link).await;
    let (status, location, _) = get(&stack, &callback).await;
    assert_eq!(status, 302);
    let (_, again) = redeem(&stack, &param(&location, "login_code").unwrap()).await;
    assert_eq!(again["openid"], alice["openid"]);
    assert_eq!(again["identity_id"], alice["identity_id"]);
    assert_eq!(again["known_user"], true);
    assert_eq!(
        stack.calls_to("sns/userinfo"),
        1,
        "snsapi_base reads no profile"
    );

    // Refusals: each a 4xx page, no exchange, no identity, no login code.
    let identities = count(&stack, "IDENTITY#").await;
    let codes = count(&stack, "LOGINCODE#").await;
    let exchanges = stack.calls_to("sns/oauth2/component/access_token");

    // A replayed callback (the same URL again).
    let (status, _, body) = get(&stack, &callback).await;
    assert_eq!(status, 400);
    assert!(body.contains("state_replayed"), "{body}");
    // A forged state: the MAC does not match once return_to is changed.
    let link = start_oauth(&stack, "snsapi_base", "st-3").await;
    let callback = approve(&stack, "alice", &link).await;
    let forged = callback.replace("signed-in", "evil");
    let (status, _, body) = get(&stack, &forged).await;
    assert_eq!(status, 400);
    assert!(body.contains("invalid_state"), "{body}");
    let mut tampered = url::Url::parse(&callback).unwrap();
    let pairs: Vec<(String, String)> = tampered
        .query_pairs()
        .map(|(k, v)| {
            let v = if k == "state" {
                format!("{}0", &v[..v.len() - 1])
            } else {
                v.into_owned()
            };
            (k.into_owned(), v)
        })
        .collect();
    tampered.query_pairs_mut().clear().extend_pairs(pairs);
    let (status, _, body) = get(&stack, tampered.as_str()).await;
    assert_eq!(status, 400);
    assert!(body.contains("invalid_state"), "{body}");
    assert_eq!(
        stack.calls_to("sns/oauth2/component/access_token"),
        exchanges,
        "no exchange for a bad state"
    );
    // A reused code under a fresh, valid state: WeChat answers 40163.
    let used_code = param(&callback, "code").unwrap();
    let (status, _, _) = get(&stack, &callback).await; // uses the code once (fine)
    assert_eq!(status, 302);
    let identities = identities.max(count(&stack, "IDENTITY#").await);
    let codes = codes + 1;
    let link = start_oauth(&stack, "snsapi_base", "st-4").await;
    let fresh = approve(&stack, "alice", &link).await;
    let mut reused = url::Url::parse(&fresh).unwrap();
    let pairs: Vec<(String, String)> = reused
        .query_pairs()
        .map(|(k, v)| {
            (
                k.to_string(),
                if k == "code" {
                    used_code.clone()
                } else {
                    v.into_owned()
                },
            )
        })
        .collect();
    reused.query_pairs_mut().clear().extend_pairs(pairs);
    let (status, _, body) = get(&stack, reused.as_str()).await;
    assert_eq!(status, 400);
    assert!(
        body.contains("code_used") && body.contains("40163") || body.contains("code_used"),
        "{body}"
    );
    assert!(
        stack
            .sandbox
            .calls()
            .iter()
            .any(|c| c.api == "sns/oauth2/component/access_token" && c.errcode == 40163)
    );
    // return_to outside the allowlist: refused before anything.
    let url = format!(
        "{}/oauth/{OA1}/authorize?scope=snsapi_base&return_to=https%3A%2F%2Fevil.example%2F&state=x",
        stack.gateway.base_url
    );
    let (status, location, body) = get(&stack, &url).await;
    assert_eq!(status, 400);
    assert!(
        location.is_empty() && body.contains("return_to_not_allowed"),
        "{body}"
    );
    assert_eq!(count(&stack, "IDENTITY#").await, identities);
    assert_eq!(count(&stack, "LOGINCODE#").await, codes);
}

async fn mp_login(stack: &Stack, user: &str) -> Value {
    let (s, login) = stack
        .control(
            Method::POST,
            "users/login",
            json!({ "appid": MP1, "user": user }),
        )
        .await;
    assert_eq!(s, 200, "{login}");
    let (s, body) = stack
        .api(
            Method::POST,
            &format!("/authorizers/{MP1}/miniprogram/sessions"),
            Some(json!({ "js_code": login["js_code"] })),
        )
        .await;
    assert_eq!(s, 200, "{body}");
    body
}

#[tokio::test]
async fn official_account_and_mini_program_of_one_open_account_make_one_identity() {
    let stack = stack_with(&[OA1, MP1]).await;
    bind_open_account(&stack, OA1, &[MP1]).await;
    // Through the official account (web OAuth, userinfo scope).
    let link = start_oauth(&stack, "snsapi_userinfo", "s").await;
    let callback = approve(&stack, "carol", &link).await;
    let (_, location, _) = get(&stack, &callback).await;
    let (_, via_oa) = redeem(&stack, &param(&location, "login_code").unwrap()).await;
    let id = via_oa["identity_id"].as_str().unwrap().to_string();
    // The provider binds its user.
    let (s, bound) = stack
        .api(
            Method::PUT,
            &format!("/identities/{id}/user"),
            Some(json!({ "user_id": "user-7" })),
        )
        .await;
    assert_eq!(s, 200, "{bound}");
    // Through the mini program: same UnionID, same identity, the bound user, known.
    let mp = mp_login(&stack, "carol").await;
    assert_eq!(mp["unionid"], via_oa["unionid"]);
    assert_eq!(mp["identity_id"], id);
    assert_eq!(mp["user_id"], "user-7");
    assert_eq!(mp["known_user"], true);
    assert!(mp["session_key"].as_str().is_some_and(|k| k.len() == 24));
    assert_ne!(mp["openid"], via_oa["openid"]);
    let (_, one) = stack
        .api(Method::GET, &format!("/identities/{id}"), None)
        .await;
    let apps: Vec<&str> = one["apps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["appid"].as_str().unwrap())
        .collect();
    assert_eq!(apps.len(), 2, "{one}");
    assert!(apps.contains(&OA1) && apps.contains(&MP1));
    assert_eq!(one["user_id"], "user-7");
    assert_eq!(one["flows"], json!(["mini_program", "oauth"]));
    // Lookups agree, and the session key is never stored.
    for q in [
        format!("unionid={}", mp["unionid"].as_str().unwrap()),
        format!("appid={MP1}&openid={}", mp["openid"].as_str().unwrap()),
        "user_id=user-7".to_string(),
    ] {
        let (s, found) = stack
            .api(Method::GET, &format!("/identities?{q}"), None)
            .await;
        assert_eq!(s, 200);
        assert_eq!(found["identities"][0]["id"], id, "{q}: {found}");
    }
    let key = mp["session_key"].as_str().unwrap();
    assert!(!format!("{:?}", scan_all(&stack.store).await).contains(key));
    // Binding rules: another user needs replace; unbind; unbind again is 404.
    let (s, e) = stack
        .api(
            Method::PUT,
            &format!("/identities/{id}/user"),
            Some(json!({ "user_id": "user-8" })),
        )
        .await;
    assert_eq!((s, e["error"].as_str()), (409, Some("bound_to_other_user")));
    let (s, _) = stack
        .api(
            Method::PUT,
            &format!("/identities/{id}/user"),
            Some(json!({ "user_id": "user-8", "replace": true })),
        )
        .await;
    assert_eq!(s, 200);
    let (_, old) = stack
        .api(Method::GET, "/identities?user_id=user-7", None)
        .await;
    assert_eq!(old["identities"], json!([]));
    assert_eq!(
        stack
            .api(Method::DELETE, &format!("/identities/{id}/user"), None)
            .await
            .0,
        200
    );
    assert_eq!(
        stack
            .api(Method::DELETE, &format!("/identities/{id}/user"), None)
            .await
            .0,
        404
    );
    // A mini program flow on an official account is refused, naming what is missing.
    let (s, e) = stack
        .api(
            Method::POST,
            &format!("/authorizers/{OA1}/miniprogram/sessions"),
            Some(json!({ "js_code": "abc" })),
        )
        .await;
    assert_eq!((s, e["error"].as_str()), (409, Some("not_mini_program")));
}

fn sighting<'a>(appid: &'a str, openid: &'a str, unionid: Option<&'a str>) -> Sighting<'a> {
    Sighting {
        appid,
        openid,
        unionid,
        flow: SignInFlow::MiniProgram,
        now: 1_700_000_000,
    }
}

#[tokio::test]
async fn an_openid_only_identity_merges_into_its_unionid_keeping_the_user() {
    let stack = Stack::start().await;
    let store = &stack.store;
    let first = identity::record(store, &sighting(MP1, "o-dan", None))
        .await
        .unwrap();
    assert!(!first.known_user && first.identity.unionid.is_none());
    identity::bind(store, &first.identity.id, "user-1", false)
        .await
        .unwrap();
    // The app joins an open account: WeChat now gives the UnionID.
    let merged = identity::record(store, &sighting(MP1, "o-dan", Some("u-dan")))
        .await
        .unwrap();
    assert!(merged.known_user && merged.conflict.is_none());
    assert_ne!(merged.identity.id, first.identity.id);
    assert_eq!(merged.identity.user_id.as_deref(), Some("user-1"));
    assert_eq!(merged.identity.unionid.as_deref(), Some("u-dan"));
    // The old id resolves to the merged identity; the user holds only that one.
    let old = identity::resolve(store, &first.identity.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(old.id, merged.identity.id);
    let of_user = identity::by_user(store, "user-1").await.unwrap();
    assert_eq!(
        of_user.iter().map(|i| i.id.clone()).collect::<Vec<_>>(),
        vec![merged.identity.id.clone()]
    );
    // An openid-only sign-in (snsapi_base) of that app now lands on the UnionID identity.
    let base = identity::record(store, &sighting(MP1, "o-dan", None))
        .await
        .unwrap();
    assert_eq!(base.identity.id, merged.identity.id);
}

#[tokio::test]
async fn two_identities_bound_to_different_users_conflict_and_are_not_merged() {
    let stack = Stack::start().await;
    let store = &stack.store;
    // Erin signed in through OA2 (UnionID, bound to user-a) and through MP1 before it joined the
    // open account (openid only, bound to user-b).
    let u = identity::record(store, &sighting(OA2, "o-erin-oa", Some("u-erin")))
        .await
        .unwrap();
    identity::bind(store, &u.identity.id, "user-a", false)
        .await
        .unwrap();
    let o = identity::record(store, &sighting(MP1, "o-erin-mp", None))
        .await
        .unwrap();
    identity::bind(store, &o.identity.id, "user-b", false)
        .await
        .unwrap();
    // MP1 joins: the UnionID shows up on MP1.
    let r = identity::record(store, &sighting(MP1, "o-erin-mp", Some("u-erin")))
        .await
        .unwrap();
    let conflict = r.conflict.expect("conflict reported");
    assert_eq!(conflict.identity_id, o.identity.id);
    assert_eq!(conflict.user_id.as_deref(), Some("user-b"));
    let uu = identity::resolve(store, &u.identity.id)
        .await
        .unwrap()
        .unwrap();
    let oo = identity::resolve(store, &o.identity.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        uu.user_id.as_deref(),
        Some("user-a"),
        "nothing merged silently"
    );
    assert_eq!(oo.user_id.as_deref(), Some("user-b"));
    assert!(oo.merged_into.is_none());
    assert!(uu.conflict.is_some() && oo.conflict.is_some());
    // The provider resolves it (unbinds the old one): the next sign-in merges.
    identity::unbind(store, &o.identity.id).await.unwrap();
    let r = identity::record(store, &sighting(MP1, "o-erin-mp", Some("u-erin")))
        .await
        .unwrap();
    assert!(r.conflict.is_none());
    assert_eq!(r.identity.user_id.as_deref(), Some("user-a"));
    assert!(r.identity.apps.contains_key(MP1) && r.identity.apps.contains_key(OA2));
}

#[tokio::test]
async fn fifty_concurrent_first_logins_make_one_identity_and_one_new_user() {
    let stack = Stack::start().await;
    let store = stack.store.clone();
    let runs = (0..50).map(|i| {
        let store = store.clone();
        tokio::spawn(async move {
            let appid = if i % 2 == 0 { MP1 } else { OA1 };
            let openid = format!("o-fay-{appid}");
            identity::record(&store, &sighting(appid, &openid, Some("u-fay")))
                .await
                .map(|s| (s.known_user, s.identity.id))
        })
    });
    let results: Vec<(bool, String)> = futures_util::future::join_all(runs)
        .await
        .into_iter()
        .map(|r| r.unwrap().unwrap())
        .collect();
    assert_eq!(
        results.iter().filter(|(known, _)| !known).count(),
        1,
        "exactly one known_user: false"
    );
    let ids: std::collections::BTreeSet<_> = results.iter().map(|(_, id)| id.clone()).collect();
    assert_eq!(ids.len(), 1, "one identity");
    assert_eq!(count(&stack, "IDENTITY#").await, 1);
    let one = identity::resolve(&store, ids.iter().next().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(one.apps.len(), 2);
}
