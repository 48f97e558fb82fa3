//! `wxopen-bench gateway [batches] [batch]`: a proxied WeChat call (`cgi-bin/user/get` through the
//! `wechat-gateway` handler, in process, warm) against the same call made directly to the
//! sandbox, side by side in one run: alternating batches so the machine's phases hit both alike.
//! Reports median and p99 of each, their ratio and the added microseconds, and the DynamoDB
//! requests per proxied call in the steady state (counted on the wire by `OpCounter`).

use std::collections::HashMap;
use std::time::Instant;

use lambda_http::Body;
use serde_json::{Value, json};
use wxopen::gateway::GatewaySettings;
use wxopen_tests::stack::Stack;

const APPID: &str = "wxoa00000000000001";

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = (p * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

fn summary(mut us: Vec<f64>) -> (f64, f64) {
    us.sort_by(f64::total_cmp);
    (percentile(&us, 0.5), percentile(&us, 0.99))
}

pub async fn run(batches: usize, batch: usize) -> Result<Value, String> {
    let stack = Stack::start().await;
    stack.push_ticket().await;
    stack.authorize(APPID, "push_only").await;
    for user in ["alice", "bob", "carol"] {
        stack
            .control(
                reqwest::Method::POST,
                "users/event",
                json!({ "appid": APPID, "user": user, "event": "subscribe" }),
            )
            .await;
    }
    let app = wechat_gateway::App::new(stack.deps(), GatewaySettings::default());
    let path = format!("/authorizers/{APPID}/wechat/cgi-bin/user/get");
    let no_query = HashMap::new();
    let proxied = || async {
        let req = wxopen_tests::request("GET", &path, &no_query, Body::Empty);
        let started = Instant::now();
        let (resp, record) = wechat_gateway::process(&app, &req).await;
        // The metric line is part of every call's work (printed in Lambda).
        let line = record.emf_line(wechat_gateway::FUNCTION, 0);
        let elapsed = started.elapsed();
        std::hint::black_box(line);
        (resp.status().as_u16(), elapsed)
    };
    // The direct call: the token fetched once, a pooled client, the body read in full.
    let token = stack
        .sandbox
        .state()
        .get("merchants")
        .and_then(Value::as_array)
        .and_then(|ms| ms.iter().find(|m| m["appid"] == APPID))
        .and_then(|m| m["authorizer_access_token"].as_str())
        .map(str::to_string)
        .ok_or("no authorizer token in the sandbox")?;
    let client = reqwest::Client::builder()
        .no_proxy()
        .build()
        .map_err(|e| e.to_string())?;
    let url = format!(
        "{}/cgi-bin/user/get?access_token={token}",
        stack.sandbox.base_url()
    );
    let direct = || async {
        let started = Instant::now();
        let resp = client.get(&url).send().await.map_err(|e| e.to_string())?;
        let status = resp.status().as_u16();
        let body = resp.bytes().await.map_err(|e| e.to_string())?;
        let elapsed = started.elapsed();
        std::hint::black_box(body);
        Ok::<_, String>((status, elapsed))
    };
    // Warm both paths (the token cache, the connection pools).
    for _ in 0..50 {
        if proxied().await.0 != 200 || direct().await?.0 != 200 {
            return Err("a warm-up call failed".into());
        }
    }
    stack.ops.reset();
    let (mut p_us, mut d_us) = (Vec::new(), Vec::new());
    for b in 0..batches {
        // Alternate which side goes first.
        for side in [b % 2, 1 - b % 2] {
            for _ in 0..batch {
                if side == 0 {
                    let (status, t) = proxied().await;
                    if status != 200 {
                        return Err(format!("proxied call answered {status}"));
                    }
                    p_us.push(t.as_secs_f64() * 1e6);
                } else {
                    let (status, t) = direct().await?;
                    if status != 200 {
                        return Err(format!("direct call answered {status}"));
                    }
                    d_us.push(t.as_secs_f64() * 1e6);
                }
            }
        }
    }
    let calls = p_us.len();
    let ops = stack.ops.snapshot();
    let dynamo_total: u64 = ops.values().sum();
    let (pm, p99) = summary(p_us);
    let (dm, d99) = summary(d_us);
    Ok(json!({
        "bench": "gateway",
        "api": "cgi-bin/user/get",
        "calls_each": calls,
        "batches": batches,
        "batch": batch,
        "proxied_us": { "median": pm, "p99": p99 },
        "direct_us": { "median": dm, "p99": d99 },
        "ratio": { "median": pm / dm, "p99": p99 / d99 },
        "added_us": { "median": pm - dm, "p99": p99 - d99 },
        "dynamodb_requests_per_call": dynamo_total as f64 / calls as f64,
        "dynamodb_requests": ops,
    }))
}
