//! The soak's end: each invariant a named assertion with its count, and the figures of the run.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::time::Duration;

use secrecy::ExposeSecret;
use serde_json::{Value, json};
use wxopen::model::TokenKey;
use wxopen::store::TokenStore;

use super::{Observed, SoakConfig};
use crate::stack::Stack;

/// One named assertion: held or not, over how many cases.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Invariant {
    pub name: &'static str,
    pub held: bool,
    /// Cases checked.
    pub count: u64,
    /// Cases that broke it (0 when held), and a sample.
    pub broken: u64,
    pub detail: String,
}

/// What `make soak` prints.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SoakReport {
    pub invariants: Vec<Invariant>,
    pub figures: Value,
}

impl SoakReport {
    pub fn all_held(&self) -> bool {
        self.invariants.iter().all(|i| i.held)
    }

    /// The names of the invariants that did not hold.
    pub fn broken(&self) -> Vec<&'static str> {
        self.invariants
            .iter()
            .filter(|i| !i.held)
            .map(|i| i.name)
            .collect()
    }

    pub fn invariant(&self, name: &str) -> Option<&Invariant> {
        self.invariants.iter().find(|i| i.name == name)
    }

    /// The invariants, one line each, then the figures (pretty JSON).
    pub fn render(&self) -> String {
        let mut out = String::new();
        for i in &self.invariants {
            let _ = writeln!(
                out,
                "{} {:<44} {:>7} checked {:>5} broken  {}",
                if i.held { "HELD  " } else { "BROKEN" },
                i.name,
                i.count,
                i.broken,
                i.detail
            );
        }
        let _ = writeln!(
            out,
            "{}",
            serde_json::to_string_pretty(&self.figures).unwrap_or_default()
        );
        out
    }
}

/// Every authorized merchant (the sandbox's word): the refresh token wxopen holds is the one
/// WeChat holds, and its access token is WeChat's current one (it works at the sandbox).
#[derive(Debug, Default)]
pub struct TokensHeld {
    pub authorized: u64,
    pub lost: Vec<String>,
}

pub async fn tokens_held(stack: &Stack) -> TokensHeld {
    let state = stack.sandbox.state();
    let mut out = TokensHeld::default();
    for m in state["merchants"].as_array().into_iter().flatten() {
        if m["authorized"] != true {
            continue;
        }
        out.authorized += 1;
        let appid = m["appid"].as_str().unwrap_or_default();
        let record = stack
            .store
            .get_token(&TokenKey::Authorizer(appid.to_string()))
            .await
            .ok()
            .flatten();
        let kept = record.is_some_and(|r| {
            r.refresh_token
                .as_ref()
                .map(|t| t.expose_secret().to_string())
                == m["authorization"]["refresh_token"]
                    .as_str()
                    .map(str::to_string)
                && r.access_token
                    .as_ref()
                    .map(|t| t.expose_secret().to_string())
                    == m["authorizer_access_token"].as_str().map(str::to_string)
        });
        if !kept {
            out.lost.push(appid.to_string());
        }
    }
    out
}

/// A non-200 answer in the edge's one error shape (never a 500).
pub fn error_shaped(status: u16, body: &Value) -> bool {
    (400..600).contains(&status)
        && status != 500
        && body["error"].is_string()
        && body["message"].is_string()
}

fn invariant(name: &'static str, count: u64, bad: &[String], what: &str) -> Invariant {
    let broken = u64::try_from(bad.len()).unwrap_or(u64::MAX);
    Invariant {
        name,
        held: bad.is_empty(),
        count,
        broken,
        detail: if bad.is_empty() {
            what.to_string()
        } else {
            let sample: Vec<&str> = bad.iter().take(5).map(String::as_str).collect();
            format!("{what}; e.g. {}", sample.join(", "))
        },
    }
}

fn len(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

/// Peak resident memory of this process (VmHWM), KiB.
pub fn peak_rss_kib() -> Option<u64> {
    std::fs::read_to_string("/proc/self/status")
        .ok()?
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
}

/// The secrets that occur in `text`: one rolling hash per distinct secret length, so the cost is
/// the text's length times the number of lengths, not times the number of secrets.
pub fn secrets_in<'a>(text: &str, secrets: impl IntoIterator<Item = &'a String>) -> Vec<&'a str> {
    const B: u64 = 1_000_003;
    let mut by_len: BTreeMap<usize, HashMap<u64, Vec<&'a str>>> = BTreeMap::new();
    let hash = |bytes: &[u8]| {
        bytes
            .iter()
            .fold(0u64, |h, b| h.wrapping_mul(B).wrapping_add(u64::from(*b)))
    };
    for s in secrets {
        by_len
            .entry(s.len())
            .or_default()
            .entry(hash(s.as_bytes()))
            .or_default()
            .push(s.as_str());
    }
    let text = text.as_bytes();
    let mut found = Vec::new();
    for (&n, table) in &by_len {
        if n == 0 || n > text.len() {
            continue;
        }
        let top = (1..n).fold(1u64, |p, _| p.wrapping_mul(B));
        let mut h = hash(&text[..n]);
        for start in 0..=text.len() - n {
            if start > 0 {
                h = h
                    .wrapping_sub(u64::from(text[start - 1]).wrapping_mul(top))
                    .wrapping_mul(B)
                    .wrapping_add(u64::from(text[start + n - 1]));
            }
            if let Some(candidates) = table.get(&h) {
                let window = &text[start..start + n];
                for c in candidates {
                    if c.as_bytes() == window && !found.contains(c) {
                        found.push(*c);
                    }
                }
            }
        }
    }
    found
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    f64::from(sorted[rank.min(sorted.len() - 1)]) / 1000.0
}

/// The invariants and figures of a finished day.
pub fn check(
    config: &SoakConfig,
    mut seen: Observed,
    tokens: TokensHeld,
    logs: &str,
    elapsed: Duration,
) -> SoakReport {
    let mut inv = Vec::new();
    inv.push(invariant(
        "no_refresh_token_lost",
        tokens.authorized,
        &tokens.lost,
        "every authorized merchant: wxopen's refresh token and access token are WeChat's current ones",
    ));
    let mut undelivered = Vec::new();
    let mut new_ids = Vec::new();
    for content in seen.messages.keys() {
        match seen.event_ids.get(content) {
            None => undelivered.push(content.clone()),
            Some(ids) if ids.iter().any(|i| *i != ids[0]) => new_ids.push(content.clone()),
            Some(_) => {}
        }
    }
    let retried = seen.messages.values().filter(|r| **r > 1).count();
    inv.push(invariant(
        "events_delivered_at_least_once",
        len(seen.messages.len()),
        &undelivered,
        "every message's event read from the bus's queue",
    ));
    inv.push(invariant(
        "no_new_event_id_for_a_wechat_retry",
        len(seen.messages.len()),
        &new_ids,
        &format!(
            "{retried} messages delivered 2-3 times by WeChat; every copy of an event has one id"
        ),
    ));
    // Every push claims the hook once (`EventRecordStore::claim_hook`): a WeChat retry, past the
    // deadline or after a killed invocation, answers as the first recorded or delivers without
    // asking again.
    let doubled: Vec<String> = seen
        .hook_calls
        .iter()
        .filter(|(_, n)| **n > 1)
        .map(|(c, n)| {
            let delivered = seen.messages.get(c).copied().unwrap_or_default();
            format!("{c}: {n} calls, {delivered} deliveries")
        })
        .collect();
    inv.push(invariant(
        "hook_called_at_most_once_per_message",
        len(seen.messages.len()),
        &doubled,
        &format!(
            "{} hook calls; {} messages retried by WeChat (an attempt failed or past its 5 s deadline) included",
            seen.hook_calls.values().sum::<u32>(),
            seen.past_wechats_deadline.len()
        ),
    ));
    let exchanges = if seen.code_exchanges == seen.authorizations {
        Vec::new()
    } else {
        vec![format!(
            "{} exchanges for {} authorizations",
            seen.code_exchanges, seen.authorizations
        )]
    };
    inv.push(invariant(
        "code_exchanged_once_per_authorization",
        seen.authorizations,
        &exchanges,
        "api_query_auth answered once per authorization or re-authorization",
    ));
    let doubled_sends: Vec<String> = seen
        .release_tests
        .iter()
        .enumerate()
        .filter(|(_, r)| r.from_api_sends > 1)
        .map(|(i, r)| format!("run {}: {} sends of one code", i + 1, r.from_api_sends))
        .collect();
    let runs = &seen.release_tests;
    inv.push(invariant(
        "from_api_sent_at_most_once_per_code",
        len(runs.len()),
        &doubled_sends,
        &format!(
            "full-network release test runs: {} with QUERY_AUTH_CODE delivered twice at once, {} with an invocation killed mid-way; {} passed, {} `_from_api` messages sent",
            runs.iter().filter(|r| r.retried_while_running).count(),
            runs.iter().filter(|r| r.killed > 0).count(),
            runs.iter().filter(|r| r.passed).count(),
            runs.iter().map(|r| r.from_api_sends).sum::<u64>(),
        ),
    ));
    let sign_ins_attempted: u64 = seen.sign_ins.values().map(|f| f.attempted).sum();
    let mut unreported: Vec<String> = seen
        .sign_ins
        .iter()
        .filter(|(_, f)| f.attempted > f.completed + f.reported_failed)
        .map(|(flow, f)| {
            format!(
                "{flow}: {} neither",
                f.attempted - f.completed - f.reported_failed
            )
        })
        .collect();
    if !unreported.is_empty() {
        unreported.extend(seen.sign_ins_neither.iter().cloned());
    }
    let per_flow: Vec<String> = super::sign_in::FLOWS
        .iter()
        .map(|flow| {
            let f = seen.sign_ins.get(flow).copied().unwrap_or_default();
            format!(
                "{flow} {}: {} completed, {} reported failed",
                f.attempted, f.completed, f.reported_failed
            )
        })
        .collect();
    inv.push(invariant(
        "every_sign_in_completed_or_reported_failed",
        sign_ins_attempted,
        &unreported,
        &format!(
            "{}; failures {:?}",
            per_flow.join("; "),
            seen.sign_in_errors
        ),
    ));
    let fleet = seen.fleet.take().unwrap_or_default();
    inv.push(invariant(
        "every_release_target_final_and_matching_the_sandbox",
        fleet.targets,
        &fleet.mismatched,
        &format!(
            "job done {}; states {:?}; {} audits rejected, {} pushes lost and {} audits polled by the scheduled run, {} pushes delivered",
            fleet.job_done,
            fleet.states,
            fleet.rejected,
            fleet.lost_pushes,
            fleet.audits_polled,
            fleet.pushes_delivered
        ),
    ));
    inv.push(invariant(
        "no_commit_or_audit_submission_doubled",
        fleet.targets,
        &fleet.doubled,
        &format!(
            "accepted wxa/commit and wxa/submit_audit per target at the sandbox: at most one, exactly one when released or rejected; {} worker invocations killed at {:?}, {} commits answered 45009",
            fleet.killed.len(),
            fleet.killed,
            fleet.commits_refused_45009
        ),
    ));
    let gateway_total: u64 = seen.gateway_statuses.values().sum();
    inv.push(invariant(
        "every_gateway_call_answered_or_a_clear_error",
        gateway_total,
        &vec![
            format!(
                "{} answers neither 200 nor the error shape",
                seen.gateway_malformed
            );
            usize::from(seen.gateway_malformed > 0)
        ],
        &format!("statuses {:?}", seen.gateway_statuses),
    ));
    inv.push(invariant(
        "every_push_answered_200",
        len(seen.messages.len()),
        &seen.pushes_not_answered,
        "WeChat saw every message push answered",
    ));
    let leaked: Vec<String> = secrets_in(logs, &seen.secrets)
        .into_iter()
        .map(|s| format!("{}…", s.get(..6).unwrap_or_default()))
        .collect();
    inv.push(invariant(
        "no_secret_in_any_log_line",
        len(seen.secrets.len()),
        &leaked,
        &format!(
            "{} secrets looked for in {} log lines at TRACE",
            seen.secrets.len(),
            logs.lines().count()
        ),
    ));
    let peak = peak_rss_kib().unwrap_or(u64::MAX);
    inv.push(invariant(
        "memory_bounded",
        1,
        &vec![
            format!("peak {peak} KiB > {} KiB", config.memory_limit_kib);
            usize::from(peak > config.memory_limit_kib)
        ],
        &format!(
            "peak RSS {peak} KiB (limit {} KiB; includes {} KiB of captured logs)",
            config.memory_limit_kib,
            logs.len() / 1024
        ),
    ));

    seen.callback_micros.sort_unstable();
    let rate = |kind: &str| {
        seen.work
            .get(kind)
            .map(|w| w.units as f64 / w.secs.max(1e-9))
            .unwrap_or(0.0)
    };
    let per_unit: BTreeMap<&str, Value> = seen
        .work
        .iter()
        .map(|(k, w)| {
            let per = |n: u64| (n as f64 / w.units.max(1) as f64 * 100.0).round() / 100.0;
            (
                *k,
                json!({
                    "units": w.units,
                    "dynamodb_per_unit": per(w.dynamodb),
                    "wechat_per_unit": per(w.wechat),
                    "secs": (w.secs * 100.0).round() / 100.0,
                }),
            )
        })
        .collect();
    let figures = json!({
        "seed": config.seed,
        "merchants": config.merchants,
        "authorizations_through_the_flow": seen.authorizations,
        "messages": seen.messages.len(),
        "gateway_calls": gateway_total,
        "sign_ins": sign_ins_attempted,
        "sign_ins_by_flow": seen.sign_ins,
        "release": {
            "targets": fleet.targets,
            "states": fleet.states,
            "worker_invocations": fleet.invocations,
            "worker_invocations_killed": fleet.killed.len(),
            "sqs_requests": fleet.sqs_requests,
        },
        "ticks": config.ticks,
        "elapsed_secs": (elapsed.as_secs_f64() * 10.0).round() / 10.0,
        "messages_per_sec": (rate("message") * 10.0).round() / 10.0,
        "gateway_calls_per_sec": (rate("gateway_call") * 10.0).round() / 10.0,
        "callback_handler_ms": {
            "samples": seen.callback_micros.len(),
            "p50": percentile(&seen.callback_micros, 0.5),
            "p99": percentile(&seen.callback_micros, 0.99),
        },
        "per_unit_of_work": per_unit,
        "faults_injected": seen.faults,
        "pushes_retried_by_wechat": seen.past_wechats_deadline.len(),
        "refresh_failures_survived": seen.refresh_failures,
        "peak_rss_kib": peak,
        "log_bytes": logs.len(),
    });
    SoakReport {
        invariants: inv,
        figures,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_found_wherever_they_are_and_only_then() {
        let secrets: Vec<String> = ["token-abcdef", "ticket@@@xyz", "zz"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let found = secrets_in(r#"{"url":"/x?access_token=token-abcdef&a=1"}zz"#, &secrets);
        assert_eq!(found, vec!["zz", "token-abcdef"]);
        assert!(secrets_in("nothing to see: token-abcde", &secrets).is_empty());
        assert_eq!(secrets_in("ticket@@@xyz", &secrets), vec!["ticket@@@xyz"]);
        assert!(secrets_in("", &secrets).is_empty());
    }

    #[test]
    fn percentiles_of_sorted_micros() {
        let v: Vec<u32> = (1..=100).map(|i| i * 1000).collect();
        assert_eq!(percentile(&v, 0.5), 51.0);
        assert_eq!(percentile(&v, 0.99), 99.0);
        assert_eq!(percentile(&[], 0.5), 0.0);
    }
}
