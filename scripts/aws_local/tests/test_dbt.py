"""dbt-athena, a client floe did not write, builds a public dbt project on the local Athena, and
every model equals what dbt-duckdb builds from the same project.

The project is dbt-labs' jaffle_shop (tests/fixtures/dbt/jaffle_shop, with its licence), plus an
incremental Iceberg model and a check-strategy Iceberg snapshot. Both tools run `dbt build` twice
(`var('day')` 1 then 2: the second run merges into the incremental model and closes versions in
the snapshot, one of them for a hard delete), then each model is read back from both and compared.

dbt lives in its own venv (.venv-dbt, from scripts/requirements-dbt.txt; scripts/setup.sh makes
it): dbt-core pins versions of its own that the stand-in's venv need not share.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from decimal import Decimal, InvalidOperation
from pathlib import Path

import duckdb
import pytest

from conftest import REGION, Athena, client

ROOT = Path(__file__).resolve().parents[3]
FIXTURE = ROOT / "tests" / "fixtures" / "dbt" / "jaffle_shop"

# Every relation the project builds, and the columns that identify a row in it.
MODELS = {
    "raw_customers": "id",
    "raw_orders": "id",
    "raw_payments": "id",
    "stg_customers": "customer_id",
    "stg_orders": "order_id",
    "stg_payments": "payment_id",
    "customers": "customer_id",
    "orders": "order_id",
    "orders_incremental": "order_id",
}


# The seeds' sizes: every model derives from them, so none of the comparisons is of empty tables.
SEED_ROWS = {"raw_customers": 100, "raw_orders": 99, "raw_payments": 113}


def dbt_bin() -> Path:
    path = Path(os.environ.get("FLOE_DBT", ROOT / ".venv-dbt" / "bin" / "dbt"))
    if not path.exists():
        if os.environ.get("FLOE_REQUIRE_DBT") == "1":
            pytest.fail(f"dbt not found at {path}: run scripts/setup.sh (it makes .venv-dbt)")
        pytest.skip(f"dbt not found at {path} (scripts/setup.sh makes .venv-dbt)")
    return path


def normal(value) -> str | None:
    """One spelling per value across engines: Athena's result CSV has text, DuckDB Python values
    (10 and 10.0 and 10.00 are the same amount; a date is its ISO text)."""
    if value is None:
        return None
    text = value.isoformat() if hasattr(value, "isoformat") else str(value)
    try:
        number = Decimal(text)
    except InvalidOperation:
        return text
    return format(number.normalize(), "f") if number.is_finite() else text


def run_dbt(project: Path, env: dict, *args: str) -> str:
    cmd = [str(dbt_bin()), *args, "--project-dir", str(project), "--profiles-dir", str(project)]
    done = subprocess.run(cmd, cwd=project, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, f"{' '.join(args)} failed:\n{done.stdout[-6000:]}\n{done.stderr[-3000:]}"
    return done.stdout


@pytest.fixture()
def built(endpoint, tmp_path):
    """The project built by both tools over two days; yields readers of each tool's relations."""
    dbt_bin()
    schema = f"jaffle_{uuid.uuid4().hex[:8]}"
    bucket = f"dbt-{schema.replace('_', '-')}"
    client("s3", endpoint).create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
    project = tmp_path / "jaffle_shop"
    shutil.copytree(FIXTURE, project)
    env = {
        **os.environ,
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "DBT_SCHEMA": schema,
        "DBT_BUCKET": bucket,
        "DBT_DUCKDB_PATH": str(tmp_path / "jaffle.duckdb"),
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
    }
    logs = {}
    for day in (1, 2):
        for target in ("athena", "duckdb"):
            logs[(target, day)] = run_dbt(project, env, "build", "--target", target, "--vars", f"{{day: {day}}}")

    athena = Athena(endpoint, schema, f"s3://{bucket}/reads/")
    ddb = duckdb.connect(str(tmp_path / "jaffle.duckdb"), read_only=True)

    def read_athena(sql: str):
        header, *rows = athena.result(sql)
        return header, [[normal(v) for v in r] for r in rows]

    def read_duckdb(sql: str):
        cur = ddb.execute(sql.replace(f"{schema}.", f'"{schema}".'))
        return [d[0] for d in cur.description], [[normal(v) for v in r] for r in cur.fetchall()]

    yield schema, read_athena, read_duckdb, logs
    ddb.close()


def test_dbt_athena_builds_jaffle_shop_as_dbt_duckdb_does(built):
    schema, read_athena, read_duckdb, logs = built
    for (target, day), out in logs.items():
        # Seeds, views, tables, the incremental model, the snapshot and every data test.
        assert "PASS=" in out and "ERROR=0" in out, (target, day, out[-2000:])

    for model, key in MODELS.items():
        sql = f"SELECT * FROM {schema}.{model} ORDER BY {key}"
        a_cols, a_rows = read_athena(sql)
        d_cols, d_rows = read_duckdb(sql)
        assert a_cols == d_cols, (model, a_cols, d_cols)
        if model in SEED_ROWS:
            assert len(a_rows) == SEED_ROWS[model], (model, len(a_rows))
        assert a_rows == d_rows, f"{model} differs: first Athena rows {a_rows[:3]}, DuckDB {d_rows[:3]}"

    # The incremental model's second run merged: orders 51-99 inserted, every tenth order updated.
    _, inc = read_athena(f"SELECT count(*), count_if(status = 'returned' AND order_id % 10 = 0) FROM {schema}.orders_incremental")
    assert inc == [["99", "9"]]

    # The snapshot: business columns and which version is current, on both tools.
    sql = (f"SELECT id, first_name, last_name, dbt_valid_to IS NULL AS is_current FROM {schema}.customers_snapshot "
           "ORDER BY id, is_current, first_name")
    _, a_snap = read_athena(sql)
    _, d_snap = read_duckdb(sql)
    assert [r[:3] for r in a_snap] == [r[:3] for r in d_snap]
    assert [r[3].lower() for r in a_snap] == [r[3].lower() for r in d_snap]
    assert len(a_snap) == 100 + 5, "five customers changed once: one closed version each"
    closed = sorted(int(r[0]) for r in a_snap if r[3].lower() == "false")
    assert closed == [1, 2, 3, 4, 5, 100], "changed customers and the hard-deleted one are closed"
