//! Log setup for every function: Lambda's level and format controls (`AWS_LAMBDA_LOG_LEVEL`,
//! `AWS_LAMBDA_LOG_FORMAT=json`), with the HTTP and SDK dependencies capped at WARN whatever
//! level is asked for: at debug/trace they print request URLs (WeChat tokens travel in query
//! strings) and bodies (Secrets Manager's answer). wxopen's own logs never carry secrets.

use lambda_http::tracing::subscriber;
use subscriber::EnvFilter;
use subscriber::fmt::MakeWriter;

/// Crates whose debug/trace output can contain URLs with tokens or secret bodies.
pub const QUIET_DEPENDENCIES: &[&str] = &[
    "hyper",
    "hyper_util",
    "h2",
    "reqwest",
    "rustls",
    "tower",
    "aws_smithy_runtime",
    "aws_smithy_runtime_api",
    "aws_smithy_http",
    "aws_smithy_http_client",
    "aws_smithy_types",
    "aws_sdk_dynamodb",
    "aws_sdk_secretsmanager",
    "aws_config",
    "aws_runtime",
    "aws_sigv4",
    "lambda_runtime",
    "lambda_runtime_api_client",
    "lambda_http",
];

/// The filter for `level` (e.g. `INFO`, `trace`), dependencies capped at WARN.
pub fn filter(level: &str) -> EnvFilter {
    let level = match level.trim().to_ascii_lowercase().as_str() {
        l @ ("trace" | "debug" | "info" | "warn" | "error" | "off") => l.to_string(),
        _ => "info".to_string(),
    };
    let mut directives = level;
    for dep in QUIET_DEPENDENCIES {
        directives.push_str(&format!(",{dep}=warn"));
    }
    EnvFilter::builder().parse_lossy(directives)
}

/// Installs the subscriber for a function (call once, first thing in `main`).
pub fn init() {
    let level = std::env::var("AWS_LAMBDA_LOG_LEVEL")
        .or_else(|_| std::env::var("RUST_LOG"))
        .unwrap_or_else(|_| "INFO".into());
    let json = std::env::var("AWS_LAMBDA_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"));
    init_with_writer(&level, json, std::io::stdout);
}

/// Installs the subscriber with any writer (tests capture logs this way).
pub fn init_with_writer<W>(level: &str, json: bool, writer: W)
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let builder = subscriber::fmt()
        .with_target(false)
        .without_time()
        .with_env_filter(filter(level))
        .with_writer(writer);
    // A second init (tests) keeps the first subscriber.
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}
