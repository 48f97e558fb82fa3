//! `GET /status` (the status function) against moto: what `wxopen status` reads.

use std::collections::HashMap;

use lambda_http::Body;
use secrecy::SecretString;
use serde_json::{Value, json};
use wxopen::clock::FixedClock;
use wxopen::model::{
    AuthorizationGrant, JobState, NewToken, StoredTicket, TargetState, TargetUpdate, TokenKey,
};
use wxopen::store::outbox::{EventRecordStore, OutboxEntry};
use wxopen::store::{AuthorizerStore, DynamoStore, ReleaseStore, TicketStore, TokenStore};
use wxopen_tests::*;

use crate::common::put_release_job;

const NOW: i64 = 1_763_856_000;
/// The stall window the handler is given (the engine's audit-poll delay, 6 h by default).
const STALL: i64 = 21_600;

async fn call(store: &DynamoStore, method: &str) -> lambda_http::Response<Body> {
    let app = status::App {
        store: store.clone(),
        clock: FixedClock::new(NOW),
        stall_after_secs: STALL,
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
    assert_eq!(
        s["releases"],
        serde_json::json!({"running": 0, "cancelling": 0, "waiting_quota": 0, "stalled": 0,
                           "stall_after_seconds": STALL, "truncated": false, "jobs": []})
    );
}

#[tokio::test]
async fn status_lists_open_release_jobs_and_flags_the_stalled_and_the_quota_parked() {
    let store = fresh_store().await;
    // Moving: a target committed a minute ago.
    put_release_job(&store, "rel-moving", 3, NOW - 3600).await;
    assert!(
        store
            .transition(
                "rel-moving",
                0,
                TargetState::Queued,
                TargetState::Committed,
                &TargetUpdate::default(),
                NOW - 60,
            )
            .await
            .unwrap()
    );
    // Stalled: nothing moved for 7 h (past the 6 h window).
    put_release_job(&store, "rel-stalled", 2, NOW - 7 * 3600).await;
    // Parked on the audit quota (recorded 10 minutes ago: not stalled).
    put_release_job(&store, "rel-quota", 1, NOW - 1800).await;
    store
        .set_quota_wait("rel-quota", Some("errcode_85085"), NOW - 600)
        .await
        .unwrap();
    // Finished and cancelling jobs.
    put_release_job(&store, "rel-done", 1, NOW - 900).await;
    assert!(
        store
            .set_job_state(
                "rel-done",
                &[JobState::Running],
                JobState::Done,
                None,
                NOW - 5
            )
            .await
            .unwrap()
    );
    put_release_job(&store, "rel-cancel", 1, NOW - 300).await;
    assert!(
        store
            .set_job_state(
                "rel-cancel",
                &[JobState::Running],
                JobState::Cancelling,
                Some(false),
                NOW - 5,
            )
            .await
            .unwrap()
    );

    let r = status(&store).await["releases"].clone();
    assert_eq!(
        (
            &r["running"],
            &r["cancelling"],
            &r["waiting_quota"],
            &r["stalled"]
        ),
        (&json!(3), &json!(1), &json!(1), &json!(1)),
        "{r}"
    );
    let ids: Vec<&str> = r["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        ["rel-cancel", "rel-quota", "rel-moving", "rel-stalled"],
        "open jobs only, newest first"
    );
    let job = |id: &str| {
        r["jobs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|j| j["id"] == id)
            .unwrap()
            .clone()
    };
    assert_eq!(
        job("rel-moving"),
        json!({"id": "rel-moving", "state": "running", "created_at": NOW - 3600, "total": 3,
               "open_targets": 3, "counts": {"queued": 2, "committed": 1}, "quota_wait": null,
               "idle_seconds": 60, "stalled": false})
    );
    assert_eq!(
        (
            &job("rel-stalled")["stalled"],
            &job("rel-stalled")["idle_seconds"]
        ),
        (&json!(true), &json!(7 * 3600))
    );
    assert_eq!(
        (
            &job("rel-quota")["quota_wait"],
            &job("rel-quota")["stalled"]
        ),
        (&json!("errcode_85085"), &json!(false))
    );
    assert_eq!(job("rel-cancel")["state"], "cancelling");
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
