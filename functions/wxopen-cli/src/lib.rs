//! `wxopen`, the operator's command for a wxopen stack: deployed (found by CloudFormation stack
//! name, standard AWS credential chain and region, calls signed with SigV4 for `execute-api`) or
//! local (`make dev`, `--local`).
//!
//! Human tables by default, `--json` for scripts. Every check ends in a plain verdict
//! (`ok` / `attention` / `broken`) and, when it is not ok, what to do. Exit code: 0 when every
//! verdict is ok or attention, 1 when one is broken, 2 when the command could not run.
//!
//! Not a Lambda: no resource in template.yaml, not in `make package`; the functions never depend
//! on this crate, so clap, comfy-table and indicatif stay out of the bootstraps.

pub mod api;
pub mod cli;
pub mod commands;
pub mod error;
pub mod render;
pub mod target;
pub mod verdict;

pub use cli::Cli;
pub use error::CliError;

use std::process::ExitCode;

/// Runs one command.
pub async fn run(cli: Cli) -> Result<ExitCode, CliError> {
    let target = target::Target::resolve(&cli.target).await?;
    commands::run(&target, &cli).await
}
