//! SQS queues as floe's [`Queue`], plus what operators need: batch sends, depths, the dead-letter
//! queue a queue redrives to, and moving dead letters back (`floe redrive`).

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_sqs::types::{
    MessageSystemAttributeName, QueueAttributeName, SendMessageBatchRequestEntry,
};
use floe_core::ports::{Delivery, Queue};
use floe_core::{Error, Result};

use crate::sdk_error;

/// The most messages SQS takes or gives in one call.
pub const SQS_BATCH: usize = 10;

/// One SQS queue, by URL.
#[derive(Debug, Clone)]
pub struct SqsQueue {
    client: aws_sdk_sqs::Client,
    url: String,
}

impl SqsQueue {
    /// The queue at `url`.
    pub fn new(client: aws_sdk_sqs::Client, url: &str) -> Self {
        SqsQueue {
            client,
            url: url.to_owned(),
        }
    }

    /// The queue named `name` (its URL looked up).
    pub async fn named(client: aws_sdk_sqs::Client, name: &str) -> Result<Self> {
        let out = client
            .get_queue_url()
            .queue_name(name)
            .send()
            .await
            .map_err(|e| sdk_error::map(&format!("SQS GetQueueUrl {name}"), e))?;
        let url = out
            .queue_url()
            .ok_or_else(|| Error::NotFound(format!("SQS queue {name} has no URL")))?;
        Ok(SqsQueue::new(client, url))
    }

    /// The queue's URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Sends many messages, ten per call; fails if any entry was refused.
    pub async fn send_batch(&self, bodies: &[String]) -> Result<Vec<String>> {
        let mut ids = Vec::with_capacity(bodies.len());
        for chunk in bodies.chunks(SQS_BATCH) {
            let entries = chunk
                .iter()
                .enumerate()
                .map(|(i, body)| {
                    SendMessageBatchRequestEntry::builder()
                        .id(i.to_string())
                        .message_body(body)
                        .build()
                        .map_err(|e| Error::Internal(format!("building an SQS entry: {e}")))
                })
                .collect::<Result<Vec<_>>>()?;
            let out = self
                .client
                .send_message_batch()
                .queue_url(&self.url)
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(|e| sdk_error::map(&format!("SQS SendMessageBatch {}", self.url), e))?;
            if let Some(f) = out.failed().first() {
                let detail = format!(
                    "SQS SendMessageBatch {}: {} of {} refused, first: {} {}",
                    self.url,
                    out.failed().len(),
                    chunk.len(),
                    f.code(),
                    f.message().unwrap_or_default()
                );
                return Err(if f.sender_fault() {
                    Error::Internal(detail)
                } else {
                    Error::Transient(detail)
                });
            }
            let mut ok: Vec<_> = out.successful().iter().collect();
            ok.sort_by_key(|e| e.id().parse::<usize>().unwrap_or(usize::MAX));
            ids.extend(ok.into_iter().map(|e| e.message_id().to_owned()));
        }
        Ok(ids)
    }

    async fn attributes(
        &self,
        names: &[QueueAttributeName],
    ) -> Result<std::collections::HashMap<QueueAttributeName, String>> {
        let out = self
            .client
            .get_queue_attributes()
            .queue_url(&self.url)
            .set_attribute_names(Some(names.to_vec()))
            .send()
            .await
            .map_err(|e| sdk_error::map(&format!("SQS GetQueueAttributes {}", self.url), e))?;
        Ok(out.attributes().cloned().unwrap_or_default())
    }

    /// Messages waiting (visible) and in flight (received, not yet deleted), approximately.
    pub async fn depth(&self) -> Result<(u64, u64)> {
        let a = self
            .attributes(&[
                QueueAttributeName::ApproximateNumberOfMessages,
                QueueAttributeName::ApproximateNumberOfMessagesNotVisible,
            ])
            .await?;
        let n = |k: &QueueAttributeName| a.get(k).and_then(|v| v.parse().ok()).unwrap_or(0);
        Ok((
            n(&QueueAttributeName::ApproximateNumberOfMessages),
            n(&QueueAttributeName::ApproximateNumberOfMessagesNotVisible),
        ))
    }

    /// The dead-letter queue this queue redrives to (from its RedrivePolicy), by ARN.
    pub async fn dead_letter_arn(&self) -> Result<Option<String>> {
        let a = self
            .attributes(&[QueueAttributeName::RedrivePolicy])
            .await?;
        let Some(policy) = a.get(&QueueAttributeName::RedrivePolicy) else {
            return Ok(None);
        };
        let v: serde_json::Value = serde_json::from_str(policy).map_err(|e| {
            Error::Internal(format!("{}: unreadable RedrivePolicy ({e})", self.url))
        })?;
        Ok(v.get("deadLetterTargetArn")
            .and_then(|a| a.as_str())
            .map(str::to_owned))
    }

    /// The queue's ARN.
    pub async fn arn(&self) -> Result<String> {
        let a = self.attributes(&[QueueAttributeName::QueueArn]).await?;
        a.get(&QueueAttributeName::QueueArn)
            .cloned()
            .ok_or_else(|| Error::NotFound(format!("{} has no QueueArn", self.url)))
    }

    /// Moves every message of this (dead-letter) queue to `to`, in batches: each is sent before
    /// it is deleted here, so a crash in between duplicates a message, never loses one (floe's
    /// stages are idempotent per batch). Returns how many moved.
    ///
    /// Receive + send + delete rather than SQS's StartMessageMoveTask: it works on every SQS
    /// implementation (local stand-ins lack the move task) and reports what it moved.
    pub async fn move_all_to(
        &self,
        to: &SqsQueue,
        mut progress: impl FnMut(usize),
    ) -> Result<usize> {
        let mut moved = 0;
        loop {
            let batch = self.receive(SQS_BATCH, Duration::from_secs(60)).await?;
            if batch.is_empty() {
                // A short poll can come back empty while messages wait on other servers: stop
                // only when the queue says nothing is waiting.
                if self.depth().await?.0 == 0 {
                    return Ok(moved);
                }
                continue;
            }
            let bodies: Vec<String> = batch.iter().map(|d| d.body.clone()).collect();
            to.send_batch(&bodies).await?;
            for d in &batch {
                self.delete(&d.receipt).await?;
            }
            moved += batch.len();
            progress(moved);
        }
    }
}

#[async_trait]
impl Queue for SqsQueue {
    async fn send(&self, body: &str) -> Result<String> {
        let out = self
            .client
            .send_message()
            .queue_url(&self.url)
            .message_body(body)
            .send()
            .await
            .map_err(|e| sdk_error::map(&format!("SQS SendMessage {}", self.url), e))?;
        Ok(out.message_id().unwrap_or_default().to_owned())
    }

    async fn receive(&self, max: usize, visibility: Duration) -> Result<Vec<Delivery>> {
        let out = self
            .client
            .receive_message()
            .queue_url(&self.url)
            .max_number_of_messages(max.clamp(1, SQS_BATCH) as i32)
            .visibility_timeout(visibility.as_secs().max(1) as i32)
            .wait_time_seconds(0)
            .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
            .send()
            .await
            .map_err(|e| sdk_error::map(&format!("SQS ReceiveMessage {}", self.url), e))?;
        Ok(out
            .messages()
            .iter()
            .map(|m| Delivery {
                message_id: m.message_id().unwrap_or_default().to_owned(),
                receipt: m.receipt_handle().unwrap_or_default().to_owned(),
                body: m.body().unwrap_or_default().to_owned(),
                receive_count: m
                    .attributes()
                    .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(1),
            })
            .collect())
    }

    async fn delete(&self, receipt: &str) -> Result<()> {
        self.client
            .delete_message()
            .queue_url(&self.url)
            .receipt_handle(receipt)
            .send()
            .await
            .map_err(|e| sdk_error::map(&format!("SQS DeleteMessage {}", self.url), e))?;
        Ok(())
    }

    async fn retry_later(&self, receipt: &str, delay: Duration) -> Result<()> {
        self.client
            .change_message_visibility()
            .queue_url(&self.url)
            .receipt_handle(receipt)
            .visibility_timeout(delay.as_secs() as i32)
            .send()
            .await
            .map_err(|e| sdk_error::map(&format!("SQS ChangeMessageVisibility {}", self.url), e))?;
        Ok(())
    }
}
