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
    ],
)
def test_rules(athena, trino):
    assert dialect.translate(athena).sql == trino


def test_vacuum_is_two_procedures():
    s = dialect.translate("VACUUM db.t")
    assert s.sql.startswith("ALTER TABLE db.t EXECUTE expire_snapshots")
    assert s.extra == ["ALTER TABLE db.t EXECUTE remove_orphan_files(retention_threshold => '5d')"]


@pytest.mark.parametrize(
    ("sql", "error"),
    [
        ("CREATE TABLE t (a tinyint) LOCATION 's3://l/' TBLPROPERTIES ('table_type'='ICEBERG')", "NOT_SUPPORTED"),
        ("CREATE TABLE t (a smallint) LOCATION 's3://l/' TBLPROPERTIES ('table_type'='ICEBERG')", "NOT_SUPPORTED"),
        ("CREATE TABLE t (a int) TBLPROPERTIES ('table_type'='ICEBERG')", "INVALID_TABLE_PROPERTY"),
        ("CREATE TABLE t WITH (table_type='ICEBERG', colour='red') AS SELECT 1", "INVALID_TABLE_PROPERTY"),
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
    ],
)
def test_statement_types(sql, statement, sub):
    assert dialect.statement_type(sql) == statement
    assert dialect.substatement_type(sql) == sub
