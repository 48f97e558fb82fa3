//! The gateway's one loop: take the token (warm cache, else the token service), send, read the
//! answer, and follow [`retry::decide`] at most once.

use std::future::Future;

use crate::clock::Clock;
use crate::model::TokenKey;
use crate::secrets::CredentialsProvider;
use crate::store::TokenServiceStore;
use crate::tokens::{TokenError, TokenService, VendedToken};
use crate::wechat::WeChatClient;
use crate::wechat::forward::{ForwardError, RawCall, RawResponse};

use super::cache::{Source, TokenCache};
use super::error::GatewayError;
use super::metrics::CallRecord;
use super::path::TokenParam;
use super::request::ForwardRequest;
use super::response::{body_budget, encoded_len, errcode, is_text};
use super::retry::{Decision, Outcome, decide};
use super::{GatewaySettings, Target};

/// Where tokens come from (the token service; a fake in unit tests).
pub trait TokenSource: Send + Sync {
    /// The current token, or with `stale = Some(v)` a token newer than version `v`.
    fn token(
        &self,
        key: &TokenKey,
        stale: Option<u64>,
    ) -> impl Future<Output = Result<VendedToken, TokenError>> + Send;
}

impl<S, C, K> TokenSource for TokenService<'_, S, C, K>
where
    S: TokenServiceStore,
    C: CredentialsProvider,
    K: Clock,
{
    async fn token(&self, key: &TokenKey, stale: Option<u64>) -> Result<VendedToken, TokenError> {
        match key {
            TokenKey::Component => self.component_token(stale).await,
            TokenKey::Authorizer(appid) => self.authorizer_token(appid, stale).await,
        }
    }
}

/// Where calls go (the WeChat client; a fake in unit tests).
pub trait Forwarder: Send + Sync {
    fn forward(
        &self,
        call: &RawCall<'_>,
    ) -> impl Future<Output = Result<RawResponse, ForwardError>> + Send;
}

impl Forwarder for WeChatClient {
    fn forward(
        &self,
        call: &RawCall<'_>,
    ) -> impl Future<Output = Result<RawResponse, ForwardError>> + Send {
        WeChatClient::forward(self, call)
    }
}

/// WeChat's answer, ready to pass on.
#[derive(Debug)]
pub struct Proxied {
    pub response: RawResponse,
    pub errcode: Option<i64>,
    /// The version of the token the answered call carried.
    pub token_version: Option<u64>,
    /// Goes back as text (else binary).
    pub text: bool,
}

/// One gateway call's collaborators.
pub struct Proxy<'a, T, F, K> {
    pub tokens: &'a T,
    pub forwarder: &'a F,
    pub cache: &'a TokenCache,
    pub clock: &'a K,
    pub settings: &'a GatewaySettings,
}

impl<T, F, K> Proxy<'_, T, F, K>
where
    T: TokenSource,
    F: Forwarder,
    K: Clock,
{
    async fn token(
        &self,
        key: &TokenKey,
        stale: Option<u64>,
        rec: &mut CallRecord,
    ) -> Result<VendedToken, TokenError> {
        if let Some(v) = stale {
            self.cache.invalidate(key, v);
        }
        let (token, source) = self
            .cache
            .get_or_fetch(key, stale, self.clock, || self.tokens.token(key, stale))
            .await?;
        if source == Source::TokenService {
            rec.token_lookups += 1;
            rec.token_refreshes += u32::from(stale.is_some());
        }
        Ok(token)
    }

    /// Sends `req` for `target` with its token in `param` (`None`: the API takes no token).
    pub async fn send(
        &self,
        target: &Target,
        req: &ForwardRequest,
        param: Option<TokenParam>,
        rec: &mut CallRecord,
    ) -> Result<Proxied, GatewayError> {
        let key = target.token_key();
        let mut token = match param {
            Some(_) => Some(self.token(&key, None, rec).await?),
            None => None,
        };
        let budget = body_budget(self.settings.max_response_bytes);
        let method = req.method.as_reqwest();
        let mut attempt = 1;
        loop {
            let call = RawCall {
                method: method.clone(),
                path: req.path.as_str(),
                query: &req.query,
                token: param
                    .zip(token.as_ref())
                    .map(|(p, t)| (p.as_str(), &t.token)),
                content_type: req.content_type.as_deref(),
                body: &req.body,
                timeout: self.settings.timeout,
                max_response_bytes: budget,
            };
            let result = self.forwarder.forward(&call).await;
            rec.attempts = attempt;
            let code = result.as_ref().ok().and_then(errcode);
            let outcome = match &result {
                Ok(r) => Outcome::Answered {
                    status: r.status,
                    errcode: code,
                },
                Err(e) => Outcome::Failed(e),
            };
            match (decide(req.method, attempt, outcome), token.as_ref()) {
                (Decision::RefreshToken, Some(used)) => {
                    tracing::info!(
                        token = key.label(),
                        version = used.version,
                        errcode = code,
                        "WeChat rejected the token; refreshing that version and retrying once"
                    );
                    let stale = used.version;
                    token = Some(self.token(&key, Some(stale), rec).await?);
                }
                (Decision::Repeat, _) => {
                    tracing::info!(api = %req.path, errcode = code, "retrying once");
                }
                _ => {
                    rec.errcode = code;
                    return self.finish(result, code, token.as_ref().map(|t| t.version));
                }
            }
            attempt += 1;
        }
    }

    fn finish(
        &self,
        result: Result<RawResponse, ForwardError>,
        errcode: Option<i64>,
        token_version: Option<u64>,
    ) -> Result<Proxied, GatewayError> {
        let response = result?;
        if (300..400).contains(&response.status) {
            return Err(GatewayError::Redirected {
                status: response.status,
            });
        }
        let text = is_text(response.content_type.as_deref(), &response.body);
        let limit = body_budget(self.settings.max_response_bytes);
        if encoded_len(&response.body, text) > limit {
            return Err(GatewayError::ResponseTooLarge { limit });
        }
        Ok(Proxied {
            response,
            errcode,
            token_version,
            text,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicU64, Ordering};

    use secrecy::ExposeSecret;

    use super::*;
    use crate::clock::FixedClock;
    use crate::gateway::cache::CacheSettings;
    use crate::gateway::path::ApiPath;

    /// Hands out version `n` as `tok-n`; a stale request bumps the version.
    struct Tokens {
        version: AtomicU64,
        calls: Mutex<Vec<Option<u64>>>,
    }

    impl Tokens {
        fn new() -> Self {
            Self {
                version: AtomicU64::new(1),
                calls: Mutex::new(Vec::new()),
            }
        }
    }

    impl TokenSource for Tokens {
        fn token(
            &self,
            _key: &TokenKey,
            stale: Option<u64>,
        ) -> impl Future<Output = Result<VendedToken, TokenError>> + Send {
            self.calls.lock().unwrap().push(stale);
            let v = match stale {
                Some(s) if s >= self.version.load(Ordering::SeqCst) => {
                    self.version.fetch_add(1, Ordering::SeqCst) + 1
                }
                _ => self.version.load(Ordering::SeqCst),
            };
            async move {
                Ok(VendedToken {
                    token: format!("tok-{v}").into(),
                    version: v,
                    expires_at: 100_000,
                })
            }
        }
    }

    /// Answers from a script and records what it was sent.
    struct Script {
        answers: Mutex<VecDeque<Result<RawResponse, ForwardError>>>,
        seen: Mutex<Vec<(String, Option<String>)>>,
    }

    impl Script {
        fn new(answers: Vec<Result<RawResponse, ForwardError>>) -> Self {
            Self {
                answers: Mutex::new(answers.into()),
                seen: Mutex::new(Vec::new()),
            }
        }
        fn seen(&self) -> Vec<(String, Option<String>)> {
            self.seen.lock().unwrap().clone()
        }
    }

    impl Forwarder for Script {
        fn forward(
            &self,
            call: &RawCall<'_>,
        ) -> impl Future<Output = Result<RawResponse, ForwardError>> + Send {
            self.seen.lock().unwrap().push((
                call.method.to_string(),
                call.token
                    .map(|(p, t)| format!("{p}={}", t.expose_secret())),
            ));
            let next = self
                .answers
                .lock()
                .unwrap()
                .pop_front()
                .unwrap_or(Err(ForwardError::Transport));
            async move { next }
        }
    }

    fn json(body: &str) -> Result<RawResponse, ForwardError> {
        Ok(RawResponse {
            status: 200,
            content_type: Some("application/json; encoding=utf-8".into()),
            content_disposition: None,
            body: body.as_bytes().to_vec(),
        })
    }

    fn request(method: &str) -> ForwardRequest {
        ForwardRequest::new(
            method,
            ApiPath::checked("cgi-bin/menu/create").unwrap(),
            String::new(),
            Some("application/json"),
            b"{}".to_vec(),
            1024,
        )
        .unwrap()
    }

    struct Run {
        result: Result<Proxied, GatewayError>,
        rec: CallRecord,
        seen: Vec<(String, Option<String>)>,
        token_calls: Vec<Option<u64>>,
    }

    async fn run(
        method: &str,
        answers: Vec<Result<RawResponse, ForwardError>>,
        settings: GatewaySettings,
        cache: &TokenCache,
    ) -> Run {
        let tokens = Tokens::new();
        let script = Script::new(answers);
        let clock = FixedClock::new(1_000);
        let proxy = Proxy {
            tokens: &tokens,
            forwarder: &script,
            cache,
            clock: &clock,
            settings: &settings,
        };
        let mut rec = CallRecord::new("authorizer");
        let target = Target::Authorizer("wx0000000000000001".into());
        let result = proxy
            .send(
                &target,
                &request(method),
                Some(TokenParam::AccessToken),
                &mut rec,
            )
            .await;
        Run {
            result,
            rec,
            seen: script.seen(),
            token_calls: tokens.calls.lock().unwrap().clone(),
        }
    }

    fn cache() -> TokenCache {
        TokenCache::new(CacheSettings::default())
    }

    #[tokio::test]
    async fn a_token_error_refreshes_that_version_and_retries_once() {
        let r = run(
            "POST",
            vec![json(r#"{"errcode":40001}"#), json(r#"{"errcode":0}"#)],
            GatewaySettings::default(),
            &cache(),
        )
        .await;
        let p = r.result.unwrap();
        assert_eq!(p.errcode, Some(0));
        assert_eq!(p.token_version, Some(2));
        assert_eq!(
            r.seen,
            vec![
                ("POST".into(), Some("access_token=tok-1".into())),
                ("POST".into(), Some("access_token=tok-2".into())),
            ]
        );
        assert_eq!(r.token_calls, vec![None, Some(1)]);
        assert_eq!(
            (r.rec.attempts, r.rec.token_refreshes, r.rec.token_lookups),
            (2, 1, 2)
        );
    }

    #[tokio::test]
    async fn a_second_token_error_is_passed_through() {
        let r = run(
            "GET",
            vec![json(r#"{"errcode":42001}"#), json(r#"{"errcode":40001}"#)],
            GatewaySettings::default(),
            &cache(),
        )
        .await;
        assert_eq!(r.result.unwrap().errcode, Some(40001));
        assert_eq!(r.seen.len(), 2);
    }

    #[tokio::test]
    async fn busy_is_retried_for_get_only_and_quota_never() {
        let get = run(
            "GET",
            vec![json(r#"{"errcode":-1}"#), json(r#"{"errcode":0}"#)],
            GatewaySettings::default(),
            &cache(),
        )
        .await;
        assert_eq!(get.result.unwrap().errcode, Some(0));
        assert_eq!(get.seen.len(), 2);
        assert_eq!(get.seen[0].1, get.seen[1].1, "same token");
        let post = run(
            "POST",
            vec![json(r#"{"errcode":-1}"#), json(r#"{"errcode":0}"#)],
            GatewaySettings::default(),
            &cache(),
        )
        .await;
        assert_eq!(post.result.unwrap().errcode, Some(-1));
        assert_eq!(post.seen.len(), 1);
        let quota = run(
            "GET",
            vec![json(r#"{"errcode":45009}"#)],
            GatewaySettings::default(),
            &cache(),
        )
        .await;
        assert_eq!(quota.result.unwrap().errcode, Some(45009));
        assert_eq!(quota.seen.len(), 1);
        assert_eq!(quota.rec.errcode, Some(45009));
    }

    #[tokio::test]
    async fn lost_answers_are_retried_for_get_only() {
        let get = run(
            "GET",
            vec![Err(ForwardError::Timeout), json("{}")],
            GatewaySettings::default(),
            &cache(),
        )
        .await;
        assert!(get.result.is_ok());
        let post = run(
            "POST",
            vec![Err(ForwardError::Timeout), json("{}")],
            GatewaySettings::default(),
            &cache(),
        )
        .await;
        assert!(matches!(
            post.result,
            Err(GatewayError::Upstream(ForwardError::Timeout))
        ));
        assert_eq!(post.seen.len(), 1);
    }

    #[tokio::test]
    async fn warm_calls_take_the_token_from_the_cache() {
        let c = cache();
        let first = run("GET", vec![json("{}")], GatewaySettings::default(), &c).await;
        assert_eq!(first.rec.token_lookups, 1);
        let second = run("GET", vec![json("{}")], GatewaySettings::default(), &c).await;
        assert_eq!(second.rec.token_lookups, 0);
        assert!(second.token_calls.is_empty());
    }

    #[tokio::test]
    async fn redirects_and_oversize_answers_are_errors() {
        let redirect = Ok(RawResponse {
            status: 302,
            content_type: None,
            content_disposition: None,
            body: Vec::new(),
        });
        let r = run("GET", vec![redirect], GatewaySettings::default(), &cache()).await;
        assert!(matches!(
            r.result,
            Err(GatewayError::Redirected { status: 302 })
        ));
        // A 6-byte body budget.
        let settings = GatewaySettings {
            max_response_bytes: super::super::response::ENVELOPE_RESERVE + 6,
            ..GatewaySettings::default()
        };
        let image = Ok(RawResponse {
            status: 200,
            content_type: Some("image/jpeg".into()),
            content_disposition: None,
            body: vec![0xff; 5],
        });
        let r = run("GET", vec![image], settings.clone(), &cache()).await;
        assert!(
            matches!(r.result, Err(GatewayError::ResponseTooLarge { limit: 6 })),
            "5 bytes are 8 in base64"
        );
        let text = json("{\"a\":1}");
        let r = run("GET", vec![text], settings, &cache()).await;
        assert!(matches!(
            r.result,
            Err(GatewayError::ResponseTooLarge { .. })
        ));
    }
}
