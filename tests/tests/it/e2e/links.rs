//! Authorization links end to end: each authorization tied to the provider's customer whichever
//! of the push and the redirect arrives first; the public routes cost nothing to a stranger;
//! forced token refreshes are bounded.

use crate::common::{MP1 as MP, OA1 as OA, OA2};
use reqwest::Method;
use serde_json::{Value, json};
use wxopen_tests::scan_all;
use wxopen_tests::stack::Stack;

async fn ready() -> Stack {
    let stack = Stack::start().await;
    stack.push_ticket().await;
    stack
}

async fn authorize_with(stack: &Stack, appid: &str, link: &Value, order: &str) -> Value {
    let (status, body) = stack
        .control(
            Method::POST,
            &format!("merchants/{appid}/authorize"),
            json!({"link": link["pc_url"], "order": order}),
        )
        .await;
    assert_eq!(status, 200, "authorize {appid}: {body}");
    body
}

async fn get(stack: &Stack, path: &str) -> Value {
    let (status, body) = stack.api(Method::GET, path, None).await;
    assert_eq!(status, 200, "{path}: {body}");
    body
}

fn appids(list: &Value) -> Vec<String> {
    list["authorizers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["appid"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn two_links_authorized_in_reverse_order_keep_their_customers() {
    let stack = ready().await;
    let a = stack
        .create_link(json!({"customer_ref": "customer-a"}))
        .await;
    let b = stack
        .create_link(json!({"customer_ref": "customer-b", "return_to": "https://provider.example/onboarded?step=2"}))
        .await;
    let (a_id, b_id) = (a["id"].as_str().unwrap(), b["id"].as_str().unwrap());
    assert_ne!(a_id, b_id);
    assert!(
        a["page_url"]
            .as_str()
            .unwrap()
            .ends_with(&format!("/authorize?link={a_id}"))
    );
    for l in [&a, &b] {
        let s = get(
            &stack,
            &format!("/authorize/links/{}", l["id"].as_str().unwrap()),
        )
        .await;
        assert_eq!(s["status"], "pending", "{s}");
        assert!(
            !s.to_string().contains("preauthcode"),
            "no pre-auth code: {s}"
        );
    }
    // B's merchant first, redirect before push; then A's merchant, push before redirect.
    let rb = authorize_with(&stack, MP, &b, "redirect_first").await;
    let ra = authorize_with(&stack, OA, &a, "push_first").await;
    // B has a return_to: the browser is sent there with the link id.
    assert_eq!(rb["redirect"]["status"], 302, "{rb}");
    assert_eq!(
        rb["redirect"]["location"],
        format!("https://provider.example/onboarded?step=2&link={b_id}")
    );
    assert_eq!(ra["redirect"]["status"], 200, "{ra}");
    assert_eq!(
        stack.calls_to("api_query_auth"),
        2,
        "one exchange per authorization"
    );

    let sa = get(&stack, &format!("/authorize/links/{a_id}")).await;
    let sb = get(&stack, &format!("/authorize/links/{b_id}")).await;
    assert_eq!(
        (&sa["status"], &sa["authorizer_appid"], &sa["customer_ref"]),
        (&json!("authorized"), &json!(OA), &json!("customer-a")),
        "{sa}"
    );
    assert_eq!(
        (&sb["status"], &sb["authorizer_appid"], &sb["customer_ref"]),
        (&json!("authorized"), &json!(MP), &json!("customer-b")),
        "{sb}"
    );
    assert!(
        !sa["permission_sets"].as_array().unwrap().is_empty(),
        "{sa}"
    );
    assert_eq!(
        get(&stack, &format!("/authorizers/{OA}")).await["customer_ref"],
        "customer-a"
    );
    assert_eq!(
        get(&stack, &format!("/authorizers/{MP}")).await["customer_ref"],
        "customer-b"
    );
    assert_eq!(
        appids(&get(&stack, "/authorizers?customer_ref=customer-a").await),
        vec![OA]
    );
    assert_eq!(
        appids(
            &get(
                &stack,
                "/authorizers?customer_ref=customer-b&state=authorized"
            )
            .await
        ),
        vec![MP]
    );
    assert!(appids(&get(&stack, "/authorizers?customer_ref=nobody").await).is_empty());
    // The unfiltered listing shows each authorizer's customer too (not projected by its index).
    let all = get(&stack, "/authorizers").await;
    let customers: Vec<(String, String)> = all["authorizers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["appid"].as_str().unwrap().to_string(),
                a["customer_ref"].as_str().unwrap_or("null").to_string(),
            )
        })
        .collect();
    assert!(
        customers.contains(&(OA.to_string(), "customer-a".to_string())),
        "{all}"
    );
    assert!(
        customers.contains(&(MP.to_string(), "customer-b".to_string())),
        "{all}"
    );

    // A used link's page says so and calls nothing.
    stack.sandbox.clear_calls();
    let page = stack
        .http
        .get(a["page_url"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(page.status().as_u16(), 200);
    assert!(stack.sandbox.calls().is_empty());
}

#[tokio::test]
async fn an_update_made_outside_any_link_keeps_the_customer() {
    let stack = ready().await;
    let link = stack
        .create_link(json!({"customer_ref": "customer-a"}))
        .await;
    authorize_with(&stack, OA2, &link, "push_only").await;
    assert_eq!(
        get(&stack, &format!("/authorizers/{OA2}")).await["customer_ref"],
        "customer-a"
    );
    // An updateauthorized from WeChat's side carries no PreAuthCode: recorded, customer kept.
    let (status, body) = stack
        .control(
            Method::POST,
            &format!("merchants/{OA2}/update"),
            json!({"func_info": [1, 2]}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let a = get(&stack, &format!("/authorizers/{OA2}")).await;
    assert_eq!(a["permission_sets"].as_array().unwrap().len(), 2, "{a}");
    assert_eq!(a["customer_ref"], "customer-a", "{a}");
}

/// Counts WeChat calls and compares the whole table around a flood of anonymous requests.
#[tokio::test]
async fn five_hundred_anonymous_requests_cost_nothing() {
    let stack = ready().await;
    // A live link exists (its id is secret to the merchant): strangers do not know it.
    let _live = stack
        .create_link(json!({"customer_ref": "customer-a"}))
        .await;
    let before = scan_all(&stack.store).await;
    stack.sandbox.clear_calls();
    let base = &stack.gateway.base_url;
    let paths = [
        "/authorize".to_string(),
        "/authorize?link=0123456789abcdef0123456789abcdef".to_string(),
        "/authorize?link=%3Cscript%3E".to_string(),
        "/authorize/callback?auth_code=queryauthcode@@@x&expires_in=3600".to_string(),
        "/authorize/callback?link=0123456789abcdef0123456789abcdef&auth_code=queryauthcode@@@x"
            .to_string(),
    ];
    let mut statuses = std::collections::BTreeMap::new();
    for i in 0..500 {
        let path = &paths[i % paths.len()];
        let resp = stack
            .http
            .get(format!("{base}{path}"))
            .send()
            .await
            .unwrap();
        *statuses
            .entry((path.clone(), resp.status().as_u16()))
            .or_insert(0) += 1;
    }
    let calls = stack.sandbox.calls();
    assert!(
        calls.is_empty(),
        "WeChat called: {:?}",
        calls.iter().map(|c| &c.api).collect::<Vec<_>>()
    );
    assert_eq!(scan_all(&stack.store).await, before, "the table changed");
    for ((path, status), count) in &statuses {
        assert!(
            (path.starts_with("/authorize?") || path == "/authorize") && *status == 404
                || path.starts_with("/authorize/callback") && *status == 400,
            "{path}: {status} x{count}"
        );
    }
}

#[tokio::test]
async fn forced_refreshes_are_bounded() {
    let stack = ready().await;
    stack.authorize(OA, "push_first").await;
    let path = format!("/authorizers/{OA}/access-token");
    let current = get(&stack, &path).await;
    let version = current["version"].as_u64().unwrap();
    let token_calls =
        |s: &Stack| s.calls_to("api_authorizer_token") + s.calls_to("api_component_token");
    let before = token_calls(&stack);
    for _ in 0..100 {
        let (status, body) = stack
            .api(Method::GET, &format!("{path}?stale_version=999999"), None)
            .await;
        assert_eq!(
            (status, body["error"].as_str()),
            (400, Some("invalid_parameter")),
            "{body}"
        );
    }
    assert_eq!(
        token_calls(&stack),
        before,
        "a version from the future refreshes nothing"
    );
    // 100 callers all saying the current version is stale, in parallel: at most one refresh.
    let stale = format!("{path}?stale_version={version}");
    let calls = (0..100).map(|_| stack.api(Method::GET, &stale, None));
    for (status, body) in futures_util::future::join_all(calls).await {
        assert_eq!(status, 200, "{body}");
    }
    assert!(
        token_calls(&stack) - before <= 1,
        "{} token calls",
        token_calls(&stack) - before
    );
}

/// The page reuses the link's pre-auth code: 50 views at once, one `api_create_preauthcode`
/// (the one `POST /authorize/links` made), and every page offers the same code.
#[tokio::test]
async fn page_views_reuse_the_links_pre_auth_code() {
    let stack = ready().await;
    let link = stack
        .create_link(json!({"customer_ref": "customer-a"}))
        .await;
    assert_eq!(stack.calls_to("api_create_preauthcode"), 1);
    let url = link["page_url"].as_str().unwrap();
    let views = (0..50).map(|_| async {
        let resp = stack.http.get(url).send().await.unwrap();
        assert_eq!(resp.status().as_u16(), 200);
        resp.text().await.unwrap()
    });
    let pages = futures_util::future::join_all(views).await;
    assert_eq!(stack.calls_to("api_create_preauthcode"), 1);
    let code = |html: &str| {
        html.split("pre_auth_code=")
            .nth(1)
            .and_then(|r| r.split('&').next())
            .unwrap()
            .to_string()
    };
    let first = code(&pages[0]);
    assert!(pages.iter().all(|p| code(p) == first));
    assert!(link["pc_url"].as_str().unwrap().contains(&first));
}
