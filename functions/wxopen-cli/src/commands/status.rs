//! `wxopen status`: the platform at a glance, from `GET /status`.

use std::process::ExitCode;

use serde_json::Value;

use crate::error::CliError;
use crate::render;
use crate::target::Target;
use crate::verdict;

pub async fn run(target: &Target, json: bool) -> Result<ExitCode, CliError> {
    let status = target.api.get("/status").await?;
    let checks = verdict::status_checks(&status);
    if json {
        render::print_json(&render::checks_json(
            &target.label(),
            &checks,
            serde_json::json!({ "status": status }),
        ));
    } else {
        print!(
            "{}",
            render::checks(&format!("wxopen status: {}", target.label()), &checks)
        );
    }
    Ok(render::exit_code(&checks))
}

/// The status, for `doctor`.
pub async fn fetch(target: &Target) -> Result<Value, CliError> {
    target.api.get("/status").await
}
