//! Snapshots (insta) of the SQL floe-sql renders, per dialect: silver's history (rebuild, an
//! extract applied, a late extract spliced in) for every kind of table, the standardisation of
//! each column type, the silver tests of a staged snapshot, and Athena's DDL. A change to any statement shows up as a snapshot diff to
//! review; whether the statements are right is proven elsewhere (the SCD2 property tests on the
//! embedded engine, the Athena SQL on DuckDB and on the Trino stand-in).

use chrono::{TimeZone, Utc};
use floe_config::{Project, TableConfig};
use floe_core::ports::{Dialect, PartitionField};
use floe_core::{Layer, TableRef};
use floe_sql::athena::{self, LandedBatch};
use floe_sql::scd2::{self, LateExtract, NextExtract};

const TABLES: &str = r#"source: crm
tables:
  customers:
    primary_key: [id]
    columns:
      id: {type: bigint}
      name: {type: string}
      email: {type: string, nullable: true}
      balance: {type: "decimal(12,2)", nullable: true}
      signed_up: {type: date, nullable: true}
      seen_at: {type: timestamp, nullable: true}
      active: {type: boolean, nullable: true}
  customers_kept:
    primary_key: [id]
    deletes: new_record
    columns:
      id: {type: bigint}
      name: {type: string}
  customers_ignored:
    primary_key: [id]
    deletes: ignore
    columns:
      id: {type: bigint}
      name: {type: string}
  customers_partly_tracked:
    primary_key: [id]
    track_history: [name]
    columns:
      id: {type: bigint}
      name: {type: string}
      last_login: {type: timestamp, nullable: true}
  orders:
    primary_key: [order_id]
    load: cdc
    cdc:
      operation_column: op
      timestamp_column: changed_at
      truncate_value: T
    columns:
      order_id: {type: bigint}
      amount: {type: double, nullable: true}
      op: {type: string}
      changed_at: {type: timestamp}
"#;

fn project() -> (tempfile::TempDir, Project) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("floe.yaml"), "name: snap\n").unwrap();
    std::fs::create_dir_all(dir.path().join("tables")).unwrap();
    std::fs::write(dir.path().join("tables/crm.yaml"), TABLES).unwrap();
    let project = Project::load(dir.path()).unwrap();
    (dir, project)
}

fn table<'p>(p: &'p Project, name: &str) -> &'p TableConfig {
    p.table(&format!("crm.{name}")).unwrap()
}

const DIALECTS: [(Dialect, &str); 2] = [
    (Dialect::DataFusion, "datafusion"),
    (Dialect::Trino, "trino"),
];

#[test]
fn history_rebuilds() {
    let (_d, p) = project();
    for name in [
        "customers",
        "customers_kept",
        "customers_ignored",
        "customers_partly_tracked",
        "orders",
    ] {
        for (dialect, tag) in DIALECTS {
            insta::assert_snapshot!(
                format!("history_{name}_{tag}"),
                scd2::history_sql(dialect, table(&p, name), "bronze_crm.t")
            );
        }
    }
}

#[test]
fn an_extract_applied() {
    let (_d, p) = project();
    let t = Utc.with_ymd_and_hms(2026, 11, 2, 6, 0, 0).unwrap();
    for name in ["customers", "customers_kept", "customers_partly_tracked"] {
        insta::assert_snapshot!(
            format!("apply_{name}_datafusion"),
            scd2::apply_extract_sql(
                Dialect::DataFusion,
                table(&p, name),
                "bronze_crm.t",
                "silver_crm.t",
                "b-2",
                t
            )
        );
        // The embedded engine's form: the extract's versions computed once (with their tally),
        // then applied from memory.
        insta::assert_snapshot!(
            format!("apply_{name}_datafusion_held"),
            format!(
                "{};\n\n{}",
                scd2::extract_versions_sql(
                    Dialect::DataFusion,
                    table(&p, name),
                    "bronze_crm.t",
                    "b-2",
                    t
                ),
                scd2::apply_extract_over(
                    Dialect::DataFusion,
                    table(&p, name),
                    "silver_crm.t",
                    "b-2",
                    t
                )
            )
        );
        insta::assert_snapshot!(
            format!("apply_{name}_trino_merge"),
            scd2::apply_extract_merge(
                table(&p, name),
                "bronze_crm.t",
                "silver_crm.t",
                "silver_crm.t__data",
                "b-2",
                t
            )
        );
    }
}

#[test]
fn a_late_extract_spliced_in() {
    let (_d, p) = project();
    let rejected = vec!["b-bad".to_owned()];
    for name in ["customers", "customers_kept", "customers_ignored"] {
        let late = LateExtract {
            table: table(&p, name),
            bronze: "bronze_crm.t",
            silver: "silver_crm.t",
            batch_id: "b-late",
            extract_ts: Utc.with_ymd_and_hms(2026, 11, 2, 6, 0, 0).unwrap(),
            next: NextExtract {
                extract_ts: Utc.with_ymd_and_hms(2026, 11, 3, 6, 0, 0).unwrap(),
                batch_id: "b-3",
            },
            rejected: &rejected,
        };
        insta::assert_snapshot!(
            format!("late_{name}_datafusion"),
            scd2::late_extract_sql(Dialect::DataFusion, &late)
        );
        insta::assert_snapshot!(
            format!("late_{name}_trino_merge"),
            scd2::late_extract_merge(&late, "silver_crm.t__data")
        );
    }
}

#[test]
fn every_column_type_standardised() {
    let (_d, p) = project();
    for (dialect, tag) in DIALECTS {
        let rendered: Vec<String> = table(&p, "customers")
            .columns
            .iter()
            .map(|c| floe_sql::standardised(dialect, c))
            .collect();
        insta::assert_snapshot!(format!("standardised_{tag}"), rendered.join("\n"));
    }
}

#[test]
fn athena_ddl() {
    let (_d, p) = project();
    let customers = table(&p, "customers");
    let bronze = TableRef::in_layer(Layer::Bronze, "crm", "customers").unwrap();
    let silver = TableRef::in_layer(Layer::Silver, "crm", "customers").unwrap();
    let data = TableRef::new("silver_crm", "customers__data").unwrap();
    let statements = [
        athena::create_table(
            &bronze,
            &floe_sql::bronze::schema(customers),
            "s3://lake/bronze_crm/customers",
            &floe_sql::bronze::partitioning(),
        )
        .unwrap(),
        athena::create_table(
            &data,
            &scd2::silver_schema(customers),
            "s3://lake/silver_crm/customers",
            &[PartitionField::day(scd2::VALID_TO)],
        )
        .unwrap(),
        athena::bronze_append(
            customers,
            &bronze,
            &LandedBatch {
                external: &TableRef::new("floe_landing", "b_1").unwrap(),
                uri: "s3://landing/landing/crm/customers/2026-11-02T06:00:00Z/c's.csv",
                batch_id: "b-1",
                extract_ts: Utc.with_ymd_and_hms(2026, 11, 2, 6, 0, 0).unwrap(),
                key: "landing/crm/customers/2026-11-02T06:00:00Z/c's.csv",
            },
        ),
        athena::publish_view(&silver, &data, Some(42)),
        athena::publish_view(&silver, &data, None),
        athena::hidden_view(&silver, &data),
        athena::drop_table(&data),
    ];
    insta::assert_snapshot!("athena_ddl", statements.join(";\n\n"));
}

#[test]
fn silver_tests() {
    let (_d, p) = project();
    let extract = floe_sql::silver_tests::Extract {
        bronze: "bronze_crm.t",
        batch: "b-1",
        extract_ts: Utc.with_ymd_and_hms(2026, 11, 2, 6, 0, 0).unwrap(),
    };
    for name in [
        "customers",
        "customers_kept",
        "customers_partly_tracked",
        "orders",
    ] {
        for (dialect, tag) in DIALECTS {
            let tests = floe_sql::silver_tests::tests(
                dialect,
                table(&p, name),
                &floe_sql::silver_tests::valid_since(dialect, "silver_crm.t", extract.extract_ts),
                Some(&extract),
            );
            let mut text = tests
                .iter()
                .map(|t| format!("-- {}\n{}", t.name, t.sql))
                .collect::<Vec<_>>()
                .join(";\n\n");
            text.push_str(&format!(
                ";\n\n-- tally of the versions valid at the extract time\n{}",
                floe_sql::silver_tests::tally_at(
                    dialect,
                    table(&p, name),
                    "silver_crm.t",
                    extract.extract_ts
                )
            ));
            insta::assert_snapshot!(format!("silver_tests_{name}_{tag}"), text);
        }
    }
}

#[test]
fn athena_metadata_and_maintenance() {
    let data = TableRef::new("silver_crm", "customers__data").unwrap();
    let view = TableRef::new("silver_crm", "customers").unwrap();
    let schema = scd2::silver_schema(table(&project().1, "customers"));
    let cols = athena::column_list(&schema);
    let statements = [
        athena::snapshots(&data),
        athena::files(&data, true),
        athena::files(&data, false),
        athena::file_count(&data),
        athena::batch_rows(&data, "b'1"),
        athena::optimize(&data),
        athena::vacuum_retention(&data, 86_400),
        athena::vacuum(&data),
        athena::delete_all(&data),
        athena::insert_select(&data, &cols, &athena::at_version(&data, 42)),
        athena::insert_query(&data, &cols, "SELECT 1"),
        athena::schema_probe("SELECT 1"),
        athena::rename_table(&data, &TableRef::new("silver_crm", "people__data").unwrap()),
        athena::create_view(&view, "SELECT 1"),
        athena::show_create_view(&view),
        athena::drop_view(&view),
    ];
    insta::assert_snapshot!("athena_metadata_and_maintenance", statements.join(";\n\n"));
}
