"""The stand-in's translation rules, one Athena statement and its Trino statement each."""

from __future__ import annotations

import pytest

from aws_local import dialect


@pytest.mark.parametrize(
    ("athena", "trino"),
    [
        (
            "CREATE TABLE IF NOT EXISTS db.t (`a` bigint, `b` string, c float, d struct<x:int>) "
            "PARTITIONED BY (day(ts), bucket(16, a)) LOCATION 's3://l/t/' "
            "TBLPROPERTIES ('table_type' = 'ICEBERG', 'format' = 'parquet')",
            "CREATE TABLE IF NOT EXISTS db.t (\"a\" bigint, \"b\" varchar, \"c\" real, \"d\" row(\"x\" integer)) "
            "WITH (format = 'PARQUET', location = 's3://l/t/', partitioning = ARRAY['day(ts)', 'bucket(a, 16)'])",
        ),
        (
            "CREATE TABLE x WITH (table_type='ICEBERG', is_external=false, location='s3://l/x/', "
            "partitioning=ARRAY['bucket(8, id)']) AS SELECT 1 AS id",
            "CREATE TABLE x WITH (location = 's3://l/x/', partitioning = ARRAY['bucket(id, 8)']) AS SELECT 1 AS id",
        ),
        ("OPTIMIZE db.t REWRITE DATA USING BIN_PACK WHERE d = 1", "ALTER TABLE db.t EXECUTE optimize WHERE d = 1"),
        ("-- /* {\"app\": \"dbt\"} */\nSELECT `a` FROM \"awsdatacatalog\".db.t;", 'SELECT "a" FROM iceberg.db.t'),
        ("SELECT 'it''s `quoted`' AS x", "SELECT 'it''s `quoted`' AS x"),
        # A comment's apostrophe opens no literal: the catalog after it is still translated.
        (
            "SELECT 1 -- floe's `note`\nFROM \"awsdatacatalog\".\"db\".\"t\" /* it's */",
            "SELECT 1 -- floe's `note`\nFROM iceberg.\"db\".\"t\" /* it's */",
        ),
        ("SHOW TABLES IN db 'stg_*|raw_*'", "SHOW TABLES FROM db"),
        ("SHOW DATABASES LIKE 'jaffle*'", "SHOW SCHEMAS"),
        ("SHOW COLUMNS IN t IN db", "SHOW COLUMNS FROM db.t"),
        ("SHOW PARTITIONS db.events", 'SELECT * FROM "db"."events$partitions"'),
    ],
)
def test_rules(athena, trino):
    assert dialect.translate(athena).sql == trino


def test_hive_ctas_runs_in_the_hive_catalog_with_trinos_properties():
    s = dialect.translate(
        "create table \"awsdatacatalog\".\"db\".\"seed\" with (table_type='hive', is_external=true, "
        "external_location='s3://b/seed/', format='parquet', partitioned_by=ARRAY['day']) as select 1 as id, 'x' as day"
    )
    assert s.catalog == "hive"
    assert s.sql == (
        "create table \"db\".\"seed\" (format = 'PARQUET', external_location = 's3://b/seed/', "
        "partitioned_by = ARRAY['day']) as select 1 as id, 'x' as day"
    ).replace("(format", "with (format")
    # No format given: Parquet, as Athena's CTAS writes.
    assert "format = 'PARQUET'" in dialect.translate("CREATE TABLE t WITH (external_location='s3://b/t/') AS SELECT 1").sql
    assert dialect.translate("CREATE TABLE t WITH (table_type='ICEBERG', location='s3://b/t/') AS SELECT 1").catalog == "iceberg"


def test_show_patterns_are_athenas_regular_expressions():
    s = dialect.translate("SHOW TABLES IN db 'stg_*|raw_customers'")
    import re

    keep = [t for t in ["stg_orders", "raw_customers", "raw_orders", "STG_X", "orders"] if re.fullmatch(s.row_filter, t)]
    assert keep == ["stg_orders", "raw_customers", "STG_X"]


def test_vacuum_is_two_procedures_aged_by_the_tables_property():
    s = dialect.translate("VACUUM db.t")
    assert s.vacuum == ("db", "t")
    assert s.sql == f"ALTER TABLE db.t EXECUTE expire_snapshots(retention_threshold => '{dialect.VACUUM_AGE}s')"
    assert s.extra == [f"ALTER TABLE db.t EXECUTE remove_orphan_files(retention_threshold => '{dialect.VACUUM_AGE}s')"]


@pytest.mark.parametrize(
    ("sql", "error"),
    [
        ("CREATE TABLE t (a tinyint) LOCATION 's3://l/' TBLPROPERTIES ('table_type'='ICEBERG')", "NOT_SUPPORTED"),
        ("CREATE TABLE t (a smallint) LOCATION 's3://l/' TBLPROPERTIES ('table_type'='ICEBERG')", "NOT_SUPPORTED"),
        ("CREATE TABLE t (a int) TBLPROPERTIES ('table_type'='ICEBERG')", "INVALID_TABLE_PROPERTY"),
        ("CREATE TABLE t WITH (table_type='ICEBERG', colour='red') AS SELECT 1", "INVALID_TABLE_PROPERTY"),
        ("CREATE TABLE t WITH (table_type='hive', format='xml') AS SELECT 1", "INVALID_TABLE_PROPERTY"),
        ("CREATE TABLE t WITH (table_type='delta') AS SELECT 1", "INVALID_TABLE_PROPERTY"),
        ("   ", "SYNTAX_ERROR"),
    ],
)
def test_refused_as_athena_refuses(sql, error):
    with pytest.raises(dialect.Refused) as e:
        dialect.translate(sql)
    assert e.value.error_name == error


@pytest.mark.parametrize(
    ("sql", "statement", "sub"),
    [
        ("SELECT 1", "DML", "SELECT"),
        ("insert into t values (1)", "DML", "INSERT"),
        ("CREATE TABLE t WITH (location='s3://x/') AS SELECT 1", "DML", "CREATE_TABLE_AS_SELECT"),
        ("CREATE TABLE t (a int) LOCATION 's3://x/'", "DDL", "CREATE_TABLE"),
        ("CREATE OR REPLACE VIEW v AS SELECT 1", "DDL", "CREATE_VIEW"),
        ("SHOW TABLES", "UTILITY", "SHOW_TABLES"),
        ("-- a comment\nCREATE TABLE t AS -- why\nSELECT 1", "DML", "CREATE_TABLE_AS_SELECT"),
        ("DESCRIBE t", "UTILITY", "DESCRIBE"),
    ],
)
def test_statement_types(sql, statement, sub):
    assert dialect.statement_type(sql) == statement
    assert dialect.substatement_type(sql) == sub


@pytest.mark.parametrize(
    ("athena", "trino"),
    [
        ("CREATE DATABASE db", "CREATE SCHEMA db"),
        ("create database if not exists db COMMENT 'x' LOCATION 's3://b/db/' WITH DBPROPERTIES ('k'='v')",
         "CREATE SCHEMA if not exists db WITH (location = 's3://b/db/')"),
        ("CREATE SCHEMA db", "CREATE SCHEMA db"),
        ("DROP DATABASE IF EXISTS db CASCADE", "DROP SCHEMA IF EXISTS db CASCADE"),
        ("DROP DATABASE db", "DROP SCHEMA db"),
    ],
)
def test_databases_are_trino_schemas(athena, trino):
    assert dialect.translate(athena).sql == trino
