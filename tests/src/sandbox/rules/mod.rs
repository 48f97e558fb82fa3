//! Each WeChat API's own rules, one file per area. A rule runs on the locked state after the
//! method, token, quota and body checks (`api::process`) and answers JSON or bytes; the API
//! table (`apis.rs`) names the rule of each API.

use std::collections::HashMap;

use serde_json::{Map, Value};

use super::api::Answer;
use super::state::State;
use super::util::str_field;

pub mod account;
pub mod business;
pub mod code;
pub mod component;
pub mod open;
pub mod sns;

/// One call as a rule sees it.
pub struct Call<'a> {
    /// The acting account: the authorizer's appid for authorizer-token APIs, the component's
    /// appid for the others.
    pub actor: &'a str,
    /// The JSON body of a POST (empty for a GET and an upload).
    pub body: &'a Map<String, Value>,
    pub query: &'a HashMap<String, String>,
    /// The request body as sent (an upload's multipart form).
    pub raw: &'a [u8],
    /// The request's `Content-Type`.
    pub content_type: Option<&'a str>,
}

impl Call<'_> {
    /// A non-empty query parameter.
    pub fn query_param(&self, key: &str) -> Option<&str> {
        self.query
            .get(key)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    /// The acting account, for the call log.
    pub fn actor_appid(&self) -> Option<String> {
        Some(self.actor.to_string())
    }
}

/// Component APIs: the body's `component_appid` must name this component (41002 missing,
/// 40013 another one).
pub fn check_component_appid(st: &State, body: &Map<String, Value>) -> Result<(), Answer> {
    match str_field(body, "component_appid") {
        None => Err(Answer::err(41002, None)),
        Some(a) if a != st.config.component_appid => Err(Answer::err(40013, None)),
        Some(_) => Ok(()),
    }
}
