//! Events out and passive replies, against real parts: EventBridge, SQS and DynamoDB on moto
//! (a bus with a rule to a queue; the table's event records and outbox), the reply hooks over
//! real HTTP (an HTTPS-hook server and a stand-in for the Lambda Invoke API on 127.0.0.1), and
//! replies decrypted and checked by wechatpy.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::post;
use secrecy::SecretString;
use serde_json::{Value, json};
use wxopen::crypto::{self, AesKey};
use wxopen::events::outbox::{deliver, recall, sweep};
use wxopen::events::publish::MAX_BATCH_ENTRIES;
use wxopen::events::{
    DetailType, Event, EventBridgePublisher, EventEntry, EventPublisher, Known, SOURCE,
};
use wxopen::reply::hook::{self, HookError, SIGNATURE_HEADER};
use wxopen::reply::{HookOutcome, HttpsHook, LambdaHook, PassiveReply, ask};
use wxopen::store::outbox::{EventRecordStore, RecordOutcome, ReplyMemo};
use wxopen_tests::*;

const AUTHORIZER: &str = "wxoa00000000000001";
const GH: &str = "gh_0000000001";
const NOW: i64 = 1_763_856_100;

/// A bus with a rule sending every `source: wxopen` event to a fresh queue.
struct Bus {
    publisher: EventBridgePublisher,
    local: wxopen_tests::bus::LocalBus,
}

async fn fresh_bus() -> Bus {
    let local = wxopen_tests::bus::LocalBus::create(
        &aws_config().await,
        &unique("wxopen-bus"),
        &unique("wxopen-events"),
    )
    .await
    .expect("bus, rule and queue on moto");
    Bus {
        publisher: EventBridgePublisher::new(local.events.clone(), &local.bus_name),
        local,
    }
}

impl Bus {
    /// Reads the queue until `n` events arrived (long polls, no sleeps), then once more to make
    /// sure nothing else follows. Returns the EventBridge envelopes.
    async fn drain(&self, n: usize) -> Vec<Value> {
        self.local
            .drain(n, Duration::from_secs(20))
            .await
            .expect("queue readable")
    }
}

/// A publisher whose EventBridge is unreachable (a closed loopback port).
async fn dead_publisher() -> EventBridgePublisher {
    let config = aws_config().await;
    let conf = aws_sdk_eventbridge::config::Builder::from(&config)
        .endpoint_url("http://127.0.0.1:9")
        .retry_config(aws_sdk_eventbridge::config::retry::RetryConfig::disabled())
        .build();
    EventBridgePublisher::new(aws_sdk_eventbridge::Client::from_conf(conf), "nowhere")
}

fn known() -> Known<'static> {
    Known {
        authorizer_known: true,
        customer_ref: Some("cust-7"),
    }
}

fn message(body: &str, create_time: i64) -> Event {
    let xml = format!(
        "<xml><ToUserName><![CDATA[{GH}]]></ToUserName><FromUserName><![CDATA[o_alice]]></FromUserName><CreateTime>{create_time}</CreateTime>{body}</xml>"
    );
    Event::from_message(AUTHORIZER, &xml, NOW, known()).expect("event")
}

/// The five kinds the issue names, plus the pushes that carry credentials.
fn story_events() -> Vec<Event> {
    let mut events = vec![
        message(
            "<MsgType><![CDATA[text]]></MsgType><Content><![CDATA[hello]]></Content><MsgId>24000000000000001</MsgId>",
            1_763_856_000,
        ),
        message(
            "<MsgType><![CDATA[event]]></MsgType><Event><![CDATA[subscribe]]></Event><EventKey><![CDATA[qrscene_abc]]></EventKey><Ticket><![CDATA[gQSECRETQRTICKET]]></Ticket>",
            1_763_856_001,
        ),
        message(
            "<MsgType><![CDATA[event]]></MsgType><Event><![CDATA[CLICK]]></Event><EventKey><![CDATA[MENU_1]]></EventKey>",
            1_763_856_002,
        ),
        message(
            "<MsgType><![CDATA[event]]></MsgType><Event><![CDATA[weapp_audit_success]]></Event><SuccTime>1763856003</SuccTime>",
            1_763_856_003,
        ),
    ];
    for xml in [
        unauthorized_xml(AUTHORIZER, 1_763_856_004),
        authorized_xml(
            "authorized",
            "wxoa00000000000002",
            "queryauthcode@@@SECRETCODE",
            1_763_856_005,
        ),
    ] {
        events.push(
            Event::from_component_push(&xml, NOW, known())
                .expect("component event")
                .expect("not a ticket"),
        );
    }
    assert!(
        Event::from_component_push(&ticket_xml("ticket@@@SECRETTICKET", 1), NOW, known())
            .expect("ticket")
            .is_none()
    );
    events
}

fn assert_no_credentials(text: &str) {
    for secret in ["SECRET", "queryauthcode@@@", "preauthcode@@@", "ticket@@@"] {
        assert!(!text.contains(secret), "{secret} leaked: {text}");
    }
}

#[tokio::test]
async fn every_kind_arrives_on_the_queue_with_its_detail_type_and_fields() {
    let bus = fresh_bus().await;
    let events = story_events();
    let entries: Vec<EventEntry> = events
        .iter()
        .map(|e| EventEntry::from_event(e).expect("entry"))
        .collect();
    let report = bus.publisher.publish(&entries).await;
    assert!(report.all_published(), "{report:?}");
    assert_eq!(report.calls, 1);
    let got = bus.drain(entries.len()).await;
    assert_eq!(got.len(), entries.len(), "one event per push, no more");
    for e in &got {
        assert_eq!(e["source"], SOURCE);
        assert_no_credentials(&e.to_string());
    }
    let by_id = |id: &str| {
        got.iter()
            .find(|e| e["detail"]["id"] == id)
            .unwrap_or_else(|| panic!("event {id} missing"))
    };
    let text = by_id(&events[0].detail.id);
    assert_eq!(text["detail-type"], "authorizer.message");
    assert_eq!(text["detail"]["msg_type"], "text");
    assert_eq!(text["detail"]["msg_id"], "24000000000000001");
    assert_eq!(text["detail"]["from_user"], "o_alice");
    assert_eq!(text["detail"]["appid"], AUTHORIZER);
    assert_eq!(text["detail"]["customer_ref"], "cust-7");
    assert_eq!(text["detail"]["authorizer_known"], true);
    assert_eq!(text["detail"]["create_time"], 1_763_856_000);
    assert_eq!(text["detail"]["received_at"], NOW);
    assert_eq!(text["detail"]["fields"]["Content"], "hello");
    let subscribe = by_id(&events[1].detail.id);
    assert_eq!(subscribe["detail-type"], "authorizer.event");
    assert_eq!(subscribe["detail"]["event"], "subscribe");
    assert_eq!(subscribe["detail"]["event_key"], "qrscene_abc");
    assert!(subscribe["detail"]["fields"].get("Ticket").is_none());
    let click = by_id(&events[2].detail.id);
    assert_eq!(
        (&click["detail"]["event"], &click["detail"]["event_key"]),
        (&json!("CLICK"), &json!("MENU_1"))
    );
    let audit = by_id(&events[3].detail.id);
    assert_eq!(audit["detail-type"], "authorizer.event");
    assert_eq!(audit["detail"]["fields"]["SuccTime"], "1763856003");
    let unauthorized = by_id(&events[4].detail.id);
    assert_eq!(unauthorized["detail-type"], "component.event");
    assert_eq!(unauthorized["detail"]["event"], "unauthorized");
    assert_eq!(unauthorized["detail"]["appid"], AUTHORIZER);
    let authorized = by_id(&events[5].detail.id);
    assert_eq!(
        authorized["detail"]["fields"]["AuthorizerAppid"],
        "wxoa00000000000002"
    );
    assert!(
        authorized["detail"]["fields"]
            .get("AuthorizationCode")
            .is_none()
    );
}

#[tokio::test]
async fn publisher_batches_by_ten_and_reports_only_refused_entries() {
    let bus = fresh_bus().await;
    let mut entries: Vec<EventEntry> = (0..23)
        .map(|i| {
            EventEntry::from_event(&message(
                &format!("<MsgType>text</MsgType><Content>n{i}</Content><MsgId>{i}</MsgId>"),
                1,
            ))
            .expect("entry")
        })
        .collect();
    // EventBridge refuses a detail that is not JSON: that entry alone fails.
    entries[12].detail = "not json".into();
    let report = bus.publisher.publish(&entries).await;
    assert_eq!(report.calls, 3, "23 entries = 10 + 10 + 3");
    assert_eq!(report.failed.len(), 1, "{report:?}");
    assert_eq!(report.failed[0].index, 12);
    assert_eq!(report.failed[0].cause, "MalformedDetail");
    let got = bus.drain(22).await;
    assert_eq!(got.len(), 22);
    let ids: BTreeSet<String> = got
        .iter()
        .map(|e| e["detail"]["id"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(ids.len(), 22);
    assert!(!ids.contains(&entries[12].id));
    assert_eq!(
        report.calls as usize,
        entries.len().div_ceil(MAX_BATCH_ENTRIES)
    );
}

#[tokio::test]
async fn happy_path_is_one_write_and_one_put_events_and_a_retry_is_recalled() {
    let bus = fresh_bus().await;
    let (store, ops) = fresh_counted_store().await;
    let event = message(
        "<MsgType>text</MsgType><Content>hi</Content><MsgId>77</MsgId>",
        1,
    );
    let entry = EventEntry::from_event(&event).expect("entry");
    let memo = ReplyMemo::Reply {
        xml: "<xml><Content>same</Content></xml>".into(),
    };
    // First delivery: one read (nothing recorded), one PutEvents, one conditional PutItem.
    assert_eq!(recall(&store, &entry.id).await.expect("recall"), None);
    let d = deliver(&store, &bus.publisher, &entry, memo.clone(), NOW)
        .await
        .expect("deliver");
    assert!(d.published && !d.deferred && !d.duplicate);
    let counted = ops.snapshot();
    assert_eq!(counted.get("GetItem"), Some(&1), "{counted:?}");
    assert_eq!(counted.get("PutItem"), Some(&1), "{counted:?}");
    assert_eq!(ops.total(), 2, "{counted:?}");
    // Two retries: each one read, the same answer, nothing published.
    ops.reset();
    for _ in 0..2 {
        assert_eq!(
            recall(&store, &entry.id).await.expect("recall"),
            Some(memo.clone())
        );
    }
    assert_eq!(ops.total(), 2);
    assert_eq!(
        bus.drain(1).await.len(),
        1,
        "one event for three deliveries"
    );
    // A concurrent delivery that missed the record gets the first answer.
    let late = deliver(&store, &bus.publisher, &entry, ReplyMemo::Success, NOW + 1)
        .await
        .expect("deliver");
    assert!(late.duplicate);
    assert_eq!(late.answer, memo);
}

#[tokio::test]
async fn eventbridge_down_for_a_batch_then_back_every_event_delivered_once_swept() {
    let bus = fresh_bus().await;
    let dead = dead_publisher().await;
    let (store, ops) = fresh_counted_store().await;
    let entries: Vec<EventEntry> = (0..12)
        .map(|i| {
            EventEntry::from_event(&message(
                &format!(
                    "<MsgType>text</MsgType><Content>m{i}</Content><MsgId>{}</MsgId>",
                    500 + i
                ),
                1,
            ))
            .expect("entry")
        })
        .collect();
    for (i, entry) in entries.iter().enumerate() {
        let started = Instant::now();
        let d = deliver(&store, &dead, entry, ReplyMemo::Success, NOW + i as i64)
            .await
            .expect("recorded even though the bus is down");
        assert!(d.deferred && !d.published, "{d:?}");
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "answered in time"
        );
    }
    let counted = ops.snapshot();
    assert_eq!(
        counted.get("TransactWriteItems"),
        Some(&12),
        "record + outbox in one transaction: {counted:?}"
    );
    assert_eq!(store.outbox(100).await.expect("outbox").len(), 12);
    // A retry of a deferred push is still recognised.
    assert_eq!(
        recall(&store, &entries[3].id).await.expect("recall"),
        Some(ReplyMemo::Success)
    );
    // The sweep while the bus is still down changes nothing.
    let r = sweep(&store, &dead, NOW + 60, 1000).await.expect("sweep");
    assert_eq!((r.republished, r.remaining), (0, true));
    assert_eq!(r.oldest_age_secs, 60);
    assert!(bus.drain(0).await.is_empty());
    // Back: one sweep delivers everything, once.
    let r = sweep(&store, &bus.publisher, NOW + 120, 1000)
        .await
        .expect("sweep");
    assert_eq!((r.republished, r.failed, r.remaining), (12, 0, false));
    let got = bus.drain(12).await;
    let ids: BTreeSet<String> = got
        .iter()
        .map(|e| e["detail"]["id"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(got.len(), 12, "each event exactly once");
    assert_eq!(ids, entries.iter().map(|e| e.id.clone()).collect());
    assert!(store.outbox(100).await.expect("outbox").is_empty());
    let r = sweep(&store, &bus.publisher, NOW + 180, 1000)
        .await
        .expect("sweep");
    assert_eq!((r.republished, r.oldest_age_secs), (0, 0));
    assert!(bus.drain(0).await.is_empty());
}

#[tokio::test]
async fn the_hook_claim_is_held_for_its_lease_then_can_be_taken_over() {
    let store = fresh_store().await;
    assert!(store.claim_hook("h1", 100, 6).await.expect("claim"));
    assert!(!store.claim_hook("h1", 101, 6).await.expect("held"));
    assert!(
        !store
            .claim_hook("h1", 106, 6)
            .await
            .expect("held to its end")
    );
    assert!(store.claim_hook("h2", 101, 6).await.expect("another push"));
    // The first delivery died: its lease ran out, a later retry takes the hook over.
    assert!(store.claim_hook("h1", 107, 6).await.expect("taken over"));
    assert!(!store.claim_hook("h1", 108, 6).await.expect("held again"));
    // The claim is no event record: a retry still finds none until the delivery records.
    assert!(store.get_event_record("h1").await.expect("get").is_none());
}

#[tokio::test]
async fn record_contract_on_dynamodb() {
    let store = fresh_store().await;
    let rec =
        wxopen::store::outbox::EventRecord::new("e1", "authorizer.message", ReplyMemo::Empty, 10);
    assert_eq!(
        store.record_event(&rec, None).await.expect("record"),
        RecordOutcome::Recorded
    );
    let other =
        wxopen::store::outbox::EventRecord::new("e1", "authorizer.message", ReplyMemo::Success, 11);
    assert_eq!(
        store.record_event(&other, None).await.expect("record"),
        RecordOutcome::Exists(rec.clone())
    );
    // The conditional transaction too: an existing record wins and nothing is enqueued.
    let entry = wxopen::store::outbox::OutboxEntry {
        id: "e1".into(),
        detail_type: "authorizer.message".into(),
        detail: "{}".into(),
        enqueued_at: 11,
    };
    assert_eq!(
        store
            .record_event(&other, Some(&entry))
            .await
            .expect("record"),
        RecordOutcome::Exists(rec)
    );
    assert!(store.outbox(10).await.expect("outbox").is_empty());
    // Outbox order is oldest first across shards.
    let mut queued = Vec::new();
    for i in 0..9 {
        queued.push(wxopen::store::outbox::OutboxEntry {
            id: format!("id-{i}"),
            detail_type: "component.event".into(),
            detail: "{}".into(),
            enqueued_at: 100 - i,
        });
    }
    store.enqueue(&queued).await.expect("enqueue");
    let listed = store.outbox(5).await.expect("outbox");
    let times: Vec<i64> = listed.iter().map(|e| e.enqueued_at).collect();
    assert_eq!(times, vec![92, 93, 94, 95, 96]);
    store.remove_from_outbox(&listed[0]).await.expect("remove");
    assert_eq!(store.outbox(100).await.expect("outbox").len(), 8);
}

// ---- reply hooks over real HTTP ----

/// A request the stand-ins saw: (path name, headers, body).
type SeenRequest = (String, HeaderMap, Vec<u8>);

#[derive(Clone, Default)]
struct Seen(Arc<Mutex<Vec<SeenRequest>>>);

impl Seen {
    fn push(&self, name: String, headers: HeaderMap, body: &[u8]) {
        if let Ok(mut s) = self.0.lock() {
            s.push((name, headers, body.to_vec()));
        }
    }
    fn all(&self) -> Vec<SeenRequest> {
        self.0.lock().map(|s| s.clone()).unwrap_or_default()
    }
}

async fn serve(router: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    format!("http://{addr}")
}

/// A stand-in for the Lambda Invoke API: the function name picks the behaviour.
async fn lambda_stand_in(seen: Seen) -> String {
    async fn invoke(
        State(seen): State<Seen>,
        Path(name): Path<String>,
        headers: HeaderMap,
        body: Bytes,
    ) -> impl IntoResponse {
        seen.push(name.clone(), headers, &body);
        let base = [("content-type", "application/json")];
        if name.ends_with("fails") {
            return (
                StatusCode::OK,
                [("x-amz-function-error", "Unhandled")],
                r#"{"errorMessage":"boom","errorType":"Error"}"#.to_string(),
            )
                .into_response();
        }
        if name.ends_with("slow") {
            tokio::time::sleep(Duration::from_secs(5)).await;
        }
        if name.ends_with("garbage") {
            return (StatusCode::OK, base, "<html>oops</html>".to_string()).into_response();
        }
        (
            StatusCode::OK,
            base,
            json!({"type": "text", "content": "from lambda"}).to_string(),
        )
            .into_response()
    }
    serve(
        Router::new()
            .route("/2015-03-31/functions/{name}/invocations", post(invoke))
            .with_state(seen),
    )
    .await
}

async fn lambda_client(endpoint: &str) -> aws_sdk_lambda::Client {
    let conf = aws_sdk_lambda::Config::builder()
        .behavior_version(aws_sdk_lambda::config::BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(aws_sdk_lambda::config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_lambda::config::Credentials::new(
            "test", "test", None, None, "static",
        ))
        .retry_config(aws_sdk_lambda::config::retry::RetryConfig::disabled())
        .build();
    aws_sdk_lambda::Client::from_conf(conf)
}

fn detail_json() -> (String, String) {
    let e = message(
        "<MsgType>text</MsgType><Content>question</Content><MsgId>9</MsgId>",
        1,
    );
    let entry = EventEntry::from_event(&e).expect("entry");
    (entry.id, entry.detail)
}

#[tokio::test]
async fn lambda_hook_at_the_wire() {
    let seen = Seen::default();
    let endpoint = lambda_stand_in(seen.clone()).await;
    let client = lambda_client(&endpoint).await;
    let (id, detail) = detail_json();
    let budget = Duration::from_millis(800);
    let arn = "arn:aws:lambda:us-east-1:123456789012:function:reply-hook";
    let r = ask(&LambdaHook::new(client.clone(), arn), &id, &detail, budget).await;
    assert_eq!(
        r.outcome,
        HookOutcome::Reply(PassiveReply::Text {
            content: "from lambda".into()
        })
    );
    let calls = seen.all();
    assert_eq!(calls.len(), 1);
    let (name, headers, body) = &calls[0];
    assert_eq!(name, arn, "the function ARN is the path's function name");
    assert_eq!(
        headers
            .get("x-amz-invocation-type")
            .and_then(|v| v.to_str().ok()),
        Some("RequestResponse")
    );
    assert!(headers.get("authorization").is_some(), "SigV4-signed");
    assert_eq!(
        body.as_slice(),
        detail.as_bytes(),
        "the payload is the detail"
    );
    // FunctionError, garbage and slowness are failures, each within the budget.
    for (suffix, cause) in [
        ("fails", "function_error"),
        ("garbage", "malformed"),
        ("slow", "timeout"),
    ] {
        let started = Instant::now();
        let r = ask(
            &LambdaHook::new(client.clone(), format!("{arn}-{suffix}")),
            &id,
            &detail,
            budget,
        )
        .await;
        match &r.outcome {
            HookOutcome::Failed(e) => assert_eq!(e.cause(), cause, "{suffix}"),
            other => panic!("{suffix}: {other:?}"),
        }
        assert!(
            started.elapsed() < budget + Duration::from_millis(300),
            "{suffix}"
        );
    }
}

#[tokio::test]
async fn https_hook_signs_its_body_and_falls_back_on_failure() {
    let seen = Seen::default();
    async fn hook_route(
        State(seen): State<Seen>,
        Path(mode): Path<String>,
        headers: HeaderMap,
        body: Bytes,
    ) -> impl IntoResponse {
        seen.push(mode.clone(), headers, &body);
        match mode.as_str() {
            "news" => (
                StatusCode::OK,
                json!({"type": "news", "articles": [{"title": "Today", "description": "d", "pic_url": "https://img.example/p.jpg", "url": "https://example.com/a"}]}).to_string(),
            ),
            "garbage" => (StatusCode::OK, "{\"type\":\"sticker\"}".to_string()),
            "error" => (StatusCode::INTERNAL_SERVER_ERROR, String::new()),
            "slow" => {
                tokio::time::sleep(Duration::from_secs(5)).await;
                (StatusCode::OK, String::new())
            }
            _ => (StatusCode::NO_CONTENT, String::new()),
        }
    }
    let base = serve(
        Router::new()
            .route("/hook/{mode}", post(hook_route))
            .with_state(seen.clone()),
    )
    .await;
    let secret: SecretString = "reply-hook-secret-for-tests".into();
    let budget = Duration::from_millis(800);
    let (id, detail) = detail_json();
    let hook_for = |mode: &str| {
        HttpsHook::new(&format!("{base}/hook/{mode}"), secret.clone(), budget).expect("hook")
    };
    let r = ask(&hook_for("news"), &id, &detail, budget).await;
    assert!(matches!(r.reply(), Some(PassiveReply::News { articles }) if articles.len() == 1));
    let (_, headers, body) = seen.all().remove(0);
    let header = headers
        .get(SIGNATURE_HEADER)
        .and_then(|v| v.to_str().ok())
        .expect("signature header")
        .to_string();
    let body = String::from_utf8(body).expect("utf-8");
    assert_eq!(body, detail);
    let now = wxopen::clock::Clock::now(&wxopen::clock::SystemClock);
    assert!(hook::verify_signature(
        &secret,
        &header,
        &body,
        now,
        Duration::from_secs(300)
    ));
    assert!(!hook::verify_signature(
        &"another-secret".into(),
        &header,
        &body,
        now,
        Duration::from_secs(300)
    ));
    assert_eq!(
        headers
            .get(hook::EVENT_ID_HEADER)
            .and_then(|v| v.to_str().ok()),
        Some(id.as_str())
    );
    assert_eq!(
        ask(&hook_for("none"), &id, &detail, budget).await.outcome,
        HookOutcome::NoReply
    );
    assert_eq!(
        ask(&hook_for("error"), &id, &detail, budget).await.outcome,
        HookOutcome::Failed(HookError::Status(500))
    );
    let garbage = ask(&hook_for("garbage"), &id, &detail, budget).await;
    assert!(matches!(&garbage.outcome, HookOutcome::Failed(e) if e.cause() == "malformed"));
    assert!(
        garbage
            .emf_lines("message-events", 0)
            .iter()
            .any(|l| l.contains("\"ReplyHookFailures\":1.0") && l.contains("malformed"))
    );
    let started = Instant::now();
    let slow = ask(&hook_for("slow"), &id, &detail, budget).await;
    assert_eq!(slow.outcome, HookOutcome::Failed(HookError::Timeout));
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "well inside WeChat's 5 s"
    );
}

// ---- replies checked by wechatpy ----

#[test]
fn replies_decrypted_and_checked_by_wechatpy() {
    let key = AesKey::from_encoding_aes_key(AES_KEY).expect("key");
    for answer in [
        json!({"type": "text", "content": "你好 ]]> <b>&amp;"}),
        json!({"type": "text", "content": "你好 <b>&amp; wechatpy"}),
        json!({"type": "news", "articles": [
            {"title": "Today", "description": "news ]]>", "pic_url": "https://img.example/p.jpg", "url": "https://example.com/a?x=1&y=2"},
            {"title": "Second", "description": "d2", "pic_url": "https://img.example/q.jpg", "url": "https://example.com/b"}]}),
        json!({"type": "news", "articles": [
            {"title": "Only", "description": "d", "pic_url": "https://img.example/p.jpg", "url": "https://example.com/a"}]}),
        json!({"type": "image", "media_id": "MEDIA_ID_1"}),
        json!({"type": "voice", "media_id": "MEDIA_ID_2"}),
        json!({"type": "video", "media_id": "MEDIA_ID_3", "title": "t", "description": "d"}),
        json!({"type": "music", "thumb_media_id": "THUMB", "title": "song", "description": "d", "music_url": "https://m.example/a.mp3", "hq_music_url": "https://m.example/hq.mp3"}),
        json!({"type": "transfer_customer_service"}),
    ] {
        let reply = PassiveReply::parse_answer(answer.to_string().as_bytes())
            .expect("valid")
            .expect("a reply");
        let memo = wxopen::reply::memo(Some(&reply), "o_alice", GH, 1_763_856_000);
        let ReplyMemo::Reply { xml } = memo else {
            panic!("a reply memo");
        };
        let envelope = crypto::seal_reply(&key, TOKEN, APPID, &xml, 1_763_856_001).expect("sealed");
        let mut expected = answer.clone();
        expected["to"] = json!("o_alice");
        expected["from"] = json!(GH);
        expected["create_time"] = json!(1_763_856_000);
        let out = wechatpy_replies(&json!({
            "token": TOKEN, "encoding_aes_key": AES_KEY, "appid": APPID,
            "envelope": envelope,
            "msg_signature": xml_tag(&envelope, "MsgSignature"),
            "timestamp": xml_tag(&envelope, "TimeStamp"),
            "nonce": xml_tag(&envelope, "Nonce"),
            "expected": expected,
        }));
        assert!(out.get("error").is_none(), "{answer}: {out}");
        assert_eq!(out["plain"], xml, "{answer}");
        if answer.to_string().contains("]]>") {
            // wechatpy leaves `]]>` unsplit, so its own rendering is not XML; ours reads back
            // exactly (checked through xmltodict).
            assert!(out["wechatpy"].is_null(), "{out}");
            let ours = &out["ours"]["xml"];
            match answer["type"].as_str() {
                Some("text") => assert_eq!(ours["Content"], answer["content"]),
                _ => assert_eq!(
                    ours["Articles"]["item"][0]["Description"],
                    answer["articles"][0]["description"]
                ),
            }
        } else {
            assert_eq!(
                out["ours"], out["wechatpy"],
                "{answer}: same reply as wechatpy renders"
            );
        }
        let kind = answer["type"].as_str().unwrap_or_default();
        if kind != "news" || answer["articles"].as_array().map(Vec::len) != Some(1) {
            assert_eq!(
                out["deserialized"], kind,
                "wechatpy reads it back: {answer}"
            );
        }
    }
}

#[tokio::test]
async fn three_deliveries_one_event_one_hook_call_three_identical_answers() {
    let bus = fresh_bus().await;
    let store = fresh_store().await;
    let seen = Seen::default();
    let endpoint = lambda_stand_in(seen.clone()).await;
    let hook = LambdaHook::new(lambda_client(&endpoint).await, "reply-hook");
    let key = AesKey::from_encoding_aes_key(AES_KEY).expect("key");
    let xml = format!(
        "<xml><ToUserName><![CDATA[{GH}]]></ToUserName><FromUserName><![CDATA[o_bob]]></FromUserName><CreateTime>1763856000</CreateTime><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[hi]]></Content><MsgId>31415</MsgId></xml>"
    );
    let mut answers = Vec::new();
    for attempt in 0..3i64 {
        // What message-events will do, in order (the handler wiring is the integration step).
        let now = NOW + attempt * 5;
        let event = Event::from_message(AUTHORIZER, &xml, now, known()).expect("event");
        let entry = EventEntry::from_event(&event).expect("entry");
        let memo = match recall(&store, &entry.id).await.expect("recall") {
            Some(memo) => memo,
            None => {
                let report = ask(&hook, &entry.id, &entry.detail, Duration::from_secs(3)).await;
                let memo = wxopen::reply::memo(report.reply(), "o_bob", GH, now);
                deliver(&store, &bus.publisher, &entry, memo, now)
                    .await
                    .expect("deliver")
                    .answer
            }
        };
        let ReplyMemo::Reply { xml: reply_xml } = memo else {
            panic!("the hook replied");
        };
        let envelope = crypto::seal_reply(&key, TOKEN, APPID, &reply_xml, now).expect("seal");
        let opened = key
            .decrypt(&xml_tag(&envelope, "Encrypt"), APPID)
            .expect("decrypt");
        answers.push(secrecy::ExposeSecret::expose_secret(&opened).to_string());
    }
    assert_eq!(seen.all().len(), 1, "one hook call");
    assert_eq!(bus.drain(1).await.len(), 1, "one event");
    assert!(answers.iter().all(|a| a == &answers[0]), "{answers:?}");
    assert!(answers[0].contains("from lambda"));
    assert_eq!(DetailType::AuthorizerMessage.as_str(), "authorizer.message");
}
