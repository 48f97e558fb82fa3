//! What the message URL (`/wechat/messages/{appid}`) does with a verified message, in priority
//! order: a follow-to-log-in scan confirms its session, the full-network release test gets its
//! answers, and everything else is accepted with `success`.

use super::release_test::{self, Answer};
use crate::clock::Clock;
use crate::login::{self, LoginSettings};
use crate::secrets::CredentialsProvider;
use crate::store::{IdentityStore, LoginStore, TokenServiceStore};
use crate::tokens::TokenService;
use crate::xml::Message;

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
    S: TokenServiceStore + LoginStore + IdentityStore,
    C: CredentialsProvider,
    K: Clock,
{
    if let Some(text) = login::on_message(svc, settings, appid, msg).await {
        return Reply::Text(text);
    }
    // A scan that confirmed nothing still gets the release test's answer.
    match release_test::answer(svc, appid, msg).await {
        Some(Answer::Text(t)) => Reply::Text(t),
        Some(Answer::Empty) => Reply::Empty,
        None => Reply::Success,
    }
}
