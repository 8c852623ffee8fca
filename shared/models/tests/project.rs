//! Loading a project's models: the DAG, cycles, selectors, manifests and the errors a user meets.

use floe_config::Project;
use floe_models::{Manifest, Models, select};

fn project(files: &[(&str, &str)]) -> (tempfile::TempDir, Project) {
    let dir = tempfile::tempdir().unwrap();
    let mut all = vec![
        ("floe.yaml", "name: p\nvars: {country: GB}\n"),
        (
            "tables/crm.yaml",
            "source: crm\ntables:\n  customers:\n    primary_key: [id]\n    columns:\n      id: {type: bigint}\n    generate:\n      current: {}\n",
        ),
        (
            "templates/current.sql",
            "SELECT * FROM {{ source(table.source, table.name) }} WHERE is_current",
        ),
    ];
    all.extend_from_slice(files);
    for (p, s) in all {
        let f = dir.path().join(p);
        std::fs::create_dir_all(f.parent().unwrap()).unwrap();
        std::fs::write(f, s).unwrap();
    }
    let project = Project::load(dir.path()).unwrap();
    (dir, project)
}

fn names(set: &std::collections::BTreeSet<String>) -> Vec<&str> {
    set.iter().map(String::as_str).collect()
}

#[test]
fn the_dag_orders_models_and_selectors_pick_as_dbt_does() {
    let (_dir, p) = project(&[
        (
            "models/a.sql",
            "{{ config(tags=['daily']) }}SELECT * FROM {{ ref('current_crm_customers') }}",
        ),
        ("models/b.sql", "SELECT * FROM {{ ref('a') }}"),
        (
            "models/c.sql",
            "{{ config(materialized='table', tags=['daily']) }}SELECT * FROM {{ ref('b') }} JOIN {{ ref('a') }} USING (id)",
        ),
        ("models/d.sql", "SELECT '{{ var('country') }}' AS country"),
    ]);
    let m = Models::load(&p).unwrap();
    assert_eq!(m.dag.order, ["current_crm_customers", "a", "b", "c", "d"]);
    let s = |e: &str| select(e, &m.models, &m.dag, None).map(|s| names(&s).join(" "));
    assert_eq!(s("b").unwrap(), "b");
    assert_eq!(s("+b").unwrap(), "a b current_crm_customers");
    assert_eq!(s("b+").unwrap(), "b c");
    assert_eq!(s("tag:daily").unwrap(), "a c");
    assert_eq!(
        s("source:crm.customers+").unwrap(),
        "a b c current_crm_customers"
    );
    assert_eq!(s("d b+").unwrap(), "b c d");
    assert!(s("tag:dayly").unwrap_err().contains("did you mean 'daily'"));
    assert!(s("e").unwrap_err().contains("there is no model 'e'"));
    assert!(s("state:modified").unwrap_err().contains("--state"));

    // state:modified against a manifest: only what changed since, and what is new.
    let mut manifest = Manifest::of(&m.models, &m.dag, "gold");
    manifest.models.get_mut("b").unwrap().checksum = "old".into();
    manifest.models.remove("d");
    let changed = select("state:modified+", &m.models, &m.dag, Some(&manifest)).unwrap();
    assert_eq!(names(&changed), ["b", "c", "d"]);
    let new = select("state:new", &m.models, &m.dag, Some(&manifest)).unwrap();
    assert_eq!(names(&new), ["d"]);
}

#[test]
fn a_cycle_is_an_error_that_names_it() {
    let (_dir, p) = project(&[
        ("models/a.sql", "SELECT * FROM {{ ref('c') }}"),
        ("models/b.sql", "SELECT * FROM {{ ref('a') }}"),
        ("models/c.sql", "SELECT * FROM {{ ref('b') }}"),
    ]);
    let e = Models::load(&p).unwrap_err().to_string();
    assert!(
        e.contains("the models form a cycle: a -> b -> c -> a"),
        "{e}"
    );
}

#[test]
fn errors_name_the_file_line_and_what_to_do() {
    let (_dir, p) = project(&[
        (
            "models/a.sql",
            "SELECT 1\nFROM {{ source('crm', 'customer') }}",
        ),
        ("models/b.sql", "{{ config(materialized='tabel') }}SELECT 1"),
        (
            "models/c.sql",
            "{{ config(materialized='insert_by_chunk') }}SELECT 1",
        ),
        (
            "models/docs.yaml",
            "models:\n  - name: bb\n  - name: b\n    columns:\n      - name: x\n        tests: [not_nul]\n",
        ),
        (
            "tables/more.yaml",
            "source: more\ntables:\n  t:\n    primary_key: [id]\n    columns:\n      id: {type: bigint}\n    generate:\n      currnt: {}\n",
        ),
    ]);
    let e = Models::load(&p).unwrap_err().to_string();
    for want in [
        "models/a.sql:2:1: there is no table 'crm.customer' under tables/ (did you mean 'crm.customers'?)",
        "materialized 'tabel' is not one of view, table, incremental, insert_by_chunk (did you mean 'table'?)",
        "insert_by_chunk needs chunk_by",
        "models/docs.yaml: field `models.bb`: there is no model 'bb' (did you mean 'b'?)",
        "unknown column test 'not_nul' (did you mean 'not_null'?)",
        "there is no templates/currnt.sql (did you mean 'current'?)",
    ] {
        assert!(e.contains(want), "missing: {want}\nin: {e}");
    }
}
