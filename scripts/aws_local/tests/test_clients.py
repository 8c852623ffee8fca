"""Athena clients floe did not write, unchanged, on the stand-in: PyAthena's DB-API cursor
(queries, types, errors, cancellation) with only the endpoint set."""

from __future__ import annotations

import threading

import pytest
from pyathena import connect
from pyathena.error import OperationalError

from conftest import REGION


@pytest.fixture()
def cursor(endpoint, db, monkeypatch):
    name, bucket = db
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    conn = connect(
        s3_staging_dir=f"s3://{bucket}/pyathena/",
        region_name=REGION,
        schema_name=name,
        aws_access_key_id="test",
        aws_secret_access_key="test",
        poll_interval=0.05,
    )
    return conn.cursor()


def test_pyathena_runs_ddl_writes_and_typed_reads(cursor, db):
    _, bucket = db
    cursor.execute(
        f"CREATE TABLE people (id bigint, name string, score decimal(5,2), seen timestamp) "
        f"LOCATION 's3://{bucket}/people/' TBLPROPERTIES ('table_type'='ICEBERG')"
    )
    cursor.execute(
        "INSERT INTO people VALUES (1, 'Ada', 12.50, TIMESTAMP '2026-11-01 06:00:00'), "
        "(2, NULL, NULL, NULL)"
    )
    assert cursor.rowcount == 2
    cursor.execute("SELECT id, name, score, seen FROM people ORDER BY id")
    rows = cursor.fetchall()
    assert [c[0] for c in cursor.description] == ["id", "name", "score", "seen"]
    assert rows[0][0] == 1 and rows[0][1] == "Ada"
    assert str(rows[0][2]) == "12.50"
    assert rows[0][3].isoformat().startswith("2026-11-01T06:00:00")
    assert rows[1] == (2, None, None, None)
    # Parameters, as PyAthena formats them into the statement.
    cursor.execute("SELECT name FROM people WHERE id = %(id)d", {"id": 1})
    assert cursor.fetchall() == [("Ada",)]
    assert cursor.data_scanned_in_bytes > 0


def test_pyathena_sees_athena_errors(cursor):
    with pytest.raises(OperationalError, match="SYNTAX_ERROR"):
        cursor.execute("SELEC 1")
    with pytest.raises(OperationalError, match="TABLE_NOT_FOUND"):
        cursor.execute("SELECT * FROM no_such_table")


def test_pyathena_cancels_a_running_query(cursor):
    done = threading.Event()
    error: list[BaseException] = []

    def slow():
        try:
            cursor.execute(
                "SELECT count(*) FROM UNNEST(sequence(1, 10000)) a(x) "
                "CROSS JOIN UNNEST(sequence(1, 10000)) b(y) CROSS JOIN UNNEST(sequence(1, 1000)) c(z)"
            )
        except BaseException as e:  # noqa: BLE001 - the cancellation is what this test waits for
            error.append(e)
        finally:
            done.set()

    t = threading.Thread(target=slow)
    t.start()
    while cursor.query_id is None and not done.is_set():
        threading.Event().wait(0.05)
    threading.Event().wait(0.5)
    cursor.cancel()
    assert done.wait(60), "the cancelled query did not end"
    assert error, "a cancelled query must not succeed"
    assert "CANCELLED" in str(error[0]) or "cancel" in str(error[0]).lower()
