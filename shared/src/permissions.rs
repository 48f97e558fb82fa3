//! The permission-set catalogue (权限集, the ids WeChat reports in `func_info`): names for official
//! accounts and mini programs, which sets are mutually exclusive (one platform at a time), which
//! sets each feature needs, and one [`require`] every feature uses.
//!
//! Ids and names follow WeChat's permission tables for official accounts
//! (`product/offical_account_authority.html`) and mini programs
//! (`product/miniprogram_authority.html`). Calling an API whose set was not granted answers 61007
//! (some official-account APIs answer 48001); checking `func_info` first costs nothing.

use crate::model::{AccountKind, AuthorizerRecord};

/// One permission set of the catalogue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PermissionSet {
    pub id: u32,
    pub kind: AccountKind,
    pub name: &'static str,
    /// An account can grant it to one platform at a time; a second platform just does not get it.
    pub exclusive: bool,
}

const fn oa(id: u32, name: &'static str, exclusive: bool) -> PermissionSet {
    PermissionSet {
        id,
        kind: AccountKind::OfficialAccount,
        name,
        exclusive,
    }
}

const fn mp(id: u32, name: &'static str, exclusive: bool) -> PermissionSet {
    PermissionSet {
        id,
        kind: AccountKind::MiniProgram,
        name,
        exclusive,
    }
}

/// The catalogue. Set 4 (web service) is exclusive by the Chinese table and not by the English
/// one; set 27 is not exclusive by the table and exclusive by the fast-registration page: both are
/// marked exclusive here, the safe reading.
pub const CATALOGUE: &[PermissionSet] = &[
    oa(1, "message management", false),
    oa(2, "user management", false),
    oa(3, "account service", false),
    oa(4, "web service", true),
    oa(5, "WeChat store", false),
    oa(6, "customer service", false),
    oa(7, "mass messaging and notifications", false),
    oa(8, "cards and coupons", false),
    oa(9, "scan", false),
    oa(10, "Wi-Fi", false),
    oa(11, "material management", false),
    oa(12, "shake nearby", false),
    oa(13, "stores", false),
    oa(15, "custom menu", false),
    oa(22, "city service", false),
    oa(23, "ads management", false),
    oa(24, "open platform account management", true),
    oa(26, "e-invoice", false),
    oa(27, "fast mini program registration", true),
    oa(33, "mini program management", false),
    oa(34, "product library", true),
    oa(54, "service account conversations", true),
    oa(89, "subscription notices", false),
    mp(17, "account management", false),
    mp(18, "development and data", true),
    mp(19, "customer service messages", false),
    mp(25, "open platform account management", true),
    mp(30, "basic info", false),
    mp(31, "verification", false),
    mp(37, "nearby", false),
    mp(40, "plugins", true),
    mp(49, "cloud development", true),
    mp(52, "live streaming", false),
];

/// A set's entry for this kind of account (the other kind's entry when the kind is unknown or
/// only the other kind has the id).
pub fn lookup(kind: Option<AccountKind>, id: u32) -> Option<&'static PermissionSet> {
    let of = |k: AccountKind| CATALOGUE.iter().find(|s| s.id == id && s.kind == k);
    match kind {
        Some(AccountKind::MiniProgram) => {
            of(AccountKind::MiniProgram).or_else(|| of(AccountKind::OfficialAccount))
        }
        _ => of(AccountKind::OfficialAccount).or_else(|| of(AccountKind::MiniProgram)),
    }
}

/// A set's name as WeChat's tables give it (in English).
pub fn name(kind: Option<AccountKind>, id: u32) -> Option<&'static str> {
    lookup(kind, id).map(|s| s.name)
}

/// Follow-to-log-in: message management (the scan event), user management (`user/info` for the
/// UnionID) and account service (parametric QR codes).
pub const FOLLOW_TO_LOG_IN: &[u32] = &[1, 2, 3];

/// What a sign-in flow needs of the authorizer: its account kind, whether only a verified
/// service account can do it, and its permission sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignInRequirement {
    pub flow: &'static str,
    pub kind: AccountKind,
    pub verified_service_account: bool,
    pub sets: &'static [u32],
}

/// Follow-to-log-in: an official account (only verified service accounts make parametric QR
/// codes), sets 1 (the scan event), 2 (`user/info`) and 3 (`qrcode/create`).
pub const FOLLOW_SIGN_IN: SignInRequirement = SignInRequirement {
    flow: "follow-to-log-in",
    kind: AccountKind::OfficialAccount,
    verified_service_account: true,
    sets: FOLLOW_TO_LOG_IN,
};

/// Web OAuth on behalf: a verified service account (only those hold the OAuth scopes) with set 4
/// (web service).
pub const OAUTH_SIGN_IN: SignInRequirement = SignInRequirement {
    flow: "web OAuth",
    kind: AccountKind::OfficialAccount,
    verified_service_account: true,
    sets: &[4],
};

/// Mini program login on behalf: a mini program; `jscode2session` needs the authorization only
/// (no permission set; WeChat answers 61003 without one).
pub const MINI_PROGRAM_SIGN_IN: SignInRequirement = SignInRequirement {
    flow: "mini program login",
    kind: AccountKind::MiniProgram,
    verified_service_account: false,
    sets: &[],
};

/// Why an authorizer cannot run a sign-in flow.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignInRefusal {
    /// The account's profile (its kind, its verification) has not been read from WeChat yet:
    /// the scheduled run reads it within minutes.
    #[error("{flow}: the account's profile is not known yet")]
    ProfilePending { flow: &'static str },
    #[error("{flow} needs an official account")]
    NotOfficialAccount { flow: &'static str },
    #[error("{flow} needs a mini program")]
    NotMiniProgram { flow: &'static str },
    #[error("{flow} needs a WeChat-verified service account")]
    NotVerifiedServiceAccount { flow: &'static str },
    #[error(transparent)]
    Missing(#[from] MissingPermissions),
}

/// Checks an authorizer's kind, verification and sets for a sign-in flow. Without a profile the
/// kind is unknown, and set ids mean different things for the two kinds: "not yet", never a
/// guess.
pub fn check_sign_in(
    record: &AuthorizerRecord,
    req: &SignInRequirement,
) -> Result<(), SignInRefusal> {
    let Some(profile) = record.profile.as_ref() else {
        return Err(SignInRefusal::ProfilePending { flow: req.flow });
    };
    if profile.kind != req.kind {
        return Err(match req.kind {
            AccountKind::OfficialAccount => SignInRefusal::NotOfficialAccount { flow: req.flow },
            AccountKind::MiniProgram => SignInRefusal::NotMiniProgram { flow: req.flow },
        });
    }
    if req.verified_service_account && !(profile.service_type == 2 && profile.verify_type >= 0) {
        return Err(SignInRefusal::NotVerifiedServiceAccount { flow: req.flow });
    }
    require(record, req.sets)?;
    Ok(())
}

/// The set the open-account operations need for this kind of account.
pub fn open_account(kind: Option<AccountKind>) -> u32 {
    match kind {
        Some(AccountKind::MiniProgram) => 25,
        _ => 24,
    }
}

/// Sets a feature needs that the authorizer has not granted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("missing permission sets {missing:?}")]
pub struct MissingPermissions {
    pub kind: Option<AccountKind>,
    pub missing: Vec<u32>,
}

impl MissingPermissions {
    /// "18 (development and data), 25 (…)" for messages a person can act on.
    pub fn describe(&self) -> String {
        self.missing
            .iter()
            .map(|id| format!("{id} ({})", name(self.kind, *id).unwrap_or("?")))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Checks the authorizer granted every set in `sets`.
pub fn require(record: &AuthorizerRecord, sets: &[u32]) -> Result<(), MissingPermissions> {
    let missing: Vec<u32> = sets
        .iter()
        .copied()
        .filter(|id| !record.func_info.contains(id))
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(MissingPermissions {
            kind: record.profile.as_ref().map(|p| p.kind),
            missing,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::AuthorizerState;

    #[test]
    fn names_by_kind() {
        assert_eq!(
            name(Some(AccountKind::OfficialAccount), 24),
            Some("open platform account management")
        );
        assert_eq!(
            name(Some(AccountKind::MiniProgram), 25),
            Some("open platform account management")
        );
        assert_eq!(
            name(Some(AccountKind::MiniProgram), 18),
            Some("development and data")
        );
        assert_eq!(name(None, 18), Some("development and data"));
        assert_eq!(name(None, 9999), None);
        assert_eq!(open_account(Some(AccountKind::MiniProgram)), 25);
        assert_eq!(open_account(None), 24);
        assert!(lookup(None, 24).is_some_and(|s| s.exclusive));
        assert!(lookup(None, 1).is_some_and(|s| !s.exclusive));
    }

    #[test]
    fn ids_are_unique_per_kind() {
        for (i, a) in CATALOGUE.iter().enumerate() {
            for b in &CATALOGUE[i + 1..] {
                assert!(!(a.id == b.id && a.kind == b.kind), "duplicate {}", a.id);
            }
        }
    }

    #[test]
    fn require_lists_what_is_missing() {
        let record = AuthorizerRecord {
            appid: "wx0000000000000001".into(),
            state: AuthorizerState::Authorized,
            last_event_at: 0,
            updated_at: 0,
            func_info: vec![1, 3],
            open_appid: None,
            authorized_at: None,
            profile: None,
            customer_ref: None,
            link_id: None,
            state_reason: None,
            last_error: None,
            failing_since: None,
        };
        assert_eq!(require(&record, &[1, 3]), Ok(()));
        let e = require(&record, FOLLOW_TO_LOG_IN).unwrap_err();
        assert_eq!(e.missing, vec![2]);
        assert_eq!(e.describe(), "2 (user management)");
    }
}
