//! The release-test robot (全网发布接入检测) against a minimal platform written here: it
//! authorizes its test account, then checks the event reply, the text reply, and the
//! `QUERY_AUTH_CODE` customer-service message, case by case.

use super::*;

/// An encrypted passive text reply to the push `plain`.
fn text_reply(plain: &str, content: &str) -> String {
    let reply = format!(
        "<xml><ToUserName><![CDATA[{}]]></ToUserName><FromUserName><![CDATA[{}]]></FromUserName><CreateTime>1</CreateTime><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[{content}]]></Content></xml>",
        field(plain, "FromUserName").unwrap_or_default(),
        field(plain, "ToUserName").unwrap_or_default(),
    );
    let key = AesKey::from_encoding_aes_key(AES_KEY).unwrap();
    let sealed = crypto::seal(&key, TOKEN, APPID, &reply, "1700000000", "n1").unwrap();
    crypto::reply_envelope(&sealed.encrypt, &sealed.msg_signature, "1700000000", "n1")
}

/// A platform's message URL that answers the robot, with the text reply right or wrong.
async fn platform(base: String, component_token: String, right_text: bool) -> String {
    receiver(move |c| {
        let (base, ct) = (base.clone(), component_token.clone());
        async move {
            let plain = open_push(&c);
            let content = field(&plain, "Content").unwrap_or_default();
            if let Some(event) = field(&plain, "Event") {
                return (200, text_reply(&plain, &format!("{event}from_callback")));
            }
            if let Some(code) = content.strip_prefix("QUERY_AUTH_CODE:") {
                let (code, user) = (code.to_string(), field(&plain, "FromUserName").unwrap());
                tokio::spawn(async move {
                    let http = client(Duration::from_secs(10));
                    let q: Value = http
                        .post(format!(
                            "{base}/cgi-bin/component/api_query_auth?component_access_token={ct}"
                        ))
                        .json(&json!({ "component_appid": APPID, "authorization_code": code }))
                        .send()
                        .await
                        .unwrap()
                        .json()
                        .await
                        .unwrap();
                    let at = q["authorization_info"]["authorizer_access_token"]
                        .as_str()
                        .unwrap();
                    http.post(format!(
                        "{base}/cgi-bin/message/custom/send?access_token={at}"
                    ))
                    .json(&json!({
                        "touser": user, "msgtype": "text",
                        "text": { "content": format!("{code}_from_api") },
                    }))
                    .send()
                    .await
                    .unwrap();
                });
                return (200, String::new());
            }
            let answer = if right_text {
                format!("{content}_callback")
            } else {
                format!("got {content}")
            };
            (200, text_reply(&plain, &answer))
        }
    })
    .await
}

async fn run(right_text: bool) -> (Sb, Value, Log) {
    let sb = Sb::start().await;
    let ct = sb.component_token().await;
    let (component_url, pushes) = component_receiver().await;
    let message_base = platform(sb.handle.base_url(), ct, right_text).await;
    sb.handle
        .set_callbacks(Some(component_url), Some(message_base));
    let report = sb
        .post(
            "/sandbox/release-test/run",
            json!({ "appid": "wx570bc396a51b8ff8" }),
        )
        .await;
    (sb, report, pushes)
}

#[tokio::test]
async fn the_robot_authorizes_then_passes_a_platform_that_answers_right() {
    let (sb, report, pushes) = run(true).await;
    assert_eq!(report["passed"], true, "{report:#}");
    let names: Vec<&str> = report["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["event", "text", "query_auth_code"]);
    // It authorized its test account first (an `authorized` push), then messaged it.
    let first = open_push(&pushes.lock().unwrap()[0]);
    assert_eq!(field(&first, "InfoType").as_deref(), Some("authorized"));
    assert_eq!(
        field(&first, "AuthorizerAppid").as_deref(),
        Some("wx570bc396a51b8ff8")
    );
    let sent = sb.handle.custom_messages();
    assert_eq!(sent.len(), 1);
    assert!(sent[0].content.ends_with("_from_api"), "{sent:?}");
    // A second run finds the account authorized: no second push.
    let again = sb
        .post(
            "/sandbox/release-test/run",
            json!({ "appid": "wx570bc396a51b8ff8" }),
        )
        .await;
    assert_eq!(again["passed"], true, "{again:#}");
    assert_eq!(pushes.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn a_wrong_text_reply_fails_that_case_only() {
    let (_sb, report, _) = run(false).await;
    assert_eq!(report["passed"], false, "{report:#}");
    let verdicts: Vec<(&str, bool)> = report["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["name"].as_str().unwrap(), c["passed"] == true))
        .collect();
    assert_eq!(
        verdicts,
        [("event", true), ("text", false), ("query_auth_code", true)]
    );
    assert_eq!(report["cases"][1]["got"], "got TESTCOMPONENT_MSG_TYPE_TEXT");
    assert_eq!(
        report["cases"][1]["expected"],
        "TESTCOMPONENT_MSG_TYPE_TEXT_callback"
    );
}
