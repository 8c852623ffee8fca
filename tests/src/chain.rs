//! The four stage services over a world's SQS queues, driven as Lambda's event source mappings
//! drive the deployed functions (`floe_aws::poller`), on the embedded lake or on Athena.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use floe_config::Project;
use floe_core::Stage;
use floe_core::ports::{Lake, ObjectStore};
use floe_lambda::poller::poll_once;
use floe_lambda::service::Service;
use floe_lambda::settings::Engine;

use crate::athena_local::LakeWorld;
use crate::aws::AwsWorld;

/// The services of one project, each fed from its stage queue in `world`.
#[allow(missing_debug_implementations)]
pub struct Chain {
    /// The queues, buckets and bus.
    pub world: AwsWorld,
    /// The lake every service writes.
    pub lake: Arc<dyn Lake>,
    /// The services by stage.
    pub services: BTreeMap<Stage, Service>,
}

/// The settings of services on Athena in `lake`'s workgroup.
pub fn athena_engine(lake: &LakeWorld) -> Engine {
    Engine::Athena {
        workgroup: lake.workgroup.clone(),
        lake_location: format!("s3://{}/warehouse", lake.lake_bucket),
        output_location: None,
        database_prefix: String::new(),
        query_timeout: None,
        max_concurrent_queries: Some(4),
    }
}

/// The lake of a chain and its engine's settings: Athena on the stand-in, or the embedded lake
/// in `project_dir/lake`.
pub async fn lake_for(
    stand_in: &crate::athena_local::StandIn,
    athena: bool,
    project_dir: &Path,
) -> (Arc<dyn Lake>, Option<Engine>) {
    if athena {
        let w = stand_in.lake().await;
        let engine = athena_engine(&w);
        (w.lake, Some(engine))
    } else {
        let local = floe_lake::LocalLake::open(&project_dir.join("lake"))
            .await
            .expect("the embedded lake opens");
        (Arc::new(local), None)
    }
}

impl Chain {
    /// The services of the project in `project_dir` on `lake`; `athena` names the engine's
    /// settings when the lake is on Athena (the embedded lake lives in `project_dir/lake`).
    pub fn new(
        world: AwsWorld,
        project_dir: &Path,
        lake: Arc<dyn Lake>,
        athena: Option<Engine>,
        with_dlq: bool,
    ) -> Chain {
        let mut services = BTreeMap::new();
        for stage in Stage::ALL {
            let mut settings =
                world.settings(stage, project_dir, &project_dir.join("lake"), with_dlq);
            if let Some(engine) = &athena {
                settings.engine = engine.clone();
            }
            let project = Project::load(project_dir).expect("the test project loads");
            services.insert(
                stage,
                Service::with_clients(&settings, project, lake.clone(), &world.clients),
            );
        }
        Chain {
            world,
            lake,
            services,
        }
    }

    /// The same chain with the project loaded again from `project_dir` (after its config
    /// changed), as redeployed services would load it.
    pub fn reload(self, project_dir: &Path, athena: Option<Engine>) -> Chain {
        Chain::new(self.world, project_dir, self.lake, athena, true)
    }

    /// Puts an object into the landing bucket.
    pub async fn put(&self, key: &str, body: &str) {
        let store =
            floe_aws::s3::S3Store::new(self.world.clients.s3.clone(), &self.world.landing_bucket);
        store
            .put(key, body.as_bytes().to_vec())
            .await
            .expect("landing put");
    }

    /// Polls every stage queue until all are empty and nothing is in flight; panics on a
    /// record a service reports as failed, or after `limit`.
    pub async fn run_until_quiet(&self, limit: Duration) {
        let deadline = Instant::now() + limit;
        loop {
            let mut handled = 0;
            for stage in Stage::ALL {
                let p = poll_once(
                    self.world.queue(stage),
                    &self.services[&stage],
                    Duration::from_secs(30),
                )
                .await
                .expect("poll");
                assert!(
                    p.failed.is_empty(),
                    "{stage}: failed records {:?}",
                    p.failed
                );
                handled += p.received;
            }
            if handled == 0 {
                let mut busy = 0;
                for stage in Stage::ALL {
                    let (waiting, in_flight) =
                        self.world.queue(stage).depth().await.expect("depth");
                    busy += waiting + in_flight;
                }
                if busy == 0 {
                    return;
                }
            }
            assert!(
                Instant::now() < deadline,
                "the chain did not go quiet in {limit:?}"
            );
        }
    }
}
