#!/usr/bin/env python3
"""floe against dbt-athena on the same local Athena (run by `scripts/bench.sh --athena`).

N daily full extracts of a customer dimension (scripts/bench_data.py's columns; day 0 has --rows
customers, each next day changes --change % of the keys: 60% updated, 20% deleted, 20% new)
go, day by day, through
  floe   `floe land FILE --wait` on a project whose engine is Athena: landing, bronze,
         standardise + SCD2, audit and publish, every statement on Athena;
  dbt    dbt-athena's `dbt snapshot` (check strategy on every column, Iceberg, hard deletes
         invalidated) reading the same extract as an external Parquet table in S3;
both on one stand-in (scripts/aws-local.sh: Trino 476 behind Athena's API), one after the other,
and through floe's embedded engine (the same project without `engine: athena`: DataFusion over
Iceberg on local disk; its bytes are the decoded bytes its scans read, from the same query log).
With --late, one more extract then lands late (its time half a day after the middle day's, with
--change % of the keys changed from that day) through both floe engines: what it scans is what
the keys it touches need, or, where floe recomputes from bronze, the table's history.
Per day and tool: wall seconds and the bytes Athena reports as scanned (DataScannedInBytes summed
over the queries the tool ran that day, from ListQueryExecutions of its workgroup). At the end,
both histories are compared (each version's values and whether it is current; the validity
times differ by design: floe's are the extract times, dbt's the run times).

Writes OUT/athena.json and OUT/athena.png and puts its section into OUT/results.md.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import boto3
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_data  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
REGION = "eu-west-2"
SOURCE, TABLE = "crm", "customers"
DBT_SCHEMA, DBT_SOURCE_DB, DBT_BUCKET = "bench_dbt", "bench_dbt_src", "bench-dbt"
MARK_START, MARK_END = "<!-- athena:start -->", "<!-- athena:end -->"
HIVE_TYPES = {"bigint": "bigint", "string": "string", "date": "date", "double": "double", "timestamp": "timestamp"}


def log(msg: str) -> None:
    print(f"[{datetime.datetime.now():%H:%M:%S}] {msg}", file=sys.stderr, flush=True)


def free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


# --- data ---------------------------------------------------------------------------------

def extract_time(day: int) -> datetime.datetime:
    return bench_data.DAY0 + datetime.timedelta(days=day)


def make_days(data: Path, rows: int, days: int, change: float, seed: int) -> list[Path]:
    """dayK.parquet for K in 0..days-1, each the previous one with `change`% of its keys changed."""
    files = [data / f"day{k}.parquet" for k in range(days)]
    manifest = data / "manifest.json"
    want = {"rows": rows, "days": days, "change": change, "seed": seed}
    if manifest.exists() and json.loads(manifest.read_text()) == want and all(f.exists() for f in files):
        log(f"extracts already in {data}")
        return files
    data.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    table = bench_data.customers(rng, np.arange(1, rows + 1), extract_time(0))
    pq.write_table(table, files[0])
    for k in range(1, days):
        table, _ = bench_data.day1(rng, table, str(change), at=extract_time(k))
        pq.write_table(table, files[k])
        log(f"made {files[k].name}: {table.num_rows:,} rows")
    manifest.write_text(json.dumps(want))
    return files


# --- the stand-in and the two projects ----------------------------------------------------

def stand_in_env(work: Path, heap: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update({
        "FLOE_AWS_LOCAL_PORT": str(free_port()),
        "FLOE_TRINO_PORT": str(free_port()),
        "FLOE_AWS_LOCAL_DIR": str(work / "aws-local"),
        "FLOE_TRINO_HEAP": heap,
    })
    endpoint = f"http://127.0.0.1:{env['FLOE_AWS_LOCAL_PORT']}"
    env.update({
        "AWS_ENDPOINT_URL": endpoint, "AWS_REGION": REGION, "AWS_DEFAULT_REGION": REGION,
        "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false", "DO_NOT_TRACK": "1",
    })
    return env


def floe_project(path: Path) -> None:
    path.mkdir(parents=True, exist_ok=True)
    (path / "floe.yaml").write_text("name: bench\nengine: local\nlake: lake\n")
    cols = "\n".join(f"      {n}: {{type: {t}{', nullable: false' if n == bench_data.KEY else ''}}}"
                     for n, t in bench_data.COLUMNS)
    (path / "tables").mkdir(exist_ok=True)
    (path / "tables" / f"{SOURCE}.yaml").write_text(
        f"source: {SOURCE}\ntables:\n  {TABLE}:\n    primary_key: [{bench_data.KEY}]\n"
        f"    load: full\n    deletes: invalidate\n    format: parquet\n    max_file_mb: 8192\n"
        f"    columns:\n{cols}\n")


def dbt_project(path: Path) -> None:
    (path / "snapshots").mkdir(parents=True, exist_ok=True)
    (path / "models").mkdir(exist_ok=True)
    (path / "dbt_project.yml").write_text(
        "name: bench\nversion: '1.0.0'\nprofile: bench\nsnapshot-paths: [snapshots]\n")
    (path / "profiles.yml").write_text(
        "bench:\n  target: athena\n  outputs:\n    athena:\n      type: athena\n"
        f"      region_name: {REGION}\n      database: awsdatacatalog\n      schema: {DBT_SCHEMA}\n"
        f"      s3_staging_dir: s3://{DBT_BUCKET}/results/\n      s3_data_dir: s3://{DBT_BUCKET}/tables/\n"
        "      work_group: primary\n      threads: 1\n      num_retries: 0\n")
    (path / "models" / "sources.yml").write_text(
        f"version: 2\nsources:\n  - name: {SOURCE}\n    schema: {DBT_SOURCE_DB}\n    tables:\n      - name: extract\n")
    # The extract as the team would keep it: an external Parquet table over the day's file.
    (path / "snapshots" / "customers_history.sql").write_text(
        "{% snapshot customers_history %}\n"
        f"{{{{ config(target_schema='{DBT_SCHEMA}', unique_key='{bench_data.KEY}', strategy='check',"
        " check_cols='all', hard_deletes='invalidate', table_type='iceberg') }}\n"
        f"select * from {{{{ source('{SOURCE}', 'extract') }}}}\n"
        "{% endsnapshot %}\n")


class Athena:
    def __init__(self, env: dict[str, str]):
        kw = dict(endpoint_url=env["AWS_ENDPOINT_URL"], region_name=REGION,
                  aws_access_key_id="test", aws_secret_access_key="test")
        self.athena = boto3.client("athena", **kw)
        self.s3 = boto3.client("s3", **kw)
        self.glue = boto3.client("glue", **kw)
        self.seen: dict[str, set[str]] = {}

    def run(self, sql: str, workgroup: str, output: str | None = None) -> list[list[str | None]]:
        kw = {"ResultConfiguration": {"OutputLocation": output}} if output else {}
        qid = self.athena.start_query_execution(QueryString=sql, WorkGroup=workgroup, **kw)["QueryExecutionId"]
        while True:
            e = self.athena.get_query_execution(QueryExecutionId=qid)["QueryExecution"]
            state = e["Status"]["State"]
            if state in ("SUCCEEDED", "FAILED", "CANCELLED"):
                break
            time.sleep(0.1)
        if state != "SUCCEEDED":
            raise RuntimeError(f"{sql}: {e['Status'].get('StateChangeReason')}")
        rows, token = [], None
        while True:
            page = self.athena.get_query_results(QueryExecutionId=qid, **({"NextToken": token} if token else {}))
            rows += [[d.get("VarCharValue") for d in r["Data"]] for r in page["ResultSet"]["Rows"]]
            token = page.get("NextToken")
            if not token:
                return rows[1:]

    def new_queries(self, workgroup: str) -> tuple[int, int, int]:
        """(queries, bytes scanned, engine ms) of the workgroup's queries since the last call."""
        ids, token = [], None
        while True:
            page = self.athena.list_query_executions(WorkGroup=workgroup, **({"NextToken": token} if token else {}))
            ids += page["QueryExecutionIds"]
            token = page.get("NextToken")
            if not token:
                break
        seen = self.seen.setdefault(workgroup, set())
        fresh = [i for i in ids if i not in seen]
        seen.update(fresh)
        scanned = engine = 0
        for k in range(0, len(fresh), 50):
            got = self.athena.batch_get_query_execution(QueryExecutionIds=fresh[k:k + 50])
            for e in got["QueryExecutions"]:
                st = e.get("Statistics") or {}
                scanned += st.get("DataScannedInBytes", 0)
                engine += st.get("EngineExecutionTimeInMillis", 0)
        return len(fresh), scanned, engine


def timed(cmd: list[str], env: dict[str, str], cwd: Path, log_file: Path) -> float:
    start = time.monotonic()
    with open(log_file, "ab") as out:
        done = subprocess.run(cmd, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT)
    seconds = time.monotonic() - start
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, cmd))} failed ({done.returncode}); see {log_file}")
    return seconds


# --- the comparison -----------------------------------------------------------------------

def fingerprint(athena: Athena, table: str, current: str, workgroup: str, output: str | None) -> tuple[int, int, str]:
    """(versions, current versions, checksum) over each version's values and whether it is current."""
    text = ("concat_ws('|', cast(customer_id as varchar), first_name, last_name, email, city, segment, "
            "cast(date_of_birth as varchar), cast(credit_limit as varchar), "
            f"cast(cast(to_unixtime(updated_at) as bigint) as varchar), cast({current} as varchar))")
    row = athena.run(f"SELECT count(*), count_if({current}), to_hex(checksum({text})) FROM {table}", workgroup, output)[0]
    return int(row[0]), int(row[1]), row[2]


def main() -> None:
    p = argparse.ArgumentParser(description="floe vs dbt-athena on the local Athena (see scripts/bench.sh --help)")
    p.add_argument("--bin-dir", type=Path, required=True)
    p.add_argument("--days", type=int, default=10)
    p.add_argument("--rows", type=int, default=1_000_000)
    p.add_argument("--change", type=float, default=1.0)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--maintain-every", type=int, default=7,
                   help="run `floe maintain --all` after every N days, as a nightly or weekly schedule would (0: never)")
    p.add_argument("--data-dir", type=Path, default=ROOT / "target" / "bench-data")
    p.add_argument("--work-dir", type=Path, default=ROOT / "target" / "bench-work" / "athena")
    p.add_argument("--out", type=Path, default=ROOT / "bench")
    p.add_argument("--late", action="store_true",
                   help="after the last day, land one late extract (half a day after the middle day's) through both floe engines")
    p.add_argument("--trino-heap", default="6G")
    p.add_argument("--command", default="scripts/bench.sh --athena")
    p.add_argument("--from-json", action="store_true", help="run nothing: write the section and chart again")
    args = p.parse_args()

    if args.from_json:
        result = json.loads((args.out / "athena.json").read_text())
        write(args.out, result)
        return

    # The tools run in their project folders: every path they are given is absolute.
    args.data_dir, args.work_dir, args.bin_dir = args.data_dir.resolve(), args.work_dir.resolve(), args.bin_dir.resolve()
    data = args.data_dir / f"athena-{args.rows}-{args.days}d"
    files = make_days(data, args.rows, args.days, args.change, args.seed)
    work = args.work_dir
    subprocess.run(["rm", "-rf", str(work)], check=True)
    work.mkdir(parents=True)
    env = stand_in_env(work, args.trino_heap)
    floe_dir, dbt_dir = work / "floe", work / "dbt"
    floe_project(floe_dir)
    dbt_project(dbt_dir)
    # Stopped (Ctrl-C, kill): the stand-in goes down with the run, not left running queries.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    aws_local = str(ROOT / "scripts" / "aws-local.sh")
    started = time.monotonic()
    log("starting the stand-in (scripts/aws-local.sh up)")
    subprocess.run([aws_local, "up", str(floe_dir)], env=env, check=True, stdout=subprocess.DEVNULL)
    try:
        log(f"stand-in ready in {time.monotonic() - started:.0f} s")
        result = compare(args, env, files, floe_dir, dbt_dir, work)
    finally:
        subprocess.run([aws_local, "down"], env=env, check=False, stdout=subprocess.DEVNULL)
    write(args.out, result)


def late_extract(data: Path, files: list[Path], change: float, seed: int) -> tuple[Path, datetime.datetime]:
    """An extract timed half a day after the middle day's, with `change`% of its keys changed."""
    mid = len(files) // 2
    at = extract_time(mid) + datetime.timedelta(hours=12)
    path = data / f"late-{mid}.parquet"
    if not path.exists():
        base = pq.read_table(files[mid])  # Parquet gives timestamps back in ms; the generator makes s
        base = base.cast(pa.schema([pa.field(f.name, pa.timestamp("s") if pa.types.is_timestamp(f.type) else f.type)
                                    for f in base.schema]))
        table, _ = bench_data.day1(np.random.default_rng(seed + 1000), base, str(change), at=at)
        pq.write_table(table, path)
    return path, at


def floe_day(floe: str, path: Path, ts: datetime.datetime, project: Path, env: dict[str, str], log_file: Path) -> tuple[float, dict[str, int]]:
    """Seconds of `floe land --wait` and the bytes each stage scanned (floe's query log)."""
    since = datetime.datetime.now(datetime.timezone.utc).isoformat()
    s = timed([floe, "land", str(path), "--table", f"{SOURCE}.{TABLE}", "--extract-ts",
               ts.strftime("%Y-%m-%dT%H:%M:%SZ"), "--wait", "-p", str(project)], env, project, log_file)
    cost = subprocess.run([floe, "cost", "--since", since, "--format", "json", "-p", str(project)],
                          env=env, cwd=project, capture_output=True, text=True, check=True)
    return s, {r["stage"]: int(r["bytes_scanned"]) for r in json.loads(cost.stdout)}


def by_stage(stages: dict[str, int]) -> str:
    return ", ".join(f"{st} {b / 1e6:.1f}" for st, b in sorted(stages.items()))


def compare(args, env, files, floe_dir: Path, dbt_dir: Path, work: Path) -> dict:
    load_before = os.getloadavg()
    athena = Athena(env)
    floe_yaml = (floe_dir / "floe.yaml").read_text()
    workgroup = re.search(r"^\s*workgroup:\s*(\S+)", floe_yaml, re.M)[1]
    prefix = (re.search(r"^\s*database_prefix:\s*(\S*)", floe_yaml, re.M) or [None, ""])[1].strip("'\"")
    athena.s3.create_bucket(Bucket=DBT_BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
    athena.glue.create_database(DatabaseInput={"Name": DBT_SOURCE_DB})
    cols = ", ".join(f"{n} {HIVE_TYPES[t]}" for n, t in bench_data.COLUMNS)
    athena.run(f"CREATE EXTERNAL TABLE {DBT_SOURCE_DB}.extract ({cols}) STORED AS PARQUET "
               f"LOCATION 's3://{DBT_BUCKET}/extract/'", "primary", f"s3://{DBT_BUCKET}/bench/")
    athena.new_queries("primary")
    athena.new_queries(workgroup)
    floe = str((args.bin_dir / "floe").resolve())
    dbt = str(Path(sys.executable).parent / "dbt")
    days = []
    floe_env = {**env, "FLOE_LOG": "warn", "NO_COLOR": "1"}
    # The embedded engine: the same project, never pointed at the stand-in.
    local_dir = work / "floe-embedded"
    floe_project(local_dir)
    local_env = {k: v for k, v in floe_env.items() if not k.startswith("AWS_")}
    for k, f in enumerate(files):
        # floe_audit.query_log has what each stage scanned (`floe cost` reads it back).
        s, stages = floe_day(floe, f, extract_time(k), floe_dir, floe_env, work / "floe.log")
        fq, fb, fe = athena.new_queries(workgroup)
        athena.new_queries(workgroup)  # floe cost's own query is not the day's
        ls, lstages = floe_day(floe, f, extract_time(k), local_dir, local_env, work / "floe-embedded.log")
        maintain_s = maintain_bytes = local_maintain_s = None
        if args.maintain_every and (k + 1) % args.maintain_every == 0:
            maintain_s = timed([floe, "maintain", "--all", "-p", str(floe_dir)], floe_env, floe_dir,
                               work / "floe.log")
            _, maintain_bytes, _ = athena.new_queries(workgroup)
            local_maintain_s = timed([floe, "maintain", "--all", "-p", str(local_dir)], local_env, local_dir,
                                     work / "floe-embedded.log")
            log(f"day {k}: floe maintain --all {maintain_s:.1f} s, {maintain_bytes / 1e6:.1f} MB scanned; "
                f"embedded {local_maintain_s:.1f} s")
        athena.s3.put_object(Bucket=DBT_BUCKET, Key="extract/extract.parquet", Body=f.read_bytes())
        d = timed([dbt, "snapshot", "--project-dir", str(dbt_dir), "--profiles-dir", str(dbt_dir)],
                  env, dbt_dir, work / "dbt.log")
        dq, db, de = athena.new_queries("primary")
        day = {"day": k, "rows": pq.read_metadata(f).num_rows,
               "floe_s": round(s, 2), "floe_bytes": fb, "floe_queries": fq, "floe_engine_ms": fe,
               "floe_stage_bytes": stages, "maintain_s": maintain_s, "maintain_bytes": maintain_bytes,
               "embedded_s": round(ls, 2), "embedded_stage_bytes": lstages, "embedded_maintain_s": local_maintain_s,
               "dbt_s": round(d, 2), "dbt_bytes": db, "dbt_queries": dq, "dbt_engine_ms": de}
        days.append(day)
        log(f"day {k}: floe {s:.1f} s, {fb / 1e6:.1f} MB scanned ({fq} queries; by stage, MB: {by_stage(stages)}); "
            f"embedded {ls:.1f} s (by stage, MB: {by_stage(lstages)}); "
            f"dbt {d:.1f} s, {db / 1e6:.1f} MB scanned ({dq} queries)")
    out = f"s3://{DBT_BUCKET}/bench/"
    floe_fp = fingerprint(athena, f'"{prefix}silver_{SOURCE}"."{TABLE}"', "is_current", "primary", out)
    dbt_fp = fingerprint(athena, f'"{DBT_SCHEMA}"."customers_history"', "dbt_valid_to IS NULL", "primary", out)
    late = None
    if args.late:
        # dbt's snapshot has no extract time (its validity is the run's), so only floe takes it.
        path, at = late_extract(files[0].parent, files, args.change, args.seed)
        s, stages = floe_day(floe, path, at, floe_dir, floe_env, work / "floe.log")
        _, fb, _ = athena.new_queries(workgroup)
        ls, lstages = floe_day(floe, path, at, local_dir, local_env, work / "floe-embedded.log")
        late = {"at": at.isoformat(), "after_day": len(files) // 2, "rows": pq.read_metadata(path).num_rows,
                "floe_s": round(s, 2), "floe_bytes": fb, "floe_stage_bytes": stages,
                "embedded_s": round(ls, 2), "embedded_stage_bytes": lstages}
        log(f"late extract ({at}): floe {s:.1f} s, {fb / 1e6:.1f} MB scanned (by stage, MB: {by_stage(stages)}); "
            f"embedded {ls:.1f} s (by stage, MB: {by_stage(lstages)})")
    return {
        "late": late,
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "command": args.command,
        "machine": f"{os.cpu_count()} CPUs, {os.uname().machine}",
        "rows": args.rows, "change_pct": args.change, "days": days, "maintain_every": args.maintain_every,
        "floe_history": {"versions": floe_fp[0], "current": floe_fp[1], "checksum": floe_fp[2]},
        "dbt_history": {"versions": dbt_fp[0], "current": dbt_fp[1], "checksum": dbt_fp[2]},
        "equal": floe_fp == dbt_fp,
        "trino_heap": args.trino_heap,
        "load_average": {"before": [round(x, 2) for x in load_before],
                         "after": [round(x, 2) for x in os.getloadavg()]},
    }


# --- the report ---------------------------------------------------------------------------

def section(r: dict) -> str:
    lines = [
        MARK_START,
        "## floe vs dbt-athena on the local Athena",
        "",
        f"- date: {r['date']}; machine: {r['machine']}; command: `{r['command']}`"
        + (f"; load average (1/5/15 min) before {' '.join(map(str, r['load_average']['before']))}, "
           f"after {' '.join(map(str, r['load_average']['after']))}" if r.get("load_average") else ""),
        f"- {len(r['days'])} daily full extracts of {r['rows']:,} customers, {r['change_pct']:g}% of the keys "
        "changed each day (60% updated, 20% deleted, 20% new), Parquet; both tools on one stand-in "
        f"(Trino 476 behind Athena's API, heap {r['trino_heap']}), one after the other",
        "- floe = `floe land FILE --wait` with `engine: athena` (landing, bronze, standardise + SCD2, audit, "
        "publish); dbt = dbt-athena 1.9.5 `dbt snapshot` (check strategy on every column, Iceberg, "
        "hard deletes invalidated) over an external Parquet table holding the same extract",
        "- bytes scanned = the sum of Athena's DataScannedInBytes over the queries the tool ran that day "
        "(Trino's physical input bytes on the stand-in; Athena bills per TB of this figure, 10 MB minimum per query)",
        "",
        "- floe's standardise + audit = those stages' bytes in `floe_audit.query_log` (`floe cost --by stage`); "
        + (f"`floe maintain --all` ran after every {r['maintain_every']} days (its time and bytes are not in the day's)"
           if r.get("maintain_every") else "no maintenance ran"),
        "",
        "- embedded = the same `floe land FILE --wait` on the embedded engine (DataFusion over Iceberg on local "
        "disk); its bytes are what its scans decoded (the query log's figure there), not a bill",
        "",
        "| day | rows | floe (s) | dbt (s) | floe/dbt | floe scanned (MB) | floe standardise + audit (MB) | dbt scanned (MB) | floe queries | dbt queries | maintain (s, MB) | embedded (s) | embedded standardise + audit (MB) |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    def sa(d: dict, key: str = "floe_stage_bytes") -> float | None:
        st = d.get(key)
        return None if st is None else (st.get("standardise", 0) + st.get("audit", 0)) / 1e6
    def cell(x: float | None, fmt: str) -> str:
        return "" if x is None else format(x, fmt)
    for d in r["days"]:
        m = f"{d['maintain_s']:.1f}, {d['maintain_bytes'] / 1e6:,.1f}" if d.get("maintain_s") is not None else ""
        lines.append(
            f"| {d['day']} | {d['rows']:,} | {d['floe_s']:.1f} | {d['dbt_s']:.1f} | {d['floe_s'] / d['dbt_s']:.2f} | "
            f"{d['floe_bytes'] / 1e6:,.1f} | {cell(sa(d), ',.1f')} | {d['dbt_bytes'] / 1e6:,.1f} | {d['floe_queries']} | "
            f"{d['dbt_queries']} | {m} | {cell(d.get('embedded_s'), '.1f')} | {cell(sa(d, 'embedded_stage_bytes'), ',.1f')} |")
    if len(r["days"]) > 2 and sa(r["days"][2]) and sa(r["days"][-1]) is not None:
        last, second = r["days"][-1], r["days"][2]
        lines += ["", f"floe's standardise + audit bytes on day {last['day']} are "
                  f"{sa(last) / sa(second):.2f}x day 2's on the stand-in"
                  + (f", {sa(last, 'embedded_stage_bytes') / sa(second, 'embedded_stage_bytes'):.2f}x on the embedded engine"
                     if sa(second, "embedded_stage_bytes") and sa(last, "embedded_stage_bytes") is not None else "")
                  + "."]
    if r.get("late"):
        late = r["late"]
        lines += ["", f"A late extract ({late['rows']:,} rows, timed {late['at']}, between day {late['after_day']} and "
                  f"day {late['after_day'] + 1}, landed after the last day): stand-in {late['floe_s']:.1f} s, "
                  f"{late['floe_bytes'] / 1e6:,.1f} MB scanned (by stage, MB: {by_stage(late['floe_stage_bytes'])}); "
                  f"embedded {late['embedded_s']:.1f} s (by stage, MB: {by_stage(late['embedded_stage_bytes'])})."]
    if r.get("note"):
        lines += ["", f"Note: {r['note']}."]
    f, g = r["floe_history"], r["dbt_history"]
    verdict = "equal" if r["equal"] else "**different**"
    lines += [
        "",
        f"Histories after the last day: {verdict} (floe: {f['versions']:,} versions, {f['current']:,} current, "
        f"checksum {f['checksum']}; dbt: {g['versions']:,} versions, {g['current']:,} current, checksum "
        f"{g['checksum']}; compared: every version's values and whether it is current).",
        "",
        "![floe vs dbt-athena per day](athena.png)",
        MARK_END,
    ]
    return "\n".join(lines) + "\n"


def chart(path: Path, r: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    days = [d["day"] for d in r["days"]]
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4))
    a.plot(days, [d["floe_s"] for d in r["days"]], marker="o", label="floe (Athena path)")
    a.plot(days, [d["dbt_s"] for d in r["days"]], marker="s", label="dbt-athena snapshot")
    a.set(title="seconds per daily extract", xlabel="day", ylabel="s")
    b.plot(days, [d["floe_bytes"] / 1e6 for d in r["days"]], marker="o", label="floe")
    b.plot(days, [d["dbt_bytes"] / 1e6 for d in r["days"]], marker="s", label="dbt-athena")
    b.set(title="bytes scanned per daily extract", xlabel="day", ylabel="MB")
    from matplotlib.ticker import MaxNLocator

    for ax in (a, b):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        ax.legend()
        ax.set_ylim(bottom=0)
    fig.suptitle(f"{r['rows']:,} rows, {r['change_pct']:g}% change a day, on the local Athena ({r['date']})")
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def write(out: Path, r: dict) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "athena.json").write_text(json.dumps(r, indent=1) + "\n")
    chart(out / "athena.png", r)
    results = out / "results.md"
    text = results.read_text() if results.exists() else "# floe benchmarks\n"
    block = section(r)
    if MARK_START in text and MARK_END in text:
        text = text[: text.index(MARK_START)] + block + text[text.index(MARK_END) + len(MARK_END) + 1 :]
    else:
        text = text.rstrip("\n") + "\n\n" + block
    results.write_text(text)
    print(block)
    log(f"wrote {out / 'athena.json'}, {out / 'athena.png'} and its section of {results}")


if __name__ == "__main__":
    main()
