//! `wechat-sandbox`: a local stand-in for WeChat's Open Platform service (see
//! `wxopen_tests::sandbox`). Prints `wechat-sandbox listening on http://HOST:PORT` and serves
//! until SIGINT or SIGTERM.

use std::net::{IpAddr, SocketAddr};
use std::process::ExitCode;

use wxopen_tests::sandbox::{self, SandboxConfig};

const USAGE: &str = "\
usage: wechat-sandbox [options]

  --port N                      port to listen on (default 0: any free port)   env WECHAT_SANDBOX_PORT
  --host IP                     address to bind (default 127.0.0.1)            env WECHAT_SANDBOX_HOST
  --component-callback URL      authorization event URL (tickets, authorization pushes)
                                                                               env WECHAT_SANDBOX_COMPONENT_CALLBACK
  --message-callback-base URL   message URL base; pushes go to URL/{appid}     env WECHAT_SANDBOX_MESSAGE_CALLBACK_BASE
  --component-appid ID          component credentials (default: the test ones) env WECHAT_SANDBOX_COMPONENT_APPID
  --component-appsecret S                                                      env WECHAT_SANDBOX_COMPONENT_APPSECRET
  --token T                                                                    env WECHAT_SANDBOX_TOKEN
  --encoding-aes-key K          43 characters                                  env WECHAT_SANDBOX_ENCODING_AES_KEY
  -h, --help                    this text
";

struct Options {
    host: IpAddr,
    port: u16,
    config: SandboxConfig,
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// Flags and environment before validation.
struct Raw {
    host: String,
    port: String,
    config: SandboxConfig,
}

type Setter = fn(&mut Raw, String);

fn setter(flag: &str) -> Option<Setter> {
    let f: Setter = match flag {
        "--port" => |r, v| r.port = v,
        "--host" => |r, v| r.host = v,
        "--component-callback" => |r, v| r.config.component_callback_url = Some(v),
        "--message-callback-base" => |r, v| r.config.message_callback_base = Some(v),
        "--component-appid" => |r, v| r.config.component_appid = v,
        "--component-appsecret" => |r, v| r.config.component_appsecret = v,
        "--token" => |r, v| r.config.token = v,
        "--encoding-aes-key" => |r, v| r.config.encoding_aes_key = v,
        _ => return None,
    };
    Some(f)
}

fn parse(args: &[String]) -> Result<Options, String> {
    let mut raw = Raw {
        host: env("WECHAT_SANDBOX_HOST").unwrap_or_else(|| "127.0.0.1".to_string()),
        port: env("WECHAT_SANDBOX_PORT").unwrap_or_else(|| "0".to_string()),
        config: SandboxConfig {
            component_callback_url: env("WECHAT_SANDBOX_COMPONENT_CALLBACK"),
            message_callback_base: env("WECHAT_SANDBOX_MESSAGE_CALLBACK_BASE"),
            ..SandboxConfig::default()
        },
    };
    let from_env = [
        ("WECHAT_SANDBOX_COMPONENT_APPID", "--component-appid"),
        (
            "WECHAT_SANDBOX_COMPONENT_APPSECRET",
            "--component-appsecret",
        ),
        ("WECHAT_SANDBOX_TOKEN", "--token"),
        ("WECHAT_SANDBOX_ENCODING_AES_KEY", "--encoding-aes-key"),
    ];
    for (var, flag) in from_env {
        if let (Some(value), Some(set)) = (env(var), setter(flag)) {
            set(&mut raw, value);
        }
    }
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let (name, inline) = match arg.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n, Some(v.to_string())),
            _ => (arg.as_str(), None),
        };
        if matches!(name, "-h" | "--help") {
            return Err(String::new());
        }
        let set = setter(name).ok_or_else(|| format!("unknown option {name}"))?;
        let value = match inline {
            Some(v) => v,
            None => it
                .next()
                .cloned()
                .ok_or_else(|| format!("{name} needs a value"))?,
        };
        set(&mut raw, value);
    }
    let config = raw.config;
    for url in [
        &config.component_callback_url,
        &config.message_callback_base,
    ]
    .into_iter()
    .flatten()
    {
        url::Url::parse(url).map_err(|_| format!("not a URL: {url}"))?;
    }
    Ok(Options {
        host: raw
            .host
            .parse()
            .map_err(|_| format!("invalid host {}", raw.host))?,
        port: raw
            .port
            .parse()
            .map_err(|_| format!("invalid port {}", raw.port))?,
        config,
    })
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let options = match parse(&args) {
        Ok(o) => o,
        Err(e) if e.is_empty() => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("wechat-sandbox: {e}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let addr = SocketAddr::new(options.host, options.port);
    let handle = match sandbox::start_on(options.config, addr).await {
        Ok(h) => h,
        Err(e) => {
            eprintln!("wechat-sandbox: cannot start on {addr}: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!("wechat-sandbox listening on {}", handle.base_url());
    shutdown_signal().await;
    handle.stop();
    ExitCode::SUCCESS
}
