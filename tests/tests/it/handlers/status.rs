//! `GET /status` (the status function) against moto: what `wxopen status` reads.

use std::collections::HashMap;

use lambda_http::Body;
use secrecy::SecretString;
use serde_json::Value;
use wxopen::clock::FixedClock;
use wxopen::model::{AuthorizationGrant, NewToken, StoredTicket, TokenKey};
use wxopen::store::outbox::{EventRecordStore, OutboxEntry};
use wxopen::store::{AuthorizerStore, DynamoStore, TicketStore, TokenStore};
use wxopen_tests::*;

const NOW: i64 = 1_763_856_000;

async fn call(store: &DynamoStore, method: &str) -> lambda_http::Response<Body> {
    let app = status::App {
        store: store.clone(),
        clock: FixedClock::new(NOW),
    };
    status::handle(
        &app,
        request(method, "/status", &HashMap::new(), Body::Empty),
    )
    .await
    .expect("handlers answer Ok for every outcome")
}

async fn status(store: &DynamoStore) -> Value {
    let resp = call(store, "GET").await;
    assert_eq!(resp.status().as_u16(), 200, "{}", body_text(&resp));
    serde_json::from_str(&body_text(&resp)).expect("JSON")
}

async fn authorize(store: &DynamoStore, appid: &str) {
    store
        .record_authorization(&AuthorizationGrant {
            appid: appid.into(),
            event_time: Some(NOW - 1000),
            func_info: vec![1, 2],
            token: NewToken {
                access_token: SecretString::from(format!("at-secret-{appid}")),
                expires_at: NOW + 7200,
                refresh_token: Some(SecretString::from(format!("rt-secret-{appid}"))),
            },
            profile: None,
            now: NOW - 1000,
        })
        .await
        .expect("authorized");
}

#[tokio::test]
async fn an_empty_platform_has_no_ticket_no_token_and_nothing_waiting() {
    let store = fresh_store().await;
    let s = status(&store).await;
    assert_eq!(s["ticket"], Value::Null);
    assert_eq!(s["component_token"], Value::Null);
    assert_eq!(
        s["authorizers"],
        serde_json::json!({"authorized": 0, "unauthorized": 0, "needs_reauth": 0, "truncated": false})
    );
    assert_eq!(s["tokens_failing"]["count"], 0);
    assert_eq!(s["outbox"]["oldest_age_seconds"], Value::Null);
}

#[tokio::test]
async fn status_reports_ages_counts_failures_and_the_outbox_without_secrets() {
    let store = fresh_store().await;
    store
        .put_ticket(&StoredTicket {
            ticket: SecretString::from("ticket-secret-value".to_string()),
            create_time: NOW - 130,
            received_at: NOW - 120,
        })
        .await
        .expect("ticket");
    for a in [
        "wxstatus000000001",
        "wxstatus000000002",
        "wxstatus000000003",
    ] {
        authorize(&store, a).await;
    }
    store
        .mark_unauthorized("wxstatus000000003", NOW - 10, NOW - 10)
        .await
        .expect("unauthorized");
    // WeChat refused the refresh of one token with 61004 (the refresher's back-off records it).
    let key = TokenKey::Authorizer("wxstatus000000002".into());
    let version = store.get_token(&key).await.unwrap().unwrap().version;
    store
        .defer_refresh(&key, version, "errcode_61004", NOW - 300, NOW + 600)
        .await
        .expect("deferred");
    store
        .enqueue(&[OutboxEntry {
            id: "evt-1".into(),
            detail_type: "authorizer.message".into(),
            detail: "{}".into(),
            enqueued_at: NOW - 600,
        }])
        .await
        .expect("outbox");

    let s = status(&store).await;
    assert_eq!(s["now"], NOW);
    assert_eq!(s["ticket"]["age_seconds"], 120);
    assert_eq!(s["ticket"]["received_at"], NOW - 120);
    assert_eq!(s["authorizers"]["authorized"], 2);
    assert_eq!(s["authorizers"]["unauthorized"], 1);
    assert_eq!(s["tokens_failing"]["count"], 1);
    assert_eq!(
        s["tokens_failing"]["authorizers"][0],
        serde_json::json!({"appid": "wxstatus000000002", "failing_since": NOW - 300, "last_error": "errcode_61004"})
    );
    assert_eq!(s["outbox"]["count"], 1);
    assert_eq!(s["outbox"]["oldest_age_seconds"], 600);
    let text = s.to_string();
    for secret in ["ticket-secret-value", "at-secret", "rt-secret"] {
        assert!(!text.contains(secret), "{secret} leaked: {text}");
    }
}

#[tokio::test]
async fn status_is_read_only_and_get_only() {
    let store = fresh_store().await;
    authorize(&store, "wxstatus000000001").await;
    let before = scan_all(&store).await;
    status(&store).await;
    let resp = call(&store, "POST").await;
    assert_eq!(resp.status().as_u16(), 405);
    assert_eq!(scan_all(&store).await, before);
}
