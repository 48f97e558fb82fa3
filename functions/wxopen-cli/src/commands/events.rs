//! `wxopen events tail`: a queue with a rule on the bus (created, or reused when it exists),
//! polled and printed; removed on exit unless `--keep`.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::cli::EventsCommand;
use crate::error::CliError;
use crate::target::{Target, aws_message};

pub async fn run(target: &Target, c: &EventsCommand, json: bool) -> Result<ExitCode, CliError> {
    let EventsCommand::Tail {
        bus,
        types,
        max,
        idle,
        keep,
    } = c;
    let bus = bus
        .clone()
        .or_else(|| {
            target
                .stack
                .as_ref()
                .and_then(|s| s.output("EventBusName").map(str::to_string))
        })
        .ok_or_else(|| {
            CliError::Usage(
                "no bus: pass --bus NAME (`make dev` prints the local bus), or --stack NAME".into(),
            )
        })?;
    let aws = |e: String| CliError::Aws(e);
    let sqs = aws_sdk_sqs::Client::new(&target.aws);
    let events = aws_sdk_eventbridge::Client::new(&target.aws);
    let name: String = format!("wxopen-tail-{bus}")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .take(64)
        .collect();
    let queue_url = sqs
        .create_queue()
        .queue_name(&name)
        .send()
        .await
        .map_err(|e| aws(aws_message(&e)))?
        .queue_url
        .unwrap_or_default();
    let attrs = sqs
        .get_queue_attributes()
        .queue_url(&queue_url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await
        .map_err(|e| aws(aws_message(&e)))?;
    let queue_arn = attrs
        .attributes()
        .and_then(|a| a.get(&aws_sdk_sqs::types::QueueAttributeName::QueueArn))
        .cloned()
        .unwrap_or_default();
    let mut pattern = json!({ "source": ["wxopen"] });
    if !types.is_empty() {
        pattern["detail-type"] = json!(types);
    }
    let rule = events
        .put_rule()
        .name(&name)
        .event_bus_name(&bus)
        .event_pattern(pattern.to_string())
        .send()
        .await
        .map_err(|e| aws(aws_message(&e)))?;
    let policy = json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": {"Service": "events.amazonaws.com"},
            "Action": "sqs:SendMessage",
            "Resource": queue_arn,
            "Condition": {"ArnEquals": {"aws:SourceArn": rule.rule_arn().unwrap_or_default()}},
        }],
    });
    sqs.set_queue_attributes()
        .queue_url(&queue_url)
        .attributes(
            aws_sdk_sqs::types::QueueAttributeName::Policy,
            policy.to_string(),
        )
        .send()
        .await
        .map_err(|e| aws(aws_message(&e)))?;
    events
        .put_targets()
        .rule(&name)
        .event_bus_name(&bus)
        .targets(
            aws_sdk_eventbridge::types::Target::builder()
                .id("wxopen-tail")
                .arn(&queue_arn)
                .build()
                .map_err(|e| aws(e.to_string()))?,
        )
        .send()
        .await
        .map_err(|e| aws(aws_message(&e)))?;
    if !json {
        eprintln!("tailing bus {bus} (queue {name}); Ctrl-C stops");
    }
    let mut seen = 0usize;
    let mut last = Instant::now();
    let result = loop {
        if max.is_some_and(|m| seen >= m)
            || idle.is_some_and(|i| last.elapsed() >= Duration::from_secs(i))
        {
            break Ok(());
        }
        let receive = sqs
            .receive_message()
            .queue_url(&queue_url)
            .max_number_of_messages(10)
            .wait_time_seconds(2)
            .send();
        let out = tokio::select! {
            r = receive => r.map_err(|e| aws(aws_message(&e))),
            _ = tokio::signal::ctrl_c() => break Ok(()),
        };
        let out = match out {
            Ok(o) => o,
            Err(e) => break Err(e),
        };
        for m in out.messages() {
            let envelope: Value = m
                .body()
                .and_then(|b| serde_json::from_str(b).ok())
                .unwrap_or(Value::Null);
            print_event(&envelope, json);
            seen += 1;
            last = Instant::now();
            if let Some(h) = m.receipt_handle() {
                let _ = sqs
                    .delete_message()
                    .queue_url(&queue_url)
                    .receipt_handle(h)
                    .send()
                    .await;
            }
        }
    };
    if !keep {
        let _ = events
            .remove_targets()
            .rule(&name)
            .event_bus_name(&bus)
            .ids("wxopen-tail")
            .send()
            .await;
        let _ = events
            .delete_rule()
            .name(&name)
            .event_bus_name(&bus)
            .send()
            .await;
        let _ = sqs.delete_queue().queue_url(&queue_url).send().await;
    }
    result.map(|()| ExitCode::SUCCESS)
}

fn print_event(e: &Value, json: bool) {
    if json {
        println!("{}", e);
        return;
    }
    let d = &e["detail"];
    let s = |v: &Value| v.as_str().unwrap_or("-").to_string();
    println!(
        "{}  {:<22} appid={} {}{}",
        s(&e["time"]),
        s(&e["detail-type"]),
        s(&d["appid"]),
        d["msg_type"]
            .as_str()
            .map(|t| format!("msg_type={t} "))
            .unwrap_or_default(),
        d["event"]
            .as_str()
            .map(|t| format!("event={t}"))
            .unwrap_or_default(),
    );
}
