//! Snapshots (insta) of the SQL every materialization renders, in both dialects: what floe runs
//! on the embedded engine (DataFusion) and on Athena (Trino). A change to any of it shows up as
//! a snapshot diff to review.

use std::sync::Arc;

use floe_config::Project;
use floe_core::TableRef;
use floe_core::ports::Dialect;
use floe_models::materialize::{self, Bound, Chunk};
use floe_models::project::Materialized;
use floe_models::render::ResolveError;
use floe_models::{Models, RenderCtx, Resolve};

struct Published;

impl Resolve for Published {
    fn model(&self, name: &str) -> Result<String, ResolveError> {
        Ok(format!("gold.{name}"))
    }
    fn source(&self, source: &str, table: &str) -> Result<String, ResolveError> {
        Ok(format!("silver_{source}.{table}"))
    }
}

fn project() -> (tempfile::TempDir, Models) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let write = |p: &str, s: &str| {
        let f = root.join(p);
        std::fs::create_dir_all(f.parent().unwrap()).unwrap();
        std::fs::write(f, s).unwrap();
    };
    write("floe.yaml", "name: snap\n");
    write(
        "tables/crm.yaml",
        "source: crm\ntables:\n  customers:\n    primary_key: [id]\n    columns:\n      id: {type: bigint}\n      name: {type: string}\n      signed_up: {type: date}\n    generate:\n      current: {}\n",
    );
    write(
        "templates/current.sql",
        "{{ config(materialized='view') }}\nSELECT {% for c in table.columns %}{{ c.name }}{{ ', ' if not loop.last }}{% endfor %} FROM {{ source(table.source, table.name) }} WHERE is_current",
    );
    write(
        "models/customers_table.sql",
        "{{ config(materialized='table') }}\nSELECT id, name, {{ surrogate_key(['id']) }} AS customer_key, {{ dateadd('day', 30, 'signed_up') }} AS trial_ends FROM {{ ref('current_crm_customers') }}",
    );
    write(
        "models/signups_append.sql",
        "{{ config(materialized='incremental') }}\nSELECT id, signed_up FROM {{ ref('current_crm_customers') }}\n{% if is_incremental() %}WHERE signed_up > (SELECT MAX(signed_up) FROM {{ this }}){% endif %}",
    );
    write(
        "models/customers_merge.sql",
        "{{ config(materialized='incremental', unique_key='id') }}\nSELECT id, name, {{ hash('name') }} AS name_hash FROM {{ ref('current_crm_customers') }}",
    );
    write(
        "models/signups_by_chunk.sql",
        "{{ config(materialized='insert_by_chunk', chunk_by='signed_up', chunk_size='month', unique_key='id') }}\nSELECT id, signed_up, {{ datediff('signed_up', current_timestamp(), 'day') }} AS age_days FROM {{ ref('current_crm_customers') }}",
    );
    write(
        "models/schema.yaml",
        "models:\n  - name: customers_table\n    columns:\n      - name: id\n        tests: [not_null, unique]\n      - name: name\n        tests:\n          - accepted_values: {values: [a, \"b'c\"]}\n          - relationships: {to: \"ref('customers_merge')\", field: name}\n    tests:\n      - row_count: {compare_to: \"source('crm', 'customers')\", where: is_current}\n",
    );
    let project = Project::load(root).unwrap();
    let models = Models::load(&project).unwrap();
    (dir, models)
}

fn select_sql(models: &Models, name: &str, dialect: Dialect) -> String {
    let m = &models.models[name];
    let ctx = RenderCtx {
        resolver: Arc::new(Published),
        dialect,
        is_incremental: false,
        this: Some(format!("gold.{name}")),
        vars: models.vars.clone(),
        extra: m.extra.clone(),
    };
    models.renderer.render(&m.template, &ctx).unwrap().sql
}

fn render(models: &Models, name: &str, dialect: Dialect, existing: bool) -> String {
    let m = &models.models[name];
    let table = TableRef::new("gold", name).unwrap();
    let incremental = existing && matches!(m.materialized, Materialized::Incremental { .. });
    let ctx = RenderCtx {
        resolver: Arc::new(Published),
        dialect,
        is_incremental: incremental,
        this: Some(table.to_string()),
        vars: models.vars.clone(),
        extra: m.extra.clone(),
    };
    let sql = models.renderer.render(&m.template, &ctx).unwrap().sql;
    let columns: Vec<String> = ["id", "name", "name_hash"].map(String::from).to_vec();
    let steps = materialize::plan(
        dialect,
        &m.materialized,
        &sql,
        &table,
        existing.then_some(columns.as_slice()),
    );
    steps
        .iter()
        .map(|s| {
            format!(
                "-- {}\n{}",
                serde_json::to_value(s).unwrap()["step"].as_str().unwrap(),
                s.sql()
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn every_materialization_in_both_dialects() {
    let (_dir, models) = project();
    for dialect in [Dialect::DataFusion, Dialect::Trino] {
        let d = match dialect {
            Dialect::DataFusion => "datafusion",
            Dialect::Trino => "trino",
        };
        insta::assert_snapshot!(
            format!("view_{d}"),
            render(&models, "current_crm_customers", dialect, false)
        );
        insta::assert_snapshot!(
            format!("table_{d}"),
            render(&models, "customers_table", dialect, false)
        );
        insta::assert_snapshot!(
            format!("incremental_first_run_{d}"),
            render(&models, "signups_append", dialect, false)
        );
        insta::assert_snapshot!(
            format!("incremental_append_{d}"),
            render(&models, "signups_append", dialect, true)
        );
        insta::assert_snapshot!(
            format!("incremental_merge_{d}"),
            render(&models, "customers_merge", dialect, true)
        );
        // insert_by_chunk: the sizing query, one chunk, the NULL chunk and the checks.
        let m = &models.models["signups_by_chunk"];
        let sql = select_sql(&models, "signups_by_chunk", dialect);
        let Materialized::InsertByChunk(spec) = &m.materialized else {
            panic!("chunked")
        };
        let chunk = Chunk {
            index: 0,
            lower: Some(Bound::Date("2026-01-01".parse().unwrap())),
            upper: Some(Bound::Date("2026-02-01".parse().unwrap())),
        };
        let nulls = Chunk {
            index: 1,
            lower: None,
            upper: None,
        };
        let staging = TableRef::new("gold", "signups_by_chunk__chunks").unwrap();
        let checks: Vec<String> = materialize::chunk_checks(&staging, spec, 42)
            .into_iter()
            .map(|(n, q)| format!("-- check: {n}\n{q}"))
            .collect();
        insta::assert_snapshot!(
            format!("insert_by_chunk_{d}"),
            [
                format!(
                    "-- bounds\n{}",
                    materialize::chunk_bounds_sql(&sql, &spec.column)
                ),
                format!(
                    "-- chunk {}\n{}",
                    chunk.label(),
                    materialize::chunk_sql(&sql, &spec.column, &chunk)
                ),
                format!(
                    "-- chunk {}\n{}",
                    nulls.label(),
                    materialize::chunk_sql(&sql, &spec.column, &nulls)
                ),
                checks.join("\n"),
            ]
            .join("\n")
        );
    }
    // Data tests (the same SQL in both dialects).
    let m = &models.models["customers_table"];
    let tests: Vec<String> = m
        .tests
        .iter()
        .map(|t| {
            let other = match &t.kind {
                floe_models::project::TestKind::Relationships { .. } => {
                    Some("gold.customers_merge")
                }
                floe_models::project::TestKind::RowCount { .. } => Some("silver_crm.customers"),
                _ => None,
            };
            format!(
                "-- {}\n{}",
                t.name,
                materialize::test_sql(t, "gold.customers_table", other, None)
            )
        })
        .collect();
    insta::assert_snapshot!("data_tests", tests.join("\n"));
}
