//! `wxopen links create --customer REF`.

use std::process::ExitCode;

use serde_json::json;

use crate::cli::LinksCommand;
use crate::error::CliError;
use crate::render::{self, cell};
use crate::target::Target;

pub async fn run(target: &Target, c: &LinksCommand, json: bool) -> Result<ExitCode, CliError> {
    let LinksCommand::Create {
        customer,
        auth_type,
        return_to,
    } = c;
    let mut body = json!({ "customer_ref": customer });
    if let Some(a) = auth_type {
        body["auth_type"] = json!(a);
    }
    if let Some(r) = return_to {
        body["return_to"] = json!(r);
    }
    let link = target.api.post("/authorize/links", &body).await?;
    if json {
        render::print_json(&link);
    } else {
        let rows = ["id", "page_url", "pc_url", "mobile_url", "expires_at"]
            .iter()
            .map(|k| vec![(*k).to_string(), cell(&link[*k])])
            .collect();
        println!(
            "link for customer {customer}\n{}",
            render::table(&["field", "value"], rows)
        );
        println!(
            "send the merchant the page_url; `wxopen authorizers --customer {customer}` shows the outcome"
        );
    }
    Ok(ExitCode::SUCCESS)
}
