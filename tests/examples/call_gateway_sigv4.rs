//! A provider service calling wxopen's WeChat API gateway with SigV4 (IAM auth), as in the
//! README: `GET /authorizers/{appid}/wechat/cgi-bin/user/get`, no token anywhere in the caller.
//!
//! ```sh
//! WXOPEN_API=https://abc123.execute-api.ap-east-1.amazonaws.com AWS_REGION=ap-east-1 \
//!   AWS_ACCESS_KEY_ID=… AWS_SECRET_ACCESS_KEY=… [AWS_SESSION_TOKEN=…] \
//!   cargo run -p wxopen-tests --example call_gateway_sigv4 -- wx1234567890abcdef
//! ```

use std::time::SystemTime;

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Signs `method url` with `body` for API Gateway (`execute-api`) and returns the headers to add
/// (`authorization`, `x-amz-date`, `x-amz-security-token` when the credentials have one).
pub fn sigv4_headers(
    credentials: &Credentials,
    region: &str,
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    time: SystemTime,
) -> Result<Vec<(String, String)>, BoxError> {
    let identity = credentials.clone().into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name("execute-api")
        .time(time)
        .settings(SigningSettings::default())
        .build()?
        .into();
    let request = SignableRequest::new(
        method,
        url,
        headers.iter().copied(),
        SignableBody::Bytes(body),
    )?;
    let (instructions, _signature) = sign(request, &params)?.into_parts();
    Ok(instructions
        .headers()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect())
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let appid = std::env::args()
        .nth(1)
        .ok_or("usage: call_gateway_sigv4 <authorizer appid>")?;
    let api = std::env::var("WXOPEN_API")?;
    let region = std::env::var("AWS_REGION")?;
    let credentials = Credentials::new(
        std::env::var("AWS_ACCESS_KEY_ID")?,
        std::env::var("AWS_SECRET_ACCESS_KEY")?,
        std::env::var("AWS_SESSION_TOKEN").ok(),
        None,
        "environment",
    );
    let url = format!(
        "{}/authorizers/{appid}/wechat/cgi-bin/user/get?next_openid=",
        api.trim_end_matches('/')
    );
    let host = url::Url::parse(&url)?
        .host_str()
        .ok_or("WXOPEN_API has no host")?
        .to_string();
    let signed = sigv4_headers(
        &credentials,
        &region,
        "GET",
        &url,
        &[("host", &host)],
        b"",
        SystemTime::now(),
    )?;
    let mut request = reqwest::Client::new().get(&url);
    for (name, value) in signed {
        request = request.header(name, value);
    }
    let response = request.send().await?;
    println!(
        "{} token v{} errcode {}",
        response.status(),
        header(&response, "x-wxopen-token-version"),
        header(&response, "x-wxopen-errcode"),
    );
    println!("{}", response.text().await?);
    Ok(())
}

fn header(response: &reqwest::Response, name: &str) -> String {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-")
        .to_string()
}
