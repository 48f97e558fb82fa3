//! Each function's role under moto's IAM enforcement: the stack created from the translated
//! template (`tests/py/deployed_stack.py`) in a moto of its own ([`IamMoto`]; the suite's shared
//! moto runs without auth), `sts:AssumeRole` into every function role, then enforcement on and
//! each call signed with that role's assumed-role credentials (`tests/py/iam_probe.py`). moto
//! enforces assumed-role credentials: it looks the key up among STS's sessions and collects the
//! role's inline and attached policies.
//!
//! What moto 5.2 enforces, and what it does not (read from `moto/core/authorization.py`,
//! `moto/iam/access_control.py`, and shown by the probe):
//! * the action, for every service whose responses go through `call_action`;
//! * the resource only for SQS (the queue's ARN): DynamoDB, Secrets Manager and EventBridge
//!   calls are authorized against `Resource: "*"`, so an Allow scoped to the table, secret or bus
//!   ARN never matches and every call is denied. The probe therefore widens those statements to
//!   `"*"`: what is checked there is the role's action set, not its resources;
//! * no condition key (`dynamodb:LeadingKeys`, `dynamodb:Attributes`): a conditioned Allow is
//!   an explicit deny in moto. The probe drops conditions; `template.rs` owns them;
//! * a role created by moto's CloudFormation keeps its inline policy as a dict that the
//!   enforcement cannot read (a 500 on every call), and the secret's ARN (a resource moto's
//!   CloudFormation does not create) resolves to the string "None": the probe puts the stack's
//!   own documents again through `iam:PutRolePolicy`, with the stand-in secret's ARN;
//! * managed policies (AWSLambdaBasicExecutionRole) are not attached by moto; they grant logs
//!   only, which no probe calls.
//!
//! Roles covered: all 20 function roles the stack creates plus the schedule's role (21), each
//! probed with GetItem, Query, PutItem on the table, GetSecretValue on the secret, PutEvents on the
//! bus and SendMessage to each of the stack's three queues (the probe calls boto3). The functions'
//! own Rust code under these credentials: see the last test, which says what it proves.

use std::collections::BTreeSet;
use std::process::Command;
use std::sync::OnceLock;

use serde_json::Value;
use wxopen_tests::iam::IamMoto;
use wxopen_tests::unique;

const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/..");

/// The probe's outcomes, once for every test: role → {"allowed": [...], "probes": {action: outcome}}.
fn probe() -> &'static Value {
    static PROBE: OnceLock<Value> = OnceLock::new();
    PROBE.get_or_init(|| {
        let moto = IamMoto::start();
        run_probe(&moto.endpoint, &unique("iam"), &[])
    })
}

/// `iam_probe.py` against the moto at `endpoint` (with moto's root credentials); its JSON.
fn run_probe(endpoint: &str, stack: &str, extra: &[&str]) -> Value {
    let python = std::env::var("WXOPEN_PYTHON").unwrap();
    let out = Command::new(python)
        .arg(format!("{ROOT}/tests/py/iam_probe.py"))
        .args([&format!("{ROOT}/template.yaml"), stack])
        .args(extra)
        .env("AWS_ENDPOINT_URL", endpoint)
        .env("AWS_REGION", "us-east-1")
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env_remove("AWS_SESSION_TOKEN")
        .env_remove("AWS_PROFILE")
        .output()
        .expect("run iam_probe.py");
    assert!(
        out.status.success(),
        "iam_probe.py {extra:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("probe JSON")
}

fn outcome(role: &str, action: &str) -> String {
    let probes = &probe()[role]["probes"];
    let hit = probes
        .as_object()
        .unwrap_or_else(|| panic!("no role {role}"))
        .iter()
        .find(|(k, _)| k.as_str() == action || k.starts_with(&format!("{action}[")))
        .unwrap_or_else(|| panic!("no probe {action} for {role}"));
    hit.1.as_str().unwrap().to_string()
}

/// `sqs:SendMessage` to the stack's queue whose name holds `logical` (e.g. "ReleaseQueue").
fn send_to(role: &str, logical: &str) -> String {
    let probes = probe()[role]["probes"].as_object().unwrap();
    let (_, v) = probes
        .iter()
        .find(|(k, _)| k.starts_with("sqs:SendMessage[") && k.contains(&format!("-{logical}-")))
        .unwrap_or_else(|| panic!("no queue {logical}"));
    v.as_str().unwrap().to_string()
}

#[test]
fn every_role_is_allowed_exactly_what_its_policy_names() {
    let roles = probe().as_object().unwrap();
    assert_eq!(
        roles.len(),
        21,
        "20 function roles and the schedule's: {:?}",
        roles.keys()
    );
    let mut mismatches = Vec::new();
    for (role, v) in roles {
        let allowed: BTreeSet<&str> = v["allowed"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap())
            .collect();
        for (action, got) in v["probes"].as_object().unwrap() {
            let want = if allowed.contains(action.as_str()) {
                "ok"
            } else {
                "denied"
            };
            if got != want {
                mismatches.push(format!("{role} {action}: {got}, policy says {want}"));
            }
        }
    }
    assert!(mismatches.is_empty(), "{mismatches:#?}");
}

#[test]
fn the_least_privilege_policies_are_enough() {
    // Reads and the token holders.
    for role in ["AuthorizersFunctionRole", "StatusFunctionRole"] {
        assert_eq!(outcome(role, "dynamodb:Query"), "ok", "{role}");
        assert_eq!(outcome(role, "dynamodb:GetItem"), "ok", "{role}");
    }
    assert_eq!(
        outcome("LoginSessionStatusFunctionRole", "dynamodb:GetItem"),
        "ok"
    );
    for role in [
        "AccessTokenFunctionRole",
        "TokenRefreshFunctionRole",
        "WeChatGatewayFunctionRole",
        "ComponentEventsFunctionRole",
    ] {
        assert_eq!(
            outcome(role, "secretsmanager:GetSecretValue"),
            "ok",
            "{role}"
        );
    }
    // component-events stores the ticket; message-events publishes.
    assert_eq!(
        outcome("ComponentEventsFunctionRole", "dynamodb:PutItem"),
        "ok"
    );
    assert_eq!(
        outcome("MessageEventsFunctionRole", "events:PutEvents"),
        "ok"
    );
    assert_eq!(
        outcome("TokenRefreshFunctionRole", "events:PutEvents"),
        "ok"
    );
    // The release queue: the releases function and the worker send to it.
    assert_eq!(send_to("ReleasesFunctionRole", "ReleaseQueue"), "ok");
    assert_eq!(send_to("ReleaseWorkerFunctionRole", "ReleaseQueue"), "ok");
    assert_eq!(
        send_to("TokenRefreshFunctionRole", "RefresherDeadLetterQueue"),
        "ok"
    );
}

#[test]
fn a_function_cannot_do_what_its_policy_does_not_name() {
    // The authorizers listing holds no secret and writes nothing.
    assert_eq!(
        outcome("AuthorizersFunctionRole", "secretsmanager:GetSecretValue"),
        "denied"
    );
    assert_eq!(
        outcome("AuthorizersFunctionRole", "dynamodb:PutItem"),
        "denied"
    );
    // The read-only functions cannot write.
    assert_eq!(outcome("StatusFunctionRole", "dynamodb:PutItem"), "denied");
    assert_eq!(
        outcome("StatusFunctionRole", "secretsmanager:GetSecretValue"),
        "denied"
    );
    assert_eq!(
        outcome("LoginSessionStatusFunctionRole", "dynamodb:PutItem"),
        "denied"
    );
    assert_eq!(
        outcome("LoginSessionStatusFunctionRole", "dynamodb:Query"),
        "denied"
    );
    // Functions without the bus cannot publish.
    for role in [
        "AuthorizersFunctionRole",
        "StatusFunctionRole",
        "AccessTokenFunctionRole",
        "SignInPagesFunctionRole",
        "IdentitiesFunctionRole",
        "ReleasesFunctionRole",
    ] {
        assert_eq!(outcome(role, "events:PutEvents"), "denied", "{role}");
    }
    // SQS is checked on the queue's ARN: the worker may send to the release queue only, not to
    // the dead-letter queues; functions without a queue send nowhere.
    assert_eq!(
        send_to("ReleaseWorkerFunctionRole", "ReleaseDeadLetterQueue"),
        "denied"
    );
    assert_eq!(
        send_to("ReleasesFunctionRole", "RefresherDeadLetterQueue"),
        "denied"
    );
    assert_eq!(send_to("AccessTokenFunctionRole", "ReleaseQueue"), "denied");
    // The identities function holds no secret.
    assert_eq!(
        outcome("IdentitiesFunctionRole", "secretsmanager:GetSecretValue"),
        "denied"
    );
}

/// The functions' own Rust code under their roles: the stack created in an [`IamMoto`] as for
/// the probe (`iam_probe.py --setup`: the same role documents, the same widening), seeded with
/// moto's root credentials, then enforcement on and each function's wiring
/// ([`Runtime::from_parts`], the constructor `main.rs` uses through `Runtime::load`) built from
/// its role's assumed-role credentials, the sandbox as WeChat.
///
/// Proven under enforcement: the refresher's whole run (secret, ticket, lease, WeChat, the new
/// token, the outbox swept to the bus, the release part's open-jobs reads), the authorize-link
/// handler making a link with that token, the status handler's every read, and the message
/// URL's handler (secret, push record, outbox transaction, PutEvents) answering `success` with
/// nothing left in the outbox. Refused, typed and without a panic: the status role's writes and
/// its secret read, the authorize-link role's Query (and the status handler over that role's
/// store: a 5xx in the error shape), PutEvents by the gateway's and authorize-link's roles.
/// Not proven here (moto cannot): the ARN scoping of the table, secret and bus statements and the
/// `dynamodb:LeadingKeys` conditions (the template tests own them).
#[tokio::test]
async fn the_functions_own_code_runs_under_its_role_and_is_refused_the_rest() {
    use std::collections::HashMap;

    use aws_config::BehaviorVersion;
    use lambda_http::Body;
    use secrecy::SecretString;
    use wxopen::clock::{Clock, SystemClock};
    use wxopen::config::Config;
    use wxopen::events::{EventEntry, EventPublisher};
    use wxopen::model::StoredTicket;
    use wxopen::runtime::{FromRuntime, Runtime};
    use wxopen::secrets::CredentialsProvider;
    use wxopen::store::outbox::{EventRecordStore, OutboxEntry};
    use wxopen::store::{AuthorizerStore, DynamoStore, StoreError, TicketStore};
    use wxopen_tests::sandbox::{self, SandboxConfig};
    use wxopen_tests::{SignedPush, body_text, credentials_json, request};

    let moto = tokio::task::spawn_blocking(IamMoto::start).await.unwrap();
    let endpoint = moto.endpoint.clone();
    let setup: Value = tokio::task::spawn_blocking({
        let endpoint = endpoint.clone();
        move || run_probe(&endpoint, &unique("iamrs"), &["--setup"])
    })
    .await
    .unwrap();
    let table = setup["table"].as_str().unwrap().to_string();
    let secret = setup["secret"].as_str().unwrap().to_string();
    let bus = setup["bus"].as_str().unwrap().to_string();

    async fn sdk(
        endpoint: &str,
        key: &str,
        secret: &str,
        token: Option<&str>,
    ) -> aws_config::SdkConfig {
        aws_config::defaults(BehaviorVersion::latest())
            .endpoint_url(endpoint)
            .region(aws_config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
                key,
                secret,
                token.map(str::to_string),
                None,
                "iam-test",
            ))
            .load()
            .await
    }
    let sandbox = sandbox::start(SandboxConfig::default()).await.unwrap();
    let config = Config::from_lookup(|k| match k {
        "TABLE_NAME" => Some(table.clone()),
        "SECRET_ID" => Some(secret.clone()),
        "EVENT_BUS_NAME" => Some(bus.clone()),
        "WECHAT_API_BASE" | "WECHAT_MP_BASE" | "WECHAT_OPEN_BASE" => Some(sandbox.base_url()),
        "PUBLIC_BASE_URL" => Some("https://wxopen.example".into()),
        _ => None,
    })
    .expect("the functions' config");
    // Each function's runtime as `main.rs` builds it, from its role's assumed-role credentials.
    let runtime = |role: &str| {
        let c = &setup["credentials"][role];
        assert!(c.is_object(), "no credentials for {role}");
        let (config, endpoint) = (config.clone(), endpoint.clone());
        let (key, secret, token) = (
            c["AccessKeyId"].as_str().unwrap().to_string(),
            c["SecretAccessKey"].as_str().unwrap().to_string(),
            c["SessionToken"].as_str().unwrap().to_string(),
        );
        async move {
            let aws = sdk(&endpoint, &key, &secret, Some(&token)).await;
            let mut rt = Runtime::from_parts(config, aws).expect("runtime");
            rt.metrics = wxopen::events::metrics::MetricSink::memory();
            rt
        }
    };

    // Seeded with moto's root credentials before enforcement: the filled secret, the ticket
    // the sandbox pushed, an event left in the outbox, an open release job.
    let root = sdk(&endpoint, "test", "test", None).await;
    aws_sdk_secretsmanager::Client::new(&root)
        .put_secret_value()
        .secret_id(&secret)
        .secret_string(credentials_json())
        .send()
        .await
        .expect("secret filled");
    let seed = DynamoStore::new(aws_sdk_dynamodb::Client::new(&root), &table);
    let pushed: Value = reqwest::Client::new()
        .post(format!("{}/sandbox/push/ticket", sandbox.base_url()))
        .json(&serde_json::json!({}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let now = SystemClock.now();
    seed.put_ticket(&StoredTicket {
        ticket: SecretString::from(pushed["ticket"].as_str().unwrap().to_string()),
        create_time: now,
        received_at: now,
    })
    .await
    .unwrap();
    seed.enqueue(&[OutboxEntry {
        id: "evt-iam".into(),
        detail_type: "component.event".into(),
        detail: r#"{"id":"evt-iam"}"#.into(),
        enqueued_at: now - 60,
    }])
    .await
    .unwrap();
    crate::common::put_release_job(&seed, "rel-iam", 2, now).await;

    let on = reqwest::Client::new()
        .post(format!("{endpoint}/moto-api/reset-auth"))
        .header("Content-Type", "text/plain")
        .body("0")
        .send()
        .await
        .unwrap();
    assert!(on.status().is_success(), "enforcement on");
    // Enforcement is on: moto's root credentials are refused now.
    assert!(
        seed.get_ticket().await.is_err(),
        "root access after reset-auth"
    );

    // moto answers a refused call with an XML `AccessDenied` body even to the JSON-protocol
    // services (DynamoDB, Secrets Manager, EventBridge), so the SDK reads no error code from it
    // (AWS sends JSON, and `StoreError`'s text then names `AccessDeniedException`). The adapters'
    // errors are checked for their type; the same call made with the role's raw SDK client shows
    // that the refusal is moto's 403.
    fn status_of<O, E>(
        r: Result<O, aws_sdk_dynamodb::error::SdkError<E, aws_smithy_runtime_api::http::Response>>,
    ) -> u16 {
        match r {
            Ok(_) => 200,
            Err(e) => e.raw_response().map_or(0, |r| r.status().as_u16()),
        }
    }
    let denied = |e: &StoreError| matches!(e, StoreError::Dynamo(_));

    // token-refresh: the whole scheduled run.
    let refresher = token_refresh::App::from_runtime(runtime("TokenRefreshFunctionRole").await);
    let (report, swept) = token_refresh::run_and_publish(&refresher, &refresher.settings).await;
    assert!(report.component_refreshed, "{report:?}");
    assert!(report.failures.is_empty(), "{report:?}");
    assert_eq!((swept.republished, swept.failed), (1, 0), "{swept:?}");
    let released = token_refresh::releases(&refresher).await;
    assert_eq!(released.failures, 0, "{released:?}");

    // authorize-link: a link, with the refresher's component token (pre_auth_code from WeChat).
    let links = authorize_link::App::from_runtime(runtime("AuthorizeLinkFunctionRole").await);
    let mut req = request(
        "POST",
        "/authorize/links",
        &HashMap::new(),
        Body::from(r#"{"customer_ref":"iam-customer"}"#),
    );
    req.headers_mut().insert(
        "content-type",
        lambda_http::http::HeaderValue::from_static("application/json"),
    );
    let resp = authorize_link::handle(&links, req)
        .await
        .expect("Ok for every outcome");
    assert_eq!(resp.status().as_u16(), 201, "{}", body_text(&resp));
    let link: Value = serde_json::from_str(&body_text(&resp)).unwrap();
    assert!(
        link["page_url"]
            .as_str()
            .unwrap()
            .starts_with("https://wxopen.example/")
    );
    // ... but it may not Query, nor publish.
    let e = links
        .deps
        .store
        .list_authorizers(None, 10, None)
        .await
        .expect_err("authorize-link's role has no dynamodb:Query");
    assert!(denied(&e), "{e}");
    let links_aws = runtime("AuthorizeLinkFunctionRole").await.aws;
    let raw = aws_sdk_dynamodb::Client::new(&links_aws)
        .query()
        .table_name(&table)
        .key_condition_expression("pk = :p")
        .expression_attribute_values(":p", aws_sdk_dynamodb::types::AttributeValue::S("x".into()))
        .send()
        .await;
    assert_eq!(status_of(raw), 403);

    // status: every read of GET /status.
    let status_rt = runtime("StatusFunctionRole").await;
    let status_secret = status_rt.credentials.credentials().await;
    let status_app = status::App::from_runtime(status_rt);
    let resp = status::handle(
        &status_app,
        request("GET", "/status", &HashMap::new(), Body::Empty),
    )
    .await
    .expect("Ok for every outcome");
    assert_eq!(resp.status().as_u16(), 200, "{}", body_text(&resp));
    let s: Value = serde_json::from_str(&body_text(&resp)).unwrap();
    assert!(s["ticket"]["age_seconds"].is_i64(), "{s}");
    assert!(
        s["component_token"]["expires_in_seconds"].as_i64().unwrap() > 600,
        "{s}"
    );
    assert_eq!(s["outbox"]["count"], 0, "the refresher swept it: {s}");
    assert_eq!(s["releases"]["running"], 1, "{s}");
    // ... but it may not write, nor read the secret.
    let e = status_app
        .store
        .put_ticket(&StoredTicket {
            ticket: SecretString::from("not-written".to_string()),
            create_time: now + 1,
            received_at: now + 1,
        })
        .await
        .expect_err("the status role has no dynamodb:PutItem");
    assert!(denied(&e), "{e}");
    let status_aws = runtime("StatusFunctionRole").await.aws;
    let raw = aws_sdk_dynamodb::Client::new(&status_aws)
        .put_item()
        .table_name(&table)
        .item("pk", aws_sdk_dynamodb::types::AttributeValue::S("x".into()))
        .item("sk", aws_sdk_dynamodb::types::AttributeValue::S("x".into()))
        .send()
        .await;
    assert_eq!(status_of(raw), 403);
    let raw = aws_sdk_secretsmanager::Client::new(&status_aws)
        .get_secret_value()
        .secret_id(&secret)
        .send()
        .await;
    assert_eq!(status_of(raw), 403);
    assert!(
        matches!(
            status_secret,
            Err(wxopen::secrets::SecretsError::Unavailable(_))
        ),
        "the status role has no GetSecretValue: {:?}",
        status_secret.map(|_| ())
    );
    // The status handler over a store whose role may not Query: an error answer, no panic.
    let status_over_links = status::App {
        store: links.deps.store.clone(),
        clock: SystemClock,
        stall_after_secs: 21_600,
    };
    let resp = status::handle(
        &status_over_links,
        request("GET", "/status", &HashMap::new(), Body::Empty),
    )
    .await
    .expect("Ok for every outcome");
    assert!(resp.status().is_server_error(), "{}", body_text(&resp));
    let err: Value = serde_json::from_str(&body_text(&resp)).unwrap();
    assert!(
        err["error"].is_string() && err["message"].is_string(),
        "{err}"
    );

    // message-events: a user's message, verified, recorded and published.
    let messages = message_events::App::from_runtime(runtime("MessageEventsFunctionRole").await);
    let appid = "wxoa00000000000001";
    let plain = format!(
        "<xml><ToUserName><![CDATA[gh_iam]]></ToUserName><FromUserName><![CDATA[user-iam]]></FromUserName>\
         <CreateTime>{now}</CreateTime><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[hello]]></Content>\
         <MsgId>77</MsgId></xml>"
    );
    let push = SignedPush::new(&plain, wxopen_tests::APPID, now, "iamnonce");
    let resp = message_events::handle(
        &messages,
        push.request_to(&format!("/wechat/messages/{appid}"), appid),
    )
    .await
    .expect("Ok for every outcome");
    assert_eq!(
        (resp.status().as_u16(), body_text(&resp).as_str()),
        (200, "success")
    );
    assert!(
        messages.deps.store.outbox(10).await.unwrap().is_empty(),
        "published, not deferred"
    );

    // PutEvents refused to the roles without the bus, reported per entry (never a panic).
    let entry = EventEntry {
        id: "evt-denied".into(),
        detail_type: wxopen::events::DetailType::ComponentEvent,
        detail: r#"{"id":"evt-denied"}"#.into(),
    };
    for role in ["WeChatGatewayFunctionRole", "AuthorizeLinkFunctionRole"] {
        let report = runtime(role)
            .await
            .event_publisher()
            .publish(std::slice::from_ref(&entry))
            .await;
        assert_eq!(report.failed.len(), 1, "{role}: {report:?}");
        assert!(report.failed[0].cause != "too_large", "{role}: {report:?}");
        let raw = aws_sdk_eventbridge::Client::new(&runtime(role).await.aws)
            .put_events()
            .entries(
                aws_sdk_eventbridge::types::PutEventsRequestEntry::builder()
                    .event_bus_name(&bus)
                    .source("wxopen")
                    .detail_type("component.event")
                    .detail("{}")
                    .build(),
            )
            .send()
            .await;
        assert_eq!(status_of(raw), 403, "{role}");
    }
    sandbox.stop();
    drop(moto);
}
