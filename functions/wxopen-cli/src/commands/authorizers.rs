//! `wxopen authorizers [--state S] [--customer REF]` and `wxopen authorizer APPID`.

use std::process::ExitCode;

use serde_json::{Value, json};

use crate::api::q;
use crate::error::CliError;
use crate::render::{self, cell};
use crate::target::Target;

/// Pages followed at most (100 authorizers each).
const MAX_PAGES: usize = 100;

pub async fn list(
    target: &Target,
    state: Option<&str>,
    customer: Option<&str>,
    json: bool,
) -> Result<ExitCode, CliError> {
    if let Some(s) = state
        && !["authorized", "unauthorized", "needs_reauth"].contains(&s)
    {
        return Err(CliError::Usage(
            "--state must be authorized, unauthorized or needs_reauth".into(),
        ));
    }
    let mut all: Vec<Value> = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..MAX_PAGES {
        let mut path = String::from("/authorizers?limit=100");
        if let Some(s) = state {
            path.push_str(&format!("&state={}", q(s)));
        }
        if let Some(c) = customer {
            path.push_str(&format!("&customer_ref={}", q(c)));
        }
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={}", q(c)));
        }
        let page = target.api.get(&path).await?;
        all.extend(page["authorizers"].as_array().cloned().unwrap_or_default());
        match page["next_cursor"].as_str() {
            Some(c) if !c.is_empty() => cursor = Some(c.to_string()),
            _ => break,
        }
    }
    if json {
        render::print_json(&json!({ "authorizers": all }));
        return Ok(ExitCode::SUCCESS);
    }
    let rows: Vec<Vec<String>> = all
        .iter()
        .map(|a| {
            vec![
                cell(&a["appid"]),
                cell(&a["nick_name"]),
                cell(&a["type"]),
                cell(&a["state"]),
                cell(&a["customer_ref"]),
                a["permission_sets"]
                    .as_array()
                    .map_or(0, Vec::len)
                    .to_string(),
            ]
        })
        .collect();
    println!(
        "{}\n{} authorizer(s)",
        render::table(
            &[
                "appid",
                "name",
                "type",
                "state",
                "customer",
                "permission sets"
            ],
            rows
        ),
        all.len()
    );
    Ok(ExitCode::SUCCESS)
}

pub async fn one(target: &Target, appid: &str, json: bool) -> Result<ExitCode, CliError> {
    let Some(a) = target
        .api
        .get_optional(&format!("/authorizers/{}", q(appid)))
        .await?
    else {
        return Err(CliError::Usage(format!(
            "no authorizer {appid}: `wxopen authorizers` lists them"
        )));
    };
    // The code state comes from the mini program code routes when the stack has them.
    let code = target
        .api
        .get_optional(&format!("/authorizers/{}/code", q(appid)))
        .await
        .ok()
        .flatten();
    let health = token_health(&a);
    if json {
        render::print_json(&json!({ "authorizer": a, "token_health": health, "code": code }));
        return Ok(ExitCode::SUCCESS);
    }
    let mut rows: Vec<Vec<String>> = [
        "appid",
        "nick_name",
        "type",
        "principal_name",
        "state",
        "state_reason",
        "customer_ref",
        "open_appid",
        "authorized_at",
    ]
    .iter()
    .map(|k| vec![(*k).to_string(), cell(&a[*k])])
    .collect();
    rows.push(vec!["token health".into(), cell(&health)]);
    rows.push(vec![
        "code".into(),
        code.as_ref().map_or_else(
            || "- (no code routes, or not a mini program)".into(),
            |c| cell(c.get("state").or_else(|| c.get("status")).unwrap_or(c)),
        ),
    ]);
    println!("{}", render::table(&["field", "value"], rows));
    let sets: Vec<Vec<String>> = a["permission_sets"]
        .as_array()
        .map(|s| {
            s.iter()
                .map(|p| vec![cell(&p["id"]), cell(&p["name"])])
                .collect()
        })
        .unwrap_or_default();
    println!("permission sets\n{}", render::table(&["id", "name"], sets));
    Ok(ExitCode::SUCCESS)
}

fn token_health(a: &Value) -> Value {
    match (a["state"].as_str(), a["last_error"].as_str()) {
        (Some("authorized"), None) => json!("ok"),
        (Some("authorized"), Some(e)) => {
            json!(format!("failing since {} ({e})", cell(&a["failing_since"])))
        }
        (Some(s), _) => json!(format!("no token ({s})")),
        (None, _) => Value::Null,
    }
}
