//! Merchant authorization end to end over HTTP: sandbox (WeChat and the merchant), local
//! gateway (every function), moto (DynamoDB).

use crate::common::{MP1 as MP, OA1 as OA};
use reqwest::Method;
use secrecy::SecretString;
use serde_json::{Value, json};
use wxopen::authorization;
use wxopen::clock::Clock;
use wxopen::model::{AuthorizationKind, AuthorizerState, PendingAuthorization, TokenKey};
use wxopen::store::{AuthCodeStore, AuthorizerStore, TicketStore, TokenStore};
use wxopen::tokens::TokenError;
use wxopen::wechat::ErrorKind;
use wxopen_tests::APPID;
use wxopen_tests::stack::Stack;

async fn ready() -> Stack {
    let stack = Stack::start().await;
    stack.push_ticket().await;
    assert!(
        stack.store.get_ticket().await.unwrap().is_some(),
        "ticket stored"
    );
    stack
}

async fn authorizer(stack: &Stack, appid: &str) -> Value {
    let (status, body) = stack
        .api(Method::GET, &format!("/authorizers/{appid}"), None)
        .await;
    assert_eq!(status, 200, "{body}");
    body
}

fn permission_ids(a: &Value) -> Vec<u64> {
    a["permission_sets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_u64().unwrap())
        .collect()
}

/// The access-token route vends the authorizer's token, and its refresh token is stored.
async fn assert_token_vended_and_refresh_token_kept(stack: &Stack, appid: &str) {
    let (status, t) = stack
        .api(
            Method::GET,
            &format!("/authorizers/{appid}/access-token"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{t}");
    let stored = stack
        .store
        .get_token(&TokenKey::Authorizer(appid.into()))
        .await
        .unwrap()
        .unwrap();
    assert!(stored.refresh_token.is_some(), "refresh token kept");
}

#[tokio::test]
async fn no_ticket_means_503_everywhere_it_matters() {
    let stack = Stack::start().await;
    let (status, body) = stack
        .api(Method::GET, "/component/access-token", None)
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (503, Some("no_ticket")),
        "{body}"
    );
    let (status, body) = stack
        .api(
            Method::POST,
            "/authorize/links",
            Some(json!({"customer_ref": "c1"})),
        )
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (503, Some("no_ticket")),
        "{body}"
    );
    // The public page without a link is a 404 whatever the platform's state.
    let resp = stack
        .http
        .get(format!("{}/authorize", stack.gateway.base_url))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 404);
}

#[tokio::test]
async fn ticket_then_component_token() {
    let stack = ready().await;
    let (status, body) = stack
        .api(Method::GET, "/component/access-token", None)
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["version"], 1);
    let token = body["access_token"].as_str().unwrap().to_string();
    // A second read is served from the store: no second WeChat call.
    let (_, again) = stack
        .api(Method::GET, "/component/access-token", None)
        .await;
    assert_eq!(again["access_token"].as_str(), Some(token.as_str()));
    assert_eq!(stack.calls_to("api_component_token"), 1);
}

async fn authorize_in_order(order: &str) {
    let stack = ready().await;
    let result = stack.authorize(OA, order).await;
    let a = authorizer(&stack, OA).await;
    assert_eq!(a["state"], "authorized", "{order}: {a}");
    assert_eq!(a["type"], "official_account");
    assert_eq!(a["user_name"], "gh_oa000000000001");
    assert_eq!(permission_ids(&a), vec![1, 2, 3, 4, 6, 7, 11, 15, 24]);
    assert_eq!(
        a["permission_sets"][8]["name"],
        "open platform account management"
    );
    assert!(
        a.get("refresh_token").is_none() && !a.to_string().contains("refreshtoken"),
        "no secrets: {a}"
    );
    // Exactly one code exchange, whichever path arrived first.
    assert_eq!(stack.calls_to("api_query_auth"), 1, "{order}: {result}");
    assert_token_vended_and_refresh_token_kept(&stack, OA).await;
    // The redirect page, when the browser was redirected, says it worked.
    if let Some(body) = result["redirect"]["body"].as_str() {
        assert_eq!(result["redirect"]["status"], 200, "{result}");
        assert!(body.contains(OA), "{body}");
    }
}

#[tokio::test]
async fn authorize_push_first() {
    authorize_in_order("push_first").await;
}

#[tokio::test]
async fn authorize_redirect_first() {
    authorize_in_order("redirect_first").await;
}

#[tokio::test]
async fn authorize_push_and_redirect_at_once() {
    authorize_in_order("concurrent").await;
}

#[tokio::test]
async fn authorize_push_only_and_redirect_only() {
    authorize_in_order("push_only").await;
    authorize_in_order("redirect_only").await;
}

#[tokio::test]
async fn mini_program_is_listed_as_such() {
    let stack = ready().await;
    stack.authorize(MP, "push_first").await;
    let a = authorizer(&stack, MP).await;
    assert_eq!(a["type"], "mini_program");
    assert_eq!(
        a["permission_sets"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["id"] == 25)
            .unwrap()["name"],
        "open platform account management"
    );
    let (status, list) = stack
        .api(Method::GET, "/authorizers?state=authorized", None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(list["authorizers"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn update_cancel_and_reauthorize() {
    let stack = ready().await;
    stack.authorize(OA, "push_first").await;
    let first = stack
        .store
        .get_token(&TokenKey::Authorizer(OA.into()))
        .await
        .unwrap()
        .unwrap();

    let (status, body) = stack
        .control(
            Method::POST,
            &format!("merchants/{OA}/update"),
            json!({"func_info": [1, 2, 3]}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(permission_ids(&authorizer(&stack, OA).await), vec![1, 2, 3]);

    let (status, body) = stack
        .control(Method::POST, &format!("merchants/{OA}/cancel"), json!({}))
        .await;
    assert_eq!(status, 200, "{body}");
    let a = authorizer(&stack, OA).await;
    assert_eq!(a["state"], "unauthorized");
    let (status, t) = stack
        .api(
            Method::GET,
            &format!("/authorizers/{OA}/access-token"),
            None,
        )
        .await;
    assert_eq!(
        (status, t["error"].as_str()),
        (409, Some("authorizer_unauthorized"))
    );
    let (_, list) = stack
        .api(Method::GET, "/authorizers?state=unauthorized", None)
        .await;
    assert_eq!(list["authorizers"][0]["appid"], OA, "kept for audit");

    stack.authorize(OA, "redirect_first").await;
    let a = authorizer(&stack, OA).await;
    assert_eq!(a["state"], "authorized");
    let again = stack
        .store
        .get_token(&TokenKey::Authorizer(OA.into()))
        .await
        .unwrap()
        .unwrap();
    use secrecy::ExposeSecret;
    assert_ne!(
        again.refresh_token.unwrap().expose_secret(),
        first.refresh_token.unwrap().expose_secret(),
        "re-authorization brings a new refresh token"
    );
    let (status, _) = stack
        .api(
            Method::GET,
            &format!("/authorizers/{OA}/access-token"),
            None,
        )
        .await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn codes_are_single_use_and_errors_are_clear() {
    let stack = ready().await;
    let link = stack.authorization_link(json!({"auth_type": 1})).await;
    let (status, first) = stack
        .control(
            Method::POST,
            &format!("merchants/{OA}/authorize"),
            json!({"link": link, "order": "push_first"}),
        )
        .await;
    assert_eq!(status, 200, "{first}");
    // The same pre-auth code again: the merchant's WeChat page refuses.
    let (status, body) = stack
        .control(
            Method::POST,
            &format!("merchants/{OA}/authorize"),
            json!({"link": link}),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    // The same auth code again at the redirect: a clear failure page, never a 500.
    let code = first["auth_code"].as_str().expect("auth_code").to_string();
    let link_id = link_id_of(&link);
    let resp = stack
        .http
        .get(format!("{}/authorize/callback", stack.gateway.base_url))
        .query(&[
            ("link", link_id.as_str()),
            ("auth_code", code.as_str()),
            ("expires_in", "3600"),
        ])
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let page = resp.text().await.unwrap();
    // Already exchanged by this platform: the claim says done, so the page reports success.
    assert_eq!(status, 200, "{page}");
    // A code WeChat never issued, on a live link: WeChat refuses it, a failure page.
    let live = link_id_of(&stack.authorization_link(json!({})).await);
    let resp = stack
        .http
        .get(format!(
            "{}/authorize/callback?link={live}&auth_code=queryauthcode@@@forged&expires_in=3600",
            stack.gateway.base_url
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 400);
    assert!(
        resp.text()
            .await
            .unwrap()
            .contains("already used or has expired")
    );
    // A forged code on the used link: refused without a WeChat call.
    let before = stack.calls_to("api_query_auth");
    let resp = stack
        .http
        .get(format!(
            "{}/authorize/callback?link={link_id}&auth_code=queryauthcode@@@forged2&expires_in=3600",
            stack.gateway.base_url
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 400);
    assert!(resp.text().await.unwrap().contains("already used"));
    assert_eq!(stack.calls_to("api_query_auth"), before);
    let resp = stack
        .http
        .get(format!("{}/authorize/callback", stack.gateway.base_url))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 400);
    // A mini program cannot use an official-account-only link.
    let link = stack
        .authorization_link(json!({"auth_type": "official_account"}))
        .await;
    let (status, _) = stack
        .control(
            Method::POST,
            &format!("merchants/{MP}/authorize"),
            json!({"link": link}),
        )
        .await;
    assert_eq!(status, 400);
}

/// A merchant authorizes, the platform's callback exchanges the code and is cut off before it
/// records anything (here: the test spends the code itself, and leaves the pending item the
/// push handler had stored). The next attempt gets 40163; wxopen completes the authorization
/// from `api_get_authorizer_list` instead of dropping it.
async fn spend_code_and_leave_pending(stack: &Stack, appid: &str) -> PendingAuthorization {
    let result = stack.authorize(appid, "none").await;
    let code = SecretString::from(result["auth_code"].as_str().expect("auth_code"));
    let component = stack.deps().tokens().component_token(None).await.unwrap();
    stack
        .wechat
        .query_auth(&component.token, APPID, &code)
        .await
        .expect("the cut-off callback's exchange");
    leave_pending(stack, appid, code).await
}

/// Stores the pending item an `authorized` push for `code` would have left (no link named).
pub(crate) async fn leave_pending(
    stack: &Stack,
    appid: &str,
    code: SecretString,
) -> PendingAuthorization {
    let now = stack.deps().clock.now();
    let pending = PendingAuthorization {
        authorizer_appid: appid.to_string(),
        kind: AuthorizationKind::Authorized,
        authorization_code: code,
        create_time: now,
        code_expires_at: Some(now + 3600),
        received_at: now,
        pre_auth_digest: None,
    };
    stack
        .store
        .put_pending_authorization(&pending)
        .await
        .unwrap();
    pending
}

async fn pending_count(stack: &Stack) -> usize {
    stack
        .store
        .list_pending_authorizations()
        .await
        .unwrap()
        .len()
}

#[tokio::test]
async fn a_spent_code_is_completed_from_the_authorizer_list() {
    let stack = ready().await;
    let pending = spend_code_and_leave_pending(&stack, OA).await;
    let exchange = authorization::complete_pending(&stack.deps().tokens(), &pending)
        .await
        .expect("recovered");
    assert_eq!(exchange.authorizer_appid(), OA);
    assert_eq!(stack.calls_to("api_query_auth"), 2, "spent, then 40163");
    assert!(stack.calls_to("api_get_authorizer_list") >= 1);
    let a = authorizer(&stack, OA).await;
    assert_eq!(a["state"], "authorized", "{a}");
    assert_eq!(permission_ids(&a), vec![1, 2, 3, 4, 6, 7, 11, 15, 24]);
    assert_eq!(a["user_name"], "gh_oa000000000001");
    assert_eq!(pending_count(&stack).await, 0, "pending item removed");
    // Its push named no link (no PreAuthCode): recorded, with no customer.
    assert!(a["customer_ref"].is_null(), "{a}");
    assert_token_vended_and_refresh_token_kept(&stack, OA).await;
}

#[tokio::test]
async fn a_spent_code_for_a_cancelled_authorization_is_dropped() {
    let stack = ready().await;
    let pending = spend_code_and_leave_pending(&stack, MP).await;
    let (status, body) = stack
        .control(Method::POST, &format!("merchants/{MP}/cancel"), json!({}))
        .await;
    assert_eq!(status, 200, "{body}");
    let err = authorization::complete_pending(&stack.deps().tokens(), &pending)
        .await
        .expect_err("nothing to complete");
    assert!(
        matches!(&err, TokenError::WeChat(e) if e.kind() == Some(ErrorKind::InvalidCode)),
        "{err}"
    );
    assert_eq!(pending_count(&stack).await, 0, "pending item dropped");
    let a = stack.store.get_authorizer(MP).await.unwrap();
    assert!(
        a.is_none_or(|a| a.state != AuthorizerState::Authorized),
        "never recorded as authorized"
    );
}

/// The link id inside a pc_url/mobile_url (its redirect_uri's `link`).
pub(crate) fn link_id_of(url: &str) -> String {
    let u = url::Url::parse(url).unwrap();
    let redirect = u
        .query_pairs()
        .find(|(k, _)| k == "redirect_uri")
        .map(|(_, v)| v.to_string())
        .unwrap();
    url::Url::parse(&redirect)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "link")
        .map(|(_, v)| v.to_string())
        .unwrap()
}

#[tokio::test]
async fn bad_link_options_are_400() {
    let stack = ready().await;
    for body in [
        json!({"customer_ref": "c", "auth_type": 9}),
        json!({"customer_ref": "c", "biz_appid": 12}),
        json!({"customer_ref": "c", "category_id_list": "a|b"}),
        json!({"customer_ref": ""}),
        json!({"customer_ref": "x".repeat(129)}),
        json!({"customer_ref": "c", "return_to": "https://evil.example/onboarded"}),
        json!({"customer_ref": "c", "return_to": "https://provider.example/elsewhere"}),
        json!({"customer_ref": "c", "return_to": "https://provider.example.evil/onboarded"}),
        json!({"auth_type": 1}),
        json!([1]),
    ] {
        let (status, b) = stack
            .api(Method::POST, "/authorize/links", Some(body.clone()))
            .await;
        assert_eq!(status, 400, "{body}: {b}");
    }
    let resp = stack
        .http
        .post(format!("{}/authorize/links", stack.gateway.base_url))
        .header("content-type", "text/plain")
        .body("auth_type=1")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 415);
    // The link's page carries both links, built from the link's pre-auth code.
    let created = stack
        .create_link(
            json!({"auth_type": 2, "return_to": "https://provider.example/onboarded/done"}),
        )
        .await;
    let resp = stack
        .http
        .get(created["page_url"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(resp.headers()["cache-control"], "no-store");
    assert_eq!(resp.headers()["x-frame-options"], "DENY");
    assert!(
        resp.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("frame-ancestors 'none'")
    );
    let html = resp.text().await.unwrap();
    assert!(
        html.contains("id=\"authorize-pc\"")
            && html.contains("componentloginpage")
            && html.contains("bindcomponent")
    );
    assert!(html.contains("auth_type=2"));
}

/// Fault: "newest wins" compared WeChat's `CreateTime` with the callback's local clock, so with
/// the local clock ahead of WeChat's, the merchant's cancellation after a redirect-first
/// authorization was dropped as "superseded". Now a redirect never writes local time into the
/// comparison.
#[tokio::test]
async fn a_cancellation_is_never_superseded_by_the_redirects_local_time() {
    let stack = ready().await;
    // WeChat's clock runs 200 s behind ours (inside the push timestamp window).
    stack.sandbox.advance_clock(-200);
    stack.authorize(OA, "redirect_first").await;
    assert_eq!(authorizer(&stack, OA).await["state"], "authorized");
    let (status, body) = stack
        .control(Method::POST, &format!("merchants/{OA}/cancel"), json!({}))
        .await;
    assert_eq!(status, 200, "{body}");
    let a = authorizer(&stack, OA).await;
    assert_eq!(a["state"], "unauthorized", "{a}");
    // And an authorization after it (push first, WeChat's clock) is applied again.
    stack.authorize(OA, "push_first").await;
    assert_eq!(authorizer(&stack, OA).await["state"], "authorized");
}

/// `api_get_authorizer_info` fails while the merchant authorizes: the authorizer is recorded
/// with its tokens but no profile, the features that need its kind answer 503 `profile_pending`
/// (never a false 403/409), and the scheduled run reads the profile, after which they work.
#[tokio::test]
async fn a_profile_missing_at_authorization_is_filled_by_the_refresher() {
    let stack = ready().await;
    let (s, _) = stack
        .control(
            Method::POST,
            "faults",
            json!({ "api": "api_get_authorizer_info", "count": 10, "errcode": -1 }),
        )
        .await;
    assert_eq!(s, 200);
    stack.authorize(MP, "push_only").await;
    stack.control(Method::DELETE, "faults", json!({})).await;
    let record = stack.store.get_authorizer(MP).await.unwrap().unwrap();
    assert_eq!(record.state, AuthorizerState::Authorized);
    assert!(record.profile.is_none(), "recorded without a profile");
    assert_eq!(stack.store.profiles_missing(10).await.unwrap(), [MP]);

    let (s, login) = stack
        .control(
            Method::POST,
            "users/login",
            json!({ "appid": MP, "user": "dora" }),
        )
        .await;
    assert_eq!(s, 200, "{login}");
    let session = |code: Value| {
        let stack = &stack;
        async move {
            stack
                .api(
                    Method::POST,
                    &format!("/authorizers/{MP}/miniprogram/sessions"),
                    Some(json!({ "js_code": code })),
                )
                .await
        }
    };
    let (s, body) = session(login["js_code"].clone()).await;
    assert_eq!(
        (s, body["error"].as_str()),
        (503, Some("profile_pending")),
        "{body}"
    );
    let (s, body) = stack
        .api(
            Method::POST,
            &format!("/authorizers/{MP}/open-account"),
            None,
        )
        .await;
    assert_eq!(
        (s, body["error"].as_str()),
        (503, Some("profile_pending")),
        "{body}"
    );
    assert_eq!(
        stack.calls_to("open/create"),
        0,
        "no WeChat call before the kind is known"
    );

    let refresher = stack.scheduled_run(Default::default());
    let report = token_refresh::run(&refresher).await;
    assert_eq!(report.profiles_filled, 1, "{report:?}");
    let record = stack.store.get_authorizer(MP).await.unwrap().unwrap();
    assert_eq!(
        record.profile.map(|p| p.kind),
        Some(wxopen::model::AccountKind::MiniProgram)
    );
    assert!(stack.store.profiles_missing(10).await.unwrap().is_empty());
    assert_eq!(authorizer(&stack, MP).await["type"], "mini_program");
    let (s, body) = session(login["js_code"].clone()).await;
    assert_eq!(s, 200, "{body}");
    // A second run has nothing left to read.
    assert_eq!(token_refresh::run(&refresher).await.profiles_filled, 0);
}

/// The refresher starts no refresh whose lease would outlive the invocation: with the deadline
/// closer than a lease, every due token is left for the next run and WeChat is not called.
#[tokio::test]
async fn the_refresher_starts_no_refresh_it_cannot_finish_before_its_deadline() {
    let stack = ready().await;
    stack.authorize(OA, "push_only").await;
    let due = stack
        .store
        .get_token(&TokenKey::Authorizer(OA.into()))
        .await
        .unwrap()
        .unwrap();
    let refresher = stack.scheduled_run_with_clock(
        wxopen::clock::FixedClock::new(due.expires_at),
        Default::default(),
    );
    let calls = stack.calls_to("api_authorizer_token");
    let soon = std::time::SystemTime::now() + std::time::Duration::from_secs(2);
    let report = token_refresh::run_with(&refresher, &refresher.settings.until(soon)).await;
    assert_eq!(
        (report.refreshed, report.deferred_for_deadline),
        (0, 1),
        "{report:?}"
    );
    assert_eq!(stack.calls_to("api_authorizer_token"), calls);
    // Without the deadline the same token is refreshed.
    let report = token_refresh::run(&refresher).await;
    assert_eq!(report.refreshed, 1, "{report:?}");
    assert_eq!(stack.calls_to("api_authorizer_token"), calls + 1);
}
