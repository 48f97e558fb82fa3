//! The push path per message: verify the signature, decrypt, parse a `component_verify_ticket`
//! push and an `authorized` push, against the floor of the AES + SHA-1 work alone on the same
//! bytes. Writes the exact inputs to `target/bench/push-inputs.json` so wechatpy and
//! wechat-crypto are measured on identical bytes (see scripts/bench.sh).

use std::hint::black_box;
use std::time::Duration;

use aes::cipher::block_padding::NoPadding;
use aes::cipher::{BlockModeDecrypt, KeyIvInit};
use base64::Engine as _;
use criterion::{Criterion, criterion_group, criterion_main};
use wxopen::crypto::{self, AesKey};
use wxopen::push::{self, PushQuery};
use wxopen::secrets::ComponentCredentials;
use wxopen::xml::ComponentPush;

const KEY: &str = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG";
const APPID: &str = "wx1234567890abcdef";
const TOKEN: &str = "wxopen-test-token";
const TS: &str = "1763856000";
const NONCE: &str = "1320562132";

struct Input {
    name: &'static str,
    body: String,
    encrypt: String,
    signature: String,
}

fn inputs() -> Vec<Input> {
    let key = AesKey::from_encoding_aes_key(KEY).unwrap();
    let ticket = format!(
        "<xml><AppId><![CDATA[{APPID}]]></AppId><CreateTime>1763856000</CreateTime><InfoType><![CDATA[component_verify_ticket]]></InfoType><ComponentVerifyTicket><![CDATA[ticket@@@{}]]></ComponentVerifyTicket></xml>",
        "T".repeat(64)
    );
    let authorized = format!(
        "<xml><AppId><![CDATA[{APPID}]]></AppId><CreateTime>1763856000</CreateTime><InfoType><![CDATA[authorized]]></InfoType><AuthorizerAppid><![CDATA[wx570bc396a51b8ff8]]></AuthorizerAppid><AuthorizationCode><![CDATA[queryauthcode@@@{}]]></AuthorizationCode><AuthorizationCodeExpiredTime>1763859600</AuthorizationCodeExpiredTime><PreAuthCode><![CDATA[preauthcode@@@{}]]></PreAuthCode></xml>",
        "C".repeat(64),
        "P".repeat(48)
    );
    [("ticket", ticket), ("authorized", authorized)]
        .into_iter()
        .map(|(name, plain)| {
            let encrypt = key.encrypt_with_random(&plain, APPID, b"0123456789abcdef").unwrap();
            let signature = crypto::msg_signature(TOKEN, TS, NONCE, &encrypt);
            let body = format!("<xml><AppId><![CDATA[{APPID}]]></AppId><Encrypt><![CDATA[{encrypt}]]></Encrypt></xml>");
            Input { name, body, encrypt, signature }
        })
        .collect()
}

fn write_inputs(inputs: &[Input]) {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../target/bench");
    let _ = std::fs::create_dir_all(dir);
    let json = serde_json::json!({
        "token": TOKEN, "encoding_aes_key": KEY, "appid": APPID, "timestamp": TS, "nonce": NONCE,
        "cases": inputs.iter().map(|i| serde_json::json!({
            "name": i.name, "body": i.body, "msg_signature": i.signature,
        })).collect::<Vec<_>>(),
    });
    std::fs::write(format!("{dir}/push-inputs.json"), json.to_string()).unwrap();
}

fn bench(c: &mut Criterion) {
    let inputs = inputs();
    write_inputs(&inputs);
    let creds = ComponentCredentials::new(APPID, "secret", TOKEN, KEY).unwrap();
    let key_bytes =
        hex::decode("69b71d79f8218a39259a7a29aabb2dbafc31cb3d35db7e39ebbf3d0010831051").unwrap();
    let mut group = c.benchmark_group("push");
    group
        .measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_secs(1));
    for input in &inputs {
        let q = PushQuery {
            timestamp: Some(TS.into()),
            nonce: Some(NONCE.into()),
            msg_signature: Some(input.signature.clone()),
            encrypt_type: Some("aes".into()),
        };
        // Sanity: the path really works on these bytes.
        let opened = push::open(
            &creds,
            &q,
            input.body.as_bytes(),
            1_763_856_000,
            Duration::from_secs(300),
        )
        .unwrap();
        use secrecy::ExposeSecret;
        ComponentPush::parse(opened.plaintext.expose_secret()).unwrap();

        group.bench_function(format!("wxopen_{}", input.name), |b| {
            b.iter(|| {
                let opened = push::open(
                    &creds,
                    &q,
                    black_box(input.body.as_bytes()),
                    1_763_856_000,
                    Duration::from_secs(300),
                )
                .unwrap();
                black_box(ComponentPush::parse(opened.plaintext.expose_secret()).unwrap());
            })
        });

        // The floor: SHA-1 over the signature input and AES-256-CBC over the same ciphertext.
        let raw = base64::engine::general_purpose::STANDARD
            .decode(&input.encrypt)
            .unwrap();
        let key: [u8; 32] = key_bytes.clone().try_into().unwrap();
        let mut iv = [0u8; 16];
        iv.copy_from_slice(&key[..16]);
        group.bench_function(format!("floor_{}", input.name), |b| {
            let mut buf = raw.clone();
            b.iter(|| {
                black_box(crypto::msg_signature(
                    TOKEN,
                    TS,
                    NONCE,
                    black_box(&input.encrypt),
                ));
                buf.copy_from_slice(&raw);
                let pt = cbc::Decryptor::<aes::Aes256>::new(&key.into(), &iv.into())
                    .decrypt_padded::<NoPadding>(black_box(&mut buf))
                    .unwrap();
                black_box(pt.len());
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
