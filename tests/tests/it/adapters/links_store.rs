//! The link store on DynamoDB (moto): links, pre-auth renewal claims, the digest → link item,
//! binding a link to an authorizer; and store errors that keep the AWS error code.

use secrecy::ExposeSecret;
use wxopen::model::{AuthorizationLink, LinkStatus, PreAuth};
use wxopen::store::{DynamoStore, LinkStore, TicketStore};
use wxopen_tests::{aws_config, fresh_store};

fn link(id: &str, customer: &str) -> AuthorizationLink {
    AuthorizationLink {
        id: id.into(),
        customer_ref: customer.into(),
        auth_type: 3,
        biz_appid: None,
        category_id_list: None,
        return_to: None,
        created_at: 1_000,
        expires_at: 9_000,
        status: LinkStatus::Pending,
        authorizer_appid: None,
        authorized_at: None,
    }
}

fn pre_auth(code: &str, expires_at: i64) -> PreAuth {
    PreAuth {
        code: code.into(),
        expires_at,
    }
}

#[tokio::test]
async fn links_renew_once_per_code_and_bind_once() {
    let store = fresh_store().await;
    let id = "0123456789abcdef0123456789abcdef";
    store
        .create_link(&link(id, "c1"), &pre_auth("pre-1", 2_000), "d1")
        .await
        .unwrap();
    let (l, p) = store.get_link(id).await.unwrap().unwrap();
    assert_eq!(l.customer_ref, "c1");
    assert_eq!(p.unwrap().code.expose_secret(), "pre-1");
    assert_eq!(
        store.link_for_pre_auth("d1").await.unwrap().as_deref(),
        Some(id)
    );
    assert_eq!(store.link_for_pre_auth("nope").await.unwrap(), None);
    // One renewal claim per code lifetime: the second worker loses until the claim lapses.
    assert!(
        store
            .claim_pre_auth_renewal(id, 2_000, 2_100, 2_130)
            .await
            .unwrap()
    );
    assert!(
        !store
            .claim_pre_auth_renewal(id, 2_000, 2_101, 2_131)
            .await
            .unwrap()
    );
    // A claim against a code already replaced loses.
    store
        .set_pre_auth(id, &pre_auth("pre-2", 4_000), "d2")
        .await
        .unwrap();
    assert!(
        !store
            .claim_pre_auth_renewal(id, 2_000, 2_200, 2_230)
            .await
            .unwrap()
    );
    assert_eq!(
        store.link_for_pre_auth("d2").await.unwrap().as_deref(),
        Some(id)
    );
    // Bound once: the same authorizer again is fine, another one is refused.
    let l = store.get_link(id).await.unwrap().unwrap().0;
    assert!(
        !store
            .bind_link(&l, "wxoa00000000000001", 3_000)
            .await
            .unwrap(),
        "no authorizer item yet: the link is marked but no customer written"
    );
    let (l, p) = store.get_link(id).await.unwrap().unwrap();
    assert_eq!(l.status, LinkStatus::Authorized);
    assert!(p.is_none(), "the pre-auth code is dropped once used");
    assert!(
        !store
            .bind_link(&l, "wxoa00000000000002", 3_001)
            .await
            .unwrap()
    );
    assert_eq!(
        store
            .get_link(id)
            .await
            .unwrap()
            .unwrap()
            .0
            .authorizer_appid
            .as_deref(),
        Some("wxoa00000000000001")
    );
    // No renewal for a used link.
    assert!(
        !store
            .claim_pre_auth_renewal(id, 4_000, 5_000, 5_030)
            .await
            .unwrap()
    );
}

#[tokio::test]
async fn store_errors_keep_the_aws_error_code() {
    let client = aws_sdk_dynamodb::Client::new(&aws_config().await);
    let store = DynamoStore::new(client, "wxopen-no-such-table");
    let err = store.get_ticket().await.unwrap_err();
    assert!(
        err.to_string().contains("ResourceNotFoundException"),
        "{err}"
    );
}
