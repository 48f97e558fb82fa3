//! In-memory adapter with the same conditional semantics as DynamoDB (unit tests, local runs).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, MutexGuard};

use secrecy::ExposeSecret;

use super::*;

#[derive(Debug, Default)]
struct AuthorizerEntry {
    record: Option<AuthorizerRecord>,
    token: TokenRecord,
}

#[derive(Debug, Default)]
struct State {
    ticket: Option<StoredTicket>,
    pushes: HashMap<String, PushRecord>,
    pending: BTreeMap<String, PendingAuthorization>,
    component_token: Option<TokenRecord>,
    authorizers: HashMap<String, AuthorizerEntry>,
    codes: HashMap<String, CodeEntry>,
    sessions: HashMap<String, LoginSession>,
    identities: BTreeMap<(String, String), (String, i64)>,
}

#[derive(Debug, Clone)]
struct CodeEntry {
    owner: String,
    until: i64,
    done_for: Option<String>,
}

impl State {
    fn token_mut(&mut self, key: &TokenKey) -> Option<&mut TokenRecord> {
        match key {
            TokenKey::Component => self.component_token.as_mut(),
            TokenKey::Authorizer(appid) => self
                .authorizers
                .get_mut(appid)
                .filter(|e| e.record.is_some())
                .map(|e| &mut e.token),
        }
    }
}

#[derive(Debug, Default)]
pub struct MemoryStore {
    state: Mutex<State>,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A poisoned lock only means another test thread panicked; the data is still usable.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A count of items, for "nothing changed" assertions.
    pub fn item_count(&self) -> usize {
        let s = self.lock();
        usize::from(s.ticket.is_some())
            + s.pushes.len()
            + s.pending.len()
            + usize::from(s.component_token.is_some())
            + s.authorizers
                .values()
                .filter(|e| e.record.is_some())
                .count()
    }
}

fn clone_secret(s: &SecretString) -> SecretString {
    s.expose_secret().into()
}

impl TicketStore for MemoryStore {
    async fn put_ticket(&self, ticket: &StoredTicket) -> Result<TicketWrite, StoreError> {
        let mut s = self.lock();
        if s.ticket
            .as_ref()
            .is_some_and(|t| t.create_time >= ticket.create_time)
        {
            return Ok(TicketWrite::NotNewer);
        }
        s.ticket = Some(ticket.clone());
        Ok(TicketWrite::Stored)
    }

    async fn get_ticket(&self) -> Result<Option<StoredTicket>, StoreError> {
        Ok(self.lock().ticket.clone())
    }
}

impl PushStore for MemoryStore {
    async fn claim_push(&self, key: &str, kind: &str, now: i64) -> Result<PushClaim, StoreError> {
        let mut s = self.lock();
        if let Some(existing) = s.pushes.get(key) {
            return Ok(match existing.status {
                PushStatus::Done => PushClaim::Done,
                PushStatus::Received => PushClaim::Unfinished,
            });
        }
        s.pushes.insert(
            key.to_string(),
            PushRecord {
                key: key.to_string(),
                kind: kind.to_string(),
                status: PushStatus::Received,
                received_at: now,
                ttl: now + PUSH_RECORD_TTL_SECS,
            },
        );
        Ok(PushClaim::New)
    }

    async fn complete_push(&self, key: &str) -> Result<(), StoreError> {
        if let Some(r) = self.lock().pushes.get_mut(key) {
            r.status = PushStatus::Done;
        }
        Ok(())
    }

    async fn get_push(&self, key: &str) -> Result<Option<PushRecord>, StoreError> {
        Ok(self.lock().pushes.get(key).cloned())
    }
}

impl AuthorizerStore for MemoryStore {
    async fn put_pending_authorization(
        &self,
        pending: &PendingAuthorization,
    ) -> Result<EventApplied, StoreError> {
        let mut s = self.lock();
        if s.pending
            .get(&pending.authorizer_appid)
            .is_some_and(|p| p.create_time >= pending.create_time)
        {
            return Ok(EventApplied::Superseded);
        }
        s.pending
            .insert(pending.authorizer_appid.clone(), pending.clone());
        Ok(EventApplied::Applied)
    }

    async fn list_pending_authorizations(&self) -> Result<Vec<PendingAuthorization>, StoreError> {
        Ok(self.lock().pending.values().cloned().collect())
    }

    async fn mark_unauthorized(
        &self,
        appid: &str,
        event_time: i64,
        now: i64,
    ) -> Result<EventApplied, StoreError> {
        let mut s = self.lock();
        let entry = s.authorizers.entry(appid.to_string()).or_default();
        if entry
            .record
            .as_ref()
            .is_some_and(|a| a.last_event_at > event_time)
        {
            return Ok(EventApplied::Superseded);
        }
        let record = entry.record.get_or_insert_with(|| AuthorizerRecord {
            appid: appid.to_string(),
            state: AuthorizerState::Unauthorized,
            last_event_at: event_time,
            updated_at: now,
            func_info: Vec::new(),
            open_appid: None,
            authorized_at: None,
            profile: None,
        });
        record.state = AuthorizerState::Unauthorized;
        record.last_event_at = event_time;
        record.updated_at = now;
        let version = entry.token.version;
        entry.token = TokenRecord {
            version,
            expires_at: entry.token.expires_at,
            state: Some(AuthorizerState::Unauthorized),
            ..TokenRecord::default()
        };
        if s.pending
            .get(appid)
            .is_some_and(|p| p.create_time <= event_time)
        {
            s.pending.remove(appid);
        }
        Ok(EventApplied::Applied)
    }

    async fn get_authorizer(&self, appid: &str) -> Result<Option<AuthorizerRecord>, StoreError> {
        Ok(self
            .lock()
            .authorizers
            .get(appid)
            .and_then(|e| e.record.clone()))
    }
}

fn is_authorizer(key: &TokenKey) -> bool {
    matches!(key, TokenKey::Authorizer(_))
}

impl TokenStore for MemoryStore {
    async fn get_token(&self, key: &TokenKey) -> Result<Option<TokenRecord>, StoreError> {
        Ok(self.lock().token_mut(key).map(|t| t.clone()))
    }

    async fn acquire_lease(
        &self,
        key: &TokenKey,
        expected_version: u64,
        owner: &str,
        now: i64,
        until: i64,
    ) -> Result<LeaseOutcome, StoreError> {
        let mut s = self.lock();
        if *key == TokenKey::Component && s.component_token.is_none() && expected_version == 0 {
            s.component_token = Some(TokenRecord::default());
        }
        let Some(t) = s.token_mut(key) else {
            return Ok(LeaseOutcome::Conflict);
        };
        let authorized_ok = !is_authorizer(key) || t.state == Some(AuthorizerState::Authorized);
        if t.version != expected_version
            || t.lease_until >= now && t.lease_owner.is_some()
            || !authorized_ok
        {
            return Ok(LeaseOutcome::Conflict);
        }
        t.lease_owner = Some(owner.to_string());
        t.lease_until = until;
        Ok(LeaseOutcome::Acquired)
    }

    async fn commit_token(
        &self,
        key: &TokenKey,
        owner: &str,
        expected_version: u64,
        token: &NewToken,
    ) -> Result<CommitOutcome, StoreError> {
        let mut s = self.lock();
        let Some(t) = s.token_mut(key) else {
            return Ok(CommitOutcome::LostLease);
        };
        let authorized_ok = !is_authorizer(key) || t.state == Some(AuthorizerState::Authorized);
        if t.lease_owner.as_deref() != Some(owner)
            || t.version != expected_version
            || !authorized_ok
        {
            return Ok(CommitOutcome::LostLease);
        }
        t.access_token = Some(clone_secret(&token.access_token));
        t.expires_at = token.expires_at;
        t.version = expected_version + 1;
        if let Some(r) = &token.refresh_token {
            t.refresh_token = Some(clone_secret(r));
        }
        t.lease_owner = None;
        t.lease_until = 0;
        Ok(CommitOutcome::Committed(expected_version + 1))
    }

    async fn release_lease(&self, key: &TokenKey, owner: &str) -> Result<(), StoreError> {
        if let Some(t) = self.lock().token_mut(key)
            && t.lease_owner.as_deref() == Some(owner)
        {
            t.lease_owner = None;
            t.lease_until = 0;
        }
        Ok(())
    }

    async fn due_tokens(&self, before: i64, limit: usize) -> Result<Vec<DueToken>, StoreError> {
        let s = self.lock();
        let component = s
            .component_token
            .iter()
            .filter(|t| t.access_token.is_some())
            .map(|t| (TokenKey::Component, t));
        let authorizers = s
            .authorizers
            .iter()
            .filter(|(_, e)| {
                e.record.is_some() && e.token.state == Some(AuthorizerState::Authorized)
            })
            .map(|(appid, e)| (TokenKey::Authorizer(appid.clone()), &e.token));
        let mut due: Vec<DueToken> = component
            .chain(authorizers)
            .filter(|(_, t)| t.expires_at <= before)
            .map(|(key, t)| DueToken {
                key,
                version: t.version,
                due_at: t.expires_at,
            })
            .collect();
        due.sort_by(|a, b| (a.due_at, &a.key).cmp(&(b.due_at, &b.key)));
        due.truncate(limit);
        Ok(due)
    }

    async fn mark_needs_reauth(
        &self,
        appid: &str,
        owner: &str,
        now: i64,
    ) -> Result<CommitOutcome, StoreError> {
        let mut s = self.lock();
        let Some(e) = s.authorizers.get_mut(appid) else {
            return Ok(CommitOutcome::LostLease);
        };
        if e.token.lease_owner.as_deref() != Some(owner)
            || e.token.state != Some(AuthorizerState::Authorized)
        {
            return Ok(CommitOutcome::LostLease);
        }
        e.token.state = Some(AuthorizerState::NeedsReauth);
        e.token.access_token = None;
        e.token.lease_owner = None;
        e.token.lease_until = 0;
        e.token.expires_at = now;
        if let Some(r) = e.record.as_mut() {
            r.state = AuthorizerState::NeedsReauth;
            r.updated_at = now;
        }
        Ok(CommitOutcome::Committed(0))
    }

    async fn restore_refresh_token(
        &self,
        appid: &str,
        refresh_token: &SecretString,
        now: i64,
    ) -> Result<EventApplied, StoreError> {
        let mut s = self.lock();
        let Some(e) = s.authorizers.get_mut(appid) else {
            return Ok(EventApplied::Superseded);
        };
        if e.token.state != Some(AuthorizerState::NeedsReauth) {
            return Ok(EventApplied::Superseded);
        }
        e.token.state = Some(AuthorizerState::Authorized);
        e.token.refresh_token = Some(clone_secret(refresh_token));
        e.token.expires_at = now;
        if let Some(r) = e.record.as_mut() {
            r.state = AuthorizerState::Authorized;
            r.updated_at = now;
        }
        Ok(EventApplied::Applied)
    }

    async fn needs_reauth(&self) -> Result<Vec<String>, StoreError> {
        let s = self.lock();
        let mut out: Vec<String> = s
            .authorizers
            .iter()
            .filter(|(_, e)| e.token.state == Some(AuthorizerState::NeedsReauth))
            .map(|(a, _)| a.clone())
            .collect();
        out.sort();
        Ok(out)
    }

    async fn record_authorization(
        &self,
        g: &AuthorizationGrant,
    ) -> Result<EventApplied, StoreError> {
        let mut s = self.lock();
        let entry = s.authorizers.entry(g.appid.clone()).or_default();
        if entry
            .record
            .as_ref()
            .is_some_and(|r| r.last_event_at > g.event_time)
        {
            return Ok(EventApplied::Superseded);
        }
        let open_appid = entry.record.as_ref().and_then(|r| r.open_appid.clone());
        let profile = g
            .profile
            .clone()
            .or_else(|| entry.record.as_ref().and_then(|r| r.profile.clone()));
        entry.record = Some(AuthorizerRecord {
            appid: g.appid.clone(),
            state: AuthorizerState::Authorized,
            last_event_at: g.event_time,
            updated_at: g.now,
            func_info: g.func_info.clone(),
            open_appid,
            authorized_at: Some(g.now),
            profile,
        });
        entry.token = TokenRecord {
            access_token: Some(clone_secret(&g.token.access_token)),
            expires_at: g.token.expires_at,
            version: entry.token.version + 1,
            lease_owner: None,
            lease_until: 0,
            refresh_token: g.token.refresh_token.as_ref().map(clone_secret),
            state: Some(AuthorizerState::Authorized),
        };
        Ok(EventApplied::Applied)
    }
}

impl AuthCodeStore for MemoryStore {
    async fn claim_code(
        &self,
        code_id: &str,
        owner: &str,
        now: i64,
        until: i64,
    ) -> Result<CodeClaim, StoreError> {
        let mut s = self.lock();
        if let Some(c) = s.codes.get(code_id) {
            if let Some(appid) = &c.done_for {
                return Ok(CodeClaim::Done {
                    authorizer_appid: appid.clone(),
                });
            }
            if c.until >= now {
                return Ok(CodeClaim::Busy);
            }
        }
        s.codes.insert(
            code_id.to_string(),
            CodeEntry {
                owner: owner.to_string(),
                until,
                done_for: None,
            },
        );
        Ok(CodeClaim::Claimed)
    }

    async fn finish_code(
        &self,
        code_id: &str,
        owner: &str,
        authorizer_appid: &str,
        _now: i64,
    ) -> Result<(), StoreError> {
        if let Some(c) = self.lock().codes.get_mut(code_id)
            && c.owner == owner
        {
            c.done_for = Some(authorizer_appid.to_string());
        }
        Ok(())
    }

    async fn release_code(&self, code_id: &str, owner: &str) -> Result<(), StoreError> {
        let mut s = self.lock();
        if s.codes
            .get(code_id)
            .is_some_and(|c| c.owner == owner && c.done_for.is_none())
        {
            s.codes.remove(code_id);
        }
        Ok(())
    }

    async fn remove_pending_authorization(
        &self,
        appid: &str,
        create_time: i64,
    ) -> Result<(), StoreError> {
        let mut s = self.lock();
        if s.pending
            .get(appid)
            .is_some_and(|p| p.create_time == create_time)
        {
            s.pending.remove(appid);
        }
        Ok(())
    }
}

impl AuthorizerListStore for MemoryStore {
    async fn list_authorizers(
        &self,
        state: Option<AuthorizerState>,
        limit: usize,
        after: Option<&str>,
    ) -> Result<(Vec<AuthorizerRecord>, Option<String>), StoreError> {
        let s = self.lock();
        let mut all: Vec<AuthorizerRecord> = s
            .authorizers
            .values()
            .filter_map(|e| e.record.clone())
            .filter(|r| after.is_none_or(|a| r.appid.as_str() > a))
            .filter(|r| state.is_none_or(|st| r.state == st))
            .collect();
        all.sort_by(|a, b| a.appid.cmp(&b.appid));
        let more = all.len() > limit;
        all.truncate(limit);
        let next = if more {
            all.last().map(|r| r.appid.clone())
        } else {
            None
        };
        Ok((all, next))
    }

    async fn set_open_appid(
        &self,
        appid: &str,
        open_appid: Option<&str>,
        now: i64,
    ) -> Result<(), StoreError> {
        if let Some(r) = self
            .lock()
            .authorizers
            .get_mut(appid)
            .and_then(|e| e.record.as_mut())
        {
            r.open_appid = open_appid.map(str::to_string);
            r.updated_at = now;
        }
        Ok(())
    }
}

impl LoginStore for MemoryStore {
    async fn create_session(&self, session: &LoginSession) -> Result<(), StoreError> {
        self.lock()
            .sessions
            .entry(session.id.clone())
            .or_insert_with(|| session.clone());
        Ok(())
    }

    async fn get_session(&self, id: &str) -> Result<Option<LoginSession>, StoreError> {
        Ok(self.lock().sessions.get(id).cloned())
    }

    async fn confirm_session(
        &self,
        id: &str,
        appid: &str,
        c: &LoginConfirmation,
    ) -> Result<bool, StoreError> {
        let mut s = self.lock();
        let Some(session) = s.sessions.get_mut(id) else {
            return Ok(false);
        };
        if session.status != LoginStatus::Pending
            || session.appid != appid
            || session.expires_at <= c.now
        {
            return Ok(false);
        }
        session.status = LoginStatus::Confirmed;
        session.openid = Some(c.openid.clone());
        session.unionid = c.unionid.clone();
        session.unionid_missing_reason = c.unionid_missing_reason.clone();
        session.known_user = c.known_user;
        session.confirmed_at = Some(c.now);
        Ok(true)
    }

    async fn record_identity(
        &self,
        unionid: &str,
        appid: &str,
        openid: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        let mut s = self.lock();
        let known = s.identities.keys().any(|(u, _)| u == unionid);
        s.identities
            .entry((unionid.to_string(), appid.to_string()))
            .or_insert_with(|| (openid.to_string(), now));
        Ok(known)
    }

    async fn linked_appids(&self, unionid: &str) -> Result<Vec<String>, StoreError> {
        Ok(self
            .lock()
            .identities
            .keys()
            .filter(|(u, _)| u == unionid)
            .map(|(_, a)| a.clone())
            .collect())
    }
}
