//! What Lambda's SQS event source mapping does, for running a service outside Lambda (the
//! integration tests, a drill on a laptop against a stand-in): receive a batch, hand it to the
//! service as an `SqsEvent`, delete the records it did not report as failed.

use std::collections::HashSet;
use std::time::Duration;

use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use floe_core::Result;
use floe_core::ports::Queue;

use crate::service::Service;
use floe_aws::sqs::{SQS_BATCH, SqsQueue};

/// What one poll did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Polled {
    /// Records handed to the service.
    pub received: usize,
    /// Records it reported as failed (left for SQS to deliver again).
    pub failed: Vec<String>,
}

/// Receives one batch from `queue` (hidden for `visibility`) and runs `service` on it.
pub async fn poll_once(
    queue: &SqsQueue,
    service: &Service,
    visibility: Duration,
) -> Result<Polled> {
    let deliveries = queue.receive(SQS_BATCH, visibility).await?;
    if deliveries.is_empty() {
        return Ok(Polled::default());
    }
    let mut event = SqsEvent::default();
    for d in &deliveries {
        let mut m = SqsMessage::default();
        m.message_id = Some(d.message_id.clone());
        m.receipt_handle = Some(d.receipt.clone());
        m.body = Some(d.body.clone());
        m.attributes.insert(
            "ApproximateReceiveCount".into(),
            d.receive_count.to_string(),
        );
        m.event_source = Some("aws:sqs".into());
        event.records.push(m);
    }
    let response = service.handle(event).await;
    let failed: HashSet<String> = response
        .batch_item_failures
        .into_iter()
        .map(|f| f.item_identifier)
        .collect();
    for d in &deliveries {
        if !failed.contains(&d.message_id) {
            queue.delete(&d.receipt).await?;
        }
    }
    let mut failed: Vec<String> = failed.into_iter().collect();
    failed.sort();
    Ok(Polled {
        received: deliveries.len(),
        failed,
    })
}
