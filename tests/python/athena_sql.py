"""Checks the Athena SQL floe renders, with engines floe does not share code with.

Input (JSON on stdin):
  statements: every statement rendered for the scenario; each must parse as Athena SQL
              (sqlglot, read="athena"). A job with only statements stops there.
  bronze:     {"table", "columns": [[name, duckdb_type]], "rows": [[...]]} - the scenario's bronze.
  silver:     {"table", "columns": [[name, duckdb_type]]} - the silver table's layout.
  rebuild:    the SCD2 rebuild query (Athena SQL).
  merges:     the SCD2 MERGE statements, one per extract, in extract order.
  late_merges: (optional) the same with one extract left out and then spliced in late.
  compare:    the columns to return, in order.

Output (JSON on stdout): {"rebuild": rows, "merged": rows[, "late": rows]}, the silver history each way after
transpiling to DuckDB (sqlglot, write="duckdb") and running there; values as text (timestamps
as 2026-11-01T06:00:00Z, booleans as true/false, NULL as null).
"""

import datetime
import decimal
import json
import sys

import duckdb
import sqlglot


def text(v):
    if v is None:
        return None
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, datetime.datetime):
        return v.strftime("%Y-%m-%dT%H:%M:%S") + "Z"
    if isinstance(v, (datetime.date, decimal.Decimal, int, float)):
        return str(v)
    return str(v)


def main():
    job = json.load(sys.stdin)
    for i, s in enumerate(job["statements"]):
        try:
            sqlglot.parse_one(s, read="athena")
        except Exception as e:  # report the statement, then fail
            print(f"statement {i + 1} does not parse as Athena SQL: {e}\n{s}", file=sys.stderr)
            sys.exit(1)

    if "bronze" not in job:
        json.dump({"parsed": len(job["statements"])}, sys.stdout)
        return

    def duck(sql):
        return sqlglot.transpile(sql, read="athena", write="duckdb")[0]

    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")

    def create(spec):
        schema = spec["table"].split(".")[0]
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
        cols = ", ".join(f'"{n}" {t}' for n, t in spec["columns"])
        con.execute(f"CREATE OR REPLACE TABLE {spec['table']} ({cols})")

    create(job["bronze"])
    marks = ", ".join("?" for _ in job["bronze"]["columns"])
    con.executemany(f"INSERT INTO {job['bronze']['table']} VALUES ({marks})", job["bronze"]["rows"])

    cols = ", ".join(f'"{c}"' for c in job["compare"])
    out = {}
    try:
        rows = con.execute(f"SELECT {cols} FROM ({duck(job['rebuild'])}) h").fetchall()
    except Exception as e:
        print(f"the rebuild failed on DuckDB: {e}\n{duck(job['rebuild'])}", file=sys.stderr)
        sys.exit(1)
    out["rebuild"] = [[text(v) for v in r] for r in rows]

    def merged(merges):
        create(job["silver"])
        for m in merges:
            try:
                con.execute(duck(m))
            except Exception as e:
                print(f"a MERGE failed on DuckDB: {e}\n{duck(m)}", file=sys.stderr)
                sys.exit(1)
        rows = con.execute(f"SELECT {cols} FROM {job['silver']['table']}").fetchall()
        return [[text(v) for v in r] for r in rows]

    out["merged"] = merged(job["merges"])
    if "late_merges" in job:
        out["late"] = merged(job["late_merges"])
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
