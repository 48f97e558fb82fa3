//! Fast registration of mini programs for merchants without one: the enterprise route (the
//! legal person opens the authorisation URL WeChat gives within 24 h) and the official-account
//! route (set 27: a verified official account's subject reused, its admin confirming on
//! WeChat's `fastregisterauth` page, which sends the browser back with a `ticket`).
//!
//! This feature validates, starts a registration, stores it and says what state it is in. What
//! happens when WeChat reports the outcome (the push, or the official account's ticket) needs
//! the code exchange of `authorization` too, so it is composed in
//! `callbacks::fast_registration`.

use url::Url;

use crate::appid;
use crate::clock::Clock;
use crate::config::Config;
use crate::events::{Event, EventError};
use crate::model::{
    AccountKind, AuthorizerState, Registration, RegistrationKind, RegistrationOutcome,
    RegistrationState,
};
use crate::permissions;
use crate::secrets::CredentialsProvider;
use crate::store::{RegistrationStore, StoreError, TokenServiceStore};
use crate::tokens::{TokenError, TokenService};
use crate::wechat::EnterpriseEndpoint;

pub mod status;
pub mod validate;

pub use status::{is_timeout, status_meaning};
pub use validate::{
    RegistrationError, check_credit_code, check_name, check_phone, with_check_char,
};

/// The permission set an official account must grant for the official-account route.
pub const OA_FAST_REGISTER_SET: u32 = 27;

/// Settings built from [`Config`].
#[derive(Debug, Clone)]
pub struct RegistrationSettings {
    /// Where and how the enterprise API is called (`FAST_REGISTER_PATH`,
    /// `FAST_REGISTER_TOKEN_PARAM`).
    pub endpoint: EnterpriseEndpoint,
    /// Host of WeChat's `fastregisterauth` page (`FAST_REGISTER_AUTH_BASE`, default the
    /// `WECHAT_MP_BASE`).
    pub auth_base: String,
    /// WeChat's deadline for the confirmation: 24 h.
    pub ttl_secs: i64,
}

impl RegistrationSettings {
    pub fn from_config(config: &Config) -> Self {
        Self {
            endpoint: EnterpriseEndpoint {
                path: config.fast_register_path.clone(),
                // Validated by `Config` to be one of the two names.
                token_param: crate::wechat::TokenParam::parse(&config.fast_register_token_param)
                    .unwrap_or_default(),
            },
            auth_base: config
                .fast_register_auth_base
                .clone()
                .unwrap_or_else(|| config.wechat_mp_base.clone()),
            ttl_secs: 86_400,
        }
    }
}

/// What `POST /fast-registrations` asks for, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRegistration {
    pub kind: RegistrationKind,
    pub name: String,
    pub code: String,
    pub component_phone: String,
    pub customer_ref: String,
    pub oa_appid: Option<String>,
    pub return_to: Option<String>,
}

/// The fields of the request, as text (the edge reads the JSON).
#[derive(Debug, Clone, Default)]
pub struct RegistrationRequest<'a> {
    pub kind: Option<&'a str>,
    pub name: Option<&'a str>,
    pub code: Option<&'a str>,
    pub component_phone: Option<&'a str>,
    pub customer_ref: Option<&'a str>,
    pub oa_appid: Option<&'a str>,
}

impl NewRegistration {
    /// Validates every field (`return_to` is checked by the caller against its allow-list).
    pub fn parse(
        r: &RegistrationRequest<'_>,
        return_to: Option<String>,
    ) -> Result<Self, RegistrationError> {
        let kind = match r.kind.map(str::trim).filter(|k| !k.is_empty()) {
            None | Some("enterprise") => RegistrationKind::Enterprise,
            Some("official_account") => RegistrationKind::OfficialAccount,
            Some(_) => return Err(RegistrationError::Kind),
        };
        let customer_ref =
            crate::model::customer_ref(r.customer_ref).ok_or(RegistrationError::CustomerRef)?;
        let oa_appid = match (kind, r.oa_appid.map(str::trim).filter(|a| !a.is_empty())) {
            (RegistrationKind::OfficialAccount, Some(a)) if appid::is_valid(a) => {
                Some(a.to_string())
            }
            (RegistrationKind::OfficialAccount, _) => return Err(RegistrationError::OaAppid),
            (RegistrationKind::Enterprise, _) => None,
        };
        Ok(Self {
            kind,
            name: check_name(r.name)?,
            code: check_credit_code(r.code)?,
            component_phone: check_phone(r.component_phone)?,
            customer_ref,
            oa_appid,
            return_to,
        })
    }
}

/// Why a registration could not be started.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Token(#[from] TokenError),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// WeChat answered without an authorisation URL.
    #[error("WeChat's answer carried no authorize_url")]
    NoAuthorizeUrl,
    /// The official account is not an authorized, known official account of this platform.
    #[error("oa_appid is not an authorized official account of this platform")]
    UnknownOfficialAccount,
    #[error(transparent)]
    Permissions(#[from] permissions::MissingPermissions),
}

/// A registration id as issued: 32 lowercase hex characters. Anything else is never looked up.
pub fn is_registration_id(id: &str) -> bool {
    id.len() == 32 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

fn new_id() -> String {
    format!("{:032x}", rand::random::<u128>())
}

/// Where WeChat's `fastregisterauth` page sends the admin back:
/// `{public_base}/fast-registrations/{id}/callback` (WeChat appends `ticket`).
pub fn callback_uri(public_base: &str, id: &str) -> String {
    format!(
        "{}/fast-registrations/{id}/callback",
        public_base.trim_end_matches('/')
    )
}

/// `{auth_base}/cgi-bin/fastregisterauth?appid=&component_appid=&copy_wx_verify=1&redirect_uri=`
/// (the form community posts give; not confirmed by WeChat's docs, hence a configurable host).
pub fn fastregisterauth_url(
    auth_base: &str,
    oa_appid: &str,
    component_appid: &str,
    redirect_uri: &str,
) -> Result<String, url::ParseError> {
    let mut url = Url::parse(&format!(
        "{}/cgi-bin/fastregisterauth",
        auth_base.trim_end_matches('/')
    ))?;
    url.query_pairs_mut()
        .append_pair("appid", oa_appid)
        .append_pair("component_appid", component_appid)
        .append_pair("copy_wx_verify", "1")
        .append_pair("redirect_uri", redirect_uri);
    Ok(url.into())
}

/// `POST /fast-registrations`: starts the registration (the enterprise API, or the official
/// account's page URL) and stores it pending.
pub async fn start<S, C, K>(
    svc: &TokenService<'_, S, C, K>,
    settings: &RegistrationSettings,
    public_base: &str,
    request: &NewRegistration,
) -> Result<Registration, StartError>
where
    S: TokenServiceStore + RegistrationStore,
    C: CredentialsProvider,
    K: Clock,
{
    let id = new_id();
    let creds = svc
        .credentials
        .credentials()
        .await
        .map_err(TokenError::from)?;
    let (taskid, authorize_url) = match (request.kind, &request.oa_appid) {
        (RegistrationKind::OfficialAccount, Some(oa)) => {
            let record = svc
                .store
                .get_authorizer(oa)
                .await?
                .filter(|r| {
                    r.state == AuthorizerState::Authorized
                        && r.profile
                            .as_ref()
                            .is_none_or(|p| p.kind == AccountKind::OfficialAccount)
                })
                .ok_or(StartError::UnknownOfficialAccount)?;
            permissions::require(&record, &[OA_FAST_REGISTER_SET])?;
            let url = fastregisterauth_url(
                &settings.auth_base,
                oa,
                &creds.component_appid,
                &callback_uri(public_base, &id),
            )
            .map_err(|_| StartError::NoAuthorizeUrl)?;
            (None, url)
        }
        (RegistrationKind::OfficialAccount, None) => {
            return Err(StartError::UnknownOfficialAccount);
        }
        (RegistrationKind::Enterprise, _) => {
            let task = svc
                .with_component_token(|t| async move {
                    svc.wechat
                        .fast_register_enterprise(
                            &t,
                            &settings.endpoint,
                            &request.name,
                            &request.code,
                            &request.component_phone,
                        )
                        .await
                })
                .await?;
            let url = task.authorize_url.ok_or(StartError::NoAuthorizeUrl)?;
            (task.taskid, url)
        }
    };
    let now = svc.clock.now();
    let registration = Registration {
        id,
        kind: request.kind,
        customer_ref: request.customer_ref.clone(),
        name: request.name.clone(),
        code: request.code.clone(),
        component_phone: request.component_phone.clone(),
        oa_appid: request.oa_appid.clone(),
        return_to: request.return_to.clone(),
        taskid,
        authorize_url,
        state: RegistrationState::Pending,
        appid: None,
        wechat_status: None,
        status_meaning: None,
        created_at: now,
        updated_at: now,
        expires_at: now + settings.ttl_secs,
    };
    svc.store.create_registration(&registration).await?;
    tracing::info!(registration = %registration.id, kind = ?registration.kind, "fast registration started");
    Ok(registration)
}

/// The state `GET /fast-registrations/{id}` shows: `pending`, `succeeded`, `failed`, or
/// `expired` (pending past its 24 h).
pub fn state_name(r: &Registration, now: i64) -> &'static str {
    match r.state {
        RegistrationState::Succeeded => "succeeded",
        RegistrationState::Failed => "failed",
        RegistrationState::Pending if r.expires_at <= now => "expired",
        RegistrationState::Pending => "pending",
    }
}

/// The registration a browser callback names, if it may still complete: a well-formed id of a
/// live, pending official-account registration (one read; nothing else for a stranger).
pub async fn live_registration<S: RegistrationStore>(
    store: &S,
    id: &str,
    now: i64,
) -> Result<Option<Registration>, StoreError> {
    if !is_registration_id(id) {
        return Ok(None);
    }
    Ok(store.get_registration(id).await?.filter(|r| {
        r.kind == RegistrationKind::OfficialAccount
            && r.state == RegistrationState::Pending
            && r.expires_at > now
    }))
}

/// The registration a push names: by taskid when present, else by credit code, else by name.
pub async fn find_registration<S: RegistrationStore>(
    store: &S,
    taskid: Option<&str>,
    code: Option<&str>,
    name: Option<&str>,
) -> Result<Option<Registration>, StoreError> {
    use crate::store::RegistrationKey;
    let code = code.map(|c| c.trim().to_ascii_uppercase());
    let keys = [
        taskid.map(RegistrationKey::Task),
        code.as_deref().map(RegistrationKey::Code),
        name.map(str::trim).map(RegistrationKey::Name),
    ];
    for key in keys.into_iter().flatten() {
        if let Some(id) = store.registration_for(&key).await?
            && let Some(r) = store.get_registration(&id).await?
        {
            return Ok(Some(r));
        }
    }
    Ok(None)
}

/// Records the outcome and tells whether it changed the registration.
pub async fn finish<S: RegistrationStore>(
    store: &S,
    r: &Registration,
    outcome: &RegistrationOutcome,
    now: i64,
) -> Result<bool, StoreError> {
    let changed = store.finish_registration(r, outcome, now).await?;
    if changed {
        tracing::info!(registration = %r.id, outcome = ?outcome_name(outcome), "fast registration finished");
    }
    Ok(changed)
}

fn outcome_name(o: &RegistrationOutcome) -> &'static str {
    match o {
        RegistrationOutcome::Succeeded { .. } => "succeeded",
        RegistrationOutcome::Failed { .. } => "failed",
    }
}

/// The `registration.changed` event of a registration that just reached `outcome` (`cause`:
/// what caused it, stable across retries). No auth code, phone or ticket in it.
pub fn changed_event(
    r: &Registration,
    outcome: &RegistrationOutcome,
    cause: &str,
    event_time: i64,
    now: i64,
) -> Result<Event, EventError> {
    let mut fields = std::collections::BTreeMap::new();
    fields.insert("registration_id".to_string(), r.id.clone());
    fields.insert(
        "kind".to_string(),
        match r.kind {
            RegistrationKind::Enterprise => "enterprise",
            RegistrationKind::OfficialAccount => "official_account",
        }
        .to_string(),
    );
    fields.insert("name".to_string(), r.name.clone());
    let (state, appid) = match outcome {
        RegistrationOutcome::Succeeded { appid } => ("succeeded", appid.clone()),
        RegistrationOutcome::Failed { status, meaning } => {
            fields.insert("wechat_status".to_string(), status.to_string());
            fields.insert("status_meaning".to_string(), meaning.clone());
            ("failed", r.oa_appid.clone().unwrap_or_default())
        }
    };
    fields.insert("state".to_string(), state.to_string());
    Ok(Event::registration_changed(
        &appid,
        &r.id,
        state,
        cause,
        event_time,
        now,
        Some(&r.customer_ref),
        fields,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request<'a>() -> RegistrationRequest<'a> {
        RegistrationRequest {
            kind: None,
            name: Some("Acme Ltd"),
            code: Some("91350100M000100Y43"),
            component_phone: Some("13800138000"),
            customer_ref: Some("cust-1"),
            oa_appid: None,
        }
    }

    #[test]
    fn requests_validate() {
        let r = NewRegistration::parse(&request(), None).unwrap();
        assert_eq!(r.kind, RegistrationKind::Enterprise);
        assert_eq!(r.oa_appid, None);
        let oa = RegistrationRequest {
            kind: Some("official_account"),
            ..request()
        };
        assert_eq!(
            NewRegistration::parse(&oa, None),
            Err(RegistrationError::OaAppid)
        );
        let oa = RegistrationRequest {
            oa_appid: Some("wxoa00000000000001"),
            ..oa
        };
        assert_eq!(
            NewRegistration::parse(&oa, None)
                .unwrap()
                .oa_appid
                .as_deref(),
            Some("wxoa00000000000001")
        );
        let bad = RegistrationRequest {
            kind: Some("personal"),
            ..request()
        };
        assert_eq!(
            NewRegistration::parse(&bad, None),
            Err(RegistrationError::Kind)
        );
        let bad = RegistrationRequest {
            customer_ref: None,
            ..request()
        };
        assert_eq!(
            NewRegistration::parse(&bad, None),
            Err(RegistrationError::CustomerRef)
        );
    }

    #[test]
    fn the_oa_page_url_is_encoded() {
        let u = fastregisterauth_url(
            "https://mp.weixin.qq.com/",
            "wxoa00000000000001",
            "wxc",
            "https://x.example/fast-registrations/ab/callback",
        )
        .unwrap();
        assert_eq!(
            u,
            "https://mp.weixin.qq.com/cgi-bin/fastregisterauth?appid=wxoa00000000000001&component_appid=wxc&copy_wx_verify=1&redirect_uri=https%3A%2F%2Fx.example%2Ffast-registrations%2Fab%2Fcallback"
        );
        assert!(is_registration_id(&new_id()));
        assert!(!is_registration_id("nope"));
    }
}
