//! The reply hook: one port, two adapters (an HMAC-signed HTTPS call, a synchronous Lambda
//! invoke), and [`ask`], which holds any hook to its budget.
//!
//! The hook receives the message as in the event's `detail` (JSON) and answers a reply (see
//! `reply::model`) or nothing. A timeout, a transport error, a non-2xx status, a Lambda
//! `FunctionError`, an oversize or malformed answer: no reply (the caller answers `success`;
//! the event is still published) and a `ReplyHookFailures` metric with its cause.

use std::future::Future;
use std::time::{Duration, Instant};

use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::InvocationType;
use hmac::{Hmac, KeyInit, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;

use super::model::{MAX_ANSWER_BYTES, PassiveReply, ReplyError};
use crate::config::Config;
use crate::events::metrics::{Metric, emf_line};

/// Default budget: inside WeChat's 5 s, with room for the store and the answer.
pub const DEFAULT_BUDGET: Duration = Duration::from_secs(3);
/// The signature header of the HTTPS hook: `t=<unix seconds>,v1=<hex HMAC-SHA256>`.
pub const SIGNATURE_HEADER: &str = "x-wxopen-signature";
/// The event id, so a hook can dedupe. wxopen asks once per push (a concurrent WeChat retry
/// waits for the first delivery's answer); only a delivery that died, and whose claim lapsed,
/// is asked again by a later retry.
pub const EVENT_ID_HEADER: &str = "x-wxopen-event-id";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HookError {
    #[error("the reply hook did not answer within its budget")]
    Timeout,
    #[error("the reply hook could not be reached")]
    Transport,
    #[error("the reply hook answered HTTP {0}")]
    Status(u16),
    #[error("the reply hook function failed")]
    FunctionError,
    #[error("{0}")]
    Answer(#[from] ReplyError),
    #[error("the HTTPS reply hook is configured but the credentials have no reply_hook_secret")]
    NoSecret,
}

impl HookError {
    /// The `Cause` dimension of `ReplyHookFailures`.
    pub fn cause(&self) -> &'static str {
        match self {
            HookError::Timeout => "timeout",
            HookError::Transport => "transport",
            HookError::Status(_) => "status",
            HookError::FunctionError => "function_error",
            HookError::NoSecret => "no_secret",
            HookError::Answer(ReplyError::TooLarge) => "too_large",
            HookError::Answer(_) => "malformed",
        }
    }
}

/// A reply hook: sends the message, returns the raw answer.
pub trait ReplyHook: Send + Sync {
    fn call(
        &self,
        event_id: &str,
        detail_json: &str,
    ) -> impl Future<Output = Result<Vec<u8>, HookError>> + Send;
}

/// What asking the hook came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HookOutcome {
    Reply(PassiveReply),
    NoReply,
    Failed(HookError),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HookReport {
    pub outcome: HookOutcome,
    pub latency_ms: u64,
}

impl HookReport {
    pub fn reply(&self) -> Option<&PassiveReply> {
        match &self.outcome {
            HookOutcome::Reply(r) => Some(r),
            _ => None,
        }
    }

    /// `ReplyHookLatencyMs` and `ReplyHookFailures` (+ the by-cause line on failure).
    pub fn emf_lines(&self, function: &str, timestamp_ms: i64) -> Vec<String> {
        let failed = matches!(self.outcome, HookOutcome::Failed(_));
        let mut lines = vec![emf_line(
            function,
            &[],
            &[
                Metric::millis("ReplyHookLatencyMs", self.latency_ms),
                Metric::count("ReplyHookFailures", u64::from(failed)),
            ],
            timestamp_ms,
        )];
        if let HookOutcome::Failed(e) = &self.outcome {
            lines.push(emf_line(
                function,
                &[("Cause", e.cause())],
                &[Metric::count("ReplyHookFailures", 1)],
                timestamp_ms,
            ));
        }
        lines
    }
}

/// Calls the hook within `budget` and parses its answer. Never fails: a failure is an outcome.
pub async fn ask<H: ReplyHook>(
    hook: &H,
    event_id: &str,
    detail_json: &str,
    budget: Duration,
) -> HookReport {
    let started = Instant::now();
    let outcome = match tokio::time::timeout(budget, hook.call(event_id, detail_json)).await {
        Err(_) => HookOutcome::Failed(HookError::Timeout),
        Ok(Err(e)) => HookOutcome::Failed(e),
        Ok(Ok(body)) => match PassiveReply::parse_answer(&body) {
            Ok(Some(r)) => HookOutcome::Reply(r),
            Ok(None) => HookOutcome::NoReply,
            Err(e) => HookOutcome::Failed(e.into()),
        },
    };
    if let HookOutcome::Failed(e) = &outcome {
        tracing::warn!(event_id, cause = e.cause(), error = %e, "reply hook failed; answering success");
    }
    HookReport {
        outcome,
        latency_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
    }
}

/// `t=<unix>,v1=<hex(HMAC-SHA256(secret, "<unix>.<body>"))>`.
pub fn signature(secret: &SecretString, unix: i64, body: &str) -> String {
    // HMAC accepts keys of any length: this cannot fail.
    let mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret.expose_secret().as_bytes())
        .map(|mut m| {
            m.update(unix.to_string().as_bytes());
            m.update(b".");
            m.update(body.as_bytes());
            hex::encode(m.finalize().into_bytes())
        })
        .unwrap_or_default();
    format!("t={unix},v1={mac}")
}

/// Verifies a signature header (for hook implementers and tests), in constant time, within
/// `tolerance` of `now`.
pub fn verify_signature(
    secret: &SecretString,
    header: &str,
    body: &str,
    now: i64,
    tolerance: Duration,
) -> bool {
    let mut t = None;
    let mut v1 = None;
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", v)) => t = v.parse::<i64>().ok(),
            Some(("v1", v)) => v1 = Some(v),
            _ => {}
        }
    }
    let (Some(t), Some(v1)) = (t, v1) else {
        return false;
    };
    if now.abs_diff(t) > tolerance.as_secs() {
        return false;
    }
    let expected = signature(secret, t, body);
    let expected = expected.rsplit("v1=").next().unwrap_or_default();
    subtle::ConstantTimeEq::ct_eq(expected.as_bytes(), v1.as_bytes()).into()
}

/// Where the HTTPS hook is (URL and HTTP client), built once per cold start. The signing
/// secret comes with each call ([`HttpsEndpoint::signed`]): it lives in the credentials secret,
/// which is fetched (and cached) per request.
#[derive(Clone)]
pub struct HttpsEndpoint {
    client: reqwest::Client,
    url: url::Url,
}

impl std::fmt::Debug for HttpsEndpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpsEndpoint")
            .field("host", &self.url.host_str())
            .finish()
    }
}

/// The HTTPS hook: `POST <url>` with the detail JSON, signed with `reply_hook_secret`.
pub struct HttpsHook {
    endpoint: HttpsEndpoint,
    secret: SecretString,
}

impl std::fmt::Debug for HttpsHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpsHook")
            .field("host", &self.endpoint.url.host_str())
            .field("secret", &"<redacted>")
            .finish()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HookConfigError {
    #[error("ReplyHookUrl must be an https URL (http only on loopback)")]
    BadUrl,
    #[error("the HTTPS reply hook needs reply_hook_secret in the credentials secret")]
    MissingSecret,
    #[error("the reply hook's HTTP client could not be built")]
    Client,
}

impl HttpsEndpoint {
    /// `url` must be https, or http on a loopback host (the local stack). `timeout` bounds the
    /// whole request (use the budget).
    pub fn new(url: &str, timeout: Duration) -> Result<Self, HookConfigError> {
        let url = url::Url::parse(url).map_err(|_| HookConfigError::BadUrl)?;
        let loopback = matches!(url.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"));
        if !(url.scheme() == "https" || (url.scheme() == "http" && loopback)) {
            return Err(HookConfigError::BadUrl);
        }
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|_| HookConfigError::Client)?;
        Ok(Self { client, url })
    }

    /// The hook signing with `secret` (the client is shared, not rebuilt).
    pub fn signed(&self, secret: SecretString) -> Result<HttpsHook, HookConfigError> {
        if secret.expose_secret().is_empty() {
            return Err(HookConfigError::MissingSecret);
        }
        Ok(HttpsHook {
            endpoint: self.clone(),
            secret,
        })
    }

    async fn call(
        &self,
        secret: &SecretString,
        event_id: &str,
        detail_json: &str,
    ) -> Result<Vec<u8>, HookError> {
        let mut resp = self
            .client
            .post(self.url.clone())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(SIGNATURE_HEADER, signature(secret, unix_now(), detail_json))
            .header(EVENT_ID_HEADER, event_id)
            .body(detail_json.to_string())
            .send()
            .await
            .map_err(|e| {
                if e.is_timeout() {
                    HookError::Timeout
                } else {
                    HookError::Transport
                }
            })?;
        let status = resp.status();
        if !status.is_success() {
            return Err(HookError::Status(status.as_u16()));
        }
        if resp
            .content_length()
            .is_some_and(|l| l > MAX_ANSWER_BYTES as u64)
        {
            return Err(ReplyError::TooLarge.into());
        }
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(|e| {
            if e.is_timeout() {
                HookError::Timeout
            } else {
                HookError::Transport
            }
        })? {
            body.extend_from_slice(&chunk);
            if body.len() > MAX_ANSWER_BYTES {
                return Err(ReplyError::TooLarge.into());
            }
        }
        Ok(body)
    }
}

impl HttpsHook {
    /// `url` must be https, or http on a loopback host (the local stack). `timeout` bounds the
    /// whole request (use the budget).
    pub fn new(
        url: &str,
        secret: SecretString,
        timeout: Duration,
    ) -> Result<Self, HookConfigError> {
        HttpsEndpoint::new(url, timeout)?.signed(secret)
    }
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

impl ReplyHook for HttpsHook {
    async fn call(&self, event_id: &str, detail_json: &str) -> Result<Vec<u8>, HookError> {
        self.endpoint
            .call(&self.secret, event_id, detail_json)
            .await
    }
}

/// The Lambda hook: `Invoke` (RequestResponse) of a function ARN with the detail as payload.
#[derive(Debug, Clone)]
pub struct LambdaHook {
    client: aws_sdk_lambda::Client,
    function: String,
}

impl LambdaHook {
    pub fn new(client: aws_sdk_lambda::Client, function_arn: impl Into<String>) -> Self {
        Self {
            client,
            function: function_arn.into(),
        }
    }
}

impl ReplyHook for LambdaHook {
    async fn call(&self, _event_id: &str, detail_json: &str) -> Result<Vec<u8>, HookError> {
        let out = self
            .client
            .invoke()
            .function_name(&self.function)
            .invocation_type(InvocationType::RequestResponse)
            .payload(Blob::new(detail_json.as_bytes()))
            .send()
            .await
            .map_err(|e| {
                tracing::warn!(error = %e, "reply hook Lambda invoke failed");
                match e.raw_response().map(|r| r.status().as_u16()) {
                    Some(status) => HookError::Status(status),
                    None => HookError::Transport,
                }
            })?;
        if out.function_error().is_some() {
            return Err(HookError::FunctionError);
        }
        let body = out.payload.map(Blob::into_inner).unwrap_or_default();
        if body.len() > MAX_ANSWER_BYTES {
            return Err(ReplyError::TooLarge.into());
        }
        Ok(body)
    }
}

/// The reply hook settings as deployed (`REPLY_HOOK_FUNCTION_ARN`, `REPLY_HOOK_URL`,
/// `REPLY_HOOK_BUDGET_MS`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HookSettings {
    pub function_arn: Option<String>,
    pub url: Option<String>,
    pub budget: Duration,
}

impl HookSettings {
    pub fn from_config(config: &Config) -> Self {
        Self {
            function_arn: config.reply_hook_function_arn.clone(),
            url: config.reply_hook_url.clone(),
            budget: config.reply_hook_budget,
        }
    }
}

impl Default for HookSettings {
    fn default() -> Self {
        Self {
            function_arn: None,
            url: None,
            budget: DEFAULT_BUDGET,
        }
    }
}

/// The hook a deployment configured: none, HTTPS or Lambda (static dispatch for handlers).
#[derive(Debug, Clone)]
pub enum ConfiguredHook {
    None,
    Https(HttpsEndpoint),
    Lambda(LambdaHook),
}

impl ConfiguredHook {
    /// The hook of `settings`: the Lambda function when an ARN is set (its client is built only
    /// then), else the URL, else none.
    pub fn from_settings(
        settings: &HookSettings,
        sdk: &aws_config::SdkConfig,
    ) -> Result<Self, HookConfigError> {
        if let Some(arn) = &settings.function_arn {
            return Ok(ConfiguredHook::Lambda(LambdaHook::new(
                aws_sdk_lambda::Client::new(sdk),
                arn.clone(),
            )));
        }
        match &settings.url {
            Some(url) => Ok(ConfiguredHook::Https(HttpsEndpoint::new(
                url,
                settings.budget,
            )?)),
            None => Ok(ConfiguredHook::None),
        }
    }

    pub fn is_configured(&self) -> bool {
        !matches!(self, ConfiguredHook::None)
    }

    /// The hook for one request, with the HTTPS signing secret from the credentials.
    pub fn signed<'a>(&'a self, secret: Option<&'a SecretString>) -> ActiveHook<'a> {
        ActiveHook { hook: self, secret }
    }
}

/// A configured hook with the secret of one request (see [`ConfiguredHook::signed`]).
pub struct ActiveHook<'a> {
    hook: &'a ConfiguredHook,
    secret: Option<&'a SecretString>,
}

impl ReplyHook for ActiveHook<'_> {
    async fn call(&self, event_id: &str, detail_json: &str) -> Result<Vec<u8>, HookError> {
        match self.hook {
            // No hook: no reply.
            ConfiguredHook::None => Ok(Vec::new()),
            ConfiguredHook::Https(endpoint) => match self.secret {
                Some(secret) if !secret.expose_secret().is_empty() => {
                    endpoint.call(secret, event_id, detail_json).await
                }
                _ => Err(HookError::NoSecret),
            },
            ConfiguredHook::Lambda(h) => h.call(event_id, detail_json).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fixed(Result<Vec<u8>, HookError>, Duration);

    impl ReplyHook for Fixed {
        async fn call(&self, _: &str, _: &str) -> Result<Vec<u8>, HookError> {
            tokio::time::sleep(self.1).await;
            self.0.clone()
        }
    }

    #[tokio::test]
    async fn outcomes() {
        let budget = Duration::from_millis(200);
        let ok = Fixed(
            Ok(br#"{"type":"text","content":"hi"}"#.to_vec()),
            Duration::ZERO,
        );
        let r = ask(&ok, "e", "{}", budget).await;
        assert_eq!(
            r.reply(),
            Some(&PassiveReply::Text {
                content: "hi".into()
            })
        );
        let none = Fixed(Ok(Vec::new()), Duration::ZERO);
        assert_eq!(
            ask(&none, "e", "{}", budget).await.outcome,
            HookOutcome::NoReply
        );
        let garbage = Fixed(Ok(b"<html>".to_vec()), Duration::ZERO);
        let r = ask(&garbage, "e", "{}", budget).await;
        assert!(matches!(&r.outcome, HookOutcome::Failed(e) if e.cause() == "malformed"));
        let lines = r.emf_lines("message-events", 0);
        assert_eq!(lines.len(), 2);
        assert!(lines[1].contains("\"Cause\":\"malformed\""));
        let slow = Fixed(Ok(Vec::new()), Duration::from_secs(5));
        let started = Instant::now();
        let r = ask(&slow, "e", "{}", budget).await;
        assert_eq!(r.outcome, HookOutcome::Failed(HookError::Timeout));
        assert!(started.elapsed() < Duration::from_secs(1));
        assert_eq!(
            ask(&ConfiguredHook::None.signed(None), "e", "{}", budget)
                .await
                .outcome,
            HookOutcome::NoReply
        );
    }

    #[test]
    fn signatures_verify_and_expire() {
        let secret: SecretString = "hook-secret".into();
        let header = signature(&secret, 1000, "{\"a\":1}");
        assert!(header.starts_with("t=1000,v1="));
        let tol = Duration::from_secs(300);
        assert!(verify_signature(&secret, &header, "{\"a\":1}", 1100, tol));
        assert!(!verify_signature(&secret, &header, "{\"a\":2}", 1100, tol));
        assert!(!verify_signature(&secret, &header, "{\"a\":1}", 2000, tol));
        assert!(!verify_signature(
            &"other".into(),
            &header,
            "{\"a\":1}",
            1000,
            tol
        ));
        assert!(!verify_signature(&secret, "garbage", "{}", 1000, tol));
    }

    #[test]
    fn https_only_except_loopback() {
        let s: SecretString = "s".into();
        let t = Duration::from_secs(1);
        assert!(HttpsHook::new("https://hooks.example.com/wx", s.clone(), t).is_ok());
        assert!(HttpsHook::new("http://127.0.0.1:9/wx", s.clone(), t).is_ok());
        assert_eq!(
            HttpsHook::new("http://hooks.example.com/wx", s.clone(), t).unwrap_err(),
            HookConfigError::BadUrl
        );
        assert_eq!(
            HttpsHook::new("https://x.example", "".into(), t).unwrap_err(),
            HookConfigError::MissingSecret
        );
        let h = HttpsHook::new("https://hooks.example.com/wx", "topsecret".into(), t).unwrap();
        assert!(!format!("{h:?}").contains("topsecret"));
    }
}
