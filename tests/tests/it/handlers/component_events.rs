//! `POST /wechat/component` against moto: DynamoDB store and Secrets Manager credentials.

use std::collections::HashMap;
use std::time::Duration;

use component_events::{App, handle};
use lambda_http::Body;
use secrecy::ExposeSecret;
use wxopen::app::Deps;
use wxopen::clock::FixedClock;
use wxopen::model::AuthorizerState;
use wxopen::secrets::{CachedCredentials, SecretsManagerSource};
use wxopen::store::{AuthCodeStore, AuthorizerStore, DynamoStore, TicketStore};
use wxopen_tests::*;

const NOW: i64 = 1_763_856_000;

type TestApp = App<DynamoStore, CachedCredentials<SecretsManagerSource>, FixedClock>;

async fn app_with_secret(json: &str) -> TestApp {
    let (sm, arn) = fresh_secret(json).await;
    App {
        deps: Deps {
            store: fresh_store().await,
            credentials: CachedCredentials::new(
                SecretsManagerSource::new(sm, arn),
                Duration::from_secs(60),
            ),
            clock: FixedClock::new(NOW),
            // Nothing listens there: authorization completion fails fast and stays pending.
            wechat: unreachable_wechat(),
            tuning: Default::default(),
        },
        push_window: Duration::from_secs(300),
        completion_budget: Duration::from_secs(1),
        publisher: default_bus_publisher().await,
        metrics: wxopen::events::metrics::MetricSink::memory(),
    }
}

async fn app() -> TestApp {
    app_with_secret(&credentials_json()).await
}

async fn send(app: &TestApp, req: lambda_http::Request) -> (u16, String) {
    let resp = handle(app, req)
        .await
        .expect("handlers answer Ok for every outcome");
    (resp.status().as_u16(), body_text(&resp))
}

#[tokio::test]
async fn ticket_push_is_stored_and_answered_success() {
    let app = app().await;
    let push = SignedPush::component(&ticket_xml("ticket@@@one", NOW - 5), NOW, "nonce-1");
    assert_eq!(
        send(&app, push.request()).await,
        (200, "success".to_string())
    );
    let stored = app
        .deps
        .store
        .get_ticket()
        .await
        .unwrap()
        .expect("ticket stored");
    assert_eq!(stored.ticket.expose_secret(), "ticket@@@one");
    assert_eq!((stored.create_time, stored.received_at), (NOW - 5, NOW));
    // Newest-wins is idempotent: the ticket needs no dedupe record (and is no event).
    let items = scan_all(&app.deps.store).await;
    assert_eq!(
        items
            .keys()
            .map(|(pk, sk)| (pk.as_str(), sk.as_str()))
            .collect::<Vec<_>>(),
        vec![("COMPONENT", "TICKET")],
        "only the ticket: {items:?}"
    );
}

#[tokio::test]
async fn same_push_three_times_stores_once() {
    let app = app().await;
    let push = SignedPush::component(&ticket_xml("ticket@@@dup", NOW), NOW, "nonce-dup");
    assert_eq!(send(&app, push.request()).await.0, 200);
    let after_first = scan_all(&app.deps.store).await;
    assert_eq!(
        after_first.len(),
        1,
        "one ticket, no record: {after_first:?}"
    );
    for _ in 0..2 {
        assert_eq!(
            send(&app, push.request()).await,
            (200, "success".to_string())
        );
    }
    assert_eq!(
        scan_all(&app.deps.store).await,
        after_first,
        "retries change nothing"
    );
}

#[tokio::test]
async fn older_ticket_after_newer_changes_nothing() {
    let app = app().await;
    let newer = SignedPush::component(&ticket_xml("ticket@@@new", NOW - 10), NOW, "n-new");
    let older = SignedPush::component(&ticket_xml("ticket@@@old", NOW - 700), NOW, "n-old");
    assert_eq!(send(&app, newer.request()).await.0, 200);
    assert_eq!(
        send(&app, older.request()).await,
        (200, "success".to_string())
    );
    let stored = app.deps.store.get_ticket().await.unwrap().unwrap();
    assert_eq!(stored.ticket.expose_secret(), "ticket@@@new");
    assert_eq!(stored.create_time, NOW - 10);
}

#[tokio::test]
async fn authorization_events_are_recorded() {
    let app = app().await;
    let auth = SignedPush::component(
        &authorized_xml("authorized", "wxauthorizer01", "code@@@1", NOW - 3),
        NOW,
        "a1",
    );
    assert_eq!(
        send(&app, auth.request()).await,
        (200, "success".to_string())
    );
    let pending = app.deps.store.list_pending_authorizations().await.unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].authorizer_appid, "wxauthorizer01");
    assert_eq!(pending[0].authorization_code.expose_secret(), "code@@@1");

    let update = SignedPush::component(
        &authorized_xml("updateauthorized", "wxauthorizer01", "code@@@2", NOW - 2),
        NOW,
        "a2",
    );
    assert_eq!(send(&app, update.request()).await.0, 200);
    let pending = app.deps.store.list_pending_authorizations().await.unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].authorization_code.expose_secret(), "code@@@2");

    let cancel = SignedPush::component(&unauthorized_xml("wxauthorizer01", NOW - 1), NOW, "a3");
    assert_eq!(
        send(&app, cancel.request()).await,
        (200, "success".to_string())
    );
    let rec = app
        .deps
        .store
        .get_authorizer("wxauthorizer01")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(rec.state, AuthorizerState::Unauthorized);
    assert!(
        app.deps
            .store
            .list_pending_authorizations()
            .await
            .unwrap()
            .is_empty(),
        "cancelled before completion"
    );
}

#[tokio::test]
async fn unknown_info_type_and_fast_register_are_accepted() {
    let app = app().await;
    let other = format!(
        "<xml><AppId>{APPID}</AppId><CreateTime>{NOW}</CreateTime><InfoType>notify_third_fastverifybetaapp</InfoType><info><unique_id>1</unique_id></info></xml>"
    );
    let fast = format!(
        "<xml><AppId>{APPID}</AppId><CreateTime>{NOW}</CreateTime><InfoType>notify_third_fasteregister</InfoType><appid>wxnew</appid><status>0</status><auth_code>c</auth_code><msg>OK</msg><info><name>n</name></info></xml>"
    );
    for (i, xml) in [other, fast].iter().enumerate() {
        let push = SignedPush::component(xml, NOW, &format!("o{i}"));
        assert_eq!(
            send(&app, push.request()).await,
            (200, "success".to_string())
        );
    }
    let items = scan_all(&app.deps.store).await;
    assert!(
        items.len() == 2 && items.keys().all(|(pk, _)| pk.starts_with("EVENT#")),
        "only the two event records: {items:?}"
    );
}

fn error_code(body: &str) -> String {
    let v: serde_json::Value =
        serde_json::from_str(body).unwrap_or_else(|_| panic!("JSON error body, got {body:?}"));
    assert!(
        v["message"].as_str().is_some_and(|m| !m.is_empty()),
        "message present: {v}"
    );
    v["error"].as_str().unwrap_or_default().to_string()
}

#[tokio::test]
async fn bad_input_gets_its_4xx_and_changes_nothing() {
    let app = app().await;
    // A stored ticket, so "unchanged" is checked against a non-empty table.
    let seed = SignedPush::component(&ticket_xml("ticket@@@seed", NOW - 100), NOW, "seed");
    assert_eq!(send(&app, seed.request()).await.0, 200);
    let before = scan_all(&app.deps.store).await;

    let good = SignedPush::component(&ticket_xml("ticket@@@evil", NOW), NOW, "n-bad");
    let with = |f: &dyn Fn(&mut HashMap<String, String>)| {
        let mut q = good.query.clone();
        f(&mut q);
        q
    };
    let post =
        |q: &HashMap<String, String>, body: Body| request("POST", "/wechat/component", q, body);
    let stale = SignedPush::component(
        &ticket_xml("ticket@@@stale", NOW - 1000),
        NOW - 1000,
        "n-stale",
    );
    let wrong_appid = SignedPush::new(
        &ticket_xml("ticket@@@other", NOW),
        "wxsomeoneelse00000",
        NOW,
        "n-w",
    );
    let inner_appid = SignedPush::component(
        &ticket_xml("x", NOW).replace(APPID, "wxsomeoneelse00000"),
        NOW,
        "n-i",
    );
    let doctype = format!("<!DOCTYPE xml [<!ENTITY e \"x\">]>{}", good.body);
    let doctype_q = {
        // Signed correctly, so only the DOCTYPE rule can reject it.
        good.query.clone()
    };
    let missing_field = SignedPush::component(
        &format!(
            "<xml><AppId>{APPID}</AppId><CreateTime>{NOW}</CreateTime><InfoType>component_verify_ticket</InfoType></xml>"
        ),
        NOW,
        "n-mf",
    );

    let cases: Vec<(&str, lambda_http::Request, u16, &str)> = vec![
        (
            "bad signature",
            post(
                &with(&|q| {
                    q.insert("msg_signature".into(), "0".repeat(40));
                }),
                Body::from(good.body.clone()),
            ),
            401,
            "invalid_signature",
        ),
        ("stale timestamp", stale.request(), 401, "stale_timestamp"),
        (
            "oversized body",
            post(&good.query, Body::from("x".repeat(64 * 1024 + 1))),
            413,
            "body_too_large",
        ),
        (
            "malformed XML",
            post(&good.query, Body::from("<xml><Encrypt>abc</Encrypt>")),
            400,
            "malformed_xml",
        ),
        (
            "DOCTYPE",
            post(&doctype_q, Body::from(doctype)),
            400,
            "forbidden_xml",
        ),
        ("wrong appid", wrong_appid.request(), 401, "wrong_appid"),
        (
            "wrong appid inside",
            inner_appid.request(),
            401,
            "wrong_appid",
        ),
        (
            "empty body",
            post(&good.query, Body::Empty),
            400,
            "empty_body",
        ),
        (
            "missing timestamp",
            post(
                &with(&|q| {
                    q.remove("timestamp");
                }),
                Body::from(good.body.clone()),
            ),
            400,
            "missing_parameter",
        ),
        (
            "missing nonce",
            post(
                &with(&|q| {
                    q.remove("nonce");
                }),
                Body::from(good.body.clone()),
            ),
            400,
            "missing_parameter",
        ),
        (
            "missing msg_signature",
            post(
                &with(&|q| {
                    q.remove("msg_signature");
                }),
                Body::from(good.body.clone()),
            ),
            400,
            "missing_parameter",
        ),
        (
            "no query at all",
            post(&HashMap::new(), Body::from(good.body.clone())),
            400,
            "missing_parameter",
        ),
        (
            "non-numeric timestamp",
            post(
                &with(&|q| {
                    q.insert("timestamp".into(), "now".into());
                }),
                Body::from(good.body.clone()),
            ),
            400,
            "invalid_parameter",
        ),
        (
            "plain-text mode",
            post(
                &with(&|q| {
                    q.insert("encrypt_type".into(), "raw".into());
                }),
                Body::from(good.body.clone()),
            ),
            400,
            "invalid_parameter",
        ),
        (
            "non-UTF-8 body",
            post(&good.query, Body::Binary(vec![0xff, 0xfe, 0x00])),
            400,
            "malformed_xml",
        ),
        (
            "envelope without Encrypt",
            post(
                &good.query,
                Body::from(format!("<xml><AppId>{APPID}</AppId></xml>")),
            ),
            400,
            "missing_field",
        ),
        (
            "missing push field",
            missing_field.request(),
            400,
            "missing_field",
        ),
        (
            "wrong method",
            request("GET", "/wechat/component", &good.query, Body::Empty),
            405,
            "method_not_allowed",
        ),
    ];
    for (name, req, status, code) in cases {
        let (got_status, body) = send(&app, req).await;
        assert_eq!(got_status, status, "{name}: {body}");
        assert_eq!(error_code(&body), code, "{name}");
        assert!(!body.contains("ticket@@@"), "{name}: no secret in the body");
    }
    assert_eq!(
        scan_all(&app.deps.store).await,
        before,
        "bad input stored nothing"
    );
}

#[tokio::test]
async fn tampered_ciphertext_is_rejected_as_undecryptable() {
    let app = app().await;
    // Re-sign a corrupted ciphertext so that only decryption can fail.
    let good = SignedPush::component(&ticket_xml("ticket@@@t", NOW), NOW, "n-t");
    let encrypt = good
        .body
        .split("<![CDATA[")
        .nth(2)
        .unwrap()
        .split("]]>")
        .next()
        .unwrap()
        .to_string();
    // Three bytes short of whole AES blocks (still valid base64): deterministic, unlike flipping
    // bits, whose garbage padding byte is sometimes in 1..=32 and then fails a later check.
    let corrupted = encrypt[..encrypt.len() - 4].to_string();
    let mut q = good.query.clone();
    q.insert(
        "msg_signature".into(),
        wxopen::crypto::msg_signature(TOKEN, &NOW.to_string(), "n-t", &corrupted),
    );
    let body =
        format!("<xml><AppId>{APPID}</AppId><Encrypt><![CDATA[{corrupted}]]></Encrypt></xml>");
    let (status, body) = send(
        &app,
        request("POST", "/wechat/component", &q, Body::from(body)),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(error_code(&body), "decrypt_failed");
    assert!(scan_all(&app.deps.store).await.is_empty());
}

#[tokio::test]
async fn unfilled_secret_answers_503_not_configured() {
    let app = app_with_secret(r#"{"component_appid":"REPLACE_ME"}"#).await;
    let push = SignedPush::component(&ticket_xml("ticket@@@x", NOW), NOW, "n");
    let (status, body) = send(&app, push.request()).await;
    assert_eq!(status, 503);
    assert_eq!(error_code(&body), "not_configured");
    assert!(scan_all(&app.deps.store).await.is_empty());
}

#[tokio::test]
async fn previous_key_is_accepted_during_rotation() {
    let json = serde_json::json!({
        "component_appid": APPID, "component_appsecret": APPSECRET, "token": TOKEN,
        "encoding_aes_key": "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8",
        "previous_encoding_aes_key": AES_KEY,
    });
    let app = app_with_secret(&json.to_string()).await;
    let push = SignedPush::component(&ticket_xml("ticket@@@rot", NOW), NOW, "n-rot");
    assert_eq!(
        send(&app, push.request()).await,
        (200, "success".to_string())
    );
    assert!(app.deps.store.get_ticket().await.unwrap().is_some());
}

/// Counts `PutEvents` calls and keeps what they carried (every entry accepted).
#[derive(Default)]
struct CountingBus {
    calls: std::sync::atomic::AtomicU32,
    entries: std::sync::Mutex<Vec<(String, serde_json::Value)>>,
}

impl wxopen::events::EventPublisher for CountingBus {
    async fn publish(
        &self,
        entries: &[wxopen::events::EventEntry],
    ) -> wxopen::events::PublishReport {
        self.calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let mut kept = self.entries.lock().unwrap();
        for e in entries {
            kept.push((
                e.detail_type.as_str().to_string(),
                serde_json::from_str(&e.detail).unwrap(),
            ));
        }
        wxopen::events::PublishReport {
            failed: Vec::new(),
            calls: 1,
        }
    }
}

/// Issue 16: an `unauthorized` push publishes its `component.event` and wxopen's own
/// `authorization.changed` in one `PutEvents`, both with the authorizer's `customer_ref`.
#[tokio::test]
async fn an_unauthorized_push_is_one_put_events_with_the_customer() {
    use aws_sdk_dynamodb::types::AttributeValue as A;
    let base = app().await;
    let app = App {
        deps: base.deps,
        push_window: base.push_window,
        completion_budget: base.completion_budget,
        publisher: CountingBus::default(),
        metrics: base.metrics,
    };
    let store = &app.deps.store;
    store
        .client()
        .put_item()
        .table_name(store.table())
        .item("pk", A::S("AUTHORIZER#wxauthorizer07".into()))
        .item("sk", A::S("AUTHORIZER".into()))
        .item("appid", A::S("wxauthorizer07".into()))
        .item("state", A::S("authorized".into()))
        .item("last_event_at", A::N((NOW - 100).to_string()))
        .item("updated_at", A::N((NOW - 100).to_string()))
        .item("customer_ref", A::S("cust-7".into()))
        .send()
        .await
        .unwrap();
    let cancel = SignedPush::component(&unauthorized_xml("wxauthorizer07", NOW - 1), NOW, "u7");
    let resp = handle(&app, cancel.request()).await.unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(
        app.publisher
            .calls
            .load(std::sync::atomic::Ordering::SeqCst),
        1,
        "one PutEvents for the push and its change"
    );
    let entries = app.publisher.entries.lock().unwrap().clone();
    let kinds: Vec<&str> = entries.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(kinds, vec!["component.event", "authorization.changed"]);
    for (kind, detail) in &entries {
        assert_eq!(detail["customer_ref"], "cust-7", "{kind}: {detail}");
    }
}
