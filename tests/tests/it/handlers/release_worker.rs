//! The release worker called directly (`release_worker::process`) over moto and the sandbox,
//! one message at a time, for the orderings a queue can produce: an audit push that beats the
//! worker's record of the submission, and a worker's message delivered again after the push
//! moved its target on. A worker "dies" at a step boundary by a hook that panics there (the
//! step stops exactly at that point; the test catches it).

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures_util::FutureExt;
use reqwest::Method;
use serde_json::json;
use wxopen::clock::{Clock, FixedClock, SystemClock};
use wxopen::model::{Step, TargetState};
use wxopen::releases::{Boundary, StepHook};
use wxopen::store::ReleaseStore;
use wxopen_tests::releases::{
    CountedQueue, Seed, SqsCounts, add_template, create_job, drive_until, job_body, job_done,
    seed_mini_programs,
};
use wxopen_tests::stack::Stack;

/// The worker's clock, shared with the test (leases expire when the test says so).
#[derive(Clone)]
struct TestClock(Arc<FixedClock>);
impl Clock for TestClock {
    fn now(&self) -> i64 {
        self.0.now()
    }
}

/// Panics once at `(step, boundary)` while armed: the worker dies there.
struct DieAt {
    step: Step,
    boundary: Boundary,
    armed: Arc<AtomicBool>,
}
impl StepHook for DieAt {
    fn at(&self, step: Step, boundary: Boundary) {
        if step == self.step
            && boundary == self.boundary
            && self.armed.swap(false, Ordering::SeqCst)
        {
            panic!("worker dies at {} {}", step.as_str(), boundary.as_str());
        }
    }
}

type Worker = release_worker::App<
    wxopen::store::DynamoStore,
    Arc<wxopen::secrets::StaticCredentials>,
    TestClock,
    CountedQueue,
    wxopen::events::EventBridgePublisher,
    DieAt,
>;

struct Setup {
    stack: Stack,
    worker: Worker,
    clock: Arc<FixedClock>,
    armed: Arc<AtomicBool>,
    job: String,
    appids: Vec<String>,
}

/// Two mini programs, a job over them with concurrency 1 (so the second target waits for the
/// first one's slot), audits that finish at once but push only when the test runs them.
async fn setup(step: Step, boundary: Boundary) -> Setup {
    let stack = Stack::start().await;
    stack.push_ticket().await;
    stack
        .configure(json!({"audit_delay_secs": 0, "audit_auto_push": false, "audit_quota": 100}))
        .await;
    let appids = seed_mini_programs(&stack.sandbox, &stack.store, 2, Seed::default())
        .await
        .unwrap();
    let template_id = add_template(&stack).await.unwrap();
    let mut body = job_body(template_id, json!({"appids": appids}));
    body["concurrency"] = json!(1);
    let (job, _) = create_job(&stack, body).await.unwrap();
    let clock = Arc::new(FixedClock::new(SystemClock.now()));
    let armed = Arc::new(AtomicBool::new(true));
    let worker = release_worker::App {
        deps: stack.deps_with_clock(TestClock(clock.clone())),
        queue: CountedQueue {
            inner: stack.releases.queue(),
            counts: Arc::new(SqsCounts::default()),
        },
        publisher: stack.publisher(),
        settings: Stack::release_settings(),
        hook: DieAt {
            step,
            boundary,
            armed: armed.clone(),
        },
    };
    Setup {
        stack,
        worker,
        clock,
        armed,
        job,
        appids,
    }
}

/// Up to `max` messages from the release queue (a long poll of 1 s), taken off it (deleted:
/// the test delivers one again itself when a redelivery is what it shows): (id, body) pairs.
async fn take(stack: &Stack, max: i32) -> Vec<(String, String)> {
    let q = &stack.releases;
    let got = q
        .sqs
        .receive_message()
        .queue_url(&q.url)
        .max_number_of_messages(max)
        .wait_time_seconds(1)
        .send()
        .await
        .unwrap();
    let mut out = Vec::new();
    for m in got.messages.unwrap_or_default() {
        q.sqs
            .delete_message()
            .queue_url(&q.url)
            .receipt_handle(m.receipt_handle().unwrap())
            .send()
            .await
            .unwrap();
        out.push((
            m.message_id().unwrap().to_string(),
            m.body().unwrap().to_string(),
        ));
    }
    out
}

/// The next message on the release queue ([`take`]n off it).
async fn next_message(stack: &Stack) -> (String, String) {
    for _ in 0..20 {
        if let Some(m) = take(stack, 1).await.into_iter().next() {
            return m;
        }
    }
    panic!("no message on the release queue");
}

/// The worker on one message: the ids it wants delivered again, or `None` when it died.
async fn deliver(worker: &Worker, message: &(String, String)) -> Option<Vec<String>> {
    AssertUnwindSafe(release_worker::process(
        worker,
        std::slice::from_ref(message),
    ))
    .catch_unwind()
    .await
    .ok()
}

/// The audits of every mini program finish now and their pushes go to the message URL (and on
/// through the bus to the release queue); answers the push's queue message.
async fn push_audits(stack: &Stack) -> (String, String) {
    let (s, v) = stack
        .control(Method::POST, "code/audits/run", json!({"all": true}))
        .await;
    assert_eq!(s, 200, "{v}");
    let push = next_message(stack).await;
    assert!(push.1.contains("weapp_audit_success"), "{}", push.1);
    push
}

async fn target(s: &Setup, seq: u32) -> wxopen::model::ReleaseTarget {
    s.stack
        .store
        .get_target(&s.job, seq)
        .await
        .unwrap()
        .unwrap()
}

async fn finish(s: &Setup) {
    let done = drive_until(
        &s.stack.releases,
        &s.worker,
        None,
        Duration::from_secs(60),
        || job_done(&s.stack.store, &s.job),
    )
    .await
    .unwrap();
    let j = s.stack.store.get_job(&s.job).await.unwrap().unwrap();
    assert!(done, "the job finished: {j:?}");
}

#[tokio::test]
async fn an_audit_push_that_beats_the_recorded_submission_waits_and_then_settles_it() {
    let s = setup(Step::Submit, Boundary::AfterCall).await;
    let first = &s.appids[0];
    let commit = next_message(&s.stack).await;
    assert_eq!(deliver(&s.worker, &commit).await, Some(vec![]));
    // The submission lands at WeChat; the worker dies before recording it.
    let submit = next_message(&s.stack).await;
    assert_eq!(deliver(&s.worker, &submit).await, None, "the worker died");
    assert!(!s.armed.load(Ordering::SeqCst));
    assert_eq!(target(&s, 0).await.state, TargetState::Committed);
    let pending = s
        .stack
        .store
        .get_active_audit(first)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (pending.seq, pending.auditid),
        (0, None),
        "the audit in flight was recorded before the call, without its id"
    );

    // The push arrives first: it finds the placeholder and asks to come back.
    let push = push_audits(&s.stack).await;
    assert_eq!(
        deliver(&s.worker, &push).await,
        Some(vec![push.0.clone()]),
        "the push is delivered again later, not dropped"
    );
    assert_eq!(target(&s, 0).await.state, TargetState::Committed);

    // The worker's message comes back after the lease: the submission is reconciled from
    // get_latest_auditstatus (not made again) and the slot handed to the second target.
    s.clock.set(s.clock.now() + 5);
    assert_eq!(deliver(&s.worker, &submit).await, Some(vec![]));
    let t = target(&s, 0).await;
    assert_eq!(t.state, TargetState::Submitted);
    let audit = s
        .stack
        .store
        .get_active_audit(first)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(audit.auditid, t.auditid);
    assert!(audit.auditid.is_some());
    assert_eq!(
        s.stack
            .store
            .get_job(&s.job)
            .await
            .unwrap()
            .unwrap()
            .dispatched,
        2
    );

    // The push again: it settles the target, which is released.
    assert_eq!(deliver(&s.worker, &push).await, Some(vec![]));
    assert_eq!(target(&s, 0).await.state, TargetState::Released);
    assert!(
        s.stack
            .store
            .get_active_audit(first)
            .await
            .unwrap()
            .is_none()
    );
    let count = |api: &str| s.stack.sandbox.call_count(first, api);
    assert_eq!(count("wxa/submit_audit").calls, 1, "one submission");
    assert_eq!(
        count("wxa/get_latest_auditstatus").calls,
        1,
        "reconciled once"
    );
    assert_eq!(
        count("wxa/get_auditstatus").calls,
        0,
        "no poll: the push settled it"
    );
    assert_eq!(count("wxa/release").calls, 1);

    // The second target goes through on its own (its push sent as WeChat does, by itself).
    s.stack.configure(json!({"audit_auto_push": true})).await;
    finish(&s).await;
    assert_eq!(target(&s, 1).await.state, TargetState::Released);
}

#[tokio::test]
async fn a_slot_message_delivered_again_after_a_push_approved_its_target_hands_the_slot_on() {
    // The worker records the submission and dies before handing its slot on.
    let s = setup(Step::Submit, Boundary::AfterRecord).await;
    let first = &s.appids[0];
    let commit = next_message(&s.stack).await;
    assert_eq!(deliver(&s.worker, &commit).await, Some(vec![]));
    let submit = next_message(&s.stack).await;
    assert!(submit.1.contains("\"slot\":true"), "{}", submit.1);
    assert_eq!(deliver(&s.worker, &submit).await, None, "the worker died");
    assert_eq!(target(&s, 0).await.state, TargetState::Submitted);
    assert_eq!(
        s.stack
            .store
            .get_job(&s.job)
            .await
            .unwrap()
            .unwrap()
            .dispatched,
        1,
        "the slot was not handed on"
    );
    // The push approves it; its release meets a busy WeChat (-1) and is retried later, so the
    // target stays approved.
    let (st, v) = s
        .stack
        .control(
            Method::POST,
            "faults",
            json!({"api": "wxa/release", "count": 1, "errcode": -1}),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    let push = push_audits(&s.stack).await;
    assert_eq!(deliver(&s.worker, &push).await, Some(vec![]));
    assert_eq!(target(&s, 0).await.state, TargetState::Approved);

    // The dead worker's message comes back: the target is released and its slot handed on.
    assert_eq!(deliver(&s.worker, &submit).await, Some(vec![]));
    assert_eq!(target(&s, 0).await.state, TargetState::Released);
    assert_eq!(
        s.stack
            .store
            .get_job(&s.job)
            .await
            .unwrap()
            .unwrap()
            .dispatched,
        2,
        "the second target was handed the slot"
    );
    s.stack.configure(json!({"audit_auto_push": true})).await;
    finish(&s).await;
    assert_eq!(target(&s, 1).await.state, TargetState::Released);
    let count = |api: &str| s.stack.sandbox.call_count(first, api);
    assert_eq!(
        (count("wxa/submit_audit").calls, count("wxa/release").ok),
        (1, 1),
        "one submission, one release"
    );
}

#[tokio::test]
async fn a_submission_refused_for_quota_after_the_quota_read_waits_instead_of_failing() {
    // The hook never fires here (no step dies).
    let s = setup(Step::Undo, Boundary::BeforeCall).await;
    let commit = next_message(&s.stack).await;
    assert_eq!(deliver(&s.worker, &commit).await, Some(vec![]));
    // queryquota says there is quota; another worker took the last unit meanwhile.
    let (st, v) = s
        .stack
        .control(
            Method::POST,
            "faults",
            json!({"api": "wxa/submit_audit", "count": 1, "errcode": 85085}),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    let submit = next_message(&s.stack).await;
    assert_eq!(deliver(&s.worker, &submit).await, Some(vec![]));
    let t = target(&s, 0).await;
    assert_eq!(
        (t.state, t.waiting_quota, t.intent),
        (TargetState::Committed, true, None),
        "back to waiting, not failed"
    );
    let job = s.stack.store.get_job(&s.job).await.unwrap().unwrap();
    assert!(
        job.quota_wait
            .as_deref()
            .is_some_and(|w| w.contains("85085")),
        "{job:?}"
    );
    assert_eq!(job.dispatched, 2, "its slot went to the next target");
    assert!(
        s.stack
            .store
            .get_active_audit(&s.appids[0])
            .await
            .unwrap()
            .is_none(),
        "the placeholder audit is gone"
    );
    assert_eq!(
        s.stack
            .sandbox
            .call_count(&s.appids[0], "wxa/submit_audit")
            .ok,
        0
    );
}

/// Delivers every message on the release queue until it is empty.
async fn deliver_all(s: &Setup) {
    loop {
        let messages = take(&s.stack, 10).await;
        if messages.is_empty() && s.stack.releases.depth().await.unwrap() == 0 {
            return;
        }
        for pair in messages {
            assert_eq!(deliver(&s.worker, &pair).await, Some(vec![]), "{}", pair.1);
        }
    }
}

#[tokio::test]
async fn a_refused_submission_leaves_another_jobs_audit_of_the_mini_program_recorded() {
    let s = setup(Step::Undo, Boundary::BeforeCall).await;
    let first = s.appids[0].clone();
    s.stack.configure(json!({"audit_delay_secs": 3600})).await;
    deliver_all(&s).await;
    let t = target(&s, 0).await;
    assert_eq!(t.state, TargetState::Submitted);
    let recorded = s
        .stack
        .store
        .get_active_audit(&first)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (recorded.job_id.as_str(), recorded.auditid),
        (s.job.as_str(), t.auditid)
    );

    // A second job (another version) for the same mini program while its audit is in review.
    let template_id = add_template(&s.stack).await.unwrap();
    let mut body = job_body(template_id, json!({"appids": [first]}));
    body["user_version"] = json!("2.0.1");
    let (second, _) = create_job(&s.stack, body).await.unwrap();
    deliver_all(&s).await;
    let refused = s.stack.store.get_target(&second, 0).await.unwrap().unwrap();
    assert_eq!(
        (refused.state, refused.errcode),
        (TargetState::Failed, Some(85009)),
        "{refused:?}"
    );
    assert_eq!(
        s.stack.store.get_active_audit(&first).await.unwrap(),
        Some(recorded),
        "the first job's audit is still recorded (its push will find it)"
    );
}
