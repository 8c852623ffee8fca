//! Schema drift as a property: extracts landed while the table's config drifts (a column added,
//! a type widened, a column removed, each at a random extract) through the local runtime give,
//! at every extract time, the same values in the final config's columns as the same data landed
//! under the final config from the start; with no column removed, the very same history.
//!
//! (A removed column is kept and NULL from its removal on, so the drifting history has the
//! versions its changes opened while it was declared; those versions hold the same values in
//! every other column, which is what is compared then.)

use std::sync::Arc;

use chrono::{DateTime, Utc};
use floe_config::Project;
use floe_core::ports::{Lake, ReadAt};
use floe_lake::LocalLake;
use floe_local::runtime::Runtime;
use proptest::prelude::*;

/// When each change happens (the extract from which the new config applies), if it does.
#[derive(Debug, Clone)]
struct Schedule {
    add_c: Option<usize>,
    widen_a: Option<usize>,
    drop_b: Option<usize>,
}

/// One key's row: a, b, c (c is only sent once declared).
type Row = (i64, i64, Option<&'static str>, Option<i64>);

#[derive(Debug, Clone, Copy)]
struct Shape {
    a_bigint: bool,
    b: bool,
    c: bool,
}

impl Schedule {
    fn at(&self, day: usize) -> Shape {
        Shape {
            a_bigint: self.widen_a.is_some_and(|w| day >= w),
            b: self.drop_b.is_none_or(|d| day < d),
            c: self.add_c.is_some_and(|a| day >= a),
        }
    }

    fn last(&self) -> Shape {
        Shape {
            a_bigint: self.widen_a.is_some(),
            b: self.drop_b.is_none(),
            c: self.add_c.is_some(),
        }
    }
}

fn yaml(shape: Shape) -> String {
    let mut cols = format!(
        "      id: {{type: bigint, nullable: false}}\n      a: {{type: {}}}\n",
        if shape.a_bigint { "bigint" } else { "int" }
    );
    if shape.b {
        cols.push_str("      b: {type: string}\n");
    }
    if shape.c {
        cols.push_str("      c: {type: bigint}\n");
    }
    format!(
        "source: s\ntables:\n  t:\n    primary_key: [id]\n    deletes: invalidate\n    columns:\n{cols}"
    )
}

/// The file of one extract with the columns `shape` declares (c only where `sent` says).
fn csv(rows: &[Row], shape: Shape, c_sent: bool) -> String {
    let mut out = String::from("id,a");
    if shape.b {
        out.push_str(",b");
    }
    if c_sent {
        out.push_str(",c");
    }
    out.push('\n');
    for (id, a, b, c) in rows {
        out.push_str(&format!("{id},{a}"));
        if shape.b {
            out.push_str(&format!(",{}", b.unwrap_or("")));
        }
        if c_sent {
            out.push_str(&format!(
                ",{}",
                c.map(|v| v.to_string()).unwrap_or_default()
            ));
        }
        out.push('\n');
    }
    out
}

fn day_ts(day: usize) -> DateTime<Utc> {
    format!("2026-11-{:02}T06:00:00Z", day + 1).parse().unwrap()
}

/// Lands every extract, the config before each as `shape_of` says, and returns the lake.
async fn land_all(
    extracts: &[Vec<Row>],
    shape_of: impl Fn(usize) -> Shape,
    c_sent: impl Fn(usize) -> bool,
) -> (tempfile::TempDir, Arc<LocalLake>) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("floe.yaml"), "name: drift\n").unwrap();
    std::fs::create_dir_all(dir.path().join("tables")).unwrap();
    let lake = Arc::new(LocalLake::open(&dir.path().join("lake")).await.unwrap());
    for (day, rows) in extracts.iter().enumerate() {
        let shape = shape_of(day);
        std::fs::write(dir.path().join("tables/s.yaml"), yaml(shape)).unwrap();
        let project = Project::load(dir.path()).unwrap();
        let runtime = Runtime::open(project, lake.clone()).await.unwrap();
        let file = dir.path().join(format!("t-{day}.csv"));
        std::fs::write(&file, csv(rows, shape, c_sent(day))).unwrap();
        runtime.land_file(&file, "s.t", day_ts(day)).await.unwrap();
        let report = runtime.drain(false, |_| {}).await.unwrap();
        assert!(
            report.quarantined.is_empty()
                && report.rejected.is_empty()
                && report.dead_lettered.is_empty(),
            "day {day}: {report:?}"
        );
    }
    (dir, lake)
}

pub(crate) async fn rows(lake: &LocalLake, sql: &str) -> Vec<String> {
    let batches = lake.query(sql, &ReadAt::Current).await.unwrap();
    let mut out = Vec::new();
    for b in &batches {
        for r in 0..b.num_rows() {
            let values: Vec<String> = (0..b.num_columns())
                .map(|c| {
                    datafusion::arrow::util::display::array_value_to_string(b.column(c), r).unwrap()
                })
                .collect();
            out.push(values.join("|"));
        }
    }
    out
}

fn extracts_strategy() -> impl Strategy<Value = (Vec<Vec<Row>>, Schedule)> {
    let days = 4usize;
    let schedule = (
        proptest::option::of(1..days),
        proptest::option::of(1..days),
        proptest::option::of(1..days),
    )
        .prop_map(|(add_c, widen_a, drop_b)| Schedule {
            add_c,
            widen_a,
            drop_b,
        });
    let row = (
        0i64..3,
        proptest::option::of(prop_oneof![Just("x"), Just("y")]),
        proptest::option::of(1i64..3),
    );
    let extract = proptest::collection::btree_map(1i64..5, row, 1..4);
    (proptest::collection::vec(extract, days), schedule).prop_map(|(extracts, schedule)| {
        let extracts = extracts
            .into_iter()
            .enumerate()
            .map(|(day, keys)| {
                keys.into_iter()
                    .map(|(id, (a, b, c))| {
                        // After the widening, values an int cannot hold.
                        let a = if schedule.widen_a.is_some_and(|w| day >= w) && a == 2 {
                            3_000_000_000
                        } else {
                            a
                        };
                        (id, a, b, c)
                    })
                    .collect()
            })
            .collect();
        (extracts, schedule)
    })
}

pub(crate) fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 8, ..ProptestConfig::default() })]

    #[test]
    fn drifting_configs_give_the_history_of_the_final_config((extracts, schedule) in extracts_strategy()) {
        let last = schedule.last();
        runtime().block_on(async {
            let (_d1, drifting) = land_all(
                &extracts,
                |day| schedule.at(day),
                |day| schedule.at(day).c,
            )
            .await;
            // The final config from the start: the files carry what the final config declares
            // (c only from the extract that first sent it).
            let (_d2, direct) = land_all(
                &extracts,
                |_| last,
                |day| schedule.at(day).c,
            )
            .await;
            let cols = format!("id, a{}", if last.c { ", c" } else { "" });
            let all_cols = if last.b { format!("{cols}, b") } else { cols.clone() };
            if schedule.drop_b.is_none() {
                let history = format!(
                    "SELECT {all_cols}, valid_from, valid_to, is_current FROM silver_s.t ORDER BY id, valid_from"
                );
                prop_assert_eq!(rows(&drifting, &history).await, rows(&direct, &history).await);
            }
            for day in 0..extracts.len() {
                let ts = day_ts(day).format("%Y-%m-%d %H:%M:%S");
                let state = format!(
                    "SELECT {all_cols} FROM silver_s.t WHERE valid_from <= TIMESTAMP '{ts}' \
                     AND (valid_to IS NULL OR valid_to > TIMESTAMP '{ts}') ORDER BY id"
                );
                prop_assert_eq!(
                    rows(&drifting, &state).await,
                    rows(&direct, &state).await,
                    "the state at extract {}", day
                );
            }
            Ok(())
        })?;
    }
}
