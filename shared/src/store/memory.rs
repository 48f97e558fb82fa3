//! In-memory adapter with the same conditional semantics as DynamoDB (unit tests, local runs).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, MutexGuard};

use super::*;

#[derive(Debug, Default)]
struct State {
    ticket: Option<StoredTicket>,
    pushes: HashMap<String, PushRecord>,
    pending: BTreeMap<String, PendingAuthorization>,
    authorizers: HashMap<String, AuthorizerRecord>,
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
        usize::from(s.ticket.is_some()) + s.pushes.len() + s.pending.len() + s.authorizers.len()
    }
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
        if s.authorizers
            .get(appid)
            .is_some_and(|a| a.last_event_at > event_time)
        {
            return Ok(EventApplied::Superseded);
        }
        let record = s
            .authorizers
            .entry(appid.to_string())
            .or_insert_with(|| AuthorizerRecord {
                appid: appid.to_string(),
                state: AuthorizerState::Unauthorized,
                last_event_at: event_time,
                updated_at: now,
                func_info: Vec::new(),
                open_appid: None,
            });
        record.state = AuthorizerState::Unauthorized;
        record.last_event_at = event_time;
        record.updated_at = now;
        if s.pending
            .get(appid)
            .is_some_and(|p| p.create_time <= event_time)
        {
            s.pending.remove(appid);
        }
        Ok(EventApplied::Applied)
    }

    async fn get_authorizer(&self, appid: &str) -> Result<Option<AuthorizerRecord>, StoreError> {
        Ok(self.lock().authorizers.get(appid).cloned())
    }
}
