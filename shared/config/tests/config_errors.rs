//! One case per class of configuration error: each must name the file, the line and the field.

use std::path::Path;

use floe_config::{ConfigError, DeletesPolicy, LoadKind, Project};
use rstest::rstest;

const PROJECT: &str = "name: demo\nengine: local\n";

const GOOD_TABLES: &str = "\
source: nomis
tables:
  people:
    primary_key: [person_id]
    load: full
    deletes: invalidate
    columns:
      person_id: {type: bigint, nullable: false}
      first_name: {type: string}
      risk_score: {type: 'decimal(5,2)'}
";

fn project(files: &[(&str, &[u8])]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, body) in files {
        let path = dir.path().join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, body).unwrap();
    }
    dir
}

fn errors(files: &[(&str, &[u8])]) -> Vec<ConfigError> {
    let dir = project(files);
    Project::load(dir.path())
        .expect_err("the config should be rejected")
        .0
}

#[test]
fn a_good_project_loads() {
    let dir = project(&[
        ("floe.yaml", PROJECT.as_bytes()),
        ("tables/nomis.yaml", GOOD_TABLES.as_bytes()),
    ]);
    let p = Project::load(dir.path()).unwrap();
    let t = p.table("nomis.people").unwrap();
    assert_eq!(t.primary_key, ["person_id"]);
    assert_eq!(t.load, LoadKind::Full);
    assert_eq!(t.deletes, DeletesPolicy::Invalidate);
    assert_eq!(t.columns.len(), 3);
    assert!(!t.column("person_id").unwrap().nullable);
    assert_eq!(
        t.table_ref(floe_core::Layer::Silver).to_string(),
        "silver_nomis.people"
    );
    assert_eq!(p.settings.lake_dir, dir.path().join("lake"));
    let err = p.table("nomis.peple").unwrap_err().to_string();
    assert!(err.contains("did you mean 'nomis.people'"), "{err}");
}

#[rstest]
#[case::unknown_key_in_table(
    "tables/nomis.yaml",
    GOOD_TABLES.replace("    load: full\n", "    laod: full\n"),
    "tables/nomis.yaml:5",
    "tables.people.laod",
    "did you mean 'load'"
)]
#[case::unknown_key_in_column(
    "tables/nomis.yaml",
    GOOD_TABLES.replace("{type: string}", "{type: string, nulable: true}"),
    "tables/nomis.yaml:9",
    "tables.people.columns.first_name.nulable",
    "did you mean 'nullable'"
)]
#[case::primary_key_not_a_column(
    "tables/nomis.yaml",
    GOOD_TABLES.replace("[person_id]", "[person]"),
    "tables/nomis.yaml:4",
    "tables.people.primary_key[0]",
    "'person' is not a column of nomis.people (did you mean 'person_id'?)"
)]
#[case::unknown_type(
    "tables/nomis.yaml",
    GOOD_TABLES.replace("{type: string}", "{type: strng}"),
    "tables/nomis.yaml:9",
    "tables.people.columns.first_name.type",
    "unknown type 'strng' (did you mean 'string'?)"
)]
#[case::wrong_value_type(
    "tables/nomis.yaml",
    GOOD_TABLES.replace("nullable: false", "nullable: maybe"),
    "tables/nomis.yaml:8",
    "tables.people.columns.person_id.nullable",
    "boolean"
)]
#[case::bad_enum_value(
    "tables/nomis.yaml",
    GOOD_TABLES.replace("deletes: invalidate", "deletes: invalidated"),
    "tables/nomis.yaml:6",
    "tables.people.deletes",
    "did you mean 'invalidate'"
)]
#[case::missing_required_key(
    "tables/nomis.yaml",
    GOOD_TABLES.replace("    primary_key: [person_id]\n", ""),
    "tables/nomis.yaml:",
    "tables.people",
    "required key 'primary_key' is missing"
)]
#[case::duplicate_yaml_key(
    "tables/nomis.yaml",
    GOOD_TABLES.replace("    load: full\n", "    load: full\n    load: cdc\n"),
    "tables/nomis.yaml:6",
    "tables.people.load`",
    "'load' is given twice here: keep one"
)]
#[case::bad_identifier(
    "tables/nomis.yaml",
    GOOD_TABLES.replace("first_name:", "First Name:"),
    "tables/nomis.yaml:9",
    "tables.people.columns.First Name",
    "lowercase letters"
)]
#[case::cdc_without_change_columns(
    "tables/nomis.yaml",
    GOOD_TABLES.replace("load: full", "load: cdc"),
    "tables/nomis.yaml:5",
    "tables.people.load",
    "operation_column"
)]
#[case::unknown_key_in_project(
    "floe.yaml",
    "name: demo\nengin: local\n".to_owned(),
    "floe.yaml:2",
    "engin",
    "did you mean 'engine'"
)]
#[case::unknown_engine(
    "floe.yaml",
    "name: demo\nengine: duckdb\n".to_owned(),
    "floe.yaml:2",
    "engine",
    "use local or athena"
)]
#[case::duplicate_key(
    "tables/nomis.yaml",
    GOOD_TABLES.replace("      first_name: {type: string}\n", "      first_name: {type: string}\n      first_name: {type: bigint}\n"),
    "tables/nomis.yaml:10",
    "tables.people.columns.first_name`",
    "'first_name' is given twice here: keep one"
)]
fn each_error_names_file_line_and_field(
    #[case] file: &str,
    #[case] body: String,
    #[case] place: &str,
    #[case] field: &str,
    #[case] says: &str,
) {
    let mut files: Vec<(&str, &[u8])> = vec![
        ("floe.yaml", PROJECT.as_bytes()),
        ("tables/nomis.yaml", GOOD_TABLES.as_bytes()),
    ];
    files.retain(|(f, _)| *f != file);
    files.push((file, body.as_bytes()));
    let errs = errors(&files);
    assert_eq!(errs.len(), 1, "{errs:#?}");
    let msg = errs[0].to_string();
    assert!(
        msg.starts_with(place),
        "'{msg}' should start with '{place}'"
    );
    assert!(errs[0].line.is_some(), "{msg}");
    assert!(
        msg.contains(&format!("`{field}")),
        "'{msg}' should name field '{field}'"
    );
    assert!(msg.contains(says), "'{msg}' should say '{says}'");
}

#[test]
fn a_table_declared_twice_names_both_places() {
    let second = GOOD_TABLES.replace("source: nomis\n", "source: nomis\n# again\n");
    let errs = errors(&[
        ("floe.yaml", PROJECT.as_bytes()),
        ("tables/a.yaml", GOOD_TABLES.as_bytes()),
        ("tables/b.yaml", second.as_bytes()),
    ]);
    assert_eq!(errs.len(), 1, "{errs:#?}");
    let msg = errs[0].to_string();
    assert!(msg.starts_with("tables/b.yaml:4:"), "{msg}");
    assert!(msg.contains("field `tables.people`"), "{msg}");
    assert!(
        msg.contains("declared twice (first at tables/a.yaml:3)"),
        "{msg}"
    );
}

#[test]
fn a_file_that_is_not_utf8_names_its_line() {
    let mut body = GOOD_TABLES.as_bytes().to_vec();
    body.extend_from_slice(b"# caf\xe9\n");
    let errs = errors(&[
        ("floe.yaml", PROJECT.as_bytes()),
        ("tables/nomis.yaml", &body),
    ]);
    let msg = errs[0].to_string();
    assert!(msg.starts_with("tables/nomis.yaml:11:"), "{msg}");
    assert!(msg.contains("UTF-8"), "{msg}");
}

#[test]
fn every_problem_is_reported_at_once() {
    let bad = GOOD_TABLES
        .replace("[person_id]", "[person]")
        .replace("{type: string}", "{type: strng}");
    let errs = errors(&[
        ("floe.yaml", b"name: demo\nengine: x\n"),
        ("tables/nomis.yaml", bad.as_bytes()),
    ]);
    assert_eq!(errs.len(), 3, "{errs:#?}");
}

#[test]
fn a_missing_project_file_says_how_to_make_one() {
    let dir = tempfile::tempdir().unwrap();
    let err = Project::load(dir.path()).unwrap_err().to_string();
    assert!(err.contains("floe.yaml: not found"), "{err}");
    assert!(err.contains("floe init"), "{err}");
    assert!(!Path::new("definitely-not-here").exists());
}

#[rstest]
#[case::reserved_column(
    GOOD_TABLES.replace("first_name: {type: string}", "valid_from: {type: string}"),
    "tables/nomis.yaml:9",
    "tables.people.columns.valid_from",
    "is a column floe adds to bronze or silver"
)]
#[case::cdc_change_time_not_a_timestamp(
    GOOD_TABLES
        .replace("load: full", "load: cdc\n    cdc: {operation_column: first_name, timestamp_column: risk_score}")
        .replace("deletes: invalidate", "deletes: new_record"),
    "tables/nomis.yaml:6",
    "tables.people.cdc.timestamp_column",
    "must be a timestamp or a date"
)]
#[case::ignore_null_updates_on_a_full_load(
    GOOD_TABLES.replace("deletes: invalidate", "deletes: invalidate\n    ignore_null_updates: true"),
    "tables/nomis.yaml:7",
    "tables.people.ignore_null_updates",
    "applies to `load: cdc` tables"
)]
#[case::track_history_and_ignore_changes_together(
    GOOD_TABLES.replace("deletes: invalidate", "deletes: invalidate\n    track_history: [first_name]\n    ignore_changes: [risk_score]"),
    "tables/nomis.yaml:8",
    "tables.people.ignore_changes",
    "not both"
)]
#[case::a_key_in_track_history(
    GOOD_TABLES.replace("deletes: invalidate", "deletes: invalidate\n    track_history: [first_name, person_id]"),
    "tables/nomis.yaml:7",
    "tables.people.track_history[1]",
    "is in the primary key"
)]
#[case::an_unknown_column_in_ignore_changes(
    GOOD_TABLES.replace("deletes: invalidate", "deletes: invalidate\n    ignore_changes: [risk_scor]"),
    "tables/nomis.yaml:7",
    "tables.people.ignore_changes[0]",
    "did you mean 'risk_score'"
)]
#[case::ignore_changes_of_every_value(
    GOOD_TABLES.replace("deletes: invalidate", "deletes: invalidate\n    ignore_changes: [first_name, risk_score]"),
    "tables/nomis.yaml:7",
    "tables.people.ignore_changes",
    "leaves no column whose change opens a version"
)]
#[case::a_change_operation_as_the_truncate_marker(
    GOOD_TABLES
        .replace("load: full", "load: cdc\n    cdc: {operation_column: first_name, timestamp_column: updated_at, truncate_value: D}")
        .replace("risk_score: {type: 'decimal(5,2)'}", "risk_score: {type: 'decimal(5,2)'}\n      updated_at: {type: timestamp}"),
    "tables/nomis.yaml:6",
    "tables.people.cdc.truncate_value",
    "cannot mark a truncate"
)]
#[case::cdc_settings_on_a_full_load(
    GOOD_TABLES.replace("deletes: invalidate", "deletes: invalidate\n    cdc: {operation_column: first_name, timestamp_column: risk_score}"),
    "tables/nomis.yaml:7",
    "tables.people.cdc",
    "only applies to `load: cdc`"
)]
fn table_rules_name_file_line_and_field(
    #[case] body: String,
    #[case] place: &str,
    #[case] field: &str,
    #[case] says: &str,
) {
    let errs = errors(&[
        ("floe.yaml", PROJECT.as_bytes()),
        ("tables/nomis.yaml", body.as_bytes()),
    ]);
    assert_eq!(errs.len(), 1, "{errs:#?}");
    let msg = errs[0].to_string();
    assert!(
        msg.starts_with(place),
        "'{msg}' should start with '{place}'"
    );
    assert!(
        msg.contains(&format!("`{field}`")),
        "'{msg}' should name field '{field}'"
    );
    assert!(msg.contains(says), "'{msg}' should say '{says}'");
}

#[test]
fn athena_refuses_the_types_its_iceberg_tables_cannot_store() {
    let athena = "name: demo\nengine: athena\nathena: {region: eu-west-2, workgroup: w, output_location: 's3://r/', landing_bucket: l, lake_location: 's3://l/w'}\n";
    let tables = GOOD_TABLES.replace(
        "first_name: {type: string}",
        "first_name: {type: string}\n      age: {type: smallint}",
    );
    let errs = errors(&[
        ("floe.yaml", athena.as_bytes()),
        ("tables/nomis.yaml", tables.as_bytes()),
    ]);
    assert_eq!(errs.len(), 1, "{errs:?}");
    let text = errs[0].to_string();
    assert!(text.contains("tables/nomis.yaml:"), "{text}");
    assert!(text.contains("tables.people.columns.age.type"), "{text}");
    assert!(
        text.contains("smallint columns cannot be stored by Athena"),
        "{text}"
    );
    // The same table is fine on the embedded engine.
    let dir = project(&[
        ("floe.yaml", PROJECT.as_bytes()),
        ("tables/nomis.yaml", tables.as_bytes()),
    ]);
    Project::load(dir.path()).unwrap();
}
