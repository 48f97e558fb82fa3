//! CloudWatch embedded-metric-format lines for events and the reply hook (namespace `wxopen`,
//! dimension `Function`), printed to stdout by the functions as the refresher does.
//!
//! | metric | unit | emitted by |
//! |---|---|---|
//! | `EventsPublished` | Count | the push functions, per push |
//! | `EventsDeferred` | Count | the push functions: events that went to the outbox |
//! | `EventsRepublished` | Count | the scheduled sweep |
//! | `OutboxAgeSeconds` | Seconds | the scheduled sweep: age of the oldest outbox entry (0 when empty) |
//! | `EventPublishMs` | Milliseconds | the push functions: time in `PutEvents` |
//! | `ReplyHookLatencyMs` | Milliseconds | message-events, per hook call |
//! | `ReplyHookFailures` | Count | message-events, with a second line by `Cause` (`timeout`, `transport`, `status`, `function_error`, `malformed`, `too_large`) |

use std::sync::{Arc, Mutex};

use serde_json::{Map, Value, json};

/// Lines a memory sink keeps (the newest).
pub const MEMORY_LINES: usize = 1000;

/// Where a function's metric lines go: stdout (CloudWatch reads EMF from the log), or memory
/// for tests that assert on them.
#[derive(Debug, Clone, Default)]
pub struct MetricSink(Option<Arc<Mutex<Vec<String>>>>);

impl MetricSink {
    /// Lines printed to stdout (as deployed).
    pub fn stdout() -> Self {
        Self(None)
    }

    /// Lines kept in memory, the newest [`MEMORY_LINES`] ([`MetricSink::lines`]).
    pub fn memory() -> Self {
        Self(Some(Arc::default()))
    }

    pub fn emit(&self, line: String) {
        match &self.0 {
            None => println!("{line}"),
            Some(lines) => {
                if let Ok(mut l) = lines.lock() {
                    if l.len() >= MEMORY_LINES {
                        l.remove(0);
                    }
                    l.push(line);
                }
            }
        }
    }

    /// The lines kept so far (empty for stdout).
    pub fn lines(&self) -> Vec<String> {
        self.0
            .as_ref()
            .and_then(|l| l.lock().ok().map(|l| l.clone()))
            .unwrap_or_default()
    }
}

/// One metric value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Metric {
    pub name: &'static str,
    pub unit: &'static str,
    pub value: f64,
}

impl Metric {
    pub fn count(name: &'static str, value: u64) -> Self {
        Self {
            name,
            unit: "Count",
            value: value as f64,
        }
    }
    pub fn millis(name: &'static str, value: u64) -> Self {
        Self {
            name,
            unit: "Milliseconds",
            value: value as f64,
        }
    }
    pub fn seconds(name: &'static str, value: i64) -> Self {
        Self {
            name,
            unit: "Seconds",
            value: value as f64,
        }
    }
}

/// One EMF line: `metrics` under dimensions `Function` (+ the extra ones given).
pub fn emf_line(
    function: &str,
    extra_dimensions: &[(&str, &str)],
    metrics: &[Metric],
    timestamp_ms: i64,
) -> String {
    let mut dims = vec![Value::from("Function")];
    dims.extend(extra_dimensions.iter().map(|(k, _)| Value::from(*k)));
    let mut line = Map::new();
    line.insert(
        "_aws".into(),
        json!({
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [{
                "Namespace": "wxopen",
                "Dimensions": [dims],
                "Metrics": metrics.iter().map(|m| json!({"Name": m.name, "Unit": m.unit})).collect::<Vec<_>>(),
            }],
        }),
    );
    line.insert("Function".into(), function.into());
    for (k, v) in extra_dimensions {
        line.insert((*k).into(), (*v).into());
    }
    for m in metrics {
        line.insert(m.name.into(), m.value.into());
    }
    Value::Object(line).to_string()
}

/// The push path's line for one delivered event.
pub fn delivery_line(
    function: &str,
    delivered: &super::outbox::Delivered,
    timestamp_ms: i64,
) -> String {
    emf_line(
        function,
        &[],
        &[
            Metric::count("EventsPublished", u64::from(delivered.published)),
            Metric::count("EventsDeferred", u64::from(delivered.deferred)),
            Metric::millis("EventPublishMs", delivered.publish_ms),
        ],
        timestamp_ms,
    )
}

/// The message URL's line for one verified push (the dashboard's "pushes and replies by kind"
/// and "callback latency"): `Pushes` and `CallbackLatencyMs` under `[Function, Kind, Reply]`.
/// `kind` is the message type, or `event.<name>` for events, reduced to at most 32 ASCII
/// letters, digits, `_` and `.` (the push is verified before this, but the label stays bounded).
pub fn push_line(
    function: &str,
    msg_type: &str,
    event: Option<&str>,
    reply: &str,
    latency_ms: u64,
    timestamp_ms: i64,
) -> String {
    let raw = match event {
        Some(e) if msg_type == "event" => format!("event.{}", e.to_ascii_lowercase()),
        _ => msg_type.to_ascii_lowercase(),
    };
    let kind: String = raw
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '.')
        .take(32)
        .collect();
    emf_line(
        function,
        &[("Kind", &kind), ("Reply", reply)],
        &[
            Metric::count("Pushes", 1),
            Metric::millis("CallbackLatencyMs", latency_ms),
        ],
        timestamp_ms,
    )
}

/// The sweep's line.
pub fn sweep_line(
    function: &str,
    report: &super::outbox::SweepReport,
    timestamp_ms: i64,
) -> String {
    emf_line(
        function,
        &[],
        &[
            Metric::count("EventsRepublished", u64::from(report.republished)),
            Metric::seconds("OutboxAgeSeconds", report.oldest_age_secs),
        ],
        timestamp_ms,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_emf() {
        let line = emf_line(
            "message-events",
            &[("Cause", "timeout")],
            &[Metric::count("ReplyHookFailures", 1)],
            5,
        );
        let v: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["_aws"]["CloudWatchMetrics"][0]["Namespace"], "wxopen");
        assert_eq!(
            v["_aws"]["CloudWatchMetrics"][0]["Dimensions"][0],
            json!(["Function", "Cause"])
        );
        assert_eq!(v["ReplyHookFailures"], 1.0);
        assert_eq!(v["Cause"], "timeout");
        assert_eq!(v["Function"], "message-events");
        let sweep = sweep_line(
            "token-refresh",
            &super::super::outbox::SweepReport {
                republished: 3,
                oldest_age_secs: 90,
                ..Default::default()
            },
            0,
        );
        let push = push_line("message-events", "event", Some("SCAN<x>"), "reply", 12, 0);
        let p: Value = serde_json::from_str(&push).unwrap();
        assert_eq!(
            (
                p["Kind"].as_str(),
                p["Reply"].as_str(),
                p["Pushes"].as_f64(),
                p["CallbackLatencyMs"].as_f64()
            ),
            (Some("event.scanx"), Some("reply"), Some(1.0), Some(12.0))
        );
        let v: Value = serde_json::from_str(&sweep).unwrap();
        assert_eq!(
            (
                v["EventsRepublished"].as_f64(),
                v["OutboxAgeSeconds"].as_f64()
            ),
            (Some(3.0), Some(90.0))
        );
    }
}
