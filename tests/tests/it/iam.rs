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
//! bus and SendMessage to each of the stack's three queues. Not done: the functions' own
//! handlers and Rust adapters under these credentials (the probe calls boto3).

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
        let python = std::env::var("WXOPEN_PYTHON").unwrap();
        let out = Command::new(python)
            .arg(format!("{ROOT}/tests/py/iam_probe.py"))
            .args([&format!("{ROOT}/template.yaml"), &unique("iam")])
            .env("AWS_ENDPOINT_URL", &moto.endpoint)
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
            "iam_probe.py failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("probe JSON")
    })
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
