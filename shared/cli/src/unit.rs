//! Unit tests of models (`unit_tests:` in models/*.yaml): given rows for a model's inputs, the
//! rows it must return. Each test runs on the embedded engine in a throwaway lake: the inputs
//! become tables, the model renders against them, and its rows are compared as a multiset on the
//! columns the expectation names.

use floe_core::ports::LakeWrites;
use std::collections::BTreeMap;
use std::sync::Arc;

use anyhow::{Context, Result};
use arrow_array::{
    Array, ArrayRef, BooleanArray, Float64Array, Int64Array, RecordBatch, StringArray,
};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use floe_config::Project;
use floe_core::TableRef;
use floe_core::ports::{Dialect, Lake, ReadAt, WriteOptions};
use floe_lake::LocalLake;
use floe_models::project::UnitTest;
use floe_models::render::ResolveError;
use floe_models::{Dep, Models, RenderCtx, Resolve};
use indexmap::IndexMap;
use serde_json::Value as Json;

struct Inputs(BTreeMap<String, String>);

impl Resolve for Inputs {
    fn model(&self, name: &str) -> std::result::Result<String, ResolveError> {
        self.0
            .get(&format!("ref:{name}"))
            .cloned()
            .ok_or_else(|| ResolveError::NoRows {
                relation: format!("ref('{name}')"),
            })
    }
    fn source(&self, source: &str, table: &str) -> std::result::Result<String, ResolveError> {
        self.0
            .get(&format!("source:{source}.{table}"))
            .cloned()
            .ok_or_else(|| ResolveError::NoRows {
                relation: format!("source('{source}', '{table}')"),
            })
    }
}

/// A column of JSON values as Arrow, typed by its values (or as the declared type).
fn column(values: &[&Json], declared: Option<&DataType>) -> Result<ArrayRef> {
    let non_null: Vec<&&Json> = values.iter().filter(|v| !v.is_null()).collect();
    let array: ArrayRef = if !non_null.is_empty() && non_null.iter().all(|v| v.is_boolean()) {
        Arc::new(BooleanArray::from(
            values.iter().map(|v| v.as_bool()).collect::<Vec<_>>(),
        ))
    } else if !non_null.is_empty() && non_null.iter().all(|v| v.is_i64()) {
        Arc::new(Int64Array::from(
            values.iter().map(|v| v.as_i64()).collect::<Vec<_>>(),
        ))
    } else if !non_null.is_empty() && non_null.iter().all(|v| v.is_number()) {
        Arc::new(Float64Array::from(
            values.iter().map(|v| v.as_f64()).collect::<Vec<_>>(),
        ))
    } else {
        Arc::new(StringArray::from(
            values
                .iter()
                .map(|v| match v {
                    Json::Null => None,
                    Json::String(s) => Some(s.clone()),
                    other => Some(other.to_string()),
                })
                .collect::<Vec<_>>(),
        ))
    };
    match declared {
        Some(t) if t != array.data_type() => Ok(cast(&array, t)?),
        _ => Ok(array),
    }
}

fn batch(
    rows: &[IndexMap<String, Json>],
    declared: &BTreeMap<String, DataType>,
) -> Result<RecordBatch> {
    let mut names: Vec<String> = Vec::new();
    for r in rows {
        for k in r.keys() {
            if !names.contains(k) {
                names.push(k.clone());
            }
        }
    }
    let mut fields = Vec::new();
    let mut arrays = Vec::new();
    for n in &names {
        let values: Vec<&Json> = rows
            .iter()
            .map(|r| r.get(n).unwrap_or(&Json::Null))
            .collect();
        let a = column(&values, declared.get(n))?;
        fields.push(Field::new(n, a.data_type().clone(), true));
        arrays.push(a);
    }
    Ok(RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays)?)
}

fn text(a: &ArrayRef, i: usize) -> Option<String> {
    if a.is_null(i) {
        return None;
    }
    let s = cast(a, &DataType::Utf8).ok()?;
    Some(
        s.as_any()
            .downcast_ref::<StringArray>()?
            .value(i)
            .to_owned(),
    )
}

fn same(actual: &Option<String>, expected: &Json) -> bool {
    match (actual, expected) {
        (None, Json::Null) => true,
        (Some(a), Json::String(e)) => a == e,
        (Some(a), Json::Number(n)) => a.parse::<f64>().ok() == n.as_f64(),
        (Some(a), Json::Bool(b)) => a == &b.to_string(),
        _ => false,
    }
}

async fn run_one(
    project: &Project,
    models: &Models,
    t: &UnitTest,
) -> Result<std::result::Result<(), String>> {
    let dir = std::env::temp_dir().join(format!("floe-unit-{}", uuid_like()));
    let lake = LocalLake::open(&dir).await?;
    let mut relations = BTreeMap::new();
    for (i, (dep, rows)) in t.given.iter().enumerate() {
        let (key, declared) = match dep {
            Dep::Ref { name } => (format!("ref:{name}"), BTreeMap::new()),
            Dep::Source { source, table } => {
                let cfg = project.table(&format!("{source}.{table}"))?;
                (
                    format!("source:{source}.{table}"),
                    cfg.columns
                        .iter()
                        .map(|c| (c.name.clone(), c.ty.arrow()))
                        .collect(),
                )
            }
        };
        let table = TableRef::new("unit", format!("input_{i}"))?;
        let b = batch(rows, &declared)?;
        lake.ensure_namespace("unit").await?;
        lake.create_table(&table, b.schema()).await?;
        if b.num_rows() > 0 {
            lake.append(&table, vec![b], &WriteOptions::default())
                .await?;
        }
        relations.insert(key, table.to_string());
    }
    let model = models.get(&t.model)?;
    let ctx = RenderCtx {
        resolver: Arc::new(Inputs(relations)),
        dialect: Dialect::DataFusion,
        is_incremental: false,
        this: Some(format!("{}.{}", floe_models::GOLD, model.name)),
        vars: models.vars.clone(),
        extra: model.extra.clone(),
    };
    let sql = match models.renderer.render(&model.template, &ctx) {
        Ok(r) => r.sql,
        Err(e) => return Ok(Err(e.to_string())),
    };
    let rows = match lake.query(&sql, &ReadAt::Current).await {
        Ok(r) => r,
        Err(e) => {
            return Ok(Err(format!(
                "the model does not run on the given rows: {e}"
            )));
        }
    };
    let _ = std::fs::remove_dir_all(&dir);
    // Actual rows as text, on the expected columns.
    let columns: Vec<String> = t
        .expect
        .first()
        .map(|r| r.keys().cloned().collect())
        .unwrap_or_default();
    let mut actual: Vec<Vec<Option<String>>> = Vec::new();
    for b in &rows {
        let mut cols = Vec::new();
        for c in &columns {
            let Some(a) = b.column_by_name(c) else {
                return Ok(Err(format!("the model returns no column '{c}'")));
            };
            cols.push(a.clone());
        }
        for i in 0..b.num_rows() {
            actual.push(cols.iter().map(|a| text(a, i)).collect());
        }
    }
    let mut unmatched = actual.clone();
    let mut missing = Vec::new();
    for e in &t.expect {
        let want: Vec<&Json> = columns
            .iter()
            .map(|c| e.get(c).unwrap_or(&Json::Null))
            .collect();
        match unmatched
            .iter()
            .position(|a| a.iter().zip(&want).all(|(x, y)| same(x, y)))
        {
            Some(i) => {
                unmatched.remove(i);
            }
            None => missing.push(serde_json::to_string(e).unwrap_or_default()),
        }
    }
    if missing.is_empty() && unmatched.is_empty() {
        Ok(Ok(()))
    } else {
        Ok(Err(format!(
            "expected rows not returned: [{}]; rows returned but not expected: [{}]",
            missing.join(", "),
            unmatched
                .iter()
                .map(|r| format!("{r:?}"))
                .collect::<Vec<_>>()
                .join(", ")
        )))
    }
}

fn uuid_like() -> String {
    format!(
        "{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default()
    )
}

/// Runs the unit tests of the selected models; (run, failed).
pub async fn run_all(
    project: &Project,
    models: &Models,
    selected: &std::collections::BTreeSet<String>,
) -> Result<(usize, usize)> {
    let mut ran = 0;
    let mut failed = 0;
    for t in models
        .unit_tests
        .iter()
        .filter(|t| selected.contains(&t.model))
    {
        ran += 1;
        match run_one(project, models, t)
            .await
            .with_context(|| format!("unit test {} ({})", t.name, t.file.display()))?
        {
            Ok(()) => println!("PASS unit {} ({})", t.name, t.model),
            Err(why) => {
                failed += 1;
                println!(
                    "FAIL unit {} ({}, {}): {why}",
                    t.name,
                    t.model,
                    t.file.display()
                );
            }
        }
    }
    Ok((ran, failed))
}
