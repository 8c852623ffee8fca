//! A pipeline stage as an SQS-triggered Lambda function.
//!
//! Each record of a batch is handled on its own: a body that cannot be parsed or a handler that
//! fails affects that record only. Records about one table run one after another, in arrival
//! order (they write the same tables); different tables run side by side, up to the configured
//! concurrency. The answer is an
//! [`SqsBatchResponse`] naming the records to deliver again (the event source mapping must have
//! `ReportBatchItemFailures` on):
//! - success: the next stages' messages are sent, the record is done;
//! - retryable failure (throttling, timeouts, commit conflicts): the record is reported, SQS
//!   delivers it again after its visibility timeout, and dead-letters it after maxReceiveCount;
//! - permanent failure (bad message, bad SQL, broken invariant): the record is moved to the
//!   stage's dead-letter queue at once with the reason, and `floe.failed` is emitted. Without a
//!   configured DLQ it is reported instead, and SQS dead-letters it after maxReceiveCount.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use floe_config::Project;
use floe_core::flow::{Disposition, failed_event};
use floe_core::ports::{Clock, EventSink, Lake, Queue, SystemClock};
use floe_core::{Error, Result, Stage};
use floe_pipeline::stages::{Note, Stages, lane};
use futures::StreamExt;
use tracing::Instrument;

use floe_aws::clients::{Clients, Connection};
use floe_aws::eventbridge::EventBridgeSink;
use floe_aws::metrics::{Record, Unit};
use floe_aws::s3::S3Store;
use floe_aws::sqs::SqsQueue;

use crate::settings::{Engine, Settings};

/// One stage's service: the handler and where its results go.
pub struct Service {
    stage: Stage,
    stages: Stages,
    next: BTreeMap<Stage, Arc<dyn Queue>>,
    /// The dead-letter queue's URL, and the queue.
    dead_letters: Option<(String, Arc<dyn Queue>)>,
    events: Arc<dyn EventSink>,
    clock: Arc<dyn Clock>,
    concurrency: usize,
}

/// How one record ended.
#[derive(Debug)]
enum Fate {
    Done,
    /// Deliver again (the error is retryable, or there is no DLQ to move it to).
    Retry(Error),
    /// Moved to the dead-letter queue.
    DeadLettered(Error),
}

impl Service {
    /// A service for `stage` over these handlers, sending to `next` (one queue per next stage)
    /// and moving permanent failures to `dead_letters` (its URL, and the queue).
    pub fn new(
        stage: Stage,
        stages: Stages,
        next: BTreeMap<Stage, Arc<dyn Queue>>,
        dead_letters: Option<(String, Arc<dyn Queue>)>,
        concurrency: usize,
    ) -> Self {
        Service {
            stage,
            events: stages.events.clone(),
            clock: stages.clock.clone(),
            stages,
            next,
            dead_letters,
            concurrency: concurrency.max(1),
        }
    }

    /// Builds the service from its settings: the project, the clients (once) and the lake.
    pub async fn from_settings(settings: &Settings) -> anyhow::Result<Self> {
        let project = Project::load(&settings.project_dir).map_err(|e| {
            anyhow::anyhow!(
                "cannot load the floe project from {} (FLOE_PROJECT_DIR):\n{e}",
                settings.project_dir.display()
            )
        })?;
        let clients = Connection {
            region: settings.region.clone(),
            endpoint_url: settings.endpoint_url.clone(),
            static_credentials: None,
        }
        .clients()
        .await;
        let lake = open_lake(&settings.engine, &clients, settings.price_per_tb_usd).await?;
        Ok(Self::with_clients(settings, project, lake, &clients))
    }

    /// Builds the service from its settings over given clients and lake.
    pub fn with_clients(
        settings: &Settings,
        project: Project,
        lake: Arc<dyn Lake>,
        clients: &Clients,
    ) -> Self {
        let events: Arc<dyn EventSink> = Arc::new(EventBridgeSink::new(
            clients.eventbridge.clone(),
            &settings.event_bus,
        ));
        let notifier = project.settings.webhook.as_ref().map(|u| {
            Arc::new(floe_webhook::Webhook::new(u)) as Arc<dyn floe_core::ports::Notifier>
        });
        let concurrency = project.settings.concurrency as usize;
        let stages = Stages {
            project,
            lake,
            landing: Arc::new(S3Store::new(clients.s3.clone(), &settings.landing_bucket)),
            quarantine: Arc::new(S3Store::new(
                clients.s3.clone(),
                &settings.quarantine_bucket,
            )),
            events,
            clock: Arc::new(SystemClock),
            rows: Arc::new(floe_lake::MemoryEngine),
            notifier,
            concurrency,
            chunk_rows: floe_pipeline::extract::CHUNK_ROWS,
        };
        let next = settings
            .next_queues
            .iter()
            .map(|(st, url)| {
                let q: Arc<dyn Queue> = Arc::new(SqsQueue::new(clients.sqs.clone(), url));
                (*st, q)
            })
            .collect();
        let dlq = settings.dlq_url.as_deref().map(|url| {
            let q: Arc<dyn Queue> = Arc::new(SqsQueue::new(clients.sqs.clone(), url));
            (url.to_owned(), q)
        });
        Service::new(
            settings.stage,
            stages,
            next,
            dlq,
            settings.batch_concurrency,
        )
    }

    /// The stage this service runs.
    pub fn stage(&self) -> Stage {
        self.stage
    }

    /// Handles one SQS batch; the response names the records to deliver again.
    pub async fn handle(&self, event: SqsEvent) -> SqsBatchResponse {
        let started = Instant::now();
        let records = event.records;
        let count = records.len();
        // One lane per table, in arrival order within a lane; lanes run side by side.
        let mut lanes: BTreeMap<Option<String>, Vec<SqsMessage>> = BTreeMap::new();
        for r in records {
            let lane = r.body.as_deref().and_then(|b| lane(self.stage, b));
            lanes.entry(lane).or_default().push(r);
        }
        let fates: Vec<(Option<String>, Fate)> = futures::stream::iter(lanes.into_values())
            .map(|lane| async move {
                let mut out = Vec::with_capacity(lane.len());
                for r in lane {
                    let fate = self.record(&r).await;
                    out.push((r.message_id.clone(), fate));
                }
                out
            })
            .buffer_unordered(self.concurrency)
            .collect::<Vec<_>>()
            .await
            .into_iter()
            .flatten()
            .collect();
        let mut response = SqsBatchResponse::default();
        let (mut retried, mut dead) = (0, 0);
        for (id, fate) in fates {
            match fate {
                Fate::Done => {}
                Fate::DeadLettered(_) => dead += 1,
                Fate::Retry(_) => {
                    retried += 1;
                    let mut f = BatchItemFailure::default();
                    // A record without an id cannot be named; SQS then redelivers the batch.
                    f.item_identifier = id.unwrap_or_default();
                    response.batch_item_failures.push(f);
                }
            }
        }
        Record::new(self.stage.as_str())
            .metric("Messages", Unit::Count, count as f64)
            .metric("Retried", Unit::Count, retried as f64)
            .metric("DeadLettered", Unit::Count, dead as f64)
            .metric(
                "BatchDuration",
                Unit::Milliseconds,
                started.elapsed().as_secs_f64() * 1e3,
            )
            .emit();
        response
    }

    async fn record(&self, r: &SqsMessage) -> Fate {
        let id = r.message_id.as_deref().unwrap_or("?");
        let receives = r
            .attributes
            .get("ApproximateReceiveCount")
            .cloned()
            .unwrap_or_else(|| "?".into());
        let span = tracing::info_span!("message", stage = %self.stage, message_id = id, receives);
        async {
            let started = Instant::now();
            let result = match &r.body {
                Some(body) => self.run(body).await,
                None => Err(Error::MalformedMessage("the SQS record has no body".into())),
            };
            let elapsed = started.elapsed().as_secs_f64() * 1e3;
            // SQS's redrive policy dead-letters a message received too often.
            let fate = match Disposition::of(&result, 0, None) {
                Disposition::Done => Fate::Done,
                Disposition::RetryAfter(_) => {
                    let e = result.expect_err("only a failure is retried");
                    tracing::warn!(error = %e, "failed; SQS will deliver it again");
                    Fate::Retry(e)
                }
                Disposition::DeadLetter => {
                    let e = result.expect_err("only a failure is dead-lettered");
                    self.dead_letter(r, e).await
                }
            };
            let mut m = Record::new(self.stage.as_str())
                .metric("Duration", Unit::Milliseconds, elapsed)
                .property("message_id", id);
            if let Fate::Retry(e) | Fate::DeadLettered(e) = &fate {
                m = m
                    .dimension("ErrorKind", &e.kind().to_string())
                    .metric("Failures", Unit::Count, 1.0)
                    .property("error", e.to_string());
            }
            m.emit();
            fate
        }
        .instrument(span)
        .await
    }

    /// Handles one body and sends its results on.
    async fn run(&self, body: &str) -> Result<()> {
        let outcome = self.stages.handle(self.stage, body).await?;
        for note in &outcome.notes {
            self.report(note);
        }
        for message in outcome.next {
            let to = message.body.stage();
            let queue = self.next.get(&to).ok_or_else(|| {
                Error::Config(format!(
                    "the {} service has no queue for the {to} stage: set {}",
                    self.stage,
                    crate::settings::queue_var(to)
                ))
            })?;
            // A failure here redelivers the record; the stages downstream are idempotent per
            // batch, so a message sent twice changes nothing.
            queue.send(&message.to_json()).await?;
        }
        Ok(())
    }

    fn report(&self, note: &Note) {
        let stage = self.stage.as_str();
        match note {
            Note::Landed {
                key,
                bronze,
                rows,
                bytes,
            } => {
                tracing::info!(key, table = bronze, rows, bytes, "landed");
                Record::new(stage)
                    .dimension("Table", bronze)
                    .metric("FilesLanded", Unit::Count, 1.0)
                    .metric("RowsIn", Unit::Count, *rows as f64)
                    .metric("BytesIn", Unit::Bytes, *bytes as f64)
                    .emit();
            }
            Note::Staged { table, rows } => {
                tracing::info!(table, rows, "staged");
                Record::new(stage)
                    .dimension("Table", table)
                    .metric("RowsOut", Unit::Count, *rows as f64)
                    .emit();
            }
            Note::Quarantined {
                key,
                report,
                problems,
            } => {
                tracing::warn!(key, report, problems = problems.len(), "quarantined");
                Record::new(stage)
                    .metric("FilesQuarantined", Unit::Count, 1.0)
                    .property("key", key.as_str())
                    .emit();
            }
            Note::Progress(line) => tracing::info!("{line}"),
            Note::Built { table, rows } => {
                tracing::info!(table, rows, "model built and staged");
                Record::new(stage)
                    .dimension("Table", table)
                    .metric("ModelsBuilt", Unit::Count, 1.0)
                    .metric("RowsOut", Unit::Count, *rows as f64)
                    .emit();
            }
            Note::ModelFailed { model, why } => {
                tracing::error!(model, why, "model not built");
                Record::new(stage)
                    .dimension("Table", model)
                    .metric("ModelsFailed", Unit::Count, 1.0)
                    .emit();
            }
            Note::Published { table, snapshot_id } => {
                tracing::info!(table, snapshot_id, "published");
                Record::new(stage)
                    .dimension("Table", table)
                    .metric("Published", Unit::Count, 1.0)
                    .emit();
            }
            Note::Rejected { table, why } => {
                tracing::warn!(table, why, "rejected");
                Record::new(stage)
                    .dimension("Table", table)
                    .metric("Rejected", Unit::Count, 1.0)
                    .emit();
            }
        }
    }

    async fn dead_letter(&self, r: &SqsMessage, e: Error) -> Fate {
        let Some((dlq_url, dlq)) = &self.dead_letters else {
            tracing::error!(error = %e, "permanent failure; no FLOE_DLQ_URL, so SQS dead-letters it after maxReceiveCount");
            return Fate::Retry(e);
        };
        let body = r.body.clone().unwrap_or_default();
        if let Err(send) = dlq.send(&body).await {
            tracing::error!(error = %e, dlq_error = %send, "permanent failure; the DLQ refused it, delivering again");
            return Fate::Retry(e);
        }
        tracing::error!(error = %e, "permanent failure; moved to the dead-letter queue");
        floe_pipeline::ledger::record_dead_letter(
            self.stages.lake.as_ref(),
            &self.stages.project,
            self.stage.as_str(),
            &body,
            &e.to_string(),
            self.clock.now(),
        )
        .await;
        let event = failed_event(
            self.stage,
            &e,
            dlq_url,
            r.message_id.as_deref(),
            self.clock.now(),
        );
        if let Err(emit) = self.events.emit(event).await {
            tracing::error!(error = %emit, "could not emit floe.failed");
        }
        Fate::DeadLettered(e)
    }
}

/// Opens the lake the settings name.
pub async fn open_lake(
    engine: &Engine,
    clients: &Clients,
    price_per_tb_usd: f64,
) -> anyhow::Result<Arc<dyn Lake>> {
    match engine {
        Engine::Local { lake_dir } => {
            let lake = floe_lake::LocalLake::open(lake_dir)
                .await
                .with_context(|| format!("opening the lake at {}", lake_dir.display()))?;
            Ok(Arc::new(lake))
        }
        Engine::Athena {
            workgroup,
            lake_location,
            output_location,
            database_prefix,
            query_timeout,
            max_concurrent_queries,
        } => {
            let mut athena = floe_aws::athena::Athena::new(clients.athena.clone(), workgroup)
                .with_price_per_tb(price_per_tb_usd);
            if let Some(out) = output_location {
                athena = athena.with_output_location(out);
            }
            if let Some(timeout) = query_timeout {
                athena = athena.with_pacing(floe_aws::athena::Pacing {
                    timeout: *timeout,
                    ..Default::default()
                });
            }
            if let Some(n) = max_concurrent_queries {
                athena = athena.with_max_concurrent_queries(*n);
            }
            let lake = floe_aws::lake::AthenaLake::new(
                athena,
                clients.glue.clone(),
                clients.s3.clone(),
                lake_location,
            )?
            .with_database_prefix(database_prefix);
            Ok(Arc::new(lake))
        }
    }
}

/// Logs as JSON lines (Lambda's structured logging), filtered by `RUST_LOG` (default `info`).
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_current_span(true)
        .with_target(false)
        .without_time()
        .try_init();
}

/// The whole `main` of a stage's Lambda function: logging, settings (every problem reported at
/// once), clients built once, then the Lambda runtime loop.
pub async fn run_lambda(stage: Stage) -> Result<(), lambda_runtime::Error> {
    init_logging();
    let settings = Settings::from_env(stage)?;
    let service = Service::from_settings(&settings).await?;
    let service = &service;
    lambda_runtime::run(lambda_runtime::service_fn(
        move |event: lambda_runtime::LambdaEvent<SqsEvent>| async move {
            Ok::<_, std::convert::Infallible>(service.handle(event.payload).await)
        },
    ))
    .await
}
