//! `make soak`: a compressed day under seeded faults on the local stack (moto must be running:
//! the Makefile starts it), then its invariants and figures.
//!
//! `wxopen-soak [small|full] [--compare N]`: the day at `full` size (default; `SOAK_*` variables
//! change any figure, `SOAK_SEED` the seed), and with `--compare N` the same work again over `N`
//! merchants, to show what grows with work and what stays flat in total merchants. Prints each
//! invariant with its count, then the figures as JSON; exits 1 naming any broken invariant.
//! `SOAK_BROKEN=no_outbox_sweep|no_audit_poll` runs a deliberately broken deployment instead (the
//! check must then fail, naming what it broke).

use std::process::ExitCode;

use wxopen_tests::soak::{self, Broken, SoakConfig};

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    // A misspelt broken build would run the sound deployment and pass: refuse it instead.
    if let Ok(name) = std::env::var("SOAK_BROKEN")
        && Broken::from_name(&name).is_none()
    {
        let names: Vec<&str> = Broken::BY_NAME.iter().map(|(n, _)| *n).collect();
        eprintln!("SOAK_BROKEN={name:?}: expected one of {names:?}");
        return ExitCode::from(2);
    }
    let seed = 21;
    let base = match args.first().map(String::as_str) {
        Some("small") => SoakConfig::small(seed),
        _ => SoakConfig::full(seed),
    }
    .with_overrides(|k| std::env::var(k).ok());
    let compare = args
        .iter()
        .position(|a| a == "--compare")
        .and_then(|i| args.get(i + 1))
        .and_then(|n| n.parse::<usize>().ok());
    let mut runs = Vec::new();
    if let Some(n) = compare {
        runs.push(SoakConfig {
            merchants: n.max(base.authorizations),
            ..base.clone()
        });
    }
    runs.push(base);
    let mut broken = Vec::new();
    for config in &runs {
        println!(
            "== soak: {} merchants, {} messages, {} gateway calls, {} sign-ins, {} cancellations, {} ticks, seed {}",
            config.merchants,
            config.messages,
            config.gateway_calls,
            config.sign_ins,
            config.cancellations,
            config.ticks,
            config.seed
        );
        let report = soak::run(config).await;
        print!("{}", report.render());
        broken.extend(report.broken());
    }
    if broken.is_empty() {
        println!("soak: every invariant held");
        ExitCode::SUCCESS
    } else {
        println!("soak: BROKEN: {}", broken.join(", "));
        ExitCode::FAILURE
    }
}
