#!/usr/bin/env bash
# Cold start and peak memory of the four Lambda services (floe-landing, floe-standardise,
# floe-audit, floe-modelling), printed as a markdown table with the date, the machine and this
# command.
#
#   scripts/bench-cold-start.sh [--runs N] [--warmup N] [--bin-dir DIR]
#
# Cold start = from spawning the process to its first Runtime API poll
# (GET /2018-06-01/runtime/invocation/next) against a local emulator
# (scripts/lambda_runtime_emulator.py): logging, settings, project load, AWS SDK clients, the
# embedded lake (FLOE_ENGINE=local, a fresh FLOE_LAKE_DIR per run). Peak RSS = VmHWM of the process
# just before it is killed (after its first poll and one empty SQS invocation). N runs per service
# (default 10), median and p90. Every AWS endpoint points at a closed port (127.0.0.1:9), so the
# process only reaches its first poll if it makes no AWS call at start; each run checks it polled
# and answered.
#
# NOT the Lambda artifacts: the arm64 bootstraps (scripts/build-lambdas.sh) cannot run on an
# x86_64 machine, so this measures NATIVE release builds of the same code:
#   cargo build --release -p floe-landing -p floe-standardise -p floe-audit -p floe-modelling
# with CARGO_TARGET_DIR=target/bench-build (its own folder, so other builds are not blocked).
# That build takes ~20+ minutes from scratch on 2 cores (seconds when up to date); the runs
# themselves take well under a minute. --bin-dir DIR skips the build and measures DIR's binaries.
#
# Needs: Linux (/proc), python3 (standard library only), cargo (unless --bin-dir).
# Timings are for this machine and its load (printed): Lambda's CPUs differ, compare like with like.
set -euo pipefail
cd "$(dirname "$0")/.."

command_line="scripts/bench-cold-start.sh${*:+ $*}"
bin_dir=""
runs=10
warmup=1
while [ $# -gt 0 ]; do
  case "$1" in
    --bin-dir) bin_dir="$2"; shift 2 ;;
    --runs) runs="$2"; shift 2 ;;
    --warmup) warmup="$2"; shift 2 ;;
    -h|--help) sed -n '2,25p' "$0"; exit 0 ;;
    *) echo "unknown option: $1 (see --help)" >&2; exit 2 ;;
  esac
done

if [ -n "$bin_dir" ]; then
  build_note="given with --bin-dir $bin_dir (not rebuilt)"
else
  target="${CARGO_TARGET_DIR:-target/bench-build}"
  echo "building native release binaries in $target (x86_64: the arm64 Lambda builds cannot run here)" >&2
  start=$(date +%s)
  CARGO_TARGET_DIR="$target" cargo build --release -p floe-landing -p floe-standardise -p floe-audit -p floe-modelling >&2
  echo "build took $(( $(date +%s) - start )) s" >&2
  bin_dir="$target/release"
  build_note="native $(uname -m) release build (cargo build --release, CARGO_TARGET_DIR=$target), not the arm64 Lambda bootstraps"
fi

exec python3 scripts/bench_cold_start.py --bin-dir "$bin_dir" --runs "$runs" --warmup "$warmup" \
  --command "$command_line" --build-note "$build_note"
