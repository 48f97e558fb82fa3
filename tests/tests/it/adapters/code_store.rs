//! The code record on DynamoDB (moto): versioned puts, and audit pushes applied once, in order,
//! and never to a newer audit.

use wxopen::model::*;
use wxopen::store::*;
use wxopen_tests::fresh_store;

fn auditing(appid: &str, submitted_at: i64) -> CodeRecord {
    CodeRecord {
        appid: appid.to_string(),
        template_id: Some(3),
        user_version: Some("1.0.0".into()),
        audit: Some(CodeAudit {
            auditid: 7,
            state: CodeAuditState::Auditing,
            reason: None,
            screenshots: Vec::new(),
            template_id: 3,
            user_version: "1.0.0".into(),
            submitted_at,
            updated_at: submitted_at,
        }),
        version: 1,
        updated_at: submitted_at,
        ..CodeRecord::default()
    }
}

fn result(state: CodeAuditState, at: i64) -> AuditResult {
    AuditResult {
        state,
        reason: (state != CodeAuditState::Approved).then(|| "why<br>".to_string()),
        screenshots: if state == CodeAuditState::Rejected {
            vec!["m1".into()]
        } else {
            Vec::new()
        },
        at,
    }
}

#[tokio::test]
async fn puts_are_conditional_on_the_version() {
    let store = fresh_store().await;
    let appid = "wxmp00000000000001";
    assert!(store.get_code(appid).await.unwrap().is_none());
    let mut r = auditing(appid, 1000);
    assert!(store.put_code(&r).await.unwrap());
    assert!(!store.put_code(&r).await.unwrap(), "version 1 exists");
    r.version = 2;
    assert!(store.put_code(&r).await.unwrap());
    assert!(!store.put_code(&r).await.unwrap(), "a stale writer loses");
    assert_eq!(store.get_code(appid).await.unwrap(), Some(r));
}

#[tokio::test]
async fn audit_results_apply_once_in_order_and_never_to_a_newer_audit() {
    let store = fresh_store().await;
    let appid = "wxmp00000000000002";
    // No record: nothing to apply.
    assert!(
        !store
            .apply_audit_result(appid, &result(CodeAuditState::Approved, 2000))
            .await
            .unwrap()
    );
    store.put_code(&auditing(appid, 1000)).await.unwrap();
    // A result from before this audit was submitted (an older audit's): ignored.
    assert!(
        !store
            .apply_audit_result(appid, &result(CodeAuditState::Rejected, 900))
            .await
            .unwrap()
    );
    // Delayed, then (WeChat's retry of the same push) nothing more, then approved once.
    let delay = result(CodeAuditState::Delayed, 1500);
    assert!(store.apply_audit_result(appid, &delay).await.unwrap());
    assert!(!store.apply_audit_result(appid, &delay).await.unwrap());
    let ok = result(CodeAuditState::Approved, 1600);
    assert!(store.apply_audit_result(appid, &ok).await.unwrap());
    assert!(!store.apply_audit_result(appid, &ok).await.unwrap());
    let stored = store.get_code(appid).await.unwrap().unwrap();
    let audit = stored.audit.unwrap();
    assert_eq!(
        (audit.state, audit.reason, audit.updated_at),
        (CodeAuditState::Approved, None, 1600)
    );
    assert_eq!(stored.version, 3, "two writes applied");
    // A late rejection after the approval changes nothing.
    assert!(
        !store
            .apply_audit_result(appid, &result(CodeAuditState::Rejected, 1700))
            .await
            .unwrap()
    );
    // A rejection carries its reason and screenshots.
    store
        .put_code(&CodeRecord {
            version: 4,
            ..auditing(appid, 3000)
        })
        .await
        .unwrap();
    assert!(
        store
            .apply_audit_result(appid, &result(CodeAuditState::Rejected, 3100))
            .await
            .unwrap()
    );
    let audit = store.get_code(appid).await.unwrap().unwrap().audit.unwrap();
    assert_eq!(
        (audit.state, audit.reason.as_deref(), audit.screenshots),
        (
            CodeAuditState::Rejected,
            Some("why<br>"),
            vec!["m1".to_string()]
        )
    );
}
