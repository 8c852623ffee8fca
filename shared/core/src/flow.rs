//! How a message moves between the stages, and what a runner does with one that failed.
//!
//! Both runners (the local runtime's queues and the Lambda services on SQS) take their rules
//! from here: which stage's queue a message belongs on ([`StageMessage::stage`]), what becomes
//! of a message whose handler failed ([`Disposition::of`]) and the `floe.failed` event a
//! dead-lettered message raises ([`failed_event`]). Where a handled message's results go next is
//! decided in one function, `floe_pipeline::flow::route`.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use crate::event::Failed;
use chrono::{DateTime, Utc};

use crate::backoff::Backoff;
use crate::message::StageMessage;
use crate::ports::PipelineEvent;
use crate::{Error, Result};

/// A stage of the pipeline, named as its queue is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Stage {
    /// S3 events in; landed files to bronze (or quarantine).
    Landing,
    /// Bronze batches in; silver history staged.
    Standardise,
    /// Staged writes in; tests, then publish or reject.
    Audit,
    /// Published tables in; the models downstream of them built and staged.
    Modelling,
}

impl Stage {
    /// Every stage, in pipeline order.
    pub const ALL: [Stage; 4] = [
        Stage::Landing,
        Stage::Standardise,
        Stage::Audit,
        Stage::Modelling,
    ];

    /// The stage's (and its queue's) name.
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Landing => "landing",
            Stage::Standardise => "standardise",
            Stage::Audit => "audit",
            Stage::Modelling => "modelling",
        }
    }

    /// The name of the stage's dead-letter queue.
    pub fn dead_letter_queue(self) -> String {
        format!("{}-dlq", self.as_str())
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Stage {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Stage::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| {
                Error::Config(format!(
                    "'{s}' is not a stage: use one of landing, standardise, audit, modelling"
                ))
            })
    }
}

impl StageMessage {
    /// The stage whose queue takes this message. (The landing queue takes S3 events, not stage
    /// messages.)
    pub fn stage(&self) -> Stage {
        match self {
            StageMessage::Standardise { .. } => Stage::Standardise,
            StageMessage::Audit { .. } | StageMessage::AuditModels { .. } => Stage::Audit,
            StageMessage::Model { .. } => Stage::Modelling,
        }
    }
}

/// What a runner does with a message once its handler has run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    /// Handled: delete it (its results were sent on first).
    Done,
    /// A retry can succeed: deliver it again after this wait (on SQS the queue's visibility
    /// timeout sets the wait; the local queues use this one).
    RetryAfter(Duration),
    /// A retry cannot succeed, or it was tried too often: move it to the stage's dead-letter
    /// queue, record it in the ledger and emit [`failed_event`].
    DeadLetter,
}

/// The wait before a message is delivered again, by how many times it was received.
pub const REDELIVERY: Backoff =
    Backoff::new(Duration::from_millis(100), Duration::from_millis(6400));

impl Disposition {
    /// The disposition of a message received `receives` times (1 on first delivery) whose
    /// handler returned `result`. `max_receives` is where a retryable failure is dead-lettered
    /// too; `None` leaves that to the queue (SQS's redrive policy).
    pub fn of(result: &Result<()>, receives: u32, max_receives: Option<u32>) -> Disposition {
        match result {
            Ok(()) => Disposition::Done,
            Err(e) if e.is_retryable() && max_receives.is_none_or(|max| receives < max) => {
                Disposition::RetryAfter(REDELIVERY.delay(receives))
            }
            Err(_) => Disposition::DeadLetter,
        }
    }
}

/// The `floe.failed` event for a message of `stage` that was dead-lettered to `dead_letter_queue`
/// (its name, or its URL on SQS) because of `error`; `message_id` is the queue's id of the
/// message, when it has one.
pub fn failed_event(
    stage: Stage,
    error: &Error,
    dead_letter_queue: &str,
    message_id: Option<&str>,
    time: DateTime<Utc>,
) -> PipelineEvent {
    PipelineEvent::failed(
        time,
        Failed {
            reason: error.to_string(),
            stage: Some(stage.as_str().to_owned()),
            kind: Some(error.kind()),
            dead_letter_queue: Some(dead_letter_queue.to_owned()),
            message_id: message_id.map(str::to_owned),
            ..Default::default()
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stages_parse_from_their_queue_names() {
        for s in Stage::ALL {
            assert_eq!(s.as_str().parse::<Stage>().unwrap(), s);
        }
        let e = "silver".parse::<Stage>().unwrap_err().to_string();
        assert!(e.contains("landing, standardise, audit, modelling"), "{e}");
    }

    #[test]
    fn retryable_failures_come_back_until_the_receive_limit() {
        let busy: Result<()> = Err(Error::Transient("throttled".into()));
        assert_eq!(
            Disposition::of(&busy, 1, Some(5)),
            Disposition::RetryAfter(Duration::from_millis(100))
        );
        assert_eq!(
            Disposition::of(&busy, 3, Some(5)),
            Disposition::RetryAfter(Duration::from_millis(400))
        );
        assert_eq!(Disposition::of(&busy, 5, Some(5)), Disposition::DeadLetter);
        assert!(matches!(
            Disposition::of(&busy, 50, None),
            Disposition::RetryAfter(_)
        ));
        let bad: Result<()> = Err(Error::MalformedMessage("not JSON".into()));
        assert_eq!(Disposition::of(&bad, 1, None), Disposition::DeadLetter);
        assert_eq!(Disposition::of(&Ok(()), 9, Some(5)), Disposition::Done);
    }

    #[test]
    fn the_failed_event_names_the_stage_the_reason_and_the_dead_letter_queue() {
        let e = Error::MalformedMessage("no body".into());
        let ev = failed_event(Stage::Audit, &e, "audit-dlq", Some("m-1"), Utc::now());
        assert_eq!(ev.detail_type, "floe.failed");
        assert_eq!(ev.detail["stage"], "audit");
        assert_eq!(ev.detail["dead_letter_queue"], "audit-dlq");
        assert_eq!(ev.detail["message_id"], "m-1");
        assert!(ev.detail["reason"].as_str().unwrap().contains("no body"));
        let local = failed_event(Stage::Landing, &e, "landing-dlq", None, Utc::now());
        assert!(local.detail.get("message_id").is_none());
    }
}
