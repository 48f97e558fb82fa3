//! `make dev` aimed elsewhere: `wxopen-local serve` with `WECHAT_API_BASE` & co. and a
//! credentials file talks to that server (a stand-in on 127.0.0.1 in this test), with those
//! credentials, and starts no sandbox; bad aim values exit non-zero with a message, no panic.
//!
//! Runs the real binary (the one `make dev` runs) against moto, as `make test` provides it.

use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::Uri;
use serde_json::{Value, json};
use wxopen::crypto::{self, AesKey};

use crate::common::{local_stack_command, serve_local};

const BIN: &str = env!("CARGO_BIN_EXE_wxopen-local");
const STANDIN_APPID: &str = "wxstandin000000001";
const STANDIN_SECRET: &str = "stand-in-appsecret";
const STANDIN_TOKEN: &str = "stand-in-token";
const STANDIN_KEY: &str = "GFEDCBAzyxwvutsrqponmlkjihgfedcba9876543210";
const MP_BASE: &str = "http://mp.stand-in.test";
const OPEN_BASE: &str = "http://open.stand-in.test";

/// One request the stand-in received: path, query, JSON body.
type Seen = Arc<Mutex<Vec<(String, String, Value)>>>;

/// A tiny WeChat stand-in: answers the two component calls the authorization link needs and
/// records every request.
async fn stand_in() -> (String, Seen) {
    let seen: Seen = Arc::default();
    let app = axum::Router::new()
        .fallback(
            |State(seen): State<Seen>, uri: Uri, RawQuery(q): RawQuery, body: Bytes| async move {
                let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                let path = uri.path().to_string();
                seen.lock()
                    .unwrap()
                    .push((path.clone(), q.unwrap_or_default(), body));
                axum::Json(match path.as_str() {
                    "/cgi-bin/component/api_component_token" => json!({
                        "component_access_token": "stand-in-component-token",
                        "expires_in": 7200
                    }),
                    "/cgi-bin/component/api_create_preauthcode" => json!({
                        "pre_auth_code": "stand-in-preauthcode",
                        "expires_in": 1800
                    }),
                    _ => json!({ "errcode": -1, "errmsg": "not served by the stand-in" }),
                })
            },
        )
        .with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (base, seen)
}

/// A `component_verify_ticket` push sealed with `token`/`key` for `appid`, as WeChat sends it.
async fn push_ticket(
    http: &reqwest::Client,
    gateway: &str,
    (appid, token, key): (&str, &str, &str),
    ticket: &str,
) -> (u16, String) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let plain = format!(
        "<xml><AppId><![CDATA[{appid}]]></AppId><CreateTime>{now}</CreateTime><InfoType><![CDATA[component_verify_ticket]]></InfoType><ComponentVerifyTicket><![CDATA[{ticket}]]></ComponentVerifyTicket></xml>"
    );
    let (ts, nonce) = (now.to_string(), format!("n{now}{ticket}"));
    let key = AesKey::from_encoding_aes_key(key).unwrap();
    let sealed = crypto::seal(&key, token, appid, &plain, &ts, &nonce).unwrap();
    let resp = http
        .post(format!("{gateway}/wechat/component"))
        .query(&[
            ("timestamp", ts.as_str()),
            ("nonce", nonce.as_str()),
            ("encrypt_type", "aes"),
            ("msg_signature", sealed.msg_signature.as_str()),
            ("signature", &crypto::url_signature(token, &ts, &nonce)),
        ])
        .body(format!(
            "<xml><AppId><![CDATA[{appid}]]></AppId><Encrypt><![CDATA[{}]]></Encrypt></xml>",
            sealed.encrypt
        ))
        .send()
        .await
        .unwrap();
    (resp.status().as_u16(), resp.text().await.unwrap())
}

#[tokio::test]
async fn aimed_local_stack_talks_to_the_stand_in_with_its_credentials() {
    // Fails (never skips) without moto: the child needs it too.
    let _ = wxopen_tests::aws_config().await;
    let (api_base, seen) = stand_in().await;
    let creds = std::env::temp_dir().join(format!("wxopen-aim-{}.json", std::process::id()));
    std::fs::write(
        &creds,
        json!({
            "component_appid": STANDIN_APPID,
            "component_appsecret": STANDIN_SECRET,
            "token": STANDIN_TOKEN,
            "encoding_aes_key": STANDIN_KEY,
        })
        .to_string(),
    )
    .unwrap();
    let creds_path = creds.to_string_lossy().to_string();
    let mut cmd = local_stack_command(&[
        ("WECHAT_API_BASE", &api_base),
        ("WECHAT_MP_BASE", MP_BASE),
        ("WECHAT_OPEN_BASE", OPEN_BASE),
        ("WXOPEN_CREDENTIALS_FILE", &creds_path),
    ]);
    cmd.stderr(Stdio::inherit());
    let (_served, lines, gateway) = serve_local(cmd).await;
    std::fs::remove_file(&creds).unwrap();
    let banner = lines.join("\n");
    assert!(banner.contains("not the sandbox"), "{banner}");
    assert!(
        lines
            .iter()
            .any(|l| l.contains("WeChat API") && l.contains(&api_base)),
        "the banner names the aimed API host: {banner}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains("sandbox") && l.contains("not started")),
        "{banner}"
    );
    assert!(banner.contains(STANDIN_APPID), "{banner}");
    assert!(!banner.contains(STANDIN_SECRET), "{banner}");

    let http = reqwest::Client::new();
    // A push sealed with the sandbox's test component is refused: the aim's credentials replaced
    // them.
    let (status, _) = push_ticket(
        &http,
        &gateway,
        (
            wxopen_tests::APPID,
            wxopen_tests::TOKEN,
            wxopen_tests::AES_KEY,
        ),
        "sandbox-ticket",
    )
    .await;
    assert_ne!(status, 200, "a push for the test component is refused");
    let (status, body) = push_ticket(
        &http,
        &gateway,
        (STANDIN_APPID, STANDIN_TOKEN, STANDIN_KEY),
        "stand-in-ticket",
    )
    .await;
    assert_eq!((status, body.as_str()), (200, "success"));
    assert!(
        seen.lock().unwrap().is_empty(),
        "a ticket push calls no WeChat API"
    );

    // The authorization link: api_component_token, then api_create_preauthcode, at the stand-in.
    let resp = http
        .post(format!("{gateway}/authorize/links"))
        .json(&json!({"customer_ref": "aim-test"}))
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let links: Value = resp.json().await.unwrap();
    assert_eq!(status, 201, "{links}");
    let pc_url = links["pc_url"].as_str().unwrap_or_default();
    assert!(
        pc_url.starts_with(&format!("{MP_BASE}/cgi-bin/componentloginpage?")),
        "{pc_url}"
    );
    assert!(
        pc_url.contains("pre_auth_code=stand-in-preauthcode"),
        "{pc_url}"
    );
    assert!(
        pc_url.contains(&format!("component_appid={STANDIN_APPID}")),
        "{pc_url}"
    );
    let mobile_url = links["mobile_url"].as_str().unwrap_or_default();
    assert!(
        mobile_url.starts_with(&format!("{OPEN_BASE}/wxaopen/safe/bindcomponent?")),
        "{mobile_url}"
    );

    let seen = seen.lock().unwrap().clone();
    let paths: Vec<&str> = seen.iter().map(|(p, _, _)| p.as_str()).collect();
    assert_eq!(
        paths,
        [
            "/cgi-bin/component/api_component_token",
            "/cgi-bin/component/api_create_preauthcode"
        ]
    );
    assert_eq!(
        seen[0].2,
        json!({
            "component_appid": STANDIN_APPID,
            "component_appsecret": STANDIN_SECRET,
            "component_verify_ticket": "stand-in-ticket",
        })
    );
    assert!(
        seen[1]
            .1
            .contains("component_access_token=stand-in-component-token"),
        "the pre-auth code was asked for with the stand-in's token: {:?}",
        seen[1].1
    );
    assert_eq!(seen[1].2, json!({ "component_appid": STANDIN_APPID }));
}

/// Runs `wxopen-local serve 0` with `vars` to its end (it must exit on its own).
fn serve_fails(vars: &[(&str, &str)]) -> (Option<i32>, String) {
    // Without moto a value wrongly accepted ends the child at once too (status 1), never hangs.
    let out = local_stack_command(vars)
        .env_remove("AWS_ENDPOINT_URL")
        .stdin(Stdio::null())
        .output()
        .expect("wxopen-local runs");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

#[test]
fn bad_aim_values_exit_non_zero_with_a_message() {
    let creds = r#"{"component_appid":"wx1","component_appsecret":"s3cret","token":"t","encoding_aes_key":"abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"}"#;
    let cases: &[(&[(&str, &str)], &str)] = &[
        (
            &[
                ("WECHAT_API_BASE", "127.0.0.1 port 9"),
                ("WXOPEN_CREDENTIALS_JSON", creds),
            ],
            "WECHAT_API_BASE",
        ),
        (
            &[
                ("WECHAT_API_BASE", "http://127.0.0.1:9"),
                ("WXOPEN_CREDENTIALS_JSON", "{\"component_appid\": s3cret"),
            ],
            "WXOPEN_CREDENTIALS_JSON",
        ),
        (
            &[
                ("WECHAT_API_BASE", "http://127.0.0.1:9"),
                (
                    "WXOPEN_CREDENTIALS_FILE",
                    "/no/such/wxopen-credentials.json",
                ),
            ],
            "/no/such/wxopen-credentials.json",
        ),
        (
            &[("WECHAT_API_BASE", "http://127.0.0.1:9")],
            "WXOPEN_CREDENTIALS_FILE",
        ),
    ];
    for (vars, named) in cases {
        let (code, stderr) = serve_fails(vars);
        assert_eq!(code, Some(2), "{vars:?}: {stderr}");
        assert!(stderr.contains(named), "{vars:?} names {named}: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
        assert!(!stderr.contains("s3cret"), "no credential quoted: {stderr}");
    }
    let out = Command::new(BIN)
        .args(["serve", "eighty"])
        .env_remove("AWS_ENDPOINT_URL")
        .output()
        .expect("wxopen-local runs");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("port"));
}
