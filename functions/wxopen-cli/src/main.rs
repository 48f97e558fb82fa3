//! `wxopen`, the operator's command: wiring only (the commands are in the library).

use std::process::ExitCode;

use clap::Parser;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = wxopen_cli::Cli::parse();
    match wxopen_cli::run(cli).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("wxopen: {e}");
            if let Some(hint) = e.hint() {
                eprintln!("  what to do: {hint}");
            }
            ExitCode::from(2)
        }
    }
}
