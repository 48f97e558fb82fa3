//! The `releases` function (`POST /releases`, `GET /releases/{id}`, `POST /releases/{id}/cancel`)
//! called directly over moto: every refusal is the documented 4xx with the one error shape and
//! changes nothing (the whole table scanned before and after, the release queue still empty, no
//! WeChat call); the happy paths write the job and its targets and hand the first `concurrency`
//! targets to the queue.

use std::collections::HashMap;

use lambda_http::{Body, Request, RequestExt};
use serde_json::{Value, json};
use wxopen::clock::{Clock, SystemClock};
use wxopen::model::{
    AccountKind, AuthorizationGrant, AuthorizerProfileRecord, JobState, NewToken, TargetState,
};
use wxopen::queue::SqsQueue;
use wxopen::store::{AuthorizerStore, DynamoStore, ReleaseStore};
use wxopen_tests::releases::set_customer_ref;
use wxopen_tests::stack::Stack;
use wxopen_tests::{body_text, scan_all};

const MP1: &str = "wxrel0000000000001";
const MP2: &str = "wxrel0000000000002";
const MP3: &str = "wxrel0000000000003";
const OA: &str = "wxrel0000000000004";
/// Authorized once, then unauthorized.
const GONE: &str = "wxrel0000000000005";
const CUSTOMER: &str = "chain-7";
const UNKNOWN_JOB: &str = "0123456789abcdef0123456789abcdef";

type App = releases::App<DynamoStore, SqsQueue, SystemClock>;

fn app(stack: &Stack) -> App {
    releases::App {
        store: stack.store.clone(),
        queue: stack.releases.queue(),
        clock: SystemClock,
    }
}

/// Three mini programs of one customer, an official account and an unauthorized mini program.
async fn seed(stack: &Stack) {
    let now = SystemClock.now();
    let grant = |appid: &str, kind: AccountKind| AuthorizationGrant {
        appid: appid.into(),
        event_time: Some(now),
        func_info: vec![17, 18],
        token: NewToken {
            access_token: format!("at-{appid}").into(),
            expires_at: now + 7200,
            refresh_token: Some(format!("rt-{appid}").into()),
        },
        profile: Some(AuthorizerProfileRecord {
            kind,
            nick_name: appid.into(),
            user_name: format!("gh_{}", &appid[7..]),
            principal_name: None,
            service_type: 0,
            verify_type: 0,
            head_img: None,
        }),
        now,
    };
    let grants = vec![
        grant(MP1, AccountKind::MiniProgram),
        grant(MP2, AccountKind::MiniProgram),
        grant(MP3, AccountKind::MiniProgram),
        grant(OA, AccountKind::OfficialAccount),
        grant(GONE, AccountKind::MiniProgram),
    ];
    stack.store.import_authorizers(&grants).await.unwrap();
    stack.store.mark_unauthorized(GONE, now, now).await.unwrap();
    set_customer_ref(&stack.store, &[MP1, MP2, MP3], CUSTOMER)
        .await
        .unwrap();
}

/// A request as API Gateway hands it over: `id` as the path parameter when the path has one.
fn req(method: &str, path: &str, content_type: Option<&str>, body: Option<String>) -> Request {
    let (path_only, query) = path.split_once('?').unwrap_or((path, ""));
    let mut b = lambda_http::http::Request::builder()
        .method(method)
        .uri(path_only);
    if let Some(ct) = content_type {
        b = b.header("content-type", ct);
    }
    let mut r = b
        .body(body.map_or(Body::Empty, Body::from))
        .unwrap()
        .with_query_string_parameters(
            url::form_urlencoded::parse(query.as_bytes())
                .into_owned()
                .collect::<HashMap<String, String>>(),
        );
    if let Some(rest) = path_only.strip_prefix("/releases/") {
        let id = rest.trim_end_matches("/cancel");
        r = r.with_path_parameters(HashMap::from([("id".to_string(), id.to_string())]));
    }
    r
}

fn json_req(method: &str, path: &str, body: Option<Value>) -> Request {
    req(
        method,
        path,
        body.as_ref().map(|_| "application/json"),
        body.map(|b| b.to_string()),
    )
}

async fn call(app: &App, r: Request) -> (u16, Value) {
    let resp = releases::handle(app, r)
        .await
        .expect("handlers answer Ok for every outcome");
    let text = body_text(&resp);
    let is_json = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    assert!(is_json, "JSON answer: {text}");
    (
        resp.status().as_u16(),
        serde_json::from_str(&text).expect("JSON body"),
    )
}

/// A valid body for the seeded mini programs, with `over` merged in.
fn body(over: Value) -> Value {
    let mut b = json!({
        "template_id": 12,
        "user_version": "2.4.0",
        "user_desc": "spring menu",
        "ext_json": {"extAppid": "{{appid}}", "ext": {"shop": "{{customer_ref}}"}},
        "item_list": [{"address": "pages/index/index", "tag": "food"}],
        "targets": {"appids": [MP1, MP2, MP3]},
        "concurrency": 2,
    });
    for (k, v) in over.as_object().unwrap() {
        if v.is_null() {
            b.as_object_mut().unwrap().remove(k);
        } else {
            b[k] = v.clone();
        }
    }
    b
}

/// The messages on the release queue, taken off it (received and deleted).
async fn queued(stack: &Stack) -> Vec<Value> {
    let mut out = Vec::new();
    loop {
        let got = stack
            .releases
            .sqs
            .receive_message()
            .queue_url(&stack.releases.url)
            .max_number_of_messages(10)
            .visibility_timeout(30)
            .send()
            .await
            .unwrap();
        let msgs = got.messages.unwrap_or_default();
        if msgs.is_empty() {
            return out;
        }
        for m in &msgs {
            out.push(serde_json::from_str(m.body().unwrap_or_default()).unwrap());
            stack
                .releases
                .sqs
                .delete_message()
                .queue_url(&stack.releases.url)
                .receipt_handle(m.receipt_handle().unwrap_or_default())
                .send()
                .await
                .unwrap();
        }
    }
}

struct Bad {
    method: &'static str,
    path: String,
    content_type: Option<&'static str>,
    body: Option<String>,
    status: u16,
    code: &'static str,
}

fn bad(
    method: &'static str,
    path: impl Into<String>,
    body: Option<Value>,
    status: u16,
    code: &'static str,
) -> Bad {
    Bad {
        method,
        path: path.into(),
        content_type: body.as_ref().map(|_| "application/json"),
        body: body.map(|b| b.to_string()),
        status,
        code,
    }
}

fn catalogue(job: &str) -> Vec<Bad> {
    let post = |b: Value, status, code| bad("POST", "/releases", Some(b), status, code);
    let inv = |b: Value| post(b, 400, "invalid_parameter");
    let cancel = format!("/releases/{job}/cancel");
    vec![
        // The body itself.
        bad("POST", "/releases", None, 400, "missing_parameter"),
        Bad {
            method: "POST",
            path: "/releases".into(),
            content_type: Some("text/plain"),
            body: Some(body(json!({})).to_string()),
            status: 415,
            code: "unsupported_media_type",
        },
        Bad {
            method: "POST",
            path: "/releases".into(),
            content_type: Some("application/json"),
            body: Some("{\"template_id\": ".into()),
            status: 400,
            code: "invalid_json",
        },
        Bad {
            method: "POST",
            path: "/releases".into(),
            content_type: Some("application/json"),
            body: Some(format!("{{\"x\":\"{}\"}}", "y".repeat(520 * 1024))),
            status: 413,
            code: "body_too_large",
        },
        post(json!([1, 2]), 400, "invalid_json"),
        // Missing fields.
        inv(body(json!({"template_id": null}))),
        inv(body(json!({"user_version": null}))),
        inv(body(json!({"targets": null}))),
        // Wrong types and values.
        inv(body(json!({"template_id": true}))),
        inv(body(json!({"template_id": -3}))),
        inv(body(json!({"template_id": "12a"}))),
        inv(body(json!({"user_version": 2}))),
        inv(body(json!({"user_version": "   "}))),
        inv(body(json!({"user_version": "v".repeat(65)}))),
        inv(body(json!({"user_version": "1.0\n"}))),
        inv(body(json!({"user_desc": ["d"]}))),
        inv(body(json!({"user_desc": "d".repeat(1025)}))),
        // ext_json must be an object, with known placeholders only.
        inv(body(json!({"ext_json": "{\"extAppid\": \"x\"}"}))),
        inv(body(json!({"ext_json": [1]}))),
        inv(body(json!({"ext_json": 7}))),
        inv(body(json!({"ext_json": {"a": ["{{secret}}"]}}))),
        inv(body(json!({"ext_json": {"big": "z".repeat(70 * 1024)}}))),
        // Targets.
        inv(body(json!({"targets": [MP1]}))),
        inv(body(json!({"targets": {"appids": []}}))),
        inv(body(json!({"targets": {"appids": [MP1, MP1]}}))),
        inv(body(json!({"targets": {"appids": [1]}}))),
        inv(body(json!({"targets": {"appids": ["../etc"]}}))),
        inv(body(json!({"targets": {"all": false}}))),
        inv(body(json!({"targets": {"all": true, "appids": [MP1]}}))),
        inv(body(json!({"targets": {"all": true, "customer_ref": 3}}))),
        inv(body(json!({"targets": {"all": true, "other": 1}}))),
        // Concurrency out of range or not an integer.
        inv(body(json!({"concurrency": 0}))),
        inv(body(json!({"concurrency": 101}))),
        inv(body(json!({"concurrency": -1}))),
        inv(body(json!({"concurrency": 2.5}))),
        inv(body(json!({"concurrency": "5"}))),
        inv(body(json!({"auto_release": "no"}))),
        inv(body(json!({"item_list": {"address": "x"}}))),
        inv(body(json!({"item_list": [1]}))),
        inv(body(json!({"item_list": [{}, {}, {}, {}, {}, {}]}))),
        inv(body(json!({"surprise": 1}))),
        // Targets that are not known authorized mini programs.
        post(
            body(json!({"targets": {"appids": [MP1, "wx00000000000000ff"]}})),
            422,
            "unknown_targets",
        ),
        post(
            body(json!({"targets": {"appids": [GONE]}})),
            422,
            "unknown_targets",
        ),
        post(
            body(json!({"targets": {"appids": [MP2, OA]}})),
            422,
            "not_mini_programs",
        ),
        post(
            body(json!({"targets": {"all": true, "customer_ref": "nobody"}})),
            422,
            "no_targets",
        ),
        // Jobs that do not exist, ids that are not ids, bad paging.
        bad("GET", "/releases/nope", None, 404, "unknown_release"),
        bad("GET", "/releases/../x", None, 404, "unknown_release"),
        bad(
            "GET",
            "/releases/0123456789ABCDEF0123456789ABCDEF",
            None,
            404,
            "unknown_release",
        ),
        bad(
            "GET",
            format!("/releases/{UNKNOWN_JOB}"),
            None,
            404,
            "unknown_release",
        ),
        bad(
            "GET",
            format!("/releases/{job}?state=shipped"),
            None,
            400,
            "invalid_parameter",
        ),
        bad(
            "GET",
            format!("/releases/{job}?limit=0"),
            None,
            400,
            "invalid_parameter",
        ),
        bad(
            "GET",
            format!("/releases/{job}?limit=101"),
            None,
            400,
            "invalid_parameter",
        ),
        bad(
            "GET",
            format!("/releases/{job}?cursor=-1"),
            None,
            400,
            "invalid_parameter",
        ),
        bad(
            "POST",
            format!("/releases/{UNKNOWN_JOB}/cancel"),
            None,
            404,
            "unknown_release",
        ),
        bad(
            "POST",
            "/releases/nope/cancel",
            None,
            404,
            "unknown_release",
        ),
        bad(
            "POST",
            cancel.clone(),
            Some(json!({"undo_audits": "yes"})),
            400,
            "invalid_parameter",
        ),
        bad(
            "POST",
            cancel.clone(),
            Some(json!({"undo": true})),
            400,
            "invalid_parameter",
        ),
        Bad {
            method: "POST",
            path: cancel.clone(),
            content_type: Some("text/plain"),
            body: Some("{}".into()),
            status: 415,
            code: "unsupported_media_type",
        },
        // Wrong methods (there is no list route: GET /releases is refused too).
        bad("GET", "/releases", None, 405, "method_not_allowed"),
        bad("PUT", "/releases", None, 405, "method_not_allowed"),
        bad(
            "DELETE",
            format!("/releases/{job}"),
            None,
            405,
            "method_not_allowed",
        ),
        bad(
            "POST",
            format!("/releases/{job}"),
            None,
            405,
            "method_not_allowed",
        ),
        bad("GET", cancel, None, 405, "method_not_allowed"),
    ]
}

#[tokio::test]
async fn every_bad_request_is_a_clear_4xx_and_changes_nothing() {
    let stack = Stack::start().await;
    seed(&stack).await;
    let app = app(&stack);
    // One real job, so the paging and cancel rows meet a job that exists.
    let (s, created) = call(&app, json_req("POST", "/releases", Some(body(json!({}))))).await;
    assert_eq!(s, 201, "{created}");
    let job = created["id"].as_str().unwrap().to_string();
    assert_eq!(
        queued(&stack).await.len(),
        2,
        "the first two targets queued"
    );
    let before = scan_all(&stack.store).await;
    stack.sandbox.clear_calls();

    for c in catalogue(&job) {
        let what = format!("{} {}", c.method, &c.path[..c.path.len().min(80)]);
        let (status, v) = call(&app, req(c.method, &c.path, c.content_type, c.body)).await;
        assert_eq!(status, c.status, "{what}: {v}");
        assert_eq!(v["error"], c.code, "{what}: {v}");
        assert!(
            v["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{what}: {v}"
        );
        let keys: Vec<&String> = v.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["error", "message"], "{what}: the one error shape");
    }
    assert_eq!(
        scan_all(&stack.store).await,
        before,
        "bad input changed nothing in the table"
    );
    assert!(
        queued(&stack).await.is_empty(),
        "bad input put nothing on the release queue"
    );
    assert!(
        stack.sandbox.calls().is_empty(),
        "bad input reached WeChat: {:?}",
        stack.sandbox.calls()
    );
}

#[tokio::test]
async fn a_job_is_created_shown_paged_and_cancelled() {
    let stack = Stack::start().await;
    seed(&stack).await;
    let app = app(&stack);

    let (s, created) = call(
        &app,
        json_req(
            "POST",
            "/releases",
            Some(body(json!({
                "targets": {"all": true, "customer_ref": CUSTOMER},
                "auto_release": false,
            }))),
        ),
    )
    .await;
    assert_eq!(s, 201, "{created}");
    assert_eq!(created["state"], "running");
    assert_eq!(created["targets"], 3, "the customer's three mini programs");
    let id = created["id"].as_str().unwrap().to_string();
    assert!(wxopen::releases::is_job_id(&id));

    // The first `concurrency` targets are on the queue as step messages.
    let mut messages = queued(&stack).await;
    messages.sort_by_key(|m| m["seq"].as_u64());
    assert_eq!(
        messages,
        vec![
            json!({"job": id, "seq": 0, "slot": true}),
            json!({"job": id, "seq": 1, "slot": true}),
        ]
    );
    let stored = stack.store.get_job(&id).await.unwrap().unwrap();
    assert_eq!((stored.total, stored.dispatched), (3, 2));
    assert!(!stored.auto_release);
    assert_eq!(stored.concurrency, 2);

    // GET: the job, its counts, a page of targets.
    let (s, v) = call(&app, json_req("GET", &format!("/releases/{id}"), None)).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["id"], id.as_str());
    assert_eq!(v["state"], "running");
    assert_eq!(v["template_id"], 12);
    assert_eq!(v["user_version"], "2.4.0");
    assert_eq!(v["auto_release"], false);
    assert_eq!(v["total"], 3);
    assert_eq!(v["counts"]["queued"], 3);
    assert_eq!(v["counts"]["released"], 0);
    let appids: Vec<&str> = v["targets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["appid"].as_str().unwrap())
        .collect();
    let mut sorted = appids.clone();
    sorted.sort();
    assert_eq!(sorted, [MP1, MP2, MP3]);
    assert!(
        v["targets"]
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t["state"] == "queued")
    );
    assert_eq!(v["next_cursor"], Value::Null);

    // Paging: two, then the rest from the cursor.
    let (s, p1) = call(
        &app,
        json_req("GET", &format!("/releases/{id}?limit=2"), None),
    )
    .await;
    assert_eq!(s, 200, "{p1}");
    assert_eq!(p1["targets"].as_array().unwrap().len(), 2);
    let cursor = p1["next_cursor"].as_str().expect("a cursor").to_string();
    let (s, p2) = call(
        &app,
        json_req(
            "GET",
            &format!("/releases/{id}?limit=2&cursor={cursor}"),
            None,
        ),
    )
    .await;
    assert_eq!(s, 200, "{p2}");
    let rest = p2["targets"].as_array().unwrap();
    assert_eq!(rest.len(), 1);
    let mut both: Vec<&str> = p1["targets"]
        .as_array()
        .unwrap()
        .iter()
        .chain(rest)
        .map(|t| t["appid"].as_str().unwrap())
        .collect();
    both.sort();
    assert_eq!(both, [MP1, MP2, MP3], "the pages cover every target once");
    assert_eq!(p2["next_cursor"], Value::Null);
    // A state filter.
    let (s, none) = call(
        &app,
        json_req("GET", &format!("/releases/{id}?state=released"), None),
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(none["targets"], json!([]));
    let (s, q) = call(
        &app,
        json_req("GET", &format!("/releases/{id}?state=queued"), None),
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(q["targets"].as_array().unwrap().len(), 3);

    // Cancel: the job is cancelling and a sweep is queued; a second cancel says the same and
    // may change its mind about undoing audits.
    let (s, c1) = call(
        &app,
        json_req("POST", &format!("/releases/{id}/cancel"), None),
    )
    .await;
    assert_eq!(s, 200, "{c1}");
    assert_eq!(c1["state"], "cancelling");
    assert_eq!(c1["undo_audits"], false);
    assert_eq!(
        queued(&stack).await,
        vec![json!({"job": id, "sweep": true})]
    );
    let (s, c2) = call(
        &app,
        json_req(
            "POST",
            &format!("/releases/{id}/cancel"),
            Some(json!({"undo_audits": true})),
        ),
    )
    .await;
    assert_eq!(s, 200, "{c2}");
    assert_eq!(c2["state"], "cancelling");
    assert_eq!(c2["undo_audits"], true);
    let job = stack.store.get_job(&id).await.unwrap().unwrap();
    assert_eq!(job.state, JobState::Cancelling);
    assert!(job.undo_audits);
    // Once the job has ended, a cancel is refused and changes nothing.
    stack
        .store
        .set_job_state(
            &id,
            &[JobState::Cancelling],
            JobState::Cancelled,
            None,
            SystemClock.now(),
        )
        .await
        .unwrap();
    let _ = queued(&stack).await;
    let before = scan_all(&stack.store).await;
    let (s, c3) = call(
        &app,
        json_req("POST", &format!("/releases/{id}/cancel"), None),
    )
    .await;
    assert_eq!(s, 409, "{c3}");
    assert_eq!(c3["error"], "release_finished");
    assert!(
        c3["message"]
            .as_str()
            .is_some_and(|m| m.contains("cancelled"))
    );
    assert_eq!(scan_all(&stack.store).await, before);
    assert!(queued(&stack).await.is_empty());
    let (s, shown) = call(&app, json_req("GET", &format!("/releases/{id}"), None)).await;
    assert_eq!(s, 200);
    assert_eq!(shown["state"], "cancelled");
    // Nothing here talks to WeChat: the worker does.
    assert!(stack.sandbox.calls().is_empty());
}

#[tokio::test]
async fn a_job_by_appids_takes_every_listed_target_with_the_default_concurrency() {
    let stack = Stack::start().await;
    seed(&stack).await;
    let app = app(&stack);
    let (s, created) = call(
        &app,
        json_req(
            "POST",
            "/releases",
            Some(body(
                json!({"targets": {"appids": [MP3, MP1]}, "concurrency": null}),
            )),
        ),
    )
    .await;
    assert_eq!(s, 201, "{created}");
    assert_eq!(created["targets"], 2);
    let id = created["id"].as_str().unwrap();
    let job = stack.store.get_job(id).await.unwrap().unwrap();
    assert_eq!(job.concurrency, wxopen::releases::DEFAULT_CONCURRENCY);
    assert!(job.auto_release, "auto_release defaults to true");
    assert_eq!(job.counts.get(&TargetState::Queued), Some(&2));
    let (targets, _) = stack.store.list_targets(id, None, 10, None).await.unwrap();
    let order: Vec<&str> = targets.iter().map(|t| t.appid.as_str()).collect();
    assert_eq!(order, [MP3, MP1], "targets in the order given");
    assert_eq!(queued(&stack).await.len(), 2, "both fit in the concurrency");
    // The job's stored request keeps the audit fields and the ext_json template, unrendered.
    assert!(job.audit.contains_key("item_list"));
    assert_eq!(job.ext_json["extAppid"], "{{appid}}");
}
