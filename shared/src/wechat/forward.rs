//! `WeChatClient::forward`: one raw call for the API gateway (`crate::gateway`), any API under
//! the configured API host, the answer returned as bytes.
//!
//! The caller (the gateway) has already validated the path, stripped caller-sent tokens from the
//! query and chosen the token parameter. Here: the URL is the client's fixed `api_base` plus that
//! path, the token is appended by this function only, nothing is logged, errors carry no URL, and
//! the answer is read up to a bound (a larger one is refused without being buffered). The client
//! follows no redirects (see `WeChatClient::new`): a 3xx comes back as it is.

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};

use super::WeChatClient;

/// One outbound call, already validated by the gateway. `Debug` shows no token, query or body.
pub struct RawCall<'a> {
    /// `GET` or `POST` (WeChat's APIs use nothing else).
    pub method: reqwest::Method,
    /// The API path under the host, without a leading `/` (e.g. `cgi-bin/menu/create`).
    pub path: &'a str,
    /// The encoded query string without `?` and without any token parameter (`""` for none).
    pub query: &'a str,
    /// The query parameter that carries the token, and the token (`None`: the API takes none).
    pub token: Option<(&'static str, &'a SecretString)>,
    pub content_type: Option<&'a str>,
    pub body: &'a [u8],
    pub timeout: Duration,
    /// A longer answer is refused with [`ForwardError::TooLarge`].
    pub max_response_bytes: usize,
}

impl std::fmt::Debug for RawCall<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RawCall")
            .field("method", &self.method)
            .field("path", &self.path)
            .field("token_param", &self.token.map(|(param, _)| param))
            .field("content_type", &self.content_type)
            .field("body_bytes", &self.body.len())
            .finish_non_exhaustive()
    }
}

/// WeChat's answer as it came: status, the two headers the gateway passes on, the body.
#[derive(Clone, PartialEq, Eq)]
pub struct RawResponse {
    pub status: u16,
    pub content_type: Option<String>,
    pub content_disposition: Option<String>,
    pub body: Vec<u8>,
}

impl std::fmt::Debug for RawResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The body can hold anything WeChat returns (jsapi tickets, session data): length only.
        f.debug_struct("RawResponse")
            .field("status", &self.status)
            .field("content_type", &self.content_type)
            .field("content_disposition", &self.content_disposition)
            .field("body_bytes", &self.body.len())
            .finish()
    }
}

/// Why no answer came back. Carries no URL (the token travels in it) and no WeChat text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ForwardError {
    #[error("WeChat did not answer in time")]
    Timeout,
    /// Nothing was sent: the connection (or its TLS handshake) failed.
    #[error("could not connect to WeChat")]
    Connect,
    /// The request may have reached WeChat; the answer was lost.
    #[error("the connection to WeChat failed")]
    Transport,
    #[error("WeChat's answer exceeds {limit} bytes")]
    TooLarge { limit: usize },
}

fn classify(e: &reqwest::Error) -> ForwardError {
    if e.is_timeout() {
        ForwardError::Timeout
    } else if e.is_connect() {
        ForwardError::Connect
    } else {
        ForwardError::Transport
    }
}

fn header(resp: &reqwest::Response, name: reqwest::header::HeaderName) -> Option<String> {
    resp.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

impl WeChatClient {
    /// Sends `call` to `{api_base}/{path}?{token}&{query}` and reads the answer (bounded).
    pub async fn forward(&self, call: &RawCall<'_>) -> Result<RawResponse, ForwardError> {
        let mut url = format!("{}/{}", self.api_base, call.path);
        let mut sep = '?';
        if let Some((param, token)) = call.token {
            url.push(sep);
            url.push_str(param);
            url.push('=');
            url.extend(url::form_urlencoded::byte_serialize(
                token.expose_secret().as_bytes(),
            ));
            sep = '&';
        }
        if !call.query.is_empty() {
            url.push(sep);
            url.push_str(call.query);
        }
        let mut req = self
            .http
            .request(call.method.clone(), url)
            .timeout(call.timeout);
        if let Some(ct) = call.content_type {
            req = req.header(reqwest::header::CONTENT_TYPE, ct);
        }
        if call.method != reqwest::Method::GET || !call.body.is_empty() {
            req = req.body(call.body.to_vec());
        }
        let mut resp = req.send().await.map_err(|e| classify(&e))?;
        let limit = call.max_response_bytes;
        if resp
            .content_length()
            .is_some_and(|n| usize::try_from(n).map_or(true, |n| n > limit))
        {
            return Err(ForwardError::TooLarge { limit });
        }
        let status = resp.status().as_u16();
        let content_type = header(&resp, reqwest::header::CONTENT_TYPE);
        let content_disposition = header(&resp, reqwest::header::CONTENT_DISPOSITION);
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(|e| classify(&e))? {
            if body.len().saturating_add(chunk.len()) > limit {
                return Err(ForwardError::TooLarge { limit });
            }
            body.extend_from_slice(&chunk);
        }
        Ok(RawResponse {
            status,
            content_type,
            content_disposition,
            body,
        })
    }
}
