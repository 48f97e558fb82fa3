//! The scheduled refresher: keeps the component token and every authorizer token fresh, completes
//! pending authorizations, recovers lost refresh tokens, watches the ticket's age, and sweeps the
//! events outbox ([`sweep_outbox`]).
//!
//! Work is O(due tokens): the due set comes from the sparse refresh index, never a scan. Safe to
//! run twice at once: every refresh goes through the lease protocol, and a token another worker
//! is refreshing is skipped.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use futures_util::stream::{self, StreamExt};
use serde::Serialize;

use crate::authorization;
use crate::clock::Clock;
use crate::config::Config;
use crate::events::outbox::{self, SweepReport};
use crate::events::{AuthorizationChange, Event, EventPublisher};
use crate::model::{AuthorizationKind, TokenKey};
use crate::secrets::CredentialsProvider;
use crate::store::TokenServiceStore;
use crate::store::outbox::EventRecordStore;
use crate::tokens::{TokenError, TokenService};
use crate::wechat::ErrorKind;

/// A ticket is valid 12 hours.
pub const TICKET_MAX_AGE_SECS: i64 = 12 * 3600;
/// Tickets come every 10 minutes; an hour without one is worth a warning.
pub const TICKET_WARN_AGE_SECS: i64 = 3600;

#[derive(Debug, Clone)]
pub struct RefreshSettings {
    /// Tokens expiring within this many seconds are refreshed.
    pub window_secs: i64,
    /// WeChat calls in flight at once.
    pub concurrency: usize,
    /// Most authorizer tokens refreshed per run (the rest are due next run).
    pub max_per_run: usize,
    /// Most missing profiles read per run.
    pub max_profiles_per_run: usize,
    /// When this invocation ends (the Lambda context's deadline). A refresh is started only
    /// while a whole lease still fits before it: a refresh cut off by the timeout would have
    /// spent WeChat's call and lost its write. `None`: no deadline (tests, benchmarks).
    pub deadline: Option<SystemTime>,
}

impl RefreshSettings {
    /// These settings for an invocation ending at `deadline`.
    pub fn until(&self, deadline: SystemTime) -> Self {
        Self {
            deadline: Some(deadline),
            ..self.clone()
        }
    }

    /// True while a refresh holding a lease of `lease_secs` can finish before the deadline.
    pub fn has_time_for(&self, lease_secs: i64) -> bool {
        let lease = Duration::from_secs(u64::try_from(lease_secs).unwrap_or(0));
        self.deadline.is_none_or(|d| SystemTime::now() + lease <= d)
    }

    /// The settings as deployed (`REFRESH_WINDOW_SECONDS`).
    pub fn from_config(config: &Config) -> Self {
        Self {
            window_secs: i64::try_from(config.refresh_window.as_secs()).unwrap_or(900),
            ..Self::default()
        }
    }
}

impl Default for RefreshSettings {
    fn default() -> Self {
        Self {
            window_secs: 900,
            concurrency: 16,
            max_per_run: 20_000,
            max_profiles_per_run: 50,
            deadline: None,
        }
    }
}

/// What one run did. Also the function's result and the source of its metrics.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RefreshReport {
    pub ticket_age_secs: Option<i64>,
    pub ticket_requested: bool,
    pub component_refreshed: bool,
    pub pending_completed: u32,
    pub due: u32,
    pub refreshed: u32,
    /// Due tokens another worker was already refreshing.
    pub skipped: u32,
    pub recovered: u32,
    /// Missing profiles read from WeChat.
    pub profiles_filled: u32,
    /// Refreshes not started because the invocation's deadline was too close (due next run).
    pub deferred_for_deadline: u32,
    /// Failures by cause (`errcode_61023`, `timeout`, `store`, ...).
    pub failures: BTreeMap<String, u32>,
    pub wechat_token_calls: u64,
    /// wxopen's own authorization state changes this run made (`authorization.changed`, for
    /// the function to publish): pending authorizations completed, `needs_reauth`,
    /// `recovered`, and `unauthorized` for an authorizer WeChat no longer lists.
    #[serde(skip)]
    pub changes: Vec<Event>,
}

impl RefreshReport {
    /// Records a change of `appid` (`cause` makes its id stable across retries of one run).
    fn change(&mut self, appid: &str, change: AuthorizationChange, cause: &str, now: i64) {
        let fields = BTreeMap::from([("cause".to_string(), "refresher".to_string())]);
        self.changes.push(Event::authorization_changed(
            appid, change, cause, now, now, None, fields,
        ));
    }

    fn fail(&mut self, e: &TokenError) {
        *self.failures.entry(failure_label(e)).or_default() += 1;
    }

    pub fn failure_count(&self) -> u32 {
        self.failures.values().sum()
    }
}

/// A metric label for a failure (never contains secrets).
pub fn failure_label(e: &TokenError) -> String {
    match e {
        TokenError::WeChat(w) => match w.errcode() {
            Some(code) => format!("errcode_{code}"),
            None => match w {
                crate::wechat::WeChatError::Timeout { .. } => "timeout".into(),
                crate::wechat::WeChatError::Http { status, .. } => format!("http_{status}"),
                _ => "transport".into(),
            },
        },
        TokenError::NoTicket => "no_ticket".into(),
        TokenError::UnknownAuthorizer => "unknown_authorizer".into(),
        TokenError::NotAuthorized(_) => "not_authorized".into(),
        TokenError::Busy => "busy".into(),
        TokenError::VersionAhead { .. } => "version_ahead".into(),
        TokenError::Store(_) => "store".into(),
        TokenError::Secrets(_) => "secrets".into(),
    }
}

/// Most outbox entries republished per run (the rest wait for the next run, 5 minutes later).
pub const OUTBOX_SWEEP_MAX: usize = 2000;

/// The outbox part of a run: events EventBridge refused earlier are published now, oldest
/// first. Its report feeds `EventsRepublished` and `OutboxAgeSeconds` (the alarm's metric).
pub async fn sweep_outbox<S, P>(store: &S, publisher: &P, now: i64) -> SweepReport
where
    S: EventRecordStore,
    P: EventPublisher,
{
    match outbox::sweep(store, publisher, now, OUTBOX_SWEEP_MAX).await {
        Ok(report) => {
            if report.republished > 0 || report.failed > 0 {
                tracing::info!(
                    republished = report.republished,
                    failed = report.failed,
                    oldest_age_secs = report.oldest_age_secs,
                    "outbox swept"
                );
            }
            report
        }
        Err(e) => {
            tracing::error!(error = %e, "outbox could not be swept");
            SweepReport {
                remaining: true,
                ..SweepReport::default()
            }
        }
    }
}

/// One scheduled run.
pub async fn run<S, C, K>(
    svc: &TokenService<'_, S, C, K>,
    settings: &RefreshSettings,
) -> RefreshReport
where
    S: TokenServiceStore,
    C: CredentialsProvider,
    K: Clock,
{
    let mut report = RefreshReport::default();
    let now = svc.clock.now();

    // 1. The ticket: without a fresh one the component token cannot be renewed.
    match svc.store.get_ticket().await {
        Ok(ticket) => {
            let age = ticket.as_ref().map(|t| now - t.create_time);
            report.ticket_age_secs = age;
            if age.is_none_or(|a| a > TICKET_MAX_AGE_SECS) {
                tracing::error!(
                    ticket_age_secs = age,
                    "component ticket missing or older than 12 h; asking WeChat to push one"
                );
                match svc.credentials.credentials().await {
                    Ok(creds) => {
                        svc.ask_for_ticket(&creds).await;
                        report.ticket_requested = true;
                    }
                    Err(e) => report.fail(&e.into()),
                }
            } else if age.is_some_and(|a| a > TICKET_WARN_AGE_SECS) {
                tracing::warn!(ticket_age_secs = age, "no ticket pushed for over an hour");
            }
        }
        Err(e) => report.fail(&e.into()),
    }

    // 2. The component token, if due.
    match svc.store.get_token(&TokenKey::Component).await {
        Ok(record) => {
            let (version, expires_at) = record.map_or((0, 0), |r| (r.version, r.expires_at));
            if expires_at <= now + settings.window_secs
                && report.ticket_age_secs.is_some()
                && settings.has_time_for(svc.settings.lease_secs)
            {
                match svc.try_refresh(&TokenKey::Component, version).await {
                    Ok(Some(_)) => report.component_refreshed = true,
                    Ok(None) => report.skipped += 1,
                    Err(e) => {
                        tracing::error!(error = %e, "component token refresh failed");
                        report.fail(&e);
                    }
                }
            }
        }
        Err(e) => report.fail(&e.into()),
    }

    // 3. Pending authorizations the callbacks could not finish.
    match svc.store.list_pending_authorizations().await {
        Ok(pending) => {
            let results: Vec<_> = stream::iter(pending.iter())
                .map(|p| async move { (p, authorization::complete_pending(svc, p).await) })
                .buffer_unordered(settings.concurrency.max(1))
                .collect()
                .await;
            for (p, r) in results {
                match r {
                    Ok(exchange) => {
                        report.pending_completed += 1;
                        let change = match p.kind {
                            AuthorizationKind::Authorized => AuthorizationChange::Authorized,
                            AuthorizationKind::UpdateAuthorized => AuthorizationChange::Updated,
                        };
                        report.changes.extend(authorization::exchange_change(
                            &exchange,
                            change,
                            &p.authorization_code,
                            "refresher",
                            p.create_time,
                            now,
                            None,
                        ));
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "pending authorization not completed");
                        report.fail(&e);
                    }
                }
            }
        }
        Err(e) => report.fail(&e.into()),
    }

    // 3b. Profiles api_get_authorizer_info could not give when the authorizer authorized.
    match authorization::fill_missing_profiles(svc, settings.max_profiles_per_run).await {
        Ok(done) => report.profiles_filled = done.filled,
        Err(e) => report.fail(&e),
    }

    // 4. Authorizer tokens due within the window (from the index).
    match svc
        .store
        .due_tokens(
            now + settings.window_secs,
            settings.max_per_run.saturating_add(1),
        )
        .await
    {
        Ok(due) => {
            let due: Vec<_> = due
                .into_iter()
                .filter(|d| matches!(d.key, TokenKey::Authorizer(_)))
                .take(settings.max_per_run)
                .collect();
            report.due = u32::try_from(due.len()).unwrap_or(u32::MAX);
            let lease_secs = svc.settings.lease_secs;
            let results: Vec<_> = stream::iter(due.iter())
                .map(|d| async move {
                    if !settings.has_time_for(lease_secs) {
                        return (d, None);
                    }
                    (d, Some(svc.try_refresh(&d.key, d.version).await))
                })
                .buffer_unordered(settings.concurrency.max(1))
                .collect()
                .await;
            for (d, r) in results {
                match r {
                    None => report.deferred_for_deadline += 1,
                    Some(Ok(Some(_))) => report.refreshed += 1,
                    Some(Ok(None)) => report.skipped += 1,
                    Some(Err(e)) => {
                        tracing::error!(error = %e, authorizer = d.key.label(), "authorizer token refresh failed");
                        report.fail(&e);
                        if let (TokenKey::Authorizer(appid), TokenError::WeChat(w)) = (&d.key, &e)
                            && w.kind() == Some(ErrorKind::RefreshTokenInvalid)
                        {
                            let cause = format!("needs_reauth:v{}", d.version);
                            report.change(appid, AuthorizationChange::NeedsReauth, &cause, now);
                        }
                        let label = failure_label(&e);
                        if let Err(b) = svc
                            .back_off(&d.key, d.version, &e, &label, settings.window_secs)
                            .await
                        {
                            report.fail(&b);
                        }
                    }
                }
            }
        }
        Err(e) => report.fail(&e.into()),
    }

    // 5. Refresh tokens WeChat rejected (61023): recover them from the authorizer list.
    match svc.recover_refresh_tokens().await {
        Ok(recovery) => {
            report.recovered = u32::try_from(recovery.restored.len()).unwrap_or(u32::MAX);
            for appid in &recovery.revoked {
                report.change(appid, AuthorizationChange::Unauthorized, "unlisted", now);
            }
            for appid in recovery.restored {
                // The restore bumped the token's version: the event's id names it.
                let key = TokenKey::Authorizer(appid.clone());
                let version = svc.store.get_token(&key).await;
                let cause = match &version {
                    Ok(r) => format!("recovered:v{}", r.as_ref().map_or(0, |r| r.version)),
                    Err(_) => "recovered".to_string(),
                };
                report.change(&appid, AuthorizationChange::Recovered, &cause, now);
                let version = match version {
                    Ok(r) => r.map_or(0, |r| r.version),
                    Err(e) => {
                        report.fail(&e.into());
                        continue;
                    }
                };
                match svc.try_refresh(&key, version).await {
                    Ok(Some(_)) => report.refreshed += 1,
                    Ok(None) => report.skipped += 1,
                    Err(e) => report.fail(&e),
                }
            }
        }
        Err(e) => report.fail(&e),
    }

    // The customers of the authorizers that changed (one read each; changes are rare).
    for change in &mut report.changes {
        if let Ok(Some(a)) = svc.store.get_authorizer(&change.detail.appid).await {
            change.detail.customer_ref = a.customer_ref;
        }
    }
    report.wechat_token_calls = svc.counters().wechat_token_calls;
    report
}

/// The `level` every metric line carries. Lambda's log-level filter gives a JSON line without a
/// `level` the level INFO, so with the template's `LogLevel` at WARN or ERROR the metric lines
/// (and the ticket-age alarm's data, whose missing data is "breaching") would vanish; ERROR is
/// the highest `LogLevel` the template allows, so these lines always pass.
pub const METRIC_LOG_LEVEL: &str = "ERROR";

/// CloudWatch embedded-metric-format lines for a report: one with the counts, one per failure
/// cause (dimension `cause`).
pub fn emf_lines(report: &RefreshReport, timestamp_ms: i64) -> Vec<String> {
    let mut lines = Vec::new();
    let mut main = serde_json::json!({
        "_aws": {
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [{
                "Namespace": "wxopen",
                "Dimensions": [["Function"]],
                "Metrics": [
                    {"Name": "TokensRefreshed", "Unit": "Count"},
                    {"Name": "TokensDue", "Unit": "Count"},
                    {"Name": "RefreshFailures", "Unit": "Count"},
                    {"Name": "RefreshTokensRecovered", "Unit": "Count"},
                    {"Name": "PendingAuthorizationsCompleted", "Unit": "Count"},
                    {"Name": "WeChatTokenCalls", "Unit": "Count"},
                ],
            }],
        },
        "Function": "token-refresh",
        "level": METRIC_LOG_LEVEL,
        "TokensRefreshed": report.refreshed + u32::from(report.component_refreshed),
        "TokensDue": report.due,
        "RefreshFailures": report.failure_count(),
        "RefreshTokensRecovered": report.recovered,
        "PendingAuthorizationsCompleted": report.pending_completed,
        "WeChatTokenCalls": report.wechat_token_calls,
    });
    if let (Some(age), Some(obj)) = (report.ticket_age_secs, main.as_object_mut()) {
        obj.insert("TicketAgeSeconds".into(), age.into());
        if let Some(metrics) = obj
            .get_mut("_aws")
            .and_then(|a| a.get_mut("CloudWatchMetrics"))
            .and_then(|m| m.get_mut(0))
            .and_then(|m| m.get_mut("Metrics"))
            .and_then(|m| m.as_array_mut())
        {
            metrics.push(serde_json::json!({"Name": "TicketAgeSeconds", "Unit": "Seconds"}));
        }
    }
    lines.push(main.to_string());
    for (cause, count) in &report.failures {
        lines.push(
            serde_json::json!({
                "_aws": {
                    "Timestamp": timestamp_ms,
                    "CloudWatchMetrics": [{
                        "Namespace": "wxopen",
                        "Dimensions": [["Function", "Cause"]],
                        "Metrics": [{"Name": "RefreshFailuresByCause", "Unit": "Count"}],
                    }],
                },
                "Function": "token-refresh",
                "level": METRIC_LOG_LEVEL,
                "Cause": cause,
                "RefreshFailuresByCause": count,
            })
            .to_string(),
        );
    }
    lines
}
