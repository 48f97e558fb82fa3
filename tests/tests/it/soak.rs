//! The soak in its shortened form (`make soak` runs the full day): a compressed day under seeded
//! faults, every invariant held; and a deliberately broken deployment caught by name.

use wxopen_tests::soak::{self, Broken, SoakConfig};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_day_under_faults_holds_every_invariant() {
    let config = SoakConfig::small(21);
    let report = soak::run(&config).await;
    println!("{}", report.render());
    assert!(
        report.all_held(),
        "broken: {:?}\n{}",
        report.broken(),
        report.render()
    );
    // The day did happen, faults included.
    let f = &report.figures;
    assert_eq!(f["messages"], config.messages);
    assert!(
        f["faults_injected"]
            .as_object()
            .is_some_and(|m| m.len() >= 4),
        "{f}"
    );
    assert!(
        f["callback_handler_ms"]["samples"].as_u64() > Some(50),
        "{f}"
    );
    for name in [
        "no_refresh_token_lost",
        "events_delivered_at_least_once",
        "every_release_target_final_and_matching_the_sandbox",
        "no_commit_or_audit_submission_doubled",
        "every_sign_in_completed_or_reported_failed",
    ] {
        let i = report.invariant(name).unwrap();
        assert!(i.count > 0, "{name} checked something: {i:?}");
    }
    // Every target of the release checked, each sign-in flow tried, invocations killed.
    assert_eq!(f["release"]["targets"], config.release_targets, "{f}");
    for flow in ["miniprogram", "oauth", "follow"] {
        assert!(
            f["sign_ins_by_flow"][flow]["attempted"].as_u64() > Some(0),
            "{flow}: {f}"
        );
    }
    assert!(
        f["faults_injected"]["release_worker_killed_at_a_step"].as_u64() > Some(0),
        "{f}"
    );
    assert!(
        f["faults_injected"]["message_handler_killed_mid_way"].as_u64() > Some(0),
        "{f}"
    );
    assert!(
        f["faults_injected"]["ticket_handler_killed_mid_way"].as_u64() > Some(0),
        "{f}"
    );
}

/// A deployment whose scheduled run never sweeps the outbox loses the events recorded while
/// EventBridge was down: the soak names that invariant and no other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deployment_without_the_outbox_sweep_breaks_event_delivery_by_name() {
    let config = SoakConfig {
        broken: Some(Broken::NoOutboxSweep),
        ..SoakConfig::small(21)
    };
    let report = soak::run(&config).await;
    assert_eq!(
        report.broken(),
        vec!["events_delivered_at_least_once"],
        "{}",
        report.render()
    );
    let i = report.invariant("events_delivered_at_least_once").unwrap();
    assert!(i.broken > 0 && i.broken < i.count, "{i:?}");
}

/// A deployment whose scheduled run never polls overdue audits leaves the release targets whose
/// audit push WeChat lost in `submitted`: the soak names the release invariant, and no other
/// invariant of the release or of the data (`every_push_answered_200`, a push answered past
/// WeChat's 3 x 5 s on a loaded machine, is timing, not this break; seen once in `make test`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deployment_without_the_audit_poll_breaks_the_release_by_name() {
    let config = SoakConfig {
        broken: Some(Broken::NoAuditPoll),
        ..SoakConfig::small(21)
    };
    let report = soak::run(&config).await;
    let broken = report.broken();
    assert!(
        broken.contains(&"every_release_target_final_and_matching_the_sandbox"),
        "{}",
        report.render()
    );
    let others: Vec<_> = broken
        .iter()
        .filter(|n| {
            **n != "every_release_target_final_and_matching_the_sandbox"
                && **n != "every_push_answered_200"
        })
        .collect();
    assert!(others.is_empty(), "{others:?}\n{}", report.render());
    let i = report
        .invariant("every_release_target_final_and_matching_the_sandbox")
        .unwrap();
    // The lost pushes' targets, and the job left open.
    assert!(i.broken >= 2 && i.broken <= i.count, "{i:?}");
    assert!(i.detail.contains("not final"), "{i:?}");
}
