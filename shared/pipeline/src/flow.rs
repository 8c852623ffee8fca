//! Where a handled message's results go: [`route`] turns what a stage decided into the messages
//! for the next stages. This is the whole event flow of floe:
//!
//! ```text
//! S3 event ─landing─▶ Standardise (one per file appended to bronze; a quarantined file stops)
//! Standardise ─standardise─▶ Audit (the silver history staged)
//! Audit ─audit─▶ Model (published, and models read the table) | Standardise again (stale) | ∅
//! Model ─modelling─▶ AuditModels (the models staged) | ∅ (nothing downstream, or all failed)
//! AuditModels ─audit─▶ Model again (a model went stale) | ∅ (published or rejected)
//! ```
//!
//! Each message names its own queue ([`StageMessage::stage`]), so a runner sends every routed
//! message where it belongs without being told.

use floe_core::message::{Envelope, StageMessage, StagedModel};
use floe_core::{Error, Result, TableRef};

/// What a stage handler decided about one message, before anything is sent on.
#[derive(Debug)]
pub enum Decision {
    /// Landing appended files to bronze: one standardise message each (none when the file was
    /// quarantined).
    Landed(Vec<Envelope>),
    /// Standardise staged a table's new history: the audit message.
    Staged(Envelope),
    /// The silver audit published `table` at `snapshot_id`.
    Published {
        /// The audit message.
        message: Envelope,
        /// The published table.
        table: TableRef,
        /// The snapshot readers now see.
        snapshot_id: i64,
        /// Whether any model reads the table.
        has_models: bool,
    },
    /// The silver audit found its staged write stale (another write was published first): the
    /// message that computes it again.
    Stale(Envelope),
    /// Modelling built the models downstream of a published table.
    Built {
        /// The model message.
        message: Envelope,
        /// What started the run (`table@snapshot`).
        trigger: String,
        /// The models staged, parents first (empty when none could be built).
        staged: Vec<StagedModel>,
    },
    /// The gold audit tested a run's models and published those that passed.
    ModelsAudited {
        /// The audit message.
        message: Envelope,
        /// Whether a staged model went stale (another run published it first).
        stale: bool,
        /// The message that started the run, to build the models again.
        redo: Option<Box<StageMessage>>,
    },
    /// Nothing follows: a rejection, maintenance, no models downstream.
    Done,
}

/// How many times a stale staged write is recomputed before the message gives up.
pub const MAX_RESTAGES: u32 = 20;

/// The messages that follow a decision. An error is the message's failure (a run that went
/// stale too many times gives up, to be redriven later).
pub fn route(decision: Decision) -> Result<Vec<Envelope>> {
    Ok(match decision {
        Decision::Landed(standardise) => standardise,
        Decision::Staged(audit) => vec![audit],
        Decision::Published {
            message,
            table,
            snapshot_id,
            has_models: true,
        } => vec![message.next(StageMessage::Model { table, snapshot_id })],
        Decision::Stale(redo) => vec![redo],
        Decision::Built {
            message,
            trigger,
            staged,
        } if !staged.is_empty() => {
            let redo = Some(Box::new(message.body.clone()));
            vec![message.next(StageMessage::AuditModels {
                trigger,
                models: staged,
                redo,
            })]
        }
        Decision::ModelsAudited {
            message,
            stale: true,
            redo: Some(redo),
        } => {
            if message.attempt >= MAX_RESTAGES {
                let StageMessage::AuditModels { trigger, .. } = &message.body else {
                    return Err(Error::Internal("a gold audit without its run".into()));
                };
                return Err(Error::CommitConflict {
                    table: trigger.clone(),
                    detail: "models restaged too many times while other runs kept publishing \
                             first; redrive later"
                        .into(),
                });
            }
            vec![message.again(*redo)]
        }
        Decision::Published { .. }
        | Decision::Built { .. }
        | Decision::ModelsAudited { .. }
        | Decision::Done => Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use floe_core::message::Staged;
    use floe_core::{BatchId, ObjectRef, RunId, Stage};

    fn envelope(body: StageMessage) -> Envelope {
        Envelope::new(BatchId::derive(&["b-1"]), RunId::new(), body)
    }

    fn silver() -> TableRef {
        TableRef::new("silver_nomis", "people").unwrap()
    }

    fn model(table: TableRef) -> StageMessage {
        StageMessage::Model {
            table,
            snapshot_id: 7,
        }
    }

    fn audit_models(redo: bool) -> StageMessage {
        StageMessage::AuditModels {
            trigger: "silver_nomis.people@7".into(),
            models: Vec::new(),
            redo: redo.then(|| Box::new(model(silver()))),
        }
    }

    #[test]
    fn a_published_table_goes_to_modelling_only_when_models_read_it() {
        let audit = envelope(StageMessage::Audit {
            table: silver(),
            staged: Staged::Snapshot { snapshot_id: 7 },
            redo: Box::new(model(silver())),
        });
        for has_models in [true, false] {
            let next = route(Decision::Published {
                message: audit.clone(),
                table: silver(),
                snapshot_id: 7,
                has_models,
            })
            .unwrap();
            if has_models {
                assert_eq!(next.len(), 1);
                assert_eq!(next[0].body, model(silver()));
                assert_eq!(next[0].body.stage(), Stage::Modelling);
                assert_eq!((next[0].attempt, &next[0].batch_id), (1, &audit.batch_id));
            } else {
                assert!(next.is_empty());
            }
        }
    }

    #[test]
    fn staged_models_go_to_the_audit_with_the_run_to_redo() {
        let m = envelope(model(silver()));
        let staged = StagedModel {
            model: "people_daily".into(),
            table: TableRef::new("gold", "people_daily").unwrap(),
            staged: Staged::Snapshot { snapshot_id: 9 },
            parents: Vec::new(),
            rows: 3,
            started_at: chrono::Utc::now(),
            finished_at: chrono::Utc::now(),
            bytes_scanned: None,
        };
        let next = route(Decision::Built {
            message: m.clone(),
            trigger: "t".into(),
            staged: vec![staged],
        })
        .unwrap();
        assert_eq!(next.len(), 1);
        assert_eq!(next[0].body.stage(), Stage::Audit);
        let StageMessage::AuditModels { redo, models, .. } = &next[0].body else {
            panic!("{:?}", next[0].body)
        };
        assert_eq!(models.len(), 1);
        assert_eq!(redo.as_deref(), Some(&m.body));
        let none = route(Decision::Built {
            message: m,
            trigger: "t".into(),
            staged: Vec::new(),
        })
        .unwrap();
        assert!(none.is_empty());
    }

    #[test]
    fn a_stale_run_is_built_again_until_the_restage_limit() {
        let mut m = envelope(audit_models(true));
        let redo = Some(Box::new(model(silver())));
        let next = route(Decision::ModelsAudited {
            message: m.clone(),
            stale: true,
            redo: redo.clone(),
        })
        .unwrap();
        assert_eq!(next.len(), 1);
        assert_eq!(
            (next[0].attempt, next[0].body.stage()),
            (2, Stage::Modelling)
        );
        m.attempt = MAX_RESTAGES;
        let e = route(Decision::ModelsAudited {
            message: m.clone(),
            stale: true,
            redo,
        })
        .unwrap_err();
        assert!(
            e.is_retryable() && e.to_string().contains("redrive later"),
            "{e}"
        );
        let fresh = route(Decision::ModelsAudited {
            message: m,
            stale: false,
            redo: None,
        });
        assert!(fresh.unwrap().is_empty());
    }

    #[test]
    fn landed_files_each_go_to_standardise() {
        let object = ObjectRef {
            bucket: "landing".into(),
            key: "landing/nomis/people/2026-01-01T00:00:00Z/a.csv".into(),
            version_id: None,
            etag: None,
            size: 1,
        };
        let m = envelope(StageMessage::Standardise {
            object,
            bronze: TableRef::new("bronze_nomis", "people").unwrap(),
            bronze_snapshot_id: 1,
            extract_ts: chrono::Utc::now(),
        });
        let next = route(Decision::Landed(vec![m.clone(), m])).unwrap();
        assert!(next.iter().all(|n| n.body.stage() == Stage::Standardise));
        assert_eq!(next.len(), 2);
        assert!(route(Decision::Done).unwrap().is_empty());
    }
}
