//! The stack as deployed, checked locally: template.yaml translated by the SAM translator (what
//! `sam deploy` hands CloudFormation; `tests/py/deployed_stack.py`) and created in moto's
//! CloudFormation. The table, the bus and its archive, the queue and the roles come from that
//! stack, and the demo story runs on them, not on resources the test code made.
//!
//! moto's CloudFormation cannot create some of the template's types (listed in
//! [`NOT_CREATED_BY_MOTO`]); the template tests check those (`template.rs`: routes and their auth
//! for the HTTP API, the schedule, every alarm's runbook paragraph). The secret is one of them:
//! the script stands in for it with the template's own properties (the placeholder), and the
//! story fills it as the README says.

use std::collections::BTreeSet;
use std::process::Command;

use serde_json::Value;
use wxopen_tests::story::{Provisioned, run_story, start_with};
use wxopen_tests::{aws_config, unique};

const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/..");

/// Translated resource types moto 5.2's CloudFormation skips ("not supported").
const NOT_CREATED_BY_MOTO: &[&str] = &[
    "AWS::ApiGatewayV2::Api",
    "AWS::ApiGatewayV2::Stage",
    "AWS::CloudWatch::Alarm",
    "AWS::Lambda::EventInvokeConfig",
    // The release queue's policy (EventBridge may send to it): checked by the template test
    // `publishers_may_put_events_...`.
    "AWS::SQS::QueuePolicy",
    "AWS::Scheduler::Schedule",
    "AWS::SecretsManager::Secret",
];

fn create_stack(name: &str) -> Value {
    let python = std::env::var("WXOPEN_PYTHON").unwrap_or_else(|_| {
        panic!(
            "WXOPEN_PYTHON must name the venv's python (aws-sam-translator, boto3); run `make test`"
        )
    });
    let out = Command::new(python)
        .arg(format!("{ROOT}/tests/py/deployed_stack.py"))
        .args(["create", &format!("{ROOT}/template.yaml"), name])
        .output()
        .expect("run deployed_stack.py");
    assert!(
        out.status.success(),
        "deployed_stack.py failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("stack JSON")
}

/// The name after the last `/` of an ARN.
fn arn_name(arn: &Value) -> String {
    arn.as_str()
        .and_then(|a| a.rsplit('/').next())
        .expect("an ARN")
        .to_string()
}

/// Every action an inline policy of `role` allows, with its resources.
fn allowed(stack: &Value, role: &str) -> Vec<(String, Vec<String>)> {
    let mut out = Vec::new();
    for doc in stack["roles"][role]["inline"]
        .as_object()
        .unwrap_or_else(|| panic!("role {role}"))
        .values()
    {
        for st in doc["Statement"].as_array().unwrap() {
            assert_eq!(st["Effect"], "Allow");
            let list = |v: &Value| match v {
                Value::Array(a) => a.iter().map(|x| x.to_string()).collect::<Vec<_>>(),
                other => vec![other.to_string()],
            };
            for a in list(&st["Action"]) {
                out.push((a.trim_matches('"').to_string(), list(&st["Resource"])));
            }
        }
    }
    out
}

#[tokio::test]
async fn the_translated_template_creates_the_stack_and_the_story_runs_on_it() {
    let name = unique("wxdeployed");
    let stack = tokio::task::spawn_blocking({
        let name = name.clone();
        move || create_stack(&name)
    })
    .await
    .unwrap();
    assert_eq!(stack["stack_status"], "CREATE_COMPLETE");

    // What moto left out, exactly (a new gap, or a new moto that creates more, fails here).
    let created: BTreeSet<&str> = stack["resources"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    let skipped: BTreeSet<&str> = stack["template"]["Resources"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(k, _)| !created.contains(k.as_str()))
        .map(|(_, r)| r["Type"].as_str().unwrap())
        .collect();
    assert_eq!(skipped, NOT_CREATED_BY_MOTO.iter().copied().collect());

    let aws = aws_config().await;
    let outputs = &stack["outputs"];
    // The table: keys, the indexes, TTL, billing.
    let table = outputs["StateTableName"]
        .as_str()
        .expect("StateTableName")
        .to_string();
    let ddb = aws_sdk_dynamodb::Client::new(&aws);
    let t = ddb
        .describe_table()
        .table_name(&table)
        .send()
        .await
        .unwrap();
    let t = t.table().unwrap();
    let keys: Vec<(String, String)> = t
        .key_schema()
        .iter()
        .map(|k| {
            (
                k.attribute_name().to_string(),
                k.key_type().as_str().to_string(),
            )
        })
        .collect();
    assert_eq!(
        keys,
        [("pk".into(), "HASH".into()), ("sk".into(), "RANGE".into())]
    );
    let indexes: BTreeSet<String> = t
        .global_secondary_indexes()
        .iter()
        .filter_map(|g| g.index_name().map(str::to_string))
        .collect();
    assert_eq!(
        indexes,
        ["authorizers-index", "customers-index", "refresh-index"]
            .map(String::from)
            .into()
    );
    // TTL: moto's CloudFormation creates the table without applying TimeToLiveSpecification
    // (DescribeTimeToLive says nothing), so the translated template is checked instead.
    assert_eq!(
        stack["template"]["Resources"]["StateTable"]["Properties"]["TimeToLiveSpecification"],
        serde_json::json!({"AttributeName": "ttl", "Enabled": true})
    );
    let ttl = ddb
        .describe_time_to_live()
        .table_name(&table)
        .send()
        .await
        .unwrap();
    assert_eq!(
        ttl.time_to_live_description()
            .and_then(|t| t.attribute_name()),
        None,
        "moto now applies the TTL: assert it here instead of on the template"
    );

    // The bus and its archive.
    let events = aws_sdk_eventbridge::Client::new(&aws);
    let bus_name = arn_name(&outputs["EventBusArn"]);
    assert_eq!(bus_name, format!("{name}-bus"));
    events
        .describe_event_bus()
        .name(&bus_name)
        .send()
        .await
        .expect("the stack's bus");
    let archive = events
        .describe_archive()
        .archive_name(arn_name(&outputs["EventArchiveArn"]))
        .send()
        .await
        .expect("the stack's archive");
    assert_eq!(archive.event_source_arn(), outputs["EventBusArn"].as_str());

    // The refresher's dead-letter queue.
    let sqs = aws_sdk_sqs::Client::new(&aws);
    let dlq = stack["resources"]["RefresherDeadLetterQueue"]["physical_id"]
        .as_str()
        .unwrap();
    let attrs = sqs
        .get_queue_attributes()
        .queue_url(dlq)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::MessageRetentionPeriod)
        .send()
        .await
        .expect("the stack's queue");
    assert_eq!(
        attrs
            .attributes()
            .and_then(|a| a.get(&aws_sdk_sqs::types::QueueAttributeName::MessageRetentionPeriod))
            .map(String::as_str),
        Some("1209600")
    );

    // A role per function, with the template's least-privilege statements as IAM holds them.
    let functions: Vec<&String> = stack["template"]["Resources"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(_, r)| r["Type"] == "AWS::Lambda::Function")
        .map(|(k, _)| k)
        .collect();
    let crates = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../functions"))
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name() != "wxopen-cli")
        .count();
    assert_eq!(
        functions.len(),
        crates,
        "a Lambda function per crate in functions/"
    );
    for f in &functions {
        // moto creates the role and its inline policies but attaches no AWS managed policy (it
        // has none): the basic execution role is checked on the translated template.
        let role = format!("{f}Role");
        assert!(stack["roles"][&role]["name"].is_string(), "{role} created");
        assert!(
            stack["template"]["Resources"][&role]["Properties"]["ManagedPolicyArns"]
                .to_string()
                .contains("AWSLambdaBasicExecutionRole"),
            "{role}"
        );
    }
    let table_arn = format!("arn:aws:dynamodb:us-east-1:123456789012:table/{table}");
    let access = allowed(&stack, "AccessTokenFunctionRole");
    let table_actions: BTreeSet<&str> = access
        .iter()
        .filter(|(a, _)| a.starts_with("dynamodb:"))
        .map(|(a, _)| a.as_str())
        .collect();
    assert_eq!(
        table_actions,
        ["dynamodb:GetItem", "dynamodb:UpdateItem"].into()
    );
    assert!(
        access
            .iter()
            .filter(|(a, _)| a.starts_with("dynamodb:"))
            .all(|(_, r)| r == &vec![format!("\"{table_arn}\"")]),
        "the access-token function reaches only the table: {access:?}"
    );
    let reader = allowed(&stack, "AuthorizersFunctionRole");
    assert!(
        reader.iter().all(|(a, _)| matches!(
            a.as_str(),
            "dynamodb:GetItem" | "dynamodb:BatchGetItem" | "dynamodb:Query"
        )),
        "the authorizers function only reads: {reader:?}"
    );

    // The secret: created with the template's placeholder, filled as the README says.
    let secret_arn = stack["stand_ins"]["ComponentSecret"]["physical_id"]
        .as_str()
        .expect("the secret")
        .to_string();
    let sm = aws_sdk_secretsmanager::Client::new(&aws);
    let placeholder = sm
        .get_secret_value()
        .secret_id(&secret_arn)
        .send()
        .await
        .unwrap();
    assert_eq!(
        placeholder.secret_string(),
        Some(r#"{"component_appid":"REPLACE_ME"}"#)
    );

    // The demo story on the stack's table, secret and bus.
    let local = start_with(
        0,
        Some(&Provisioned {
            table: table.clone(),
            secret_arn,
            bus_name: bus_name.clone(),
        }),
    )
    .await
    .expect("the local stack on the deployed resources");
    assert_eq!(local.store.table(), table);
    assert_eq!(local.bus.bus_name, bus_name);
    let results = run_story(&local, false).await;
    assert!(results.len() >= 10, "the whole story ran: {results:?}");
    let failed: Vec<_> = results.iter().filter(|(_, ok, _)| !ok).collect();
    assert!(
        failed.is_empty(),
        "story steps failed on the stack: {failed:?}"
    );
    let items = ddb
        .scan()
        .table_name(&table)
        .select(aws_sdk_dynamodb::types::Select::Count)
        .send()
        .await
        .unwrap();
    assert!(items.count() > 0, "the story wrote to the stack's table");
    local.gateway.stop();
}
