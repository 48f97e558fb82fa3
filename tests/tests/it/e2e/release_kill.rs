//! The release worker killed (its process aborted) at each step boundary in turn.
//!
//! Each case runs the real `release-worker-proc` process against moto's release queue and
//! table and the sandbox over HTTP, with `WXOPEN_RELEASE_ABORT_AT=<step>:<boundary>`: the
//! process aborts the first time a step reaches that boundary. The test checks it died of
//! SIGABRT there, starts a worker process without the abort, and drives the job to its end
//! (audits finish when the test runs them: their pushes go through the message URL, the bus
//! and the queue to the worker process). Then, per target, the sandbox's counters: exactly one
//! commit, one submission and one release, whatever the boundary; the reconciliation call
//! (`getversioninfo` for a commit or a release, `get_latest_auditstatus` for a submission) was
//! made where the kill fell between WeChat's answer and its record.

use std::os::unix::process::ExitStatusExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;
use wxopen::model::{JobState, TargetState};
use wxopen::store::ReleaseStore;
use wxopen_tests::releases::{Seed, add_template, create_job, job_body, seed_mini_programs};
use wxopen_tests::stack::Stack;

const BIN: &str = env!("CARGO_BIN_EXE_release-worker-proc");
/// Targets per job, and the job's concurrency (below it, so slots are handed on).
const TARGETS: usize = 4;
const CONCURRENCY: u32 = 2;
const SIGABRT: i32 = 6;

/// A worker process, killed (and reaped) when dropped.
struct Worker(Child);

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn worker(stack: &Stack, abort_at: Option<&str>) -> Worker {
    let mut cmd = Command::new(BIN);
    cmd.env("TABLE_NAME", stack.store.table())
        .env("RELEASE_QUEUE_URL", &stack.releases.url)
        .env("WECHAT_API_BASE", stack.sandbox.base_url())
        .env("EVENT_BUS_NAME", &stack.bus.bus_name)
        .env("RELEASE_STEP_LEASE_SECONDS", "1")
        .env_remove("WXOPEN_RELEASE_ABORT_AT")
        .stdin(Stdio::null())
        .stdout(Stdio::null());
    match abort_at {
        Some(at) => {
            cmd.env("WXOPEN_RELEASE_ABORT_AT", at)
                .stderr(Stdio::piped());
        }
        None => {
            cmd.stderr(Stdio::inherit());
        }
    }
    Worker(cmd.spawn().expect("release-worker-proc starts"))
}

/// Where the job is: every target's state.
async fn states(stack: &Stack, id: &str) -> Vec<TargetState> {
    let (page, _) = stack
        .store
        .list_targets(id, None, 1000, None)
        .await
        .unwrap();
    page.iter().map(|t| t.state).collect()
}

/// Every target has its audit submitted (or is past it): the audits can be run.
fn all_submitted(s: &[TargetState]) -> bool {
    s.len() == TARGETS
        && s.iter().all(|t| {
            matches!(
                t,
                TargetState::Submitted | TargetState::Approved | TargetState::Released
            )
        })
}

/// Every audit in review finishes now; its push reaches the message URL.
async fn run_audits(stack: &Stack, at: &str) {
    let deliveries = stack.sandbox.run_audits(true).await;
    assert_eq!(deliveries.len(), TARGETS, "{at}: one push per audit");
    for d in &deliveries {
        assert!(
            d.delivery.delivered,
            "{at}: push delivered: {:?}",
            d.delivery
        );
    }
}

/// One cell of the matrix: the job, the kill at `at`, the restart, the counts.
async fn killed_at(at: &str) {
    let stack = Stack::start().await;
    stack.push_ticket().await;
    // Audits finish only when the test runs them (so the release step happens in the worker
    // process, after every submission is recorded).
    stack
        .configure(
            json!({"audit_delay_secs": 3600, "audit_auto_push": false, "audit_quota": 10_000}),
        )
        .await;
    let appids = seed_mini_programs(&stack.sandbox, &stack.store, TARGETS, Seed::default())
        .await
        .unwrap();
    let template_id = add_template(&stack).await.unwrap();
    stack.sandbox.clear_calls();
    let mut body = job_body(template_id, json!({"appids": appids}));
    body["concurrency"] = json!(CONCURRENCY);
    let (id, _) = create_job(&stack, body).await.unwrap();

    // The first worker runs until it aborts at the boundary.
    let mut first = worker(&stack, Some(at));
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut audits_run = false;
    let status = loop {
        if let Some(status) = first.0.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "{at}: the worker never reached the boundary; targets {:?}",
            states(&stack, &id).await
        );
        if !audits_run && all_submitted(&states(&stack, &id).await) {
            run_audits(&stack, at).await;
            audits_run = true;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(
        status.signal(),
        Some(SIGABRT),
        "{at}: the worker was aborted ({status})"
    );
    let mut stderr = String::new();
    std::io::Read::read_to_string(first.0.stderr.as_mut().unwrap(), &mut stderr).unwrap();
    assert!(
        stderr.contains(&format!("aborting at {at}")),
        "{at}: it died at that boundary: {stderr}"
    );
    drop(first);

    // A worker without the abort picks up what the dead one left (the messages it held come
    // back after the queue's 2 s visibility timeout; its intents expire after their 1 s lease).
    let _second = worker(&stack, None);
    let deadline = Instant::now() + Duration::from_secs(120);
    let job = loop {
        let job = stack.store.get_job(&id).await.unwrap().unwrap();
        if job.state == JobState::Done {
            break job;
        }
        let now = states(&stack, &id).await;
        if Instant::now() >= deadline {
            let (targets, _) = stack
                .store
                .list_targets(&id, None, 1000, None)
                .await
                .unwrap();
            let open: Vec<_> = targets
                .iter()
                .filter(|t| !job.is_final(t.state))
                .map(|t| (t, stack.sandbox.call_counts().get(&t.appid).cloned()))
                .collect();
            panic!(
                "{at}: the job did not finish after the restart: job {:?}, targets {now:?}; open: {open:#?}",
                job.state
            );
        }
        if !audits_run && all_submitted(&now) {
            run_audits(&stack, at).await;
            audits_run = true;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };

    let (targets, _) = stack
        .store
        .list_targets(&id, None, 1000, None)
        .await
        .unwrap();
    assert_eq!(targets.len(), TARGETS);
    for t in &targets {
        assert_eq!(t.state, TargetState::Released, "{at}: {} {:?}", t.appid, t);
        assert!(t.intent.is_none(), "{at}: {} keeps no intent", t.appid);
    }
    assert_eq!(
        job.counts.get(&TargetState::Released).copied(),
        Some(TARGETS as i64),
        "{at}: the job's counts: {:?}",
        job.counts
    );
    assert_eq!(
        job.counts.values().sum::<i64>(),
        TARGETS as i64,
        "{at}: {:?}",
        job.counts
    );
    assert_eq!(job.dispatched, job.total);

    let count = |appid: &str, api: &str| stack.sandbox.call_count(appid, api);
    let mut reconciled = 0;
    for a in &appids {
        for api in ["wxa/commit", "wxa/submit_audit", "wxa/release"] {
            let c = count(a, api);
            assert_eq!(
                (c.calls, c.ok),
                (1, 1),
                "{at}: {a}: exactly one {api} (calls, accepted)"
            );
        }
        reconciled += match at.split_once(':').map(|(s, _)| s) {
            Some("submit") => count(a, "wxa/get_latest_auditstatus").calls,
            _ => count(a, "wxa/getversioninfo").calls,
        };
    }
    if at.ends_with(":after_call") {
        assert!(
            reconciled >= 1,
            "{at}: the call that landed unrecorded was reconciled with WeChat"
        );
    }
}

macro_rules! boundary {
    ($name:ident, $at:literal) => {
        #[tokio::test]
        async fn $name() {
            killed_at($at).await;
        }
    };
}

boundary!(killed_at_commit_before_call, "commit:before_call");
boundary!(killed_at_commit_after_call, "commit:after_call");
boundary!(killed_at_commit_after_record, "commit:after_record");
boundary!(killed_at_submit_before_call, "submit:before_call");
boundary!(killed_at_submit_after_call, "submit:after_call");
boundary!(killed_at_submit_after_record, "submit:after_record");
boundary!(killed_at_release_before_call, "release:before_call");
boundary!(killed_at_release_after_call, "release:after_call");
boundary!(killed_at_release_after_record, "release:after_record");
