//! The `floe.*` events, typed: what each one carries is declared here once, and every stage
//! builds its events through these, so a consumer (an EventBridge rule, the webhook, the local
//! event log) always sees the same fields for the same event.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::error::ErrorKind;
use crate::ports::PipelineEvent;
use crate::{BatchId, RunId};

/// `floe.published`: readers now see a new version of a table.
#[derive(Debug, Clone, Serialize)]
pub struct Published {
    /// The table readers query.
    pub table: String,
    /// The model, for a gold table.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// The snapshot readers now see (none for a view).
    pub snapshot_id: Option<i64>,
    /// The batch that made it.
    pub batch_id: BatchId,
    /// The run that made it.
    pub run_id: RunId,
    /// What started a gold run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trigger: Option<String>,
}

/// `floe.failed`: a message was dead-lettered, or a table's new version was refused (its
/// published version is unchanged).
#[derive(Debug, Clone, Default, Serialize)]
pub struct Failed {
    /// Why, for people.
    pub reason: String,
    /// What to do about it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub what_to_do: Option<String>,
    /// The stage whose message was dead-lettered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stage: Option<String>,
    /// The kind of error that dead-lettered it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<ErrorKind>,
    /// Where the message went.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dead_letter_queue: Option<String>,
    /// The queue's id of the message.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
    /// The table that was not published.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub table: Option<String>,
    /// The model, for a gold table.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// The staged snapshot that was refused.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub staged_snapshot_id: Option<i64>,
    /// The batch.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub batch_id: Option<BatchId>,
    /// The run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run_id: Option<RunId>,
    /// What started a gold run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trigger: Option<String>,
    /// The failing tests, with their counts and examples.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failures: Option<serde_json::Value>,
}

/// `floe.quarantined`: a landed file was refused whole and moved to quarantine with a report.
#[derive(Debug, Clone, Serialize)]
pub struct Quarantined {
    /// The landing key.
    pub file: String,
    /// Its batch.
    pub batch_id: BatchId,
    /// The table it was for, when its key named one.
    pub table: Option<String>,
    /// The report's key.
    pub report: String,
    /// The first problems, as text.
    pub problems: Vec<String>,
    /// How many problems were found.
    pub problem_count: usize,
}

fn event(detail_type: &str, time: DateTime<Utc>, detail: impl Serialize) -> PipelineEvent {
    PipelineEvent {
        detail_type: detail_type.to_owned(),
        time,
        detail: serde_json::to_value(detail).expect("an event's detail serialises"),
    }
}

impl PipelineEvent {
    /// A `floe.published` event.
    pub fn published(time: DateTime<Utc>, detail: Published) -> Self {
        event("floe.published", time, detail)
    }

    /// A `floe.failed` event.
    pub fn failed(time: DateTime<Utc>, detail: Failed) -> Self {
        event("floe.failed", time, detail)
    }

    /// A `floe.quarantined` event.
    pub fn quarantined(time: DateTime<Utc>, detail: Quarantined) -> Self {
        event("floe.quarantined", time, detail)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_carry_their_fields_and_leave_out_what_does_not_apply() {
        let batch = BatchId::derive(&["b"]);
        let run = RunId::from_string("r1");
        let silver = PipelineEvent::published(
            Utc::now(),
            Published {
                table: "silver_s.t".into(),
                model: None,
                snapshot_id: Some(7),
                batch_id: batch.clone(),
                run_id: run.clone(),
                trigger: None,
            },
        );
        assert_eq!(silver.detail_type, "floe.published");
        let keys: Vec<&str> = silver
            .detail
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(keys, ["batch_id", "run_id", "snapshot_id", "table"]);
        let view = PipelineEvent::published(
            Utc::now(),
            Published {
                table: "gold.v".into(),
                model: Some("v".into()),
                snapshot_id: None,
                batch_id: batch,
                run_id: run,
                trigger: Some("silver_s.t@7".into()),
            },
        );
        assert!(view.detail["snapshot_id"].is_null());
        assert_eq!(view.detail["model"], "v");
        let failed = PipelineEvent::failed(
            Utc::now(),
            Failed {
                reason: "no".into(),
                stage: Some("audit".into()),
                ..Default::default()
            },
        );
        assert_eq!(
            failed.detail,
            serde_json::json!({"reason": "no", "stage": "audit"})
        );
    }
}
