//! `wxopen-local demo`  walks the whole provider story end to end and prints a summary
//!                      (exit 0 only if every step worked).
//! `wxopen-local serve` keeps the stack running and prints the URLs (Ctrl-C stops it).
//!
//! Needs `AWS_ENDPOINT_URL` pointing at moto (the Makefile sets it).
//!
//! `serve` talks to the WeChat sandbox unless the environment aims it elsewhere:
//! `WECHAT_API_BASE`, `WECHAT_MP_BASE`, `WECHAT_OPEN_BASE` (each defaults to WeChat's own host
//! once any aim variable is set) and the component credentials as `WXOPEN_CREDENTIALS_JSON` or
//! `WXOPEN_CREDENTIALS_FILE`; `PUBLIC_BASE_URL` (a tunnel's address) sets the redirect URI's base.
//! Aimed, the sandbox is not started. Bad values exit with status 2 and a message.

use std::process::ExitCode;

use wxopen_tests::bus::{LOCAL_AWS_ENV, LocalBus};
use wxopen_tests::stack::{AIM_VARIABLES, Aim, WeChatTarget};
use wxopen_tests::story::{run_story, start, start_aimed};

async fn demo() -> ExitCode {
    if AIM_VARIABLES
        .iter()
        .any(|k| std::env::var(k).is_ok_and(|v| !v.trim().is_empty()))
    {
        println!(
            "note: the demo always runs against the sandbox (it plays the merchant and the user); \
             the aim variables are for `make dev`\n"
        );
    }
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
    let story_started = std::time::Instant::now();
    let results = run_story(&local, true).await;
    let total_ms = story_started.elapsed().as_millis();
    let calls = local.sandbox.calls();
    println!("\nSummary");
    println!("  {:<40} {:>6}  {:>8}", "step", "result", "ms");
    for (name, ok, ms) in &results {
        println!(
            "  {:<40} {:>6}  {:>8}",
            name,
            if *ok { "ok" } else { "FAILED" },
            ms
        );
    }
    println!("  {:<40} {:>6}  {:>8}", "total", "", total_ms);
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
    match WeChatTarget::from_env() {
        Ok(WeChatTarget::Sandbox) => serve_sandbox(port).await,
        Ok(WeChatTarget::Aimed(aim)) => serve_aimed(port, &aim).await,
        Err(e) => {
            eprintln!("wxopen-local: {e}");
            ExitCode::from(2)
        }
    }
}

async fn serve_aimed(port: u16, aim: &Aim) -> ExitCode {
    let local = match start_aimed(port, aim).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("could not start the local stack: {e}");
            return ExitCode::FAILURE;
        }
    };
    let g = &local.gateway.base_url;
    let b = &aim.bases;
    println!("wxopen local stack is up, aimed at YOUR WeChat, not the sandbox (Ctrl-C stops it)\n");
    println!("  WeChat API               {}  (WECHAT_API_BASE)", b.api);
    println!("  WeChat mp host           {}  (WECHAT_MP_BASE)", b.mp);
    println!("  WeChat open host         {}  (WECHAT_OPEN_BASE)", b.open);
    println!(
        "  component                {}  (from {})",
        aim.component_appid, aim.credentials_source
    );
    println!("  sandbox                  not started\n");
    print_urls(g, aim.public_base.as_deref(), &local.secret_arn);
    print_events(&local.bus, &local.hook.url);
    println!(
        "WeChat (or your stand-in) must push the ticket to the authorization event URL{}",
        if aim.public_base.is_some() {
            " through PUBLIC_BASE_URL"
        } else {
            ""
        }
    );
    let _ = tokio::signal::ctrl_c().await;
    local.gateway.stop();
    ExitCode::SUCCESS
}

/// Where the events go and how to read them, and the local reply hook.
fn print_events(bus: &LocalBus, hook_url: &str) {
    let endpoint = std::env::var("AWS_ENDPOINT_URL").unwrap_or_default();
    println!(
        "  event bus                {}  (moto; rule {} → the queue below)",
        bus.bus_name, bus.rule_name
    );
    println!("  events queue             {}", bus.queue_url);
    println!(
        "  reply hook               {hook_url}  (local HTTP hook: echoes a text message as a text reply)\n"
    );
    println!(
        "read the events (each message is an EventBridge envelope with detail-type and detail):"
    );
    println!("  {}", bus.read_command(&endpoint));
    println!(
        "  (no AWS CLI? {LOCAL_AWS_ENV} AWS_ENDPOINT_URL={endpoint} .venv/bin/python -c \"import boto3,json; [print(json.dumps(json.loads(m['Body']),ensure_ascii=False)) for m in boto3.client('sqs').receive_message(QueueUrl='{}',MaxNumberOfMessages=10).get('Messages',[])]\")\n",
        bus.queue_url
    );
}

fn print_urls(gateway: &str, public_base: Option<&str>, secret_arn: &str) {
    let p = public_base.unwrap_or(gateway);
    println!("  authorization event URL  {gateway}/wechat/component");
    println!("  message URL              {gateway}/wechat/messages/$APPID$");
    println!("  authorization page       {gateway}/authorize");
    if public_base.is_some() {
        println!("  redirect URI             {p}/authorize/callback  (PUBLIC_BASE_URL)");
    }
    println!(
        "  internal API             {gateway}/authorizers, {gateway}/component/access-token, ..."
    );
    println!("  credentials secret       {secret_arn}");
    println!(
        "  operator command         cargo build -p wxopen-cli && target/debug/wxopen --endpoint {gateway} status\n"
    );
}

async fn serve_sandbox(port: u16) -> ExitCode {
    let local = match start(port).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("could not start the local stack: {e}");
            return ExitCode::FAILURE;
        }
    };
    let g = &local.gateway.base_url;
    println!("wxopen local stack is up, aimed at the WeChat sandbox (Ctrl-C stops it)\n");
    println!(
        "  WeChat sandbox           {}  (all three WeChat hosts; control API under /sandbox/)",
        local.sandbox.base_url()
    );
    println!(
        "  component                the test component (set WECHAT_API_BASE, ... to aim elsewhere)\n"
    );
    print_urls(g, None, &local.secret_arn);
    print_events(&local.bus, &local.hook.url);
    println!(
        "try:  curl -X POST {}/sandbox/push/ticket && curl {g}/component/access-token",
        local.sandbox.base_url()
    );
    println!(
        "      then authorize a merchant (README), and: curl -X POST {}/sandbox/users/message -d '{{\"appid\":\"wxoa00000000000001\",\"user\":\"alice\",\"content\":\"hi\"}}'",
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
        Some("serve") => match args.get(2).map(|p| p.parse::<u16>()) {
            None => serve(0).await,
            Some(Ok(port)) => serve(port).await,
            Some(Err(_)) => {
                eprintln!("wxopen-local: the port must be a number from 0 to 65535");
                ExitCode::from(2)
            }
        },
        _ => {
            eprintln!("usage: wxopen-local demo | serve [port]");
            ExitCode::from(2)
        }
    }
}
