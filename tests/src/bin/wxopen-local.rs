//! `wxopen-local demo`  walks the whole provider story end to end and prints a summary
//!                      (exit 0 only if every step worked).
//! `wxopen-local serve` keeps the stack running and prints the URLs (Ctrl-C stops it).
//!
//! Needs `AWS_ENDPOINT_URL` pointing at moto (the Makefile sets it).

use std::process::ExitCode;

use wxopen_tests::story::{run_story, start};

async fn demo() -> ExitCode {
    println!(
        "wxopen demo: moto (DynamoDB + Secrets Manager), the WeChat sandbox and the local gateway on 127.0.0.1\n"
    );
    let local = match start(0).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("could not start the local stack: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!("  gateway  {}", local.gateway.base_url);
    println!("  sandbox  {}", local.sandbox.base_url());
    println!(
        "  secret   {} (filled with the demo component's credentials)\n",
        local.secret_arn
    );
    let results = run_story(&local, true).await;
    let calls = local.sandbox.calls();
    println!("\nSummary");
    println!("  {:<34} {:>6}  {:>8}", "step", "result", "ms");
    for (name, ok, ms) in &results {
        println!(
            "  {:<34} {:>6}  {:>8}",
            name,
            if *ok { "ok" } else { "FAILED" },
            ms
        );
    }
    println!(
        "  WeChat API calls made: {}; token calls: {}",
        calls.len(),
        calls.iter().filter(|c| c.api.ends_with("_token")).count()
    );
    local.gateway.stop();
    local.sandbox.stop();
    let passed = results.iter().filter(|r| r.1).count();
    println!("\n{passed} passed, {} failed", results.len() - passed);
    if passed == results.len() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

async fn serve(port: u16) -> ExitCode {
    let local = match start(port).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("could not start the local stack: {e}");
            return ExitCode::FAILURE;
        }
    };
    let g = &local.gateway.base_url;
    println!("wxopen local stack is up (Ctrl-C stops it)\n");
    println!("  authorization event URL  {g}/wechat/component");
    println!("  message URL              {g}/wechat/messages/$APPID$");
    println!("  authorization page       {g}/authorize");
    println!("  internal API             {g}/authorizers, {g}/component/access-token, ...");
    println!(
        "  WeChat sandbox           {}  (control API under /sandbox/)",
        local.sandbox.base_url()
    );
    println!("  credentials secret       {}\n", local.secret_arn);
    println!(
        "try:  curl -X POST {}/sandbox/push/ticket && curl {g}/component/access-token",
        local.sandbox.base_url()
    );
    let _ = tokio::signal::ctrl_c().await;
    local.gateway.stop();
    local.sandbox.stop();
    ExitCode::SUCCESS
}

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("demo") => demo().await,
        Some("serve") => {
            let port = args.get(2).and_then(|p| p.parse().ok()).unwrap_or(0);
            serve(port).await
        }
        _ => {
            eprintln!("usage: wxopen-local demo | serve [port]");
            ExitCode::from(2)
        }
    }
}
