//! `wxopen releases create …`, `watch ID` (a live progress bar per target state), `cancel ID`.
//!
//! Against the contract `POST /releases`, `GET /releases/{id}`, `POST /releases/{id}/cancel`.
//! The job's answer is read defensively: counts by state from `counts` (or `targets_by_state`),
//! else from a `targets` array of `{state}`.

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::{Value, json};

use crate::api::q;
use crate::cli::ReleasesCommand;
use crate::error::CliError;
use crate::render;
use crate::target::Target;

/// A target's states, in the order they are drawn.
pub const STATES: &[&str] = &[
    "queued",
    "committed",
    "submitted",
    "approved",
    "released",
    "rejected",
    "failed",
    "skipped",
    "cancelled",
];
/// States a target never leaves.
pub const TERMINAL: &[&str] = &["released", "rejected", "failed", "skipped", "cancelled"];
/// Job states that end a watch.
const JOB_DONE: &[&str] = &[
    "done",
    "completed",
    "finished",
    "cancelled",
    "failed",
    "succeeded",
];

pub async fn run(target: &Target, c: &ReleasesCommand, json: bool) -> Result<ExitCode, CliError> {
    match c {
        ReleasesCommand::Create {
            template_id,
            version,
            description,
            appids,
            customer,
            watch: then_watch,
        } => {
            let mut body = json!({
                "template_id": template_id,
                "user_version": version,
                "user_desc": description,
            });
            body["targets"] = if appids.is_empty() {
                let mut all = json!({ "all": true });
                if let Some(c) = customer {
                    all["customer_ref"] = json!(c);
                }
                all
            } else {
                json!({ "appids": appids })
            };
            let job = target.api.post("/releases", &body).await?;
            let id = job["id"].as_str().unwrap_or_default().to_string();
            if json && !then_watch {
                render::print_json(&job);
            } else {
                println!("release {id} created");
            }
            if *then_watch && !id.is_empty() {
                return watch(target, &id, 2.0, json).await;
            }
            Ok(ExitCode::SUCCESS)
        }
        ReleasesCommand::Watch { id, interval } => watch(target, id, *interval, json).await,
        ReleasesCommand::Cancel { id } => {
            let job = target
                .api
                .post(&format!("/releases/{}/cancel", q(id)), &json!({}))
                .await?;
            if json {
                render::print_json(&job);
            } else {
                println!(
                    "release {id}: cancel requested ({})",
                    summary(&counts(&job))
                );
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Targets by state.
pub fn counts(job: &Value) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    if let Some(c) = job
        .get("counts")
        .or_else(|| job.get("targets_by_state"))
        .and_then(Value::as_object)
    {
        for (k, v) in c {
            out.insert(k.clone(), v.as_u64().unwrap_or(0));
        }
    } else if let Some(targets) = job.get("targets").and_then(Value::as_array) {
        for t in targets {
            if let Some(s) = t.get("state").and_then(Value::as_str) {
                *out.entry(s.to_string()).or_default() += 1;
            }
        }
    }
    out
}

fn total(job: &Value, counts: &BTreeMap<String, u64>) -> u64 {
    job.get("total")
        .and_then(Value::as_u64)
        .unwrap_or_else(|| counts.values().sum())
}

/// The job is over: its status says so, or every target is in a terminal state.
pub fn finished(job: &Value) -> bool {
    let status = job
        .get("status")
        .or_else(|| job.get("state"))
        .and_then(Value::as_str)
        .unwrap_or("");
    if JOB_DONE.contains(&status) {
        return true;
    }
    let c = counts(job);
    let t = total(job, &c);
    t > 0
        && c.iter()
            .filter(|(s, _)| TERMINAL.contains(&s.as_str()))
            .map(|(_, n)| n)
            .sum::<u64>()
            >= t
}

/// `released 3, failed 1` (states with targets, in [`STATES`] order, then any others).
pub fn summary(c: &BTreeMap<String, u64>) -> String {
    let mut parts: Vec<String> = STATES
        .iter()
        .filter_map(|s| c.get(*s).filter(|n| **n > 0).map(|n| format!("{s} {n}")))
        .collect();
    parts.extend(
        c.iter()
            .filter(|(s, n)| !STATES.contains(&s.as_str()) && **n > 0)
            .map(|(s, n)| format!("{s} {n}")),
    );
    if parts.is_empty() {
        "no targets".into()
    } else {
        parts.join(", ")
    }
}

async fn watch(target: &Target, id: &str, interval: f64, json: bool) -> Result<ExitCode, CliError> {
    let path = format!("/releases/{}", q(id));
    let multi = MultiProgress::with_draw_target(if json {
        ProgressDrawTarget::hidden()
    } else {
        ProgressDrawTarget::stderr()
    });
    let style = ProgressStyle::with_template("{prefix:>10} [{bar:30}] {pos}/{len}")
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("#>-");
    let bars: Vec<(&str, ProgressBar)> = STATES
        .iter()
        .map(|s| {
            let b = multi.add(ProgressBar::new(0));
            b.set_style(style.clone());
            b.set_prefix(*s);
            (*s, b)
        })
        .collect();
    let every = Duration::from_secs_f64(interval.clamp(0.1, 60.0));
    let job = loop {
        let job = target.api.get(&path).await?;
        let c = counts(&job);
        let t = total(&job, &c);
        for (s, b) in &bars {
            b.set_length(t);
            b.set_position(c.get(*s).copied().unwrap_or(0));
        }
        if finished(&job) {
            break job;
        }
        tokio::time::sleep(every).await;
    };
    for (_, b) in &bars {
        b.finish();
    }
    let c = counts(&job);
    if json {
        render::print_json(&json!({ "id": id, "counts": c, "job": job }));
    } else {
        println!("release {id} finished: {}", summary(&c));
    }
    let bad = ["failed", "rejected"]
        .iter()
        .any(|s| c.get(*s).copied().unwrap_or(0) > 0);
    Ok(if bad {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_come_from_either_shape() {
        let a = json!({"counts": {"released": 2, "failed": 1}, "total": 3});
        let b =
            json!({"targets": [{"state": "released"}, {"state": "released"}, {"state": "failed"}]});
        assert_eq!(counts(&a), counts(&b));
        assert!(finished(&a) && finished(&b));
        assert_eq!(summary(&counts(&a)), "released 2, failed 1");
        let running = json!({"status": "running", "counts": {"queued": 1, "released": 2}});
        assert!(!finished(&running));
        assert!(finished(
            &json!({"status": "cancelled", "counts": {"queued": 1}})
        ));
    }
}
