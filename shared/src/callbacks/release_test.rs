//! The full-network release test (全网发布): WeChat's test accounts send fixed messages to the
//! message URL and check the answers: an event → `<event>from_callback`, the text
//! `TESTCOMPONENT_MSG_TYPE_TEXT` → `…_callback`, and `QUERY_AUTH_CODE:<code>` → an empty answer,
//! then `<code>_from_api` sent as a customer-service message with the authorizer's token.

use secrecy::SecretString;

use crate::authorization;
use crate::clock::Clock;
use crate::secrets::CredentialsProvider;
use crate::store::{PushClaim, PushStore, TokenServiceStore};
use crate::tokens::TokenService;
use crate::xml::Message;

/// WeChat's release-test accounts: (appid, `gh_` id).
pub const RELEASE_TEST_ACCOUNTS: &[(&str, &str)] = &[
    ("wx570bc396a51b8ff8", "gh_3c884a361561"),
    ("wxd101a85aa106f53e", "gh_8dad206e9538"),
];

pub const RELEASE_TEXT: &str = "TESTCOMPONENT_MSG_TYPE_TEXT";
pub use crate::xml::RELEASE_QUERY_AUTH_PREFIX;

pub fn is_release_test_account(appid: &str, gh_id: &str) -> bool {
    RELEASE_TEST_ACCOUNTS
        .iter()
        .any(|(a, g)| *a == appid || *g == gh_id)
}

/// What the release test expects as the passive answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// A passive text reply.
    Text(String),
    /// An empty body (the `QUERY_AUTH_CODE` case; the real answer goes by the API).
    Empty,
}

/// The release test's answer to `msg`, or `None` when `msg` is not from a release-test account
/// or is not one of its cases.
pub async fn answer<S, C, K>(
    svc: &TokenService<'_, S, C, K>,
    appid: &str,
    msg: &Message,
) -> Option<Answer>
where
    S: TokenServiceStore + PushStore,
    C: CredentialsProvider,
    K: Clock,
{
    if !is_release_test_account(appid, &msg.to_user_name) {
        return None;
    }
    let content = msg.content.as_deref().unwrap_or_default().trim();
    let event = msg
        .event
        .as_deref()
        .map(str::trim)
        .filter(|e| !e.is_empty());
    match (msg.msg_type.trim(), event) {
        ("event", Some(ev)) => Some(Answer::Text(format!("{ev}from_callback"))),
        ("text", _) if content == RELEASE_TEXT => {
            Some(Answer::Text(format!("{RELEASE_TEXT}_callback")))
        }
        ("text", _) if content.starts_with(RELEASE_QUERY_AUTH_PREFIX) => {
            let code = content.trim_start_matches(RELEASE_QUERY_AUTH_PREFIX).trim();
            query_auth(svc, appid, &msg.from_user_name, code).await;
            Some(Answer::Empty)
        }
        _ => None,
    }
}

/// The claim that lets exactly one delivery send `<code>_from_api` (a digest of the code: the
/// code itself is never a key).
pub fn send_claim_key(code: &str) -> String {
    use sha2::{Digest, Sha256};
    format!(
        "release-send:{}",
        hex::encode(Sha256::digest(code.as_bytes()))
    )
}

/// Release test case 3: exchange the code with `api_query_auth`, then send `<code>_from_api` as
/// a customer-service message to the sender with the authorizer's token. WeChat may deliver
/// the push again while the first delivery is still working: the send is claimed once (a
/// conditional write), so the message goes out once.
async fn query_auth<S, C, K>(svc: &TokenService<'_, S, C, K>, appid: &str, openid: &str, code: &str)
where
    S: TokenServiceStore + PushStore,
    C: CredentialsProvider,
    K: Clock,
{
    if code.is_empty() {
        tracing::warn!("release test QUERY_AUTH_CODE without a code");
        return;
    }
    let secret: SecretString = code.into();
    let authorizer = match authorization::exchange_code(
        svc,
        &secret,
        None,
        &authorization::LinkHint::None,
    )
    .await
    {
        Ok(e) => e.authorizer_appid().to_string(),
        Err(e) => {
            tracing::error!(error = %e, "release test: api_query_auth failed");
            return;
        }
    };
    if authorizer != appid {
        tracing::warn!(authorizer = %authorizer, path = appid, "release test code belongs to another account");
    }
    let claim_key = send_claim_key(code);
    match svc
        .store
        .claim_push(&claim_key, "release_test_send", svc.clock.now())
        .await
    {
        Ok(PushClaim::New) => {}
        Ok(_) => {
            tracing::info!(authorizer = %authorizer, "release test message already sent by another delivery");
            return;
        }
        Err(e) => {
            tracing::error!(error = %e, "release test: the send could not be claimed");
            return;
        }
    }
    let content = format!("{code}_from_api");
    let sent = svc
        .with_authorizer_token(&authorizer, |t| {
            let content = content.clone();
            async move { svc.wechat.send_custom_text(&t, openid, &content).await }
        })
        .await;
    match sent {
        Ok(()) => {
            if let Err(e) = svc.store.complete_push(&claim_key).await {
                tracing::warn!(error = %e, "release test: send claim not marked done");
            }
            tracing::info!(authorizer = %authorizer, "release test customer-service message sent")
        }
        Err(e) => tracing::error!(error = %e, "release test: customer-service message failed"),
    }
}
