//! A moto server on 127.0.0.1 and a freshly named set of AWS resources on it: the landing and
//! quarantine buckets (landing announces objects to EventBridge), one queue per stage with its
//! dead-letter queue, the EventBridge rule from the landing bucket to the landing queue, and a
//! queue that receives floe's own `floe.*` events so tests can read them.
//!
//! The server is `FLOE_MOTO_ENDPOINT` when set (scripts/test.sh starts one for the whole run);
//! otherwise each test starts its own from the venv. Without moto a test says SKIPPED, or fails
//! when `FLOE_REQUIRE_MOTO=1` (as in CI).

use std::collections::BTreeMap;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aws_sdk_sqs::types::QueueAttributeName;
use floe_aws::clients::{Clients, Connection};
use floe_aws::sqs::SqsQueue;
use floe_core::Stage;
use floe_lambda::settings::{Engine, Settings};
use serde_json::json;

/// The region every test uses.
pub const REGION: &str = "eu-west-2";

/// A moto server (stopped on drop when this process started it).
#[derive(Debug)]
pub struct Moto {
    /// Its endpoint, `http://127.0.0.1:PORT`.
    pub endpoint: String,
    child: Option<Child>,
}

impl Drop for Moto {
    fn drop(&mut self) {
        if let Some(c) = &mut self.child {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn moto_server_path() -> PathBuf {
    std::env::var_os("FLOE_MOTO_SERVER")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/moto_server"))
}

impl Moto {
    /// A server someone else runs (the Athena stand-in is one).
    pub fn at(endpoint: &str) -> Moto {
        Moto {
            endpoint: endpoint.to_owned(),
            child: None,
        }
    }

    /// The shared server, or a new one, or `None` after saying the test is skipped.
    pub fn start_or_skip(test: &str) -> Option<Moto> {
        if let Ok(endpoint) = std::env::var("FLOE_MOTO_ENDPOINT") {
            return Some(Moto {
                endpoint,
                child: None,
            });
        }
        match Self::start() {
            Ok(m) => Some(m),
            Err(why) if std::env::var("FLOE_REQUIRE_MOTO").as_deref() == Ok("1") => {
                panic!("{test}: {why}")
            }
            Err(why) => {
                eprintln!("SKIPPED {test}: {why}");
                None
            }
        }
    }

    fn start() -> Result<Moto, String> {
        let path = moto_server_path();
        if !path.exists() {
            return Err(format!(
                "no moto_server at {} (run scripts/setup.sh, or set FLOE_MOTO_SERVER)",
                path.display()
            ));
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| format!("no free port: {e}"))?
            .port();
        let child = Command::new(&path)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", path.display()))?;
        let moto = Moto {
            endpoint: format!("http://127.0.0.1:{port}"),
            child: Some(child),
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if Instant::now() > deadline {
                return Err(format!("moto_server did not listen on {port} within 20 s"));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(moto)
    }

    /// A connection to it.
    pub fn connection(&self) -> Connection {
        Connection::stand_in(&self.endpoint, REGION)
    }
}

/// A stage queue and its dead-letter queue.
#[derive(Debug, Clone)]
pub struct StageQueues {
    /// The queue.
    pub queue: SqsQueue,
    /// Its dead-letter queue.
    pub dlq: SqsQueue,
}

/// One test's AWS resources, all named with a random prefix.
#[derive(Debug)]
pub struct AwsWorld {
    /// The connection (moto).
    pub connection: Connection,
    /// The clients.
    pub clients: Clients,
    /// The random prefix of every name.
    pub prefix: String,
    /// The landing bucket.
    pub landing_bucket: String,
    /// The quarantine bucket.
    pub quarantine_bucket: String,
    /// The event bus floe emits to.
    pub bus: String,
    /// Queues by stage.
    pub queues: BTreeMap<Stage, StageQueues>,
    /// Receives every `floe.*` event of this world's bus.
    pub floe_events: SqsQueue,
}

/// How the stage queues behave.
#[derive(Debug, Clone, Copy)]
pub struct QueuePolicy {
    /// Receives before SQS moves a message to the DLQ.
    pub max_receives: u32,
    /// The visibility timeout, in seconds.
    pub visibility_secs: u32,
}

impl Default for QueuePolicy {
    fn default() -> Self {
        QueuePolicy {
            max_receives: 3,
            visibility_secs: 30,
        }
    }
}

impl AwsWorld {
    /// Creates the resources on `moto`.
    pub async fn create(moto: &Moto, policy: QueuePolicy) -> AwsWorld {
        let connection = moto.connection();
        let clients = connection.clients().await;
        let prefix = format!("t{}", &uuid::Uuid::new_v4().simple().to_string()[..10]);
        let landing_bucket = format!("{prefix}-landing");
        let quarantine_bucket = format!("{prefix}-quarantine");
        for b in [&landing_bucket, &quarantine_bucket] {
            create_bucket(&clients, b).await;
        }
        clients
            .s3
            .put_bucket_notification_configuration()
            .bucket(&landing_bucket)
            .notification_configuration(
                aws_sdk_s3::types::NotificationConfiguration::builder()
                    .event_bridge_configuration(
                        aws_sdk_s3::types::EventBridgeConfiguration::builder().build(),
                    )
                    .build(),
            )
            .send()
            .await
            .expect("landing announces to EventBridge");

        let mut queues = BTreeMap::new();
        for stage in Stage::ALL {
            let dlq = create_queue(&clients, &format!("{prefix}-{stage}-dlq"), &[]).await;
            let redrive = json!({
                "deadLetterTargetArn": dlq.arn().await.expect("dlq arn"),
                "maxReceiveCount": policy.max_receives.to_string(),
            })
            .to_string();
            let queue = create_queue(
                &clients,
                &format!("{prefix}-{stage}"),
                &[
                    (QueueAttributeName::RedrivePolicy, redrive),
                    (
                        QueueAttributeName::VisibilityTimeout,
                        policy.visibility_secs.to_string(),
                    ),
                ],
            )
            .await;
            queues.insert(stage, StageQueues { queue, dlq });
        }

        // S3 -> EventBridge (default bus) -> landing queue, for this bucket's landing/ keys.
        let rule = format!("{prefix}-landing");
        clients
            .eventbridge
            .put_rule()
            .name(&rule)
            .event_pattern(
                json!({
                    "source": ["aws.s3"],
                    "detail-type": ["Object Created"],
                    "detail": {"bucket": {"name": [landing_bucket]}, "object": {"key": [{"prefix": "landing/"}]}}
                })
                .to_string(),
            )
            .send()
            .await
            .expect("rule");
        target(&clients, &rule, None, &queues[&Stage::Landing].queue).await;

        // floe's own events go to a bus of this world's, and from there to a queue to read.
        let bus = format!("{prefix}-bus");
        clients
            .eventbridge
            .create_event_bus()
            .name(&bus)
            .send()
            .await
            .expect("bus");
        let floe_events = create_queue(&clients, &format!("{prefix}-floe-events"), &[]).await;
        let events_rule = format!("{prefix}-floe-events");
        clients
            .eventbridge
            .put_rule()
            .name(&events_rule)
            .event_bus_name(&bus)
            .event_pattern(json!({"source": ["floe"]}).to_string())
            .send()
            .await
            .expect("events rule");
        target(&clients, &events_rule, Some(&bus), &floe_events).await;

        AwsWorld {
            connection,
            clients,
            prefix,
            landing_bucket,
            quarantine_bucket,
            bus,
            queues,
            floe_events,
        }
    }

    /// A stage's queue.
    pub fn queue(&self, stage: Stage) -> &SqsQueue {
        &self.queues[&stage].queue
    }

    /// A stage's dead-letter queue.
    pub fn dlq(&self, stage: Stage) -> &SqsQueue {
        &self.queues[&stage].dlq
    }

    /// The settings a stage's service would read from its environment here, on the embedded
    /// lake at `lake_dir`; `with_dlq` sets FLOE_DLQ_URL (permanent failures dead-lettered at once).
    pub fn settings(
        &self,
        stage: Stage,
        project_dir: &Path,
        lake_dir: &Path,
        with_dlq: bool,
    ) -> Settings {
        Settings {
            stage,
            region: REGION.into(),
            endpoint_url: self.connection.endpoint_url.clone(),
            project_dir: project_dir.to_owned(),
            landing_bucket: self.landing_bucket.clone(),
            quarantine_bucket: self.quarantine_bucket.clone(),
            event_bus: self.bus.clone(),
            next_queues: floe_lambda::settings::next_stages(stage)
                .iter()
                .map(|s| (*s, self.queue(*s).url().to_owned()))
                .collect(),
            dlq_url: with_dlq.then(|| self.dlq(stage).url().to_owned()),
            engine: Engine::Local {
                lake_dir: lake_dir.to_owned(),
            },
            batch_concurrency: 4,
            price_per_tb_usd: 5.0,
        }
    }

    /// Every `floe.*` event received so far (consumed), as (detail-type, detail).
    pub async fn take_floe_events(&self) -> Vec<(String, serde_json::Value)> {
        use floe_core::ports::Queue;
        let mut out = Vec::new();
        loop {
            let batch = self
                .floe_events
                .receive(10, Duration::from_secs(30))
                .await
                .expect("receive events");
            if batch.is_empty() {
                return out;
            }
            for d in batch {
                let v: serde_json::Value = serde_json::from_str(&d.body).expect("an event is JSON");
                out.push((
                    v["detail-type"].as_str().unwrap_or_default().to_owned(),
                    v["detail"].clone(),
                ));
                self.floe_events.delete(&d.receipt).await.expect("delete");
            }
        }
    }
}

/// Creates a bucket in [`REGION`].
pub async fn create_bucket(clients: &Clients, name: &str) {
    clients
        .s3
        .create_bucket()
        .bucket(name)
        .create_bucket_configuration(
            aws_sdk_s3::types::CreateBucketConfiguration::builder()
                .location_constraint(aws_sdk_s3::types::BucketLocationConstraint::EuWest2)
                .build(),
        )
        .send()
        .await
        .expect("bucket created");
}

async fn create_queue(
    clients: &Clients,
    name: &str,
    attributes: &[(QueueAttributeName, String)],
) -> SqsQueue {
    let mut req = clients.sqs.create_queue().queue_name(name);
    for (k, v) in attributes {
        req = req.attributes(k.clone(), v);
    }
    let out = req.send().await.expect("queue created");
    SqsQueue::new(clients.sqs.clone(), out.queue_url().expect("a url"))
}

async fn target(clients: &Clients, rule: &str, bus: Option<&str>, queue: &SqsQueue) {
    clients
        .eventbridge
        .put_targets()
        .rule(rule)
        .set_event_bus_name(bus.map(str::to_owned))
        .targets(
            aws_sdk_eventbridge::types::Target::builder()
                .id("queue")
                .arn(queue.arn().await.expect("queue arn"))
                .build()
                .expect("a target"),
        )
        .send()
        .await
        .expect("target");
}
