//! What the message URL (`/wechat/messages/{appid}`) does with a verified message: the
//! full-network release test responder and follow-to-log-in scans. Everything else is accepted
//! with `success`.

use secrecy::SecretString;

use crate::clock::Clock;
use crate::login::{self, LoginSettings};
use crate::open_account::with_authorizer_token;
use crate::secrets::CredentialsProvider;
use crate::store::{LoginStore, TokenServiceStore};
use crate::tokens::TokenService;
use crate::xml::Message;

/// WeChat's release-test accounts: (appid, `gh_` id).
pub const RELEASE_TEST_ACCOUNTS: &[(&str, &str)] = &[
    ("wx570bc396a51b8ff8", "gh_3c884a361561"),
    ("wxd101a85aa106f53e", "gh_8dad206e9538"),
];

pub const RELEASE_TEXT: &str = "TESTCOMPONENT_MSG_TYPE_TEXT";
pub const RELEASE_QUERY_AUTH_PREFIX: &str = "QUERY_AUTH_CODE:";

pub fn is_release_test_account(appid: &str, gh_id: &str) -> bool {
    RELEASE_TEST_ACCOUNTS
        .iter()
        .any(|(a, g)| *a == appid || *g == gh_id)
}

/// The answer to a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// `success`: nothing to say.
    Success,
    /// An empty body (the release test's `QUERY_AUTH_CODE` case).
    Empty,
    /// A passive text reply (encrypted before it is sent).
    Text(String),
}

/// Handles one message for the authorizer `appid`. Work that calls WeChat is done before the
/// answer (Lambda freezes after it), within the callback's deadline.
pub async fn handle<S, C, K>(
    svc: &TokenService<'_, S, C, K>,
    settings: &LoginSettings,
    appid: &str,
    msg: &Message,
) -> Reply
where
    S: TokenServiceStore + LoginStore,
    C: CredentialsProvider,
    K: Clock,
{
    let content = msg.content.as_deref().unwrap_or_default().trim();
    let event = msg
        .event
        .as_deref()
        .map(str::trim)
        .filter(|e| !e.is_empty());

    if let Some(scene) = login::scan_scene(event, msg.event_key.as_deref()) {
        match login::confirm_scan(svc, appid, &msg.from_user_name, scene).await {
            Ok(Some(_)) => {
                tracing::info!(authorizer = appid, "login session confirmed");
                return Reply::Text(settings.reply_text.clone());
            }
            Ok(None) => tracing::info!(
                authorizer = appid,
                "scan matched no live login session; nothing changed"
            ),
            Err(e) => {
                tracing::error!(error = %e, authorizer = appid, "login scan could not be confirmed")
            }
        }
        // A release-test account still gets its event answer below.
    }

    if !is_release_test_account(appid, &msg.to_user_name) {
        return Reply::Success;
    }
    match (msg.msg_type.trim(), event) {
        ("event", Some(ev)) => Reply::Text(format!("{ev}from_callback")),
        ("text", _) if content == RELEASE_TEXT => Reply::Text(format!("{RELEASE_TEXT}_callback")),
        ("text", _) if content.starts_with(RELEASE_QUERY_AUTH_PREFIX) => {
            let code = content.trim_start_matches(RELEASE_QUERY_AUTH_PREFIX).trim();
            release_query_auth(svc, appid, &msg.from_user_name, code).await;
            Reply::Empty
        }
        _ => Reply::Success,
    }
}

/// Release test case 3: exchange the code with `api_query_auth`, then send `<code>_from_api` as
/// a customer-service message to the sender with the authorizer's token.
async fn release_query_auth<S, C, K>(
    svc: &TokenService<'_, S, C, K>,
    appid: &str,
    openid: &str,
    code: &str,
) where
    S: TokenServiceStore,
    C: CredentialsProvider,
    K: Clock,
{
    if code.is_empty() {
        tracing::warn!("release test QUERY_AUTH_CODE without a code");
        return;
    }
    let secret: SecretString = code.into();
    let authorizer = match svc.exchange_code(&secret, svc.clock.now()).await {
        Ok(e) => e.authorizer_appid().to_string(),
        Err(e) => {
            tracing::error!(error = %e, "release test: api_query_auth failed");
            return;
        }
    };
    if authorizer != appid {
        tracing::warn!(authorizer = %authorizer, path = appid, "release test code belongs to another account");
    }
    let content = format!("{code}_from_api");
    let sent = with_authorizer_token(svc, &authorizer, |t| {
        let content = content.clone();
        async move { svc.wechat.send_custom_text(&t, openid, &content).await }
    })
    .await;
    match sent {
        Ok(()) => {
            tracing::info!(authorizer = %authorizer, "release test customer-service message sent")
        }
        Err(e) => tracing::error!(error = %e, "release test: customer-service message failed"),
    }
}
