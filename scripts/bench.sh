#!/usr/bin/env bash
# floe against the tools users would pick instead, with one command:
#
#   scripts/bench.sh [--size small|1m|10m|1m,10m] [--formats csv,parquet] [--repeat N]
#                    [--skip-scd2] [--skip-landing] [--skip-planning] [--skip-cold-start]
#                    [--skip-dbt-compile] [--landing-rows N] [--plan-runs N] [--cold-runs N]
#                    [--max-memory-gib G] [--out DIR] [--keep]
#   scripts/bench.sh --athena [--days N] [--rows N] [--change PCT] [--maintain-every N] [--late] [--out DIR]
#
# --athena runs only the Athena comparison (scripts/bench_athena.py): N daily full extracts
#   (default 10 of 1M rows, 1% change a day, Parquet) through floe's Athena path (`floe land
#   --wait` with engine: athena) and through dbt-athena's `dbt snapshot` (check strategy,
#   Iceberg, hard deletes invalidated) on one local Athena (scripts/aws-local.sh, started and
#   stopped by the run); per day and tool: seconds and bytes scanned (floe's also by stage, from
#   floe_audit.query_log), `floe maintain --all` after every N days (--maintain-every, default
#   7, 0 never), then a check that both histories are equal. The same days also go through
#   floe's embedded engine (seconds and decoded bytes by stage). --late then lands one extract
#   timed half a day after the middle day's through both floe engines. Writes bench/athena.json, bench/athena.png and its section of
#   bench/results.md (the other parts keep that section). At 1M rows here: about 2 minutes a
#   day (floe ~80 s, flat from day to day since in-order extracts are applied on Athena too).
#
# SCD2 (per size and format): a customer dimension of N rows (small = 100k, 1m, 10m) and its
#   next-day full extracts with 0.1%, 1% and 10% of the keys changed (60% updates, 20% deletes,
#   20% inserts), made by scripts/bench_data.py as CSV and Parquet. Day 0 is loaded first (timed
#   and shown as "day 0", the initial load); then, for each change rate, from the same day-0
#   state, the day-1 extract is timed through
#     floe   `floe land FILE --wait` on a project with one table (load: full, deletes:
#            invalidate) and no models: landing, bronze, standardise + SCD2, audit, publish;
#     dbt    `dbt snapshot` (dbt-core 1.10 + dbt-duckdb 1.9): check strategy on every column,
#            hard_deletes='invalidate', reading the same file;
#     floor  `floe-bench-floor` (bench/): DataFusion, floe's version, reads both extracts, joins
#            them on the key and writes the changed rows as Parquet: the least any SCD2 does.
#   Each history is checked afterwards (current rows and versions as the generator says).
# Landing: one CSV of --landing-rows rows (default 20M, ~2.3 GiB; scripts/bench_data.py
#   --landing-only) through `floe land --wait`, stopped once it is in bronze: the landing
#   stage's time, MB/s and the process's peak RSS (the file is read in chunks: memory stays
#   bounded whatever its size). ~1.5 min with the data made (~30 s to make it).
# Planning: a floe project of 10 templates x 100 tables = 1,000 models, `floe plan --json`,
#   against the same 1,000 models as a dbt project: `dbt parse` and `dbt compile` (both with
#   --no-partial-parse). Median of --plan-runs (default 3).
# Cold start: scripts/bench-cold-start.sh's measure of the four Lambda services.
# --max-memory-gib G: a measured process whose RSS passes G GiB (default 16) is stopped and
#   shown as over memory budget, rather than left to push the machine into the OOM killer.
#
# Prints a markdown table with the ratios floe/dbt and floe/floor (and the growth in time from
# each size to the next when several run, e.g. --size 1m,10m), issue 18's targets (P1, P2, P3,
# P5) each with what was measured and whether it holds, and writes
# bench/results.md, bench/results.png (the chart) and bench/results.json (or --out DIR).
# Time here (2 cores): small ~4 min, --size small,1m,10m ~17 min plus ~4 min to install
# .venv-bench, plus the first release build (~25 min from scratch; seconds when up to date). Disk:
# 10m writes ~6 GB of extracts and needs ~10 GB free while it runs.
# To redraw results.md and the chart from a saved run without running anything:
#   .venv-bench/bin/python scripts/bench.py --from-json bench/results.json --out bench
#
# It installs what it needs: .venv-bench (scripts/bench-requirements.txt: dbt, DuckDB, pyarrow,
# matplotlib; from PyPI, once) and release builds of floe, floe-bench-floor and the services
# in $CARGO_TARGET_DIR (default target/bench-build). Data goes to target/bench-data (kept, and
# reused when the size matches), scratch projects to target/bench-work (removed unless --keep).
# Timings are for this machine and its load, which the results print; nothing of this runs in
# the test suite.
set -euo pipefail
cd "$(dirname "$0")/.."

command_line="scripts/bench.sh${*:+ $*}"
out="bench"
pass=()
athena=()
athena_on=0
while [ $# -gt 0 ]; do
  case "$1" in
    --athena) athena_on=1; shift ;;
    --late) athena+=("--late"); shift ;;
    --days|--rows|--change|--maintain-every)
      [ $# -ge 2 ] || { echo "$1 needs a value (see --help)" >&2; exit 2; }
      athena+=("$1" "$2"); shift 2 ;;
    --size|--formats|--repeat|--plan-runs|--cold-runs|--max-memory-gib|--landing-rows)
      [ $# -ge 2 ] || { echo "$1 needs a value (see --help)" >&2; exit 2; }
      pass+=("$1" "$2"); shift 2 ;;
    --skip-scd2|--skip-landing|--skip-planning|--skip-cold-start|--skip-dbt-compile|--keep)
      pass+=("$1"); shift ;;
    --out) out="$2"; shift 2 ;;
    -h|--help) sed -n '2,60p' "$0"; exit 0 ;;
    *) echo "unknown option: $1 (see --help)" >&2; exit 2 ;;
  esac
done

venv=.venv-bench
if ! "$venv/bin/python" -c 'import dbt.adapters.duckdb, dbt.adapters.athena, duckdb, pyarrow, numpy, matplotlib' >/dev/null 2>&1; then
  echo "installing $venv (scripts/bench-requirements.txt)" >&2
  [ -x "$venv/bin/python" ] || python3 -m venv "$venv" || {
    echo "could not create $venv: install Python 3.10+ with venv (apt-get install python3-venv)" >&2
    exit 1
  }
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r scripts/bench-requirements.txt || {
    echo "could not install scripts/bench-requirements.txt into $venv (it needs PyPI);" \
      "once reachable: $venv/bin/pip install -r scripts/bench-requirements.txt" >&2
    exit 1
  }
fi

target="${CARGO_TARGET_DIR:-target/bench-build}"
if [ $athena_on = 1 ] || [ ${#athena[@]} -gt 0 ]; then
  [ $athena_on = 1 ] || { echo "--days, --rows, --change, --maintain-every and --late go with --athena (see --help)" >&2; exit 2; }
  echo "building a release floe in $target" >&2
  CARGO_TARGET_DIR="$target" cargo build --release -p floe-cli >&2
  scripts/setup.sh >/dev/null  # .venv: the stand-in's moto; Trino comes with scripts/aws-local.sh up
  export DBT_SEND_ANONYMOUS_USAGE_STATS=false DO_NOT_TRACK=1
  exec "$venv/bin/python" scripts/bench_athena.py ${athena[@]+"${athena[@]}"} --bin-dir "$target/release" \
    --data-dir target/bench-data --work-dir target/bench-work/athena --out "$out" --command "$command_line"
fi
echo "building release binaries in $target (floe, floe-bench-floor, the four services)" >&2
start=$(date +%s)
# One cargo invocation for all of them, so that features unify the same way every time and an
# up-to-date tree builds nothing.
CARGO_TARGET_DIR="$target" cargo build --release -p floe-cli -p floe-bench -p floe-landing \
  -p floe-standardise -p floe-audit -p floe-modelling >&2
echo "build took $(( $(date +%s) - start )) s" >&2

export DBT_SEND_ANONYMOUS_USAGE_STATS=false DO_NOT_TRACK=1
exec "$venv/bin/python" scripts/bench.py "${pass[@]}" --bin-dir "$target/release" \
  --data-dir target/bench-data --work-dir target/bench-work --out "$out" \
  --command "$command_line" \
  --build-note "native $(uname -m) release builds (CARGO_TARGET_DIR=$target), not the arm64 Lambda bootstraps"
