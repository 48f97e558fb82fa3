//! `wxopen-bench releases [targets] [concurrency] [pollers]`: one fleet release over `targets`
//! sandbox mini programs on the local stack (moto for DynamoDB, SQS and EventBridge; the sandbox
//! over HTTP; the gateway serving `POST /releases` and the message URL), driven to `done`.
//!
//! The worker runs in this process (`release_worker::App`, as Lambda would run it, fed by
//! `pollers` concurrent copies of the local SQS event source). Audits finish as soon as they are
//! due and their pushes go out every 2 s (`POST /sandbox/code/audits/run` semantics), through
//! the message URL, the bus and the queue, as WeChat's pushes would; the scheduled run (every
//! 20 s) polls any audit whose push did not advance its target within 30 s.
//!
//! Counted: DynamoDB requests by the stack's store (an SDK interceptor: every request on the
//! wire, by operation; the worker, the gateway's handlers and the scheduled run share that
//! store), SQS requests by the worker (`CountedQueue`'s sends, the driver's receives and batch
//! deletes; the job's first dispatch from `POST /releases` is one `SendMessageBatch` per 10 and
//! is added), WeChat calls by the sandbox's call log. Peak memory: this process's VmHWM (it holds
//! the sandbox, moto's clients, the gateway and the worker), read before the job and after.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};
use wxopen::model::{JobState, TargetState};
use wxopen::releases::NoHook;
use wxopen::store::{DynamoStore, ReleaseStore};
use wxopen_tests::releases::{
    Seed, SqsCounts, add_template, create_job, job_body, poll_once, seed_mini_programs,
};
use wxopen_tests::sandbox::{DailyQuota, SandboxConfig};
use wxopen_tests::stack::Stack;

/// This process's peak resident memory (VmHWM), in KiB.
fn vm_hwm_kib() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    s.lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

pub async fn run(n: usize, concurrency: u32, pollers: usize) -> Result<Value, String> {
    let stack = Stack::start_with(SandboxConfig {
        daily_quota: DailyQuota {
            default: 10_000_000,
            per_api: Default::default(),
        },
        ..SandboxConfig::default()
    })
    .await;
    stack.push_ticket().await;
    let (s, v) = stack
        .control(
            Method::POST,
            "config",
            json!({"audit_delay_secs": 0, "audit_auto_push": false, "audit_quota": 1_000_000}),
        )
        .await;
    if s != 200 {
        return Err(format!("sandbox config: {v}"));
    }
    let seed_started = Instant::now();
    let appids = seed_mini_programs(&stack.sandbox, &stack.store, n, Seed::default()).await?;
    let template_id = add_template(&stack).await?;
    let seed_secs = seed_started.elapsed().as_secs_f64();
    // The job's progress is watched through a store that is not counted.
    let watch = DynamoStore::new(
        aws_sdk_dynamodb::Client::new(&wxopen_tests::aws_config().await),
        stack.store.table(),
    );
    stack.sandbox.clear_calls();
    let rss_before = vm_hwm_kib();
    let ops_before = stack.ops.snapshot();

    let started = Instant::now();
    let mut body = job_body(template_id, json!({"all": true}));
    body["concurrency"] = json!(concurrency);
    let (id, _) = create_job(&stack, body).await?;
    let create_secs = started.elapsed().as_secs_f64();

    let counts = Arc::new(SqsCounts::default());
    let settings = Stack::release_settings();
    let worker = stack.release_worker(settings.clone(), NoHook, counts.clone());
    let mut scheduled = stack.scheduled_run(settings);
    scheduled.release_settings.audit_poll_after_secs = 30;
    let done = AtomicBool::new(false);
    let deadline = Instant::now()
        + Duration::from_secs(
            std::env::var("BENCH_RELEASES_MAX_SECONDS")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(3600),
        );
    let pollers_run = futures_util::future::join_all((0..pollers).map(|_| async {
        while !done.load(Ordering::Relaxed) && Instant::now() < deadline {
            if let Err(e) = poll_once(&stack.releases, &worker, 1, Some(&counts)).await {
                eprintln!("poll failed: {e}");
            }
        }
    }));
    let mut polled_audits = 0u32;
    let watcher = async {
        let mut last_poll = Instant::now();
        let mut last_print = Instant::now();
        loop {
            tokio::time::sleep(Duration::from_secs(2)).await;
            stack.sandbox.run_audits(false).await;
            if last_poll.elapsed() > Duration::from_secs(20) {
                polled_audits += token_refresh::releases(&scheduled).await.audits_polled;
                last_poll = Instant::now();
            }
            let job = watch.get_job(&id).await.ok().flatten();
            if last_print.elapsed() > Duration::from_secs(30) {
                if let Some(j) = &job {
                    eprintln!(
                        "   {:.0} s: {:?}",
                        started.elapsed().as_secs_f64(),
                        j.counts
                    );
                }
                last_print = Instant::now();
            }
            if job.is_some_and(|j| j.state == JobState::Done) || Instant::now() >= deadline {
                done.store(true, Ordering::Relaxed);
                return;
            }
        }
    };
    tokio::join!(pollers_run, watcher);
    let wall = started.elapsed().as_secs_f64();
    let rss_after = vm_hwm_kib();

    let job = watch
        .get_job(&id)
        .await
        .map_err(|e| e.to_string())?
        .ok_or("job gone")?;
    let mut released = 0usize;
    let mut finished = 0usize;
    let mut after = None;
    loop {
        let (page, next) = watch
            .list_targets(&id, None, 1000, after)
            .await
            .map_err(|e| e.to_string())?;
        released += page
            .iter()
            .filter(|t| t.state == TargetState::Released)
            .count();
        finished += page.iter().filter(|t| job.is_final(t.state)).count();
        for t in page.iter().filter(|t| !job.is_final(t.state)).take(5) {
            eprintln!(
                "   open: {t:?}, active audit {:?}, WeChat calls {:?}",
                watch.get_active_audit(&t.appid).await,
                stack.sandbox.call_counts().get(&t.appid)
            );
        }
        match next {
            Some(x) => after = Some(x),
            None => break,
        }
    }
    let ops_after = stack.ops.snapshot();
    let ddb: std::collections::BTreeMap<String, u64> = ops_after
        .iter()
        .map(|(k, v)| (k.clone(), v - ops_before.get(k).copied().unwrap_or(0)))
        .filter(|(_, v)| *v > 0)
        .collect();
    let ddb_total: u64 = ddb.values().sum();
    let first_dispatch = u64::from(concurrency.min(n as u32)).div_ceil(10);
    let sqs_total = counts.total() + first_dispatch;
    let mut wechat: std::collections::BTreeMap<String, u64> = Default::default();
    for c in stack.sandbox.calls() {
        *wechat.entry(c.api.clone()).or_default() += 1;
    }
    let wechat_total: u64 = wechat.values().sum();
    // Per target that reached its final state (all of them when the job is done).
    let per = |x: u64| x as f64 / finished.max(1) as f64;
    let commits_per_target: Vec<u64> = appids
        .iter()
        .map(|a| stack.sandbox.call_count(a, "wxa/commit").calls)
        .collect();
    Ok(json!({
        "measure": "releases",
        "targets": n,
        "concurrency": concurrency,
        "pollers": pollers,
        "state": job.state.as_str(),
        "released": released,
        "finished": finished,
        "seed_seconds": seed_secs,
        "create_seconds": create_secs,
        "wall_seconds": wall,
        "targets_per_second": finished as f64 / wall,
        "dynamodb_requests": ddb,
        "dynamodb_requests_per_target": per(ddb_total),
        "sqs_requests": {
            "send_batch": counts.send.load(Ordering::Relaxed) + first_dispatch,
            "receive": counts.receive.load(Ordering::Relaxed),
            "delete_batch": counts.delete.load(Ordering::Relaxed),
        },
        "sqs_requests_per_target": per(sqs_total),
        "wechat_calls": wechat,
        "wechat_calls_per_target": per(wechat_total),
        "max_commits_one_target": commits_per_target.iter().max(),
        "audits_polled": polled_audits,
        "peak_rss_kib_before": rss_before,
        "peak_rss_kib_after": rss_after,
    }))
}
