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

fn function_crates() -> BTreeSet<String> {
    std::fs::read_dir(format!("{ROOT}/functions"))
        .expect("functions/")
        .filter_map(|e| e.ok())
        .filter(|e| e.path().join("Cargo.toml").exists())
        .map(|e| e.file_name().to_string_lossy().into_owned())
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
