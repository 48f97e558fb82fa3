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
    /// What the deployment tunes of the token service.
    pub tuning: TokenTuning,
}

/// The token service's deployed settings (the rest follow from the WeChat timeout).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenTuning {
    /// [`TokenSettings::min_refresh_interval_secs`].
    pub min_refresh_interval_secs: i64,
}

impl Default for TokenTuning {
    fn default() -> Self {
        Self {
            min_refresh_interval_secs: TokenSettings::default().min_refresh_interval_secs,
        }
    }
}

impl TokenTuning {
    /// The tuning as deployed (`TOKEN_MIN_REFRESH_INTERVAL_SECONDS`).
    pub fn from_config(config: &crate::config::Config) -> Self {
        Self {
            min_refresh_interval_secs: i64::try_from(config.token_min_refresh_interval.as_secs())
                .unwrap_or(i64::MAX),
        }
    }
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
            TokenSettings {
                min_refresh_interval_secs: self.tuning.min_refresh_interval_secs,
                ..TokenSettings::for_wechat_timeout(self.wechat.timeout())
            },
        )
    }
}
