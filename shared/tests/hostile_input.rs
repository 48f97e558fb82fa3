//! Hostile input: signature checks, decryption, XML and push parsing never panic and never
//! allocate unboundedly on arbitrary bytes, huge length headers, truncated ciphertext,
//! non-UTF-8, deep XML and entity bombs.
//!
//! `make test` runs a modest number of cases (PROPTEST_CASES, default 256); `make fuzz` runs
//! 100,000 per property.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::time::Duration;

use base64::Engine as _;
use proptest::prelude::*;
use wxopen::crypto::{self, AesKey};
use wxopen::push::{self, MAX_BODY_BYTES, PushQuery};
use wxopen::secrets::ComponentCredentials;
use wxopen::xml::{ComponentPush, Envelope, Message, canonical_fields, check_safe, general_fields};

/// Tracks the peak of live heap bytes per thread (other tests run on other threads), to show
/// allocation stays bounded by the input size.
struct Tracking;

thread_local! {
    static LIVE: Cell<isize> = const { Cell::new(0) };
    static PEAK: Cell<isize> = const { Cell::new(0) };
}

fn track(delta: isize) {
    // `try_with`: thread-locals may already be gone while a thread shuts down.
    let _ = LIVE.try_with(|l| {
        let live = l.get() + delta;
        l.set(live);
        let _ = PEAK.try_with(|p| p.set(p.get().max(live)));
    });
}

unsafe impl GlobalAlloc for Tracking {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded unchanged to the system allocator.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            track(layout.size() as isize);
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.dealloc(ptr, layout) };
        track(-(layout.size() as isize));
    }
}

#[global_allocator]
static GLOBAL: Tracking = Tracking;

const KEY: &str = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG";
const APPID: &str = "wx1234567890abcdef";
const TOKEN: &str = "wxopen-test-token";
const NOW: i64 = 1_763_856_000;

fn creds() -> ComponentCredentials {
    ComponentCredentials::new(APPID, "secret", TOKEN, KEY).unwrap()
}

fn key() -> AesKey {
    AesKey::from_encoding_aes_key(KEY).unwrap()
}

/// Encrypts raw plaintext bytes (already laid out however the test wants) with WeChat's
/// 32-byte padding, so the decrypter sees attacker-chosen headers behind a valid cipher layer.
fn encrypt_raw(mut content: Vec<u8>) -> String {
    use aes::cipher::{BlockModeEncrypt, KeyIvInit, block_padding::NoPadding};
    // The key bytes of KEY (test vector A: WeChat's published message-encryption sample).
    let k =
        hex::decode("69b71d79f8218a39259a7a29aabb2dbafc31cb3d35db7e39ebbf3d0010831051").unwrap();
    let pad = 32 - content.len() % 32;
    content.resize(content.len() + pad, pad as u8);
    let len = content.len();
    let mut iv = [0u8; 16];
    iv.copy_from_slice(&k[..16]);
    let key: [u8; 32] = k.try_into().unwrap();
    let ct = cbc::Encryptor::<aes::Aes256>::new(&key.into(), &iv.into())
        .encrypt_padded::<NoPadding>(&mut content, len)
        .unwrap();
    base64::engine::general_purpose::STANDARD.encode(ct)
}

fn signed(encrypt: &str, nonce: &str) -> (PushQuery, String) {
    let ts = NOW.to_string();
    let q = PushQuery {
        timestamp: Some(ts.clone()),
        nonce: Some(nonce.to_string()),
        msg_signature: Some(crypto::msg_signature(TOKEN, &ts, nonce, encrypt)),
        encrypt_type: Some("aes".into()),
    };
    (
        q,
        format!("<xml><AppId>{APPID}</AppId><Encrypt><![CDATA[{encrypt}]]></Encrypt></xml>"),
    )
}

fn open<'a>(q: &PushQuery, body: &'a [u8]) -> Result<push::OpenedPush<'a>, push::PushError> {
    push::open(&creds(), q, body, NOW, Duration::from_secs(300))
}

proptest! {
    #[test]
    fn arbitrary_bodies_and_queries_never_panic(
        body in proptest::collection::vec(any::<u8>(), 0..2048),
        ts in proptest::option::of(".{0,24}"),
        nonce in proptest::option::of(".{0,24}"),
        sig in proptest::option::of(".{0,64}"),
        et in proptest::option::of(".{0,8}"),
    ) {
        let q = PushQuery { timestamp: ts, nonce, msg_signature: sig, encrypt_type: et };
        let _ = open(&q, &body);
    }

    #[test]
    fn signed_garbage_ciphertext_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..1024)) {
        // Correctly signed, so the decrypter itself faces the garbage.
        let encrypt = base64::engine::general_purpose::STANDARD.encode(&bytes);
        let (q, body) = signed(&encrypt, "n");
        prop_assert!(open(&q, body.as_bytes()).is_err());
    }

    #[test]
    fn attacker_chosen_plaintext_layout_never_panics(
        random in proptest::collection::vec(any::<u8>(), 0..40),
        declared_len in any::<u32>(),
        msg in proptest::collection::vec(any::<u8>(), 0..300),
        tail in proptest::collection::vec(any::<u8>(), 0..40),
    ) {
        // Huge or tiny length headers, short headers, non-UTF-8 messages, wrong receive ids.
        let mut content = random;
        content.extend_from_slice(&declared_len.to_be_bytes());
        content.extend_from_slice(&msg);
        content.extend_from_slice(&tail);
        let encrypt = encrypt_raw(content);
        let (q, body) = signed(&encrypt, "n2");
        let _ = open(&q, body.as_bytes());
        let _ = key().decrypt(&encrypt, APPID);
    }

    #[test]
    fn truncated_ciphertext_is_rejected(cut in 1usize..300) {
        let good = key().encrypt(&"<xml><A>1</A></xml>".repeat(8), APPID).unwrap();
        let cut = cut.min(good.len());
        let truncated = &good[..good.len() - cut];
        prop_assert!(key().decrypt(truncated, APPID).is_err());
    }

    #[test]
    fn arbitrary_xml_never_panics(s in "\\PC{0,512}") {
        let _ = check_safe(&s);
        let _ = Envelope::parse(&s);
        let _ = ComponentPush::parse(&s);
        let _ = Message::parse(&s);
    }

    #[test]
    fn xml_shaped_input_never_panics(
        tags in proptest::collection::vec("[A-Za-z_]{1,12}", 1..12),
        texts in proptest::collection::vec("[^<]{0,40}", 1..12),
        open_only in any::<bool>(),
    ) {
        let mut xml = String::from("<xml>");
        for (t, v) in tags.iter().zip(texts.iter()) {
            xml.push_str(&format!("<{t}><![CDATA[{v}]]></{t}>"));
        }
        if !open_only {
            xml.push_str("</xml>");
        }
        let _ = ComponentPush::parse(&xml);
        let _ = Message::parse(&xml);
    }
}

/// A document near the canonical shape: fields of text and CDATA pieces drawn from an alphabet
/// full of XML's special characters, optional junk between fields, then (sometimes) one random
/// edit, so both sides of the shape's border are covered.
fn near_canonical() -> impl Strategy<Value = String> {
    let name = prop_oneof!["[A-Za-z_][A-Za-z0-9_.:-]{0,8}", "[A-Za-z!?/ ]{1,3}"];
    let piece = prop_oneof![
        "[a-z0-9 <>&;#!\\[\\]/\\r\\n\\t\\u{3000}你-]{0,12}",
        "[a-z0-9 <>&;#!\\[\\]/\\r\\n你]{0,12}".prop_map(|t| format!("<![CDATA[{t}]]>")),
    ];
    let field = (name, proptest::collection::vec(piece, 0..4), any::<bool>()).prop_map(
        |(n, pieces, close_right)| {
            let close = if close_right {
                n.clone()
            } else {
                format!("{n}x")
            };
            format!("<{n}>{}</{close}>", pieces.concat())
        },
    );
    let between = prop_oneof![Just(String::new()), "[ \\n\\t]{1,3}", "[a-z&;\\]\\r]{1,4}"];
    (
        "[ \\n\\t\\u{feff}\\u{3000}]{0,2}",
        prop_oneof![Just("xml".to_string()), "[A-Za-z]{1,4}"],
        proptest::collection::vec((between, field), 0..6),
        "[ \\n\\ta<]{0,2}",
        proptest::option::of((any::<prop::sample::Index>(), any::<char>(), 0u8..3)),
    )
        .prop_map(|(lead, root, fields, tail, edit)| {
            let body: String = fields.into_iter().map(|(b, f)| b + &f).collect();
            let mut doc = format!("{lead}<{root}>{body}</{root}>{tail}");
            if let Some((at, c, kind)) = edit {
                let positions: Vec<usize> = doc.char_indices().map(|(i, _)| i).collect();
                if !positions.is_empty() {
                    let i = positions[at.index(positions.len())];
                    match kind {
                        0 => doc.insert(i, c),
                        1 => {
                            doc.remove(i);
                        }
                        _ => {
                            doc.remove(i);
                            doc.insert(i, c);
                        }
                    }
                }
            }
            doc
        })
}

#[test]
fn canonical_reader_reads_wechat_pushes_itself() {
    // The fast path must really be taken for what WeChat sends, or the speed claim is empty.
    for doc in [
        "<xml><AppId><![CDATA[wx1]]></AppId><Encrypt><![CDATA[a+b/c=]]></Encrypt></xml>",
        "<xml><ToUserName><![CDATA[gh_1]]></ToUserName><FromUserName><![CDATA[o1]]></FromUserName><CreateTime>1</CreateTime><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[你好]]></Content><MsgId>1</MsgId></xml>",
        "<xml>\n  <AppId>wx1</AppId>\n  <CreateTime>1</CreateTime>\n</xml>\n",
    ] {
        let fast = canonical_fields(doc).expect("canonical");
        assert_eq!(Ok(fast), general_fields(doc), "{doc}");
    }
    // Outside the shape, the general reader decides (and here it refuses or nests).
    for doc in [
        "<!DOCTYPE x><xml/>",
        "<xml><a>&amp;</a></xml>",
        "<xml><info><name>n</name></info></xml>",
        "<xml><a b=\"1\">x</a></xml>",
        "<xml><a>x</b></xml>",
        "<xml><a>x</a></xml>junk",
    ] {
        assert!(canonical_fields(doc).is_none(), "{doc}");
    }
}

proptest! {
    /// Differential: whatever the canonical reader accepts, the general reader accepts and
    /// reads the same fields (names, parents, values, order).
    #[test]
    fn canonical_reader_agrees_with_the_general_reader(doc in near_canonical()) {
        if let Some(fast) = canonical_fields(&doc) {
            prop_assert_eq!(Ok(fast), general_fields(&doc), "{:?}", doc);
        }
    }

    #[test]
    fn canonical_reader_agrees_on_arbitrary_text(doc in "\\PC{0,256}") {
        if let Some(fast) = canonical_fields(&doc) {
            prop_assert_eq!(Ok(fast), general_fields(&doc), "{:?}", doc);
        }
    }
}

#[test]
fn deep_xml_is_refused_without_recursion() {
    for depth in [9usize, 1_000, 200_000] {
        let xml = format!("{}{}", "<a>".repeat(depth), "</a>".repeat(depth));
        assert!(check_safe(&xml).is_err(), "depth {depth}");
        assert!(ComponentPush::parse(&xml).is_err());
    }
}

#[test]
fn entity_bombs_are_refused() {
    let billion_laughs = r#"<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;"><!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;"><!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]><xml><AppId>&lol3;</AppId><CreateTime>1</CreateTime><InfoType>component_verify_ticket</InfoType><ComponentVerifyTicket>x</ComponentVerifyTicket></xml>"#;
    assert!(ComponentPush::parse(billion_laughs).is_err());
    // The same bomb, encrypted and signed: refused after decryption as well.
    let encrypt = key().encrypt(billion_laughs, APPID).unwrap();
    let (q, body) = signed(&encrypt, "bomb");
    let opened = open(&q, body.as_bytes()).unwrap();
    use secrecy::ExposeSecret;
    assert!(ComponentPush::parse(opened.plaintext.expose_secret()).is_err());
}

#[test]
fn allocation_is_bounded_by_the_body_limit() {
    // A maximal body of signed base64 garbage and a huge declared length: the peak of live heap
    // memory while opening it stays a small multiple of the body size.
    let big = key().encrypt(&"x".repeat(40_000), APPID).unwrap();
    let (q, body) = signed(&big, "big");
    assert!(body.len() <= MAX_BODY_BYTES);
    let huge_header = {
        let mut content = vec![0u8; 16];
        content.extend_from_slice(&u32::MAX.to_be_bytes());
        content.extend_from_slice(&vec![b'a'; 40_000]);
        encrypt_raw(content)
    };
    let (q2, body2) = signed(&huge_header, "huge");
    let oversize = vec![b'<'; 10 * MAX_BODY_BYTES];
    let base = LIVE.with(Cell::get);
    PEAK.with(|p| p.set(base));
    let ok = open(&q, body.as_bytes()).is_ok();
    let rejected = open(&q2, body2.as_bytes()).is_err();
    let too_large = matches!(open(&q, &oversize), Err(push::PushError::TooLarge));
    let peak = usize::try_from(PEAK.with(Cell::get) - base).unwrap_or(0);
    assert!(ok && rejected && too_large);
    assert!(
        peak < 8 * MAX_BODY_BYTES,
        "peak live allocation {peak} bytes for a {}-byte body",
        body.len()
    );
}

// ---------------------------------------------------------------------------------------------
// The routes added in the second round: the API gateway's path, query and request checks, the
// reply hook's answer, fleet release requests, fast-registration fields and the sign-in inputs
// (OAuth and login query strings, ids and codes). Each property runs through [`property`], which
// prints `fuzz <name>: <n> cases` so `make fuzz` shows how many cases each one ran.

use proptest::test_runner::{Config as RunnerConfig, TestCaseError, TestRunner};
use serde_json::{Value, json};
use std::sync::atomic::{AtomicU64, Ordering};
use wxopen::gateway::path::{DEFAULT_PREFIXES, MAX_PATH_BYTES, TokenParam, is_token_api};
use wxopen::gateway::request::{ForwardRequest, MAX_QUERY_BYTES, query_from_pairs, strip_query};
use wxopen::gateway::{Allowlist, ApiPath};
use wxopen::releases::{MAX_EXT_JSON_BYTES, NewRelease};
use wxopen::reply::model::{MAX_ANSWER_BYTES, PassiveReply};

/// Runs `test` over PROPTEST_CASES cases of `strategy` (proptest's runner, shrinking on
/// failure) and prints the number of cases that ran.
fn property<S: Strategy>(
    name: &str,
    strategy: S,
    test: impl Fn(S::Value) -> Result<(), TestCaseError>,
) where
    S::Value: std::fmt::Debug,
{
    let config = RunnerConfig {
        failure_persistence: None,
        ..RunnerConfig::default()
    };
    let cases = config.cases;
    let ran = AtomicU64::new(0);
    let mut runner = TestRunner::new(config);
    let result = runner.run(&strategy, |v| {
        ran.fetch_add(1, Ordering::Relaxed);
        test(v)
    });
    if let Err(e) = result {
        panic!("{name}: {e}");
    }
    let ran = ran.load(Ordering::Relaxed);
    assert!(
        ran >= u64::from(cases),
        "{name}: only {ran} of {cases} cases ran"
    );
    eprintln!("fuzz {name}: {ran} cases passed");
}

/// Peak live heap bytes (this thread) while `f` runs.
fn peak_during<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let base = LIVE.with(Cell::get);
    PEAK.with(|p| p.set(base));
    let out = f();
    let peak = usize::try_from(PEAK.with(Cell::get) - base).unwrap_or(0);
    (out, peak)
}

/// Characters hostile paths and queries are built from: the plain ones and every separator,
/// escape and look-alike a proxy might read differently.
fn hostile_text(max: usize) -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        "[a-z0-9_./-]{1,8}",
        Just("%2e".to_string()),
        Just("%2F".to_string()),
        Just("..".to_string()),
        Just("//".to_string()),
        Just("@".to_string()),
        Just("\\".to_string()),
        Just(":".to_string()),
        Just("?".to_string()),
        Just("#".to_string()),
        Just("&".to_string()),
        Just("=".to_string()),
        Just(" ".to_string()),
        Just("access_token".to_string()),
        Just("ACCESS_TOKEN".to_string()),
        Just("component_access_token".to_string()),
        Just("cgi-bin/".to_string()),
        Just("cgi-bin/token".to_string()),
        Just("cgi-bin/component/api_component_token".to_string()),
        Just("wxa/".to_string()),
        Just("sns/".to_string()),
        "\\PC{1,3}",
        Just("\u{0}".to_string()),
        Just("\u{ff0f}".to_string()),
    ];
    proptest::collection::vec(piece, 0..max).prop_map(|v| v.concat())
}

fn token_key(decoded: &str) -> bool {
    ["access_token", "component_access_token"]
        .iter()
        .any(|t| decoded.trim().eq_ignore_ascii_case(t))
}

#[test]
fn gateway_paths_accepted_are_plain_allowed_and_not_token_apis() {
    let allow = Allowlist::default();
    property(
        "gateway_path",
        prop_oneof![hostile_text(12), "\\PC{0,300}"],
        |raw| {
            let checked = ApiPath::checked(&raw);
            if let Ok(p) = ApiPath::parse(&raw, &allow) {
                let p = p.as_str();
                prop_assert_eq!(p, raw.as_str());
                prop_assert!(checked.is_ok());
                prop_assert!(!p.is_empty() && p.len() <= MAX_PATH_BYTES);
                prop_assert!(
                    p.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"-_./".contains(&b)),
                    "{:?}",
                    p
                );
                prop_assert!(p.split('/').all(|s| !s.is_empty() && s != "." && s != ".."));
                prop_assert!(!is_token_api(p));
                prop_assert!(DEFAULT_PREFIXES.iter().any(|pre| p.starts_with(pre)));
            }
            let _ = TokenParam::parse(&raw);
            Ok(())
        },
    );
}

#[test]
fn gateway_queries_never_carry_a_caller_token() {
    property("gateway_query", hostile_text(40), |raw| {
        match strip_query(&raw) {
            Ok(kept) => {
                prop_assert!(kept.len() <= raw.len() && raw.len() <= MAX_QUERY_BYTES);
                for (k, _) in url::form_urlencoded::parse(kept.as_bytes()) {
                    prop_assert!(!token_key(&k), "{:?} kept from {:?}", k, raw);
                }
                // Every kept pair was one of the caller's, in order.
                let mut pairs = raw.split('&');
                for pair in kept.split('&').filter(|p| !p.is_empty()) {
                    prop_assert!(pairs.any(|p| p == pair), "{:?} not in {:?}", pair, raw);
                }
            }
            Err(_) => prop_assert!(
                raw.len() > MAX_QUERY_BYTES
                    || !raw.bytes().all(|b| b.is_ascii_graphic() && b != b'#')
            ),
        }
        Ok(())
    });
}

#[test]
fn gateway_query_pairs_never_carry_a_caller_token() {
    let pairs = proptest::collection::vec((hostile_text(4), hostile_text(8)), 0..24);
    property("gateway_query_pairs", pairs, |pairs| {
        let refs = pairs.iter().map(|(k, v)| (k.as_str(), v.as_str()));
        if let Ok(q) = query_from_pairs(refs) {
            prop_assert!(q.len() <= MAX_QUERY_BYTES);
            let back: Vec<(String, String)> = url::form_urlencoded::parse(q.as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect();
            prop_assert!(back.iter().all(|(k, _)| !token_key(k)));
            let expected = pairs.iter().filter(|(k, _)| !token_key(k)).count();
            prop_assert_eq!(back.len(), expected);
        }
        Ok(())
    });
}

#[test]
fn gateway_requests_hold_method_size_and_content_type() {
    let strategy = (
        prop_oneof![
            Just("GET".to_string()),
            Just("POST".to_string()),
            "[A-Za-z]{0,8}",
            "\\PC{0,8}"
        ],
        proptest::option::of(prop_oneof!["\\PC{0,300}", "[ -~]{0,300}"]),
        0usize..4096,
        0usize..4096,
    );
    property(
        "gateway_request",
        strategy,
        |(method, content_type, len, max)| {
            let path = ApiPath::checked("cgi-bin/menu/create").unwrap();
            let r = ForwardRequest::new(
                &method,
                path,
                String::new(),
                content_type.as_deref(),
                vec![0; len],
                max,
            );
            if let Ok(r) = r {
                prop_assert!(method == "GET" || method == "POST");
                prop_assert!(r.body.len() <= max);
                if let Some(c) = &r.content_type {
                    prop_assert!(c.len() <= 256 && c.bytes().all(|b| (0x20..0x7f).contains(&b)));
                }
            }
            Ok(())
        },
    );
}

/// Arbitrary JSON, nesting included.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>().prop_map(|f| json!(f)),
        "\\PC{0,40}".prop_map(Value::String),
        hostile_text(6).prop_map(Value::String),
    ];
    leaf.prop_recursive(6, 64, 8, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            proptest::collection::btree_map("[a-z_]{0,12}", inner, 0..8)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Answers shaped like replies: a known (or unknown) type, known field names, hostile values.
fn reply_shaped() -> impl Strategy<Value = Value> {
    let types = prop_oneof![
        Just("none"),
        Just("text"),
        Just("image"),
        Just("voice"),
        Just("video"),
        Just("music"),
        Just("news"),
        Just("transfer_customer_service"),
        Just("TEXT"),
        Just("unknown"),
    ];
    let value = prop_oneof![
        "\\PC{0,40}".prop_map(Value::String),
        "[\\u{0}-\\u{1f}\\]>]{0,8}".prop_map(|s| Value::String(format!("a]]>{s}<x/>"))),
        Just(Value::String("https://example.com/a?b=c]]>".into())),
        Just(Value::String("javascript:alert(1)".into())),
        Just(Value::String("kf@gh_1".into())),
        (0usize..5000).prop_map(|n| Value::String("长".repeat(n))),
        Just(Value::Null),
        any::<i64>().prop_map(|n| json!(n)),
    ];
    let fields = prop_oneof![
        Just("content"),
        Just("media_id"),
        Just("thumb_media_id"),
        Just("title"),
        Just("description"),
        Just("music_url"),
        Just("hq_music_url"),
        Just("kf_account"),
        Just("surprise"),
    ];
    let article = proptest::collection::btree_map(
        prop_oneof![
            Just("title"),
            Just("description"),
            Just("pic_url"),
            Just("url")
        ],
        value.clone(),
        0..5,
    );
    (
        types,
        proptest::collection::btree_map(fields, value, 0..5),
        proptest::option::of(proptest::collection::vec(article, 0..10)),
    )
        .prop_map(|(t, fields, articles)| {
            let mut m = serde_json::Map::new();
            m.insert("type".into(), json!(t));
            for (k, v) in fields {
                m.insert(k.into(), v);
            }
            if let Some(a) = articles {
                m.insert("articles".into(), json!(a));
            }
            Value::Object(m)
        })
}

/// The reply hook's answer is outside data: arbitrary bytes, arbitrary JSON and reply-shaped
/// JSON never panic; the heap used is bounded by the answer limit; an accepted reply renders to
/// XML the general reader reads back, with the hook's text intact (CDATA cannot be broken out of).
#[test]
fn reply_hook_answers_are_parsed_within_bounds_and_render_well_formed() {
    let answers = prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..(MAX_ANSWER_BYTES + 64)),
        any_json().prop_map(|v| v.to_string().into_bytes()),
        reply_shaped().prop_map(|v| v.to_string().into_bytes()),
    ];
    property("reply_hook_answer", answers, |body| {
        let (parsed, peak) = peak_during(|| PassiveReply::parse_answer(&body));
        prop_assert!(peak < 1024 * 1024, "peak {} for {} bytes", peak, body.len());
        if body.len() > MAX_ANSWER_BYTES {
            prop_assert!(parsed.is_err());
        }
        if let Ok(Some(reply)) = parsed {
            let xml = reply.render("o_user", "gh_account", NOW);
            // `]]>` becomes 15 bytes in CDATA: a bounded expansion of the answer.
            prop_assert!(
                xml.len() <= 5 * body.len() + 512,
                "{} from {}",
                xml.len(),
                body.len()
            );
            let fields = general_fields(&xml);
            prop_assert!(fields.is_ok(), "{:?}", xml);
            let fields = fields.unwrap();
            prop_assert_eq!(fields.get("MsgType"), Some(reply.msg_type()));
            prop_assert_eq!(fields.get("ToUserName"), Some("o_user"));
            if let PassiveReply::Text { content } = &reply {
                let normalised = content.replace("\r\n", "\n").replace('\r', "\n");
                prop_assert_eq!(fields.get("Content"), Some(normalised.trim()));
            }
        }
        Ok(())
    });
}

#[test]
fn deep_or_huge_hook_answers_are_refused_without_recursion() {
    for depth in [200usize, 8_000] {
        let deep = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
        assert!(
            PassiveReply::parse_answer(deep.as_bytes()).is_err(),
            "{depth}"
        );
        let deep_obj = format!(
            "{{\"type\":\"text\",\"content\":{}1{}}}",
            "{\"a\":".repeat(depth),
            "}".repeat(depth)
        );
        assert!(PassiveReply::parse_answer(deep_obj.as_bytes()).is_err());
    }
    let huge = vec![b'['; 10 * 1024 * 1024];
    let (r, peak) = peak_during(|| PassiveReply::parse_answer(&huge));
    assert!(r.is_err());
    assert!(peak < 64 * 1024, "peak {peak} refusing a 10 MB answer");
}

const MP: &str = "wxmp00000000000001";

/// A valid release request with `ext_json` replaced.
fn release_with(ext_json: Value) -> Value {
    json!({
        "template_id": 1,
        "user_version": "1.0.0",
        "ext_json": ext_json,
        "targets": {"appids": [MP]},
    })
}

/// String values built from placeholder pieces, known and unknown.
fn templated() -> impl Strategy<Value = String> {
    proptest::collection::vec(
        prop_oneof![
            Just("{{appid}}"),
            Just("{{customer_ref}}"),
            Just("{{token}}"),
            Just("{{APPID}}"),
            Just("{{"),
            Just("}}"),
            Just("{"),
            Just("}"),
            Just("a"),
            Just("你"),
            Just("\\"),
        ],
        0..10,
    )
    .prop_map(|v| v.concat())
}

fn ext_json_tree() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        templated().prop_map(Value::String),
        any::<i64>().prop_map(|n| json!(n)),
        Just(Value::Null),
    ];
    leaf.prop_recursive(8, 64, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            proptest::collection::btree_map(templated(), inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn strings(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::String(s) => out.push(s.clone()),
        Value::Array(a) => a.iter().for_each(|x| strings(x, out)),
        Value::Object(m) => m.values().for_each(|x| strings(x, out)),
        _ => {}
    }
}

/// `ext_json` templates: an accepted one leaves no `{{` once rendered (an unknown placeholder
/// never reaches WeChat), one holding `{{token}}` is refused, and the rendering stays within the
/// size limit even with the longest values substituted.
#[test]
fn release_ext_json_templates_render_only_known_placeholders_within_bounds() {
    let ext = proptest::collection::btree_map("[a-zA-Z]{1,8}", ext_json_tree(), 0..6)
        .prop_map(|m| Value::Object(m.into_iter().collect()));
    property("release_ext_json", ext, |ext| {
        let parsed = NewRelease::parse(&release_with(ext.clone()));
        let mut values = Vec::new();
        strings(&ext, &mut values);
        if values
            .iter()
            .any(|s| s.contains("{{token}}") || s.contains("{{APPID}}"))
        {
            prop_assert!(parsed.is_err());
        }
        if let Ok(r) = parsed {
            let rendered = wxopen::releases::render(&r.ext_json, MP, Some(&"c".repeat(128)));
            let text = serde_json::to_string(&rendered).unwrap();
            prop_assert!(text.len() <= MAX_EXT_JSON_BYTES);
            let mut out = Vec::new();
            strings(&Value::Object(rendered), &mut out);
            prop_assert!(out.iter().all(|s| !s.contains("{{")), "{:?}", out);
        }
        Ok(())
    });
}

/// Whole release requests as the edge parses them: arbitrary JSON text (nesting to any depth,
/// refused by the JSON reader past its limit) never panics; an accepted one has sane fields.
#[test]
fn release_requests_of_any_shape_and_depth_never_panic() {
    let body = prop_oneof![
        any_json(),
        (any_json(), any_json(), any_json()).prop_map(|(e, t, c)| json!({
            "template_id": 1, "user_version": "1", "ext_json": e, "targets": t, "concurrency": c
        })),
        proptest::collection::vec(prop_oneof!["wx[a-z0-9]{16}", "\\PC{0,20}"], 0..12)
            .prop_map(|a| json!({"template_id": 1, "user_version": "1", "targets": {"appids": a}})),
    ];
    let strategy = (body, 0usize..400, any::<bool>());
    property("release_request", strategy, |(body, depth, arrays)| {
        // Wrapped `depth` levels deep inside ext_json, as text through the JSON reader.
        let (open, close) = if arrays { ("[", "]") } else { ("{\"k\":", "}") };
        let text = release_with(Value::Null).to_string().replace(
            "\"ext_json\":null",
            &format!(
                "\"ext_json\":{{\"d\":{}{}{}}}",
                open.repeat(depth),
                "\"{{appid}}\"",
                close.repeat(depth)
            ),
        );
        match serde_json::from_str::<Value>(&text) {
            Ok(v) => {
                prop_assert!(depth < 128);
                prop_assert!(NewRelease::parse(&v).is_ok(), "depth {}", depth);
            }
            Err(_) => prop_assert!(depth > 100),
        }
        if let Ok(r) = NewRelease::parse(&body) {
            prop_assert!((1..=100).contains(&r.concurrency));
            prop_assert!(r.template_id >= 0);
            if let wxopen::model::TargetSpec::Appids(a) = &r.targets {
                prop_assert!(a.iter().all(|x| wxopen::appid::is_valid(x)));
                let unique: std::collections::BTreeSet<_> = a.iter().collect();
                prop_assert_eq!(unique.len(), a.len());
            }
        }
        Ok(())
    });
}

const CREDIT_CHARSET: &str = "0123456789ABCDEFGHJKLMNPQRTUWXY";

fn credit_char() -> impl Strategy<Value = char> {
    proptest::sample::select(CREDIT_CHARSET.chars().collect::<Vec<_>>())
}

/// Fast-registration fields: arbitrary text never panics and what is accepted has the shape
/// WeChat wants; a code built with its check character passes and any one changed character
/// is caught.
#[test]
fn fast_registration_fields_accept_only_well_formed_values() {
    use wxopen::registration::validate::{
        check_credit_code, check_name, check_phone, with_check_char,
    };
    use wxopen::registration::{NewRegistration, RegistrationRequest};
    let field = || proptest::option::of(prop_oneof!["\\PC{0,130}", "[0-9A-Z +\\-]{0,24}"]);
    let strategy = (
        (field(), field(), field(), field(), field(), field()),
        proptest::collection::vec(credit_char(), 11),
        proptest::collection::vec(0u8..10, 6),
        (0usize..17, credit_char()),
    );
    property(
        "fast_registration",
        strategy,
        |((kind, name, code, phone, cref, oa), head, division, (at, other))| {
            let req = RegistrationRequest {
                kind: kind.as_deref(),
                name: name.as_deref(),
                code: code.as_deref(),
                component_phone: phone.as_deref(),
                customer_ref: cref.as_deref(),
                oa_appid: oa.as_deref(),
            };
            if let Ok(r) = NewRegistration::parse(&req, None) {
                prop_assert!((1..=100).contains(&r.name.chars().count()));
                prop_assert!(!r.name.chars().any(char::is_control));
                prop_assert_eq!(r.code.len(), 18);
                prop_assert_eq!(with_check_char(&r.code[..17]), Some(r.code.clone()));
                prop_assert!(r.component_phone.len() == 11 && r.component_phone.starts_with('1'));
                prop_assert!(r.component_phone.bytes().all(|b| b.is_ascii_digit()));
            }
            let _ = (check_name(name.as_deref()), check_phone(phone.as_deref()));
            // A code with its check character, then one character changed.
            let mut first17: String = head[..2].iter().collect();
            first17.extend(division.iter().map(|d| char::from(b'0' + d)));
            first17.extend(head[2..].iter());
            let good = with_check_char(&first17).unwrap();
            prop_assert_eq!(check_credit_code(Some(&good)), Ok(good.clone()));
            let mut chars: Vec<char> = good.chars().collect();
            if chars[at] != other {
                chars[at] = other;
                let bad: String = chars.into_iter().collect();
                prop_assert!(
                    check_credit_code(Some(&bad)).is_err(),
                    "{} from {}",
                    bad,
                    good
                );
            }
            Ok(())
        },
    );
}

/// Sign-in query strings and ids: `return_to`, `state`, `scope`, codes and ids from arbitrary
/// text. An accepted `return_to` is on an allowed origin, and the redirect built from it keeps
/// that origin whatever the provider's `state` holds (no open redirect through `state`).
#[test]
fn sign_in_query_values_never_open_a_redirect() {
    use wxopen::login_codes::{SignInSettings, return_url, valid_state};
    let settings = SignInSettings {
        return_to_origins: vec!["https://shop.example".into()],
        code_ttl_secs: 300,
    };
    let return_to = prop_oneof![
        "\\PC{0,80}",
        hostile_text(8).prop_map(|s| format!("https://shop.example/{s}")),
        hostile_text(8).prop_map(|s| format!("https://shop.example{s}")),
        hostile_text(4).prop_map(|s| format!("https://{s}shop.example/back")),
        (0usize..1100).prop_map(|n| format!("https://shop.example/{}", "a".repeat(n))),
    ];
    let strategy = (return_to, hostile_text(12), "\\PC{0,140}");
    property("sign_in_query", strategy, |(return_to, state, other)| {
        if let Ok(url) = settings.check_return_to(&return_to) {
            prop_assert_eq!(url.origin().ascii_serialization(), "https://shop.example");
            prop_assert!(return_to.len() <= 1024 && url.fragment().is_none());
            let back = return_url(&url, ("login_code", &"0".repeat(64)), Some(&state));
            let back = url::Url::parse(&back);
            prop_assert!(back.is_ok());
            let back = back.unwrap();
            prop_assert_eq!(back.origin().ascii_serialization(), "https://shop.example");
            let got: Vec<(String, String)> = back
                .query_pairs()
                .filter(|(k, _)| k == "state")
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect();
            prop_assert_eq!(got, vec![("state".to_string(), state.clone())]);
        }
        if valid_state(&state) {
            prop_assert!(state.len() <= 128 && state.bytes().all(|b| b.is_ascii_graphic()));
        }
        for s in [&state, &other] {
            let _ = wxopen::oauth::Scope::parse(s);
            if wxopen::oauth::valid_code(s) || wxopen::miniprogram_login::valid_js_code(s) {
                prop_assert!(!s.is_empty() && s.len() <= 128);
            }
            for (ok, len) in [
                (wxopen::login::valid_session_id(s), 32),
                (wxopen::identity::valid_identity_id(s), 32),
                (wxopen::registration::is_registration_id(s), 32),
                (wxopen::releases::is_job_id(s), 32),
                (wxopen::login_codes::valid_code(s), 64),
            ] {
                if ok {
                    prop_assert!(s.len() == len && s.bytes().all(|b| b.is_ascii_hexdigit()));
                }
            }
            if wxopen::appid::Appid::parse(s).is_ok() {
                prop_assert!(s.len() == 18 && s.starts_with("wx"));
            }
            if wxopen::identity::valid_user_id(s) {
                prop_assert!(!s.is_empty() && s.len() <= 128);
            }
        }
        Ok(())
    });
}
