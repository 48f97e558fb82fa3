//! WeChat's full-network release test (全网发布接入检测), as its robot runs it against a platform's
//! message URL: an event, a text message, and `QUERY_AUTH_CODE:<code>`, each with its deadline.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::Shared;
use super::actors::user;
use super::push::{self, AuthPush, F};
use super::util::{msg_id, openid, xml_field};

/// WeChat waits 5 s for a passive reply.
pub const REPLY_DEADLINE: Duration = Duration::from_secs(5);
/// The `_from_api` customer-service message must arrive soon after (10 s is commonly cited).
pub const CUSTOM_MESSAGE_DEADLINE: Duration = Duration::from_secs(10);
const ROBOT: &str = "release-test-robot";

struct Case {
    name: &'static str,
    passed: bool,
    expected: String,
    got: String,
    elapsed_ms: u128,
}

fn content_of(reply: &Value) -> String {
    reply
        .as_str()
        .and_then(|r| xml_field(r, "Content"))
        .unwrap_or_else(|| reply.as_str().unwrap_or_default().to_string())
}

/// Runs the three cases against the platform for test account `appid` (authorizing it first,
/// as WeChat's robot does, if it is not yet authorized). Returns `{passed, cases}`.
/// Runs the three cases. With `retry_while_running`, the `QUERY_AUTH_CODE` message is delivered
/// twice at once (a WeChat retry while the first delivery is still working): the platform must
/// still send `<code>_from_api` exactly once (`custom_sends` in the report).
pub async fn run(
    shared: &Arc<Shared>,
    appid: &str,
    retry_while_running: bool,
) -> Result<Value, String> {
    // The robot's test account authorizes the platform: an `authorized` push.
    let auth = {
        let mut st = shared.lock();
        let now = st.now();
        let m = st.merchants.get(appid).ok_or("unknown test account")?;
        if m.authorization.is_some() {
            None
        } else {
            let func = m.func_info.clone();
            let (code, _) = st.authorize(appid, func).ok_or("unknown test account")?;
            Some(push::authorized_xml(&AuthPush {
                info_type: "authorized",
                component_appid: &st.config.component_appid,
                now,
                authorizer_appid: appid,
                code: &code,
                code_expires_at: now.saturating_add(st.config.auth_code_ttl_secs),
                pre_auth_code: None,
            }))
        }
    };
    if let Some(xml) = auth {
        let d = push::deliver_component(shared, "authorized", xml).await;
        if !d.delivered {
            return Err(format!(
                "the authorized push was not accepted: {:?}",
                d.error
            ));
        }
    }
    let mut cases = Vec::new();

    // 1. An event → text reply "<Event>from_callback".
    let started = Instant::now();
    let r = message(
        shared,
        appid,
        "event",
        vec![
            ("Event", F::Text("LOCATION".into())),
            ("Latitude", F::Num("23.1".into())),
            ("Longitude", F::Num("113.3".into())),
            ("Precision", F::Num("119.4".into())),
        ],
    )
    .await;
    let got = content_of(&r["reply"]);
    cases.push(Case {
        name: "event",
        passed: got == "LOCATIONfrom_callback" && started.elapsed() < REPLY_DEADLINE,
        expected: "LOCATIONfrom_callback".into(),
        got,
        elapsed_ms: started.elapsed().as_millis(),
    });

    // 2. Text TESTCOMPONENT_MSG_TYPE_TEXT → "TESTCOMPONENT_MSG_TYPE_TEXT_callback".
    let started = Instant::now();
    let r = message(
        shared,
        appid,
        "text",
        vec![
            ("Content", F::Text("TESTCOMPONENT_MSG_TYPE_TEXT".into())),
            ("MsgId", F::Num(msg_id())),
        ],
    )
    .await;
    let got = content_of(&r["reply"]);
    cases.push(Case {
        name: "text",
        passed: got == "TESTCOMPONENT_MSG_TYPE_TEXT_callback" && started.elapsed() < REPLY_DEADLINE,
        expected: "TESTCOMPONENT_MSG_TYPE_TEXT_callback".into(),
        got,
        elapsed_ms: started.elapsed().as_millis(),
    });

    // 3. QUERY_AUTH_CODE:<fresh code> → empty reply at once, then a customer-service message
    //    "<code>_from_api" sent with the authorizer token obtained through api_query_auth.
    let code = shared.lock().new_auth_code(appid);
    let started = Instant::now();
    // One MsgId for both deliveries when WeChat delivers it again while the first runs.
    let query_msg_id = msg_id();
    let query = || {
        message(
            shared,
            appid,
            "text",
            vec![
                ("Content", F::Text(format!("QUERY_AUTH_CODE:{code}"))),
                ("MsgId", F::Num(query_msg_id.clone())),
            ],
        )
    };
    let r = if retry_while_running {
        let (first, _retry) = tokio::join!(query(), query());
        first
    } else {
        query().await
    };
    let reply_ok = r["status"] == 200
        && r["delivery"]["body"]
            .as_str()
            .is_some_and(|b| b.trim().is_empty());
    let reply_ms = started.elapsed().as_millis();
    let expected = format!("{code}_from_api");
    let user = openid(appid, ROBOT);
    let sent = loop {
        let found = shared
            .lock()
            .custom_messages
            .iter()
            .any(|m| m.appid == appid && m.touser == user && m.content == expected);
        if found || started.elapsed() > CUSTOM_MESSAGE_DEADLINE {
            break found;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    cases.push(Case {
        name: "query_auth_code",
        passed: reply_ok && sent && reply_ms < REPLY_DEADLINE.as_millis(),
        expected: format!("empty reply, then customer-service text {expected:?}"),
        got: format!(
            "reply {:?} in {reply_ms} ms; customer-service message {}",
            r["delivery"]["body"],
            if sent { "sent" } else { "not sent in time" }
        ),
        elapsed_ms: started.elapsed().as_millis(),
    });

    let passed = cases.iter().all(|c| c.passed);
    let custom_sends = shared
        .lock()
        .custom_messages
        .iter()
        .filter(|m| m.appid == appid && m.touser == user && m.content == expected)
        .count();
    Ok(json!({
        "appid": appid,
        "passed": passed,
        "custom_sends": custom_sends,
        "cases": cases.iter().map(|c| json!({
            "name": c.name, "passed": c.passed, "expected": c.expected, "got": c.got, "elapsed_ms": c.elapsed_ms,
        })).collect::<Vec<_>>(),
    }))
}

/// One message from the robot to the platform's message URL, as the user actor sends it
/// (encrypted, signed, the passive reply read).
async fn message(
    shared: &Arc<Shared>,
    appid: &str,
    msg_type: &'static str,
    fields: Vec<(&'static str, F)>,
) -> Value {
    user::send_as_user(shared, appid, ROBOT, msg_type, &fields)
        .await
        .unwrap_or_else(|f| json!({ "error": f.error }))
}
