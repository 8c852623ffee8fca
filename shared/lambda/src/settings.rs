//! The services' configuration: read from the environment once, at cold start, with every
//! missing or invalid variable reported together (one failed deploy tells the whole story).

use std::collections::BTreeMap;
use std::path::PathBuf;

use floe_core::Stage;

/// Which lake the services write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Engine {
    /// Iceberg tables through Athena and the Glue catalog.
    Athena {
        /// The Athena workgroup.
        workgroup: String,
        /// The Iceberg warehouse, `s3://bucket[/prefix]`.
        lake_location: String,
        /// Where query results go, when the workgroup does not enforce its own.
        output_location: Option<String>,
        /// Before every namespace in a Glue database name (`FLOE_GLUE_DATABASE_PREFIX`: the
        /// stack sets `floe_dev_` in dev, nothing in prod).
        database_prefix: String,
        /// A query still running after this is cancelled (`FLOE_ATHENA_QUERY_TIMEOUT_SECONDS`;
        /// the stack sets the function's timeout less a minute).
        query_timeout: Option<std::time::Duration>,
        /// Queries this process runs at once (`FLOE_ATHENA_MAX_CONCURRENT_QUERIES`: the
        /// stack's share of the account's Athena quota per invocation).
        max_concurrent_queries: Option<usize>,
    },
    /// The embedded engine on a local folder (a service run outside Lambda, tests, drills).
    Local {
        /// The lake folder.
        lake_dir: PathBuf,
    },
}

/// Everything a service reads from its environment.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// The stage this service runs.
    pub stage: Stage,
    /// The AWS region (`AWS_REGION`, set by Lambda).
    pub region: String,
    /// An endpoint for every AWS API (`FLOE_AWS_ENDPOINT_URL`): a local stand-in such as moto.
    pub endpoint_url: Option<String>,
    /// The floe project (table configs) shipped with the function (`FLOE_PROJECT_DIR`).
    pub project_dir: PathBuf,
    /// The bucket files land in (`FLOE_LANDING_BUCKET`).
    pub landing_bucket: String,
    /// The bucket quarantined files go to (`FLOE_QUARANTINE_BUCKET`).
    pub quarantine_bucket: String,
    /// The EventBridge bus for `floe.*` events (`FLOE_EVENT_BUS`, default `default`).
    pub event_bus: String,
    /// The queues of the stages this one sends to (`FLOE_<STAGE>_QUEUE_URL`).
    pub next_queues: BTreeMap<Stage, String>,
    /// This stage's dead-letter queue, for messages that can never succeed
    /// (`FLOE_DLQ_URL`, optional: without it SQS dead-letters them after maxReceiveCount).
    pub dlq_url: Option<String>,
    /// The lake.
    pub engine: Engine,
    /// How many messages of one SQS batch run at once (`FLOE_BATCH_CONCURRENCY`, default 4).
    pub batch_concurrency: usize,
    /// Price of a terabyte scanned by Athena, in USD, for cost metrics
    /// (`FLOE_ATHENA_PRICE_PER_TB_USD`, default 5).
    pub price_per_tb_usd: f64,
}

/// What was wrong with the environment: every problem, one per line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the {stage} service is not configured:\n{}\n(see the README's \"AWS\" section for every variable)",
    problems.iter().map(|p| format!("  - {p}")).collect::<Vec<_>>().join("\n")
)]
pub struct SettingsError {
    /// The stage.
    pub stage: String,
    /// One line per missing or invalid variable.
    pub problems: Vec<String>,
}

/// The stages a stage sends messages to.
pub fn next_stages(stage: Stage) -> &'static [Stage] {
    match stage {
        Stage::Landing => &[Stage::Standardise],
        Stage::Standardise => &[Stage::Audit],
        // A stale audit sends its batch back to standardise; a published silver table with
        // models downstream goes on to modelling.
        Stage::Audit => &[Stage::Standardise, Stage::Modelling],
        // Staged models go to their audit.
        Stage::Modelling => &[Stage::Audit],
    }
}

/// The variable holding a stage's queue URL.
pub fn queue_var(stage: Stage) -> String {
    format!("FLOE_{}_QUEUE_URL", stage.as_str().to_uppercase())
}

impl Settings {
    /// Reads the settings of `stage` from the process environment.
    pub fn from_env(stage: Stage) -> Result<Self, SettingsError> {
        Self::from_vars(stage, |k| std::env::var(k).ok().filter(|v| !v.is_empty()))
    }

    /// Reads the settings of `stage` from `var` (the environment, or a map in tests).
    pub fn from_vars(
        stage: Stage,
        var: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, SettingsError> {
        let mut problems = Vec::new();
        let mut required = |name: &str, what: &str| -> String {
            var(name).unwrap_or_else(|| {
                problems.push(format!("{name} is not set: {what}"));
                String::new()
            })
        };
        let region = required("AWS_REGION", "the AWS region (Lambda sets it)");
        // The Lambda runtime client reads these and stops the process without them; Lambda sets
        // them, a run elsewhere (a drill, a bench) must.
        for name in [
            "AWS_LAMBDA_RUNTIME_API",
            "AWS_LAMBDA_FUNCTION_NAME",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
            "AWS_LAMBDA_FUNCTION_VERSION",
        ] {
            required(
                name,
                "set by Lambda; set it when running the service elsewhere",
            );
        }
        let landing_bucket = required("FLOE_LANDING_BUCKET", "the bucket files land in");
        let quarantine_bucket = required(
            "FLOE_QUARANTINE_BUCKET",
            "the bucket bad files are moved to",
        );
        let mut next_queues = BTreeMap::new();
        for next in next_stages(stage) {
            let name = queue_var(*next);
            let url = required(&name, &format!("the URL of the {next} queue"));
            next_queues.insert(*next, url);
        }
        let engine_name = var("FLOE_ENGINE").unwrap_or_else(|| "athena".into());
        let engine = match engine_name.as_str() {
            "athena" => Engine::Athena {
                workgroup: required("FLOE_ATHENA_WORKGROUP", "the Athena workgroup"),
                lake_location: required(
                    "FLOE_LAKE_LOCATION",
                    "the Iceberg warehouse, s3://bucket[/prefix]",
                ),
                output_location: var("FLOE_ATHENA_OUTPUT_LOCATION"),
                database_prefix: var("FLOE_GLUE_DATABASE_PREFIX").unwrap_or_default(),
                query_timeout: None,
                max_concurrent_queries: None,
            },
            "local" => Engine::Local {
                lake_dir: PathBuf::from(required(
                    "FLOE_LAKE_DIR",
                    "the lake folder of the embedded engine",
                )),
            },
            other => {
                problems.push(format!(
                    "FLOE_ENGINE is '{other}': use athena (the default) or local"
                ));
                Engine::Local {
                    lake_dir: PathBuf::new(),
                }
            }
        };
        let mut number = |name: &str, default: f64| -> f64 {
            match var(name) {
                None => default,
                Some(v) => v
                    .parse::<f64>()
                    .ok()
                    .filter(|n| *n >= 0.0)
                    .unwrap_or_else(|| {
                        problems.push(format!("{name} is '{v}': expected a non-negative number"));
                        default
                    }),
            }
        };
        let batch_concurrency = number("FLOE_BATCH_CONCURRENCY", 4.0).max(1.0) as usize;
        let price_per_tb_usd = number("FLOE_ATHENA_PRICE_PER_TB_USD", 5.0);
        let athena = matches!(engine, Engine::Athena { .. });
        let timeout = var("FLOE_ATHENA_QUERY_TIMEOUT_SECONDS")
            .filter(|_| athena)
            .map(|_| number("FLOE_ATHENA_QUERY_TIMEOUT_SECONDS", 0.0).max(1.0));
        let max_queries = var("FLOE_ATHENA_MAX_CONCURRENT_QUERIES")
            .filter(|_| athena)
            .map(|_| number("FLOE_ATHENA_MAX_CONCURRENT_QUERIES", 0.0).max(1.0) as usize);
        let engine = match engine {
            Engine::Athena {
                workgroup,
                lake_location,
                output_location,
                database_prefix,
                ..
            } => Engine::Athena {
                workgroup,
                lake_location,
                output_location,
                database_prefix,
                query_timeout: timeout.map(std::time::Duration::from_secs_f64),
                max_concurrent_queries: max_queries,
            },
            local => local,
        };
        if !problems.is_empty() {
            return Err(SettingsError {
                stage: stage.to_string(),
                problems,
            });
        }
        Ok(Settings {
            stage,
            region,
            endpoint_url: var("FLOE_AWS_ENDPOINT_URL"),
            project_dir: var("FLOE_PROJECT_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from("/var/task/project")),
            landing_bucket,
            quarantine_bucket,
            event_bus: var("FLOE_EVENT_BUS").unwrap_or_else(|| "default".into()),
            next_queues,
            dlq_url: var("FLOE_DLQ_URL"),
            engine,
            batch_concurrency,
            price_per_tb_usd,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stacks_athena_limits_and_database_prefix_are_read() {
        let vars = |name: &str| -> Option<String> {
            Some(
                match name {
                    "FLOE_GLUE_DATABASE_PREFIX" => "floe_dev_",
                    "FLOE_ATHENA_QUERY_TIMEOUT_SECONDS" => "240",
                    "FLOE_ATHENA_MAX_CONCURRENT_QUERIES" => "2",
                    "FLOE_BATCH_CONCURRENCY" | "FLOE_ATHENA_PRICE_PER_TB_USD" => return None,
                    "FLOE_ENGINE" | "FLOE_DLQ_URL" | "FLOE_ATHENA_OUTPUT_LOCATION" => return None,
                    "FLOE_AWS_ENDPOINT_URL" | "FLOE_PROJECT_DIR" | "FLOE_EVENT_BUS" => return None,
                    _ => "x",
                }
                .to_owned(),
            )
        };
        let s = Settings::from_vars(Stage::Landing, vars).unwrap();
        let Engine::Athena {
            database_prefix,
            query_timeout,
            max_concurrent_queries,
            ..
        } = s.engine
        else {
            panic!("athena is the default engine");
        };
        assert_eq!(database_prefix, "floe_dev_");
        assert_eq!(query_timeout, Some(std::time::Duration::from_secs(240)));
        assert_eq!(max_concurrent_queries, Some(2));
    }

    #[test]
    fn every_missing_variable_is_reported_at_once() {
        let err = Settings::from_vars(Stage::Landing, |_| None).unwrap_err();
        let text = err.to_string();
        for var in [
            "AWS_REGION",
            "FLOE_LANDING_BUCKET",
            "FLOE_QUARANTINE_BUCKET",
            "FLOE_STANDARDISE_QUEUE_URL",
            "FLOE_ATHENA_WORKGROUP",
            "FLOE_LAKE_LOCATION",
            "AWS_LAMBDA_FUNCTION_NAME",
        ] {
            assert!(text.contains(var), "{var} missing from:\n{text}");
        }
        assert_eq!(err.problems.len(), 10);
    }

    #[test]
    fn a_complete_environment_reads() {
        let vars: BTreeMap<&str, &str> = [
            ("AWS_REGION", "eu-west-2"),
            ("AWS_LAMBDA_RUNTIME_API", "127.0.0.1:9001"),
            ("AWS_LAMBDA_FUNCTION_NAME", "floe-audit"),
            ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "1024"),
            ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST"),
            ("FLOE_LANDING_BUCKET", "land"),
            ("FLOE_QUARANTINE_BUCKET", "quar"),
            ("FLOE_STANDARDISE_QUEUE_URL", "http://q/standardise"),
            ("FLOE_MODELLING_QUEUE_URL", "http://q/modelling"),
            ("FLOE_ENGINE", "local"),
            ("FLOE_LAKE_DIR", "/tmp/lake"),
            ("FLOE_BATCH_CONCURRENCY", "2"),
        ]
        .into();
        let s = Settings::from_vars(Stage::Audit, |k| vars.get(k).map(|v| v.to_string())).unwrap();
        assert_eq!(s.next_queues[&Stage::Standardise], "http://q/standardise");
        assert_eq!(s.next_queues[&Stage::Modelling], "http://q/modelling");
        assert_eq!(s.batch_concurrency, 2);
        assert_eq!(s.event_bus, "default");
        assert!(matches!(s.engine, Engine::Local { .. }));
    }

    #[test]
    fn bad_numbers_and_engines_are_named() {
        let err = Settings::from_vars(Stage::Standardise, |k| match k {
            "FLOE_ENGINE" => Some("duckdb".into()),
            "FLOE_BATCH_CONCURRENCY" => Some("lots".into()),
            "FLOE_ATHENA_PRICE_PER_TB_USD" => Some("-1".into()),
            _ => Some("x".into()),
        })
        .unwrap_err();
        assert_eq!(err.problems.len(), 3, "{err}");
        assert!(
            err.to_string()
                .contains("FLOE_ATHENA_PRICE_PER_TB_USD is '-1'")
        );
        assert!(err.to_string().contains("FLOE_ENGINE is 'duckdb'"));
        assert!(err.to_string().contains("FLOE_BATCH_CONCURRENCY is 'lots'"));
    }
}
