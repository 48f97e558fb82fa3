//! One contract, two adapters: the in-memory store and the DynamoDB store (on moto) must agree
//! on every conditional rule.

use wxopen::store::*;
use wxopen_tests::fresh_store;

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
    }
}

async fn ticket_newest_wins<S: TicketStore>(store: &S) {
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

async fn push_written_once<S: PushStore>(store: &S) {
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

async fn pending_newest_wins<S: AuthorizerStore>(store: &S) {
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
}

async fn unauthorized_rules<S: AuthorizerStore>(store: &S) {
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
            async fn memory() {
                super::$name(&MemoryStore::new()).await;
            }
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
