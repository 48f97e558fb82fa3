//! The store contract: every conditional rule of the DynamoDB adapter (on moto). The in-memory
//! adapter that also ran it was removed: it skipped two of the traits, and no production path
//! used it.

use wxopen::model::*;
use wxopen::store::*;
use wxopen_tests::fresh_store;

/// Every port the contract exercises.
trait AllStores:
    TicketStore + PushStore + AuthorizerStore + TokenStore + AuthCodeStore + LoginStore
{
}
impl<T: TicketStore + PushStore + AuthorizerStore + TokenStore + AuthCodeStore + LoginStore>
    AllStores for T
{
}

fn ticket(value: &str, create_time: i64) -> StoredTicket {
    StoredTicket {
        ticket: value.into(),
        create_time,
        received_at: create_time + 1,
    }
}

fn pending(appid: &str, code: &str, create_time: i64) -> PendingAuthorization {
    PendingAuthorization {
        authorizer_appid: appid.into(),
        kind: AuthorizationKind::Authorized,
        authorization_code: code.into(),
        create_time,
        code_expires_at: Some(create_time + 3600),
        received_at: create_time,
        pre_auth_digest: None,
    }
}

async fn ticket_newest_wins<S: AllStores>(store: &S) {
    use secrecy::ExposeSecret;
    assert!(store.get_ticket().await.unwrap().is_none());
    assert_eq!(
        store.put_ticket(&ticket("t-200", 200)).await.unwrap(),
        TicketWrite::Stored
    );
    // GIVEN a stored ticket WHEN an older or equally old one arrives THEN it changes nothing.
    assert_eq!(
        store.put_ticket(&ticket("t-100", 100)).await.unwrap(),
        TicketWrite::NotNewer
    );
    assert_eq!(
        store.put_ticket(&ticket("t-200b", 200)).await.unwrap(),
        TicketWrite::NotNewer
    );
    let got = store.get_ticket().await.unwrap().unwrap();
    assert_eq!(got.ticket.expose_secret(), "t-200");
    assert_eq!((got.create_time, got.received_at), (200, 201));
    assert_eq!(
        store.put_ticket(&ticket("t-300", 300)).await.unwrap(),
        TicketWrite::Stored
    );
    assert_eq!(
        store
            .get_ticket()
            .await
            .unwrap()
            .unwrap()
            .ticket
            .expose_secret(),
        "t-300"
    );
}

async fn push_written_once<S: AllStores>(store: &S) {
    assert!(store.get_push("k1").await.unwrap().is_none());
    assert_eq!(
        store
            .claim_push("k1", "component_verify_ticket", 1000)
            .await
            .unwrap(),
        PushClaim::New
    );
    assert_eq!(
        store
            .claim_push("k1", "component_verify_ticket", 1001)
            .await
            .unwrap(),
        PushClaim::Unfinished
    );
    store.complete_push("k1").await.unwrap();
    assert_eq!(
        store
            .claim_push("k1", "component_verify_ticket", 1002)
            .await
            .unwrap(),
        PushClaim::Done
    );
    let rec = store.get_push("k1").await.unwrap().unwrap();
    assert_eq!(rec.status, PushStatus::Done);
    assert_eq!(rec.received_at, 1000, "the first claim's record is kept");
    assert_eq!(rec.ttl, 1000 + PUSH_RECORD_TTL_SECS);
    // Completing an unknown push is harmless and creates nothing.
    store.complete_push("never-claimed").await.unwrap();
    assert!(store.get_push("never-claimed").await.unwrap().is_none());
}

async fn pending_newest_wins<S: AllStores>(store: &S) {
    use secrecy::ExposeSecret;
    assert_eq!(
        store
            .put_pending_authorization(&pending("wxa", "code-2", 20))
            .await
            .unwrap(),
        EventApplied::Applied
    );
    assert_eq!(
        store
            .put_pending_authorization(&pending("wxa", "code-1", 10))
            .await
            .unwrap(),
        EventApplied::Superseded
    );
    assert_eq!(
        store
            .put_pending_authorization(&pending("wxb", "code-b", 5))
            .await
            .unwrap(),
        EventApplied::Applied
    );
    let mut all = store.list_pending_authorizations().await.unwrap();
    all.sort_by(|a, b| a.authorizer_appid.cmp(&b.authorizer_appid));
    assert_eq!(all.len(), 2);
    assert_eq!(all[0].authorization_code.expose_secret(), "code-2");
    assert_eq!(all[0].code_expires_at, Some(3620));
    assert_eq!(all[1].authorizer_appid, "wxb");
    // Fault: a second, different authorization in the same second used to be dropped
    // (`create_time < :ct`). Both are kept; each is removed on its own.
    assert_eq!(
        store
            .put_pending_authorization(&pending("wxa", "code-3", 20))
            .await
            .unwrap(),
        EventApplied::Applied
    );
    let codes = |all: Vec<wxopen::model::PendingAuthorization>| {
        let mut c: Vec<String> = all
            .iter()
            .filter(|p| p.authorizer_appid == "wxa")
            .map(|p| p.authorization_code.expose_secret().to_string())
            .collect();
        c.sort();
        c
    };
    assert_eq!(
        codes(store.list_pending_authorizations().await.unwrap()),
        vec!["code-2", "code-3"]
    );
    store
        .remove_pending_authorization(&pending("wxa", "code-2", 20))
        .await
        .unwrap();
    assert_eq!(
        codes(store.list_pending_authorizations().await.unwrap()),
        vec!["code-3"]
    );
}

async fn unauthorized_rules<S: AllStores>(store: &S) {
    assert!(store.get_authorizer("wxa").await.unwrap().is_none());
    store
        .put_pending_authorization(&pending("wxa", "old", 10))
        .await
        .unwrap();
    store
        .put_pending_authorization(&pending("wxb", "newer", 50))
        .await
        .unwrap();
    // Cancellation at 20: creates the record for audit, drops wxa's older pending code.
    assert_eq!(
        store.mark_unauthorized("wxa", 20, 21).await.unwrap(),
        EventApplied::Applied
    );
    let a = store.get_authorizer("wxa").await.unwrap().unwrap();
    assert_eq!(
        (a.state, a.last_event_at, a.updated_at),
        (AuthorizerState::Unauthorized, 20, 21)
    );
    assert!(a.func_info.is_empty() && a.open_appid.is_none());
    // An older cancellation (a late retry) is superseded and changes nothing.
    assert_eq!(
        store.mark_unauthorized("wxa", 15, 99).await.unwrap(),
        EventApplied::Superseded
    );
    assert_eq!(
        store
            .get_authorizer("wxa")
            .await
            .unwrap()
            .unwrap()
            .updated_at,
        21
    );
    // A cancellation older than a pending authorization leaves that authorization pending.
    assert_eq!(
        store.mark_unauthorized("wxb", 40, 41).await.unwrap(),
        EventApplied::Applied
    );
    let left: Vec<_> = store
        .list_pending_authorizations()
        .await
        .unwrap()
        .into_iter()
        .map(|p| p.authorizer_appid)
        .collect();
    assert_eq!(left, vec!["wxb".to_string()]);
}

macro_rules! contract {
    ($name:ident) => {
        mod $name {
            use super::*;
            #[tokio::test]
            async fn dynamo() {
                super::$name(&fresh_store().await).await;
            }
        }
    };
}

contract!(ticket_newest_wins);
contract!(push_written_once);
contract!(pending_newest_wins);
contract!(unauthorized_rules);

fn grant(
    appid: &str,
    event_time: i64,
    access: &str,
    refresh: &str,
    expires_at: i64,
) -> AuthorizationGrant {
    AuthorizationGrant {
        appid: appid.into(),
        event_time: Some(event_time),
        func_info: vec![1, 24],
        token: NewToken {
            access_token: access.into(),
            expires_at,
            refresh_token: Some(refresh.into()),
        },
        profile: Some(AuthorizerProfileRecord {
            kind: AccountKind::OfficialAccount,
            nick_name: "Acme".into(),
            user_name: "gh_acme".into(),
            principal_name: Some("Acme Ltd".into()),
            service_type: 2,
            verify_type: 0,
            head_img: None,
        }),
        now: event_time,
    }
}

fn new_token(access: &str, expires_at: i64, refresh: Option<&str>) -> NewToken {
    NewToken {
        access_token: access.into(),
        expires_at,
        refresh_token: refresh.map(Into::into),
    }
}

async fn component_token_lease_protocol<S: AllStores>(store: &S) {
    use secrecy::ExposeSecret;
    let key = TokenKey::Component;
    assert!(store.get_token(&key).await.unwrap().is_none());
    // GIVEN no token WHEN two workers race for the lease THEN exactly one gets it.
    assert_eq!(
        store.acquire_lease(&key, 0, "w1", 100, 130).await.unwrap(),
        LeaseOutcome::Acquired
    );
    assert_eq!(
        store.acquire_lease(&key, 0, "w2", 101, 131).await.unwrap(),
        LeaseOutcome::Conflict
    );
    // The loser cannot commit.
    assert_eq!(
        store
            .commit_token(&key, "w2", 0, &new_token("bad", 7300, None))
            .await
            .unwrap(),
        CommitOutcome::LostLease
    );
    assert_eq!(
        store
            .commit_token(&key, "w1", 0, &new_token("cat-1", 7300, None))
            .await
            .unwrap(),
        CommitOutcome::Committed(1)
    );
    let t = store.get_token(&key).await.unwrap().unwrap();
    assert_eq!(
        (t.version, t.expires_at, t.lease_owner.clone()),
        (1, 7300, None)
    );
    assert_eq!(t.access_token.unwrap().expose_secret(), "cat-1");
    // A lease for a stale version is refused; the current version works.
    assert_eq!(
        store.acquire_lease(&key, 0, "w3", 200, 230).await.unwrap(),
        LeaseOutcome::Conflict
    );
    assert_eq!(
        store.acquire_lease(&key, 1, "w3", 200, 230).await.unwrap(),
        LeaseOutcome::Acquired
    );
    // A crashed worker's lease expires by itself: after `until`, another worker takes over.
    assert_eq!(
        store.acquire_lease(&key, 1, "w4", 230, 260).await.unwrap(),
        LeaseOutcome::Conflict
    );
    assert_eq!(
        store.acquire_lease(&key, 1, "w4", 231, 261).await.unwrap(),
        LeaseOutcome::Acquired
    );
    // The crashed worker coming back late cannot write over the new owner.
    assert_eq!(
        store
            .commit_token(&key, "w3", 1, &new_token("late", 9000, None))
            .await
            .unwrap(),
        CommitOutcome::LostLease
    );
    store.release_lease(&key, "w4").await.unwrap();
    assert_eq!(
        store.acquire_lease(&key, 1, "w5", 232, 262).await.unwrap(),
        LeaseOutcome::Acquired
    );
    // The component token shows in the refresh index by its expiry.
    let due = store.due_tokens(7300, 10).await.unwrap();
    assert_eq!(
        due,
        vec![DueToken {
            key: TokenKey::Component,
            version: 1,
            due_at: 7300
        }]
    );
    assert!(store.due_tokens(7299, 10).await.unwrap().is_empty());
}

async fn authorizer_token_protocol<S: AllStores>(store: &S) {
    use secrecy::ExposeSecret;
    let key = TokenKey::Authorizer("wx1100000000000001".into());
    // Unknown authorizers have no token and no lease.
    assert!(store.get_token(&key).await.unwrap().is_none());
    assert_eq!(
        store.acquire_lease(&key, 0, "w", 1, 2).await.unwrap(),
        LeaseOutcome::Conflict
    );

    assert_eq!(
        store
            .record_authorization(&grant("wx1100000000000001", 100, "at-1", "rt-1", 7300))
            .await
            .unwrap(),
        EventApplied::Applied
    );
    let rec = store
        .get_authorizer("wx1100000000000001")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (rec.state, rec.func_info.clone()),
        (AuthorizerState::Authorized, vec![1, 24])
    );
    assert_eq!(rec.profile.as_ref().unwrap().user_name, "gh_acme");
    let t = store.get_token(&key).await.unwrap().unwrap();
    assert_eq!((t.version, t.state), (1, Some(AuthorizerState::Authorized)));
    assert_eq!(t.refresh_token.as_ref().unwrap().expose_secret(), "rt-1");

    // Refresh: lease, commit access + refresh token together.
    assert_eq!(
        store.acquire_lease(&key, 1, "w1", 200, 230).await.unwrap(),
        LeaseOutcome::Acquired
    );
    assert_eq!(
        store
            .commit_token(&key, "w1", 1, &new_token("at-2", 7400, Some("rt-2")))
            .await
            .unwrap(),
        CommitOutcome::Committed(2)
    );
    let t = store.get_token(&key).await.unwrap().unwrap();
    assert_eq!(t.access_token.unwrap().expose_secret(), "at-2");
    assert_eq!(t.refresh_token.unwrap().expose_secret(), "rt-2");

    // Re-authorization during an in-flight refresh: the refresher's commit must not overwrite
    // the new refresh token.
    assert_eq!(
        store.acquire_lease(&key, 2, "w2", 300, 330).await.unwrap(),
        LeaseOutcome::Acquired
    );
    store
        .record_authorization(&grant("wx1100000000000001", 310, "at-3", "rt-3", 7600))
        .await
        .unwrap();
    assert_eq!(
        store
            .commit_token(&key, "w2", 2, &new_token("at-x", 9999, Some("rt-x")))
            .await
            .unwrap(),
        CommitOutcome::LostLease
    );
    let t = store.get_token(&key).await.unwrap().unwrap();
    assert_eq!(
        (
            t.version,
            t.refresh_token.unwrap().expose_secret().to_string()
        ),
        (3, "rt-3".to_string())
    );
    // An older authorization event is superseded.
    assert_eq!(
        store
            .record_authorization(&grant("wx1100000000000001", 200, "old", "old", 1))
            .await
            .unwrap(),
        EventApplied::Superseded
    );

    // 61023: needs_reauth takes it out of the refresh index and into the recovery list.
    assert_eq!(
        store.acquire_lease(&key, 3, "w3", 400, 430).await.unwrap(),
        LeaseOutcome::Acquired
    );
    assert_eq!(
        store
            .mark_needs_reauth("wx1100000000000001", "someone-else", 401)
            .await
            .unwrap(),
        CommitOutcome::LostLease
    );
    assert!(matches!(
        store
            .mark_needs_reauth("wx1100000000000001", "w3", 401)
            .await
            .unwrap(),
        CommitOutcome::Committed(_)
    ));
    assert_eq!(
        store.needs_reauth().await.unwrap(),
        vec!["wx1100000000000001".to_string()]
    );
    assert!(store.due_tokens(i64::MAX - 1, 10).await.unwrap().is_empty());
    assert_eq!(
        store.acquire_lease(&key, 3, "w4", 500, 530).await.unwrap(),
        LeaseOutcome::Conflict
    );
    assert_eq!(
        store
            .get_authorizer("wx1100000000000001")
            .await
            .unwrap()
            .unwrap()
            .state,
        AuthorizerState::NeedsReauth
    );

    // Recovery restores the refresh token and makes it due at once.
    assert_eq!(
        store
            .restore_refresh_token("wx1100000000000001", &"rt-recovered".into(), 600)
            .await
            .unwrap(),
        EventApplied::Applied
    );
    assert_eq!(
        store
            .restore_refresh_token("wx1100000000000001", &"again".into(), 601)
            .await
            .unwrap(),
        EventApplied::Superseded
    );
    assert!(store.needs_reauth().await.unwrap().is_empty());
    let due = store.due_tokens(600, 10).await.unwrap();
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].key, key);
    let t = store.get_token(&key).await.unwrap().unwrap();
    assert_eq!(t.refresh_token.unwrap().expose_secret(), "rt-recovered");

    // Cancellation: tokens unusable at once, out of the index.
    store
        .mark_unauthorized("wx1100000000000001", 700, 701)
        .await
        .unwrap();
    let t = store.get_token(&key).await.unwrap().unwrap();
    assert!(t.access_token.is_none() && t.refresh_token.is_none());
    assert_eq!(t.state, Some(AuthorizerState::Unauthorized));
    assert!(store.due_tokens(i64::MAX - 1, 10).await.unwrap().is_empty());
    assert_eq!(
        store
            .acquire_lease(&key, t.version, "w5", 800, 830)
            .await
            .unwrap(),
        LeaseOutcome::Conflict
    );
    // Re-authorization brings it back with new tokens.
    store
        .record_authorization(&grant("wx1100000000000001", 900, "at-9", "rt-9", 8000))
        .await
        .unwrap();
    let t = store.get_token(&key).await.unwrap().unwrap();
    assert_eq!(t.state, Some(AuthorizerState::Authorized));
    assert_eq!(t.access_token.unwrap().expose_secret(), "at-9");
}

async fn due_tokens_come_from_the_index<S: AllStores>(store: &S) {
    for i in 0..30i64 {
        store
            .record_authorization(&grant(
                &format!("wx{:016}", i),
                1,
                "at",
                "rt",
                1000 + i * 10,
            ))
            .await
            .unwrap();
    }
    let due = store.due_tokens(1095, 100).await.unwrap();
    assert_eq!(due.len(), 10, "expiring at 1000..=1090");
    assert!(
        due.windows(2).all(|w| w[0].due_at <= w[1].due_at),
        "oldest first"
    );
    assert_eq!(
        store.due_tokens(5000, 7).await.unwrap().len(),
        7,
        "limit honoured"
    );
}

async fn code_claims<S: AllStores>(store: &S) {
    assert_eq!(
        store.claim_code("c1", "w1", 100, 130).await.unwrap(),
        CodeClaim::Claimed
    );
    assert_eq!(
        store.claim_code("c1", "w2", 101, 131).await.unwrap(),
        CodeClaim::Busy
    );
    store.finish_code("c1", "w1", "wxa", 102).await.unwrap();
    assert_eq!(
        store.claim_code("c1", "w3", 500, 530).await.unwrap(),
        CodeClaim::Done {
            authorizer_appid: "wxa".into()
        }
    );
    // A released claim can be taken again; an expired one too.
    assert_eq!(
        store.claim_code("c2", "w1", 100, 130).await.unwrap(),
        CodeClaim::Claimed
    );
    store.release_code("c2", "w1").await.unwrap();
    assert_eq!(
        store.claim_code("c2", "w2", 101, 131).await.unwrap(),
        CodeClaim::Claimed
    );
    assert_eq!(
        store.claim_code("c2", "w3", 132, 160).await.unwrap(),
        CodeClaim::Claimed
    );
    // Only the current pending authorization is removed.
    store
        .put_pending_authorization(&pending("wxp", "code", 50))
        .await
        .unwrap();
    store
        .remove_pending_authorization(&pending("wxp", "code", 49))
        .await
        .unwrap();
    assert_eq!(store.list_pending_authorizations().await.unwrap().len(), 1);
    store
        .remove_pending_authorization(&pending("wxp", "code", 50))
        .await
        .unwrap();
    assert!(
        store
            .list_pending_authorizations()
            .await
            .unwrap()
            .is_empty()
    );
}

contract!(component_token_lease_protocol);
contract!(authorizer_token_protocol);
contract!(due_tokens_come_from_the_index);
contract!(code_claims);

/// The bulk import writes exactly the item `record_authorization` writes.
#[tokio::test]
async fn import_writes_the_same_item_as_record_authorization() {
    let a = fresh_store().await;
    let b = fresh_store().await;
    let g = grant("wx1100000000000009", 100, "at-1", "rt-1", 7300);
    a.record_authorization(&g).await.unwrap();
    b.import_authorizers(std::slice::from_ref(&g))
        .await
        .unwrap();
    let (sa, sb) = (
        wxopen_tests::scan_all(&a).await,
        wxopen_tests::scan_all(&b).await,
    );
    assert_eq!(sa, sb);
    assert_eq!(sa.len(), 1);
}

// ---- fast registrations ----

fn registration(id: &str, code: &str) -> Registration {
    Registration {
        id: id.to_string(),
        kind: RegistrationKind::Enterprise,
        customer_ref: "cust".into(),
        name: "Acme Ltd".into(),
        code: code.into(),
        component_phone: "13800138000".into(),
        oa_appid: None,
        return_to: None,
        taskid: Some(format!("task-{id}")),
        authorize_url: "https://x.example/a".into(),
        state: RegistrationState::Pending,
        appid: None,
        wechat_status: None,
        status_meaning: None,
        created_at: 1_000,
        updated_at: 1_000,
        expires_at: 87_400,
    }
}

#[tokio::test]
async fn registrations_are_found_by_each_key_and_finish_once() {
    let store = fresh_store().await;
    let r = registration("r1", "91350100M000100Y43");
    store.create_registration(&r).await.unwrap();
    assert_eq!(store.get_registration("r1").await.unwrap(), Some(r.clone()));
    for key in [
        RegistrationKey::Task("task-r1"),
        RegistrationKey::Code("91350100M000100Y43"),
        RegistrationKey::Name("Acme Ltd"),
    ] {
        assert_eq!(
            store.registration_for(&key).await.unwrap().as_deref(),
            Some("r1"),
            "{key:?}"
        );
    }
    assert_eq!(
        store
            .registration_for(&RegistrationKey::Task("nope"))
            .await
            .unwrap(),
        None
    );
    // A newer registration of the same subject takes its keys.
    let r2 = registration("r2", "91350100M000100Y43");
    store.create_registration(&r2).await.unwrap();
    assert_eq!(
        store
            .registration_for(&RegistrationKey::Code("91350100M000100Y43"))
            .await
            .unwrap()
            .as_deref(),
        Some("r2")
    );
    let failed = RegistrationOutcome::Failed {
        status: 103,
        meaning: "m".into(),
    };
    assert!(store.finish_registration(&r, &failed, 2_000).await.unwrap());
    let got = store.get_registration("r1").await.unwrap().unwrap();
    assert_eq!(
        (
            got.state,
            got.wechat_status,
            got.status_meaning.as_deref(),
            got.updated_at
        ),
        (RegistrationState::Failed, Some(103), Some("m"), 2_000)
    );
    // Finished: a second outcome changes nothing.
    let ok = RegistrationOutcome::Succeeded {
        appid: "wxnew0000000000001".into(),
    };
    assert!(!store.finish_registration(&r, &ok, 3_000).await.unwrap());
    assert_eq!(store.get_registration("r1").await.unwrap().unwrap(), got);
}
