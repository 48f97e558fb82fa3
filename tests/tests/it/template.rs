//! template.yaml is the one description of the cloud side: every function crate has its
//! resource with a matching Binary; every template route is served by the local gateway and
//! the reverse; every internal route needs IAM; only the WeChat- and merchant-facing routes
//! are public.

use std::collections::BTreeSet;
use std::process::Command;

use serde_json::Value;
use wxopen_tests::gateway::ROUTES;

const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/..");

/// Public on purpose: WeChat's two callbacks, the merchant's page and WeChat's redirect.
const PUBLIC: &[(&str, &str)] = &[
    ("POST", "/wechat/component"),
    ("POST", "/wechat/messages/{appid}"),
    ("GET", "/authorize"),
    ("GET", "/authorize/callback"),
    ("GET", "/login/{id}"),
    ("GET", "/login/{id}/status"),
    ("GET", "/oauth/{appid}/authorize"),
    ("GET", "/oauth/{appid}/callback"),
    // The official account's admin returns from WeChat's fastregisterauth page.
    ("GET", "/fast-registrations/{id}/callback"),
];

fn facts() -> Value {
    let python = std::env::var("WXOPEN_PYTHON").unwrap_or_else(|_| {
        panic!("WXOPEN_PYTHON must name the venv's python (with cfn-lint); run `make test`")
    });
    let out = Command::new(python)
        .arg(format!("{ROOT}/tests/py/template_facts.py"))
        .arg(format!("{ROOT}/template.yaml"))
        .output()
        .expect("run template_facts.py");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("facts JSON")
}

/// Crates under `functions/` that are not Lambdas: the operator's command `wxopen` (no template
/// resource, not packaged by scripts/package.sh, which skips the same list).
pub const NOT_LAMBDAS: &[&str] = &["wxopen-cli"];

fn function_crates() -> BTreeSet<String> {
    std::fs::read_dir(format!("{ROOT}/functions"))
        .expect("functions/")
        .filter_map(|e| e.ok())
        .filter(|e| e.path().join("Cargo.toml").exists())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| !NOT_LAMBDAS.contains(&name.as_str()))
        .collect()
}

#[test]
fn every_function_crate_has_its_resource_and_binary() {
    let facts = facts();
    let functions = facts["functions"].as_object().unwrap();
    let binaries: BTreeSet<String> = functions
        .values()
        .map(|f| f["binary"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        binaries,
        function_crates(),
        "template Binary names == function crates"
    );
    for (name, f) in functions {
        assert_eq!(f["build_method"], "rust-cargolambda", "{name}");
        assert_eq!(
            f["code_uri"], ".",
            "{name}: CodeUri must be the workspace root"
        );
        // The package name is the binary name.
        let manifest = std::fs::read_to_string(format!(
            "{ROOT}/functions/{}/Cargo.toml",
            f["binary"].as_str().unwrap()
        ))
        .unwrap();
        assert!(
            manifest.contains(&format!("name = \"{}\"", f["binary"].as_str().unwrap())),
            "{name}"
        );
    }
    assert_eq!(facts["runtime"], "provided.al2023");
    assert_eq!(facts["architectures"], serde_json::json!(["arm64"]));
    let scheduled: Vec<_> = functions
        .values()
        .filter(|f| !f["schedules"].as_array().unwrap().is_empty())
        .collect();
    assert_eq!(scheduled.len(), 1);
    assert_eq!(scheduled[0]["binary"], "token-refresh");
}

#[test]
fn template_routes_and_gateway_routes_are_the_same() {
    let facts = facts();
    let mut template: BTreeSet<(String, String, String)> = BTreeSet::new();
    for f in facts["functions"].as_object().unwrap().values() {
        for r in f["routes"].as_array().unwrap() {
            template.insert((
                r["method"].as_str().unwrap().to_string(),
                r["path"].as_str().unwrap().to_string(),
                f["binary"].as_str().unwrap().to_string(),
            ));
        }
    }
    let gateway: BTreeSet<(String, String, String)> = ROUTES
        .iter()
        .map(|(m, p, f)| (m.to_string(), p.to_string(), f.to_string()))
        .collect();
    assert_eq!(
        template, gateway,
        "template.yaml routes == local gateway routes"
    );
}

#[test]
fn internal_routes_need_iam_and_only_the_public_ones_do_not() {
    let facts = facts();
    assert_eq!(facts["default_authorizer"], "AWS_IAM");
    for f in facts["functions"].as_object().unwrap().values() {
        for r in f["routes"].as_array().unwrap() {
            let key = (r["method"].as_str().unwrap(), r["path"].as_str().unwrap());
            let public = PUBLIC.contains(&key);
            let authorizer = r["authorizer"].as_str().unwrap();
            if public {
                assert_eq!(
                    authorizer, "NONE",
                    "{key:?} is reached by WeChat or a merchant's browser"
                );
            } else {
                assert_ne!(authorizer, "NONE", "{key:?} is internal and must use IAM");
            }
        }
    }
}

/// Every route is throttled at the stage; the public merchant routes get their own tighter
/// limits, and their functions a reserved concurrency so a flood cannot starve `/wechat/*`.
#[test]
fn public_routes_are_throttled_and_their_functions_capped() {
    let facts = facts();
    let api = &facts["http_api"];
    let defaults = &api["default_route_settings"];
    assert!(
        defaults["ThrottlingRateLimit"].is_object() && defaults["ThrottlingBurstLimit"].is_object(),
        "stage default throttling from parameters: {defaults}"
    );
    let params = &facts["parameters"];
    let number = |name: &str| -> f64 {
        params[name]["default"]
            .as_str()
            .map(|s| s.parse().unwrap())
            .or_else(|| params[name]["default"].as_f64())
            .unwrap_or_else(|| panic!("parameter {name} has a numeric default"))
    };
    let routes = api["route_settings"].as_object().expect("RouteSettings");
    for (method, path) in PUBLIC.iter().filter(|(_, p)| p.starts_with("/authorize")) {
        let s = &routes[&format!("{method} {path}")];
        assert_eq!(
            s["ThrottlingRateLimit"]["Ref"], "PublicPageRateLimit",
            "{path}: {s}"
        );
        assert_eq!(
            s["ThrottlingBurstLimit"]["Ref"], "PublicPageBurstLimit",
            "{path}: {s}"
        );
    }
    assert!(number("PublicPageRateLimit") < number("ApiThrottlingRateLimit"));
    assert!(number("PublicPageBurstLimit") < number("ApiThrottlingBurstLimit"));
    // Every throttled route key exists (API Gateway rejects settings for unknown routes).
    for key in routes.keys() {
        let (m, p) = key.split_once(' ').unwrap();
        assert!(
            ROUTES.iter().any(|(rm, rp, _)| *rm == m && *rp == p),
            "{key}"
        );
    }
    for f in ["AuthorizeLinkFunction", "AuthorizeCallbackFunction"] {
        assert_eq!(
            facts["functions"][f]["reserved_concurrency"]["Ref"], "PublicPageReservedConcurrency",
            "{f}"
        );
    }
    for f in ["ComponentEventsFunction", "MessageEventsFunction"] {
        assert!(
            facts["functions"][f]["reserved_concurrency"].is_null(),
            "{f} draws on the unreserved pool the public pages cannot take"
        );
    }
}

#[test]
fn the_nat_gateway_waits_for_the_internet_gateway_attachment() {
    let facts = facts();
    let nat = &facts["resources"]["EgressNatGateway"];
    assert_eq!(nat["type"], "AWS::EC2::NatGateway");
    assert!(
        nat["depends_on"]
            .as_array()
            .unwrap()
            .contains(&"EgressGatewayAttachment".into()),
        "{nat}"
    );
}

/// The table's indexes in template.yaml are the ones the code creates and queries.
#[test]
fn the_customers_index_matches_the_store() {
    let facts = facts();
    let idx = &facts["table_indexes"][wxopen::store::dynamo::CUSTOMERS_INDEX];
    assert_eq!(idx["keys"], serde_json::json!(["customer_ref", "appid"]));
    assert_eq!(idx["projection"], "INCLUDE");
    let want: BTreeSet<&str> = wxopen::store::dynamo::CUSTOMERS_INDEX_ATTRIBUTES
        .iter()
        .copied()
        .filter(|a| !matches!(*a, "pk" | "sk"))
        .collect();
    let got: BTreeSet<&str> = idx["attributes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert_eq!(got, want);
    for secret in ["access_token", "refresh_token", "pre_auth_code"] {
        assert!(!got.contains(secret), "{secret} projected");
    }
}

/// `sam build` runs without a prompt: the rust-cargolambda builder is a beta feature.
#[test]
fn samconfig_enables_the_cargo_lambda_builder() {
    let text = std::fs::read_to_string(format!("{ROOT}/samconfig.toml")).unwrap();
    let build = text
        .split("[default.build.parameters]")
        .nth(1)
        .expect("[default.build.parameters]")
        .split("\n[")
        .next()
        .unwrap();
    assert!(
        build.lines().any(|l| l.trim() == "beta_features = true"),
        "{build}"
    );
}

/// The refresher's metric lines survive any `LogLevel` the template allows: they carry the
/// highest allowed level (a JSON log line without `level` is INFO to Lambda's filter).
#[test]
fn metric_lines_pass_every_allowed_log_level() {
    let facts = facts();
    let allowed = facts["parameters"]["LogLevel"]["allowed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect::<Vec<_>>();
    let order = ["TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"];
    let rank = |l: &str| order.iter().position(|o| *o == l).unwrap();
    let highest = allowed.iter().map(|l| rank(l)).max().unwrap();
    let mut report = wxopen::refresher::RefreshReport {
        ticket_age_secs: Some(60),
        ..Default::default()
    };
    *report.failures.entry("errcode_61023".into()).or_default() += 1;
    for line in wxopen::refresher::emf_lines(&report, 0) {
        let v: Value = serde_json::from_str(&line).unwrap();
        let level = v["level"].as_str().unwrap_or("INFO").to_uppercase();
        assert!(
            rank(&level) >= highest,
            "{line} is dropped at LogLevel {}",
            order[highest]
        );
    }
}

#[test]
fn publishers_may_put_events_the_hook_is_invoked_only_when_set_and_no_queue_is_deployed() {
    let facts = facts();
    let functions = facts["functions"].as_object().unwrap();
    let policies = |binary: &str| -> String {
        functions
            .values()
            .find(|f| f["binary"] == binary)
            .map(|f| f["policies"].as_str().unwrap_or_default().to_string())
            .unwrap_or_else(|| panic!("no function {binary}"))
    };
    // fast-registrations publishes registration.changed after the official account's ticket;
    // authorize-callback the authorization.changed of an authorization the redirect records.
    const PUBLISHERS: [&str; 6] = [
        "component-events",
        "message-events",
        "token-refresh",
        "fast-registrations",
        "release-worker",
        "authorize-callback",
    ];
    for publisher in PUBLISHERS {
        let p = policies(publisher);
        assert!(
            p.contains("events:PutEvents") && p.contains("EventBus"),
            "{publisher} publishes to the bus: {p}"
        );
    }
    for f in functions.values() {
        let binary = f["binary"].as_str().unwrap();
        let p = f["policies"].as_str().unwrap_or_default();
        if !PUBLISHERS.contains(&binary) {
            assert!(!p.contains("events:PutEvents"), "{binary} does not publish");
        }
        assert_eq!(
            p.contains("lambda:InvokeFunction"),
            binary == "message-events",
            "{binary}: only the message URL invokes the hook"
        );
    }
    let m = policies("message-events");
    assert!(
        m.contains("HasReplyHookFunction") && m.contains("ReplyHookFunctionArn"),
        "{m}"
    );
    assert!(
        facts["conditions"]
            .as_array()
            .unwrap()
            .contains(&"HasReplyHookFunction".into())
    );
    let env: Vec<&str> = facts["environment"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|v| v.as_str())
        .collect();
    for var in [
        "EVENT_BUS_NAME",
        "REPLY_HOOK_FUNCTION_ARN",
        "REPLY_HOOK_URL",
        "REPLY_HOOK_BUDGET_MS",
    ] {
        assert!(env.contains(&var), "{var} in the functions' environment");
    }
    let types = facts["resource_types"].as_object().unwrap();
    for (kind, want) in [
        ("AWS::Events::EventBus", 1),
        ("AWS::Events::Archive", 1),
        ("AWS::Events::Rule", 1),
    ] {
        assert_eq!(
            types.values().filter(|t| *t == kind).count(),
            want,
            "{kind}: the bus, its archive and the fleet-release audit rule; consumers' rules and queues are the provider's (local only)"
        );
    }
    let mut queues: Vec<&String> = types
        .iter()
        .filter(|(_, t)| *t == "AWS::SQS::Queue")
        .map(|(n, _)| n)
        .collect();
    queues.sort();
    assert_eq!(
        queues,
        vec![
            "RefresherDeadLetterQueue",
            "ReleaseDeadLetterQueue",
            "ReleaseQueue"
        ],
        "no events queue is deployed; the release work queue and its DLQ are"
    );
}

/// The read-only functions are kept off token items where DynamoDB allows it: the authorizers
/// function may read only authorizer items and only the record's own attributes (exactly the
/// list its reads are projected to), the session-status function only sessions and identities.
#[test]
fn read_only_functions_cannot_read_tokens() {
    let facts = facts();
    let policy = |binary: &str| -> Value {
        let f = facts["functions"]
            .as_object()
            .unwrap()
            .values()
            .find(|f| f["binary"] == binary)
            .unwrap_or_else(|| panic!("{binary}"));
        serde_json::from_str(f["policies"].as_str().unwrap()).unwrap()
    };
    let authorizers = policy("authorizers");
    let statements = authorizers[0]["Statement"].as_array().unwrap();
    assert_eq!(statements.len(), 2, "{authorizers}");
    let want: BTreeSet<&str> = wxopen::store::dynamo::AUTHORIZER_RECORD_ATTRIBUTES
        .iter()
        .copied()
        .chain(["pk", "sk", "entity"])
        .collect();
    for st in statements {
        let actions: Vec<&str> = st["Action"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap())
            .collect();
        assert!(
            actions.iter().all(|a| matches!(
                *a,
                "dynamodb:GetItem" | "dynamodb:BatchGetItem" | "dynamodb:Query"
            )),
            "read-only: {actions:?}"
        );
        let cond = &st["Condition"];
        let got: BTreeSet<&str> = cond["ForAllValues:StringEquals"]["dynamodb:Attributes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap())
            .collect();
        assert_eq!(got, want);
        for secret in ["access_token", "refresh_token", "lease_owner"] {
            assert!(!got.contains(secret));
        }
        assert_eq!(
            cond["StringEqualsIfExists"]["dynamodb:Select"],
            "SPECIFIC_ATTRIBUTES"
        );
        if actions.contains(&"dynamodb:GetItem") {
            assert_eq!(
                cond["ForAllValues:StringLike"]["dynamodb:LeadingKeys"],
                serde_json::json!(["AUTHORIZER#*"])
            );
        }
    }
    let status = policy("login-session-status");
    let st = &status[0]["Statement"][0];
    assert_eq!(st["Action"], serde_json::json!(["dynamodb:GetItem"]));
    assert_eq!(
        st["Condition"]["ForAllValues:StringLike"]["dynamodb:LeadingKeys"],
        serde_json::json!(["LOGIN#*", "IDENTITY#*"])
    );
}

// ---------------------------------------------------------------- dashboard and runbook (issue 20)

fn template_text() -> String {
    std::fs::read_to_string(format!("{ROOT}/template.yaml")).expect("template.yaml")
}

/// Logical ids of the template's resources of `kind` (a two-space-indented `Name:` line followed
/// by `Type: kind`).
fn resources_of(template: &str, kind: &str) -> Vec<String> {
    let lines: Vec<&str> = template.lines().collect();
    lines
        .windows(2)
        .filter(|w| w[1].trim() == format!("Type: {kind}"))
        .filter_map(|w| {
            let l = w[0];
            (l.starts_with("  ") && !l.starts_with("   ") && l.trim_end().ends_with(':'))
                .then(|| l.trim().trim_end_matches(':').to_string())
        })
        .collect()
}

/// The dashboard body with every `${…}` replaced by its name, parsed.
fn dashboard_body() -> Value {
    let t = template_text();
    let start = t
        .find("DashboardBody: !Sub |")
        .expect("the dashboard's body");
    let body: String = t[start..]
        .lines()
        .skip(1)
        .take_while(|l| l.starts_with("        ") || l.trim().is_empty())
        .collect::<Vec<_>>()
        .join("\n");
    let mut out = String::new();
    let mut rest = body.as_str();
    while let Some(i) = rest.find("${") {
        out.push_str(&rest[..i]);
        let end = rest[i..].find('}').expect("closed ${") + i;
        out.push_str(&rest[i + 2..end]);
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    serde_json::from_str(&out).expect("the dashboard body is JSON")
}

#[test]
fn every_alarm_has_a_runbook_paragraph() {
    let alarms = resources_of(&template_text(), "AWS::CloudWatch::Alarm");
    assert!(alarms.len() >= 9, "{alarms:?}");
    let readme = std::fs::read_to_string(format!("{ROOT}/README.md")).expect("README.md");
    let runbook = &readme[readme.find("### Runbook").expect("a runbook")..];
    for a in &alarms {
        assert!(
            runbook.contains(&format!("**{a}**")),
            "no runbook paragraph for {a}"
        );
    }
}

#[test]
fn the_dashboard_shows_every_promised_graph_and_every_function() {
    let body = dashboard_body();
    let text = body.to_string();
    for metric in [
        "TicketAgeSeconds",
        "TokensRefreshed",
        "RefreshFailures",
        "RefreshFailuresByCause",
        "Pushes",
        "ReplyHookLatencyMs",
        "CallbackLatencyMs",
        "EventsPublished",
        "EventsDeferred",
        "OutboxAgeSeconds",
        "GatewayCalls",
        "ReleaseTargets",
        "Errors",
        "Throttles",
    ] {
        assert!(
            text.contains(&format!("\"{metric}")) || text.contains(&format!("\\\"{metric}\\\"")),
            "{metric} on the dashboard"
        );
    }
    let functions = resources_of(&template_text(), "AWS::Serverless::Function");
    let widgets = body["widgets"].as_array().expect("widgets");
    for graph in ["Lambda errors", "Lambda throttles"] {
        let w = widgets
            .iter()
            .find(|w| w["properties"]["title"] == graph)
            .unwrap_or_else(|| panic!("{graph}"));
        let shown: BTreeSet<String> = w["properties"]["metrics"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m[3].as_str().unwrap().to_string())
            .collect();
        assert_eq!(shown, functions.iter().cloned().collect(), "{graph}");
    }
    // Widgets sit on CloudWatch's 24-column grid without overlapping.
    let mut cells = BTreeSet::new();
    for w in widgets {
        let (x, y, wd, h) = (
            w["x"].as_u64().unwrap(),
            w["y"].as_u64().unwrap(),
            w["width"].as_u64().unwrap(),
            w["height"].as_u64().unwrap(),
        );
        assert!(x + wd <= 24, "{w}");
        for cx in x..x + wd {
            for cy in y..y + h {
                assert!(cells.insert((cx, cy)), "overlap at {cx},{cy}");
            }
        }
    }
}
