//! The verbs that talk to a deployed pipeline (`engine: athena`): land uploads to the landing
//! bucket, inject puts a message on a queue or an event on a bus, redrive moves dead letters
//! back. The endpoint comes from `FLOE_AWS_ENDPOINT_URL`, else `athena.endpoint_url`, else AWS;
//! credentials from the usual chain (environment, profile, SSO-less roles).

use std::path::Path;

use anyhow::{Context, Result, bail};
use chrono::{DateTime, Utc};
use floe_aws::clients::Clients;
use floe_aws::eventbridge::EventBridgeSink;
use floe_aws::s3::S3Store;
use floe_aws::sqs::SqsQueue;
use floe_config::Project;
use floe_core::BatchId;
use floe_core::ports::{ObjectStore, Queue};
use floe_pipeline::landing::landing_key;

pub use crate::connect::{clients, settings};

/// Uploads a file to the landing bucket under its landing key.
pub async fn land(project: &Project, file: &Path, table: &str, ts: DateTime<Utc>) -> Result<()> {
    let config = project.table(table)?;
    let s = settings(project)?;
    let bytes = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    let name = file
        .file_name()
        .and_then(|n| n.to_str())
        .with_context(|| format!("{} has no file name", file.display()))?;
    let key = landing_key(&config.source, &config.name, ts, name);
    let store = S3Store::new(clients(project).await?.s3, &s.landing_bucket);
    let object = store.put(&key, bytes).await?;
    println!(
        "landed {} as s3://{}/{} (batch {})",
        file.display(),
        s.landing_bucket,
        object.key,
        BatchId::for_object(&object)
    );
    println!(
        "the landing service picks it up from the bucket's event; `floe.published` or \
         `floe.quarantined` on the event bus says how it went"
    );
    Ok(())
}

/// What `--to` names.
enum Target {
    Queue(String),
    Bus(String),
}

fn target(to: &str) -> Target {
    match to.strip_prefix("bus:") {
        Some(bus) => Target::Bus(if bus.is_empty() { "default" } else { bus }.to_owned()),
        None => Target::Queue(to.to_owned()),
    }
}

/// The events in a file: one JSON value, a JSON array of them, or JSON lines.
pub fn read_events(file: &Path) -> Result<Vec<serde_json::Value>> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    if let Ok(v) = serde_json::from_str::<serde_json::Value>(&text) {
        return Ok(match v {
            serde_json::Value::Array(items) => items,
            v => vec![v],
        });
    }
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            serde_json::from_str(l).with_context(|| {
                format!(
                    "{}:{}: not JSON (a file holds one JSON value, an array, or one value per line)",
                    file.display(),
                    i + 1
                )
            })
        })
        .collect()
}

async fn queue(clients: &Clients, name_or_url: &str) -> Result<SqsQueue> {
    if name_or_url.starts_with("http://") || name_or_url.starts_with("https://") {
        return Ok(SqsQueue::new(clients.sqs.clone(), name_or_url));
    }
    SqsQueue::named(clients.sqs.clone(), name_or_url)
        .await
        .with_context(|| format!("no SQS queue named '{name_or_url}' (give its name or URL)"))
}

/// Puts a message on the stack's queue of `stage` (`<stack>-<stage>`).
pub async fn send_to_stage(project: &Project, stage: &str, body: &str) -> Result<()> {
    let s = settings(project)?;
    let clients = clients(project).await?;
    queue(&clients, &format!("{}-{stage}", s.stack))
        .await?
        .send(body)
        .await?;
    Ok(())
}

/// Puts the file's events on a queue (name or URL) or an event bus (`bus:NAME`).
pub async fn inject(project: &Project, file: &Path, to: &str) -> Result<()> {
    let events = read_events(file)?;
    let clients = clients(project).await?;
    match target(to) {
        Target::Queue(q) => {
            let queue = queue(&clients, &q).await?;
            for e in &events {
                let id = queue.send(&e.to_string()).await?;
                println!("sent message {id} to {}", queue.url());
            }
        }
        Target::Bus(bus) => {
            let sink = EventBridgeSink::new(clients.eventbridge.clone(), &bus);
            for (i, e) in events.iter().enumerate() {
                let field = |k: &str| {
                    e.get(k).with_context(|| {
                        format!(
                            "{} event {}: no `{k}` (an EventBridge event needs source, \
                             detail-type and detail)",
                            file.display(),
                            i + 1
                        )
                    })
                };
                let source = field("source")?.as_str().unwrap_or_default().to_owned();
                let detail_type = field("detail-type")?
                    .as_str()
                    .unwrap_or_default()
                    .to_owned();
                let detail = field("detail")?.to_string();
                sink.put_raw(&source, &detail_type, &detail).await?;
                println!("put {detail_type} from {source} on bus {bus}");
            }
        }
    }
    Ok(())
}

/// Moves a queue's dead letters back: `q` is the queue (its DLQ comes from its RedrivePolicy)
/// or the DLQ itself when it is named `<queue>-dlq`.
pub async fn redrive(project: &Project, q: &str) -> Result<()> {
    let clients = clients(project).await?;
    let named = queue(&clients, q).await?;
    let (from, to) = match named.dead_letter_arn().await? {
        Some(arn) => {
            let dlq_name = arn.rsplit(':').next().unwrap_or_default();
            (queue(&clients, dlq_name).await?, named)
        }
        None => {
            let Some(source) = q.rsplit('/').next().and_then(|n| n.strip_suffix("-dlq")) else {
                bail!(
                    "{q} has no RedrivePolicy and is not named <queue>-dlq: name the stage queue \
                     whose dead letters to move back"
                );
            };
            (named, queue(&clients, source).await?)
        }
    };
    let moved = from
        .move_all_to(&to, |n| eprintln!("  moved {n} so far"))
        .await?;
    println!(
        "moved {moved} message(s) from {} back to {}",
        from.url(),
        to.url()
    );
    Ok(())
}

/// Checks that the project's stack has its stage queues, before anything is uploaded for
/// `floe land --wait` (which then runs the services in-process on them).
pub async fn check_stack(project: &Project) -> Result<()> {
    let s = settings(project)?;
    let clients = clients(project).await?;
    for stage in floe_core::Stage::ALL {
        queue(&clients, &format!("{}-{stage}", s.stack))
            .await
            .with_context(|| {
                format!(
                    "the {stage} queue of stack {} (athena.stack in floe.yaml; scripts/aws-local.sh \
                     up PROJECT_DIR makes it on the stand-in); nothing was uploaded",
                    s.stack
                )
            })?;
    }
    Ok(())
}

/// `floe up` on an Athena project: the four stage services run in this process against the
/// stack's queues (`<stack>-<stage>`), fed as Lambda's event source mappings feed the deployed
/// functions (batches of up to ten, partial batch failures, dead letters moved at once) — the
/// same service code. With `once`, it returns when every queue is empty and nothing is in
/// flight, and fails if anything was dead-lettered.
pub async fn up(project: &Project, once: bool, interval: f64) -> Result<()> {
    use floe_core::Stage;
    use floe_lambda::poller::poll_once;
    use floe_lambda::service::Service;
    use std::collections::BTreeMap;
    use std::time::Duration;

    let s = settings(project)?;
    let clients = clients(project).await?;
    let (lake, _) = crate::connect::open(project).await?;
    let named =
        |stage: Stage, dlq: bool| format!("{}-{stage}{}", s.stack, if dlq { "-dlq" } else { "" });
    let mut services = BTreeMap::new();
    let mut queues = BTreeMap::new();
    let mut dlqs = BTreeMap::new();
    for stage in Stage::ALL {
        let q = queue(&clients, &named(stage, false)).await.with_context(|| {
            format!(
                "the {stage} queue of stack {} (athena.stack in floe.yaml; scripts/aws-local.sh \
                 up PROJECT_DIR makes it on the stand-in)",
                s.stack
            )
        })?;
        let dlq = queue(&clients, &named(stage, true)).await?;
        let mut next_queues = BTreeMap::new();
        for next in floe_lambda::settings::next_stages(stage) {
            next_queues.insert(
                *next,
                queue(&clients, &named(*next, false))
                    .await?
                    .url()
                    .to_owned(),
            );
        }
        let settings = floe_lambda::settings::Settings {
            stage,
            region: s.region.clone(),
            endpoint_url: None,
            project_dir: project.root.clone(),
            landing_bucket: s.landing_bucket.clone(),
            quarantine_bucket: s.quarantine_bucket.clone(),
            event_bus: "default".into(),
            next_queues,
            dlq_url: Some(dlq.url().to_owned()),
            engine: floe_lambda::settings::Engine::Athena {
                workgroup: s.workgroup.clone(),
                lake_location: s.lake_location.clone(),
                output_location: Some(s.output_location.clone()),
                database_prefix: s.database_prefix.clone(),
                query_timeout: None,
                max_concurrent_queries: None,
            },
            batch_concurrency: 2,
            price_per_tb_usd: s.price_per_tb_usd,
        };
        services.insert(
            stage,
            Service::with_clients(&settings, project.clone(), lake.clone(), &clients),
        );
        queues.insert(stage, q);
        dlqs.insert(stage, dlq);
    }
    println!(
        "floe up: the stage services of stack {} on Athena (workgroup {}), polling its queues",
        s.stack, s.workgroup
    );
    let dead_before = dead_letters(&dlqs).await?;
    loop {
        let mut handled = 0;
        for stage in Stage::ALL {
            // A failed record comes back after this, as after a Lambda's visibility timeout.
            let p = poll_once(&queues[&stage], &services[&stage], Duration::from_secs(30)).await?;
            if p.received > 0 {
                println!(
                    "  {stage}: {} record(s){}",
                    p.received,
                    if p.failed.is_empty() {
                        String::new()
                    } else {
                        format!(", {} to be retried", p.failed.len())
                    }
                );
            }
            handled += p.received;
        }
        if handled > 0 {
            continue;
        }
        if once {
            let mut busy = 0;
            for q in queues.values() {
                let (waiting, in_flight) = q.depth().await?;
                busy += waiting + in_flight;
            }
            if busy == 0 {
                let dead = dead_letters(&dlqs).await?;
                let new: Vec<String> = dead
                    .iter()
                    .filter(|(stage, n)| **n > dead_before.get(*stage).copied().unwrap_or(0))
                    .map(|(stage, n)| format!("{} ({n})", named(*stage, true)))
                    .collect();
                if !new.is_empty() {
                    bail!(
                        "dead-lettered: {}; see floe.failed on the event bus, fix the cause, \
                         then `floe redrive --queue <queue>`",
                        new.join(", ")
                    );
                }
                println!("floe up: every queue is empty");
                return Ok(());
            }
        }
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {
                println!("stopping");
                return Ok(());
            }
            _ = tokio::time::sleep(Duration::from_secs_f64(interval.max(0.1))) => {}
        }
    }
}

async fn dead_letters(
    dlqs: &std::collections::BTreeMap<floe_core::Stage, SqsQueue>,
) -> Result<std::collections::BTreeMap<floe_core::Stage, u64>> {
    let mut out = std::collections::BTreeMap::new();
    for (stage, q) in dlqs {
        let (waiting, in_flight) = q.depth().await?;
        out.insert(*stage, waiting + in_flight);
    }
    Ok(out)
}

/// The objects under `landing/` in the project's landing bucket (for `floe files`).
pub async fn landing_objects(project: &Project) -> Result<Vec<floe_core::ObjectRef>> {
    let s = settings(project)?;
    let store = S3Store::new(clients(project).await?.s3, &s.landing_bucket);
    Ok(store.list(floe_pipeline::landing::LANDING_PREFIX).await?)
}
