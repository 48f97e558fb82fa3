//! Quota help (wechat-spec-platform.md §7): resets and reads that a caller asks for explicitly.
//! Resets are limited (10 per account per month, `clear_quota` and `clear_quota/v2` together), so
//! wxopen never makes one on its own, not even after a 45009.
//!
//! | route | WeChat call |
//! |---|---|
//! | `POST /component/clear-quota` | `cgi-bin/component/clear_quota/v2` `{component_appid, appsecret}`: no token needed, so it also works when 45009 blocks `api_component_token` itself |
//! | `POST /authorizers/{appid}/clear-quota` | `cgi-bin/clear_quota?access_token=AUTHORIZER` `{appid}` |
//! | … with `{"cgi_path": "/cgi-bin/…"}` | `cgi-bin/openapi/quota/clear?access_token=AUTHORIZER` `{cgi_path}`: one API's count |
//! | `GET /authorizers/{appid}/quota?cgi_path=` | `cgi-bin/openapi/quota/get?access_token=AUTHORIZER` `{cgi_path}` |

use secrecy::ExposeSecret;
use serde_json::{Value, json};

use crate::secrets::ComponentCredentials;

use super::Target;
use super::path::{Allowlist, ApiPath, PathError, TokenParam};
use super::proxy::Proxied;
use super::request::ForwardRequest;

/// An API path as the quota APIs quote it: a leading `/`, no host (`/cgi-bin/message/custom/send`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CgiPath(String);

impl CgiPath {
    /// Accepts the path with or without its leading `/`; the shape rules of [`ApiPath`] apply.
    pub fn parse(raw: &str) -> Result<Self, PathError> {
        let rest = raw.trim().strip_prefix('/').unwrap_or(raw.trim());
        let path = ApiPath::checked(rest)?;
        Ok(Self(format!("/{path}")))
    }

    /// [`CgiPath::parse`], and the API must be under an allowed prefix (a WeChat API path, not
    /// anything shaped like one).
    pub fn parse_allowed(raw: &str, allow: &Allowlist) -> Result<Self, PathError> {
        let path = Self::parse(raw)?;
        if allow.permits(path.0.trim_start_matches('/')) {
            Ok(path)
        } else {
            Err(PathError::NotAllowed)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QuotaOp {
    ClearComponent,
    ClearAuthorizer {
        appid: String,
        cgi_path: Option<CgiPath>,
    },
    Get {
        appid: String,
        cgi_path: CgiPath,
    },
}

/// The WeChat call for one quota operation.
#[derive(Debug)]
pub struct QuotaCall {
    pub target: Target,
    pub request: ForwardRequest,
    pub token: Option<TokenParam>,
}

impl QuotaOp {
    pub fn target(&self) -> Target {
        match self {
            QuotaOp::ClearComponent => Target::Component,
            QuotaOp::ClearAuthorizer { appid, .. } | QuotaOp::Get { appid, .. } => {
                Target::Authorizer(appid.clone())
            }
        }
    }

    /// The call to make. `ClearComponent` puts the component secret in the body (the request's
    /// `Debug` shows no body).
    pub fn call(&self, creds: &ComponentCredentials) -> QuotaCall {
        let target = self.target();
        let (path, body, token) = match self {
            QuotaOp::ClearComponent => (
                "cgi-bin/component/clear_quota/v2",
                json!({
                    "component_appid": creds.component_appid,
                    "appsecret": creds.component_appsecret.expose_secret(),
                }),
                None,
            ),
            QuotaOp::ClearAuthorizer {
                appid,
                cgi_path: None,
            } => (
                "cgi-bin/clear_quota",
                json!({ "appid": appid }),
                Some(TokenParam::AccessToken),
            ),
            QuotaOp::ClearAuthorizer {
                cgi_path: Some(p), ..
            } => (
                "cgi-bin/openapi/quota/clear",
                json!({ "cgi_path": p.as_str() }),
                Some(TokenParam::AccessToken),
            ),
            QuotaOp::Get { cgi_path, .. } => (
                "cgi-bin/openapi/quota/get",
                json!({ "cgi_path": cgi_path.as_str() }),
                Some(TokenParam::AccessToken),
            ),
        };
        QuotaCall {
            target,
            request: ForwardRequest::json(ApiPath::fixed(path), &body),
            token,
        }
    }

    /// wxopen's answer for WeChat's: the reset or the quota on success, else why not.
    pub fn answer(&self, proxied: &Proxied) -> Result<Value, QuotaError> {
        let body: serde_json::Map<String, Value> =
            serde_json::from_slice(&proxied.response.body).map_err(|_| QuotaError::Unreadable)?;
        match body.get("errcode").and_then(Value::as_i64).unwrap_or(0) {
            0 => {}
            code => return Err(QuotaError::from_errcode(code)),
        }
        Ok(match self {
            QuotaOp::ClearComponent => json!({ "cleared": true, "scope": "component" }),
            QuotaOp::ClearAuthorizer { appid, cgi_path } => {
                let mut v = json!({ "cleared": true, "scope": "authorizer", "appid": appid });
                if let (Some(p), Some(obj)) = (cgi_path, v.as_object_mut()) {
                    obj.insert("scope".into(), "api".into());
                    obj.insert("cgi_path".into(), p.as_str().into());
                }
                v
            }
            QuotaOp::Get { appid, cgi_path } => {
                let mut v = json!({ "appid": appid, "cgi_path": cgi_path.as_str() });
                if let Some(obj) = v.as_object_mut() {
                    for field in ["quota", "rate_limit", "component_rate_limit"] {
                        if let Some(x) = body.get(field) {
                            obj.insert(field.into(), x.clone());
                        }
                    }
                }
                v
            }
        })
    }
}

/// Why WeChat refused a quota call (wechat-spec-platform.md §7).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QuotaError {
    #[error("WeChat's answer could not be read")]
    Unreadable,
    /// 48006: the month's resets are used up.
    #[error("this account's quota resets for the month are used up (10 per month)")]
    ResetLimitReached,
    /// 76003, 76021: not an API WeChat knows.
    #[error(
        "WeChat does not know this cgi_path (give the API path, e.g. /cgi-bin/message/custom/send)"
    )]
    UnknownCgiPath(i64),
    /// 76022: the token's account does not own the API.
    #[error("this account's token does not own the API at cgi_path (sns/ APIs have no quota here)")]
    CgiPathNotOwned,
    /// 45009: the quota APIs' own quota.
    #[error("WeChat's daily quota for this API is used up")]
    QuotaReached,
    #[error("WeChat errcode {0}")]
    Other(i64),
}

impl QuotaError {
    pub fn from_errcode(code: i64) -> Self {
        match code {
            48006 => QuotaError::ResetLimitReached,
            76003 | 76021 => QuotaError::UnknownCgiPath(code),
            76022 => QuotaError::CgiPathNotOwned,
            45009 => QuotaError::QuotaReached,
            _ => QuotaError::Other(code),
        }
    }

    /// WeChat's errcode, when WeChat answered one.
    pub fn errcode(&self) -> Option<i64> {
        match self {
            QuotaError::Unreadable => None,
            QuotaError::ResetLimitReached => Some(48006),
            QuotaError::UnknownCgiPath(code) | QuotaError::Other(code) => Some(*code),
            QuotaError::CgiPathNotOwned => Some(76022),
            QuotaError::QuotaReached => Some(45009),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wechat::forward::RawResponse;

    fn creds() -> ComponentCredentials {
        ComponentCredentials::new(
            "wx1234567890abcdef",
            "the-appsecret",
            "token",
            "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG",
        )
        .unwrap()
    }

    fn proxied(body: &str) -> Proxied {
        Proxied {
            response: RawResponse {
                status: 200,
                content_type: Some("application/json".into()),
                content_disposition: None,
                body: body.as_bytes().to_vec(),
            },
            errcode: None,
            token_version: Some(1),
            text: true,
        }
    }

    #[test]
    fn cgi_paths_are_normalised_and_checked() {
        assert_eq!(
            CgiPath::parse("/cgi-bin/message/custom/send")
                .unwrap()
                .as_str(),
            "/cgi-bin/message/custom/send"
        );
        assert_eq!(
            CgiPath::parse("wxa/getwxacode").unwrap().as_str(),
            "/wxa/getwxacode"
        );
        let allow = Allowlist::default();
        assert!(CgiPath::parse_allowed("/cgi-bin/user/get", &allow).is_ok());
        assert_eq!(
            CgiPath::parse_allowed("/7", &allow),
            Err(PathError::NotAllowed)
        );
        for bad in [
            "",
            "/",
            "//x",
            "/cgi-bin/../x",
            "/a%2fb",
            "https://x/y",
            "/a b",
        ] {
            assert!(CgiPath::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn calls_use_the_right_api_token_and_body() {
        let c = creds();
        let comp = QuotaOp::ClearComponent.call(&c);
        assert_eq!(
            comp.request.path.as_str(),
            "cgi-bin/component/clear_quota/v2"
        );
        assert_eq!(comp.token, None);
        let body: Value = serde_json::from_slice(&comp.request.body).unwrap();
        assert_eq!(
            body,
            json!({"component_appid": "wx1234567890abcdef", "appsecret": "the-appsecret"})
        );
        assert!(!format!("{comp:?}").contains("the-appsecret"));

        let appid = "wx0000000000000001".to_string();
        let all = QuotaOp::ClearAuthorizer {
            appid: appid.clone(),
            cgi_path: None,
        }
        .call(&c);
        assert_eq!(all.request.path.as_str(), "cgi-bin/clear_quota");
        assert_eq!(all.token, Some(TokenParam::AccessToken));
        assert_eq!(all.target, Target::Authorizer(appid.clone()));
        let get = QuotaOp::Get {
            appid,
            cgi_path: CgiPath::parse("/cgi-bin/message/custom/send").unwrap(),
        }
        .call(&c);
        assert_eq!(get.request.path.as_str(), "cgi-bin/openapi/quota/get");
        assert_eq!(
            serde_json::from_slice::<Value>(&get.request.body).unwrap(),
            json!({"cgi_path": "/cgi-bin/message/custom/send"})
        );
    }

    #[test]
    fn answers_and_errors() {
        let op = QuotaOp::Get {
            appid: "wx0000000000000001".into(),
            cgi_path: CgiPath::parse("/cgi-bin/message/custom/send").unwrap(),
        };
        let ok = op
            .answer(&proxied(
                r#"{"errcode":0,"errmsg":"ok","quota":{"daily_limit":10,"used":1,"remain":9},"rate_limit":{"call_count":5,"refresh_second":60}}"#,
            ))
            .unwrap();
        assert_eq!(ok["quota"]["remain"], 9);
        assert_eq!(ok["rate_limit"]["call_count"], 5);
        assert!(ok.get("errmsg").is_none());
        for (code, error) in [
            (48006, QuotaError::ResetLimitReached),
            (76021, QuotaError::UnknownCgiPath(76021)),
            (76022, QuotaError::CgiPathNotOwned),
            (45009, QuotaError::QuotaReached),
            (40001, QuotaError::Other(40001)),
        ] {
            let e = op
                .answer(&proxied(&format!(r#"{{"errcode":{code},"errmsg":"x"}}"#)))
                .unwrap_err();
            assert_eq!((e.errcode(), &e), (Some(code), &error));
        }
        assert_eq!(
            op.answer(&proxied("not json")).unwrap_err(),
            QuotaError::Unreadable
        );
        let cleared = QuotaOp::ClearComponent
            .answer(&proxied(r#"{"errcode":0,"errmsg":"ok"}"#))
            .unwrap();
        assert_eq!(cleared, json!({"cleared": true, "scope": "component"}));
    }
}
