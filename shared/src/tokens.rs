//! The token lifecycle: read, lease, refresh, compare-and-set, recovery.
//!
//! * One writer at a time per token: a refresh takes a lease with a conditional write
//!   (no live lease, version still `v`), calls WeChat, then writes the new token with version
//!   `v + 1` on condition that it still holds the lease. A crashed worker's lease just expires.
//! * Readers read. A caller that saw 40001/42001 with version `v` asks for a refresh *of `v`*: if
//!   the stored version is already newer it gets that, and WeChat is not called again.
//! * Refresh tokens are written in the same conditional update as the access token. On 61023 the
//!   authorizer becomes `needs_reauth` and its refresh token is recovered from
//!   `api_get_authorizer_list`.

use std::future::Future;
use std::time::{Duration, Instant};

use secrecy::{ExposeSecret, SecretString};
use tokio::sync::Mutex;

use crate::clock::Clock;
use crate::model::{AuthorizerRecord, AuthorizerState, NewToken, TokenKey, TokenRecord};
use crate::secrets::{ComponentCredentials, CredentialsProvider, SecretsError};
use crate::store::{
    AuthorizerStore, CommitOutcome, EventApplied, LeaseOutcome, StoreError, TokenServiceStore,
};
use crate::wechat::{ErrorKind, WeChatClient, WeChatError};

/// Tuning of the token service.
#[derive(Debug, Clone)]
pub struct TokenSettings {
    /// A token is served only while it has at least this long to live.
    pub min_remaining_secs: i64,
    /// How long a refresh lease lasts (covers one WeChat call with its timeout).
    pub lease_secs: i64,
    /// How long a reader waits for another worker's refresh before answering "busy".
    pub wait_budget: Duration,
    /// Poll interval while waiting for another worker.
    pub poll: Duration,
    /// How long an authorization-code claim lasts.
    pub code_lease_secs: i64,
    /// A forced refresh (`stale_version` = the stored version) of a token refreshed less than
    /// this long ago returns the stored token instead: WeChat's token APIs are called at most
    /// once per token per interval, whatever the callers do.
    pub min_refresh_interval_secs: i64,
}

impl TokenSettings {
    /// The settings for a WeChat client with `timeout` per request: the lease covers every
    /// call one refresh can make (the component token and the authorizer token, each tried
    /// [`RETRY_ATTEMPTS`] times, with the back-off between tries) plus a margin, so a slow but
    /// successful refresh never outlives its lease and loses its write.
    pub fn for_wechat_timeout(timeout: Duration) -> Self {
        let attempts = u64::from(RETRY_ATTEMPTS);
        let worst_ms = u64::try_from(timeout.as_millis())
            .unwrap_or(u64::MAX)
            .saturating_mul(2 * attempts)
            .saturating_add(2 * (attempts - 1) * RETRY_BACKOFF_MS)
            .saturating_add(LEASE_MARGIN_MS);
        let defaults = Self::default();
        Self {
            lease_secs: i64::try_from(worst_ms.div_ceil(1000))
                .unwrap_or(i64::MAX)
                .max(defaults.lease_secs),
            ..defaults
        }
    }
}

impl Default for TokenSettings {
    fn default() -> Self {
        Self {
            min_remaining_secs: 60,
            lease_secs: 30,
            wait_budget: Duration::from_secs(3),
            poll: Duration::from_millis(100),
            code_lease_secs: 30,
            min_refresh_interval_secs: 30,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("no component_verify_ticket has been received yet")]
    NoTicket,
    #[error("the authorizer is not known")]
    UnknownAuthorizer,
    #[error("the authorizer is {}", state_name(*.0))]
    NotAuthorized(AuthorizerState),
    #[error("another worker is refreshing this token; try again shortly")]
    Busy,
    #[error("stale_version {asked} is newer than the stored version {stored}")]
    VersionAhead { asked: u64, stored: u64 },
    #[error("WeChat refused: {0}")]
    WeChat(#[from] WeChatError),
    #[error("state store failed: {0}")]
    Store(#[from] StoreError),
    #[error("credentials unavailable: {0}")]
    Secrets(#[from] SecretsError),
}

fn state_name(s: AuthorizerState) -> &'static str {
    match s {
        AuthorizerState::Authorized => "authorized",
        AuthorizerState::Unauthorized => "unauthorized (the merchant cancelled the authorization)",
        AuthorizerState::NeedsReauth => {
            "needs_reauth (its refresh token is invalid; the merchant must authorize again)"
        }
    }
}

/// The authorizer's record, if it is known and `authorized`: the check every feature makes
/// before acting for a merchant.
pub async fn authorized_record<S: AuthorizerStore>(
    store: &S,
    appid: &str,
) -> Result<AuthorizerRecord, TokenError> {
    let record = store
        .get_authorizer(appid)
        .await?
        .ok_or(TokenError::UnknownAuthorizer)?;
    if record.state != AuthorizerState::Authorized {
        return Err(TokenError::NotAuthorized(record.state));
    }
    Ok(record)
}

/// A token handed to a caller, with the version to quote when WeChat rejects it.
#[derive(Debug, Clone)]
pub struct VendedToken {
    pub token: SecretString,
    pub version: u64,
    pub expires_at: i64,
}

/// Counts kept while the service works (the refresher reports them as metrics).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Counters {
    pub wechat_token_calls: u64,
    pub refreshed: u64,
    pub lost_leases: u64,
    /// Refresh tokens kept from refreshes whose commit lost its lease.
    pub refresh_tokens_kept: u64,
}

/// The shortest and longest wait before a failing token is tried again.
pub const BACKOFF_MIN_SECS: i64 = 60;
pub const BACKOFF_MAX_SECS: i64 = 3600;

/// Most `api_get_authorizer_list` pages (500 each) one recovery reads.
pub const MAX_LIST_PAGES: u32 = 40;

/// The reason recorded on an authorizer recovery found unlisted.
/// What [`TokenService::recover_refresh_tokens`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recovery {
    /// Refresh tokens restored from `api_get_authorizer_list`.
    pub restored: Vec<String>,
    /// Authorizers WeChat no longer lists, marked unauthorized ([`REVOKED_UNLISTED`]).
    pub revoked: Vec<String>,
}

pub const REVOKED_UNLISTED: &str = "refresh token rejected (61023) and not listed by api_get_authorizer_list: the merchant cancelled the authorization";

/// WeChat calls that failed in a retryable way (-1, timeouts, 5xx) are tried this often in all.
pub const RETRY_ATTEMPTS: u32 = 2;
const RETRY_BACKOFF_MS: u64 = 200;
const RETRY_BACKOFF: Duration = Duration::from_millis(RETRY_BACKOFF_MS);
/// What a lease keeps beyond the WeChat calls (store writes, scheduling).
const LEASE_MARGIN_MS: u64 = 5_000;

pub(crate) fn new_owner() -> String {
    format!("{:016x}", rand::random::<u64>())
}

/// The token service over the store, WeChat, the credentials and a clock.
pub struct TokenService<'a, S, C, K> {
    pub store: &'a S,
    pub wechat: &'a WeChatClient,
    pub credentials: &'a C,
    pub clock: &'a K,
    pub settings: TokenSettings,
    /// The component token as last seen in this invocation (saves a read per authorizer refresh).
    component_cache: Mutex<Option<VendedToken>>,
    counters: std::sync::Mutex<Counters>,
}

impl<'a, S, C, K> TokenService<'a, S, C, K>
where
    S: TokenServiceStore,
    C: CredentialsProvider,
    K: Clock,
{
    pub fn new(
        store: &'a S,
        wechat: &'a WeChatClient,
        credentials: &'a C,
        clock: &'a K,
        settings: TokenSettings,
    ) -> Self {
        Self {
            store,
            wechat,
            credentials,
            clock,
            settings,
            component_cache: Mutex::new(None),
            counters: std::sync::Mutex::new(Counters::default()),
        }
    }

    pub fn counters(&self) -> Counters {
        self.counters.lock().map(|c| c.clone()).unwrap_or_default()
    }

    fn count(&self, f: impl FnOnce(&mut Counters)) {
        if let Ok(mut c) = self.counters.lock() {
            f(&mut c);
        }
    }

    fn usable(&self, t: &TokenRecord) -> Option<VendedToken> {
        let token = t.access_token.as_ref()?;
        (t.expires_at > self.clock.now() + self.settings.min_remaining_secs).then(|| VendedToken {
            token: token.expose_secret().into(),
            version: t.version,
            expires_at: t.expires_at,
        })
    }

    /// Reads a token, checking the authorizer's state.
    async fn read(&self, key: &TokenKey) -> Result<Option<TokenRecord>, TokenError> {
        let record = self.store.get_token(key).await?;
        if let TokenKey::Authorizer(_) = key {
            match record.as_ref().and_then(|r| r.state) {
                None => return Err(TokenError::UnknownAuthorizer),
                Some(AuthorizerState::Authorized) => {}
                Some(other) => return Err(TokenError::NotAuthorized(other)),
            }
        }
        Ok(record)
    }

    /// The current token. With `stale_version = Some(v)` (the caller saw 40001/42001 on version
    /// `v`): the newer stored token if there is one, else a refresh of `v`.
    pub async fn token(
        &self,
        key: &TokenKey,
        stale_version: Option<u64>,
    ) -> Result<VendedToken, TokenError> {
        let record = self.read(key).await?;
        let version = record.as_ref().map_or(0, |r| r.version);
        let usable = record.as_ref().and_then(|r| self.usable(r));
        match stale_version {
            Some(asked) if asked > version => {
                return Err(TokenError::VersionAhead {
                    asked,
                    stored: version,
                });
            }
            // The caller saw this very version fail: refresh it, unless it is brand new.
            Some(asked) if asked == version => {
                let recent = record.as_ref().is_some_and(|r| {
                    r.refreshed_at + self.settings.min_refresh_interval_secs > self.clock.now()
                });
                if let Some(t) = usable.filter(|_| recent) {
                    tracing::info!(
                        token = key.label(),
                        version,
                        "forced refresh refused: the token was refreshed moments ago"
                    );
                    return Ok(t);
                }
            }
            // No complaint, or about an older version: the stored token if it is usable.
            _ => {
                if let Some(t) = usable {
                    return Ok(t);
                }
            }
        }
        self.refresh(key, version).await
    }

    pub async fn component_token(
        &self,
        stale_version: Option<u64>,
    ) -> Result<VendedToken, TokenError> {
        if stale_version.is_none()
            && let Some(t) = self.component_cache.lock().await.as_ref()
            && t.expires_at > self.clock.now() + self.settings.min_remaining_secs
        {
            return Ok(t.clone());
        }
        // Boxed: an authorizer refresh needs the component token, which may itself refresh.
        let t = Box::pin(self.token(&TokenKey::Component, stale_version)).await?;
        *self.component_cache.lock().await = Some(t.clone());
        Ok(t)
    }

    pub async fn authorizer_token(
        &self,
        appid: &str,
        stale_version: Option<u64>,
    ) -> Result<VendedToken, TokenError> {
        self.token(&TokenKey::Authorizer(appid.to_string()), stale_version)
            .await
    }

    /// Calls WeChat with the component token; if WeChat rejects it (40001/40014/42001), asks for
    /// a refresh of *that* version and retries once. The one stale-token retry every feature
    /// uses for component APIs.
    pub async fn with_component_token<T, F, Fut>(&self, call: F) -> Result<T, TokenError>
    where
        F: Fn(SecretString) -> Fut,
        Fut: Future<Output = Result<T, WeChatError>>,
    {
        let token = self.component_token(None).await?;
        match call(token.token).await {
            Err(e) if e.is_token_stale() => {
                tracing::warn!(
                    version = token.version,
                    "component token rejected; refreshing that version once"
                );
                let fresh = self.component_token(Some(token.version)).await?;
                Ok(call(fresh.token).await?)
            }
            other => Ok(other?),
        }
    }

    /// [`Self::with_component_token`] for an authorizer's token.
    pub async fn with_authorizer_token<T, F, Fut>(
        &self,
        appid: &str,
        call: F,
    ) -> Result<T, TokenError>
    where
        F: Fn(SecretString) -> Fut,
        Fut: Future<Output = Result<T, WeChatError>>,
    {
        let token = self.authorizer_token(appid, None).await?;
        match call(token.token).await {
            Err(e) if e.is_token_stale() => {
                tracing::warn!(
                    authorizer = appid,
                    version = token.version,
                    "authorizer token rejected; refreshing that version once"
                );
                let fresh = self.authorizer_token(appid, Some(token.version)).await?;
                Ok(call(fresh.token).await?)
            }
            other => Ok(other?),
        }
    }

    /// Refreshes the token at `version` once: exactly one worker calls WeChat; the others wait
    /// (within the budget) and get its result.
    pub async fn refresh(&self, key: &TokenKey, version: u64) -> Result<VendedToken, TokenError> {
        let deadline = Instant::now() + self.settings.wait_budget;
        let mut version = version;
        loop {
            match self.try_refresh(key, version).await? {
                Some(t) => return Ok(t),
                None => {
                    let record = self.read(key).await?;
                    let current = record.as_ref().map_or(0, |r| r.version);
                    if current > version {
                        if let Some(t) = record.as_ref().and_then(|r| self.usable(r)) {
                            return Ok(t);
                        }
                        version = current;
                        continue;
                    }
                    if Instant::now() >= deadline {
                        return Err(TokenError::Busy);
                    }
                    tokio::time::sleep(self.settings.poll).await;
                }
            }
        }
    }

    /// Refreshes the token at `version` if this worker can take the lease now; `None` when
    /// another worker holds it or the version moved on (the scheduled refresher skips those).
    pub async fn try_refresh(
        &self,
        key: &TokenKey,
        version: u64,
    ) -> Result<Option<VendedToken>, TokenError> {
        let owner = new_owner();
        let now = self.clock.now();
        match self
            .store
            .acquire_lease(key, version, &owner, now, now + self.settings.lease_secs)
            .await?
        {
            LeaseOutcome::Acquired => self.refresh_leased(key, version, &owner).await.map(Some),
            LeaseOutcome::Conflict => Ok(None),
        }
    }

    async fn refresh_leased(
        &self,
        key: &TokenKey,
        version: u64,
        owner: &str,
    ) -> Result<VendedToken, TokenError> {
        let result = match key {
            TokenKey::Component => self.fetch_component_token().await,
            TokenKey::Authorizer(appid) => self.fetch_authorizer_token(appid, owner).await,
        };
        let new = match result {
            Ok(new) => new,
            Err(e) => {
                // Best effort: the lease expires by itself anyway.
                if let Err(release) = self.store.release_lease(key, owner).await {
                    tracing::warn!(error = %release, "could not release a refresh lease");
                }
                return Err(e);
            }
        };
        match self.store.commit_token(key, owner, version, &new).await? {
            CommitOutcome::Committed(v) => {
                self.count(|c| c.refreshed += 1);
                tracing::info!(token = key.label(), version = v, "token refreshed");
                Ok(VendedToken {
                    token: new.access_token,
                    version: v,
                    expires_at: new.expires_at,
                })
            }
            CommitOutcome::LostLease => {
                self.count(|c| c.lost_leases += 1);
                tracing::warn!(
                    token = key.label(),
                    "refresh lease lost before commit; using the stored token"
                );
                // WeChat may have issued a new refresh token with this call: never drop it.
                if let (TokenKey::Authorizer(appid), Some(refresh)) = (key, &new.refresh_token) {
                    match self.store.keep_refresh_token(appid, version, refresh).await {
                        Ok(kept) => {
                            if kept {
                                self.count(|c| c.refresh_tokens_kept += 1);
                            }
                            tracing::info!(authorizer = %appid, kept, "refresh token of a lost lease");
                        }
                        Err(e) => {
                            tracing::error!(error = %e, authorizer = %appid, "refresh token of a lost lease not kept");
                        }
                    }
                }
                self.read(key)
                    .await?
                    .as_ref()
                    .and_then(|r| self.usable(r))
                    .ok_or(TokenError::Busy)
            }
        }
    }

    async fn fetch_component_token(&self) -> Result<NewToken, TokenError> {
        let creds = self.credentials.credentials().await?;
        let ticket = self.store.get_ticket().await?.ok_or(TokenError::NoTicket)?;
        // Lifetimes count from before the call: conservative.
        let started = self.clock.now();
        let mut attempt = 1;
        let result = loop {
            self.count(|c| c.wechat_token_calls += 1);
            match self
                .wechat
                .component_token(
                    &creds.component_appid,
                    &creds.component_appsecret,
                    &ticket.ticket,
                )
                .await
            {
                Err(e) if e.is_retryable() && attempt < RETRY_ATTEMPTS => {
                    attempt += 1;
                    tracing::warn!(error = %e, "component token call failed; retrying once");
                    tokio::time::sleep(RETRY_BACKOFF).await;
                }
                other => break other,
            }
        };
        match result {
            Ok(t) => Ok(NewToken {
                access_token: t.token,
                expires_at: started + t.expires_in,
                refresh_token: None,
            }),
            Err(e) => {
                if e.kind() == Some(ErrorKind::TicketInvalid) {
                    tracing::error!(
                        errcode = e.errcode(),
                        "component ticket rejected; asking WeChat to push a new one"
                    );
                    self.ask_for_ticket(&creds).await;
                }
                Err(e.into())
            }
        }
    }

    /// `api_start_push_ticket`, best effort (the alarm is the log line).
    pub async fn ask_for_ticket(&self, creds: &ComponentCredentials) {
        if let Err(e) = self
            .wechat
            .start_push_ticket(&creds.component_appid, &creds.component_appsecret)
            .await
        {
            tracing::error!(error = %e, "api_start_push_ticket failed");
        }
    }

    async fn fetch_authorizer_token(
        &self,
        appid: &str,
        owner: &str,
    ) -> Result<NewToken, TokenError> {
        let key = TokenKey::Authorizer(appid.to_string());
        let record = self
            .read(&key)
            .await?
            .ok_or(TokenError::UnknownAuthorizer)?;
        let refresh = record
            .refresh_token
            .as_ref()
            .ok_or(TokenError::NotAuthorized(AuthorizerState::NeedsReauth))?;
        let creds = self.credentials.credentials().await?;
        let mut attempt = 1;
        let result = loop {
            let now = self.clock.now();
            let called = self
                .with_component_token(|component| {
                    self.count(|c| c.wechat_token_calls += 1);
                    let component_appid = &creds.component_appid;
                    async move {
                        self.wechat
                            .authorizer_token(&component, component_appid, appid, refresh)
                            .await
                    }
                })
                .await;
            match called {
                Err(TokenError::WeChat(e)) if e.is_retryable() && attempt < RETRY_ATTEMPTS => {
                    attempt += 1;
                    tracing::warn!(error = %e, authorizer = appid, "authorizer token call failed; retrying once");
                    tokio::time::sleep(RETRY_BACKOFF).await;
                }
                other => break other.map(|t| (now, t)),
            }
        };
        match result {
            Ok((now, t)) => Ok(NewToken {
                access_token: t.authorizer_access_token,
                expires_at: now + t.expires_in,
                refresh_token: Some(t.authorizer_refresh_token),
            }),
            Err(TokenError::WeChat(e)) if e.kind() == Some(ErrorKind::RefreshTokenInvalid) => {
                tracing::error!(
                    authorizer = appid,
                    "refresh token rejected (61023); marking needs_reauth"
                );
                self.store
                    .mark_needs_reauth(appid, owner, self.clock.now())
                    .await?;
                Err(e.into())
            }
            Err(e) => Err(e),
        }
    }

    /// Pages through `api_get_authorizer_list` until every appid in `wanted` is found, the
    /// list ends, or [`MAX_LIST_PAGES`] pages were read; returns the refresh tokens found and
    /// whether the whole list was read (only then is an appid still in `wanted` truly unlisted).
    /// Removes the found appids from `wanted`.
    pub(crate) async fn listed_refresh_tokens(
        &self,
        component_token: &SecretString,
        component_appid: &str,
        wanted: &mut Vec<String>,
    ) -> Result<(Vec<(String, SecretString)>, bool), TokenError> {
        const PAGE: u32 = 500;
        let mut found = Vec::new();
        let mut offset = 0u32;
        let mut pages = 0;
        let mut complete = false;
        while !wanted.is_empty() {
            if pages >= MAX_LIST_PAGES {
                tracing::warn!(
                    pages,
                    "api_get_authorizer_list walk stopped at its bound for this run"
                );
                break;
            }
            pages += 1;
            let page = self
                .wechat
                .get_authorizer_list(component_token, component_appid, offset, PAGE)
                .await?;
            for entry in page.list.iter() {
                if let Some(pos) = wanted.iter().position(|a| *a == entry.authorizer_appid) {
                    found.push((wanted.swap_remove(pos), entry.refresh_token.clone()));
                }
            }
            let fetched = u32::try_from(page.list.len()).unwrap_or(PAGE);
            offset = offset.saturating_add(fetched);
            if fetched == 0 || offset >= page.total_count {
                complete = true;
                break;
            }
        }
        Ok((found, complete || wanted.is_empty()))
    }

    /// After a refresh of `version` failed with `e`: if a retry will not fix it (a WeChat
    /// errcode other than the stale-token, refresh-token and retryable ones), records `label`
    /// and backs off: the token is due again after the time it has been failing (so the waits
    /// double), at least [`BACKOFF_MIN_SECS`], at most [`BACKOFF_MAX_SECS`]. `window_secs` is
    /// the refresher's look-ahead (a token is picked `window_secs` before its `due_at`).
    pub async fn back_off(
        &self,
        key: &TokenKey,
        version: u64,
        e: &TokenError,
        label: &str,
        window_secs: i64,
    ) -> Result<(), TokenError> {
        let TokenError::WeChat(w) = e else {
            return Ok(());
        };
        if w.is_retryable()
            || w.is_token_stale()
            || w.kind() == Some(ErrorKind::RefreshTokenInvalid)
            || w.errcode().is_none()
        {
            return Ok(());
        }
        let now = self.clock.now();
        let since = self
            .store
            .get_token(key)
            .await?
            .and_then(|r| r.failing_since)
            .unwrap_or(now);
        let wait = (now - since).clamp(BACKOFF_MIN_SECS, BACKOFF_MAX_SECS);
        tracing::warn!(
            token = key.label(),
            error = label,
            retry_in_secs = wait,
            "refresh failing; backing off"
        );
        self.store
            .defer_refresh(key, version, label, now, now + wait + window_secs)
            .await?;
        Ok(())
    }

    /// Looks the `needs_reauth` authorizers up in `api_get_authorizer_list` and restores the
    /// refresh tokens WeChat still lists; those it does not list (the whole list read) are
    /// marked unauthorized.
    pub async fn recover_refresh_tokens(&self) -> Result<Recovery, TokenError> {
        let mut missing = self.store.needs_reauth().await?;
        if missing.is_empty() {
            return Ok(Recovery::default());
        }
        let creds = self.credentials.credentials().await?;
        let component = self.component_token(None).await?;
        let (found, complete) = self
            .listed_refresh_tokens(&component.token, &creds.component_appid, &mut missing)
            .await?;
        let mut restored = Vec::new();
        for (appid, refresh_token) in found {
            if self
                .store
                .restore_refresh_token(&appid, &refresh_token, self.clock.now())
                .await?
                == EventApplied::Applied
            {
                tracing::info!(authorizer = %appid, "refresh token recovered from api_get_authorizer_list");
                restored.push(appid);
            }
        }
        let mut recovery = Recovery {
            restored,
            revoked: Vec::new(),
        };
        if !complete {
            // The walk stopped at its bound: the rest may be further down the list.
            return Ok(recovery);
        }
        for appid in &missing {
            // WeChat read the whole list and does not have it: the merchant cancelled (the
            // unauthorized push never came). Out of the recovery partition for good.
            let applied = self
                .store
                .mark_revoked(appid, REVOKED_UNLISTED, self.clock.now())
                .await?;
            if applied == EventApplied::Applied {
                tracing::error!(authorizer = %appid, "authorizer no longer listed by WeChat; marked unauthorized");
                recovery.revoked.push(appid.clone());
            }
        }
        Ok(recovery)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Fault: the lease was a fixed 30 s whatever `WECHAT_TIMEOUT_MS` said, so with a 10 s
    /// timeout a refresh that retried could outlive its lease and lose its write.
    #[test]
    fn the_lease_covers_every_call_of_a_refresh() {
        for timeout_ms in [100u64, 4_000, 10_000, 60_000] {
            let s = TokenSettings::for_wechat_timeout(Duration::from_millis(timeout_ms));
            let calls = 2 * u64::from(RETRY_ATTEMPTS);
            let needed_ms = calls * timeout_ms + 2 * RETRY_BACKOFF_MS;
            assert!(
                u64::try_from(s.lease_secs).unwrap() * 1000 > needed_ms,
                "timeout {timeout_ms} ms: lease {} s",
                s.lease_secs
            );
            assert!(s.lease_secs >= 30);
        }
    }
}
