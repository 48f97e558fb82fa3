//! Fast registration end to end (gateway, functions, moto, sandbox): an enterprise registration
//! the legal person confirms becomes an authorizer of the provider's customer, whichever of the
//! notice and an `authorized` push comes first, and a repeated push changes nothing; each
//! failure status ends in its explained state; the official-account route registers through the
//! admin's ticket.

use std::collections::BTreeMap;

use crate::common::OA1 as OA;
use reqwest::Method;
use serde_json::{Value, json};
use wxopen_tests::stack::Stack;
use wxopen_tests::{SignedPush, authorized_xml, scan_all};

async fn ready() -> Stack {
    let stack = Stack::start().await;
    stack.push_ticket().await;
    stack
}

/// A valid unified social credit code, different for each `n`.
fn credit_code(n: u32) -> String {
    wxopen::registration::with_check_char(&format!("91350100M{n:08}")).unwrap()
}

async fn register(stack: &Stack, body: Value) -> Value {
    let (status, created) = stack
        .api(Method::POST, "/fast-registrations", Some(body))
        .await;
    assert_eq!(status, 201, "{created}");
    created
}

async fn enterprise(stack: &Stack, n: u32, customer: &str) -> Value {
    register(
        stack,
        json!({
            "name": format!("Acme {n} Ltd"),
            "code": credit_code(n),
            "component_phone": "13800138000",
            "customer_ref": customer,
        }),
    )
    .await
}

async fn get(stack: &Stack, path: &str) -> Value {
    let (status, body) = stack.api(Method::GET, path, None).await;
    assert_eq!(status, 200, "{path}: {body}");
    body
}

async fn taskid(stack: &Stack, created: &Value) -> String {
    let tasks = stack
        .control(Method::GET, "fast-registrations", json!({}))
        .await
        .1;
    let code = created["code"].as_str().unwrap();
    tasks
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["code"] == code)
        .unwrap_or_else(|| panic!("a sandbox task for {code}: {tasks}"))["taskid"]
        .as_str()
        .unwrap()
        .to_string()
}

/// The table without the push records of events (each push, even a duplicate one, is recorded
/// once by its id): what a push may change.
async fn state_items(stack: &Stack) -> BTreeMap<(String, String), String> {
    scan_all(&stack.store)
        .await
        .into_iter()
        .filter(|((pk, _), _)| !pk.starts_with("EVENT#") && !pk.starts_with("OUTBOX"))
        .collect()
}

fn events_of<'a>(events: &'a [Value], detail_type: &str) -> Vec<&'a Value> {
    events
        .iter()
        .filter(|e| e["detail-type"] == detail_type)
        .collect()
}

#[tokio::test]
async fn an_enterprise_registration_becomes_an_authorizer_of_its_customer() {
    let stack = ready().await;
    let created = enterprise(&stack, 1, "cust-fast-1").await;
    let id = created["id"].as_str().unwrap();
    assert_eq!(id.len(), 32, "{created}");
    assert_eq!(created["state"], "pending");
    assert_eq!(created["kind"], "enterprise");
    assert!(
        created["authorize_url"]
            .as_str()
            .unwrap()
            .starts_with("https://")
    );
    assert!(
        created["qr_code"]
            .as_str()
            .unwrap()
            .starts_with("data:image/png;base64,iVBORw0KGgo"),
        "a PNG data URL"
    );
    assert_eq!(
        created["component_phone"], "138****8000",
        "the phone is masked"
    );
    let expires = created["expires_at"].as_i64().unwrap() - created["created_at"].as_i64().unwrap();
    assert_eq!(expires, 86_400);
    assert_eq!(
        get(&stack, &format!("/fast-registrations/{id}")).await["state"],
        "pending"
    );

    let task = taskid(&stack, &created).await;
    let queries_before = stack.calls_to("api_query_auth");
    let (s, confirmed) = stack
        .control(
            Method::POST,
            &format!("fast-registrations/{task}/confirm"),
            json!({}),
        )
        .await;
    assert_eq!(s, 200, "{confirmed}");
    assert_eq!(confirmed["push"]["delivered"], true, "{confirmed}");
    let appid = confirmed["appid"].as_str().unwrap().to_string();
    assert_eq!(stack.calls_to("api_query_auth"), queries_before + 1);

    let r = get(&stack, &format!("/fast-registrations/{id}")).await;
    assert_eq!(
        (r["state"].as_str(), r["appid"].as_str()),
        (Some("succeeded"), Some(appid.as_str())),
        "{r}"
    );
    let mine = get(&stack, "/authorizers?customer_ref=cust-fast-1").await;
    let found: Vec<&str> = mine["authorizers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["appid"].as_str().unwrap())
        .collect();
    assert_eq!(found, vec![appid.as_str()], "{mine}");
    let a = get(&stack, &format!("/authorizers/{appid}")).await;
    assert_eq!(
        (a["state"].as_str(), a["type"].as_str()),
        (Some("authorized"), Some("mini_program")),
        "{a}"
    );
    let (s, t) = stack
        .api(
            Method::GET,
            &format!("/authorizers/{appid}/access-token"),
            None,
        )
        .await;
    assert_eq!(s, 200, "the refresh token is stored, the token usable: {t}");

    let events = stack.bus.drain_all().await.unwrap();
    let changed = events_of(&events, "registration.changed");
    assert_eq!(changed.len(), 1, "{events:?}");
    let d = &changed[0]["detail"];
    assert_eq!(
        (
            d["appid"].as_str(),
            d["event"].as_str(),
            d["customer_ref"].as_str()
        ),
        (Some(appid.as_str()), Some("succeeded"), Some("cust-fast-1")),
        "{d}"
    );
    assert_eq!(d["fields"]["registration_id"], id);
    let auth = events_of(&events, "authorization.changed");
    assert_eq!(auth.len(), 1, "{events:?}");
    assert_eq!(auth[0]["detail"]["customer_ref"], "cust-fast-1");
    assert_eq!(events_of(&events, "component.event").len(), 1);
    let code = confirmed["auth_code"].as_str().unwrap();
    let all = serde_json::to_string(&events).unwrap();
    assert!(
        !all.contains(code) && !all.contains("auth_code"),
        "no auth code: {all}"
    );
    // WeChat's push carries the contact phone (component.event keeps every field); wxopen's
    // own event does not.
    assert!(!d.to_string().contains("13800138000"), "{d}");

    // WeChat also pushes `authorized` for the new mini program, with the same code: nothing
    // changes (the code is claimed once; the authorizer keeps its customer and tokens).
    let before = state_items(&stack).await;
    let now = wxopen::clock::Clock::now(&wxopen::clock::SystemClock);
    let push = SignedPush::component(
        &authorized_xml("authorized", &appid, code, now),
        now,
        "dup1",
    );
    let resp = stack
        .http
        .post(format!("{}/wechat/component", stack.gateway.base_url))
        .query(&push.query)
        .body(push.body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.text().await.unwrap(), "success");
    assert_eq!(
        state_items(&stack).await,
        before,
        "a duplicate authorized push changes nothing"
    );
    assert_eq!(
        stack.calls_to("api_query_auth"),
        queries_before + 1,
        "no second exchange"
    );
}

#[tokio::test]
async fn an_authorized_push_before_the_notice_is_the_same_registration() {
    let stack = ready().await;
    let created = enterprise(&stack, 2, "cust-fast-2").await;
    let id = created["id"].as_str().unwrap();
    let task = taskid(&stack, &created).await;
    let queries_before = stack.calls_to("api_query_auth");
    let (s, confirmed) = stack
        .control(
            Method::POST,
            &format!("fast-registrations/{task}/confirm"),
            json!({"authorized_push": "before"}),
        )
        .await;
    assert_eq!(s, 200, "{confirmed}");
    assert_eq!(confirmed["authorized_push"]["delivered"], true);
    assert_eq!(confirmed["push"]["delivered"], true);
    let appid = confirmed["appid"].as_str().unwrap();
    assert_eq!(
        stack.calls_to("api_query_auth"),
        queries_before + 1,
        "one exchange"
    );
    let r = get(&stack, &format!("/fast-registrations/{id}")).await;
    assert_eq!(r["state"], "succeeded", "{r}");
    let a = get(&stack, &format!("/authorizers/{appid}")).await;
    assert_eq!(a["customer_ref"], "cust-fast-2", "{a}");

    // The notice again (WeChat's retry after a lost answer) changes nothing either.
    let before = state_items(&stack).await;
    let (s, again) = stack
        .control(
            Method::POST,
            &format!("fast-registrations/{task}/confirm"),
            json!({}),
        )
        .await;
    assert_eq!(s, 409, "the task is done: {again}");
    assert_eq!(state_items(&stack).await, before);
}

#[tokio::test]
async fn each_failure_status_ends_in_its_explained_state() {
    let stack = ready().await;
    let cases: [(Option<i64>, i64, &str); 4] = [
        (
            Some(-1),
            -1,
            "the company name and the legal person's name do not match",
        ),
        (
            Some(103),
            103,
            "the legal representative's name does not match",
        ),
        (
            Some(1001),
            1001,
            "the subject reached its limit of mini programs",
        ),
        (
            None,
            100_003,
            "the legal person did not confirm within 24 h",
        ),
    ];
    for (n, (refusal, status, meaning)) in (10u32..).zip(cases) {
        let created = enterprise(&stack, n, "cust-fail").await;
        let id = created["id"].as_str().unwrap();
        let task = taskid(&stack, &created).await;
        let (path, body) = match refusal {
            Some(s) => (
                format!("fast-registrations/{task}/refuse"),
                json!({"status": s}),
            ),
            None => (format!("fast-registrations/{task}/timeout"), json!({})),
        };
        let (s, pushed) = stack.control(Method::POST, &path, body).await;
        assert_eq!(s, 200, "{pushed}");
        assert_eq!(pushed["push"]["delivered"], true, "{pushed}");
        let r = get(&stack, &format!("/fast-registrations/{id}")).await;
        assert_eq!(
            (
                r["state"].as_str(),
                r["wechat_status"].as_i64(),
                r["status_meaning"].as_str()
            ),
            (Some("failed"), Some(status), Some(meaning)),
            "{r}"
        );
        assert_eq!(r["appid"], Value::Null);
    }
    let events = stack.bus.drain_all().await.unwrap();
    let failed = events_of(&events, "registration.changed");
    assert_eq!(failed.len(), 4, "{events:?}");
    assert!(failed.iter().all(|e| e["detail"]["event"] == "failed"
        && e["detail"]["customer_ref"] == "cust-fail"));
    assert!(events_of(&events, "authorization.changed").is_empty());
    assert_eq!(stack.calls_to("api_query_auth"), 0);
    let mine = get(&stack, "/authorizers?customer_ref=cust-fail").await;
    assert_eq!(mine["authorizers"], json!([]), "{mine}");
}

#[tokio::test]
async fn a_registration_left_unconfirmed_shows_expired() {
    let stack = ready().await;
    let created = enterprise(&stack, 20, "cust-late").await;
    let id = created["id"].as_str().unwrap();
    // 24 h later the stored registration reads as expired (its state is derived from the time).
    let r = wxopen::store::RegistrationStore::get_registration(&stack.store, id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(r.expires_at, created["expires_at"].as_i64().unwrap());
    assert_eq!(
        wxopen::registration::state_name(&r, r.expires_at),
        "expired"
    );
    assert_eq!(
        wxopen::registration::state_name(&r, r.expires_at - 1),
        "pending"
    );
}

#[tokio::test]
async fn the_official_account_route_registers_through_the_admins_ticket() {
    let stack = ready().await;
    let (s, b) = stack
        .control(
            Method::POST,
            "merchants",
            json!({"appid": OA, "func_info": [1, 2, 3, 4, 6, 7, 11, 15, 24, 27]}),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    stack.authorize(OA, "push_only").await;
    let created = register(
        &stack,
        json!({
            "kind": "official_account",
            "oa_appid": OA,
            "name": "Acme Ltd",
            "code": credit_code(30),
            "component_phone": "13800138000",
            "customer_ref": "cust-oa",
        }),
    )
    .await;
    let id = created["id"].as_str().unwrap();
    let url = created["authorize_url"].as_str().unwrap();
    assert!(
        url.contains("/cgi-bin/fastregisterauth?appid=wxoa00000000000001&component_appid="),
        "{url}"
    );
    assert!(
        url.contains(&format!("%2Ffast-registrations%2F{id}%2Fcallback")),
        "{url}"
    );
    // Nothing was asked of WeChat yet.
    assert_eq!(stack.calls_to("account/fastregister"), 0);

    let (s, confirmed) = stack
        .control(
            Method::POST,
            "fast-registrations/oa/confirm",
            json!({"url": url}),
        )
        .await;
    assert_eq!(s, 200, "{confirmed}");
    assert_eq!(confirmed["redirect"]["status"], 200, "{confirmed}");
    assert!(
        confirmed["redirect"]["body"]
            .as_str()
            .unwrap()
            .contains("registered")
    );
    let r = get(&stack, &format!("/fast-registrations/{id}")).await;
    assert_eq!(r["state"], "succeeded", "{r}");
    let appid = r["appid"].as_str().unwrap();
    let a = get(&stack, &format!("/authorizers/{appid}")).await;
    assert_eq!(
        (a["customer_ref"].as_str(), a["state"].as_str()),
        (Some("cust-oa"), Some("authorized")),
        "{a}"
    );
    assert_eq!(stack.calls_to("account/fastregister"), 1);

    // The same browser visit again (a reload): the registration is no longer live, nothing is
    // called.
    let before = scan_all(&stack.store).await;
    let calls = stack.sandbox.calls().len();
    let again = stack
        .http
        .get(format!(
            "{}/fast-registrations/{id}/callback?ticket={}",
            stack.gateway.base_url,
            confirmed["ticket"].as_str().unwrap()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 404);
    assert_eq!(scan_all(&stack.store).await, before);
    assert_eq!(stack.sandbox.calls().len(), calls);
}

#[tokio::test]
async fn wechat_refusals_at_start_write_nothing() {
    let stack = ready().await;
    enterprise(&stack, 40, "cust-dup").await;
    let before = scan_all(&stack.store).await;
    // The same subject again while its task runs: WeChat's 89249 as a 409.
    let (s, b) = stack
        .api(
            Method::POST,
            "/fast-registrations",
            Some(json!({"name": "Acme 40 Ltd", "code": credit_code(40), "component_phone": "13800138000", "customer_ref": "cust-dup"})),
        )
        .await;
    assert_eq!(
        (s, b["error"].as_str(), b["wechat_errcode"].as_i64()),
        (409, Some("registration_running"), Some(89249)),
        "{b}"
    );
    assert_eq!(
        scan_all(&stack.store).await,
        before,
        "a refused start writes nothing"
    );
    // An official account without set 27: 403 before any WeChat call.
    stack.authorize(OA, "push_only").await;
    let before_oa = scan_all(&stack.store).await;
    let calls = stack.sandbox.calls().len();
    let (s, b) = stack
        .api(
            Method::POST,
            "/fast-registrations",
            Some(json!({"kind": "official_account", "oa_appid": OA, "name": "Acme Ltd", "code": credit_code(41), "component_phone": "13800138000", "customer_ref": "c"})),
        )
        .await;
    assert_eq!(
        (s, b["error"].as_str()),
        (403, Some("permission_not_granted")),
        "{b}"
    );
    assert_eq!(scan_all(&stack.store).await, before_oa);
    assert_eq!(stack.sandbox.calls().len(), calls);
    assert_ne!(before, before_oa);
}
