//! Fleet releases end to end: `POST /releases` through the gateway, the release queue on moto
//! driven like Lambda's SQS event source, the worker against the sandbox (audits pushed to the
//! message URL, published on the bus, routed to the queue), the scheduled run for lost pushes.
//! WeChat calls are counted by the sandbox per mini program and API.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use reqwest::Method;
use serde_json::{Value, json};
use wxopen::releases::NoHook;
use wxopen::store::ReleaseStore;
use wxopen_tests::releases::{
    Seed, SqsCounts, add_template, create_job, job_body, job_done, poll_once, seed_mini_programs,
};
use wxopen_tests::stack::{Stack, TestWorker};

async fn job(stack: &Stack, id: &str) -> Value {
    let (s, v) = stack
        .api(Method::GET, &format!("/releases/{id}?limit=100"), None)
        .await;
    assert_eq!(s, 200, "{v}");
    v
}

/// Every target's final state, by appid.
async fn final_states(stack: &Stack, id: &str) -> BTreeMap<String, (String, Value)> {
    let mut out = BTreeMap::new();
    let mut after = None;
    loop {
        let (page, next) = stack
            .store
            .list_targets(id, None, 1000, after)
            .await
            .unwrap();
        for t in page {
            out.insert(
                t.appid.clone(),
                (t.state.as_str().to_string(), json!(t.reason)),
            );
        }
        match next {
            Some(n) => after = Some(n),
            None => return out,
        }
    }
}

fn count(stack: &Stack, appid: &str, api: &str) -> (u64, u64) {
    let c = stack.sandbox.call_count(appid, api);
    (c.calls, c.ok)
}

/// Drives the release queue until `done`, or until the queue is empty (nothing visible, in
/// flight or delayed) with the job not done; `true` when done.
async fn drive_until_idle<F, Fut>(
    stack: &Stack,
    worker: &TestWorker,
    counts: &SqsCounts,
    done: F,
) -> bool
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    loop {
        if done().await {
            return true;
        }
        let polled = poll_once(&stack.releases, worker, 1, Some(counts))
            .await
            .unwrap();
        if polled.received == 0 && stack.releases.depth().await.unwrap() == 0 {
            return done().await;
        }
    }
}

#[tokio::test]
async fn a_fleet_release_over_200_mini_programs_ends_every_target_right() {
    const N: usize = 200;
    const WITHOUT_18: [usize; 3] = [10, 90, 170];
    let started = Instant::now();
    let stack = Stack::start().await;
    stack.push_ticket().await;
    stack
        .configure(json!({"audit_delay_secs": 0, "audit_auto_push": true, "audit_quota": 10_000}))
        .await;
    let appids = seed_mini_programs(
        &stack.sandbox,
        &stack.store,
        N,
        Seed {
            without_18: &WITHOUT_18,
            customer: Some("chain-1"),
        },
    )
    .await
    .unwrap();
    let template_id = add_template(&stack).await.unwrap();
    let rejected: Vec<&String> = appids.iter().skip(120).step_by(7).take(10).collect();
    let (delayed, lost) = (&appids[150], &appids[185]);
    let (s, v) = stack
        .control(
            Method::POST,
            "code/programs",
            json!({"appids": rejected, "outcome": "reject", "reason": "内容不符<br>"}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    stack
        .control(
            Method::POST,
            &format!("code/programs/{delayed}"),
            json!({"outcome": "delay", "reason": "排队"}),
        )
        .await;
    stack
        .control(
            Method::POST,
            &format!("code/programs/{lost}"),
            json!({"lose_push": true}),
        )
        .await;
    // One 45009 burst: the next 4 commits anywhere answer 45009.
    let (s, v) = stack
        .control(
            Method::POST,
            "faults",
            json!({"api": "wxa/commit", "count": 4, "errcode": 45009}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    stack.sandbox.clear_calls();
    let seeded = started.elapsed();

    let (id, created) = create_job(
        &stack,
        job_body(template_id, json!({"all": true, "customer_ref": "chain-1"})),
    )
    .await
    .unwrap();
    assert_eq!(created["targets"], N);

    let counts = Arc::new(SqsCounts::default());
    let worker = stack.release_worker(Stack::release_settings(), NoHook, counts.clone());
    let mut scheduled = stack.scheduled_run(Stack::release_settings());
    // The scheduled run below comes only once the queue is empty: every audit still out then
    // is overdue (its push, if any, has been handled).
    scheduled.release_settings.audit_poll_after_secs = 0;
    let done = || job_done(&stack.store, &id);
    let mut finished = false;
    let mut polled = 0;
    for round in 0..6 {
        if drive_until_idle(&stack, &worker, &counts, &done).await {
            finished = true;
            break;
        }
        if round == 0 {
            // Queue empty, job open: the delayed audit waits for its second stage; the sandbox
            // finishes it (and pushes).
            stack
                .control(Method::POST, "code/audits/run", json!({"all": true}))
                .await;
        } else {
            // Still open: the scheduled run polls the audits whose push never came.
            polled += token_refresh::releases(&scheduled).await.audits_polled;
        }
    }
    let run = started.elapsed() - seeded;
    let v = job(&stack, &id).await;
    assert!(finished, "the job finished: {v}");
    let states = final_states(&stack, &id).await;
    for (i, a) in appids.iter().enumerate() {
        let (state, reason) = &states[a];
        let want = if WITHOUT_18.contains(&i) {
            "skipped"
        } else if rejected.contains(&a) {
            "rejected"
        } else {
            "released"
        };
        assert_eq!(state, want, "{a} (#{i}): {reason}");
        if want == "rejected" {
            assert_eq!(reason, &json!("内容不符<br>"), "WeChat's reason kept");
        }
    }
    let n = |want: &str| states.values().filter(|(s, _)| s == want).count();
    assert_eq!(
        (n("released"), n("skipped"), n("rejected")),
        (N - 3 - rejected.len(), 3, rejected.len())
    );
    assert_eq!(v["state"], "done");
    // WeChat calls per target, from the sandbox's counters.
    for (i, a) in appids.iter().enumerate() {
        let (commits, commits_ok) = count(&stack, a, "wxa/commit");
        let (submits, submits_ok) = count(&stack, a, "wxa/submit_audit");
        let (releases, releases_ok) = count(&stack, a, "wxa/release");
        if WITHOUT_18.contains(&i) {
            assert_eq!(
                (commits, submits, releases),
                (0, 0, 0),
                "skipped {a} costs nothing"
            );
            continue;
        }
        assert_eq!(commits_ok, 1, "{a}: one commit landed");
        assert!(commits <= 2, "{a}: at most one 45009 before it ({commits})");
        assert_eq!((submits, submits_ok), (1, 1), "{a}: one submission");
        let want_release = u64::from(!rejected.contains(&a));
        assert_eq!(
            (releases, releases_ok),
            (want_release, want_release),
            "{a}: one release"
        );
        for api in ["wxa/getversioninfo", "wxa/get_latest_auditstatus"] {
            assert_eq!(
                count(&stack, a, api).0,
                0,
                "{a}: nothing to reconcile ({api})"
            );
        }
        // The pushes settle the audits: a status poll only where the push was lost.
        assert_eq!(
            count(&stack, a, "wxa/get_auditstatus").0,
            u64::from(a == lost),
            "{a}: status polls"
        );
    }
    assert_eq!(
        polled, 1,
        "the scheduled run polled the lost push's audit only"
    );
    let burst: u64 = appids
        .iter()
        .map(|a| count(&stack, a, "wxa/commit").0)
        .sum::<u64>()
        - (N as u64 - 3);
    assert_eq!(burst, 4, "the 45009 burst hit 4 commits, each retried once");
    println!(
        "fleet release of {N}: seeded in {:.1} s, job run in {:.1} s; SQS requests {} (send {}, receive {}, delete {})",
        seeded.as_secs_f64(),
        run.as_secs_f64(),
        counts.total(),
        counts.send.load(std::sync::atomic::Ordering::Relaxed),
        counts.receive.load(std::sync::atomic::Ordering::Relaxed),
        counts.delete.load(std::sync::atomic::Ordering::Relaxed),
    );
}

#[tokio::test]
async fn with_quota_for_50_audits_a_200_target_job_submits_50_the_rest_wait_and_resume() {
    const N: usize = 200;
    const QUOTA: i64 = 50;
    let started = Instant::now();
    let stack = Stack::start().await;
    stack.push_ticket().await;
    stack
        .configure(
            json!({"audit_delay_secs": 3600, "audit_auto_push": false, "audit_quota": QUOTA}),
        )
        .await;
    let appids = seed_mini_programs(&stack.sandbox, &stack.store, N, Seed::default())
        .await
        .unwrap();
    let template_id = add_template(&stack).await.unwrap();
    let (id, _) = create_job(&stack, job_body(template_id, json!({"appids": appids})))
        .await
        .unwrap();
    let counts = Arc::new(SqsCounts::default());
    let worker = stack.release_worker(Stack::release_settings(), NoHook, counts.clone());
    let targets = || async {
        let (all, _) = stack
            .store
            .list_targets(&id, None, 1000, None)
            .await
            .unwrap();
        all
    };
    let never = || async { false };
    assert!(!drive_until_idle(&stack, &worker, &counts, never).await);
    let v = job(&stack, &id).await;
    use wxopen::model::TargetState as T;
    let all = targets().await;
    let submitted = all.iter().filter(|t| t.state == T::Submitted).count() as i64;
    let waiting = all
        .iter()
        .filter(|t| t.state == T::Committed && t.waiting_quota)
        .count() as i64;
    assert_eq!((submitted, waiting), (QUOTA, N as i64 - QUOTA), "{v}");
    assert_eq!(v["state"], "running");
    assert!(
        v["quota_wait"]
            .as_str()
            .is_some_and(|w| w.contains("quota")),
        "the job says why: {v}"
    );
    assert_eq!(v["counts"]["committed"], N as i64 - QUOTA, "{v}");
    let submissions = || {
        appids
            .iter()
            .map(|a| count(&stack, a, "wxa/submit_audit"))
            .fold((0, 0), |(c, o), (ci, oi)| (c + ci, o + oi))
    };
    let (calls, accepted) = submissions();
    assert_eq!(
        accepted as i64, submitted,
        "one accepted submission per submitted target, none beyond the quota"
    );
    // Workers in flight at once may each have read the last unit of quota: WeChat refuses the
    // extra ones (85085) and those targets wait like the others (none failed); never more
    // than the job's concurrency.
    assert!(
        calls - accepted <= 25,
        "{calls} submissions tried, {accepted} accepted"
    );
    let parked_at = started.elapsed();
    println!("quota run: {calls} submissions tried, {accepted} accepted");

    // The quota is raised: the scheduled run resumes the waiting targets.
    stack.configure(json!({"audit_quota": 10_000})).await;
    let scheduled = stack.scheduled_run(Stack::release_settings());
    let report = token_refresh::releases(&scheduled).await;
    assert_eq!(
        (report.jobs_resumed, report.targets_resumed),
        (1, (N as i64 - QUOTA) as u32),
        "{report:?}"
    );
    assert!(!drive_until_idle(&stack, &worker, &counts, never).await);
    let all = targets().await;
    assert!(
        all.iter()
            .all(|t| t.state == T::Submitted && !t.waiting_quota),
        "every target submitted"
    );
    assert!(job(&stack, &id).await["quota_wait"].is_null());
    // The audits finish and push (in process: 200 pushes one after the other outlast the
    // control API's timeout): every target released.
    let resumed_at = started.elapsed();
    let pushed = stack.sandbox.run_audits(true).await;
    let pushed_at = started.elapsed();
    assert_eq!(pushed.len(), N);
    let done = || job_done(&stack.store, &id);
    assert!(drive_until_idle(&stack, &worker, &counts, done).await);
    let all = targets().await;
    assert!(all.iter().all(|t| t.state == T::Released));
    println!(
        "quota e2e: parked after {:.1} s, resumed and submitted after {:.1} s, pushed after {:.1} s, released after {:.1} s",
        parked_at.as_secs_f64(),
        resumed_at.as_secs_f64(),
        pushed_at.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
    let (calls2, accepted2) = submissions();
    assert_eq!(accepted2, N as u64, "one accepted submission per target");
    assert_eq!(
        calls2 - accepted2,
        calls - accepted,
        "no refused submission after the raise"
    );
}
