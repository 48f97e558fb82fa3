//! `POST /authorizers/{appid}/miniprogram/sessions` `{"js_code"}` (IAM): mini program login on
//! behalf. 200 `{openid, unionid, session_key, identity_id, user_id, known_user, conflict?}`.
//! The session key is answered to the caller (it decrypts the mini program's user data) and
//! never stored or logged.

use lambda_http::http::Method;
use lambda_http::{Body, Error, Request, Response};
use secrecy::ExposeSecret;
use wxopen::app::Deps;
use wxopen::clock::{Clock, SystemClock};
use wxopen::http::{ApiError, appid_param, json_object, json_response, json_text, require_method};
use wxopen::miniprogram_login::{self, valid_js_code};
use wxopen::runtime::{FromRuntime, Runtime};
use wxopen::secrets::CredentialsProvider;
use wxopen::store::{DynamoStore, IdentityStore, TokenServiceStore};

pub struct App<S, C, K> {
    pub deps: Deps<S, C, K>,
}

impl<C> FromRuntime<C> for App<DynamoStore, C, SystemClock> {
    fn from_runtime(rt: Runtime<C>) -> Self {
        Self {
            deps: rt.into_deps(),
        }
    }
}

pub async fn handle<S, C, K>(app: &App<S, C, K>, req: Request) -> Result<Response<Body>, Error>
where
    S: TokenServiceStore + IdentityStore,
    C: CredentialsProvider,
    K: Clock,
{
    Ok(process(app, &req)
        .await
        .unwrap_or_else(ApiError::into_response))
}

async fn process<S, C, K>(app: &App<S, C, K>, req: &Request) -> Result<Response<Body>, ApiError>
where
    S: TokenServiceStore + IdentityStore,
    C: CredentialsProvider,
    K: Clock,
{
    require_method(req, Method::POST)?;
    let appid = appid_param(req)?.to_string();
    let body = json_object(req)?.ok_or_else(|| {
        ApiError::new(
            400,
            "missing_field",
            "the body must be {\"js_code\": \"...\"}",
        )
    })?;
    let js_code = json_text(&body, "js_code")?
        .ok_or_else(|| ApiError::new(400, "missing_field", "js_code is required"))?;
    if !valid_js_code(&js_code) {
        return Err(ApiError::new(
            400,
            "invalid_js_code",
            "js_code must be 1 to 128 letters, digits, _ or -",
        ));
    }
    let s = miniprogram_login::sign_in(&app.deps.tokens(), &appid, &js_code)
        .await
        .map_err(|e| {
            tracing::warn!(error = %e, authorizer = %appid, "mini program login refused");
            ApiError::from(&e)
        })?;
    let mut out = serde_json::json!({
        "openid": s.openid,
        "unionid": s.unionid,
        "session_key": s.session_key.expose_secret(),
        "identity_id": s.sign_in.identity.id,
        "user_id": s.sign_in.identity.user_id,
        "known_user": s.sign_in.known_user,
    });
    if let (Some(c), Some(obj)) = (&s.sign_in.conflict, out.as_object_mut()) {
        obj.insert("conflict".into(), serde_json::json!(c));
    }
    Ok(json_response(200, &out))
}
