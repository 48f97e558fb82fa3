//! The release store on DynamoDB (moto): a job and its targets, counts moved with every
//! transition in one transaction, dispatch ranges, step intents (fresh, busy, reconcile,
//! moved), the audits in flight and the open-jobs list.

use std::collections::BTreeMap;

use wxopen::model::{
    ActiveAudit, Intent, JobState, ReleaseJob, ReleaseTarget, Step, TargetSpec, TargetState,
    TargetUpdate,
};
use wxopen::store::{BeginStep, ReleaseStore};
use wxopen_tests::fresh_store;

const JOB: &str = "0123456789abcdef0123456789abcdef";

fn job(total: u32) -> ReleaseJob {
    ReleaseJob {
        id: JOB.into(),
        template_id: 3,
        user_version: "1.0.0".into(),
        user_desc: "d".into(),
        ext_json: serde_json::Map::new(),
        audit: serde_json::Map::new(),
        targets: TargetSpec::All { customer_ref: None },
        auto_release: true,
        concurrency: 2,
        created_at: 100,
        state: JobState::Running,
        total,
        dispatched: 0,
        counts: BTreeMap::from([(TargetState::Queued, i64::from(total))]),
        quota_wait: None,
        undo_audits: false,
        updated_at: 100,
    }
}

fn target(seq: u32) -> ReleaseTarget {
    crate::common::queued_target(JOB, seq, 100)
}

fn intent(step: Step, at: i64) -> Intent {
    Intent {
        step,
        at,
        until: at + 10,
    }
}

#[tokio::test]
async fn a_job_and_its_targets_round_trip_and_page_by_state() {
    let store = fresh_store().await;
    let targets: Vec<_> = (0..30).map(target).collect();
    store.create_job(&job(30), &targets).await.unwrap();
    let got = store.get_job(JOB).await.unwrap().unwrap();
    assert_eq!(got, job(30));
    assert_eq!(store.open_jobs().await.unwrap(), vec![JOB.to_string()]);
    assert!(
        store.create_job(&job(30), &targets).await.is_err(),
        "ids are written once"
    );
    let (page, next) = store.list_targets(JOB, None, 20, None).await.unwrap();
    assert_eq!(page.len(), 20);
    assert_eq!(next, Some(19));
    let (rest, next) = store.list_targets(JOB, None, 20, Some(19)).await.unwrap();
    assert_eq!((rest.len(), next), (10, None));
    assert_eq!(rest[0], target(20));
    store
        .transition(
            JOB,
            7,
            TargetState::Queued,
            TargetState::Skipped,
            &TargetUpdate::default(),
            200,
        )
        .await
        .unwrap();
    let (skipped, _) = store
        .list_targets(JOB, Some(TargetState::Skipped), 50, None)
        .await
        .unwrap();
    assert_eq!(skipped.iter().map(|t| t.seq).collect::<Vec<_>>(), vec![7]);
}

#[tokio::test]
async fn transitions_move_the_counts_once_and_only_from_the_expected_state() {
    let store = fresh_store().await;
    store
        .create_job(&job(3), &(0..3).map(target).collect::<Vec<_>>())
        .await
        .unwrap();
    let update = TargetUpdate {
        auditid: Some(42),
        ..TargetUpdate::default()
    };
    assert!(
        store
            .transition(
                JOB,
                1,
                TargetState::Queued,
                TargetState::Committed,
                &TargetUpdate::default(),
                200
            )
            .await
            .unwrap()
    );
    assert!(
        !store
            .transition(
                JOB,
                1,
                TargetState::Queued,
                TargetState::Committed,
                &TargetUpdate::default(),
                201
            )
            .await
            .unwrap(),
        "a second transition from the old state changes nothing"
    );
    assert!(
        store
            .transition(
                JOB,
                1,
                TargetState::Committed,
                TargetState::Submitted,
                &update,
                202
            )
            .await
            .unwrap()
    );
    let j = store.get_job(JOB).await.unwrap().unwrap();
    assert_eq!(
        j.counts,
        BTreeMap::from([(TargetState::Queued, 2), (TargetState::Submitted, 1)])
    );
    let t = store.get_target(JOB, 1).await.unwrap().unwrap();
    assert_eq!(
        (t.state, t.auditid, t.committed_at, t.submitted_at),
        (TargetState::Submitted, Some(42), Some(200), Some(202))
    );
    assert_eq!(j.open_targets(), 3);
}

#[tokio::test]
async fn dispatch_hands_out_each_target_once() {
    let store = fresh_store().await;
    store
        .create_job(&job(5), &(0..5).map(target).collect::<Vec<_>>())
        .await
        .unwrap();
    assert_eq!(store.dispatch(JOB, 2).await.unwrap().0, 0..2);
    assert_eq!(store.dispatch(JOB, 2).await.unwrap().0, 2..4);
    assert_eq!(store.dispatch(JOB, 2).await.unwrap().0, 4..5);
    let (none, job) = store.dispatch(JOB, 1).await.unwrap();
    assert!(none.is_empty());
    assert_eq!(job.unwrap().total, 5);
}

#[tokio::test]
async fn a_step_is_taken_once_and_an_expired_intent_is_handed_over_for_reconciling() {
    let store = fresh_store().await;
    store.create_job(&job(1), &[target(0)]).await.unwrap();
    let first = intent(Step::Commit, 1000);
    assert_eq!(
        store
            .begin_step(JOB, 0, TargetState::Queued, first, 1000)
            .await
            .unwrap(),
        BeginStep::Fresh
    );
    assert_eq!(
        store
            .begin_step(
                JOB,
                0,
                TargetState::Queued,
                intent(Step::Commit, 1005),
                1005
            )
            .await
            .unwrap(),
        BeginStep::Busy,
        "a live intent belongs to its worker"
    );
    assert_eq!(
        store
            .begin_step(
                JOB,
                0,
                TargetState::Queued,
                intent(Step::Commit, 1011),
                1011
            )
            .await
            .unwrap(),
        BeginStep::Reconcile(first),
        "after its lease the next worker gets it to reconcile"
    );
    assert_eq!(
        store
            .begin_step(
                JOB,
                0,
                TargetState::Committed,
                intent(Step::Submit, 1030),
                1030
            )
            .await
            .unwrap(),
        BeginStep::Moved
    );
    let t = store.get_target(JOB, 0).await.unwrap().unwrap();
    assert_eq!(t.attempts, 2);
    assert_eq!(t.intent.map(|i| i.at), Some(1011));
    store
        .clear_intent(
            JOB,
            0,
            &TargetUpdate {
                waiting_quota: Some(true),
                ..TargetUpdate::default()
            },
        )
        .await
        .unwrap();
    let t = store.get_target(JOB, 0).await.unwrap().unwrap();
    assert!(t.intent.is_none() && t.waiting_quota);
    assert_eq!(
        store
            .begin_step(
                JOB,
                0,
                TargetState::Queued,
                intent(Step::Commit, 1012),
                1012
            )
            .await
            .unwrap(),
        BeginStep::Fresh
    );
}

#[tokio::test]
async fn audits_in_flight_are_found_by_appid_and_by_age() {
    let store = fresh_store().await;
    let audit = |appid: &str, auditid: i64, at: i64| ActiveAudit {
        appid: appid.into(),
        job_id: JOB.into(),
        seq: 0,
        auditid: Some(auditid),
        submitted_at: at,
    };
    store
        .put_active_audit(&audit("wxmp00000000000001", 1, 100))
        .await
        .unwrap();
    store
        .put_active_audit(&audit("wxmp00000000000002", 2, 500))
        .await
        .unwrap();
    assert_eq!(
        store.get_active_audit("wxmp00000000000002").await.unwrap(),
        Some(audit("wxmp00000000000002", 2, 500))
    );
    let overdue = store.overdue_audits(200, 10).await.unwrap();
    assert_eq!(overdue, vec![audit("wxmp00000000000001", 1, 100)]);
    store
        .remove_active_audit("wxmp00000000000002", 9)
        .await
        .unwrap();
    assert!(
        store
            .get_active_audit("wxmp00000000000002")
            .await
            .unwrap()
            .is_some(),
        "another audit is not removed"
    );
    store
        .remove_active_audit("wxmp00000000000002", 2)
        .await
        .unwrap();
    assert!(
        store
            .get_active_audit("wxmp00000000000002")
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn a_placeholder_audit_is_not_polled_and_is_removed_only_by_its_target() {
    let store = fresh_store().await;
    let appid = "wxmp00000000000003";
    let placeholder = ActiveAudit {
        appid: appid.into(),
        job_id: JOB.into(),
        seq: 4,
        auditid: None,
        submitted_at: 100,
    };
    store.put_active_audit(&placeholder).await.unwrap();
    assert_eq!(
        store.get_active_audit(appid).await.unwrap(),
        Some(placeholder.clone())
    );
    assert!(
        store.overdue_audits(1_000, 10).await.unwrap().is_empty(),
        "nothing to poll for a submission in flight"
    );
    store.remove_pending_audit(appid, JOB, 5).await.unwrap();
    store
        .remove_pending_audit(appid, "other-job", 4)
        .await
        .unwrap();
    assert!(
        store.get_active_audit(appid).await.unwrap().is_some(),
        "another target's removal leaves it"
    );
    // Once the auditid is recorded, the placeholder's removal no longer applies.
    let recorded = ActiveAudit {
        auditid: Some(7),
        ..placeholder.clone()
    };
    store.put_active_audit(&recorded).await.unwrap();
    store.remove_pending_audit(appid, JOB, 4).await.unwrap();
    assert_eq!(
        store.get_active_audit(appid).await.unwrap(),
        Some(recorded.clone())
    );
    assert_eq!(
        store.overdue_audits(1_000, 10).await.unwrap(),
        vec![recorded]
    );
    store.put_active_audit(&placeholder).await.unwrap();
    store.remove_pending_audit(appid, JOB, 4).await.unwrap();
    assert!(store.get_active_audit(appid).await.unwrap().is_none());
}

#[tokio::test]
async fn finished_jobs_leave_the_open_list() {
    let store = fresh_store().await;
    store.create_job(&job(1), &[target(0)]).await.unwrap();
    store.set_quota_wait(JOB, Some("quota"), 300).await.unwrap();
    assert_eq!(
        store
            .get_job(JOB)
            .await
            .unwrap()
            .unwrap()
            .quota_wait
            .as_deref(),
        Some("quota")
    );
    assert!(
        !store
            .set_job_state(JOB, &[JobState::Cancelling], JobState::Cancelled, None, 300)
            .await
            .unwrap()
    );
    assert!(
        store
            .set_job_state(
                JOB,
                &[JobState::Running],
                JobState::Cancelling,
                Some(true),
                300
            )
            .await
            .unwrap()
    );
    assert!(store.get_job(JOB).await.unwrap().unwrap().undo_audits);
    assert_eq!(store.open_jobs().await.unwrap().len(), 1);
    assert!(
        store
            .set_job_state(JOB, &[JobState::Cancelling], JobState::Cancelled, None, 301)
            .await
            .unwrap()
    );
    assert!(store.open_jobs().await.unwrap().is_empty());
}
