//! The messages the stages pass each other through their queues.
//!
//! Every message is one JSON object with `schema_version`, a deterministic `batch_id`, the
//! `run_id`, the delivery `attempt` and a `stage`-tagged body. A consumer reads `schema_version`
//! first, so a message from a newer floe is a clear, permanent error rather than a guess.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{BatchId, Error, ObjectRef, Result, RunId, TableRef};

/// The message format this build writes and reads.
pub const SCHEMA_VERSION: u32 = 1;

/// A message between two stages.
// No `deny_unknown_fields`: serde cannot combine it with the flattened body, and a newer minor
// floe may add optional fields; incompatible changes bump `schema_version`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    /// Always [`SCHEMA_VERSION`] when written by this build.
    pub schema_version: u32,
    /// The batch this message belongs to (see [`BatchId::for_object`]).
    pub batch_id: BatchId,
    /// The run this message belongs to.
    pub run_id: RunId,
    /// How many times this step has been attempted (1 on first delivery).
    pub attempt: u32,
    /// What the next stage must do.
    #[serde(flatten)]
    pub body: StageMessage,
}

/// The work a message hands to the next stage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "stage", rename_all = "snake_case")]
pub enum StageMessage {
    /// A file was appended to bronze: standardise it into silver.
    Standardise {
        /// The landed file.
        object: ObjectRef,
        /// The bronze table it was appended to.
        bronze: TableRef,
        /// The bronze snapshot holding the batch.
        bronze_snapshot_id: i64,
        /// The extract time from the landing key.
        extract_ts: DateTime<Utc>,
    },
    /// A table was written but not published: test it, then publish or reject.
    Audit {
        /// The table readers see.
        table: TableRef,
        /// The staged snapshot (or staging table) awaiting its tests.
        staged: Staged,
        /// The message that produced the staged write: sent again if the write went stale
        /// (another write was published first), so the stage recomputes on the new version.
        redo: Box<StageMessage>,
    },
    /// A table was published: build the models downstream of it.
    Model {
        /// The published table.
        table: TableRef,
        /// Its published snapshot.
        snapshot_id: i64,
    },
    /// Models built and staged by one modelling run: test each, publish those that pass.
    AuditModels {
        /// What started the run (a published table, `floe run`, `floe retry`).
        trigger: String,
        /// The staged models, parents before children.
        models: Vec<StagedModel>,
        /// The message that started the run: sent again when a staged model went stale
        /// (another run published the same model first), so the models are built again.
        #[serde(default)]
        redo: Option<Box<StageMessage>>,
    },
}

/// A model written but not published.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StagedModel {
    /// The model's name.
    pub model: String,
    /// Its published relation.
    pub table: TableRef,
    /// Where the staged version waits.
    pub staged: Staged,
    /// The models of the same run it reads: it is published only after them.
    pub parents: Vec<String>,
    /// Rows written (0 for views).
    pub rows: u64,
    /// When its build started and ended.
    pub started_at: DateTime<Utc>,
    /// When its build ended.
    pub finished_at: DateTime<Utc>,
    /// Bytes its build's statements scanned, when they were counted (inside a stage).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes_scanned: Option<u64>,
}

/// Where a staged write waits for its audit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Staged {
    /// A snapshot of the live table that its main branch does not point to yet.
    Snapshot {
        /// The staged snapshot id.
        snapshot_id: i64,
    },
    /// A separate staging table to publish over the live one.
    Table {
        /// The staging table.
        table: TableRef,
    },
    /// A view: tested through a staging view, created with its published SQL on publish.
    View {
        /// The staging view.
        staging: TableRef,
        /// The view's SQL as published (reading published relations).
        sql: String,
    },
}

impl Envelope {
    /// A first-attempt message of the current schema version.
    pub fn new(batch_id: BatchId, run_id: RunId, body: StageMessage) -> Self {
        Envelope {
            schema_version: SCHEMA_VERSION,
            batch_id,
            run_id,
            attempt: 1,
            body,
        }
    }

    /// The first attempt of the next step of this message's batch and run, doing `body`.
    pub fn next(&self, body: StageMessage) -> Envelope {
        Envelope {
            attempt: 1,
            body,
            ..self.clone()
        }
    }

    /// This step done again (its attempt counted), doing `body`: a stale write recomputed.
    pub fn again(&self, body: StageMessage) -> Envelope {
        Envelope {
            attempt: self.attempt + 1,
            body,
            ..self.clone()
        }
    }

    /// The JSON form put on a queue.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("an envelope always serialises")
    }

    /// Reads a message, checking its schema version before anything else.
    pub fn from_json(body: &str) -> Result<Self> {
        #[derive(Deserialize)]
        struct VersionOnly {
            schema_version: Option<u32>,
        }
        let version: VersionOnly = serde_json::from_str(body).map_err(|e| {
            Error::MalformedMessage(format!("not a JSON object ({e}): {}", preview(body)))
        })?;
        match version.schema_version {
            None => Err(Error::MalformedMessage(format!(
                "no schema_version field: {}",
                preview(body)
            ))),
            Some(v) if v != SCHEMA_VERSION => Err(Error::UnsupportedSchemaVersion {
                found: v,
                supported: SCHEMA_VERSION,
            }),
            Some(_) => serde_json::from_str(body)
                .map_err(|e| Error::MalformedMessage(format!("{e}: {}", preview(body)))),
        }
    }
}

fn preview(body: &str) -> String {
    const MAX: usize = 200;
    if body.len() <= MAX {
        body.to_owned()
    } else {
        let cut = (0..=MAX)
            .rev()
            .find(|i| body.is_char_boundary(*i))
            .unwrap_or(0);
        format!("{}…", &body[..cut])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Envelope {
        let object = ObjectRef {
            bucket: "landing".into(),
            key: "landing/nomis/people/2026-11-01T00:00:00Z/people.csv".into(),
            version_id: None,
            etag: Some("abc".into()),
            size: 42,
        };
        Envelope::new(
            BatchId::for_object(&object),
            RunId::from_string("r1"),
            StageMessage::Standardise {
                bronze: "bronze_nomis.people".parse().unwrap(),
                bronze_snapshot_id: 7,
                extract_ts: "2026-11-01T00:00:00Z".parse().unwrap(),
                object,
            },
        )
    }

    #[test]
    fn round_trips_through_json() {
        let m = sample();
        let json = m.to_json();
        assert!(json.contains("\"stage\":\"standardise\""), "{json}");
        assert!(json.contains("\"schema_version\":1"), "{json}");
        assert_eq!(Envelope::from_json(&json).unwrap(), m);
    }

    #[test]
    fn an_unknown_schema_version_is_a_clear_permanent_error() {
        let json = sample()
            .to_json()
            .replace("\"schema_version\":1", "\"schema_version\":9");
        let err = Envelope::from_json(&json).unwrap_err();
        assert!(matches!(
            err,
            Error::UnsupportedSchemaVersion {
                found: 9,
                supported: 1
            }
        ));
        assert!(!err.is_retryable());
        assert!(err.to_string().contains("schema_version 9"), "{err}");
    }

    #[test]
    fn malformed_messages_say_what_is_missing() {
        let err = Envelope::from_json("[1,2]").unwrap_err();
        assert!(matches!(err, Error::MalformedMessage(_)), "{err}");
        let err = Envelope::from_json("{\"batch_id\":\"x\"}").unwrap_err();
        assert!(err.to_string().contains("schema_version"), "{err}");
        let bad_batch = sample()
            .to_json()
            .replace(sample().batch_id.as_str(), "b1' OR '1'='1");
        let err = Envelope::from_json(&bad_batch).unwrap_err();
        assert!(err.to_string().contains("is not a batch id"), "{err}");
        let err = Envelope::from_json("{\"schema_version\":1,\"stage\":\"model\"}").unwrap_err();
        assert!(err.to_string().contains("batch_id"), "{err}");
    }
}
