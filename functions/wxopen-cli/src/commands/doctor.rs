//! `wxopen doctor`: the first-deploy checklist.

use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use serde_json::{Value, json};

use crate::error::CliError;
use crate::render;
use crate::target::{StackInfo, Target, aws_message};
use crate::verdict::{self, Check, Verdict};

/// What the template's secret holds until the provider fills it.
pub const PLACEHOLDER_APPID: &str = "REPLACE_ME";

pub async fn run(target: &Target, json: bool) -> Result<ExitCode, CliError> {
    let status = super::status::fetch(target).await?;
    let base = target.api.base().to_string();
    let urls = callback_urls(target.stack.as_ref(), &base);
    let mut checks = vec![
        secret(target, &status).await,
        Check::new(
            "callback URLs",
            Verdict::Ok,
            urls.iter()
                .map(|(k, v)| format!("{k}: {v}"))
                .collect::<Vec<_>>()
                .join("\n"),
        )
        .todo("register them in the Open Platform console (开发资料): the authorization event URL, the message URL (with the literal $APPID$), and the page's domain as the authorization initiation domain"),
        verdict::ticket(&status),
        egress(target, &status).await,
        alarms(target).await,
    ];
    // An ok check's action is only advice: the URLs line keeps its action on purpose.
    for c in &mut checks {
        if c.verdict == Verdict::Ok && c.check != "callback URLs" {
            c.action.clear();
        }
    }
    if json {
        let urls: serde_json::Map<String, Value> = urls
            .into_iter()
            .map(|(k, v)| (k.to_string(), json!(v)))
            .collect();
        render::print_json(&render::checks_json(
            &target.label(),
            &checks,
            json!({ "callback_urls": urls }),
        ));
    } else {
        print!(
            "{}",
            render::checks(&format!("wxopen doctor: {}", target.label()), &checks)
        );
    }
    Ok(render::exit_code(&checks))
}

fn callback_urls(stack: Option<&StackInfo>, base: &str) -> Vec<(&'static str, String)> {
    let from = |key: &str, path: &str| {
        stack
            .and_then(|s| s.output(key))
            .map_or_else(|| format!("{base}{path}"), str::to_string)
    };
    vec![
        (
            "authorization event URL",
            from("AuthorizationEventUrl", "/wechat/component"),
        ),
        (
            "message URL",
            from("MessageUrl", "/wechat/messages/$APPID$"),
        ),
        (
            "authorization page",
            from("AuthorizationPageUrl", "/authorize"),
        ),
    ]
}

async fn secret(target: &Target, status: &Value) -> Check {
    let ticket = status["ticket"].is_object();
    let Some(arn) = target
        .stack
        .as_ref()
        .and_then(|s| s.output("ComponentSecretArn"))
    else {
        // Without the stack, the ticket says it: its push was decrypted with the secret's key.
        return if ticket {
            Check::new(
                "secret",
                Verdict::Ok,
                "filled (a ticket was decrypted with it)",
            )
        } else {
            Check::new(
                "secret",
                Verdict::Unknown,
                "not readable from here (no --stack)",
            )
            .todo("with --stack NAME the doctor reads the secret's fields (never prints them)")
        };
    };
    let sm = aws_sdk_secretsmanager::Client::new(&target.aws);
    let fill = format!(
        "fill it with the component credentials: aws secretsmanager put-secret-value --secret-id {arn} \
         --secret-string file://credentials.json (README \"Deploy\")"
    );
    match sm.get_secret_value().secret_id(arn).send().await {
        Ok(out) => {
            let v: Value = out
                .secret_string()
                .and_then(|s| serde_json::from_str(s).ok())
                .unwrap_or(Value::Null);
            let missing: Vec<&str> = [
                "component_appid",
                "component_appsecret",
                "token",
                "encoding_aes_key",
            ]
            .into_iter()
            .filter(|k| v[*k].as_str().is_none_or(|s| s.trim().is_empty()))
            .collect();
            if v["component_appid"].as_str() == Some(PLACEHOLDER_APPID) {
                Check::new("secret", Verdict::Broken, "still the placeholder").todo(fill)
            } else if !missing.is_empty() {
                Check::new(
                    "secret",
                    Verdict::Broken,
                    format!("missing {}", missing.join(", ")),
                )
                .todo(fill)
            } else {
                Check::new(
                    "secret",
                    Verdict::Ok,
                    "filled (component_appid, appsecret, token, encoding_aes_key)",
                )
            }
        }
        Err(e) => Check::new(
            "secret",
            Verdict::Attention,
            format!("cannot be read: {}", aws_message(&e)),
        )
        .todo(
            "your identity needs secretsmanager:GetSecretValue on the stack's secret to check it",
        ),
    }
}

/// The refresh failures' labels that say WeChat refused the IP.
fn saw_61004(status: &Value) -> bool {
    let is = |v: &Value| v.as_str() == Some("errcode_61004");
    is(&status["component_token"]["last_error"])
        || status["tokens_failing"]["authorizers"]
            .as_array()
            .is_some_and(|a| a.iter().any(|f| is(&f["last_error"])))
}

async fn egress(target: &Target, status: &Value) -> Check {
    let mut seen = saw_61004(status);
    if let Some(stack) = &target.stack {
        seen |= metric_61004(target, stack).await.unwrap_or(false);
    }
    let ip = target
        .stack
        .as_ref()
        .and_then(|s| s.output("EgressIpAddress"));
    match (ip, seen) {
        (Some(ip), true) => Check::new("egress IP", Verdict::Broken, format!("{ip}; WeChat answered 61004"))
            .todo(format!("add {ip} to the platform's API IP whitelist (白名单) in the Open Platform console")),
        (Some(ip), false) => Check::new("egress IP", Verdict::Ok, format!("{ip}; no 61004 seen"))
            .todo(format!("keep {ip} in the platform's API IP whitelist")),
        (None, true) => Check::new("egress IP", Verdict::Broken, "no static egress; WeChat answered 61004")
            .todo("redeploy with StaticEgress=true (a NAT gateway with an Elastic IP), then whitelist the EgressIpAddress output"),
        (None, false) if target.stack.is_some() => Check::new(
            "egress IP",
            Verdict::Attention,
            "no static egress (StaticEgress=false): Lambda's IPs change; no 61004 seen",
        )
        .todo("if the platform whitelists IPs, redeploy with StaticEgress=true and whitelist EgressIpAddress"),
        (None, false) => Check::new("egress IP", Verdict::Ok, "local stack: no whitelist; no 61004 seen"),
    }
}

/// `RefreshFailuresByCause{Function=token-refresh, Cause=errcode_61004}` over the last 3 hours.
async fn metric_61004(target: &Target, _stack: &StackInfo) -> Result<bool, CliError> {
    use aws_sdk_cloudwatch::primitives::DateTime;
    use aws_sdk_cloudwatch::types::{Dimension, Statistic};
    let cw = aws_sdk_cloudwatch::Client::new(&target.aws);
    let now = SystemTime::now();
    let out = cw
        .get_metric_statistics()
        .namespace("wxopen")
        .metric_name("RefreshFailuresByCause")
        .dimensions(
            Dimension::builder()
                .name("Function")
                .value("token-refresh")
                .build(),
        )
        .dimensions(
            Dimension::builder()
                .name("Cause")
                .value("errcode_61004")
                .build(),
        )
        .start_time(DateTime::from(now - Duration::from_secs(3 * 3600)))
        .end_time(DateTime::from(now))
        .period(3600)
        .statistics(Statistic::Sum)
        .send()
        .await
        .map_err(|e| CliError::Aws(aws_message(&e)))?;
    Ok(out
        .datapoints()
        .iter()
        .any(|d| d.sum().unwrap_or(0.0) > 0.0))
}

async fn alarms(target: &Target) -> Check {
    let Some(stack) = &target.stack else {
        return Check::new(
            "alarms",
            Verdict::Unknown,
            "local stack: no CloudWatch alarms",
        );
    };
    let names: Vec<String> = stack.alarms.values().cloned().collect();
    if names.is_empty() {
        return Check::new("alarms", Verdict::Attention, "the stack has no alarms")
            .todo("redeploy from the current template.yaml");
    }
    let cw = aws_sdk_cloudwatch::Client::new(&target.aws);
    let mut firing = Vec::new();
    for chunk in names.chunks(100) {
        match cw
            .describe_alarms()
            .set_alarm_names(Some(chunk.to_vec()))
            .send()
            .await
        {
            Ok(out) => firing.extend(
                out.metric_alarms()
                    .iter()
                    .filter(|a| a.state_value().map(|s| s.as_str()) == Some("ALARM"))
                    .filter_map(|a| a.alarm_name().map(str::to_string)),
            ),
            Err(e) => {
                return Check::new(
                    "alarms",
                    Verdict::Attention,
                    format!("cannot be read: {}", aws_message(&e)),
                )
                .todo("your identity needs cloudwatch:DescribeAlarms");
            }
        }
    }
    if firing.is_empty() {
        return Check::new(
            "alarms",
            Verdict::Ok,
            format!("{} alarms, none in ALARM", names.len()),
        );
    }
    let logical: Vec<String> = stack
        .alarms
        .iter()
        .filter(|(_, p)| firing.contains(p))
        .map(|(l, _)| l.clone())
        .collect();
    Check::new("alarms", Verdict::Broken, format!("in ALARM: {}", logical.join(", ")))
        .todo("follow each alarm's paragraph in the README's runbook (what it means, what to check, what to do)")
}
