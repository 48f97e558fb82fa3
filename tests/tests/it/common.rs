//! What the test modules share: the sandbox's default accounts, a ready stack, and the local
//! stack (`wxopen-local serve`) as a child process.

use wxopen_tests::stack::Stack;

/// A verified service account of "Acme Ltd" (grants 1-4, 6, 7, 11, 15, 24 by default).
pub const OA1: &str = "wxoa00000000000001";
/// Another verified service account of the same subject as `OA1`.
pub const OA2: &str = "wxoa00000000000002";
/// A verified service account of another subject ("Other Co").
pub const OA3: &str = "wxoa00000000000003";
/// An unverified subscription account of "Acme Ltd".
pub const OA4: &str = "wxoa00000000000004";
/// A mini program of "Acme Ltd" (grants 17, 18, 19, 25, 30 by default).
pub const MP1: &str = "wxmp00000000000001";

/// A stack with a ticket, a component token and the given authorizers.
pub async fn stack_with(authorizers: &[&str]) -> Stack {
    let stack = Stack::start().await;
    stack.push_ticket().await;
    for a in authorizers {
        stack.authorize(a, "push_only").await;
    }
    stack
}

/// Marks the authorizer's token as refreshed `secs` ago (forced refreshes of a younger token
/// are refused), for tests whose WeChat rejects a token right after it was issued.
pub async fn age_token(stack: &Stack, appid: &str, secs: i64) {
    age_item(stack, &format!("AUTHORIZER#{appid}"), "AUTHORIZER", secs).await;
}

/// [`age_token`] for the component token.
pub async fn age_component_token(stack: &Stack, secs: i64) {
    age_item(stack, "COMPONENT", "TOKEN", secs).await;
}

async fn age_item(stack: &Stack, pk: &str, sk: &str, secs: i64) {
    use aws_sdk_dynamodb::types::AttributeValue;
    use wxopen::clock::{Clock, SystemClock};
    stack
        .store
        .client()
        .update_item()
        .table_name(stack.store.table())
        .key("pk", AttributeValue::S(pk.into()))
        .key("sk", AttributeValue::S(sk.into()))
        .update_expression("SET refreshed_at = :t")
        .expression_attribute_values(
            ":t",
            AttributeValue::N((SystemClock.now() - secs).to_string()),
        )
        .send()
        .await
        .expect("age the token");
}

/// A `wxopen-local serve 0` child (the local stack as `make dev` runs it); killed, by its own
/// handle, and reaped when dropped.
pub struct Served(std::process::Child);

impl Served {
    pub fn pid(&self) -> u32 {
        self.0.id()
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `wxopen-local serve 0` with the aim variables (and `PUBLIC_BASE_URL`) cleared, then `vars`
/// set.
pub fn local_stack_command(vars: &[(&str, &str)]) -> std::process::Command {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_wxopen-local"));
    cmd.args(["serve", "0"]);
    for k in wxopen_tests::stack::AIM_VARIABLES
        .iter()
        .chain(&["PUBLIC_BASE_URL"])
    {
        cmd.env_remove(k);
    }
    cmd.envs(vars.iter().copied());
    cmd
}

/// Starts `cmd` (a [`local_stack_command`]; its stderr as the caller set it) with stdout piped
/// and read to the end on a thread of its own, even once nobody listens: a closed pipe would
/// make the child's later prints fail (EPIPE) and kill it mid-test. Answers the child, every
/// stdout line up to the gateway's URL, and that URL (waited for up to 120 s).
pub async fn serve_local(mut cmd: std::process::Command) -> (Served, Vec<String>, String) {
    use std::io::{BufRead, BufReader};
    let mut child = cmd
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("wxopen-local starts");
    let stdout = child.stdout.take().expect("stdout piped");
    let served = Served(child);
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let _ = tx.send(line);
        }
    });
    let mut lines = Vec::new();
    let url = tokio::time::timeout(std::time::Duration::from_secs(120), async {
        while let Some(line) = rx.recv().await {
            lines.push(line.clone());
            if let Some(rest) = line.trim().strip_prefix("authorization event URL") {
                return rest
                    .trim()
                    .trim_end_matches("/wechat/component")
                    .to_string();
            }
        }
        panic!("wxopen-local exited before printing its URLs: {lines:#?}");
    })
    .await
    .expect("wxopen-local printed its URLs in time");
    (served, lines, url)
}

/// A fleet-release job `id` written straight to the store (no WeChat, no queue): `n` mini
/// programs, all `queued`, created and last moved at `at`.
pub async fn put_release_job(
    store: &wxopen::store::DynamoStore,
    id: &str,
    n: u32,
    at: i64,
) -> wxopen::model::ReleaseJob {
    use wxopen::model::{JobState, ReleaseJob, ReleaseTarget, TargetSpec, TargetState};
    let job = ReleaseJob {
        id: id.into(),
        template_id: 1,
        user_version: "1.0.0".into(),
        user_desc: "status".into(),
        ext_json: serde_json::Map::new(),
        audit: serde_json::Map::new(),
        targets: TargetSpec::All { customer_ref: None },
        auto_release: true,
        concurrency: 5,
        created_at: at,
        state: JobState::Running,
        total: n,
        dispatched: 0,
        counts: [(TargetState::Queued, i64::from(n))].into(),
        quota_wait: None,
        undo_audits: false,
        updated_at: at,
    };
    let targets: Vec<ReleaseTarget> = (0..n).map(|seq| queued_target(id, seq, at)).collect();
    wxopen::store::ReleaseStore::create_job(store, &job, &targets)
        .await
        .expect("job written");
    job
}

/// Target `seq` of job `job_id`: `wxmp…seq`, `queued` since `at`.
pub fn queued_target(job_id: &str, seq: u32, at: i64) -> wxopen::model::ReleaseTarget {
    wxopen::model::ReleaseTarget::queued(job_id, seq, format!("wxmp{seq:014}"), at)
}
