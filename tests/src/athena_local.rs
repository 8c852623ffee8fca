//! The Athena stand-in (`scripts/aws-local.sh`): moto with Athena's API run on Trino.
//!
//! `FLOE_ATHENA_ENDPOINT` names it (scripts/test.sh starts one for the whole run; by hand:
//! `scripts/aws-local.sh up` and `FLOE_ATHENA_ENDPOINT=$AWS_ENDPOINT_URL`). Trino takes half a
//! minute to start and most of a GiB, so tests never start their own: without the stand-in a
//! test says SKIPPED, or fails when `FLOE_REQUIRE_ATHENA=1` (as in CI). The endpoint is a moto
//! server too, so the AWS world of [`crate::aws`] can live on it.

use std::sync::Arc;
use std::time::Duration;

use floe_aws::athena::{Athena, Pacing};
use floe_aws::clients::{Clients, Connection};
use floe_aws::lake::AthenaLake;

use crate::aws::{Moto, REGION, create_bucket};

/// The stand-in's endpoint.
#[derive(Debug, Clone)]
pub struct StandIn {
    /// `http://127.0.0.1:PORT`: S3, SQS, EventBridge, Glue and Athena.
    pub endpoint: String,
}

impl StandIn {
    /// The running stand-in, or `None` after saying the test is skipped.
    pub fn or_skip(test: &str) -> Option<StandIn> {
        match std::env::var("FLOE_ATHENA_ENDPOINT") {
            Ok(endpoint) if !endpoint.is_empty() => Some(StandIn { endpoint }),
            _ if std::env::var("FLOE_REQUIRE_ATHENA").as_deref() == Ok("1") => panic!(
                "{test}: FLOE_ATHENA_ENDPOINT is not set but FLOE_REQUIRE_ATHENA=1: start the \
                 stand-in with scripts/aws-local.sh up"
            ),
            _ => {
                eprintln!(
                    "SKIPPED {test}: no Athena stand-in (scripts/aws-local.sh up, then \
                     FLOE_ATHENA_ENDPOINT=$AWS_ENDPOINT_URL)"
                );
                None
            }
        }
    }

    /// The stand-in seen as a moto server (it is one).
    pub fn moto(&self) -> Moto {
        Moto::at(&self.endpoint)
    }

    /// A connection to it.
    pub fn connection(&self) -> Connection {
        Connection::stand_in(&self.endpoint, REGION)
    }

    /// Pacing for tests: quick polls, a generous timeout for a loaded 2-core machine.
    pub fn pacing() -> Pacing {
        Pacing {
            first_poll: Duration::from_millis(20),
            max_poll: Duration::from_millis(250),
            timeout: Duration::from_secs(240),
            attempts: 6,
            first_backoff: Duration::from_millis(100),
        }
    }

    /// A fresh lake: its own warehouse bucket, results bucket and workgroup.
    pub async fn lake(&self) -> LakeWorld {
        let clients = self.connection().clients().await;
        let prefix = format!("t{}", &uuid::Uuid::new_v4().simple().to_string()[..10]);
        let lake_bucket = format!("{prefix}-lake");
        let results_bucket = format!("{prefix}-results");
        create_bucket(&clients, &lake_bucket).await;
        create_bucket(&clients, &results_bucket).await;
        let workgroup = prefix.clone();
        clients
            .athena
            .create_work_group()
            .name(&workgroup)
            .configuration(
                aws_sdk_athena::types::WorkGroupConfiguration::builder()
                    .result_configuration(
                        aws_sdk_athena::types::ResultConfiguration::builder()
                            .output_location(format!("s3://{results_bucket}/athena/"))
                            .build(),
                    )
                    .enforce_work_group_configuration(true)
                    .build(),
            )
            .send()
            .await
            .expect("workgroup");
        let lake = self.open(&clients, &workgroup, &lake_bucket);
        LakeWorld {
            lake: Arc::new(lake),
            clients,
            prefix,
            workgroup,
            lake_bucket,
        }
    }

    /// Another handle on a lake (another process, as far as the lake can tell).
    pub fn open(&self, clients: &Clients, workgroup: &str, lake_bucket: &str) -> AthenaLake {
        let athena = Athena::new(clients.athena.clone(), workgroup).with_pacing(Self::pacing());
        AthenaLake::new(
            athena,
            clients.glue.clone(),
            clients.s3.clone(),
            &format!("s3://{lake_bucket}/warehouse"),
        )
        .expect("lake location")
    }
}

/// A lake on the stand-in with its own buckets and workgroup.
#[derive(Debug)]
pub struct LakeWorld {
    /// The lake.
    pub lake: Arc<AthenaLake>,
    /// The clients.
    pub clients: Clients,
    /// The random prefix of every name (use it in namespaces: Glue is shared by all tests).
    pub prefix: String,
    /// The workgroup.
    pub workgroup: String,
    /// The warehouse bucket.
    pub lake_bucket: String,
}
