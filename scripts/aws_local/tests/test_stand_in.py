"""The stand-in behaves as Athena does where floe (and any client) relies on it."""

from __future__ import annotations

import threading

import pytest

from conftest import client


def create(athena, bucket, table="t", cols="`id` bigint, `name` string"):
    athena.run(f"CREATE TABLE {table} ({cols}) LOCATION 's3://{bucket}/{table}/' "
               "TBLPROPERTIES ('table_type' = 'ICEBERG', 'format' = 'parquet')")


def test_iceberg_ddl_insert_select_and_statistics(athena, db):
    _, bucket = db
    create(athena, bucket, cols="`id` bigint, `name` string, `at` timestamp, `amount` decimal(10,2)")
    e = athena.run("INSERT INTO t VALUES (1, 'a', TIMESTAMP '2026-11-03 06:00:00.123456', 11.50)")
    assert e["StatementType"] == "DML"
    res = athena.client.get_query_results(QueryExecutionId=e["QueryExecutionId"])
    assert res["UpdateCount"] == 1
    assert athena.rows("SELECT id, name, at, amount FROM t") == [
        ["1", "a", "2026-11-03 06:00:00.123456", "11.50"]]
    e = athena.run("SELECT count(*) FROM t WHERE name = 'a'")
    assert e["Statistics"]["DataScannedInBytes"] > 0


def test_refused_as_athena_refuses(athena, db):
    _, bucket = db
    for ty in ("tinyint", "smallint"):
        e = athena.wait(athena.start(f"CREATE TABLE x_{ty} (a {ty}) LOCATION 's3://{bucket}/x/' "
                                     "TBLPROPERTIES ('table_type'='ICEBERG')"))
        assert e["Status"]["State"] == "FAILED"
        assert e["Status"]["StateChangeReason"].startswith("NOT_SUPPORTED:")
    e = athena.wait(athena.start("SELECT TIMESTAMP '2026-11-03T06:00:00.000000Z'"))
    assert e["Status"]["State"] == "FAILED"
    assert e["Status"]["StateChangeReason"].startswith("INVALID_LITERAL:")
    assert e["Status"]["AthenaError"]["ErrorCategory"] == 2


def test_results_page_with_one_header_row(athena, db):
    _, bucket = db
    create(athena, bucket)
    athena.run("INSERT INTO t SELECT x, CAST(x AS varchar) FROM UNNEST(sequence(1, 2500)) AS u(x)")
    qid = athena.run("SELECT id FROM t ORDER BY id")["QueryExecutionId"]
    pages, token = [], None
    while True:
        page = athena.client.get_query_results(QueryExecutionId=qid, MaxResults=1000,
                                               **({"NextToken": token} if token else {}))
        pages.append([r["Data"][0].get("VarCharValue") for r in page["ResultSet"]["Rows"]])
        token = page.get("NextToken")
        if not token:
            break
    assert [len(p) for p in pages] == [1000, 1000, 501]
    assert pages[0][0] == "id" and pages[0][1] == "1" and pages[2][-1] == "2500"
    # The results are in S3 as Athena writes them.
    s3 = client("s3", athena.client.meta.endpoint_url)
    body = s3.get_object(Bucket=bucket, Key=f"results/{qid}.csv")["Body"].read().decode()
    assert body.splitlines()[:2] == ['"id"', '"1"']


def test_concurrent_inserts_are_all_kept(athena, db):
    """moto's Glue alone loses concurrent Iceberg commits; the stand-in's must not."""
    _, bucket = db
    create(athena, bucket)
    ids = [athena.start(f"INSERT INTO t VALUES ({i}, 'w')") for i in range(12)]
    done = [athena.wait(i) for i in ids]
    ok = [e for e in done if e["Status"]["State"] == "SUCCEEDED"]
    failed = [e for e in done if e["Status"]["State"] == "FAILED"]
    # Every commit is kept or refused with a commit error; none is lost silently.
    assert all(e["Status"]["StateChangeReason"].startswith("ICEBERG_COMMIT_ERROR") for e in failed)
    assert athena.rows("SELECT count(*) FROM t") == [[str(len(ok))]]
    assert len(ok) >= 1


def test_stale_glue_version_is_refused(endpoint, db):
    name, _ = db
    glue = client("glue", endpoint)
    glue.create_table(DatabaseName=name, TableInput={"Name": "g", "Parameters": {"v": "1"}})
    version = glue.get_table(DatabaseName=name, Name="g")["Table"]["VersionId"]
    glue.update_table(DatabaseName=name, TableInput={"Name": "g", "Parameters": {"v": "2"}}, VersionId=version)
    try:
        glue.update_table(DatabaseName=name, TableInput={"Name": "g", "Parameters": {"v": "3"}}, VersionId=version)
        raise AssertionError("a stale VersionId was accepted")
    except glue.exceptions.ConcurrentModificationException:
        pass
    assert glue.get_table(DatabaseName=name, Name="g")["Table"]["Parameters"] == {"v": "2"}


def test_stop_cancels_a_running_query(athena):
    qid = athena.start("SELECT count(*) FROM UNNEST(sequence(1, 10000)) a(x) "
                       "CROSS JOIN UNNEST(sequence(1, 10000)) b(y) CROSS JOIN UNNEST(sequence(1, 1000)) c(z)")
    threading.Event().wait(1.0)
    athena.client.stop_query_execution(QueryExecutionId=qid)
    assert athena.wait(qid)["Status"]["State"] == "CANCELLED"


def test_client_request_token_is_idempotent(athena):
    a = athena.start("SELECT 1", ClientRequestToken="same-token-0123456789012345678901")
    b = athena.start("SELECT 1", ClientRequestToken="same-token-0123456789012345678901")
    assert a == b


def test_time_travel_and_pinned_view(athena, db):
    _, bucket = db
    create(athena, bucket)
    athena.run("INSERT INTO t VALUES (1, 'a')")
    first = athena.rows('SELECT snapshot_id FROM "t$snapshots" ORDER BY committed_at DESC LIMIT 1')[0][0]
    athena.run("INSERT INTO t VALUES (2, 'b')")
    athena.run(f"CREATE OR REPLACE VIEW v AS SELECT * FROM t FOR VERSION AS OF {first}")
    assert athena.rows("SELECT id FROM v") == [["1"]]
    assert athena.rows("SELECT count(*) FROM t") == [["2"]]


def test_iceberg_columns_evolve_as_athena_ddl_says_and_pinned_views_keep_their_schema(athena, db):
    _, bucket = db
    create(athena, bucket)
    athena.run("INSERT INTO t VALUES (1, 'a')")
    first = athena.rows('SELECT snapshot_id FROM "t$snapshots" ORDER BY committed_at DESC LIMIT 1')[0][0]
    athena.run(f"CREATE OR REPLACE VIEW v AS SELECT * FROM t FOR VERSION AS OF {first}")
    athena.run("ALTER TABLE t ADD COLUMNS (`city` string, `qty` int)")
    athena.run("ALTER TABLE t CHANGE COLUMN `qty` `qty` bigint")
    athena.run("ALTER TABLE t DROP COLUMN `name`")
    athena.run("INSERT INTO t VALUES (2, 'Leeds', 3000000000)")
    assert athena.rows("SELECT id, city, qty FROM t ORDER BY id") == [["1", None, None], ["2", "Leeds", "3000000000"]]
    # The view pinned before the change reads that snapshot with its own columns.
    assert athena.rows("SELECT * FROM v") == [["1", "a"]]
    assert [r[0].split()[0] for r in athena.result("DESCRIBE t")] == ["id", "city", "qty"]
    with pytest.raises(AssertionError, match="NOT_SUPPORTED|reorder"):
        athena.run("ALTER TABLE t CHANGE COLUMN `city` `city` string FIRST")


def test_hive_external_tables_read_csv_and_parquet_as_athena_does(athena, db, endpoint):
    name, bucket = db
    s3 = client("s3", endpoint)
    s3.put_object(Bucket=bucket, Key="csv/people/part-1.csv", Body=b"id,name\n1,Ada\n2,\"Bo, Jr\"\n")
    athena.run(
        "-- /* {\"app\": \"dbt\"} */\n"
        "CREATE EXTERNAL TABLE IF NOT EXISTS `people_csv` (`id` int, `name` string) "
        "ROW FORMAT SERDE 'org.apache.hadoop.hive.serde2.OpenCSVSerde' "
        f"LOCATION 's3://{bucket}/csv/people/' TBLPROPERTIES ('skip.header.line.count'='1')"
    )
    table = client("glue", endpoint).get_table(DatabaseName=name, Name="people_csv")["Table"]
    assert table["TableType"] == "EXTERNAL_TABLE"
    assert athena.rows("SELECT id, name FROM people_csv ORDER BY id") == [["1", "Ada"], ["2", "Bo, Jr"]]
    # Parquet written by an Iceberg CTAS, read again through a Hive table over its files.
    athena.run(f"CREATE TABLE src WITH (table_type='ICEBERG', is_external=false, location='s3://{bucket}/src/') "
               "AS SELECT 1 AS id, 'x' AS name")
    athena.run(
        f"CREATE EXTERNAL TABLE lines (line string) LOCATION 's3://{bucket}/csv/people/'"
    )
    assert len(athena.rows("SELECT line FROM lines")) == 3
    e = athena.wait(athena.start(
        f"CREATE EXTERNAL TABLE bad (a int) PARTITIONED BY (day string) LOCATION 's3://{bucket}/x/' "
        "TBLPROPERTIES ('table_type'='ICEBERG')"))
    assert e["Status"]["State"] == "FAILED"
    assert "CREATE EXTERNAL TABLE is not supported for Iceberg" in e["Status"]["StateChangeReason"]


def test_hive_partitions_properties_and_catalog_metadata(athena, db, endpoint):
    name, bucket = db
    s3 = client("s3", endpoint)
    for day, rows in (("2026-11-01", b"1,a\n"), ("2026-11-02", b"2,b\n3,c\n")):
        s3.put_object(Bucket=bucket, Key=f"events/day={day}/part.csv", Body=rows)
    athena.run(
        "CREATE EXTERNAL TABLE events (id int, v string) PARTITIONED BY (day string) "
        "ROW FORMAT DELIMITED FIELDS TERMINATED BY ',' "
        f"LOCATION 's3://{bucket}/events/'"
    )
    assert athena.rows("SELECT count(*) FROM events") == [["0"]]
    athena.run("MSCK REPAIR TABLE events")
    assert athena.rows("SELECT day, count(*) FROM events GROUP BY day ORDER BY day") == [
        ["2026-11-01", "1"], ["2026-11-02", "2"]]
    athena.run("ALTER TABLE events DROP PARTITION (day='2026-11-01')")
    assert athena.rows("SELECT count(*) FROM events") == [["2"]]
    s3.put_object(Bucket=bucket, Key="elsewhere/p.csv", Body=b"9,z\n")
    athena.run(f"ALTER TABLE events ADD IF NOT EXISTS PARTITION (day='2026-11-09') LOCATION 's3://{bucket}/elsewhere/'")
    assert athena.rows("SELECT id FROM events WHERE day = '2026-11-09'") == [["9"]]
    athena.run("ALTER TABLE events SET TBLPROPERTIES ('classification'='csv', 'owner'='floe')")
    meta = athena.client.get_table_metadata(CatalogName="AwsDataCatalog", DatabaseName=name, TableName="events")
    t = meta["TableMetadata"]
    assert t["Parameters"]["owner"] == "floe"
    assert [c["Name"] for c in t["Columns"]] == ["id", "v"]
    assert [c["Name"] for c in t["PartitionKeys"]] == ["day"]
    listed = athena.client.list_table_metadata(CatalogName="AwsDataCatalog", DatabaseName=name)
    assert "events" in [x["Name"] for x in listed["TableMetadataList"]]
    dbs = athena.client.list_databases(CatalogName="AwsDataCatalog", MaxResults=50)
    names = [d["Name"] for d in dbs["DatabaseList"]]
    token = dbs.get("NextToken")
    while token:
        dbs = athena.client.list_databases(CatalogName="AwsDataCatalog", MaxResults=50, NextToken=token)
        names += [d["Name"] for d in dbs["DatabaseList"]]
        token = dbs.get("NextToken")
    assert name in names
    # The Glue catalog is there as in any account, and the workgroup a new account has.
    catalogs = athena.client.list_data_catalogs()["DataCatalogsSummary"]
    assert {"CatalogName": "AwsDataCatalog", "Type": "GLUE"} in catalogs
    assert athena.client.get_data_catalog(Name="AwsDataCatalog")["DataCatalog"]["Type"] == "GLUE"
    assert athena.client.get_work_group(WorkGroup="primary")["WorkGroup"]["Name"] == "primary"


def test_show_and_describe_answer_as_athena_prints_them(athena, db, endpoint):
    name, bucket = db
    client("s3", endpoint).put_object(Bucket=bucket, Key="ev/day=2026-11-01/p.csv", Body=b"1,a\n")
    athena.run(
        "CREATE EXTERNAL TABLE events (id int, v string COMMENT 'the value') PARTITIONED BY (day string) "
        f"ROW FORMAT DELIMITED FIELDS TERMINATED BY ',' LOCATION 's3://{bucket}/ev/'"
    )
    athena.run("MSCK REPAIR TABLE events")
    athena.run(
        f"CREATE TABLE stg_people (id bigint, name string, at timestamp) LOCATION 's3://{bucket}/p/' "
        "TBLPROPERTIES ('table_type'='ICEBERG')"
    )
    # Utility results have no header row: `rows` drops the first row, so read them whole here.
    def lines(sql: str) -> list[str]:
        return [r[0] or "" for r in athena.result(sql)]

    assert sorted(lines(f"SHOW TABLES IN {name}")) == ["events", "stg_people"]
    assert lines(f"SHOW TABLES IN {name} 'stg_*|nothing'") == ["stg_people"]
    assert lines("SHOW COLUMNS IN stg_people") == ["id", "name", "at"]
    assert lines(f"SHOW DATABASES LIKE '{name}'") == [name]
    assert lines("SHOW PARTITIONS events") == ["day=2026-11-01"]
    pad = lambda *cells: "\t".join(f"{c:<20}" for c in cells)  # noqa: E731 - Hive's layout
    assert lines("DESCRIBE stg_people") == [pad("id", "bigint", ""), pad("name", "string", ""), pad("at", "timestamp", "")]
    assert lines("DESCRIBE events") == [
        pad("id", "int", ""), pad("v", "string", "the value"), pad("day", "string", ""),
        "", "# Partition Information", pad("# col_name", "data_type", "comment"), "", pad("day", "string", ""),
    ]
