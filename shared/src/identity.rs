//! One identity per person, written by every sign-in flow (follow-to-log-in, web OAuth, mini
//! program login): keyed by UnionID when WeChat gives one, otherwise by (appid, openid). An
//! openid-only identity that later shows a UnionID merges into the UnionID identity (its
//! `user_id` kept); if both are bound to different users nothing is merged: both are marked
//! `conflict` and the sign-in says so. Every write is conditional (a version, or absence), so
//! simultaneous first sign-ins of one person make one identity and one `known_user: false`.
//!
//! Account binding: an identity holds at most one provider `user_id`; a user id may hold several
//! identities (a person with two WeChat accounts).

use sha2::{Digest, Sha256};

use crate::model::{Identity, IdentityApp, IdentityConflict, IdentityWrite, SignInFlow};
use crate::store::{IdentityStore, StoreError};

/// Attempts before a write under contention gives up (each attempt re-reads).
const MAX_ATTEMPTS: usize = 64;
/// Longest accepted provider user id.
pub const MAX_USER_ID_LEN: usize = 128;

#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("no identity with this id")]
    NotFound,
    #[error("the identity is bound to another user")]
    BoundToOtherUser,
    #[error("the identity is not bound to a user")]
    NotBound,
    #[error("the identity kept changing under concurrent writes; try again")]
    Contended,
}

/// What a sign-in saw: the app, the person's openid in it, and the UnionID if WeChat gave one.
#[derive(Debug, Clone)]
pub struct Sighting<'a> {
    pub appid: &'a str,
    pub openid: &'a str,
    pub unionid: Option<&'a str>,
    pub flow: SignInFlow,
    pub now: i64,
}

/// The identity a sign-in was recorded to.
#[derive(Debug, Clone)]
pub struct SignIn {
    pub identity: Identity,
    /// The person had an identity before this sign-in.
    pub known_user: bool,
    pub conflict: Option<IdentityConflict>,
}

fn digest_id(input: &str) -> String {
    hex::encode(&Sha256::digest(input.as_bytes())[..16])
}

/// The id of the UnionID identity: 32 hex digits (the UnionID never appears in paths).
pub fn unionid_identity_id(unionid: &str) -> String {
    digest_id(&format!("unionid:{unionid}"))
}

/// The id of the openid-only identity of (appid, openid).
pub fn openid_identity_id(appid: &str, openid: &str) -> String {
    digest_id(&format!("openid:{appid}:{openid}"))
}

pub fn valid_identity_id(id: &str) -> bool {
    id.len() == 32
        && id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// A provider user id: 1 to 128 of `A-Z a-z 0-9 . _ : @ -`.
pub fn valid_user_id(user_id: &str) -> bool {
    !user_id.is_empty()
        && user_id.len() <= MAX_USER_ID_LEN
        && user_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".:_@-".contains(&b))
}

fn app_entry(s: &Sighting<'_>) -> IdentityApp {
    IdentityApp {
        openid: s.openid.to_string(),
        first_seen: s.now,
        last_seen: s.now,
        flows: [(s.flow.as_str().to_string(), s.now)].into(),
    }
}

fn new_identity(id: String, s: &Sighting<'_>) -> Identity {
    Identity {
        id,
        unionid: s.unionid.map(str::to_string),
        apps: [(s.appid.to_string(), app_entry(s))].into(),
        first_seen: s.now,
        last_seen: s.now,
        user_id: None,
        conflict: None,
        merged_into: None,
        version: 1,
    }
}

/// Adds (or refreshes) one app of `into` from `app`, keeping the earliest first sighting.
fn absorb(into: &mut Identity, appid: &str, app: &IdentityApp) {
    let entry = into
        .apps
        .entry(appid.to_string())
        .or_insert_with(|| app.clone());
    entry.openid.clone_from(&app.openid);
    entry.first_seen = entry.first_seen.min(app.first_seen);
    entry.last_seen = entry.last_seen.max(app.last_seen);
    for (flow, at) in &app.flows {
        let e = entry.flows.entry(flow.clone()).or_insert(*at);
        *e = (*e).max(*at);
    }
    into.first_seen = into.first_seen.min(app.first_seen);
    into.last_seen = into.last_seen.max(app.last_seen);
}

fn write(
    before: Option<&Identity>,
    mut after: Identity,
    pointers: Vec<(String, String)>,
) -> IdentityWrite {
    after.version = before.map_or(1, |b| b.version + 1);
    IdentityWrite {
        expected_version: before.map(|b| b.version),
        previous_user: before.and_then(|b| b.user_id.clone()),
        identity: after,
        pointers,
    }
}

/// The live identity `id` resolves to (following a merge).
pub async fn resolve<S: IdentityStore>(
    store: &S,
    id: &str,
) -> Result<Option<Identity>, StoreError> {
    let mut id = id.to_string();
    for _ in 0..4 {
        match store.get_identity(&id).await? {
            Some(i) => match &i.merged_into {
                Some(next) => id.clone_from(next),
                None => return Ok(Some(i)),
            },
            None => return Ok(None),
        }
    }
    Ok(None)
}

/// Records a sign-in: creates, extends, merges or marks a conflict, conditionally.
pub async fn record<S: IdentityStore>(
    store: &S,
    s: &Sighting<'_>,
) -> Result<SignIn, IdentityError> {
    let pointer = vec![(s.appid.to_string(), s.openid.to_string())];
    for _ in 0..MAX_ATTEMPTS {
        let target_id = match s.unionid {
            Some(u) => unionid_identity_id(u),
            None => store
                .identity_for_openid(s.appid, s.openid)
                .await?
                .unwrap_or_else(|| openid_identity_id(s.appid, s.openid)),
        };
        let target = resolve(store, &target_id).await?;
        let target_id = target.as_ref().map_or(target_id, |t| t.id.clone());
        // An openid-only identity of this app and openid, not merged yet, while WeChat now
        // gives a UnionID: merge it (or report the conflict).
        let source = match s.unionid {
            Some(_) => store
                .get_identity(&openid_identity_id(s.appid, s.openid))
                .await?
                .filter(|o| o.merged_into.is_none() && o.id != target_id),
            None => None,
        };
        if let Some(source) = source {
            let user = |i: &Option<Identity>| i.as_ref().and_then(|t| t.user_id.clone());
            let target_user = user(&target);
            if let (Some(a), Some(b)) = (&target_user, &source.user_id)
                && a != b
            {
                // Both bound, to different users: never merged silently.
                let mut t = target
                    .clone()
                    .unwrap_or_else(|| new_identity(target_id.clone(), s));
                absorb(&mut t, s.appid, &app_entry(s));
                let conflict = IdentityConflict {
                    identity_id: source.id.clone(),
                    user_id: source.user_id.clone(),
                };
                t.conflict = Some(conflict.clone());
                let mut o = source.clone();
                o.conflict = Some(IdentityConflict {
                    identity_id: t.id.clone(),
                    user_id: target_user.clone(),
                });
                let writes = [
                    write(target.as_ref(), t, Vec::new()),
                    write(Some(&source), o, Vec::new()),
                ];
                if store.write_identities(&writes).await? {
                    let identity = writes[0].identity.clone();
                    return Ok(SignIn {
                        identity,
                        known_user: true,
                        conflict: Some(conflict),
                    });
                }
                continue;
            }
            let mut t = target
                .clone()
                .unwrap_or_else(|| new_identity(target_id.clone(), s));
            let mut pointers = pointer.clone();
            for (appid, app) in &source.apps {
                absorb(&mut t, appid, app);
                pointers.push((appid.clone(), app.openid.clone()));
            }
            absorb(&mut t, s.appid, &app_entry(s));
            t.unionid = s.unionid.map(str::to_string);
            t.user_id = target_user.or_else(|| source.user_id.clone());
            t.conflict = None;
            pointers.sort();
            pointers.dedup();
            let mut o = source.clone();
            o.merged_into = Some(t.id.clone());
            o.user_id = None;
            o.conflict = None;
            let writes = [
                write(target.as_ref(), t, pointers),
                write(Some(&source), o, Vec::new()),
            ];
            if store.write_identities(&writes).await? {
                return Ok(SignIn {
                    identity: writes[0].identity.clone(),
                    known_user: true,
                    conflict: None,
                });
            }
            continue;
        }
        match target {
            None => {
                let w = write(None, new_identity(target_id, s), pointer.clone());
                if store.write_identities(std::slice::from_ref(&w)).await? {
                    return Ok(SignIn {
                        identity: w.identity,
                        known_user: false,
                        conflict: None,
                    });
                }
            }
            Some(t) if t.apps.get(s.appid).is_some_and(|a| a.openid == s.openid) => {
                if store
                    .touch_identity(&t.id, s.appid, s.openid, s.flow.as_str(), s.now)
                    .await?
                {
                    let conflict = t.conflict.clone();
                    let mut identity = t;
                    absorb(&mut identity, s.appid, &app_entry(s));
                    return Ok(SignIn {
                        identity,
                        known_user: true,
                        conflict,
                    });
                }
            }
            Some(t) => {
                let mut after = t.clone();
                absorb(&mut after, s.appid, &app_entry(s));
                if after.unionid.is_none() {
                    after.unionid = s.unionid.map(str::to_string);
                }
                let w = write(Some(&t), after, pointer.clone());
                if store.write_identities(std::slice::from_ref(&w)).await? {
                    return Ok(SignIn {
                        conflict: w.identity.conflict.clone(),
                        identity: w.identity,
                        known_user: true,
                    });
                }
            }
        }
    }
    Err(IdentityError::Contended)
}

/// Binds the identity to the provider's `user_id` (409 semantics: another user needs `replace`).
pub async fn bind<S: IdentityStore>(
    store: &S,
    id: &str,
    user_id: &str,
    replace: bool,
) -> Result<Identity, IdentityError> {
    for _ in 0..MAX_ATTEMPTS {
        let current = resolve(store, id).await?.ok_or(IdentityError::NotFound)?;
        match &current.user_id {
            Some(u) if u == user_id => return Ok(current),
            Some(_) if !replace => return Err(IdentityError::BoundToOtherUser),
            _ => {}
        }
        let mut after = current.clone();
        after.user_id = Some(user_id.to_string());
        let w = write(Some(&current), after, Vec::new());
        if store.write_identities(std::slice::from_ref(&w)).await? {
            return Ok(w.identity);
        }
    }
    Err(IdentityError::Contended)
}

/// Removes the identity's user binding.
pub async fn unbind<S: IdentityStore>(store: &S, id: &str) -> Result<Identity, IdentityError> {
    for _ in 0..MAX_ATTEMPTS {
        let current = resolve(store, id).await?.ok_or(IdentityError::NotFound)?;
        if current.user_id.is_none() {
            return Err(IdentityError::NotBound);
        }
        let mut after = current.clone();
        after.user_id = None;
        let w = write(Some(&current), after, Vec::new());
        if store.write_identities(std::slice::from_ref(&w)).await? {
            return Ok(w.identity);
        }
    }
    Err(IdentityError::Contended)
}

/// Lookups of `GET /identities`.
pub async fn by_unionid<S: IdentityStore>(
    store: &S,
    unionid: &str,
) -> Result<Vec<Identity>, StoreError> {
    Ok(resolve(store, &unionid_identity_id(unionid))
        .await?
        .into_iter()
        .collect())
}

pub async fn by_openid<S: IdentityStore>(
    store: &S,
    appid: &str,
    openid: &str,
) -> Result<Vec<Identity>, StoreError> {
    let id = store
        .identity_for_openid(appid, openid)
        .await?
        .unwrap_or_else(|| openid_identity_id(appid, openid));
    Ok(resolve(store, &id).await?.into_iter().collect())
}

pub async fn by_user<S: IdentityStore>(
    store: &S,
    user_id: &str,
) -> Result<Vec<Identity>, StoreError> {
    let mut out = Vec::new();
    for id in store.identities_of_user(user_id).await? {
        if let Some(i) = store.get_identity(&id).await?
            && i.user_id.as_deref() == Some(user_id)
        {
            out.push(i);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_user_ids() {
        let a = unionid_identity_id("o6_bmasdasdsad6_2sgVt7hMZOPfL");
        assert!(valid_identity_id(&a));
        assert_ne!(
            a,
            openid_identity_id("wx1", "o6_bmasdasdsad6_2sgVt7hMZOPfL")
        );
        assert!(!valid_identity_id("XYZ"));
        assert!(valid_user_id("user-42@acme.example"));
        assert!(!valid_user_id(""));
        assert!(!valid_user_id("a b"));
        assert!(!valid_user_id(&"x".repeat(129)));
    }
}
