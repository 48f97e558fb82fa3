//! The sandbox's in-memory world: clock, tickets, tokens, codes, merchants, open accounts, users,
//! records and faults. Pure and synchronous: callers hold the lock only around these calls.

use std::collections::{BTreeMap, HashMap, VecDeque};

use serde::Serialize;
use serde_json::{Value, json};

use super::apis::Api;
use super::code::CodeWorld;
use super::util::{openid, random_alnum, random_hex, real_now, short_hash};
use super::{CallCount, CallRecord, CustomMessage, PushRecord, SandboxConfig};

/// Records kept per log (oldest dropped beyond this).
pub const MAX_RECORDS: usize = 100_000;

pub fn push_bounded<T>(log: &mut VecDeque<T>, item: T) {
    if log.len() >= MAX_RECORDS {
        log.pop_front();
    }
    log.push_back(item);
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    OfficialAccount,
    MiniProgram,
}

impl Kind {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "official_account" => Some(Kind::OfficialAccount),
            "mini_program" => Some(Kind::MiniProgram),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Authorization {
    pub refresh_token: String,
    pub auth_time: i64,
    pub func_info: Vec<u32>,
    /// Order of (re)authorization, for `api_get_authorizer_list`.
    #[serde(skip)]
    pub seq: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Follower {
    pub openid: String,
    pub subscribed: bool,
    pub subscribe_time: i64,
    pub subscribe_scene: String,
    pub qr_scene_str: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Merchant {
    pub appid: String,
    pub kind: Kind,
    pub subject: String,
    pub nick_name: String,
    pub user_name: String,
    pub service_type: i64,
    pub verify_type: i64,
    /// What the merchant grants when authorizing (unless the authorize call overrides it).
    pub func_info: Vec<u32>,
    pub authorization: Option<Authorization>,
    pub open_appid: Option<String>,
    /// Keyed by the test's user name.
    pub followers: BTreeMap<String, Follower>,
    /// The code committed through `wxa/commit` (the trial version), mini programs only.
    pub committed: Option<CodeCommit>,
}

/// A `wxa/commit`: the template and version a mini program's trial version runs.
#[derive(Debug, Clone, Serialize)]
pub struct CodeCommit {
    pub template_id: i64,
    pub user_version: String,
    pub user_desc: String,
    pub ext_json: Option<Value>,
    pub at: i64,
}

impl Merchant {
    pub fn new(appid: &str, kind: Kind, subject: &str) -> Self {
        let (service_type, func_info) = match kind {
            Kind::OfficialAccount => (2, vec![1, 2, 3, 4, 6, 7, 11, 15, 24]),
            Kind::MiniProgram => (0, vec![17, 18, 19, 25, 30]),
        };
        Self {
            appid: appid.to_string(),
            kind,
            subject: subject.to_string(),
            nick_name: format!("Sandbox {appid}"),
            user_name: format!("gh_{}", short_hash(&["gh", appid], 12)),
            service_type,
            verify_type: 0,
            func_info,
            authorization: None,
            open_appid: None,
            followers: BTreeMap::new(),
            committed: None,
        }
    }

    pub fn with(mut self, nick: &str, gh: &str, service_type: i64, verify_type: i64) -> Self {
        self.nick_name = nick.to_string();
        self.user_name = gh.to_string();
        self.service_type = service_type;
        self.verify_type = verify_type;
        self
    }

    pub fn granted(&self) -> &[u32] {
        self.authorization
            .as_ref()
            .map(|a| a.func_info.as_slice())
            .unwrap_or_default()
    }

    /// The user behind an openid of this account, if they ever interacted with it.
    pub fn user_by_openid(&self, id: &str) -> Option<(&String, &Follower)> {
        self.followers.iter().find(|(_, f)| f.openid == id)
    }

    /// Makes `user` a follower (no-op if they already follow). Returns true if newly followed.
    pub fn follow(&mut self, user: &str, now: i64, scene: &str, qr_scene: &str) -> bool {
        let id = openid(&self.appid, user);
        let entry = self.followers.entry(user.to_string()).or_insert(Follower {
            openid: id,
            subscribed: false,
            subscribe_time: 0,
            subscribe_scene: String::new(),
            qr_scene_str: String::new(),
        });
        if entry.subscribed {
            return false;
        }
        entry.subscribed = true;
        entry.subscribe_time = now;
        entry.subscribe_scene = scene.to_string();
        entry.qr_scene_str = qr_scene.to_string();
        true
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct OpenAccount {
    pub open_appid: String,
    pub subject: String,
    pub created_by_api: bool,
    pub bound: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Owner {
    Component,
    Authorizer(String),
}

#[derive(Debug, Clone)]
pub struct TokenEntry {
    pub owner: Owner,
    pub expires_at: i64,
    pub superseded_at: Option<i64>,
    pub revoked: bool,
}

#[derive(Debug, Clone)]
pub struct PreAuthCode {
    pub expires_at: i64,
    pub used: bool,
}

#[derive(Debug, Clone)]
pub struct AuthCode {
    pub appid: String,
    pub expires_at: i64,
    pub used: bool,
}

/// A mini program login code (`wx.login`), exchanged once through `jscode2session`.
#[derive(Debug, Clone)]
pub struct JsCode {
    pub appid: String,
    /// The test's user name.
    pub user: String,
    pub expires_at: i64,
    pub used: bool,
}

/// A web OAuth code (the user approved an official account's authorize page), exchanged once
/// through `sns/oauth2/component/access_token`.
#[derive(Debug, Clone)]
pub struct OauthCode {
    pub appid: String,
    pub user: String,
    pub scope: String,
    pub expires_at: i64,
    pub used: bool,
}

/// A user's web OAuth access token (`sns/userinfo` takes it).
#[derive(Debug, Clone)]
pub struct OauthUserToken {
    pub appid: String,
    pub user: String,
    pub scope: String,
    pub expires_at: i64,
}

#[derive(Debug, Clone)]
pub struct QrCode {
    pub appid: String,
    pub scene: String,
    pub expires_at: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Fault {
    pub api: String,
    pub remaining: u32,
    pub errcode: Option<i64>,
    pub latency_ms: Option<u64>,
    pub drop: bool,
}

/// Which token an API wants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Want {
    Component,
    Authorizer,
}

pub struct State {
    pub config: SandboxConfig,
    pub clock_offset: i64,
    /// Ticket → sandbox time it was pushed.
    pub tickets: HashMap<String, i64>,
    pub latest_ticket: Option<String>,
    pub tokens: HashMap<String, TokenEntry>,
    /// Live (current, previous) tokens per owner.
    pub chains: HashMap<Owner, Vec<String>>,
    pub pre_auth_codes: HashMap<String, PreAuthCode>,
    pub auth_codes: HashMap<String, AuthCode>,
    pub merchants: BTreeMap<String, Merchant>,
    pub open_accounts: BTreeMap<String, OpenAccount>,
    pub qrcodes: HashMap<String, QrCode>,
    pub js_codes: HashMap<String, JsCode>,
    pub calls: VecDeque<CallRecord>,
    pub custom_messages: VecDeque<CustomMessage>,
    pub pushes: VecDeque<PushRecord>,
    pub faults: Vec<Fault>,
    /// (api, acting account, sandbox day) → calls.
    pub quota_used: HashMap<(Api, String, i64), u64>,
    pub auth_seq: u64,
    pub push_seq: u64,
    /// The menu each official account set through `menu/create` (its JSON body).
    pub menus: BTreeMap<String, Value>,
    /// Temporary media uploaded through `media/upload`, by media_id.
    pub media: HashMap<String, Media>,
    /// (account, sandbox month) → quota resets made (`clear_quota` & co.: 10 a month).
    pub quota_resets: HashMap<(String, i64), u32>,
    pub oauth_codes: HashMap<String, OauthCode>,
    pub oauth_tokens: HashMap<String, OauthUserToken>,
    /// Drafts, templates, audits, releases (`code.rs`).
    pub code: CodeWorld,
    /// Account → API name → calls (see `SandboxHandle::call_counts`).
    pub call_counts: BTreeMap<String, BTreeMap<String, CallCount>>,
}

/// A temporary media file (`media/upload`), served back by `media/get`.
#[derive(Debug, Clone)]
pub struct Media {
    pub appid: String,
    pub content_type: String,
    pub filename: String,
    pub bytes: Vec<u8>,
}

impl State {
    pub fn new(config: SandboxConfig) -> Self {
        let mut st = Self {
            config,
            clock_offset: 0,
            tickets: HashMap::new(),
            latest_ticket: None,
            tokens: HashMap::new(),
            chains: HashMap::new(),
            pre_auth_codes: HashMap::new(),
            auth_codes: HashMap::new(),
            merchants: BTreeMap::new(),
            open_accounts: BTreeMap::new(),
            qrcodes: HashMap::new(),
            js_codes: HashMap::new(),
            calls: VecDeque::new(),
            custom_messages: VecDeque::new(),
            pushes: VecDeque::new(),
            faults: Vec::new(),
            quota_used: HashMap::new(),
            auth_seq: 0,
            push_seq: 0,
            menus: BTreeMap::new(),
            media: HashMap::new(),
            quota_resets: HashMap::new(),
            oauth_codes: HashMap::new(),
            oauth_tokens: HashMap::new(),
            code: CodeWorld::default(),
            call_counts: BTreeMap::new(),
        };
        for m in default_merchants() {
            st.merchants.insert(m.appid.clone(), m);
        }
        st
    }

    pub fn now(&self) -> i64 {
        real_now().saturating_add(self.clock_offset)
    }

    pub fn next_push_id(&mut self) -> u64 {
        self.push_seq += 1;
        self.push_seq
    }

    // ---- tickets ----

    pub fn new_ticket(&mut self) -> (String, i64) {
        let ticket = format!("ticket@@@{}", random_alnum(64));
        let now = self.now();
        self.tickets.insert(ticket.clone(), now);
        self.latest_ticket = Some(ticket.clone());
        (ticket, now)
    }

    // ---- tokens ----

    /// Issues a token: the current one becomes the previous (valid for the overlap), any older
    /// one is invalid at once.
    pub fn issue_token(&mut self, owner: Owner) -> String {
        let now = self.now();
        let mut previous = None;
        for old in self.chains.remove(&owner).unwrap_or_default() {
            if let Some(entry) = self.tokens.get_mut(&old) {
                if entry.superseded_at.is_none() && !entry.revoked {
                    entry.superseded_at = Some(now);
                    previous = Some(old);
                } else {
                    entry.revoked = true;
                }
            }
        }
        let token = random_alnum(96);
        self.tokens.insert(
            token.clone(),
            TokenEntry {
                owner: owner.clone(),
                expires_at: now.saturating_add(self.config.token_ttl_secs),
                superseded_at: None,
                revoked: false,
            },
        );
        let mut chain: Vec<String> = previous.into_iter().collect();
        chain.push(token.clone());
        self.chains.insert(owner, chain);
        token
    }

    /// Revokes every token of `owner` (authorization cancelled).
    pub fn revoke_tokens(&mut self, owner: &Owner) {
        if let Some(chain) = self.chains.remove(owner) {
            for t in chain {
                if let Some(e) = self.tokens.get_mut(&t) {
                    e.revoked = true;
                }
            }
        }
    }

    /// Whether `token` is its owner's newest token (the one a well-behaved caller holds).
    pub fn token_is_current(&self, token: Option<&str>) -> bool {
        token
            .and_then(|t| self.tokens.get(t).map(|e| (t, &e.owner)))
            .and_then(|(t, owner)| {
                self.chains
                    .get(owner)
                    .map(|c| c.last().map(String::as_str) == Some(t))
            })
            .unwrap_or(false)
    }

    /// For the call log: what kind of token this is and whose, without validating it.
    pub fn token_kind(&self, token: Option<&str>) -> (&'static str, Option<String>) {
        match token {
            None => ("none", None),
            Some(t) => match self.tokens.get(t) {
                None => ("unknown", None),
                Some(e) => match &e.owner {
                    Owner::Component => ("component", None),
                    Owner::Authorizer(a) => ("authorizer", Some(a.clone())),
                },
            },
        }
    }

    /// Validates a token for an API wanting `want`: 41001 missing, 40001 unknown / wrong kind /
    /// revoked / past the overlap, 42001 expired.
    pub fn check_token(&self, token: Option<&str>, want: Want) -> Result<Owner, i64> {
        let token = match token {
            Some(t) if !t.is_empty() => t,
            _ => return Err(41001),
        };
        let entry = self.tokens.get(token).ok_or(40001)?;
        let kind_ok = matches!(
            (&entry.owner, want),
            (Owner::Component, Want::Component) | (Owner::Authorizer(_), Want::Authorizer)
        );
        if !kind_ok || entry.revoked {
            return Err(40001);
        }
        let now = self.now();
        if let Some(at) = entry.superseded_at
            && now >= at.saturating_add(self.config.token_overlap_secs)
        {
            return Err(40001);
        }
        if now >= entry.expires_at {
            return Err(42001);
        }
        Ok(entry.owner.clone())
    }

    // ---- faults and quotas ----

    /// Takes one use of the first matching fault rule.
    pub fn take_fault(&mut self, api: Api) -> Option<Fault> {
        let i = self
            .faults
            .iter()
            .position(|f| f.remaining > 0 && (f.api == api.name() || f.api == "*"))?;
        let f = &mut self.faults[i];
        f.remaining -= 1;
        let taken = f.clone();
        if f.remaining == 0 {
            self.faults.remove(i);
        }
        Some(taken)
    }

    /// Counts a call against the daily quota; false when the quota is already spent.
    pub fn spend_quota(&mut self, api: Api, actor: &str) -> bool {
        let day = self.now().div_euclid(86_400);
        let limit = self.config.daily_quota.limit(api.name());
        let used = self
            .quota_used
            .entry((api, actor.to_string(), day))
            .or_insert(0);
        if *used >= limit {
            return false;
        }
        *used += 1;
        true
    }

    // ---- authorization ----

    /// Records a (re)authorization: new refresh token, auth time, grant; returns the new
    /// single-use authorization code and whether the merchant was already authorized.
    pub fn authorize(&mut self, appid: &str, func_info: Vec<u32>) -> Option<(String, bool)> {
        let now = self.now();
        self.auth_seq += 1;
        let seq = self.auth_seq;
        let merchant = self.merchants.get_mut(appid)?;
        let was = merchant.authorization.is_some();
        merchant.authorization = Some(Authorization {
            refresh_token: format!("refreshtoken@@@{}", random_alnum(48)),
            auth_time: now,
            func_info,
            seq,
        });
        Some((self.new_auth_code(appid), was))
    }

    pub fn new_auth_code(&mut self, appid: &str) -> String {
        let code = format!("queryauthcode@@@{}", random_alnum(64));
        let expires_at = self.now().saturating_add(self.config.auth_code_ttl_secs);
        self.auth_codes.insert(
            code.clone(),
            AuthCode {
                appid: appid.to_string(),
                expires_at,
                used: false,
            },
        );
        code
    }

    /// A fresh login code for `user` in mini program `appid` (what `wx.login` gives the app).
    pub fn new_js_code(&mut self, appid: &str, user: &str) -> String {
        let code = random_alnum(32);
        let expires_at = self.now().saturating_add(self.config.js_code_ttl_secs);
        self.js_codes.insert(
            code.clone(),
            JsCode {
                appid: appid.to_string(),
                user: user.to_string(),
                expires_at,
                used: false,
            },
        );
        code
    }

    pub fn new_open_appid(&self) -> String {
        loop {
            let id = format!("wx{}", random_hex(16));
            if !self.open_accounts.contains_key(&id) && !self.merchants.contains_key(&id) {
                return id;
            }
        }
    }

    /// A summary for `GET /sandbox/state`.
    pub fn summary(&self) -> Value {
        let now = self.now();
        let live_tokens = |component: bool| {
            self.tokens
                .values()
                .filter(|e| matches!(e.owner, Owner::Component) == component)
                .filter(|e| self.check_token_entry(e, now))
                .count()
        };
        let current_token = |owner: &Owner| {
            self.chains
                .get(owner)
                .and_then(|c| c.last())
                .cloned()
                .unwrap_or_default()
        };
        let merchants: Vec<Value> = self
            .merchants
            .values()
            .map(|m| {
                json!({
                    "appid": m.appid,
                    "kind": m.kind,
                    "subject": m.subject,
                    "nick_name": m.nick_name,
                    "user_name": m.user_name,
                    "service_type": m.service_type,
                    "verify_type": m.verify_type,
                    "func_info": m.func_info,
                    "authorized": m.authorization.is_some(),
                    "authorization": m.authorization,
                    "authorizer_access_token": current_token(&Owner::Authorizer(m.appid.clone())),
                    "open_appid": m.open_appid,
                    "followers": m.followers,
                })
            })
            .collect();
        json!({
            "now": now,
            "clock_offset": self.clock_offset,
            "component_appid": self.config.component_appid,
            "latest_ticket": self.latest_ticket,
            "tickets_pushed": self.tickets.len(),
            "component_access_token": current_token(&Owner::Component),
            "live_component_tokens": live_tokens(true),
            "live_authorizer_tokens": live_tokens(false),
            "pre_auth_codes_unused": self.pre_auth_codes.values().filter(|c| !c.used && c.expires_at > now).count(),
            "auth_codes_unused": self.auth_codes.values().filter(|c| !c.used && c.expires_at > now).count(),
            "merchants": merchants,
            "authorized": self.merchants.values().filter(|m| m.authorization.is_some()).map(|m| m.appid.clone()).collect::<Vec<_>>(),
            "open_accounts": self.open_accounts.values().collect::<Vec<_>>(),
            "qrcodes_live": self.qrcodes.values().filter(|q| q.expires_at > now).count(),
            "faults": self.faults,
            "calls": self.calls.len(),
            "pushes": self.pushes.len(),
            "custom_messages": self.custom_messages.len(),
        })
    }

    fn check_token_entry(&self, e: &TokenEntry, now: i64) -> bool {
        !e.revoked
            && now < e.expires_at
            && e.superseded_at
                .is_none_or(|at| now < at.saturating_add(self.config.token_overlap_secs))
    }
}

fn default_merchants() -> Vec<Merchant> {
    use Kind::*;
    let mut subscription = Merchant::new("wxoa00000000000004", OfficialAccount, "Acme Ltd").with(
        "Acme News",
        "gh_oa000000000004",
        0,
        -1,
    );
    subscription.func_info = vec![1, 2, 3, 4, 6, 7, 11, 15, 24];
    vec![
        Merchant::new("wxoa00000000000001", OfficialAccount, "Acme Ltd").with(
            "Acme Service",
            "gh_oa000000000001",
            2,
            0,
        ),
        Merchant::new("wxmp00000000000001", MiniProgram, "Acme Ltd").with(
            "Acme Mini",
            "gh_mp000000000001",
            0,
            0,
        ),
        Merchant::new("wxoa00000000000002", OfficialAccount, "Acme Ltd").with(
            "Acme Support",
            "gh_oa000000000002",
            2,
            0,
        ),
        Merchant::new("wxoa00000000000003", OfficialAccount, "Other Co").with(
            "Other Service",
            "gh_oa000000000003",
            2,
            0,
        ),
        subscription,
        Merchant::new("wx570bc396a51b8ff8", OfficialAccount, "WeChat release test").with(
            "Release test account",
            "gh_3c884a361561",
            2,
            0,
        ),
        Merchant::new("wxd101a85aa106f53e", MiniProgram, "WeChat release test").with(
            "Release test mini program",
            "gh_8dad206e9538",
            0,
            0,
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_chain_keeps_one_previous() {
        let mut st = State::new(SandboxConfig::default());
        let a = st.issue_token(Owner::Component);
        assert!(st.check_token(Some(&a), Want::Component).is_ok());
        let b = st.issue_token(Owner::Component);
        assert!(st.check_token(Some(&a), Want::Component).is_ok());
        assert!(st.check_token(Some(&b), Want::Component).is_ok());
        assert_eq!(st.check_token(Some(&b), Want::Authorizer), Err(40001));
        let c = st.issue_token(Owner::Component);
        assert_eq!(st.check_token(Some(&a), Want::Component), Err(40001));
        assert!(st.check_token(Some(&b), Want::Component).is_ok());
        assert!(st.check_token(Some(&c), Want::Component).is_ok());
        st.clock_offset += 300;
        assert_eq!(st.check_token(Some(&b), Want::Component), Err(40001));
        assert!(st.check_token(Some(&c), Want::Component).is_ok());
        st.clock_offset += 7200;
        assert_eq!(st.check_token(Some(&c), Want::Component), Err(42001));
        assert_eq!(st.check_token(None, Want::Component), Err(41001));
        assert_eq!(st.check_token(Some("nope"), Want::Component), Err(40001));
    }
}
