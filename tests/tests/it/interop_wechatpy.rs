//! Cross-check with an independent implementation: wechatpy (PyPI) encrypts what wxopen opens,
//! and decrypts what wxopen seals.

use std::time::Duration;

use component_events::{App, handle};
use lambda_http::Body;
use secrecy::ExposeSecret;
use serde_json::json;
use wxopen::app::Deps;
use wxopen::clock::FixedClock;
use wxopen::crypto::{self, AesKey};
use wxopen::push::{self, PushQuery};
use wxopen::secrets::{ComponentCredentials, StaticCredentials};
use wxopen::store::TicketStore;
use wxopen_tests::*;

fn creds() -> ComponentCredentials {
    ComponentCredentials::new(APPID, APPSECRET, TOKEN, AES_KEY).unwrap()
}

/// Pulls `<Tag>` content out of wechatpy's envelope (CDATA or plain).
fn tag(xml: &str, name: &str) -> String {
    let open = format!("<{name}>");
    let close = format!("</{name}>");
    let inner = xml
        .split(&open)
        .nth(1)
        .and_then(|r| r.split(&close).next())
        .unwrap();
    inner
        .trim_start_matches("<![CDATA[")
        .trim_end_matches("]]>")
        .to_string()
}

fn wechatpy_encrypt(xml: &str, nonce: &str, timestamp: &str) -> String {
    let out = wechatpy(
        &json!({"op": "encrypt", "token": TOKEN, "encoding_aes_key": AES_KEY, "appid": APPID,
        "xml": xml, "nonce": nonce, "timestamp": timestamp}),
    );
    out["envelope"].as_str().unwrap().to_string()
}

#[test]
fn wxopen_opens_what_wechatpy_encrypts() {
    let plain = "<xml><ToUserName><![CDATA[gh_test]]></ToUserName><Content><![CDATA[你好 wechatpy]]></Content></xml>";
    for (i, len) in [0usize, 1, 15, 16, 31, 32, 33, 500].into_iter().enumerate() {
        // Vary the length so every padding value class is exercised.
        let msg = format!("{plain}{}", "x".repeat(len));
        let ts = (1_763_856_000 + i as i64).to_string();
        let envelope = wechatpy_encrypt(&msg, "nonce-py", &ts);
        let q = PushQuery {
            timestamp: Some(ts.clone()),
            nonce: Some("nonce-py".into()),
            msg_signature: Some(tag(&envelope, "MsgSignature")),
            encrypt_type: Some("aes".into()),
        };
        let opened = push::open(
            &creds(),
            &q,
            envelope.as_bytes(),
            ts.parse().unwrap(),
            Duration::from_secs(300),
        )
        .unwrap_or_else(|e| panic!("length {len}: {e}"));
        assert_eq!(opened.plaintext.expose_secret(), &msg);
    }
}

#[test]
fn wechatpy_opens_what_wxopen_seals() {
    let key = AesKey::from_encoding_aes_key(AES_KEY).unwrap();
    for msg in [
        "<xml><Content><![CDATA[回复 reply]]></Content></xml>",
        "",
        "<xml/>",
    ] {
        let sealed = crypto::seal(&key, TOKEN, APPID, msg, "1763856000", "nonce-rs").unwrap();
        let envelope = crypto::reply_envelope(
            &sealed.encrypt,
            &sealed.msg_signature,
            "1763856000",
            "nonce-rs",
        );
        let out = wechatpy(
            &json!({"op": "decrypt", "token": TOKEN, "encoding_aes_key": AES_KEY, "appid": APPID,
            "envelope": envelope, "msg_signature": sealed.msg_signature, "timestamp": "1763856000", "nonce": "nonce-rs"}),
        );
        assert_eq!(out["plain"].as_str(), Some(msg), "{out}");
    }
}

#[test]
fn wechatpy_agrees_on_rejections() {
    let key = AesKey::from_encoding_aes_key(AES_KEY).unwrap();
    let sealed = crypto::seal(&key, TOKEN, APPID, "<xml/>", "1", "n").unwrap();
    let envelope = crypto::reply_envelope(&sealed.encrypt, &sealed.msg_signature, "1", "n");
    let bad_sig = wechatpy(
        &json!({"op": "decrypt", "token": TOKEN, "encoding_aes_key": AES_KEY, "appid": APPID,
        "envelope": envelope, "msg_signature": "0".repeat(40), "timestamp": "1", "nonce": "n"}),
    );
    assert_eq!(bad_sig["error"], "InvalidSignatureException");
    let other = crypto::seal(&key, TOKEN, "wxsomeoneelse00000", "<xml/>", "1", "n").unwrap();
    let envelope = crypto::reply_envelope(&other.encrypt, &other.msg_signature, "1", "n");
    let bad_appid = wechatpy(
        &json!({"op": "decrypt", "token": TOKEN, "encoding_aes_key": AES_KEY, "appid": APPID,
        "envelope": envelope, "msg_signature": other.msg_signature, "timestamp": "1", "nonce": "n"}),
    );
    assert_eq!(bad_appid["error"], "InvalidAppIdException");
}

/// Fixed vector A (the one `wxopen::crypto`'s unit tests use): token `wxopen-test-token`, key
/// `abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG`, appid `wx1234567890abcdef`, timestamp
/// 1763856000, nonce 1320562132, random prefix `0123456789abcdef`; its `Encrypt` (below)
/// decrypts in wechatpy to the ticket push carrying `ticket@@@example-ticket-value`.
#[test]
fn spec_vector_a_decrypts_in_wechatpy_too() {
    let encrypt = "Q3stYC6hdFzMh9T8HCvyDHbKQqSxgboF8oFZaBcMh1cUSCUrzF5f59E77Cy4rSfvf0tXvIvMw7Ta3YYKG4ijwNm2C79vEAHVXMYJcQ+fTPziGj9ooFMXUqmmBjUXtPCybdWPT/1MUZw/6U5+9j9nTK5Ctn0xTXwPPQ7h+oBHbxC3J6f/q3mXRpRxz+omIgPYSMvDioOQ46+8jtvCMB5Mw/Q7Zy9GSxLfi1NnprUuxtwbNp0mjO7GDpynyWU5bjMGa71voVPNoq9TyxHkUhcW06HCjQmv47KJGE6Wd7EHPWXYuGl6bFcj5xUyb04GfnQnjiMjEj/so7zBNBgmieXu+vrq8lgTHncLiZWYFpBAxWf0kfjZ4z3fSvrY+j4ALv89";
    let envelope = format!(
        "<xml><AppId><![CDATA[{APPID}]]></AppId><Encrypt><![CDATA[{encrypt}]]></Encrypt></xml>"
    );
    let out = wechatpy(
        &json!({"op": "decrypt", "token": TOKEN, "encoding_aes_key": AES_KEY, "appid": APPID,
        "envelope": envelope, "msg_signature": "15d01adc3012ec318ab83ce8b44aa15613096dcf",
        "timestamp": "1763856000", "nonce": "1320562132"}),
    );
    assert_eq!(
        out["plain"].as_str().unwrap(),
        ticket_xml("ticket@@@example-ticket-value", 1763856000)
    );
}

#[tokio::test]
async fn component_events_accepts_a_wechatpy_ticket_push_end_to_end() {
    let ts = "1763856000";
    let envelope = wechatpy_encrypt(
        &ticket_xml("ticket@@@from-wechatpy", 1763856000),
        "nonce-e2e",
        ts,
    );
    let app = App {
        deps: Deps {
            store: fresh_store().await,
            credentials: StaticCredentials(std::sync::Arc::new(creds())),
            clock: FixedClock::new(1_763_856_010),
            wechat: unreachable_wechat(),
            tuning: Default::default(),
        },
        push_window: Duration::from_secs(300),
        completion_budget: Duration::from_secs(1),
        publisher: default_bus_publisher().await,
        metrics: wxopen::events::metrics::MetricSink::memory(),
    };
    let q = [
        ("timestamp", ts),
        ("nonce", "nonce-e2e"),
        ("encrypt_type", "aes"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .chain([("msg_signature".to_string(), tag(&envelope, "MsgSignature"))])
    .collect();
    let resp = handle(
        &app,
        request("POST", "/wechat/component", &q, Body::from(envelope)),
    )
    .await
    .unwrap();
    assert_eq!(
        (resp.status().as_u16(), body_text(&resp)),
        (200, "success".to_string())
    );
    let t = app.deps.store.get_ticket().await.unwrap().unwrap();
    assert_eq!(t.ticket.expose_secret(), "ticket@@@from-wechatpy");
}
