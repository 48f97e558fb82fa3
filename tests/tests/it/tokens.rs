//! The token lifecycle against moto and the sandbox over real HTTP: single-writer refresh under
//! concurrency, crash recovery, refresh-token recovery, WeChat faults, stale-version vending.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use crate::common::{MP1, OA1, OA2, OA3, OA4, stack_with};
use futures_util::future::join_all;
use reqwest::Method;
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;
use token_refresh::App;
use wxopen::clock::{Clock, FixedClock, SystemClock};
use wxopen::model::{AuthorizerState, NewToken, TokenKey};
use wxopen::refresher::{RefreshReport, RefreshSettings};
use wxopen::store::{AuthorizerStore, TokenStore};
use wxopen_tests::stack::Stack;

const ALL: [&str; 5] = [OA1, OA2, OA3, OA4, MP1];

fn refresher(
    stack: &Stack,
    now: i64,
) -> App<wxopen::store::DynamoStore, Arc<wxopen::secrets::StaticCredentials>, FixedClock> {
    App {
        deps: stack.deps_with_clock(FixedClock::new(now)),
        settings: RefreshSettings::default(),
        publisher: stack.publisher(),
        release_queue: stack.releases.queue(),
        release_settings: Default::default(),
    }
}

async fn version(stack: &Stack, appid: &str) -> u64 {
    stack
        .store
        .get_token(&TokenKey::Authorizer(appid.into()))
        .await
        .unwrap()
        .unwrap()
        .version
}

async fn refresh_token(stack: &Stack, appid: &str) -> String {
    let t = stack
        .store
        .get_token(&TokenKey::Authorizer(appid.into()))
        .await
        .unwrap()
        .unwrap();
    t.refresh_token
        .map(|r| r.expose_secret().to_string())
        .unwrap_or_default()
}

/// True when the sandbox accepts `token` for `appid` (any answer but 40001/42001).
async fn token_accepted(stack: &Stack, appid: &str, token: &SecretString) -> bool {
    match stack.wechat.open_get(token, appid).await {
        Ok(_) => true,
        Err(e) => !e.is_token_stale(),
    }
}

#[tokio::test]
async fn eight_refreshers_make_one_wechat_call_per_token_while_readers_keep_working() {
    let stack = stack_with(&ALL).await;
    let before: Vec<u64> = join_all(ALL.iter().map(|a| version(&stack, a))).await;
    assert!(before.iter().all(|v| *v == 1));
    stack.sandbox.clear_calls();
    // Every token (component included) is due: the refreshers run 7,000 s in the future.
    let later = SystemClock.now() + 7000;

    let done = Arc::new(AtomicBool::new(false));
    let reads = Arc::new(AtomicU32::new(0));
    let readers = {
        let reader_deps: Vec<_> = ALL
            .iter()
            .map(|_| stack.deps_with_clock(FixedClock::new(later)))
            .collect();
        let stack = &stack;
        let done = done.clone();
        let reads = reads.clone();
        async move {
            let mut rejected = Vec::new();
            while !done.load(Ordering::SeqCst) {
                for (deps, appid) in reader_deps.iter().zip(ALL) {
                    let t = deps
                        .tokens()
                        .authorizer_token(appid, None)
                        .await
                        .expect("reader gets a token");
                    if !token_accepted(stack, appid, &t.token).await {
                        rejected.push((appid, t.version));
                    }
                    reads.fetch_add(1, Ordering::SeqCst);
                }
            }
            rejected
        }
    };
    let refreshers = async {
        let apps: Vec<_> = (0..8).map(|_| refresher(&stack, later)).collect();
        let reports: Vec<RefreshReport> = join_all(apps.iter().map(token_refresh::run)).await;
        done.store(true, Ordering::SeqCst);
        reports
    };
    let (reports, rejected) = tokio::join!(refreshers, readers);

    assert!(
        rejected.is_empty(),
        "a reader saw 40001/42001: {rejected:?}"
    );
    assert!(reads.load(Ordering::SeqCst) >= ALL.len() as u32);
    assert_eq!(
        stack.calls_to("api_authorizer_token"),
        ALL.len(),
        "exactly one call per authorizer token"
    );
    assert_eq!(
        stack.calls_to("api_component_token"),
        1,
        "exactly one component token call"
    );
    assert_eq!(
        reports.iter().map(|r| r.refreshed).sum::<u32>(),
        ALL.len() as u32
    );
    assert_eq!(reports.iter().filter(|r| r.component_refreshed).count(), 1);
    assert!(reports.iter().all(|r| r.failures.is_empty()), "{reports:?}");
    for a in ALL {
        assert_eq!(version(&stack, a).await, 2, "{a} refreshed exactly once");
    }
    // No 40001 anywhere in the sandbox's log.
    assert!(
        stack
            .sandbox
            .calls()
            .iter()
            .all(|c| c.errcode != 40001 && c.errcode != 42001)
    );
    // Running again right away finds nothing due.
    let again = token_refresh::run(&refresher(&stack, later)).await;
    assert_eq!((again.due, again.refreshed), (0, 0));
}

#[tokio::test]
async fn a_refresher_killed_after_wechat_answered_is_recovered_by_the_next_run() {
    let stack = stack_with(&[OA1]).await;
    let key = TokenKey::Authorizer(OA1.into());
    let t0 = SystemClock.now() + 7000;
    let rt = refresh_token(&stack, OA1).await;
    // A worker takes the lease and WeChat answers it ... then the worker dies before writing.
    assert_eq!(
        stack
            .store
            .acquire_lease(&key, 1, "crashed-worker", t0, t0 + 30)
            .await
            .unwrap(),
        wxopen::store::LeaseOutcome::Acquired
    );
    let component = stack.deps().tokens().component_token(None).await.unwrap();
    let lost = stack
        .wechat
        .authorizer_token(
            &component.token,
            wxopen_tests::APPID,
            OA1,
            &rt.clone().into(),
        )
        .await
        .unwrap();
    assert!(token_accepted(&stack, OA1, &lost.authorizer_access_token).await);
    stack.sandbox.clear_calls();

    // While the dead worker's lease lives, the refresher leaves the token alone.
    let first = token_refresh::run(&refresher(&stack, t0 + 10)).await;
    assert_eq!(
        (first.due, first.refreshed, first.skipped),
        (1, 0, 1),
        "{first:?}"
    );
    assert_eq!(stack.calls_to("api_authorizer_token"), 0);
    // Once it expires, the next run refreshes, and the refresh token still works.
    let second = token_refresh::run(&refresher(&stack, t0 + 31)).await;
    assert_eq!(second.refreshed, 1, "{second:?}");
    assert_eq!(version(&stack, OA1).await, 2);
    assert_eq!(refresh_token(&stack, OA1).await, rt, "refresh token kept");
    let current = stack
        .deps_with_clock(FixedClock::new(t0 + 31))
        .tokens()
        .authorizer_token(OA1, None)
        .await
        .unwrap();
    assert!(token_accepted(&stack, OA1, &current.token).await);
}

/// Simulates a refresh token lost in an older write: the store now holds a wrong one (61023 at
/// the next refresh) and an expired access token. Returns now.
pub(crate) async fn lose_refresh_token(stack: &Stack, appid: &str) -> i64 {
    let key = TokenKey::Authorizer(appid.into());
    let now = SystemClock.now();
    stack
        .store
        .acquire_lease(&key, 1, "w", now, now + 30)
        .await
        .unwrap();
    stack
        .store
        .commit_token(
            &key,
            "w",
            1,
            &NewToken {
                access_token: "stale".into(),
                expires_at: now,
                refresh_token: Some("refreshtoken@@@lost".into()),
            },
        )
        .await
        .unwrap();
    now
}

#[tokio::test]
async fn a_lost_refresh_token_is_recovered_from_the_authorizer_list() {
    let stack = stack_with(&[OA1, OA2]).await;
    let good = refresh_token(&stack, OA1).await;
    let now = lose_refresh_token(&stack, OA1).await;

    let report = token_refresh::run(&refresher(&stack, now + 7000)).await;
    assert_eq!(report.failures.get("errcode_61023"), Some(&1), "{report:?}");
    assert_eq!(report.recovered, 1, "{report:?}");
    let a = stack.store.get_authorizer(OA1).await.unwrap().unwrap();
    assert_eq!(a.state, AuthorizerState::Authorized);
    assert_eq!(
        refresh_token(&stack, OA1).await,
        good,
        "recovered from api_get_authorizer_list"
    );
    let t = stack
        .deps_with_clock(FixedClock::new(now + 7000))
        .tokens()
        .authorizer_token(OA1, None)
        .await
        .unwrap();
    assert!(token_accepted(&stack, OA1, &t.token).await);
    assert_eq!(stack.calls_to("api_get_authorizer_list"), 1);
}

/// A stack where `appid`'s merchant cancelled but the unauthorized push never reached us.
pub(crate) async fn cancelled_without_push(appid: &str) -> Stack {
    let stack = stack_with(&[appid]).await;
    stack.sandbox.set_callbacks(None, None);
    let (status, body) = stack
        .control(
            Method::POST,
            &format!("merchants/{appid}/cancel"),
            json!({}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    stack
}

/// Fault: an authorizer WeChat no longer lists used to stay in the recovery partition, and
/// every run walked the whole authorizer list for it, forever. Now recovery marks it
/// `unauthorized` with the reason, and later runs neither list nor refresh anything for it.
#[tokio::test]
async fn a_revoked_authorizer_wechat_no_longer_lists_is_marked_unauthorized() {
    let stack = cancelled_without_push(OA1).await;
    let report = token_refresh::run(&refresher(&stack, SystemClock.now() + 7000)).await;
    assert_eq!(report.failures.get("errcode_61023"), Some(&1), "{report:?}");
    assert_eq!(report.recovered, 0);
    let a = stack.store.get_authorizer(OA1).await.unwrap().unwrap();
    assert_eq!(a.state, AuthorizerState::Unauthorized);
    assert!(
        a.state_reason
            .as_deref()
            .is_some_and(|r| r.contains("not listed")),
        "{a:?}"
    );
    assert!(stack.store.needs_reauth().await.unwrap().is_empty());
    let (status, body) = stack
        .api(
            Method::GET,
            &format!("/authorizers/{OA1}/access-token"),
            None,
        )
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (409, Some("authorizer_unauthorized")),
        "{body}"
    );
    let (_, shown) = stack
        .api(Method::GET, &format!("/authorizers/{OA1}"), None)
        .await;
    assert_eq!(shown["state"], "unauthorized", "{shown}");
    assert!(shown["state_reason"].is_string(), "{shown}");
    // Out of every index: a later run walks no list and calls no token API.
    stack.sandbox.clear_calls();
    let again = token_refresh::run(&refresher(&stack, SystemClock.now() + 7000)).await;
    assert_eq!((again.due, again.recovered), (0, 0));
    assert_eq!(stack.calls_to("api_authorizer_token"), 0);
    assert_eq!(stack.calls_to("api_get_authorizer_list"), 0);
}

async fn fault(stack: &Stack, api: &str, body: serde_json::Value) {
    let mut body = body;
    body["api"] = api.into();
    let (status, b) = stack.control(Method::POST, "faults", body).await;
    assert_eq!(status, 200, "{b}");
}

#[tokio::test]
async fn wechat_faults_are_handled_and_lose_nothing() {
    let stack = stack_with(&[OA1]).await;
    let key = TokenKey::Authorizer(OA1.into());
    let rt = refresh_token(&stack, OA1).await;
    let mut now = SystemClock.now() + 7000;
    // (fault, expected failure label, whether one retry absorbs it)
    let cases = [
        (json!({"errcode": -1, "count": 1}), "errcode_-1", true),
        (json!({"errcode": -1, "count": 2}), "errcode_-1", false),
        (
            json!({"errcode": 45009, "count": 1}),
            "errcode_45009",
            false,
        ),
        (
            json!({"errcode": 61004, "count": 1}),
            "errcode_61004",
            false,
        ),
        (json!({"latency_ms": 2500, "count": 2}), "timeout", false),
    ];
    for (spec, label, absorbed) in cases {
        let v = version(&stack, OA1).await;
        fault(&stack, "api_authorizer_token", spec.clone()).await;
        let report = token_refresh::run(&refresher(&stack, now)).await;
        let t = stack.store.get_token(&key).await.unwrap().unwrap();
        assert!(t.lease_owner.is_none(), "{spec}: lease released");
        assert_eq!(
            refresh_token(&stack, OA1).await,
            rt,
            "{spec}: refresh token kept"
        );
        if absorbed {
            assert_eq!(
                (report.refreshed, t.version),
                (1, v + 1),
                "{spec}: {report:?}"
            );
        } else {
            assert_eq!(report.failures.get(label), Some(&1), "{spec}: {report:?}");
            assert_eq!(t.version, v, "{spec}: nothing written");
            assert_eq!(
                stack
                    .store
                    .get_authorizer(OA1)
                    .await
                    .unwrap()
                    .unwrap()
                    .state,
                AuthorizerState::Authorized
            );
            // The next scheduled run (5 minutes later), with WeChat healthy again, refreshes
            // (a failure a retry does not fix backs off for at least 60 s).
            let next = token_refresh::run(&refresher(&stack, now + 300)).await;
            assert_eq!(next.refreshed, 1, "{spec}: {next:?}");
        }
        now += 7000;
    }
}

#[tokio::test]
async fn stale_version_gets_the_newer_token_with_one_refresh_for_all_callers() {
    let stack = stack_with(&[OA1]).await;
    let path = format!("/authorizers/{OA1}/access-token");
    let (status, first) = stack.api(Method::GET, &path, None).await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(first["version"], 1);
    stack.sandbox.clear_calls();
    // Moments after it was written, "version 1 is stale" gets version 1 back: no refresh.
    let stale = format!("{path}?stale_version=1");
    let results = join_all((0..5).map(|_| stack.api(Method::GET, &stale, None))).await;
    for (status, body) in &results {
        assert_eq!(*status, 200, "{body}");
        assert_eq!(body["version"], 1);
    }
    assert_eq!(stack.calls_to("api_authorizer_token"), 0);
    // Past the minimum interval, five callers who all saw WeChat reject version 1: one refresh.
    let later = stack.deps_with_clock(FixedClock::new(SystemClock.now() + 120));
    let results = join_all(
        (0..5).map(|_| async { later.tokens().authorizer_token(OA1, Some(1)).await.unwrap() }),
    )
    .await;
    for t in &results {
        assert_eq!(t.version, 2);
    }
    assert_eq!(
        stack.calls_to("api_authorizer_token"),
        1,
        "one refresh for all of them"
    );
    // Asking about an old version again returns the current token without calling WeChat.
    let (_, again) = stack
        .api(Method::GET, &format!("{path}?stale_version=1"), None)
        .await;
    assert_eq!(again["version"], 2);
    assert_eq!(stack.calls_to("api_authorizer_token"), 1);
    // Component tokens follow the same protocol.
    let (_, c) = stack
        .api(Method::GET, "/component/access-token", None)
        .await;
    let v = c["version"].as_u64().unwrap();
    let c2 = later.tokens().component_token(Some(v)).await.unwrap();
    assert_eq!(c2.version, v + 1);
}

#[tokio::test]
async fn access_token_route_rejects_bad_input() {
    let stack = stack_with(&[]).await;
    for (path, status, code) in [
        ("/authorizers/wxnope/access-token", 400, "invalid_appid"),
        (
            "/authorizers/wx0000000000000000/access-token",
            404,
            "unknown_authorizer",
        ),
        (
            "/component/access-token?stale_version=abc",
            400,
            "invalid_parameter",
        ),
        (
            "/component/access-token?stale_version=-1",
            400,
            "invalid_parameter",
        ),
    ] {
        let (s, body) = stack.api(Method::GET, path, None).await;
        assert_eq!(
            (s, body["error"].as_str()),
            (status, Some(code)),
            "{path}: {body}"
        );
    }
    // A method the template does not route never reaches the function (API Gateway: 404);
    // the handler's own 405 is checked in bad_input.rs.
    let (s, body) = stack
        .api(Method::POST, "/component/access-token", None)
        .await;
    assert_eq!(s, 404, "{body}");
}

#[tokio::test]
async fn a_stale_ticket_asks_wechat_to_push_again() {
    let stack = stack_with(&[]).await;
    let ticket_time = wxopen::store::TicketStore::get_ticket(&stack.store)
        .await
        .unwrap()
        .unwrap()
        .create_time;
    let pushes_before = stack.sandbox.pushes().len();
    let report = token_refresh::run(&refresher(&stack, ticket_time + 13 * 3600)).await;
    assert!(report.ticket_requested, "{report:?}");
    assert_eq!(report.ticket_age_secs, Some(13 * 3600));
    assert_eq!(stack.calls_to("api_start_push_ticket"), 1);
    // The sandbox pushes a new ticket (asynchronously, as WeChat does); wait for it to land.
    let mut waited = 0;
    while stack.sandbox.pushes().len() == pushes_before && waited < 100 {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        waited += 1;
    }
    assert!(
        stack.sandbox.pushes().len() > pushes_before,
        "a new ticket was pushed"
    );
    let lines = wxopen::refresher::emf_lines(&report, 0);
    let metrics: serde_json::Value = serde_json::from_str(&lines[0]).unwrap();
    assert_eq!(metrics["TicketAgeSeconds"], 13 * 3600);
    assert_eq!(
        metrics["_aws"]["CloudWatchMetrics"][0]["Namespace"],
        "wxopen"
    );
}

/// Seeds `count` authorized merchants in the sandbox and records them in the store with access
/// tokens expiring at `expires_at(i)` (as if authorized earlier). Returns their appids.
pub async fn seed_authorizers(
    stack: &Stack,
    start: usize,
    count: usize,
    expires_at: impl Fn(usize) -> i64,
) -> Vec<String> {
    let (status, list) = stack
        .control(
            Method::POST,
            "merchants/bulk",
            json!({ "count": count, "start": start }),
        )
        .await;
    assert_eq!(status, 200, "{list}");
    let list = list.as_array().unwrap().clone();
    let now = SystemClock.now();
    let grants: Vec<_> = list
        .iter()
        .enumerate()
        .map(|(i, m)| wxopen::model::AuthorizationGrant {
            appid: m["appid"].as_str().unwrap().to_string(),
            event_time: Some(now),
            func_info: vec![1, 2, 3],
            token: NewToken {
                access_token: format!("seeded-{i}").into(),
                expires_at: expires_at(i),
                refresh_token: Some(m["refresh_token"].as_str().unwrap().to_string().into()),
            },
            profile: None,
            now,
        })
        .collect();
    // Seed with bounded parallelism (moto is single-process).
    use futures_util::stream::{self, StreamExt};
    stream::iter(grants.iter())
        .for_each_concurrent(16, |g| async {
            stack.store.record_authorization(g).await.unwrap();
        })
        .await;
    list.iter()
        .map(|m| m["appid"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn a_thousand_authorizers_with_a_hundred_due_cost_a_hundred_calls() {
    let stack = stack_with(&[]).await;
    let now = SystemClock.now();
    // The component token is fresh; 100 of 1,000 authorizer tokens expire within the window.
    let appids = seed_authorizers(&stack, 1, 1000, |i| {
        if i % 10 == 0 { now + 300 } else { now + 7000 }
    })
    .await;
    stack.deps().tokens().component_token(None).await.unwrap();
    stack.sandbox.clear_calls();
    stack.ops.reset();

    let report = token_refresh::run(&refresher(&stack, now)).await;
    assert_eq!((report.due, report.refreshed), (100, 100), "{report:?}");
    assert!(report.failures.is_empty(), "{report:?}");
    assert_eq!(
        stack.calls_to("api_authorizer_token"),
        100,
        "100 WeChat calls, not 1,000"
    );
    assert_eq!(stack.calls_to("api_component_token"), 0);
    let ops = stack.ops.snapshot();
    let per_token = stack.ops.total() as f64 / 100.0;
    println!("DynamoDB requests for 100 refreshed tokens: {ops:?} = {per_token:.2} per token");
    assert!(!ops.contains_key("Scan"), "no scan: {ops:?}");
    assert!(
        per_token <= 4.0,
        "≤ 4 DynamoDB requests per refreshed token, got {per_token:.2}: {ops:?}"
    );
    // Nothing is due any more; a sample of tokens shows who was refreshed.
    assert!(
        stack
            .store
            .due_tokens(now + 900, 10)
            .await
            .unwrap()
            .is_empty()
    );
    for (i, appid) in appids.iter().enumerate().step_by(7).take(30) {
        assert_eq!(
            version(&stack, appid).await,
            if i % 10 == 0 { 2 } else { 1 },
            "{appid}"
        );
    }
}

/// Fault: a token whose refresh fails with an errcode a retry does not fix stayed due, and every
/// run called WeChat for it again, forever. Now it backs off (waits that double, capped) and the
/// failure is shown on the authorizer (`last_error`, `failing_since`) until a refresh succeeds.
#[tokio::test]
async fn a_token_failing_for_good_backs_off_and_says_so() {
    let stack = stack_with(&[OA1]).await;
    fault(
        &stack,
        "api_authorizer_token",
        json!({"errcode": 61003, "count": 1000}),
    )
    .await;
    let t0 = SystemClock.now() + 7000;
    let first = token_refresh::run(&refresher(&stack, t0)).await;
    assert_eq!(first.failures.get("errcode_61003"), Some(&1), "{first:?}");
    let (_, shown) = stack
        .api(Method::GET, &format!("/authorizers/{OA1}"), None)
        .await;
    assert_eq!(shown["last_error"], "errcode_61003", "{shown}");
    assert_eq!(shown["failing_since"], t0, "{shown}");
    // The next scheduled runs (5 and 10 minutes later) leave it alone: no WeChat call.
    stack.sandbox.clear_calls();
    for later in [t0 + 30, t0 + 50] {
        let r = token_refresh::run(&refresher(&stack, later)).await;
        assert_eq!(r.due, 0, "{r:?}");
    }
    assert_eq!(stack.calls_to("api_authorizer_token"), 0);
    // After the back-off it is tried again; the waits grow (60 s, then the time failing).
    let second = token_refresh::run(&refresher(&stack, t0 + 61)).await;
    assert_eq!(second.failures.get("errcode_61003"), Some(&1), "{second:?}");
    let third = token_refresh::run(&refresher(&stack, t0 + 61 + 60)).await;
    assert_eq!(
        third.due, 0,
        "the second wait is longer than the first: {third:?}"
    );
    // WeChat recovers: the next try succeeds and the failure is cleared.
    let (status, b) = stack.control(Method::DELETE, "faults", json!({})).await;
    assert!(status == 200 || status == 204, "{b}");
    let ok = token_refresh::run(&refresher(&stack, t0 + 61 + 200)).await;
    assert_eq!(ok.refreshed, 1, "{ok:?}");
    let (_, shown) = stack
        .api(Method::GET, &format!("/authorizers/{OA1}"), None)
        .await;
    assert!(
        shown["last_error"].is_null() && shown["failing_since"].is_null(),
        "{shown}"
    );
}

/// The forced-refresh bound is the deployment's setting (`TOKEN_MIN_REFRESH_INTERVAL_SECONDS`):
/// with the default a brand-new token's forced refresh returns it; at 0 the refresh happens.
#[tokio::test]
async fn the_forced_refresh_bound_is_a_setting() {
    let stack = stack_with(&[OA1]).await;
    let key = TokenKey::Authorizer(OA1.into());
    let v = version(&stack, OA1).await;
    let calls = stack.calls_to("api_authorizer_token");
    let bounded = stack.deps();
    assert_eq!(bounded.tuning.min_refresh_interval_secs, 30);
    let t = bounded.tokens().token(&key, Some(v)).await.unwrap();
    assert_eq!(
        (t.version, stack.calls_to("api_authorizer_token")),
        (v, calls)
    );

    let mut unbounded = stack.deps();
    unbounded.tuning.min_refresh_interval_secs = 0;
    let t = unbounded.tokens().token(&key, Some(v)).await.unwrap();
    assert_eq!(t.version, v + 1);
    assert_eq!(stack.calls_to("api_authorizer_token"), calls + 1);
}

/// A refresh whose commit loses its lease (the lease outlived by a slow WeChat, another worker
/// took over) keeps the refresh token WeChat returned, under the version rule: only while no
/// newer refresh has committed, and only for an authorized authorizer.
#[tokio::test]
async fn a_lost_lease_keeps_the_refresh_token_wechat_returned() {
    let stack = stack_with(&[OA1, OA2]).await;
    let key = TokenKey::Authorizer(OA1.into());
    let v = version(&stack, OA1).await;
    let (s, _) = stack
        .control(
            Method::POST,
            "faults",
            json!({ "api": "api_authorizer_token", "count": 1, "latency_ms": 1500 }),
        )
        .await;
    assert_eq!(s, 200);
    let deps = stack.deps();
    let svc = deps.tokens();
    let thief = async {
        // Wait until the slow refresh holds its lease, then take it over as if it had expired.
        let until = loop {
            let t = stack.store.get_token(&key).await.unwrap().unwrap();
            if t.lease_owner.is_some() {
                break t.lease_until;
            }
            tokio::task::yield_now().await;
        };
        assert_eq!(
            stack
                .store
                .acquire_lease(&key, v, "thief", until + 1, until + 60)
                .await
                .unwrap(),
            wxopen::store::LeaseOutcome::Acquired
        );
    };
    let (refreshed, ()) = tokio::join!(svc.refresh(&key, v), thief);
    // The slow worker lost its write; the thief still holds the lease: "busy" or the old token.
    assert!(refreshed.is_ok() || matches!(refreshed, Err(wxopen::tokens::TokenError::Busy)));
    assert_eq!(svc.counters().lost_leases, 1);
    assert_eq!(
        svc.counters().refresh_tokens_kept,
        1,
        "the refresh token was kept"
    );
    assert_eq!(version(&stack, OA1).await, v, "no access token written");

    // The rule itself, on the store: a newer version or another state keeps nothing.
    let r = SecretString::from("refresh-x");
    assert!(
        !stack
            .store
            .keep_refresh_token(OA1, v + 1, &r)
            .await
            .unwrap()
    );
    assert!(stack.store.keep_refresh_token(OA1, v, &r).await.unwrap());
    assert_eq!(refresh_token(&stack, OA1).await, "refresh-x");
    let v2 = version(&stack, OA2).await;
    stack
        .store
        .mark_unauthorized(OA2, i64::MAX / 2, 1)
        .await
        .unwrap();
    assert!(!stack.store.keep_refresh_token(OA2, v2, &r).await.unwrap());
}
