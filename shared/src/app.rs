//! The dependencies most functions share: the store, the credentials, a clock and the WeChat
//! client, generic over their ports so tests can swap the clock or the credentials.

use crate::clock::Clock;
use crate::secrets::CredentialsProvider;
use crate::store::TokenServiceStore;
use crate::tokens::{TokenService, TokenSettings};
use crate::wechat::WeChatClient;

pub struct Deps<S, C, K> {
    pub store: S,
    pub credentials: C,
    pub clock: K,
    pub wechat: WeChatClient,
}

impl<S, C, K> Deps<S, C, K>
where
    S: TokenServiceStore,
    C: CredentialsProvider,
    K: Clock,
{
    /// A token service for one invocation.
    pub fn tokens(&self) -> TokenService<'_, S, C, K> {
        TokenService::new(
            &self.store,
            &self.wechat,
            &self.credentials,
            &self.clock,
            TokenSettings::for_wechat_timeout(self.wechat.timeout()),
        )
    }
}
