//! One CloudWatch embedded-metric-format line per gateway call (as `refresher::emf_lines` does
//! for the refresher): counted by route and by WeChat's errcode. No token, query or body.

/// What one call did, for the metric line and the handler's log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallRecord {
    /// `authorizer`, `component` or `quota`.
    pub route: &'static str,
    pub authorizer: Option<String>,
    /// The API path (validated; empty when the path itself was refused).
    pub api: String,
    /// The status the caller got.
    pub status: u16,
    /// `answered` (WeChat's answer passed on), `rejected` (refused before any WeChat call),
    /// `failed` (no usable answer from WeChat, or no token).
    pub outcome: &'static str,
    pub errcode: Option<i64>,
    /// For a failed call: `timeout`, `connect`, `transport`, `too_large`, `redirect`, `token`.
    pub failure: Option<&'static str>,
    pub attempts: u32,
    pub token_refreshes: u32,
    /// Token-service lookups (each costs at least one DynamoDB read; 0 when served warm).
    pub token_lookups: u32,
    pub latency_ms: u64,
}

impl CallRecord {
    pub fn new(route: &'static str) -> Self {
        Self {
            route,
            authorizer: None,
            api: String::new(),
            status: 0,
            outcome: "rejected",
            errcode: None,
            failure: None,
            attempts: 0,
            token_refreshes: 0,
            token_lookups: 0,
            latency_ms: 0,
        }
    }

    /// The `Errcode` dimension: WeChat's errcode, `0` for an answer without one, the failure
    /// for a failed call, `none` for a call refused before WeChat.
    pub fn errcode_label(&self) -> String {
        match (self.outcome, self.errcode, self.failure) {
            (_, Some(code), _) => code.to_string(),
            ("answered", None, _) => "0".into(),
            (_, None, Some(f)) => f.into(),
            _ => "none".into(),
        }
    }

    /// The EMF line (namespace `wxopen`, dimensions `[Function, Route]` and
    /// `[Function, Errcode]`).
    pub fn emf_line(&self, function: &str, timestamp_ms: i64) -> String {
        serde_json::json!({
            "_aws": {
                "Timestamp": timestamp_ms,
                "CloudWatchMetrics": [{
                    "Namespace": "wxopen",
                    "Dimensions": [["Function", "Route"], ["Function", "Errcode"]],
                    "Metrics": [
                        {"Name": "GatewayCalls", "Unit": "Count"},
                        {"Name": "GatewayRetries", "Unit": "Count"},
                        {"Name": "GatewayTokenRefreshes", "Unit": "Count"},
                        {"Name": "GatewayTokenLookups", "Unit": "Count"},
                        {"Name": "GatewayLatency", "Unit": "Milliseconds"},
                    ],
                }],
            },
            "Function": function,
            "Route": self.route,
            "Errcode": self.errcode_label(),
            "GatewayCalls": 1,
            "GatewayRetries": self.attempts.saturating_sub(1),
            "GatewayTokenRefreshes": self.token_refreshes,
            "GatewayTokenLookups": self.token_lookups,
            "GatewayLatency": self.latency_ms,
            "Api": self.api,
            "Authorizer": self.authorizer,
            "Status": self.status,
            "Outcome": self.outcome,
        })
        .to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_with_the_errcode_dimension() {
        let mut r = CallRecord::new("authorizer");
        r.authorizer = Some("wx0000000000000001".into());
        r.api = "cgi-bin/menu/create".into();
        r.status = 200;
        r.outcome = "answered";
        r.errcode = Some(45009);
        r.attempts = 2;
        r.token_refreshes = 1;
        let v: serde_json::Value = serde_json::from_str(&r.emf_line("wechat-gateway", 5)).unwrap();
        assert_eq!(v["Errcode"], "45009");
        assert_eq!(v["Route"], "authorizer");
        assert_eq!(v["GatewayRetries"], 1);
        assert_eq!(v["GatewayTokenRefreshes"], 1);
        assert_eq!(v["_aws"]["Timestamp"], 5);
        assert_eq!(
            v["_aws"]["CloudWatchMetrics"][0]["Dimensions"][1][1],
            "Errcode"
        );
        // Every metric named in the directive has a value.
        for m in v["_aws"]["CloudWatchMetrics"][0]["Metrics"]
            .as_array()
            .unwrap()
        {
            assert!(v[m["Name"].as_str().unwrap()].is_number(), "{m}");
        }
    }

    #[test]
    fn labels() {
        let mut r = CallRecord::new("component");
        assert_eq!(r.errcode_label(), "none");
        r.outcome = "answered";
        assert_eq!(r.errcode_label(), "0");
        r.outcome = "failed";
        r.failure = Some("timeout");
        assert_eq!(r.errcode_label(), "timeout");
    }
}
