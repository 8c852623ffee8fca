//! `floe.*` pipeline events on an EventBridge bus.

use async_trait::async_trait;
use aws_sdk_eventbridge::primitives::DateTime as AwsTime;
use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use floe_core::ports::{EventSink, PipelineEvent};
use floe_core::{Error, Result};

/// The `source` of every event floe puts.
pub const EVENT_SOURCE: &str = "floe";

/// One event bus.
#[derive(Debug, Clone)]
pub struct EventBridgeSink {
    client: aws_sdk_eventbridge::Client,
    bus: String,
}

impl EventBridgeSink {
    /// The bus named `bus` (`default` for the account's default bus).
    pub fn new(client: aws_sdk_eventbridge::Client, bus: &str) -> Self {
        EventBridgeSink {
            client,
            bus: bus.to_owned(),
        }
    }

    /// Puts an event as it is (for `floe inject --to bus`): `source`, `detail-type`, `detail`.
    pub async fn put_raw(&self, source: &str, detail_type: &str, detail: &str) -> Result<()> {
        let entry = PutEventsRequestEntry::builder()
            .event_bus_name(&self.bus)
            .source(source)
            .detail_type(detail_type)
            .detail(detail)
            .build();
        self.put(entry).await
    }

    async fn put(&self, entry: PutEventsRequestEntry) -> Result<()> {
        let what = format!("EventBridge PutEvents on bus {}", self.bus);
        let out = self
            .client
            .put_events()
            .entries(entry)
            .send()
            .await
            .map_err(|e| crate::sdk_error::map(&what, e))?;
        if out.failed_entry_count() > 0 {
            let f = out.entries().iter().find(|e| e.error_code().is_some());
            let code = f.and_then(|e| e.error_code()).unwrap_or_default();
            let detail = format!(
                "{what}: refused: {code} {}",
                f.and_then(|e| e.error_message()).unwrap_or_default()
            );
            return Err(if crate::sdk_error::is_throttling(code) {
                Error::Transient(detail)
            } else {
                Error::Internal(detail)
            });
        }
        Ok(())
    }
}

#[async_trait]
impl EventSink for EventBridgeSink {
    async fn emit(&self, event: PipelineEvent) -> Result<()> {
        let entry = PutEventsRequestEntry::builder()
            .event_bus_name(&self.bus)
            .source(EVENT_SOURCE)
            .detail_type(&event.detail_type)
            .detail(event.detail.to_string())
            .time(AwsTime::from_millis(event.time.timestamp_millis()))
            .build();
        self.put(entry).await
    }
}
