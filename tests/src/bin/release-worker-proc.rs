//! The release worker as its own process, for the kill test: polls the release queue like
//! Lambda's SQS event source and, with `WXOPEN_RELEASE_ABORT_AT=<step>:<boundary>` (e.g.
//! `commit:after_call`), calls `std::process::abort()` the first time a step reaches that
//! boundary. Test-only: the hook exists in this binary, never in a deployed function.
//!
//! Environment: the moto variables, `TABLE_NAME`, `RELEASE_QUEUE_URL`, `WECHAT_API_BASE` (the
//! sandbox), `EVENT_BUS_NAME`, optional `RELEASE_STEP_LEASE_SECONDS`.

use std::time::Duration;

use wxopen::model::Step;
use wxopen::releases::{Boundary, StepHook};
use wxopen::store::DynamoStore;
use wxopen::wechat::WeChatClient;
use wxopen_tests::releases::{ReleaseQueue, poll_once};

struct AbortAt(Option<(Step, Boundary)>);

impl StepHook for AbortAt {
    fn at(&self, step: Step, boundary: Boundary) {
        if self.0 == Some((step, boundary)) {
            eprintln!(
                "release-worker-proc: aborting at {}:{}",
                step.as_str(),
                boundary.as_str()
            );
            std::process::abort();
        }
    }
}

fn parse_abort(v: &str) -> Option<(Step, Boundary)> {
    let (s, b) = v.split_once(':')?;
    let step = [Step::Commit, Step::Submit, Step::Release, Step::Undo]
        .into_iter()
        .find(|x| x.as_str() == s)?;
    let boundary = [
        Boundary::BeforeCall,
        Boundary::AfterCall,
        Boundary::AfterRecord,
    ]
    .into_iter()
    .find(|x| x.as_str() == b)?;
    Some((step, boundary))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let var = |k: &str| std::env::var(k).map_err(|_| format!("{k} is not set"));
    let aws = wxopen_tests::aws_config().await;
    let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&aws), var("TABLE_NAME")?);
    let wechat = WeChatClient::new(&var("WECHAT_API_BASE")?, Duration::from_secs(2))?;
    let abort = std::env::var("WXOPEN_RELEASE_ABORT_AT")
        .ok()
        .map(|v| parse_abort(&v).ok_or(format!("bad WXOPEN_RELEASE_ABORT_AT {v}")))
        .transpose()?;
    let lease: i64 = std::env::var("RELEASE_STEP_LEASE_SECONDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    let sqs = aws_sdk_sqs::Client::new(&aws);
    let queue = ReleaseQueue {
        sqs: sqs.clone(),
        url: var("RELEASE_QUEUE_URL")?,
        arn: String::new(),
        visibility_secs: 2,
    };
    let app = release_worker::App {
        deps: wxopen::app::Deps {
            store,
            credentials: wxopen_tests::stack::test_credentials(),
            clock: wxopen::clock::SystemClock,
            wechat,
            tuning: Default::default(),
        },
        queue: queue.queue(),
        publisher: wxopen::events::EventBridgePublisher::new(
            aws_sdk_eventbridge::Client::new(&aws),
            var("EVENT_BUS_NAME")?,
        ),
        settings: wxopen::releases::ReleaseSettings {
            step_lease_secs: lease,
            submit_delay_secs: 0,
            backoff_secs: 1,
            ..wxopen::releases::ReleaseSettings::default()
        },
        hook: AbortAt(abort),
    };
    loop {
        poll_once(&queue, &app, 1, None).await?;
    }
}
