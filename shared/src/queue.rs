//! The work queue port (SQS): messages sent with an optional delay, in batches of 10. The
//! fleet-release engine's steps travel on it; Lambda's SQS event source (or the local driver in
//! `tests/`) receives them.

use std::future::Future;

#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    /// Shows the AWS error code only, never the message bodies.
    #[error("SQS request failed ({0})")]
    Sqs(String),
    #[error("{0} of the messages were not accepted")]
    Refused(usize),
}

/// SQS allows at most 15 minutes of delay.
pub const MAX_DELAY_SECS: u32 = 900;
/// SendMessageBatch takes at most 10 entries.
pub const MAX_BATCH: usize = 10;

/// Sends messages to the work queue.
pub trait WorkQueue: Send + Sync {
    fn send(
        &self,
        bodies: &[String],
        delay_secs: u32,
    ) -> impl Future<Output = Result<(), QueueError>> + Send;
}

/// The SQS adapter.
#[derive(Debug, Clone)]
pub struct SqsQueue {
    client: aws_sdk_sqs::Client,
    url: String,
}

impl SqsQueue {
    pub fn new(client: aws_sdk_sqs::Client, url: impl Into<String>) -> Self {
        Self {
            client,
            url: url.into(),
        }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn client(&self) -> &aws_sdk_sqs::Client {
        &self.client
    }
}

fn sqs_error<E: aws_sdk_sqs::error::ProvideErrorMetadata>(e: &E) -> QueueError {
    QueueError::Sqs(e.code().unwrap_or("no_code").to_string())
}

impl WorkQueue for SqsQueue {
    async fn send(&self, bodies: &[String], delay_secs: u32) -> Result<(), QueueError> {
        let delay = i32::try_from(delay_secs.min(MAX_DELAY_SECS)).unwrap_or(0);
        for chunk in bodies.chunks(MAX_BATCH) {
            let mut req = self.client.send_message_batch().queue_url(&self.url);
            for (i, body) in chunk.iter().enumerate() {
                let entry = aws_sdk_sqs::types::SendMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .message_body(body)
                    .delay_seconds(delay)
                    .build()
                    .map_err(|_| QueueError::Sqs("build".into()))?;
                req = req.entries(entry);
            }
            let out = req.send().await.map_err(|e| sqs_error(&e))?;
            if !out.failed().is_empty() {
                return Err(QueueError::Refused(out.failed().len()));
            }
        }
        Ok(())
    }
}
