//! One module per command.

mod authorizers;
mod doctor;
mod events;
mod links;
mod releases;
mod status;

use std::process::ExitCode;

use crate::cli::{Cli, Command};
use crate::error::CliError;
use crate::target::Target;

pub async fn run(target: &Target, cli: &Cli) -> Result<ExitCode, CliError> {
    let json = cli.json;
    match &cli.command {
        Command::Status => status::run(target, json).await,
        Command::Doctor => doctor::run(target, json).await,
        Command::Links(c) => links::run(target, c, json).await,
        Command::Authorizers { state, customer } => {
            authorizers::list(target, state.as_deref(), customer.as_deref(), json).await
        }
        Command::Authorizer { appid } => authorizers::one(target, appid, json).await,
        Command::Releases(c) => releases::run(target, c, json).await,
        Command::Events(c) => events::run(target, c, json).await,
    }
}
