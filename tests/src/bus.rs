//! The local event bus: a custom EventBridge bus on moto with a rule sending every
//! `source: wxopen` event to an SQS queue, so the events the functions publish can be read (the
//! way a provider would wire a consumer). `make dev` prints how to read the queue.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use wxopen::events::SOURCE;

/// A bus with its rule and queue.
#[derive(Debug, Clone)]
pub struct LocalBus {
    pub events: aws_sdk_eventbridge::Client,
    pub sqs: aws_sdk_sqs::Client,
    pub bus_name: String,
    pub rule_name: String,
    pub queue_url: String,
    pub queue_arn: String,
}

/// The AWS environment a reader of the local queue needs (moto accepts any credentials).
pub const LOCAL_AWS_ENV: &str =
    "AWS_DEFAULT_REGION=us-east-1 AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test";

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Creates the SQS queue `name` (its visibility timeout set when given): its URL and ARN.
pub(crate) async fn create_queue(
    sqs: &aws_sdk_sqs::Client,
    name: &str,
    visibility_secs: Option<i32>,
) -> Result<(String, String), BoxError> {
    use aws_sdk_sqs::types::QueueAttributeName;
    let mut create = sqs.create_queue().queue_name(name);
    if let Some(secs) = visibility_secs {
        create = create.attributes(QueueAttributeName::VisibilityTimeout, secs.to_string());
    }
    let url = create.send().await?.queue_url.ok_or("no queue url")?;
    let arn = sqs
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await?
        .attributes
        .and_then(|a| a.get(&QueueAttributeName::QueueArn).cloned())
        .ok_or("no queue arn")?;
    Ok((url, arn))
}

/// The rule `rule` on the bus `bus_name`, sending what matches `pattern` to the target
/// `(id, arn)`.
pub(crate) async fn route(
    events: &aws_sdk_eventbridge::Client,
    bus_name: &str,
    rule: &str,
    pattern: &Value,
    (target_id, arn): (&str, &str),
) -> Result<(), BoxError> {
    events
        .put_rule()
        .name(rule)
        .event_bus_name(bus_name)
        .event_pattern(pattern.to_string())
        .send()
        .await?;
    events
        .put_targets()
        .rule(rule)
        .event_bus_name(bus_name)
        .targets(
            aws_sdk_eventbridge::types::Target::builder()
                .id(target_id)
                .arn(arn)
                .build()?,
        )
        .send()
        .await?;
    Ok(())
}

impl LocalBus {
    /// Creates the bus `bus_name`, a queue `queue_name` and the rule between them.
    pub async fn create(
        config: &aws_config::SdkConfig,
        bus_name: &str,
        queue_name: &str,
    ) -> Result<Self, BoxError> {
        let bus = Self::queue_for(config, bus_name, queue_name).await?;
        bus.bring_up().await?;
        Ok(bus)
    }

    /// A queue `queue_name` with a rule on an existing bus (one a CloudFormation stack created).
    pub async fn attach(
        config: &aws_config::SdkConfig,
        bus_name: &str,
        queue_name: &str,
    ) -> Result<Self, BoxError> {
        let bus = Self::queue_for(config, bus_name, queue_name).await?;
        bus.wire().await?;
        Ok(bus)
    }

    async fn queue_for(
        config: &aws_config::SdkConfig,
        bus_name: &str,
        queue_name: &str,
    ) -> Result<Self, BoxError> {
        let events = aws_sdk_eventbridge::Client::new(config);
        let sqs = aws_sdk_sqs::Client::new(config);
        let (queue_url, queue_arn) = create_queue(&sqs, queue_name, None).await?;
        let bus = Self {
            events,
            sqs,
            bus_name: bus_name.to_string(),
            rule_name: format!("{bus_name}-to-queue"),
            queue_url,
            queue_arn,
        };
        Ok(bus)
    }

    /// Creates the bus, its rule and its target (again, after [`LocalBus::take_down`]).
    pub async fn bring_up(&self) -> Result<(), BoxError> {
        self.events
            .create_event_bus()
            .name(&self.bus_name)
            .send()
            .await?;
        self.wire().await
    }

    /// The rule from the bus to the queue, and its target.
    async fn wire(&self) -> Result<(), BoxError> {
        route(
            &self.events,
            &self.bus_name,
            &self.rule_name,
            &json!({"source": [SOURCE]}),
            ("queue", &self.queue_arn),
        )
        .await
    }

    /// Deletes the bus (and its rule): every `PutEvents` to it fails until
    /// [`LocalBus::bring_up`]. The fault the outbox is for, on the wire.
    pub async fn take_down(&self) -> Result<(), BoxError> {
        self.events
            .remove_targets()
            .rule(&self.rule_name)
            .event_bus_name(&self.bus_name)
            .ids("queue")
            .send()
            .await?;
        self.events
            .delete_rule()
            .name(&self.rule_name)
            .event_bus_name(&self.bus_name)
            .send()
            .await?;
        self.events
            .delete_event_bus()
            .name(&self.bus_name)
            .send()
            .await?;
        Ok(())
    }

    /// One receive (long poll of `wait` seconds); the messages are deleted. The EventBridge
    /// envelopes (`detail-type`, `source`, `detail`, ...).
    pub async fn receive(&self, wait: i32) -> Result<Vec<Value>, BoxError> {
        let got = self
            .sqs
            .receive_message()
            .queue_url(&self.queue_url)
            .max_number_of_messages(10)
            .wait_time_seconds(wait)
            .send()
            .await?;
        let mut out = Vec::new();
        for m in got.messages.unwrap_or_default() {
            out.push(serde_json::from_str(m.body().unwrap_or_default())?);
            self.sqs
                .delete_message()
                .queue_url(&self.queue_url)
                .receipt_handle(m.receipt_handle().unwrap_or_default())
                .send()
                .await?;
        }
        Ok(out)
    }

    /// Reads until `n` events arrived (long polls, no sleeps; at most `within`), then once more
    /// without waiting to catch anything extra.
    pub async fn drain(&self, n: usize, within: Duration) -> Result<Vec<Value>, BoxError> {
        let mut out = Vec::new();
        let deadline = Instant::now() + within;
        while out.len() < n && Instant::now() < deadline {
            out.extend(self.receive(1).await?);
        }
        out.extend(self.receive(0).await?);
        Ok(out)
    }

    /// Everything on the queue now (moto delivers during `PutEvents`, so an answered push's
    /// event is already there): receives without waiting until the queue is empty.
    pub async fn drain_all(&self) -> Result<Vec<Value>, BoxError> {
        let mut out = Vec::new();
        loop {
            let got = self.receive(0).await?;
            if got.is_empty() {
                return Ok(out);
            }
            out.extend(got);
        }
    }

    /// Reads until an event matching `pred` arrived (at most `within`); returns it with
    /// everything read before it.
    pub async fn wait_for(
        &self,
        pred: impl Fn(&Value) -> bool,
        within: Duration,
    ) -> Result<(Option<Value>, Vec<Value>), BoxError> {
        let mut seen = Vec::new();
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            for e in self.receive(1).await? {
                if pred(&e) {
                    return Ok((Some(e), seen));
                }
                seen.push(e);
            }
        }
        Ok((None, seen))
    }

    /// The command that reads the queue with the AWS CLI (for `make dev`).
    pub fn read_command(&self, endpoint: &str) -> String {
        format!(
            "{} aws --endpoint-url {endpoint} sqs receive-message --queue-url {} --max-number-of-messages 10 --wait-time-seconds 5",
            LOCAL_AWS_ENV, self.queue_url
        )
    }
}
