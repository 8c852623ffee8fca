//! The standardise stage: recompute a table's silver history from bronze (standardised names,
//! types, trims, empty strings as NULL, dedupe) and stage it as a snapshot of
//! `silver_<source>.<table>` that readers do not see until the audit publishes it.

use floe_config::{Project, TableConfig};
use floe_core::message::{Envelope, StageMessage, Staged};
use floe_core::ports::{Lake, WriteOptions};
use floe_core::{Error, Layer, Result, TableRef};

use crate::scd2;

/// The table config behind a bronze or silver table name.
pub fn table_config<'p>(project: &'p Project, table: &TableRef) -> Result<&'p TableConfig> {
    let source = table
        .namespace
        .strip_prefix("bronze_")
        .or_else(|| table.namespace.strip_prefix("silver_"))
        .ok_or_else(|| {
            Error::MalformedMessage(format!("{table} is not a bronze or silver table"))
        })?;
    project.table(&format!("{source}.{}", table.name))
}

/// What the standardise stage needs.
pub struct Standardise<'a> {
    /// The project.
    pub project: &'a Project,
    /// The lake.
    pub lake: &'a dyn Lake,
}

impl Standardise<'_> {
    /// Stages the silver history including the message's batch; returns the audit message and
    /// the rows of the staged version.
    #[tracing::instrument(skip_all, fields(batch_id = %message.batch_id))]
    pub async fn handle(&self, message: &Envelope) -> Result<(Envelope, u64)> {
        let StageMessage::Standardise { bronze, .. } = &message.body else {
            return Err(Error::MalformedMessage(format!(
                "the standardise queue got a {} message",
                stage_name(&message.body)
            )));
        };
        let table = table_config(self.project, bronze)?;
        let silver = table.table_ref(Layer::Silver);
        if !self.lake.table_exists(&silver).await? {
            match self
                .lake
                .create_table(&silver, scd2::silver_schema(table))
                .await
            {
                Ok(()) | Err(Error::AlreadyExists(_)) => {}
                Err(e) => return Err(e),
            }
        }
        let base = self
            .lake
            .snapshots(&silver)
            .await?
            .into_iter()
            .find(|s| s.is_current)
            .map(|s| s.snapshot_id);
        let history = scd2::history_sql(
            self.lake.dialect(),
            table,
            &crate::rejections::bronze_source(self.lake, bronze, &silver).await?,
        );
        let mut options = WriteOptions::batch(message.batch_id.clone(), message.run_id.clone());
        options.stage_only = true;
        options.expected_snapshot_id = base;
        let outcome = self
            .lake
            .write_query(
                &silver,
                &history,
                &floe_core::ports::ReadAt::Current,
                &options,
            )
            .await?;
        tracing::info!(table = %silver, snapshot_id = outcome.snapshot_id, rows = outcome.rows_added, replay = outcome.already_committed, "silver staged");
        // The attempt count carries over, so a batch restaged again and again gives up.
        let rows = outcome.rows_added;
        Ok((
            Envelope {
                body: StageMessage::Audit {
                    table: silver,
                    staged: Staged::Snapshot {
                        snapshot_id: outcome.snapshot_id,
                    },
                    redo: Box::new(message.body.clone()),
                },
                ..message.clone()
            },
            rows,
        ))
    }
}

/// The `stage` tag of a message, for errors.
pub fn stage_name(m: &StageMessage) -> &'static str {
    match m {
        StageMessage::Standardise { .. } => "standardise",
        StageMessage::Audit { .. } => "audit",
        StageMessage::Model { .. } => "model",
        StageMessage::AuditModels { .. } => "audit_models",
    }
}
