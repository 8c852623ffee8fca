#!/usr/bin/env python3
"""floe against the tools users would pick instead (run by scripts/bench.sh, which documents it).

Every measured command is a child process: its time is wall clock from spawn to exit, its peak
memory the ru_maxrss that wait4() reports for it (the whole process, which for dbt includes
DuckDB running in it). Runs are interleaved per scenario (floe, dbt, floor) so that a change of
load on the machine hits all three alike; the load average is printed with the results.
"""

import argparse
import datetime
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import bench_data  # noqa: E402

SIZES = {"small": 100_000, "1m": 1_000_000, "10m": 10_000_000}
SOURCE, TABLE = "crm", "customers"
# floe's column types as the other tools spell them.
DUCKDB_TYPES = {"bigint": "BIGINT", "string": "VARCHAR", "date": "DATE", "double": "DOUBLE",
                "timestamp": "TIMESTAMP"}
DATAFUSION_TYPES = {"bigint": "BIGINT", "string": "VARCHAR", "date": "DATE", "double": "DOUBLE",
                    "timestamp": "TIMESTAMP"}
QUIET_ENV = {"DBT_SEND_ANONYMOUS_USAGE_STATS": "false", "DO_NOT_TRACK": "1",
             "DBT_USE_COLORS": "false", "FLOE_LOG": "warn"}


def log(msg):
    print(msg, file=sys.stderr, flush=True)


class Failed(Exception):
    pass


class OverBudget(Failed):
    """A run stopped because its memory passed --max-memory-gib."""

    def __init__(self, seconds):
        self.seconds = seconds
        super().__init__(f"stopped after {seconds:.0f} s: over the memory budget of "
                         f"{MEMORY_BUDGET_MIB / 1024:g} GiB")


MEMORY_BUDGET_MIB = 16 * 1024  # set from --max-memory-gib


def rss_mib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0


def measure(cmd, *, cwd=None, out=None, log_file=None, env=None):
    """Runs cmd to completion: (seconds, peak RSS in MiB). Fails with its output if it fails.

    A process whose memory passes the budget is killed (so that it cannot push the machine
    into the OOM killer, whose victim could be anything) and reported as OverBudget.
    """
    log_file = Path(log_file or tempfile.mktemp(prefix="bench-", suffix=".log"))
    full_env = os.environ | QUIET_ENV | (env or {})
    with open(log_file, "wb") as err, open(out or os.devnull, "wb") as stdout:
        t0 = time.monotonic()
        proc = subprocess.Popen([str(c) for c in cmd], cwd=cwd, env=full_env, stdout=stdout,
                                stderr=err)
        over = False
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if not over and rss_mib(proc.pid) > MEMORY_BUDGET_MIB:
                over = True
                proc.kill()
            time.sleep(0.05)
        seconds = time.monotonic() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    if over:
        raise OverBudget(seconds)
    if proc.returncode != 0:
        tail = log_file.read_text(errors="replace")[-3000:]
        if out:
            tail = Path(out).read_text(errors="replace")[-3000:] + tail
        raise Failed(f"{' '.join(map(str, cmd))} exited with {proc.returncode}:\n{tail}")
    return seconds, usage.ru_maxrss / 1024


def run(cmd, **kw):
    """Runs an untimed helper command and returns its stdout."""
    r = subprocess.run([str(c) for c in cmd], capture_output=True, text=True,
                       env=os.environ | QUIET_ENV, **kw)
    if r.returncode != 0:
        raise Failed(f"{' '.join(map(str, cmd))} exited with {r.returncode}:\n"
                     f"{r.stdout[-2000:]}{r.stderr[-2000:]}")
    return r.stdout


def fresh(path):
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


def restore(base, work):
    """Puts back the day-0 state saved in base (same path, so the lake's absolute paths hold)."""
    shutil.rmtree(work, ignore_errors=True)
    shutil.copytree(base, work, symlinks=True)


def median_of(samples, key):
    return statistics.median(s[key] for s in samples)


# --- floe ---------------------------------------------------------------------------------

def floe_project(dirpath, fmt, columns):
    fresh(dirpath)
    (dirpath / "floe.yaml").write_text("name: bench\nengine: local\nlake: lake\n")
    cols = "\n".join(f"      {n}: {{type: {t}{', nullable: false' if n == bench_data.KEY else ''}}}"
                     for n, t in columns)
    (dirpath / "tables").mkdir()
    (dirpath / "tables" / f"{SOURCE}.yaml").write_text(
        f"source: {SOURCE}\ntables:\n  {TABLE}:\n    primary_key: [{bench_data.KEY}]\n"
        f"    load: full\n    deletes: invalidate\n    format: {fmt}\n    max_file_mb: 8192\n"
        f"    columns:\n{cols}\n")


STAGE_LINES = {"bronze_s": "floe_pipeline::landing: landed",
               "silver_s": "floe_pipeline::standardise: silver staged",
               "publish_s": "floe_pipeline::audit: published"}


def floe_land(floe, project, file, ts, logs):
    """Times one `floe land --wait`, and splits it by stage from its log: (s, MiB, stages)."""
    log_file = logs / "floe.log"
    t0 = datetime.datetime.now(datetime.timezone.utc)
    s, mib = measure([floe, "land", file, "--table", f"{SOURCE}.{TABLE}", "--extract-ts", ts,
                      "--wait", "-p", project], log_file=log_file,
                     env={"FLOE_LOG": "warn,floe_pipeline=info", "NO_COLOR": "1"})
    # Each stage's end is the time stamp of its log line; the first starts at the spawn.
    text = re.sub(r"\x1b\[[0-9;]*m", "", log_file.read_text(errors="replace"))
    stages, prev = {}, t0
    for key, marker in STAGE_LINES.items():
        m = re.search(r"^(\S+Z)\s+INFO .*" + re.escape(marker), text, re.M)
        if not m:
            return s, mib, {}
        at = datetime.datetime.fromisoformat(m[1].replace("Z", "+00:00"))
        stages[key] = (at - prev).total_seconds()
        prev = at
    step = re.search(r'silver staged.*step="?(\w+)', text)
    if step:
        stages["step"] = step[1]
    return s, mib, stages


def floe_counts(floe, project):
    """(current rows, all versions) of the silver history."""
    out = run([floe, "query", "-p", project, "--format", "csv",
               f"SELECT SUM(CASE WHEN is_current THEN 1 ELSE 0 END) AS current_rows, "
               f"COUNT(*) AS versions FROM silver_{SOURCE}.{TABLE}"])
    row = out.strip().splitlines()[-1].split(",")
    return int(row[0]), int(row[1])


# --- dbt ----------------------------------------------------------------------------------

def dbt_project(dirpath, columns):
    fresh(dirpath)
    (dirpath / "snapshots").mkdir()
    (dirpath / "dbt_project.yml").write_text(
        "name: bench\nversion: '1.0.0'\nprofile: bench\nsnapshot-paths: [snapshots]\n")
    (dirpath / "profiles.yml").write_text(
        f"bench:\n  target: dev\n  outputs:\n    dev:\n      type: duckdb\n"
        f"      path: {dirpath / 'bench.duckdb'}\n      threads: 1\n")
    types = ", ".join(f"'{n}': '{DUCKDB_TYPES[t]}'" for n, t in columns)
    # The extract is read straight from the file, with the declared types for CSV: the
    # snapshot does the SCD2 (check strategy on every column, deleted keys invalidated).
    (dirpath / "snapshots" / "customers_history.sql").write_text(
        "{% snapshot customers_history %}\n"
        f"{{{{ config(target_schema='snapshots', unique_key='{bench_data.KEY}', strategy='check',"
        " check_cols='all', hard_deletes='invalidate') }}\n"
        "{% if var('format') == 'csv' %}\n"
        f"select * from read_csv('{{{{ var(\"extract\") }}}}', header=true, columns={{{types}}})\n"
        "{% else %}\n"
        "select * from read_parquet('{{ var(\"extract\") }}')\n"
        "{% endif %}\n"
        "{% endsnapshot %}\n")


def dbt_snapshot(dbt, project, file, fmt, logs):
    seconds, mib = measure(
        [dbt, "snapshot", "--project-dir", project, "--profiles-dir", project,
         "--vars", json.dumps({"extract": str(file), "format": fmt})],
        out=logs / "dbt.out", log_file=logs / "dbt.log", env={"DBT_LOG_PATH": str(logs)})
    text = (logs / "dbt.out").read_text(errors="replace")
    m = re.search(r"Finished running .* in (\d+) hours (\d+) minutes and ([\d.]+) seconds", text)
    inner = (int(m[1]) * 3600 + int(m[2]) * 60 + float(m[3])) if m else None
    return seconds, mib, inner


def dbt_counts(python, project):
    script = ("import duckdb, sys; c = duckdb.connect(sys.argv[1], read_only=True); "
              "print(*c.sql('select count(*) filter (where dbt_valid_to is null), count(*) "
              "from snapshots.customers_history').fetchall()[0])")
    out = run([python, "-c", script, project / "bench.duckdb"])
    current, versions = out.split()
    return int(current), int(versions)


# --- the floor ----------------------------------------------------------------------------

def floor_run(floor, previous, current, fmt, columns, out, logs):
    cmd = [floor, "--previous", previous, "--current", current, "--format", fmt,
           "--key", bench_data.KEY, "--out", out]
    for n, t in columns:
        cmd += ["--column", f"{n}:{DATAFUSION_TYPES[t]}"]
    seconds, mib = measure(cmd, out=logs / "floor.out", log_file=logs / "floor.log")
    m = re.search(r"changed rows: (\d+)", (logs / "floor.out").read_text())
    return seconds, mib, int(m[1]) if m else None


# --- SCD2 ---------------------------------------------------------------------------------

def scd2(args, size, rows, data, work):
    manifest = json.loads((data / "manifest.json").read_text())
    columns = [tuple(c) for c in manifest["columns"]]
    day0_ts, day1_ts = manifest["day0"], manifest["day1"]
    logs = work / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    results = []
    for fmt in args.formats:
        day0 = data / f"day0.{fmt}"
        floe_dir, floe_base = work / f"floe-{fmt}", work / f"floe-{fmt}.day0"
        dbt_dir, dbt_base = work / f"dbt-{fmt}", work / f"dbt-{fmt}.day0"
        initial = {"size": size, "rows": rows, "format": fmt, "change": "day 0", "kind": "initial"}
        floe_ok, skipped_note = not args.skip_floe, "not run"
        if floe_ok:
            floe_project(floe_dir, fmt, columns)
            log(f"[{size} {fmt}] floe: initial load of day 0 ({day0.name})")
            try:
                s, m, stages = floe_land(args.floe, floe_dir, day0, day0_ts, logs)
                initial |= {"floe_s": s, "floe_mib": m}
                initial |= {f"floe_{k}": v for k, v in stages.items()}
                restore(floe_dir, floe_base)
            except OverBudget as e:
                log(f"  floe {e}")
                initial["floe_note"] = over_note(args, e)
                skipped_note = "not run (day 0 went over budget)"
                floe_ok = False
        if not args.skip_dbt:
            dbt_project(dbt_dir, columns)
            log(f"[{size} {fmt}] dbt: initial snapshot of day 0")
            s, m, inner = dbt_snapshot(args.dbt, dbt_dir, day0, fmt, logs)
            initial |= {"dbt_s": s, "dbt_mib": m, "dbt_inner_s": inner}
            restore(dbt_dir, dbt_base)
        results.append(initial)

        for change in bench_data.CHANGES:
            day1 = data / f"day1_{change}.{fmt}"
            expect = manifest["extracts"][f"day1_{change}"]
            want = (expect["rows"], rows + expect["updated"] + expect["inserted"])
            samples = []
            for i in range(args.repeat):
                tag = f"[{size} {fmt} {change}% changed" + (f", run {i + 1}]" if args.repeat > 1 else "]")
                r = {}
                if not floe_ok:
                    r["floe_note"] = skipped_note
                else:
                    restore(floe_base, floe_dir)
                    log(f"{tag} floe: land + SCD2 + audit + publish of day 1")
                    try:
                        r["floe_s"], r["floe_mib"], stages = floe_land(
                            args.floe, floe_dir, day1, day1_ts, logs)
                        r |= {f"floe_{k}": v for k, v in stages.items()}
                        got = floe_counts(args.floe, floe_dir)
                        if got != want:
                            raise Failed(f"floe's silver has {got} (current, versions), "
                                         f"expected {want}")
                    except OverBudget as e:
                        # The other change rates load the same volume: they would end alike.
                        log(f"  floe {e}; the other change rates of {size} {fmt} are skipped")
                        r["floe_note"] = over_note(args, e)
                        skipped_note = "not run (the run above went over budget)"
                        floe_ok = False
                if not args.skip_dbt:
                    restore(dbt_base, dbt_dir)
                    log(f"{tag} dbt: snapshot of day 1")
                    r["dbt_s"], r["dbt_mib"], r["dbt_inner_s"] = dbt_snapshot(
                        args.dbt, dbt_dir, day1, fmt, logs)
                    got = dbt_counts(args.python, dbt_dir)
                    if got != want:
                        raise Failed(f"dbt's snapshot has {got} (current, versions), expected {want}")
                log(f"{tag} floor: read both extracts, write the changed rows")
                out = work / f"floor-{fmt}-{change}.parquet"
                r["floor_s"], r["floor_mib"], changed = floor_run(
                    args.floor, day0, day1, fmt, columns, out, logs)
                want_changed = expect["updated"] + expect["inserted"] + expect["deleted"]
                if changed != want_changed:
                    raise Failed(f"the floor found {changed} changed rows, expected {want_changed}")
                out.unlink(missing_ok=True)
                samples.append(r)
            res = {"size": size, "rows": rows, "format": fmt, "change": f"{change}%",
                   "kind": "day1", "changed_rows": want_changed}
            for k in samples[0]:
                if k.endswith("_note"):
                    res[k] = samples[0][k]
                    continue
                vals = [s[k] for s in samples if s.get(k) is not None]
                res[k] = statistics.median(vals) if vals else None
            results.append(res)
            log(f"  -> {fmt_row_short(res)}")
        if not args.keep:
            for d in (floe_dir, floe_base, dbt_dir, dbt_base):
                shutil.rmtree(d, ignore_errors=True)
    return results


def over_note(args, e):
    return f"over the {args.max_memory_gib:g} GiB budget after {e.seconds:.0f} s"


def fmt_row_short(r):
    parts = []
    for tool in ("floe", "dbt", "floor"):
        if r.get(f"{tool}_s") is not None:
            parts.append(f"{tool} {r[f'{tool}_s']:.2f} s / {r[f'{tool}_mib']:.0f} MiB")
    return ", ".join(parts)


# --- planning -----------------------------------------------------------------------------

PLAN_COLUMNS = [("id", "bigint"), ("code", "string"), ("name", "string"), ("status", "string"),
                ("amount", "double"), ("quantity", "int"), ("created_on", "date"),
                ("updated_at", "timestamp")]

# Ten templates, as a floe user writes them once for every table (`templates/<name>.sql`), and
# as a dbt user writes them for one table (the generator writes one dbt model per table from
# it). {src} / {tbl} / {cols} / {measures} are filled per table for dbt; floe fills the same
# from the table config with Jinja.
PLAN_TEMPLATES = {
    "current": ("table",
                "SELECT {cols}, valid_from AS current_since FROM {source} WHERE is_current"),
    "changes": ("view",
                "SELECT id, COUNT(*) AS versions, MIN(valid_from) AS first_seen, "
                "MAX(valid_from) AS last_changed FROM {source} GROUP BY id"),
    "deleted": ("view",
                "SELECT id, MAX(valid_to) AS deleted_at FROM {source} GROUP BY id "
                "HAVING SUM(CASE WHEN is_current THEN 1 ELSE 0 END) = 0"),
    "daily": ("table",
              "SELECT CAST(valid_from AS DATE) AS day, COUNT(*) AS versions FROM {source} "
              "GROUP BY CAST(valid_from AS DATE)"),
    "status": ("view",
               "SELECT status, COUNT(*) AS n, SUM(amount) AS amount FROM {ref_current} "
               "GROUP BY status"),
    "stats": ("table",
              "SELECT COUNT(*) AS n, {measures} FROM {ref_current}"),
    "recent": ("incremental",
               "SELECT {cols}, current_since FROM {ref_current}"
               "{incremental}"),
    "churn": ("view",
              "SELECT c.id, c.versions, d.deleted_at FROM {ref_changes} c "
              "LEFT JOIN {ref_deleted} d ON d.id = c.id"),
    "keys": ("view",
             "SELECT id, md5(CAST(id AS VARCHAR)) AS id_key FROM {ref_current}"),
    "summary": ("table",
                "SELECT s.status, s.n, t.n AS total FROM {ref_status} s CROSS JOIN {ref_stats} t"),
}
MEASURES = ["amount", "quantity"]


def floe_template(name, materialized, sql):
    def ref(t):
        return "{{ ref('" + t + "_' ~ table.source ~ '_' ~ table.name) }}"
    cols = "{{ table.columns | map(attribute='name') | join(', ') }}"
    measures = ("{% for c in table.columns if c.type in ['double', 'int'] %}SUM({{ c.name }}) AS "
                "{{ c.name }}_total{{ ', ' if not loop.last }}{% endfor %}")
    config = (f"{{{{ config(materialized='{materialized}', unique_key='id') }}}}"
              if materialized == "incremental" else
              f"{{{{ config(materialized='{materialized}') }}}}")
    body = sql.format(
        cols=cols, measures=measures, source="{{ source(table.source, table.name) }}",
        ref_current=ref("current"), ref_changes=ref("changes"), ref_deleted=ref("deleted"),
        ref_status=ref("status"), ref_stats=ref("stats"),
        incremental="{% if is_incremental() %} WHERE current_since > "
                    "(SELECT MAX(current_since) FROM {{ this }}){% endif %}")
    return f"{config}\n{body}\n"


def dbt_model(name, materialized, sql, src, tbl):
    def ref(t):
        return "{{ ref('" + f"{t}_{src}_{tbl}" + "') }}"
    config = (f"{{{{ config(materialized='{materialized}', unique_key='id') }}}}"
              if materialized == "incremental" else
              f"{{{{ config(materialized='{materialized}') }}}}")
    body = sql.format(
        cols=", ".join(n for n, _ in PLAN_COLUMNS),
        measures=", ".join(f"SUM({c}) AS {c}_total" for c in MEASURES),
        source="{{ source('" + src + "', '" + tbl + "') }}",
        ref_current=ref("current"), ref_changes=ref("changes"), ref_deleted=ref("deleted"),
        ref_status=ref("status"), ref_stats=ref("stats"),
        incremental="\n{% if is_incremental() %} WHERE current_since > "
                    "(SELECT MAX(current_since) FROM {{ this }}){% endif %}")
    return f"{config}\n{body}\n"


def planning_projects(work, tables):
    """A floe project (10 templates x `tables` tables) and the equivalent dbt project."""
    src = "erp"
    names = [f"t{i:03d}" for i in range(1, tables + 1)]
    floe_dir = fresh(work / "plan-floe")
    (floe_dir / "floe.yaml").write_text("name: plan_bench\nengine: local\nlake: lake\n")
    (floe_dir / "tables").mkdir()
    (floe_dir / "templates").mkdir()
    cols = "\n".join(f"      {n}: {{type: {t}}}" for n, t in PLAN_COLUMNS)
    gen = "\n".join(f"      {t}: {{}}" for t in PLAN_TEMPLATES)
    (floe_dir / "tables" / f"{src}.yaml").write_text(
        f"source: {src}\ntables:\n" + "".join(
            f"  {n}:\n    primary_key: [id]\n    load: full\n    columns:\n{cols}\n"
            f"    generate:\n{gen}\n" for n in names))
    for t, (mat, sql) in PLAN_TEMPLATES.items():
        (floe_dir / "templates" / f"{t}.sql").write_text(floe_template(t, mat, sql))

    dbt_dir = fresh(work / "plan-dbt")
    (dbt_dir / "models").mkdir()
    (dbt_dir / "dbt_project.yml").write_text(
        "name: plan_bench\nversion: '1.0.0'\nprofile: plan_bench\nmodel-paths: [models]\n")
    (dbt_dir / "profiles.yml").write_text(
        f"plan_bench:\n  target: dev\n  outputs:\n    dev:\n      type: duckdb\n"
        f"      path: {dbt_dir / 'plan.duckdb'}\n      threads: 2\n")
    col_yaml = "".join(f"          - name: {n}\n            data_type: {t}\n" for n, t in PLAN_COLUMNS)
    (dbt_dir / "models" / "sources.yml").write_text(
        f"version: 2\nsources:\n  - name: {src}\n    schema: silver_{src}\n    tables:\n" + "".join(
            f"      - name: {n}\n        columns:\n{col_yaml}" for n in names))
    for n in names:
        for t, (mat, sql) in PLAN_TEMPLATES.items():
            (dbt_dir / "models" / f"{t}_{src}_{n}.sql").write_text(dbt_model(t, mat, sql, src, n))
    return floe_dir, dbt_dir, tables * len(PLAN_TEMPLATES)


def planning(args, work):
    floe_dir, dbt_dir, n_models = planning_projects(work, args.plan_tables)
    logs = work / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    dbt_common = ["--project-dir", dbt_dir, "--profiles-dir", dbt_dir]
    runs = {
        "floe plan": [args.floe, "plan", "-p", floe_dir, "--json"],
        "dbt parse": [args.dbt, "parse", "--no-partial-parse", *dbt_common],
        "dbt compile": [args.dbt, "compile", "--no-partial-parse", *dbt_common],
    }
    samples = {k: [] for k in runs}
    for i in range(args.plan_runs):
        for name, cmd in runs.items():
            if name == "dbt compile" and args.skip_dbt_compile:
                continue
            log(f"[planning {n_models} models, run {i + 1}/{args.plan_runs}] {name}")
            out = logs / f"{name.replace(' ', '-')}.out"
            s, m = measure(cmd, out=out, log_file=logs / "plan.log",
                           env={"DBT_LOG_PATH": str(logs), "DBT_TARGET_PATH": str(dbt_dir / "target")})
            samples[name].append({"s": s, "mib": m})
            if name == "floe plan":
                planned = len(json.loads(out.read_text()))
                if planned != n_models:
                    raise Failed(f"floe plan planned {planned} models, expected {n_models}")
            elif name == "dbt parse":
                manifest = json.loads((dbt_dir / "target" / "manifest.json").read_text())
                parsed = sum(1 for k in manifest["nodes"] if k.startswith("model."))
                if parsed != n_models:
                    raise Failed(f"dbt parse found {parsed} models, expected {n_models}")
    out = {"models": n_models, "tables": args.plan_tables, "templates": len(PLAN_TEMPLATES),
           "runs": args.plan_runs}
    for name, ss in samples.items():
        if ss:
            out[name] = {"median_s": median_of(ss, "s"), "min_s": min(s["s"] for s in ss),
                         "peak_mib": max(s["mib"] for s in ss)}
    if not args.keep:
        shutil.rmtree(floe_dir, ignore_errors=True)
        shutil.rmtree(dbt_dir, ignore_errors=True)
    return out


# --- cold start ---------------------------------------------------------------------------

def cold_start(args, work):
    out_json = work / "cold-start.json"
    r = subprocess.run([sys.executable, HERE / "bench_cold_start.py", "--bin-dir", args.bin_dir,
                        "--runs", str(args.cold_runs), "--json", out_json,
                        "--command", args.command, "--build-note", args.build_note],
                       capture_output=True, text=True)
    if r.returncode != 0:
        raise Failed(f"the cold start bench failed:\n{r.stdout[-2000:]}{r.stderr[-2000:]}")
    return json.loads(out_json.read_text())


# --- landing a large file (P5) --------------------------------------------------------------

def landing(args, work):
    """`floe land --wait` of one large CSV, stopped once the file is in bronze: the landing
    stage's time (its first log line to its last) and the process's peak RSS until then."""
    rows = args.landing_rows
    data = args.data_dir / f"landing-{rows}"
    log(f"[landing] data: one CSV of {rows:,} rows in {data}")
    run([args.python, HERE / "bench_data.py", "--rows", rows, "--out", data, "--landing-only"])
    manifest = json.loads((data / "manifest.json").read_text())
    file = data / "day0.csv"
    project = work / "landing"
    floe_project(project, "csv", [tuple(c) for c in manifest["columns"]])
    logs = work / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    log_file = logs / "landing.log"
    log(f"[landing] floe: {file.stat().st_size / 2**20:,.0f} MiB to bronze")
    env = os.environ | QUIET_ENV | {"FLOE_LOG": "warn,floe_pipeline=info", "NO_COLOR": "1"}
    with open(log_file, "wb") as err:
        proc = subprocess.Popen([str(c) for c in (
            args.floe, "land", file, "--table", f"{SOURCE}.{TABLE}", "--extract-ts",
            manifest["day0"], "--wait", "-p", project)],
            env=env, stdout=subprocess.DEVNULL, stderr=err)
        peak, landed = 0.0, None
        try:
            while proc.poll() is None:
                peak = max(peak, rss_mib(proc.pid))
                text = log_file.read_text(errors="replace")
                if "floe_pipeline::landing: landed" in text or "quarantined" in text:
                    landed = text
                    break
                if peak > MEMORY_BUDGET_MIB:
                    break
                time.sleep(0.05)
        finally:
            proc.kill()
            proc.wait()
    text = landed or log_file.read_text(errors="replace")
    if landed is None:
        if peak > MEMORY_BUDGET_MIB:
            return {"rows": rows, "bytes": file.stat().st_size, "peak_mib": peak,
                    "note": f"over the memory budget ({MEMORY_BUDGET_MIB / 1024:g} GiB)"}
        raise Failed(f"floe land of {file} did not land it:\n{text[-3000:]}")
    if "quarantined" in text:
        raise Failed(f"{file} was quarantined:\n{text[-3000:]}")

    def at(marker):
        m = re.search(r"^(\S+Z)\s+INFO .*" + re.escape(marker), text, re.M)
        if not m:
            raise Failed(f"no '{marker}' line in {log_file}")
        return datetime.datetime.fromisoformat(m[1].replace("Z", "+00:00"))

    seconds = (at("floe_pipeline::landing: landed") - at("floe_pipeline::landing: reading")
               ).total_seconds()
    size = file.stat().st_size
    out = {"rows": rows, "bytes": size, "seconds": seconds, "peak_mib": peak,
           "mb_per_s": size / 1e6 / seconds}
    log(f"  {seconds:.1f} s, {out['mb_per_s']:.0f} MB/s, peak {peak:,.0f} MiB")
    return out


# --- report -------------------------------------------------------------------------------

def cpu_model():
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def num(x, digits=2):
    return "–" if x is None else f"{x:.{digits}f}"


def num_ratio(x):
    """A ratio to three significant digits (0.0052, 0.48, 6.48, 144)."""
    return "–" if x is None else f"{x:.3g}"


def ratio(a, b):
    return None if a is None or b is None or b == 0 else a / b


def report(meta, scd2_rows, plan, cold, land=None):
    L = ["# floe benchmarks", ""]
    L += [f"- date: {meta['date']}",
          f"- machine: {meta['cpus']} CPUs (nproc), {meta['cpu']}, {meta['mem_gib']:.0f} GiB RAM, "
          f"{platform.machine()}, Linux {platform.release()}",
          f"- load average (1/5/15 min): before {meta['load_before']}, after {meta['load_after']}",
          f"- command: `{meta['command']}` (took {meta['took_min']:.1f} min)",
          f"- tools: floe {meta['floe_version']} (release build), dbt-core {meta['dbt_core']} with "
          f"dbt-duckdb {meta['dbt_duckdb']} on DuckDB {meta['duckdb']}; floor = floe-bench-floor "
          f"(DataFusion, floe's version)", ""]
    if scd2_rows:
        L += ["## SCD2: one daily full extract into the history", "",
              "Time of one day-1 extract into an existing history (day 0 already loaded); "
              "floe = `floe land --wait` (landing, bronze, standardise + SCD2, audit, publish); "
              "dbt = `dbt snapshot` (check strategy on every column, hard deletes invalidated), in "
              "brackets the snapshot step as dbt reports it, without dbt's start-up and parse; "
              "floor = read both extracts, join on the key, write the changed rows as Parquet. "
              "Peak = peak RSS of the process. Every history was checked afterwards (current rows "
              "and versions as expected). A run whose memory passed the budget "
              f"({meta['memory_budget_gib']:g} GiB, --max-memory-gib) was stopped and shows as "
              "over budget, with the time it had run.", "",
              "| rows | format | change | floe (s) | dbt (s) | floor (s) | floe/dbt | floe/floor "
              "| floe peak (MiB) | dbt peak (MiB) | floor peak (MiB) |",
              "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for r in scd2_rows:
            dbt = num(r.get("dbt_s"))
            if r.get("dbt_inner_s") is not None:
                dbt += f" [{r['dbt_inner_s']:.2f}]"
            floe = num(r.get("floe_s")) if r.get("floe_s") is not None else r.get("floe_note", "–")
            L.append(f"| {r['rows']:,} | {r['format']} | {r['change']} | {floe} "
                     f"| {dbt} | {num(r.get('floor_s'))} "
                     f"| {num_ratio(ratio(r.get('floe_s'), r.get('dbt_s')))} "
                     f"| {num_ratio(ratio(r.get('floe_s'), r.get('floor_s')))} "
                     f"| {num(r.get('floe_mib'), 0)} | {num(r.get('dbt_mib'), 0)} "
                     f"| {num(r.get('floor_mib'), 0)} |")
        L += ["", "Rows marked `day 0` are the initial load of the first extract into an empty "
              "history (no floor: nothing to compare with).", ""]
        staged = [r for r in scd2_rows if r.get("floe_silver_s") is not None]
        if staged:
            L += ["### Where floe's time goes", "",
                  "From the time stamps of floe's own log lines: landing = process start, checks "
                  "and the bronze append; standardise + SCD2 = the new silver version computed "
                  "and staged (step `apply`: the extract joined with the current versions, as "
                  "for every extract newer than the history; `rebuild`: the history recomputed "
                  "from all of bronze, as for a late extract); audit + publish = the silver "
                  "tests (which reconcile the extract with the history) and the publish.", "",
                  "| rows | format | change | landing (s) | standardise + SCD2 (s) | step "
                  "| audit + publish (s) |", "|---|---|---|---:|---:|---|---:|"]
            for r in staged:
                L.append(f"| {r['rows']:,} | {r['format']} | {r['change']} "
                         f"| {num(r.get('floe_bronze_s'))} | {num(r.get('floe_silver_s'))} "
                         f"| {r.get('floe_step') or '–'} | {num(r.get('floe_publish_s'))} |")
            L.append("")
        sizes = sorted({r["rows"] for r in scd2_rows})
        # One growth table per step between sizes (e.g. 100k -> 1M, then 1M -> 10M).
        for lo, hi in zip(sizes, sizes[1:]):
            L += [f"### Growth from {lo:,} to {hi:,} rows (x{hi / lo:g} the data)", "",
                  "Time at the larger size divided by time at the smaller one; dbt's snapshot "
                  "step alone in its own column (at small sizes dbt's time is mostly its "
                  "start-up).", "",
                  "| format | change | floe | dbt | dbt snapshot step | floor |",
                  "|---|---|---:|---:|---:|---:|"]
            for r in scd2_rows:
                if r["rows"] != lo:
                    continue
                big = next((b for b in scd2_rows if b["rows"] == hi and b["format"] == r["format"]
                            and b["change"] == r["change"]), None)
                if big:
                    L.append(f"| {r['format']} | {r['change']} "
                             + " ".join(f"| {num(ratio(big.get(t + '_s'), r.get(t + '_s')), 1)}"
                                        for t in ("floe", "dbt", "dbt_inner", "floor"))
                             + " |")
            L.append("")
    if land:
        L += ["## Landing one large CSV (bounded memory)", "",
              "`floe land --wait` of one CSV (the customer dimension's columns, made by "
              "scripts/bench_data.py --landing-only) into a new table, stopped once the file is "
              "in bronze. Landing = the landing stage's first log line to its last (the file read "
              "chunk by chunk, checked, written to bronze and committed; the copy into the "
              "landing zone before it is not counted); MB/s in 10^6 bytes of the file a second; "
              "peak = the process's peak RSS until then.", "",
              "| rows | file (MiB) | landing (s) | MB/s | peak (MiB) |", "|---:|---:|---:|---:|---:|"]
        L.append(f"| {land['rows']:,} | {land['bytes'] / 2**20:,.0f} "
                 f"| {num(land.get('seconds'))} | {num(land.get('mb_per_s'), 0)} "
                 f"| {num(land.get('peak_mib'), 0)} |")
        if land.get("note"):
            L.append(f"\n{land['note']}")
        L.append("")
    if plan:
        n = plan["models"]
        L += [f"## Planning: {n} models ({plan['templates']} templates x {plan['tables']} tables)",
              "",
              f"floe: `floe plan --json` (loads the project, renders every template for every "
              f"table, builds the DAG, renders every model's SQL and plans its materialization; "
              f"no lake exists, so it opens none). dbt: the same {n} models written out as files "
              f"(dbt has no templates), with the same `source`/`ref`/`config` calls; `dbt parse "
              f"--no-partial-parse` (manifest only, no SQL rendered) and `dbt compile "
              f"--no-partial-parse` (every model's SQL rendered, as `floe plan` does). Median of "
              f"{plan['runs']} runs.", "",
              "| command | median (s) | fastest (s) | peak (MiB) | floe / this |",
              "|---|---:|---:|---:|---:|"]
        floe_s = plan.get("floe plan", {}).get("median_s")
        for name in ("floe plan", "dbt parse", "dbt compile"):
            if name in plan:
                p = plan[name]
                L.append(f"| `{name}` | {num(p['median_s'])} | {num(p['min_s'])} "
                         f"| {num(p['peak_mib'], 0)} | {num_ratio(ratio(floe_s, p['median_s']))} |")
        L.append("")
    if cold:
        L += ["## Lambda services: cold start and peak memory", "",
              f"Process start to the first Runtime API poll, against a local emulator "
              f"(scripts/bench-cold-start.sh, {cold['runs']} runs per service after a warm-up"
              + (f"; {cold['build_note']}" if cold.get("build_note") else "") + ").", "",
              "| service | binary size (MiB) | cold start median (ms) | p90 (ms) "
              "| peak RSS median (MiB) |", "|---|---:|---:|---:|---:|"]
        for s in cold["services"]:
            L.append(f"| {s['service']} | {s['binary_mib']:.1f} | {s['median_ms']:.1f} "
                     f"| {s['p90_ms']:.1f} | {s['peak_rss_mib']:.1f} |")
        L.append("")
    return "\n".join(L)


def summary(scd2_rows, plan):
    """The ratios, one line each, for the end of the run."""
    L = []
    for r in scd2_rows:
        if r["kind"] != "day1":
            continue
        fd, ff = ratio(r.get("floe_s"), r.get("dbt_s")), ratio(r.get("floe_s"), r.get("floor_s"))
        head = f"SCD2 {r['rows']:>10,} rows {r['format']:<7} {r['change']:>4} changed: "
        if r.get("floe_s") is None:
            L.append(head + f"floe {r.get('floe_note', 'not run')}")
        else:
            L.append(head + f"floe/dbt {num_ratio(fd)}  floe/floor {num_ratio(ff)}")
    if plan and "floe plan" in plan:
        for other in ("dbt parse", "dbt compile"):
            if other in plan:
                L.append(f"planning {plan['models']} models: floe plan/{other} "
                         f"{num_ratio(ratio(plan['floe plan']['median_s'], plan[other]['median_s']))}")
    return "\n".join(L)


def targets(scd2_rows, plan, cold, land):
    """Issue 18's targets, each with what this run measured and whether it holds."""
    def verdict(ok):
        return "holds" if ok else "does not hold"

    L = []
    for r in scd2_rows:
        if r["kind"] != "day1" or r["change"] != "1%":
            continue
        fd, ff = ratio(r.get("floe_s"), r.get("dbt_s")), ratio(r.get("floe_s"), r.get("floor_s"))
        mem = (r.get("floe_mib") is not None and r.get("dbt_mib") is not None
               and r["floe_mib"] <= r["dbt_mib"])
        if fd is None or ff is None:
            L.append(f"P1 {r['rows']:,} {r['format']}: not measured ({r.get('floe_note', 'not run')})")
            continue
        L.append(f"P1 {r['rows']:,} {r['format']} 1%: floe/dbt {num_ratio(fd)} (<= 0.5: "
                 f"{verdict(fd <= 0.5)}), floe/floor {num_ratio(ff)} (<= 3: {verdict(ff <= 3)}), "
                 f"peak {num(r.get('floe_mib'), 0)} vs dbt {num(r.get('dbt_mib'), 0)} MiB "
                 f"({verdict(mem)})")
    if plan and "floe plan" in plan and "dbt parse" in plan:
        x = ratio(plan["dbt parse"]["median_s"], plan["floe plan"]["median_s"])
        L.append(f"P2 planning {plan['models']} models: floe plan is {num(x, 0)}x faster than "
                 f"dbt parse (>= 100x: {verdict(x is not None and x >= 100)})")
    if cold:
        for s in cold["services"]:
            zipped = s.get("zip_mib")
            L.append(f"P3 {s['service']}: cold start {s['median_ms']:.1f} ms median (<= 25: "
                     f"{verdict(s['median_ms'] <= 25)}), peak RSS {s['peak_rss_mib']:.1f} MiB "
                     f"(<= 32: {verdict(s['peak_rss_mib'] <= 32)}), binary "
                     f"{s['binary_mib']:.1f} MiB"
                     + (f", zipped {zipped:.1f} MiB (<= 15 MB: {verdict(zipped * 1.048576 <= 15)})"
                        if zipped is not None else ""))
    if land and land.get("seconds"):
        ok_mem, ok_speed = land["peak_mib"] <= 2048, land["mb_per_s"] >= 100
        L.append(f"P5 landing {land['rows']:,} rows ({land['bytes'] / 1e9:.2f} GB): peak "
                 f"{land['peak_mib']:,.0f} MiB (<= 2 GiB: {verdict(ok_mem)}), "
                 f"{land['mb_per_s']:.0f} MB/s (>= 100: {verdict(ok_speed)})")
    elif land:
        L.append(f"P5 landing {land['rows']:,} rows: {land.get('note')}")
    return "\n".join(L) or "(nothing measured)"


def chart(path, scd2_rows, plan, cold):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = sorted({(r["rows"], r["format"]) for r in scd2_rows if r["kind"] == "day1"})
    panels = len(groups) + (1 if plan else 0) + (1 if cold else 0)
    if panels == 0:
        return
    cols = 2 if panels > 1 else 1
    rows = (panels + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(6.4 * cols, 3.8 * rows), squeeze=False)
    axes = [a for row in axes for a in row]
    colors = {"floe": "#1f77b4", "dbt": "#ff7f0e", "floor": "#7f7f7f"}
    i = 0
    for n, fmt in groups:
        ax = axes[i]
        i += 1
        rs = [r for r in scd2_rows if r["rows"] == n and r["format"] == fmt and r["kind"] == "day1"]
        width = 0.27
        for j, tool in enumerate(("floe", "dbt", "floor")):
            if all(r.get(f"{tool}_s") is None for r in rs):
                continue  # not run (skipped, or over the memory budget)
            vals = [r.get(f"{tool}_s") or 0 for r in rs]
            xs = [k + (j - 1) * width for k in range(len(rs))]
            bars = ax.bar(xs, vals, width, label=tool, color=colors[tool])
            ax.bar_label(bars, fmt="%.1f", fontsize=7)
        notes = [r["floe_note"] for r in rs if r.get("floe_note") and r.get("floe_s") is None]
        if notes:
            ax.text(0.02, 0.97, f"floe: {notes[0]}", transform=ax.transAxes, va="top",
                    fontsize=8, color=colors["floe"], wrap=True)
            ax.set_ylim(top=ax.get_ylim()[1] * 1.15)
        ax.set_xticks(range(len(rs)), [f"{r['change']} changed" for r in rs])
        ax.set_ylabel("seconds")
        ax.set_title(f"SCD2 of one daily extract: {n:,} rows, {fmt}", fontsize=10)
        ax.legend(fontsize=8)
    if plan:
        ax = axes[i]
        i += 1
        names = [k for k in ("floe plan", "dbt parse", "dbt compile") if k in plan]
        vals = [plan[k]["median_s"] for k in names]
        bars = ax.bar(names, vals, color=[colors["floe"]] + [colors["dbt"]] * (len(names) - 1))
        ax.bar_label(bars, fmt="%.2f", fontsize=8)
        ax.set_ylabel("seconds (median)")
        ax.set_title(f"Planning {plan['models']} models", fontsize=10)
    if cold:
        ax = axes[i]
        i += 1
        names = [s["service"].removeprefix("floe-") for s in cold["services"]]
        bars = ax.bar(names, [s["median_ms"] for s in cold["services"]], color=colors["floe"])
        ax.bar_label(bars, fmt="%.0f", fontsize=8)
        ax.set_ylabel("ms (median)")
        ax.set_title("Lambda cold start (process start to first poll)", fontsize=10)
    for ax in axes[i:]:
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


# --- main ---------------------------------------------------------------------------------

def tool_version(cmd, pattern):
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, env=os.environ | QUIET_ENV)
        m = re.search(pattern, out.stdout + out.stderr)
        return m[1] if m else "?"
    except OSError:
        return "?"


def main():
    p = argparse.ArgumentParser(description="floe's benchmarks (see scripts/bench.sh --help)")
    p.add_argument("--size", default="small")
    p.add_argument("--formats", default="csv,parquet")
    p.add_argument("--repeat", type=int, default=1)
    p.add_argument("--plan-runs", type=int, default=3)
    p.add_argument("--plan-tables", type=int, default=100)
    p.add_argument("--cold-runs", type=int, default=10)
    p.add_argument("--skip-scd2", action="store_true")
    p.add_argument("--skip-planning", action="store_true")
    p.add_argument("--skip-cold-start", action="store_true")
    p.add_argument("--skip-landing", action="store_true")
    p.add_argument("--landing-rows", type=int, default=20_000_000)
    p.add_argument("--skip-dbt", action="store_true")
    p.add_argument("--skip-floe", action="store_true")
    p.add_argument("--skip-dbt-compile", action="store_true")
    p.add_argument("--keep", action="store_true")
    p.add_argument("--max-memory-gib", type=float, default=16)
    p.add_argument("--bin-dir", type=Path)
    p.add_argument("--data-dir", type=Path)
    p.add_argument("--work-dir", type=Path)
    p.add_argument("--out", type=Path, default=HERE.parent / "bench")
    p.add_argument("--from-json", type=Path,
                   help="run nothing: write results.md and the chart again from a results.json")
    p.add_argument("--command", default="scripts/bench.sh")
    p.add_argument("--build-note", default="")
    args = p.parse_args()
    if args.from_json:
        saved = json.loads(args.from_json.read_text())
        write_results(args.out, saved["meta"], saved["scd2"], saved["planning"],
                      saved["cold_start"], saved.get("landing"))
        return
    if not (args.bin_dir and args.data_dir and args.work_dir):
        sys.exit("--bin-dir, --data-dir and --work-dir are needed (scripts/bench.sh passes them)")
    for k in ("bin_dir", "data_dir", "work_dir", "out"):
        setattr(args, k, getattr(args, k).resolve())

    sizes = [s.strip().lower() for s in args.size.split(",") if s.strip()]
    bad = [s for s in sizes if s not in SIZES]
    if bad:
        sys.exit(f"unknown size {', '.join(bad)}: use small, 1m, 10m or a list such as 1m,10m")
    args.formats = [f.strip() for f in args.formats.split(",") if f.strip()]
    if any(f not in ("csv", "parquet") for f in args.formats):
        sys.exit("--formats takes csv, parquet or csv,parquet")
    bin_dir = Path(sys.executable).parent
    args.python = sys.executable
    args.dbt = bin_dir / "dbt"
    args.floe = args.bin_dir / "floe"
    args.floor = args.bin_dir / "floe-bench-floor"
    for b in (args.floe,) + (() if args.skip_scd2 else (args.floor,)):
        if not os.access(b, os.X_OK):
            sys.exit(f"{b} is missing: scripts/bench.sh builds it (cargo build --release -p floe-cli "
                     "-p floe-bench)")
    if not os.access(args.dbt, os.X_OK) and not args.skip_dbt:
        sys.exit(f"dbt is not installed in this venv ({args.dbt}): run scripts/bench.sh, which "
                 "installs scripts/bench-requirements.txt into .venv-bench, or "
                 ".venv-bench/bin/pip install -r scripts/bench-requirements.txt")

    global MEMORY_BUDGET_MIB
    MEMORY_BUDGET_MIB = args.max_memory_gib * 1024
    started = time.monotonic()
    meta = {"memory_budget_gib": args.max_memory_gib,
            "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "cpus": len(os.sched_getaffinity(0)), "cpu": cpu_model(),
            "mem_gib": os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30,
            "load_before": " ".join(f"{x:.2f}" for x in os.getloadavg()),
            "command": args.command,
            "floe_version": tool_version([args.floe, "--version"], r"(\d+\.\d+\.\d+)"),
            "dbt_core": tool_version([args.dbt, "--version"], r"installed:\s*(\S+)"),
            "dbt_duckdb": tool_version([args.dbt, "--version"], r"duckdb:\s*(\S+)"),
            "duckdb": tool_version([args.python, "-c", "import duckdb; print(duckdb.__version__)"],
                                   r"(\S+)")}
    args.work_dir.mkdir(parents=True, exist_ok=True)
    scd2_rows, plan, cold, land = [], None, None, None
    try:
        if not args.skip_scd2:
            for size in sizes:
                rows = SIZES[size]
                data = args.data_dir / size
                log(f"[{size}] data: {rows:,} rows and its day-1 extracts in {data}")
                run([args.python, HERE / "bench_data.py", "--rows", rows, "--out", data])
                scd2_rows += scd2(args, size, rows, data, args.work_dir / size)
        if not args.skip_landing:
            land = landing(args, args.work_dir)
        if not args.skip_planning:
            plan = planning(args, args.work_dir)
        if not args.skip_cold_start:
            log("cold start of the Lambda services (scripts/bench_cold_start.py)")
            cold = cold_start(args, args.work_dir)
    except Failed as e:
        sys.exit(f"bench failed: {e}")
    meta["load_after"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    meta["took_min"] = (time.monotonic() - started) / 60

    write_results(args.out, meta, scd2_rows, plan, cold, land)


def write_results(out, meta, scd2_rows, plan, cold, land=None):
    text = report(meta, scd2_rows, plan, cold, land)
    out.mkdir(parents=True, exist_ok=True)
    # The Athena comparison (scripts/bench_athena.py, `scripts/bench.sh --athena`) keeps its own
    # section of results.md between markers: a run of the other parts leaves it as it was.
    athena = ""
    previous = out / "results.md"
    if previous.exists():
        old = previous.read_text()
        start, end = old.find("<!-- athena:start -->"), old.find("<!-- athena:end -->")
        if 0 <= start < end:
            athena = "\n" + old[start:end] + "<!-- athena:end -->\n"
    (out / "results.md").write_text(text + "\n\n![results](results.png)\n" + athena)
    (out / "results.json").write_text(json.dumps(
        {"meta": meta, "scd2": scd2_rows, "planning": plan, "cold_start": cold,
         "landing": land}, indent=2) + "\n")
    chart(out / "results.png", scd2_rows, plan, cold)
    print(text)
    print("\n## Ratios (below 1: floe is faster)\n")
    print(summary(scd2_rows, plan))
    print("\n## Targets (issue 18)\n")
    print(targets(scd2_rows, plan, cold, land))
    print(f"\nwrote {out / 'results.md'}, {out / 'results.png'} and {out / 'results.json'}")


if __name__ == "__main__":
    main()
