//! The wxopen HTTP API, SigV4-signed for API Gateway (`execute-api`) when credentials are there.

use std::time::{Duration, SystemTime};

use aws_config::SdkConfig;
use aws_credential_types::Credentials;
use aws_credential_types::provider::ProvideCredentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use serde_json::Value;

use crate::error::CliError;

pub struct Api {
    base: String,
    http: reqwest::Client,
    region: String,
    credentials: Option<Credentials>,
}

impl Api {
    /// `base` without a trailing slash. Credentials come from the standard chain; without any, the
    /// calls go unsigned (fine for the local stack, refused by a deployed one).
    pub async fn new(base: &str, aws: &SdkConfig) -> Result<Self, CliError> {
        let credentials = match aws.credentials_provider() {
            Some(p) => p.provide_credentials().await.ok(),
            None => None,
        };
        Ok(Self {
            base: base.trim_end_matches('/').to_string(),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .map_err(|e| CliError::Unreachable(base.to_string(), e.to_string()))?,
            region: aws
                .region()
                .map_or_else(|| "us-east-1".to_string(), |r| r.to_string()),
            credentials,
        })
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    pub async fn get(&self, path: &str) -> Result<Value, CliError> {
        self.call("GET", path, None).await
    }

    pub async fn post(&self, path: &str, body: &Value) -> Result<Value, CliError> {
        self.call("POST", path, Some(body)).await
    }

    /// GET that answers `None` for a 404 (a record or route that does not exist).
    pub async fn get_optional(&self, path: &str) -> Result<Option<Value>, CliError> {
        match self.get(path).await {
            Ok(v) => Ok(Some(v)),
            Err(CliError::Api { status: 404, .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, CliError> {
        let url = format!("{}{path}", self.base);
        let bytes = body.map(Value::to_string).unwrap_or_default().into_bytes();
        let m = reqwest::Method::from_bytes(method.as_bytes())
            .map_err(|e| CliError::Usage(e.to_string()))?;
        let mut req = self.http.request(m, &url);
        let mut headers: Vec<(String, String)> = Vec::new();
        if body.is_some() {
            headers.push(("content-type".into(), "application/json".into()));
        }
        if let Some(c) = &self.credentials {
            let host = url::Url::parse(&url)
                .ok()
                .and_then(|u| {
                    u.host_str().map(|h| match u.port() {
                        Some(p) => format!("{h}:{p}"),
                        None => h.to_string(),
                    })
                })
                .ok_or_else(|| CliError::Usage(format!("{url} is not a URL")))?;
            headers.push(("host".into(), host));
            let signed = sigv4_headers(c, &self.region, method, &url, &headers, &bytes)?;
            headers.extend(signed);
        }
        for (k, v) in &headers {
            if k != "host" {
                req = req.header(k.as_str(), v.as_str());
            }
        }
        if body.is_some() {
            req = req.body(bytes);
        }
        let resp = req
            .send()
            .await
            .map_err(|e| CliError::Unreachable(self.base.clone(), e.to_string()))?;
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap_or_default();
        let json: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        if (200..300).contains(&status) {
            return Ok(json);
        }
        let field = |k: &str| {
            json.get(k)
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string()
        };
        let message = field("message");
        Err(CliError::Api {
            method: method.to_string(),
            path: path.to_string(),
            status,
            error: if field("error").is_empty() {
                "error".into()
            } else {
                field("error")
            },
            message: if message.is_empty() {
                String::new()
            } else {
                format!(" ({message})")
            },
        })
    }
}

/// The SigV4 headers for `execute-api` (authorization, x-amz-date, x-amz-security-token).
fn sigv4_headers(
    credentials: &Credentials,
    region: &str,
    method: &str,
    url: &str,
    headers: &[(String, String)],
    body: &[u8],
) -> Result<Vec<(String, String)>, CliError> {
    let identity = credentials.clone().into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name("execute-api")
        .time(SystemTime::now())
        .settings(SigningSettings::default())
        .build()
        .map_err(|e| CliError::Signing(e.to_string()))?
        .into();
    let request = SignableRequest::new(
        method,
        url,
        headers.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        SignableBody::Bytes(body),
    )
    .map_err(|e| CliError::Signing(e.to_string()))?;
    let (instructions, _) = sign(request, &params)
        .map_err(|e| CliError::Signing(e.to_string()))?
        .into_parts();
    Ok(instructions
        .headers()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect())
}

/// Percent-encodes a query value.
pub fn q(v: &str) -> String {
    url::form_urlencoded::byte_serialize(v.as_bytes()).collect()
}
