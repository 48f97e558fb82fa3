//! The forwarded request: method, query (minus any token the caller sent), content type, body.
//! Nothing else of the caller's request goes to WeChat (no `Authorization`, no `X-Amz-*`).

use super::path::ApiPath;

/// Query parameters a caller may not set: wxopen injects the token.
pub const TOKEN_QUERY_PARAMS: &[&str] = &["access_token", "component_access_token"];

/// Longest query string forwarded.
pub const MAX_QUERY_BYTES: usize = 4096;

/// Longest `Content-Type` forwarded (a multipart boundary is at most 70 characters).
pub const MAX_CONTENT_TYPE_BYTES: usize = 256;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    #[error("WeChat's APIs take GET or POST only")]
    MethodNotAllowed,
    #[error("the body exceeds {limit} bytes")]
    BodyTooLarge { limit: usize },
    #[error("the query string is invalid or longer than {MAX_QUERY_BYTES} bytes")]
    InvalidQuery,
    #[error("the Content-Type header is invalid")]
    InvalidContentType,
}

/// The two methods WeChat's APIs use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ForwardMethod {
    Get,
    Post,
}

impl ForwardMethod {
    pub fn parse(method: &str) -> Result<Self, RequestError> {
        match method {
            "GET" => Ok(ForwardMethod::Get),
            "POST" => Ok(ForwardMethod::Post),
            _ => Err(RequestError::MethodNotAllowed),
        }
    }

    /// Safe to send twice (a POST may have taken effect even when its answer was lost).
    pub fn is_safe(self) -> bool {
        self == ForwardMethod::Get
    }

    pub fn as_reqwest(self) -> reqwest::Method {
        match self {
            ForwardMethod::Get => reqwest::Method::GET,
            ForwardMethod::Post => reqwest::Method::POST,
        }
    }
}

/// One request to forward. `Debug` shows no query values and no body (a quota call's body
/// carries the component secret).
#[derive(Clone, PartialEq, Eq)]
pub struct ForwardRequest {
    pub method: ForwardMethod,
    pub path: ApiPath,
    /// Encoded, without `?`, without token parameters.
    pub query: String,
    pub content_type: Option<String>,
    pub body: Vec<u8>,
}

impl std::fmt::Debug for ForwardRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ForwardRequest")
            .field("method", &self.method)
            .field("path", &self.path)
            .field("query_bytes", &self.query.len())
            .field("content_type", &self.content_type)
            .field("body_bytes", &self.body.len())
            .finish()
    }
}

impl ForwardRequest {
    /// Checks the caller's parts: method, content type, body size. The query must already be
    /// stripped ([`strip_query`] / [`query_from_pairs`]).
    pub fn new(
        method: &str,
        path: ApiPath,
        query: String,
        content_type: Option<&str>,
        body: Vec<u8>,
        max_body_bytes: usize,
    ) -> Result<Self, RequestError> {
        let method = ForwardMethod::parse(method)?;
        if body.len() > max_body_bytes {
            return Err(RequestError::BodyTooLarge {
                limit: max_body_bytes,
            });
        }
        let content_type = match content_type.map(str::trim).filter(|c| !c.is_empty()) {
            None => None,
            Some(c) if valid_content_type(c) => Some(c.to_string()),
            Some(_) => return Err(RequestError::InvalidContentType),
        };
        Ok(Self {
            method,
            path,
            query,
            content_type,
            body,
        })
    }

    /// A JSON POST wxopen makes itself (quota routes).
    pub(crate) fn json(path: ApiPath, body: &serde_json::Value) -> Self {
        Self {
            method: ForwardMethod::Post,
            path,
            query: String::new(),
            content_type: Some("application/json".into()),
            body: body.to_string().into_bytes(),
        }
    }
}

fn valid_content_type(c: &str) -> bool {
    c.len() <= MAX_CONTENT_TYPE_BYTES && c.bytes().all(|b| (0x20..0x7f).contains(&b))
}

fn is_token_param(encoded_key: &str) -> bool {
    let key: String = url::form_urlencoded::parse(encoded_key.as_bytes())
        .map(|(k, _)| k.into_owned())
        .next()
        .unwrap_or_default();
    TOKEN_QUERY_PARAMS
        .iter()
        .any(|t| key.trim().eq_ignore_ascii_case(t))
}

/// The caller's raw query string (as it arrived, encoded) without token parameters; the other
/// pairs keep their exact bytes and order.
pub fn strip_query(raw: &str) -> Result<String, RequestError> {
    if raw.len() > MAX_QUERY_BYTES || !raw.bytes().all(|b| b.is_ascii_graphic() && b != b'#') {
        return Err(RequestError::InvalidQuery);
    }
    let kept: Vec<&str> = raw
        .split('&')
        .filter(|pair| !pair.is_empty())
        .filter(|pair| !is_token_param(pair.split('=').next().unwrap_or_default()))
        .collect();
    Ok(kept.join("&"))
}

/// The same from decoded pairs (when only the parsed query is at hand), encoded and sorted by
/// key (values of one key keep their order).
pub fn query_from_pairs<'a>(
    pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Result<String, RequestError> {
    let mut pairs: Vec<(&str, &str)> = pairs
        .into_iter()
        .filter(|(k, _)| {
            !TOKEN_QUERY_PARAMS
                .iter()
                .any(|t| k.trim().eq_ignore_ascii_case(t))
        })
        .collect();
    pairs.sort_by_key(|(k, _)| *k);
    let encoded = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish();
    if encoded.len() > MAX_QUERY_BYTES {
        return Err(RequestError::InvalidQuery);
    }
    Ok(encoded)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caller_tokens_are_stripped_and_the_rest_kept_byte_for_byte() {
        assert_eq!(
            strip_query("next_openid=o%2Babc&access_token=stolen&lang=zh_CN").unwrap(),
            "next_openid=o%2Babc&lang=zh_CN"
        );
        for sneaky in [
            "ACCESS_TOKEN=x",
            "access%5Ftoken=x",
            "%20access_token=x",
            "component_access_token=x",
            "Component_Access_Token",
            "access_token",
            "access_token=",
        ] {
            let out = strip_query(&format!("a=1&{sneaky}&b=2")).unwrap();
            assert_eq!(out, "a=1&b=2", "{sneaky}");
        }
        for kept in ["access_tokens=x", "my_access_token=x", "access+token=x"] {
            let out = strip_query(&format!("a=1&{kept}")).unwrap();
            assert_eq!(out, format!("a=1&{kept}"));
        }
        assert_eq!(strip_query("").unwrap(), "");
        assert_eq!(strip_query("&&x=1&&").unwrap(), "x=1");
        assert_eq!(
            strip_query("media_id=abc&type=image").unwrap(),
            "media_id=abc&type=image"
        );
    }

    #[test]
    fn odd_queries_are_refused() {
        for bad in ["a=1 2", "a=1#frag", "a=\u{1}", "a=é"] {
            assert_eq!(strip_query(bad), Err(RequestError::InvalidQuery), "{bad:?}");
        }
        let long = format!("a={}", "x".repeat(MAX_QUERY_BYTES));
        assert_eq!(strip_query(&long), Err(RequestError::InvalidQuery));
    }

    #[test]
    fn pairs_are_encoded_without_tokens() {
        let q = query_from_pairs([
            ("next_openid", "o+a b"),
            ("access_token", "stolen"),
            ("Component_Access_Token", "stolen"),
            ("a", "1"),
        ])
        .unwrap();
        assert_eq!(q, "a=1&next_openid=o%2Ba+b");
    }

    #[test]
    fn method_body_and_content_type_are_checked() {
        let path = ApiPath::checked("cgi-bin/menu/create").unwrap();
        let ok = ForwardRequest::new(
            "POST",
            path.clone(),
            String::new(),
            Some(" multipart/form-data; boundary=xyz "),
            vec![1, 2, 3],
            3,
        )
        .unwrap();
        assert_eq!(
            ok.content_type.as_deref(),
            Some("multipart/form-data; boundary=xyz")
        );
        assert_eq!(ok.method, ForwardMethod::Post);
        let debug = format!("{ok:?}");
        assert!(debug.contains("body_bytes: 3"), "{debug}");
        for m in ["PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "get"] {
            assert_eq!(
                ForwardRequest::new(m, path.clone(), String::new(), None, vec![], 3),
                Err(RequestError::MethodNotAllowed),
                "{m}"
            );
        }
        assert_eq!(
            ForwardRequest::new("POST", path.clone(), String::new(), None, vec![0; 4], 3),
            Err(RequestError::BodyTooLarge { limit: 3 })
        );
        assert_eq!(
            ForwardRequest::new("POST", path, String::new(), Some("a\nb"), vec![], 3),
            Err(RequestError::InvalidContentType)
        );
        assert!(ForwardMethod::Get.is_safe());
        assert!(!ForwardMethod::Post.is_safe());
    }
}
