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
