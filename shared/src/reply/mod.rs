//! Passive replies through a reply hook: the reply model (`model`), the hook port and its
//! HTTPS and Lambda adapters with their budget (`hook`).
//!
//! The flow in message-events (release test and login answers keep priority): build the event,
//! [`hook::ask`] within the budget, [`memo`] the reply, deliver the event with the memo
//! (`events::outbox::deliver`), then seal the memo's XML with `crypto::seal_reply` using the
//! key the push was decrypted with.

pub mod hook;
pub mod model;

pub use hook::{ConfiguredHook, HookOutcome, HookReport, HttpsHook, LambdaHook, ReplyHook, ask};
pub use model::{Article, PassiveReply, ReplyError};

use crate::store::outbox::ReplyMemo;

/// The memo of a hook's reply to the user `to_openid` of the account `from_gh_id`: the rendered
/// plaintext XML, so every retry is answered with the same reply.
pub fn memo(
    reply: Option<&PassiveReply>,
    to_openid: &str,
    from_gh_id: &str,
    now: i64,
) -> ReplyMemo {
    match reply {
        Some(r) => ReplyMemo::Reply {
            xml: r.render(to_openid, from_gh_id, now),
        },
        None => ReplyMemo::Success,
    }
}
