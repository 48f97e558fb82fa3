//! The warm Lambda's token cache: the steady state costs no DynamoDB read per forwarded call.
//!
//! * An entry is served while the token has `min_remaining_secs` to live and was read at most
//!   `max_age_secs` ago (the age bound is how soon a warm instance notices that an authorizer
//!   was unauthorized without WeChat saying so first).
//! * A token error invalidates the version that failed; the next lookup asks the token service
//!   for a refresh of *that version* (the stale-version protocol: one worker refreshes, the rest
//!   get its result).
//! * Lookups of one key that miss are single-flight: concurrent callers in one process wait for
//!   the first one's answer instead of each reading the store (and each asking for a refresh).
//! * Bounded in size; a full cache drops stale entries first, then the oldest.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::clock::Clock;
use crate::model::TokenKey;
use crate::tokens::{TokenError, VendedToken};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheSettings {
    /// How long a token read from the store is reused (0: never).
    pub max_age_secs: i64,
    /// A token is served only while it has at least this long to live.
    pub min_remaining_secs: i64,
    pub max_entries: usize,
}

impl Default for CacheSettings {
    fn default() -> Self {
        Self {
            max_age_secs: 300,
            // The token service's own margin (`TokenSettings::min_remaining_secs`).
            min_remaining_secs: 60,
            max_entries: 10_000,
        }
    }
}

struct Entry {
    token: VendedToken,
    cached_at: i64,
}

/// Concurrency-safe; share one per process. `Debug` shows sizes only.
pub struct TokenCache {
    settings: CacheSettings,
    entries: Mutex<HashMap<TokenKey, Entry>>,
    flights: Mutex<HashMap<TokenKey, Arc<tokio::sync::Mutex<()>>>>,
}

impl std::fmt::Debug for TokenCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenCache")
            .field("settings", &self.settings)
            .field("entries", &self.len())
            .finish_non_exhaustive()
    }
}

/// Where a token came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Cache,
    TokenService,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Nothing panics while holding these locks; recover the data if that ever changes.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl TokenCache {
    pub fn new(settings: CacheSettings) -> Self {
        Self {
            settings,
            entries: Mutex::new(HashMap::new()),
            flights: Mutex::new(HashMap::new()),
        }
    }

    pub fn settings(&self) -> &CacheSettings {
        &self.settings
    }

    pub fn len(&self) -> usize {
        lock(&self.entries).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn fresh(&self, e: &Entry, now: i64) -> bool {
        e.token.expires_at > now.saturating_add(self.settings.min_remaining_secs)
            && now < e.cached_at.saturating_add(self.settings.max_age_secs)
            && now >= e.cached_at
    }

    /// The cached token for `key` if fresh (and, with `stale = Some(v)`, newer than `v`).
    pub fn get(&self, key: &TokenKey, now: i64, stale: Option<u64>) -> Option<VendedToken> {
        let entries = lock(&self.entries);
        entries
            .get(key)
            .filter(|e| self.fresh(e, now) && stale.is_none_or(|v| e.token.version > v))
            .map(|e| e.token.clone())
    }

    /// Caches `token` unless a newer version is already cached.
    pub fn put(&self, key: &TokenKey, token: VendedToken, now: i64) {
        if self.settings.max_age_secs <= 0 || self.settings.max_entries == 0 {
            return;
        }
        let mut entries = lock(&self.entries);
        if entries
            .get(key)
            .is_some_and(|e| e.token.version > token.version)
        {
            return;
        }
        if !entries.contains_key(key) && entries.len() >= self.settings.max_entries {
            entries.retain(|_, e| self.fresh(e, now));
            if entries.len() >= self.settings.max_entries
                && let Some(oldest) = entries
                    .iter()
                    .min_by_key(|(_, e)| e.cached_at)
                    .map(|(k, _)| k.clone())
            {
                entries.remove(&oldest);
            }
        }
        entries.insert(
            key.clone(),
            Entry {
                token,
                cached_at: now,
            },
        );
    }

    /// Drops the entry for `key` if its version is `version` or older (WeChat rejected it).
    pub fn invalidate(&self, key: &TokenKey, version: u64) {
        let mut entries = lock(&self.entries);
        if entries.get(key).is_some_and(|e| e.token.version <= version) {
            entries.remove(key);
        }
    }

    fn flight(&self, key: &TokenKey) -> Arc<tokio::sync::Mutex<()>> {
        lock(&self.flights).entry(key.clone()).or_default().clone()
    }

    fn land(&self, key: &TokenKey, flight: Arc<tokio::sync::Mutex<()>>) {
        let mut flights = lock(&self.flights);
        // Ours and the map's: nobody else is waiting on this key.
        if Arc::strong_count(&flight) <= 2 {
            flights.remove(key);
        }
    }

    /// The token for `key`: from the cache when fresh, else from `fetch` (the token service,
    /// asked with the same `stale` version), one fetch per key at a time in this process.
    pub async fn get_or_fetch<K, F, Fut>(
        &self,
        key: &TokenKey,
        stale: Option<u64>,
        clock: &K,
        fetch: F,
    ) -> Result<(VendedToken, Source), TokenError>
    where
        K: Clock,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<VendedToken, TokenError>>,
    {
        if let Some(t) = self.get(key, clock.now(), stale) {
            return Ok((t, Source::Cache));
        }
        let flight = self.flight(key);
        let result = {
            let _turn = flight.lock().await;
            match self.get(key, clock.now(), stale) {
                Some(t) => Ok((t, Source::Cache)),
                None => {
                    let fetched = fetch().await;
                    if let Ok(t) = &fetched {
                        self.put(key, t.clone(), clock.now());
                    }
                    fetched.map(|t| (t, Source::TokenService))
                }
            }
        };
        self.land(key, flight);
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::FixedClock;
    use secrecy::ExposeSecret;
    use std::sync::atomic::{AtomicU32, Ordering};

    fn token(v: u64, expires_at: i64) -> VendedToken {
        VendedToken {
            token: format!("token-v{v}").into(),
            version: v,
            expires_at,
        }
    }

    fn key() -> TokenKey {
        TokenKey::Authorizer("wx0000000000000001".into())
    }

    #[test]
    fn entries_are_bounded_by_expiry_and_age() {
        let c = TokenCache::new(CacheSettings {
            max_age_secs: 300,
            min_remaining_secs: 60,
            max_entries: 10,
        });
        c.put(&key(), token(1, 1_000), 100);
        assert_eq!(c.get(&key(), 100, None).map(|t| t.version), Some(1));
        assert_eq!(c.get(&key(), 399, None).map(|t| t.version), Some(1));
        assert!(c.get(&key(), 400, None).is_none(), "older than max_age");
        c.put(&key(), token(1, 1_000), 900);
        assert!(c.get(&key(), 940, None).is_none(), "under 60 s to live");
        assert!(c.get(&key(), 899, None).is_none(), "clock went backwards");
    }

    #[test]
    fn stale_versions_are_not_served_and_newer_ones_win() {
        let c = TokenCache::new(CacheSettings::default());
        c.put(&key(), token(2, 10_000), 0);
        c.put(&key(), token(1, 10_000), 1);
        assert_eq!(c.get(&key(), 2, None).map(|t| t.version), Some(2));
        assert!(c.get(&key(), 2, Some(2)).is_none());
        assert_eq!(c.get(&key(), 2, Some(1)).map(|t| t.version), Some(2));
        c.invalidate(&key(), 1);
        assert!(c.get(&key(), 2, None).is_some(), "a newer version survives");
        c.invalidate(&key(), 2);
        assert!(c.get(&key(), 2, None).is_none());
    }

    #[test]
    fn size_is_bounded() {
        let c = TokenCache::new(CacheSettings {
            max_entries: 3,
            ..CacheSettings::default()
        });
        for i in 0..10 {
            c.put(
                &TokenKey::Authorizer(format!("wx{i:016}")),
                token(1, 10_000),
                i,
            );
        }
        assert_eq!(c.len(), 3);
        assert!(
            c.get(&TokenKey::Authorizer(format!("wx{:016}", 9)), 10, None)
                .is_some()
        );
        let off = TokenCache::new(CacheSettings {
            max_age_secs: 0,
            ..CacheSettings::default()
        });
        off.put(&key(), token(1, 10_000), 0);
        assert!(off.is_empty());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_misses_fetch_once() {
        let c = Arc::new(TokenCache::new(CacheSettings::default()));
        let clock = Arc::new(FixedClock::new(0));
        let fetches = Arc::new(AtomicU32::new(0));
        let tasks: Vec<_> = (0..20)
            .map(|_| {
                let (c, clock, fetches) = (c.clone(), clock.clone(), fetches.clone());
                tokio::spawn(async move {
                    c.get_or_fetch(&key(), Some(1), clock.as_ref(), || async {
                        fetches.fetch_add(1, Ordering::SeqCst);
                        tokio::task::yield_now().await;
                        Ok(token(2, 10_000))
                    })
                    .await
                })
            })
            .collect();
        let mut from_service = 0;
        for t in tasks {
            let (tok, source) = t.await.unwrap().unwrap();
            assert_eq!(tok.token.expose_secret(), "token-v2");
            from_service += u32::from(source == Source::TokenService);
        }
        assert_eq!(fetches.load(Ordering::SeqCst), 1);
        assert_eq!(from_service, 1);
        assert!(lock(&c.flights).is_empty(), "flights are cleaned up");
    }

    #[tokio::test]
    async fn a_failed_fetch_caches_nothing() {
        let c = TokenCache::new(CacheSettings::default());
        let clock = FixedClock::new(0);
        let r = c
            .get_or_fetch(&key(), None, &clock, || async { Err(TokenError::Busy) })
            .await;
        assert!(matches!(r, Err(TokenError::Busy)));
        assert!(c.is_empty());
        let (t, s) = c
            .get_or_fetch(&key(), None, &clock, || async { Ok(token(3, 10_000)) })
            .await
            .unwrap();
        assert_eq!((t.version, s), (3, Source::TokenService));
        let (_, s) = c
            .get_or_fetch(&key(), None, &clock, || async { Err(TokenError::Busy) })
            .await
            .unwrap();
        assert_eq!(s, Source::Cache);
    }
}
