//! Opening what a project's verbs work on, in one place: its lake and event sink (the embedded
//! lake and `.floe/events.jsonl`, or Athena and EventBridge), and its AWS clients.

use std::sync::Arc;

use anyhow::{Context, Result};
use floe_aws::clients::{Clients, Connection};
use floe_config::{AthenaSettings, Project};
use floe_core::ports::Lake;
use floe_lake::LocalLake;
use floe_local::runtime::state_dir;

/// The project's embedded lake (`lake_dir`), for the verbs of the local world.
pub async fn local_lake(project: &Project) -> Result<LocalLake> {
    Ok(LocalLake::open(&project.settings.lake_dir).await?)
}

/// The lake and the event sink of a project: the embedded lake and `.floe/events.jsonl`, or
/// (`engine: athena`) the lake on Athena and EventBridge's default bus, with the `athena:`
/// settings of floe.yaml and the usual AWS credentials.
pub async fn open(
    project: &Project,
) -> Result<(Arc<dyn Lake>, Arc<dyn floe_core::ports::EventSink>)> {
    match project.settings.engine {
        floe_config::Engine::Local => {
            let lake = local_lake(project).await?;
            let events =
                floe_local::events::EventLog::new(&state_dir(&project.root).join("events.jsonl"));
            Ok((Arc::new(lake), Arc::new(events)))
        }
        floe_config::Engine::Athena => {
            let s = settings(project)?;
            let clients = clients(project).await?;
            let lake = floe_lambda::service::open_lake(
                &floe_lambda::settings::Engine::Athena {
                    workgroup: s.workgroup.clone(),
                    lake_location: s.lake_location.clone(),
                    output_location: Some(s.output_location.clone()),
                    database_prefix: s.database_prefix.clone(),
                    query_timeout: None,
                    max_concurrent_queries: Some(project.settings.concurrency as usize),
                },
                &clients,
                s.price_per_tb_usd,
            )
            .await?;
            let events =
                floe_aws::eventbridge::EventBridgeSink::new(clients.eventbridge.clone(), "default");
            Ok((lake, Arc::new(events)))
        }
    }
}

/// The project's AWS settings.
pub fn settings(project: &Project) -> Result<&AthenaSettings> {
    project.settings.athena.as_ref().with_context(|| {
        format!(
            "{}: the AWS verbs need an `athena:` section (region, landing_bucket, ...)",
            project.root.join(floe_config::PROJECT_FILE).display()
        )
    })
}

/// Clients for the project's account and region.
pub async fn clients(project: &Project) -> Result<Clients> {
    let s = settings(project)?;
    let endpoint_url = std::env::var("FLOE_AWS_ENDPOINT_URL")
        .ok()
        .filter(|v| !v.is_empty())
        .or_else(|| s.endpoint_url.clone());
    Ok(Connection {
        region: s.region.clone(),
        endpoint_url,
        static_credentials: None,
    }
    .clients()
    .await)
}
