//! The operator's command `wxopen` (functions/wxopen-cli), run as a process against the local
//! stack (the gateway in front of the real handlers, moto, the sandbox): `status`, `doctor` and
//! `authorizers`, tables and `--json`; `releases watch` drawn in a terminal (a pty from
//! `script`) against a stand-in for the releases routes, ending with the job's final counts.

use std::process::Output;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use serde_json::{Value, json};
use wxopen_tests::stack::Stack;

use crate::common::{MP1, OA1, put_release_job, stack_with};

/// The built `wxopen` binary: built once per test run (`cargo build -p wxopen-cli`, a no-op when
/// it is up to date; `make test` builds it first).
fn binary() -> &'static str {
    static BIN: OnceLock<String> = OnceLock::new();
    BIN.get_or_init(|| {
        let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
        let target = std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| format!("{root}/target"));
        let status = std::process::Command::new(env!("CARGO"))
            .args(["build", "-q", "--locked", "-p", "wxopen-cli"])
            .current_dir(root)
            .status()
            .expect("run cargo build -p wxopen-cli");
        assert!(status.success(), "cargo build -p wxopen-cli failed");
        format!("{target}/debug/wxopen")
    })
}

async fn wxopen(endpoint: &str, args: &[&str]) -> Output {
    let bin = binary().to_string();
    let mut all = vec!["--endpoint".to_string(), endpoint.to_string()];
    all.extend(args.iter().map(|a| a.to_string()));
    tokio::task::spawn_blocking(move || {
        std::process::Command::new(bin)
            .args(all)
            .env("COLUMNS", "160")
            .env_remove("WXOPEN_STACK")
            .output()
            .expect("run wxopen")
    })
    .await
    .expect("joined")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn json_of(o: &Output) -> Value {
    serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("--json prints JSON ({e}): {}", stdout(o)))
}

/// The table row of one check: its cells, trimmed (comfy-table's UTF-8 borders).
fn row(table: &str, check: &str) -> Vec<String> {
    table
        .lines()
        .find(|l| l.trim_start_matches('│').trim_start().starts_with(check))
        .unwrap_or_else(|| panic!("no row {check:?} in\n{table}"))
        .split(['│', '┆'])
        .map(|c| c.trim().to_string())
        .filter(|c| !c.is_empty())
        .collect()
}

fn verdicts(v: &Value) -> Vec<(String, String)> {
    v["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .map(|c| {
            (
                c["check"].as_str().unwrap().to_string(),
                c["verdict"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[tokio::test]
async fn status_doctor_and_authorizers_on_a_working_stack() {
    let stack = stack_with(&[OA1, MP1]).await;
    let base = stack.gateway.base_url.clone();

    let out = wxopen(&base, &["status"]).await;
    let text = stdout(&out);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.starts_with(&format!("wxopen status: {base}")),
        "{text}"
    );
    assert_eq!(row(&text, "ticket")[1], "ok", "{text}");
    assert!(row(&text, "ticket")[2].starts_with("received "), "{text}");
    assert_eq!(row(&text, "component token")[1], "ok", "{text}");
    assert_eq!(
        row(&text, "authorizers")[1..],
        ["ok", "2 authorized, 0 unauthorized, 0 needs_reauth"]
    );
    assert_eq!(row(&text, "tokens failing")[1..], ["ok", "none"]);
    assert_eq!(row(&text, "event outbox")[1..], ["ok", "empty"]);
    assert_eq!(row(&text, "release jobs")[1..], ["ok", "none running"]);
    assert!(text.contains("verdict: ok"), "{text}");
    assert!(!text.contains("what to do"), "{text}");

    let v = json_of(&wxopen(&base, &["status", "--json"]).await);
    assert_eq!(v["verdict"], "ok");
    assert_eq!(
        verdicts(&v),
        [
            ("ticket", "ok"),
            ("component token", "ok"),
            ("authorizers", "ok"),
            ("tokens failing", "ok"),
            ("event outbox", "ok"),
            ("release jobs", "ok"),
        ]
        .map(|(a, b)| (a.to_string(), b.to_string()))
    );
    assert_eq!(v["status"]["authorizers"]["authorized"], 2);
    assert!(
        v["status"]["component_token"]["expires_in_seconds"]
            .as_i64()
            .unwrap()
            > 600
    );

    let out = wxopen(&base, &["doctor"]).await;
    let text = stdout(&out);
    assert!(out.status.success(), "{text}");
    assert_eq!(row(&text, "secret")[1], "ok", "{text}");
    assert_eq!(row(&text, "ticket")[1], "ok", "{text}");
    assert_eq!(row(&text, "egress IP")[1], "ok", "{text}");
    assert_eq!(row(&text, "alarms")[1], "n/a", "{text}");
    assert!(text.contains(&format!("{base}/wechat/component")), "{text}");
    assert!(
        text.contains(&format!("{base}/wechat/messages/$APPID$")),
        "{text}"
    );
    assert!(
        text.contains("register them in the Open Platform console"),
        "{text}"
    );
    let v = json_of(&wxopen(&base, &["doctor", "--json"]).await);
    assert_eq!(v["verdict"], "ok");
    assert_eq!(
        v["callback_urls"]["authorization event URL"],
        format!("{base}/wechat/component")
    );

    let out = wxopen(&base, &["authorizers"]).await;
    let text = stdout(&out);
    assert!(out.status.success(), "{text}");
    assert_eq!(
        row(&text, OA1)[2..4],
        ["official_account", "authorized"],
        "{text}"
    );
    assert_eq!(
        row(&text, MP1)[2..4],
        ["mini_program", "authorized"],
        "{text}"
    );
    assert!(text.contains("2 authorizer(s)"), "{text}");
    let v = json_of(&wxopen(&base, &["authorizers", "--json"]).await);
    let appids: Vec<&str> = v["authorizers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["appid"].as_str().unwrap())
        .collect();
    assert_eq!(appids, [MP1, OA1]);
    let v = json_of(&wxopen(&base, &["authorizers", "--state", "needs_reauth", "--json"]).await);
    assert_eq!(v["authorizers"], json!([]));
    let bad = wxopen(&base, &["authorizers", "--state", "gone"]).await;
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--state must be"));

    let out = wxopen(&base, &["authorizer", OA1]).await;
    let text = stdout(&out);
    assert!(out.status.success(), "{text}");
    assert_eq!(row(&text, "token health")[1], "ok", "{text}");
    assert!(text.contains("permission sets"), "{text}");
}

/// `wxopen status` with release jobs: one moving, one stalled (nothing moved for 7 h, past the
/// engine's 6 h audit-poll window), then both finished.
#[tokio::test]
async fn status_shows_running_release_jobs_flags_a_stalled_one_and_clears_when_they_finish() {
    use wxopen::clock::{Clock, SystemClock};
    use wxopen::model::{JobState, TargetState, TargetUpdate};
    use wxopen::store::ReleaseStore;
    // Built before the clock is read: a build of a minute would age the jobs past "7h 00m".
    tokio::task::spawn_blocking(binary).await.unwrap();
    let stack = stack_with(&[MP1]).await;
    let base = stack.gateway.base_url.clone();
    let now = SystemClock.now();
    put_release_job(&stack.store, "rel-moving", 3, now - 120).await;
    put_release_job(&stack.store, "rel-stuck", 2, now - 7 * 3600).await;

    let out = wxopen(&base, &["status"]).await;
    let text = stdout(&out);
    assert!(out.status.success(), "attention is not a failure: {text}");
    let cells = row(&text, "release jobs");
    assert_eq!(cells[1], "attention", "{text}");
    assert_eq!(
        cells[2], "2 running; rel-stuck: 2 open, no target moved for 7h 00m",
        "{text}"
    );
    assert!(text.contains("verdict: attention"), "{text}");
    assert!(
        text.contains("- release jobs: no progress for over 6h 00m"),
        "{text}"
    );
    let v = json_of(&wxopen(&base, &["status", "--json"]).await);
    assert_eq!(v["verdict"], "attention");
    assert!(verdicts(&v).contains(&("release jobs".into(), "attention".into())));
    let r = &v["status"]["releases"];
    assert_eq!(
        (&r["running"], &r["stalled"]),
        (&json!(2), &json!(1)),
        "{r}"
    );
    assert_eq!(r["jobs"][0]["id"], "rel-moving", "newest first: {r}");

    // The stuck job moves again: both running, all ok.
    assert!(
        stack
            .store
            .transition(
                "rel-stuck",
                0,
                TargetState::Queued,
                TargetState::Committed,
                &TargetUpdate::default(),
                SystemClock.now(),
            )
            .await
            .unwrap()
    );
    let text = stdout(&wxopen(&base, &["status"]).await);
    assert_eq!(row(&text, "release jobs")[1], "ok", "{text}");
    assert!(
        row(&text, "release jobs")[2]
            .starts_with("2 running: rel-moving (3 of 3 open), rel-stuck (2 of 2 open)"),
        "{text}"
    );

    // Both finish: nothing running.
    for id in ["rel-moving", "rel-stuck"] {
        assert!(
            stack
                .store
                .set_job_state(
                    id,
                    &[JobState::Running],
                    JobState::Done,
                    None,
                    SystemClock.now()
                )
                .await
                .unwrap()
        );
    }
    let out = wxopen(&base, &["status"]).await;
    let text = stdout(&out);
    assert_eq!(
        row(&text, "release jobs")[1..],
        ["ok", "none running"],
        "{text}"
    );
    assert!(text.contains("verdict: ok"), "{text}");
    let v = json_of(&wxopen(&base, &["status", "--json"]).await);
    assert_eq!(v["verdict"], "ok");
    assert_eq!(v["status"]["releases"]["running"], 0);
    assert_eq!(v["status"]["releases"]["jobs"], json!([]));
}

#[tokio::test]
async fn status_and_doctor_say_broken_and_what_to_do_before_the_first_ticket() {
    let stack = Stack::start().await;
    let base = stack.gateway.base_url.clone();
    let out = wxopen(&base, &["status"]).await;
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert_eq!(
        row(&text, "ticket")[1..],
        ["broken", "no component_verify_ticket received yet"]
    );
    assert_eq!(row(&text, "component token")[1], "broken");
    assert!(text.contains("verdict: broken"), "{text}");
    assert!(
        text.contains("- ticket: register the authorization event URL"),
        "{text}"
    );
    let v = json_of(&wxopen(&base, &["doctor", "--json"]).await);
    assert_eq!(v["verdict"], "broken");
    assert!(verdicts(&v).contains(&("secret".into(), "unknown".into())));
    assert!(verdicts(&v).contains(&("ticket".into(), "broken".into())));
}

#[tokio::test]
async fn a_stack_that_is_not_there_gets_an_error_that_says_what_to_do() {
    let out = wxopen("http://127.0.0.1:9", &["status"]).await;
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("could not be reached"), "{err}");
    assert!(
        err.contains("what to do: for --local, start the local stack with `make dev`"),
        "{err}"
    );
}

/// A stand-in for `GET /releases/{id}` (the releases routes are another helper's, not on this
/// branch; its answer's shape is theirs): each poll moves the targets further, until all three
/// are released or failed.
async fn releases_stub() -> String {
    use axum::extract::State;
    use axum::routing::get;
    let polls = Arc::new(AtomicUsize::new(0));
    let app = axum::Router::new()
        .route(
            "/releases/{id}",
            get(|State(polls): State<Arc<AtomicUsize>>| async move {
                let n = polls.fetch_add(1, Ordering::SeqCst);
                let targets = match n {
                    0 => ["queued", "queued", "queued"],
                    1 => ["committed", "queued", "queued"],
                    2 => ["submitted", "committed", "queued"],
                    3 => ["approved", "submitted", "committed"],
                    4 => ["released", "approved", "failed"],
                    _ => ["released", "released", "failed"],
                };
                // The job as `GET /releases/{id}` answers it: `state`, `total`, and `counts`
                // with every target state (zeros included).
                let mut counts = serde_json::Map::new();
                for s in wxopen::model::TargetState::ALL.map(|s| s.as_str()) {
                    counts.insert(s.into(), json!(targets.iter().filter(|t| **t == s).count()));
                }
                axum::Json(json!({
                    "id": "rel-1",
                    "state": if n >= 5 { "done" } else { "running" },
                    "total": 3,
                    "counts": counts,
                }))
            }),
        )
        .with_state(polls);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}")
}

/// Runs a shell command in a pseudo-terminal (`script`, util-linux), so bars are drawn as for
/// an operator; everything it wrote is in `stdout`.
async fn in_terminal(command: String) -> Output {
    tokio::task::spawn_blocking(move || {
        std::process::Command::new("script")
            .args(["-qefc", &command, "/dev/null"])
            .env("COLUMNS", "100")
            .env("TERM", "xterm")
            .output()
            .expect("run script (util-linux)")
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn releases_watch_draws_a_bar_per_state_in_a_terminal_and_ends_with_the_counts() {
    let base = releases_stub().await;
    let command = format!(
        "{} --endpoint {base} releases watch rel-1 --interval 0.1",
        binary()
    );
    let out = in_terminal(command).await;
    let screen = String::from_utf8_lossy(&out.stdout);
    // Failed targets make the exit code 1.
    assert_eq!(out.status.code(), Some(1), "{screen}");
    for state in [
        "queued",
        "committed",
        "submitted",
        "approved",
        "released",
        "failed",
    ] {
        assert!(
            screen.contains(&format!("{state:>10} [")),
            "a bar for {state}: {screen}"
        );
    }
    assert!(screen.contains("] 2/3"), "released 2 of 3 drawn: {screen}");
    assert!(
        screen
            .trim_end()
            .ends_with("release rel-1 finished: released 2, failed 1"),
        "{screen}"
    );
}

/// `wxopen releases watch` against the local stack's real `releases` routes: a job over three
/// mini programs (one rejected by the audit), the release driver running it; the bars are drawn
/// and the final counts printed are the job's.
#[tokio::test]
async fn releases_watch_follows_a_real_job_on_the_local_stack_to_its_final_counts() {
    let local = wxopen_tests::story::start(0)
        .await
        .expect("the local stack");
    let mut state = json!({});
    wxopen_tests::story::step(&local, 0, &mut state)
        .await
        .expect("the ticket");
    let (id, _rejected) = wxopen_tests::story::fleet_job(&local, 3)
        .await
        .expect("the job");
    let command = format!(
        "{} --endpoint {} releases watch {id} --interval 0.3",
        binary(),
        local.gateway.base_url
    );
    let out = in_terminal(command).await;
    let screen = String::from_utf8_lossy(&out.stdout);
    // The watch ends when every target is final; the job's own `done` follows from the release
    // driver's next step (on a loaded machine a moment later): read it until it says so.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let job = loop {
        let job: Value = local
            .http
            .get(format!("{}/releases/{id}", local.gateway.base_url))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if job["state"] == "done" || std::time::Instant::now() > deadline {
            break job;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    };
    assert_eq!(job["state"], "done", "{job}");
    assert_eq!(
        (
            job["counts"]["released"].as_u64(),
            job["counts"]["rejected"].as_u64()
        ),
        (Some(2), Some(1)),
        "{job}"
    );
    for state in ["released", "rejected"] {
        assert!(
            screen.contains(&format!("{state:>10} [")),
            "a bar for {state}: {screen}"
        );
    }
    assert!(
        screen
            .trim_end()
            .ends_with(&format!("release {id} finished: released 2, rejected 1")),
        "{screen}"
    );
    local.gateway.stop();
    local.sandbox.stop();
}
