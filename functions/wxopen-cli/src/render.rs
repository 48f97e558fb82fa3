//! Tables for people, JSON for scripts.

use comfy_table::presets::UTF8_FULL_CONDENSED;
use comfy_table::{ContentArrangement, Table};
use serde_json::Value;

use crate::verdict::{Check, Verdict, overall};

pub fn table(header: &[&str], rows: Vec<Vec<String>>) -> String {
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_header(header.iter().copied());
    if std::env::var_os("COLUMNS").is_none() {
        t.set_width(120);
    }
    for r in rows {
        t.add_row(r);
    }
    t.to_string()
}

/// The checks as a table, then the overall verdict, then what to do.
pub fn checks(title: &str, checks: &[Check]) -> String {
    let rows = checks
        .iter()
        .map(|c| {
            vec![
                c.check.clone(),
                c.verdict.label().to_string(),
                c.detail.clone(),
            ]
        })
        .collect();
    let mut out = format!(
        "{title}\n{}\n",
        table(&["check", "verdict", "detail"], rows)
    );
    let todo: Vec<_> = checks.iter().filter(|c| !c.action.is_empty()).collect();
    out.push_str(&format!("verdict: {}\n", overall(checks).label()));
    if !todo.is_empty() {
        out.push_str("\nwhat to do:\n");
        for c in todo {
            out.push_str(&format!("  - {}: {}\n", c.check, c.action));
        }
    }
    out
}

pub fn checks_json(target: &str, checks: &[Check], extra: Value) -> Value {
    let mut v = serde_json::json!({
        "target": target,
        "verdict": overall(checks),
        "checks": checks,
    });
    if let (Some(o), Value::Object(e)) = (v.as_object_mut(), extra) {
        o.extend(e);
    }
    v
}

pub fn exit_code(checks: &[Check]) -> std::process::ExitCode {
    if overall(checks) == Verdict::Broken {
        std::process::ExitCode::from(1)
    } else {
        std::process::ExitCode::SUCCESS
    }
}

/// A JSON value as a cell (strings unquoted, null as `-`).
pub fn cell(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

pub fn print_json(v: &Value) {
    println!(
        "{}",
        serde_json::to_string_pretty(v).unwrap_or_else(|_| v.to_string())
    );
}
