//! Events out and passive replies end to end: the sandbox's users, merchants and release-test
//! robot push to the gateway; the functions publish to the stack's own EventBridge bus on moto,
//! whose rule feeds an SQS queue the tests read; the reply hook is the local HTTP hook; replies
//! are decrypted by the sandbox (as WeChat) and checked by wechatpy. Every event a test reads
//! is checked for credentials ([`assert_no_credentials`]).

use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};
use wxopen::clock::SystemClock;
use wxopen::events::metrics::MetricSink;
use wxopen::reply::hook::{ConfiguredHook, DEFAULT_BUDGET, HttpsEndpoint};
use wxopen::secrets::{ComponentCredentials, StaticCredentials};
use wxopen_tests::hook::HookMode;
use wxopen_tests::stack::Stack;
use wxopen_tests::{
    AES_KEY, APPID, APPSECRET, HOOK_SECRET, SignedPush, TOKEN, body_text, credential_values,
    wechatpy_replies, xml_tag,
};

use crate::common::{MP1, OA1, stack_with};

/// Fails if any credential the run produced appears anywhere in any of `events`.
async fn assert_no_credentials(stack: &Stack, events: &[Value]) {
    let secrets = credential_values(&stack.store, &stack.sandbox).await;
    assert!(
        secrets.len() > 4,
        "found the run's credentials: {}",
        secrets.len()
    );
    for e in events {
        let text = e.to_string();
        for s in &secrets {
            assert!(
                !text.contains(s.as_str()),
                "a credential ({}…) is in a {} event",
                &s[..6.min(s.len())],
                e["detail-type"]
            );
        }
    }
}

/// A new login session for `appid`, scanned by `user` (after adding the sandbox `fault`, if
/// any): (session, the scan's delivery).
async fn scan_new_session(
    stack: &Stack,
    appid: &str,
    user: &str,
    fault: Option<Value>,
) -> (Value, Value) {
    let session = super::messages::new_session(stack, appid).await;
    if let Some(f) = fault {
        let (s, _) = stack.control(Method::POST, "faults", f).await;
        assert_eq!(s, 200);
    }
    let (_, scan) = super::messages::scan(stack, user, &session).await;
    (session, scan)
}

async fn user_message(stack: &Stack, appid: &str, user: &str, content: &str) -> Value {
    let (s, r) = stack
        .control(
            Method::POST,
            "users/message",
            json!({ "appid": appid, "user": user, "content": content }),
        )
        .await;
    assert_eq!(s, 200, "{r}");
    r
}

async fn user_event(stack: &Stack, appid: &str, user: &str, event: &str, key: Option<&str>) {
    let (s, r) = stack
        .control(
            Method::POST,
            "users/event",
            json!({ "appid": appid, "user": user, "event": event, "event_key": key }),
        )
        .await;
    assert_eq!((s, &r["status"]), (200, &json!(200)), "{r}");
}

fn find<'a>(events: &'a [Value], detail_type: &str, pred: impl Fn(&Value) -> bool) -> &'a Value {
    let found: Vec<&Value> = events
        .iter()
        .filter(|e| e["detail-type"] == detail_type && pred(&e["detail"]))
        .collect();
    assert_eq!(
        found.len(),
        1,
        "exactly one {detail_type} event expected, got {}: {events:#?}",
        found.len()
    );
    found[0]
}

fn is_event_id(v: &Value) -> bool {
    v.as_str()
        .is_some_and(|s| s.len() == 32 && s.bytes().all(|b| b.is_ascii_hexdigit()))
}

#[tokio::test]
async fn every_kind_arrives_on_the_queue_with_its_detail_type_and_fields() {
    let stack = stack_with(&[OA1, MP1]).await;
    let text = user_message(&stack, OA1, "alice", "hello wxopen").await;
    user_event(&stack, OA1, "bob", "subscribe", None).await;
    user_event(&stack, OA1, "bob", "CLICK", Some("MENU_1")).await;
    user_event(&stack, MP1, "reviewer", "weapp_audit_success", None).await;
    // A follow-to-log-in scan carries the QR code's Ticket: it never leaves.
    let (_, scan) = scan_new_session(&stack, OA1, "carol", None).await;
    assert_eq!(scan["status"], 200, "{scan}");
    let (s, _) = stack
        .control(Method::POST, &format!("merchants/{OA1}/cancel"), json!({}))
        .await;
    assert_eq!(s, 200);
    let events = stack.bus.drain_all().await.unwrap();

    for e in &events {
        assert_eq!(e["source"], "wxopen", "{e}");
        let d = &e["detail"];
        assert!(is_event_id(&d["id"]), "{d}");
        assert!(
            d["received_at"].as_i64().is_some_and(|t| t > 1_700_000_000),
            "{d}"
        );
        assert!(d["fields"].is_object(), "{d}");
    }
    let m = &find(&events, "authorizer.message", |d| {
        d["fields"]["Content"] == "hello wxopen"
    })["detail"];
    assert_eq!(m["appid"], OA1);
    assert_eq!(m["msg_type"], "text");
    assert_eq!(m["from_user"], text["openid"]);
    assert_eq!(m["authorizer_known"], true);
    assert!(m["msg_id"].as_str().is_some_and(|id| id.len() >= 10), "{m}");
    assert!(m["create_time"].as_i64().is_some(), "{m}");
    assert_eq!(m["fields"]["MsgType"], "text");

    let sub = &find(&events, "authorizer.event", |d| {
        d["event"] == "subscribe" && d["event_key"].is_null()
    })["detail"];
    assert_eq!(
        (sub["appid"].as_str(), sub["msg_type"].as_str()),
        (Some(OA1), Some("event"))
    );
    let click = &find(&events, "authorizer.event", |d| d["event"] == "CLICK")["detail"];
    assert_eq!(click["event_key"], "MENU_1");
    assert_eq!(click["fields"]["EventKey"], "MENU_1");
    let audit = &find(&events, "authorizer.event", |d| {
        d["event"] == "weapp_audit_success"
    })["detail"];
    assert_eq!(audit["appid"], MP1);
    let login = &find(&events, "authorizer.event", |d| {
        d["event_key"]
            .as_str()
            .is_some_and(|k| k.starts_with("qrscene_"))
    })["detail"];
    assert!(login["fields"].get("Ticket").is_none(), "{login}");

    let unauth = &find(&events, "component.event", |d| d["event"] == "unauthorized")["detail"];
    assert_eq!(unauth["appid"], OA1);
    assert_eq!(unauth["authorizer_known"], true);
    assert_eq!(unauth["fields"]["InfoType"], "unauthorized");
    let changed = &find(&events, "authorization.changed", |d| {
        d["event"] == "unauthorized"
    })["detail"];
    assert_eq!(
        (
            changed["appid"].as_str(),
            changed["fields"]["change"].as_str()
        ),
        (Some(OA1), Some("unauthorized"))
    );
    // The authorizations of the two accounts: the push and wxopen's own change.
    for appid in [OA1, MP1] {
        let pushed = &find(&events, "component.event", |d| {
            d["event"] == "authorized" && d["appid"] == appid
        })["detail"];
        assert!(
            pushed["fields"].get("AuthorizationCode").is_none(),
            "{pushed}"
        );
        assert!(pushed["fields"].get("PreAuthCode").is_none(), "{pushed}");
        find(&events, "authorization.changed", |d| {
            d["event"] == "authorized" && d["appid"] == appid
        });
    }
    assert_no_credentials(&stack, &events).await;
}

#[tokio::test]
async fn the_same_push_three_times_is_one_event_one_hook_call_and_three_identical_answers() {
    let stack = stack_with(&[OA1]).await;
    stack.bus.drain_all().await.unwrap();
    let (s, r) = stack
        .control(
            Method::POST,
            "users/message",
            json!({ "appid": OA1, "user": "alice", "content": "once", "repeat": 3 }),
        )
        .await;
    assert_eq!(s, 200, "{r}");
    let repeats = r["repeats"].as_array().unwrap();
    assert_eq!(repeats.len(), 3);
    for rep in repeats {
        assert_eq!(rep["status"], 200, "{rep}");
        assert!(rep["reply_error"].is_null(), "{rep}");
        assert_eq!(
            rep["reply"], repeats[0]["reply"],
            "every retry decrypts to the same reply"
        );
    }
    assert!(
        repeats[0]["reply"]
            .as_str()
            .unwrap()
            .contains("you said: once"),
        "{r}"
    );
    let events = stack.bus.drain_all().await.unwrap();
    assert_eq!(events.len(), 1, "one event: {events:#?}");
    let id = events[0]["detail"]["id"].as_str().unwrap();
    let calls = stack.hook.calls();
    assert_eq!(calls.len(), 1, "one hook call");
    assert_eq!(calls[0].event_id, id);
    assert!(calls[0].signature_valid);
    assert_eq!(
        calls[0].detail, events[0]["detail"],
        "the hook gets the detail"
    );
    assert_no_credentials(&stack, &events).await;
}

#[tokio::test]
async fn a_retry_while_the_first_delivery_waits_on_the_hook_asks_it_once_and_gets_its_reply() {
    let stack = stack_with(&[OA1]).await;
    stack.bus.drain_all().await.unwrap();
    // The hook takes 1.5 s (inside its 3 s budget); WeChat's retry arrives meanwhile.
    stack
        .hook
        .set_mode(HookMode::SlowEcho(Duration::from_millis(1500)));
    stack.hook.take_calls();
    let (s, r) = stack
        .control(
            Method::POST,
            "users/message",
            json!({ "appid": OA1, "user": "bob", "content": "overlap", "repeat": 2, "overlap": true }),
        )
        .await;
    assert_eq!(s, 200, "{r}");
    let repeats = r["repeats"].as_array().unwrap();
    assert_eq!(repeats.len(), 2);
    for rep in repeats {
        assert_eq!(rep["status"], 200, "{rep}");
    }
    let calls = stack.hook.calls();
    assert_eq!(calls.len(), 1, "the hook is asked once: {calls:#?}");
    let events = stack.bus.drain_all().await.unwrap();
    assert_eq!(events.len(), 1, "one event: {events:#?}");
    assert_eq!(
        calls[0].event_id,
        events[0]["detail"]["id"].as_str().unwrap()
    );
    for rep in repeats {
        assert!(
            rep["reply"]
                .as_str()
                .unwrap_or_default()
                .contains("you said: overlap"),
            "both deliveries answer the hook's reply: {r}"
        );
    }
}

#[tokio::test]
async fn eventbridge_down_for_a_batch_every_push_answered_in_time_and_delivered_after_the_sweep() {
    let stack = stack_with(&[OA1]).await;
    stack.bus.drain_all().await.unwrap();
    stack.bus.take_down().await.unwrap();
    let contents: Vec<String> = (0..6).map(|i| format!("while down {i}")).collect();
    for c in &contents {
        let started = Instant::now();
        let r = user_message(&stack, OA1, "alice", c).await;
        assert_eq!(
            (&r["status"], &r["delivery"]["attempts"]),
            (&json!(200), &json!(1)),
            "answered on the first attempt: {r}"
        );
        assert!(started.elapsed() < Duration::from_secs(5));
        assert!(
            r["reply"]
                .as_str()
                .unwrap()
                .contains(&format!("you said: {c}")),
            "the hook still answers: {r}"
        );
    }
    assert!(stack.bus.drain_all().await.unwrap().is_empty());
    let app = stack.scheduled_run(Default::default());
    let still_down = token_refresh::sweep(&app).await;
    assert_eq!(
        (still_down.republished, still_down.failed),
        (0, 6),
        "{still_down:?}"
    );
    stack.bus.bring_up().await.unwrap();
    let swept = token_refresh::sweep(&app).await;
    assert_eq!((swept.republished, swept.failed), (6, 0), "{swept:?}");
    let events = stack.bus.drain_all().await.unwrap();
    let mut got: Vec<String> = events
        .iter()
        .map(|e| {
            e["detail"]["fields"]["Content"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    got.sort();
    assert_eq!(got, contents, "each event once");
    let again = token_refresh::sweep(&app).await;
    assert_eq!(
        (again.republished, again.oldest_age_secs),
        (0, 0),
        "outbox empty"
    );
    assert!(stack.bus.drain_all().await.unwrap().is_empty());
    assert_no_credentials(&stack, &events).await;
}

/// Checks a reply the sandbox received against wechatpy's rendering of `answer`.
fn check_with_wechatpy(delivery: &Value, answer: &Value) {
    let plain = delivery["reply"].as_str().unwrap();
    let envelope = delivery["body"].as_str().unwrap();
    let mut expected = answer.clone();
    expected["to"] = json!(xml_tag(plain, "ToUserName"));
    expected["from"] = json!(xml_tag(plain, "FromUserName"));
    expected["create_time"] = json!(xml_tag(plain, "CreateTime").parse::<i64>().unwrap());
    let out = wechatpy_replies(&json!({
        "token": TOKEN, "encoding_aes_key": AES_KEY, "appid": APPID,
        "envelope": envelope,
        "msg_signature": xml_tag(envelope, "MsgSignature"),
        "timestamp": xml_tag(envelope, "TimeStamp"),
        "nonce": xml_tag(envelope, "Nonce"),
        "expected": expected,
    }));
    assert!(out.get("error").is_none(), "{answer}: {out}");
    assert_eq!(out["plain"], plain);
    assert_eq!(
        out["ours"], out["wechatpy"],
        "{answer}: as wechatpy renders it"
    );
}

#[tokio::test]
async fn hook_text_and_news_replies_decrypted_and_checked_by_wechatpy() {
    let stack = stack_with(&[OA1]).await;
    for answer in [
        json!({"type": "text", "content": "你好 <b>&amp; from the hook"}),
        json!({"type": "news", "articles": [{"title": "Today", "description": "d",
            "pic_url": "https://img.example/p.jpg", "url": "https://example.com/a?x=1&y=2"}]}),
    ] {
        stack.hook.set_mode(HookMode::Answer(answer.clone()));
        let r = user_message(&stack, OA1, "alice", &format!("ask {}", answer["type"])).await;
        let delivery = &r["repeats"][0];
        assert_eq!(delivery["status"], 200, "{r}");
        check_with_wechatpy(delivery, &answer);
    }
    let events = stack.bus.drain_all().await.unwrap();
    assert_no_credentials(&stack, &events).await;
}

/// The message-events function built as deployed, but with its metrics kept in memory.
fn metered_app(
    stack: &Stack,
) -> message_events::App<wxopen::store::DynamoStore, Arc<StaticCredentials>, SystemClock> {
    message_events::App {
        deps: stack.deps(),
        push_window: Duration::from_secs(300),
        login: Default::default(),
        publisher: stack.publisher(),
        hook: ConfiguredHook::Https(HttpsEndpoint::new(&stack.hook.url, DEFAULT_BUDGET).unwrap()),
        hook_budget: DEFAULT_BUDGET,
        metrics: MetricSink::memory(),
    }
}

async fn gh_of(stack: &Stack, appid: &str) -> String {
    let (_, m) = stack
        .control(Method::GET, &format!("merchants/{appid}"), json!({}))
        .await;
    m["user_name"].as_str().unwrap().to_string()
}

fn text_push(gh: &str, openid: &str, content: &str, msg_id: u64) -> SignedPush {
    let now = wxopen::clock::Clock::now(&SystemClock);
    SignedPush::new(
        &format!(
            "<xml><ToUserName><![CDATA[{gh}]]></ToUserName><FromUserName><![CDATA[{openid}]]></FromUserName><CreateTime>{now}</CreateTime><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[{content}]]></Content><MsgId>{msg_id}</MsgId></xml>"
        ),
        APPID,
        now,
        &format!("n{msg_id}"),
    )
}

#[tokio::test]
async fn a_hook_past_its_budget_or_answering_garbage_gets_success_and_a_metric() {
    let stack = stack_with(&[OA1]).await;
    // Over the gateway, as WeChat sees it: success within its 5 s, on the first attempt.
    stack
        .hook
        .set_mode(HookMode::Sleep(Duration::from_millis(4500)));
    let started = Instant::now();
    let r = user_message(&stack, OA1, "alice", "slow hook").await;
    let took = started.elapsed();
    assert_eq!(
        (
            &r["status"],
            &r["delivery"]["body"],
            &r["delivery"]["attempts"]
        ),
        (&json!(200), &json!("success"), &json!(1)),
        "{r}"
    );
    assert!(
        took < Duration::from_secs(5) && took >= DEFAULT_BUDGET,
        "answered after the budget, inside 5 s: {took:?}"
    );
    stack.hook.set_mode(HookMode::Garbage);
    let r = user_message(&stack, OA1, "alice", "garbage hook").await;
    assert_eq!(r["delivery"]["body"], "success", "{r}");
    let events = stack.bus.drain_all().await.unwrap();
    for c in ["slow hook", "garbage hook"] {
        find(&events, "authorizer.message", |d| {
            d["fields"]["Content"] == c
        });
    }

    // The same function with its metrics in memory: the failure is counted by cause.
    let app = metered_app(&stack);
    let gh = gh_of(&stack, OA1).await;
    let push = text_push(&gh, "o_metered", "garbage again", 7_000_000_000_000_001);
    let resp = message_events::handle(
        &app,
        push.request_to(&format!("/wechat/messages/{OA1}"), OA1),
    )
    .await
    .unwrap();
    assert_eq!(body_text(&resp), "success");
    let lines: Vec<Value> = app
        .metrics
        .lines()
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(
        lines
            .iter()
            .any(|l| l["ReplyHookFailures"].as_f64() == Some(1.0) && l["Cause"] == "malformed"),
        "{lines:#?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l["EventsPublished"].as_f64() == Some(1.0)),
        "{lines:#?}"
    );
    let more = stack.bus.drain_all().await.unwrap();
    find(&more, "authorizer.message", |d| {
        d["fields"]["Content"] == "garbage again"
    });
    assert_no_credentials(&stack, &[events, more].concat()).await;
}

// ---- the message URL's correctness (issue 16, item 4) ----

#[tokio::test]
async fn a_message_for_an_unknown_authorizer_is_success_and_published_as_unknown() {
    let stack = stack_with(&[]).await;
    let unknown = "wx0000000000000009";
    let push = text_push(
        "gh_unknown000001",
        "o_new_user",
        "anyone there?",
        7_000_000_000_000_002,
    );
    assert_eq!(
        super::messages::post_message(&stack, unknown, &push).await,
        (200, "success".to_string())
    );
    let events = stack.bus.drain_all().await.unwrap();
    let e = &find(&events, "authorizer.message", |d| d["appid"] == unknown)["detail"];
    assert_eq!(e["authorizer_known"], false);
    assert!(
        stack.hook.calls().is_empty(),
        "no hook for an unknown authorizer"
    );
    assert_no_credentials(&stack, &events).await;
}

#[tokio::test]
async fn a_login_scan_whose_confirmation_fails_is_retried_until_confirmed() {
    let stack = stack_with(&[OA1]).await;
    stack.bus.drain_all().await.unwrap();
    // WeChat's user/info fails once (system busy): the first delivery cannot confirm.
    let fault = json!({ "api": "user/info", "count": 1 });
    let (session, scan) = scan_new_session(&stack, OA1, "erin", Some(fault)).await;
    assert_eq!(
        scan["delivery"]["attempts"], 2,
        "the first answer made WeChat retry: {scan}"
    );
    assert!(
        scan["reply"]
            .as_str()
            .unwrap_or_default()
            .contains("登录成功"),
        "the retry got the login reply: {scan}"
    );
    let (_, st) = stack
        .api(
            Method::GET,
            &format!("/login/sessions/{}", session["id"].as_str().unwrap()),
            None,
        )
        .await;
    assert_eq!(st["status"], "confirmed", "{st}");
    let events = stack.bus.drain_all().await.unwrap();
    assert_eq!(events.len(), 1, "the scan published once: {events:#?}");
    assert_no_credentials(&stack, &events).await;
}

#[tokio::test]
async fn during_a_key_rotation_the_reply_is_encrypted_with_the_key_the_push_used() {
    const NEW_KEY: &str = "ZYXWVUTSRQPONMLKJIHGFEDCBA9876543210zyxwvut";
    let stack = stack_with(&[]).await;
    let rotating = ComponentCredentials::new(APPID, APPSECRET, TOKEN, NEW_KEY)
        .unwrap()
        .with_previous_key(AES_KEY)
        .unwrap()
        .with_reply_hook_secret(HOOK_SECRET);
    let mut app = metered_app(&stack);
    app.deps.credentials = Arc::new(StaticCredentials(Arc::new(rotating)));
    app.hook = ConfiguredHook::None;
    // WeChat still uses the previous key (AES_KEY): the release test's text case answers.
    let (appid, gh) = ("wx570bc396a51b8ff8", "gh_3c884a361561");
    let push = text_push(
        gh,
        "o_release_robot",
        "TESTCOMPONENT_MSG_TYPE_TEXT",
        7_000_000_000_000_003,
    );
    let resp = message_events::handle(
        &app,
        push.request_to(&format!("/wechat/messages/{appid}"), appid),
    )
    .await
    .unwrap();
    let envelope = body_text(&resp);
    let encrypt = xml_tag(&envelope, "Encrypt");
    let old = wxopen::crypto::AesKey::from_encoding_aes_key(AES_KEY).unwrap();
    let new = wxopen::crypto::AesKey::from_encoding_aes_key(NEW_KEY).unwrap();
    assert!(new.decrypt(&encrypt, APPID).is_err(), "not the current key");
    let plain = old.decrypt(&encrypt, APPID).expect("the push's key");
    let plain = secrecy::ExposeSecret::expose_secret(&plain).to_string();
    check_with_wechatpy(
        &json!({ "reply": plain, "body": envelope }),
        &json!({"type": "text", "content": "TESTCOMPONENT_MSG_TYPE_TEXT_callback"}),
    );
}

#[tokio::test]
async fn a_retry_of_query_auth_code_while_the_first_runs_sends_from_api_once() {
    let stack = stack_with(&[]).await;
    let (s, report) = stack
        .control(
            Method::POST,
            "release-test/run",
            json!({ "appid": "wx570bc396a51b8ff8", "retry_while_running": true }),
        )
        .await;
    assert_eq!(s, 200, "{report}");
    assert_eq!(report["passed"], true, "{report:#}");
    assert_eq!(report["custom_sends"], 1, "{report:#}");
    let events = stack.bus.drain_all().await.unwrap();
    for e in &events {
        if let Some(c) = e["detail"]["fields"]["Content"].as_str() {
            assert!(
                !c.contains("queryauthcode@@@"),
                "the release test's code is redacted: {c}"
            );
        }
    }
    assert_no_credentials(&stack, &events).await;
}

/// Issue 16: a message to an authorizer that came through a customer's link carries that
/// `customer_ref` in its detail, as does the authorization's `authorization.changed`.
#[tokio::test]
async fn events_of_a_customers_authorizer_carry_its_customer_ref() {
    let stack = Stack::start().await;
    stack.push_ticket().await;
    stack.authorize(OA1, "push_only").await;
    let (s, b) = stack
        .control(
            Method::POST,
            "users/message",
            json!({ "appid": OA1, "user": "carol", "content": "hello customer" }),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    let events = stack.bus.drain_all().await.unwrap();
    let message = events
        .iter()
        .find(|e| e["detail-type"] == "authorizer.message")
        .unwrap_or_else(|| panic!("{events:?}"));
    assert_eq!(
        message["detail"]["customer_ref"], "test-customer",
        "{message}"
    );
    let changed = events
        .iter()
        .find(|e| e["detail-type"] == "authorization.changed")
        .unwrap_or_else(|| panic!("{events:?}"));
    assert_eq!(
        changed["detail"]["customer_ref"], "test-customer",
        "{changed}"
    );
}

/// The `authorization.changed` events of `appid` with change `authorized`, from the bus.
async fn authorized_changes(stack: &Stack, appid: &str) -> Vec<Value> {
    let events = stack.bus.drain_all().await.unwrap();
    assert_no_credentials(stack, &events).await;
    events
        .into_iter()
        .filter(|e| {
            e["detail-type"] == "authorization.changed"
                && e["detail"]["appid"] == appid
                && e["detail"]["event"] == "authorized"
        })
        .collect()
}

/// Issue 16: an authorization completed by the browser redirect alone (the push never comes)
/// is published once, with the link's `customer_ref` and no code.
#[tokio::test]
async fn an_authorization_the_redirect_records_is_published_with_its_customer_ref() {
    let stack = Stack::start().await;
    stack.push_ticket().await;
    stack.bus.drain_all().await.unwrap();
    stack.authorize(OA1, "redirect_only").await;
    let changes = authorized_changes(&stack, OA1).await;
    assert_eq!(changes.len(), 1, "{changes:#?}");
    let d = &changes[0]["detail"];
    assert_eq!(d["customer_ref"], "test-customer", "{d}");
    assert_eq!(d["fields"]["cause"], "redirect", "{d}");
    assert!(is_event_id(&d["id"]), "{d}");
}

/// Issue 16: EventBridge refusing the redirect's `authorization.changed`: the merchant still
/// sees success, the event waits in the outbox and the scheduled run's sweep delivers it.
#[tokio::test]
async fn the_redirects_change_refused_by_eventbridge_is_delivered_by_the_sweep() {
    let stack = Stack::start().await;
    stack.push_ticket().await;
    stack.bus.drain_all().await.unwrap();
    stack.bus.take_down().await.unwrap();
    stack.authorize(OA1, "redirect_only").await;
    stack.bus.bring_up().await.unwrap();
    assert!(authorized_changes(&stack, OA1).await.is_empty());
    let app = stack.scheduled_run(Default::default());
    let swept = token_refresh::sweep(&app).await;
    assert_eq!((swept.republished, swept.failed), (1, 0), "{swept:?}");
    let changes = authorized_changes(&stack, OA1).await;
    assert_eq!(changes.len(), 1, "{changes:#?}");
    assert_eq!(changes[0]["detail"]["customer_ref"], "test-customer");
}

/// Issue 16: the push and the redirect of one authorization, in either order, give exactly one
/// `authorization.changed` (whichever records it publishes; the other finds it done).
#[tokio::test]
async fn the_push_and_the_redirect_of_one_authorization_are_one_change() {
    for order in ["push_first", "redirect_first"] {
        let stack = Stack::start().await;
        stack.push_ticket().await;
        stack.bus.drain_all().await.unwrap();
        stack.authorize(OA1, order).await;
        let changes = authorized_changes(&stack, OA1).await;
        assert_eq!(changes.len(), 1, "{order}: {changes:#?}");
        assert_eq!(
            changes[0]["detail"]["customer_ref"], "test-customer",
            "{order}"
        );
    }
}

/// The scheduled run as the schedule makes it (refresh, publish, sweep), `secs` in the future.
async fn scheduled_run(stack: &Stack, secs: i64) -> wxopen::refresher::RefreshReport {
    use wxopen::clock::{Clock, FixedClock};
    let app = stack.scheduled_run_with_clock(
        FixedClock::new(SystemClock.now() + secs),
        Default::default(),
    );
    token_refresh::run_and_publish(&app, &app.settings).await.0
}

/// The `authorization.changed` events on the bus, as (appid, change).
async fn changes_on_bus(stack: &Stack) -> Vec<(String, String, Value)> {
    let events = stack.bus.drain_all().await.unwrap();
    assert_no_credentials(stack, &events).await;
    events
        .into_iter()
        .filter(|e| e["detail-type"] == "authorization.changed")
        .map(|e| {
            let d = e["detail"].clone();
            (
                d["appid"].as_str().unwrap_or_default().to_string(),
                d["event"].as_str().unwrap_or_default().to_string(),
                d,
            )
        })
        .collect()
}

/// Issue 16: an authorization the callbacks left pending and the scheduled run completes is
/// published by the run, once (a second run publishes nothing).
#[tokio::test]
async fn a_pending_authorization_the_scheduled_run_completes_is_published() {
    let stack = Stack::start().await;
    stack.push_ticket().await;
    let result = stack.authorize(OA1, "none").await;
    let code = secrecy::SecretString::from(result["auth_code"].as_str().expect("auth_code"));
    super::authorization::leave_pending(&stack, OA1, code).await;
    stack.bus.drain_all().await.unwrap();
    let report = scheduled_run(&stack, 0).await;
    assert_eq!(report.pending_completed, 1, "{report:?}");
    let changes = changes_on_bus(&stack).await;
    assert_eq!(changes.len(), 1, "{changes:#?}");
    assert_eq!(
        (changes[0].0.as_str(), changes[0].1.as_str()),
        (OA1, "authorized")
    );
    assert_eq!(changes[0].2["fields"]["cause"], "refresher");
    scheduled_run(&stack, 0).await;
    assert!(changes_on_bus(&stack).await.is_empty());
}

/// Issue 16: a refresh token WeChat rejects (61023) is `needs_reauth`, and its recovery from
/// `api_get_authorizer_list` in the same run `recovered`, each published once by the run.
#[tokio::test]
async fn a_rejected_refresh_token_is_needs_reauth_then_recovered_on_the_bus() {
    let stack = stack_with(&[OA1]).await;
    crate::tokens::lose_refresh_token(&stack, OA1).await;
    stack.bus.drain_all().await.unwrap();
    let report = scheduled_run(&stack, 7000).await;
    assert_eq!(report.recovered, 1, "{report:?}");
    let mut kinds: Vec<(String, String)> = changes_on_bus(&stack)
        .await
        .into_iter()
        .map(|(a, c, _)| (a, c))
        .collect();
    kinds.sort();
    assert_eq!(
        kinds,
        vec![
            (OA1.to_string(), "needs_reauth".to_string()),
            (OA1.to_string(), "recovered".to_string())
        ]
    );
}

/// Issue 16: an authorizer WeChat no longer lists (the unauthorized push never came) is
/// published as `unauthorized` by the run that finds it out, once.
#[tokio::test]
async fn an_unlisted_authorizer_is_published_as_unauthorized() {
    let stack = crate::tokens::cancelled_without_push(OA1).await;
    stack.bus.drain_all().await.unwrap();
    scheduled_run(&stack, 7000).await;
    let changes = changes_on_bus(&stack).await;
    let kinds: Vec<&str> = changes.iter().map(|(_, c, _)| c.as_str()).collect();
    assert_eq!(kinds, vec!["needs_reauth", "unauthorized"], "{changes:#?}");
    let unauth = &changes[1].2;
    assert_eq!(unauth["fields"]["cause"], "refresher");
    scheduled_run(&stack, 7000).await;
    assert!(changes_on_bus(&stack).await.is_empty());
}
