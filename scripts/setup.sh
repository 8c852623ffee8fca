#!/usr/bin/env bash
# Installs the tools the tests and scripts need, idempotently:
#   - cargo-nextest (the test runner), if missing;
#   - .venv: Python with pyiceberg (an independent Iceberg reader for the interop tests) and
#     moto (the AWS stand-in the AWS adapter tests start on 127.0.0.1), sqlglot and DuckDB (the
#     independent parser and engine the Athena SQL conformance test uses).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! cargo nextest --version >/dev/null 2>&1; then
  echo "installing cargo-nextest"
  cargo install cargo-nextest --locked
fi

if [ ! -x .venv/bin/python ] || ! .venv/bin/python -c 'import pyiceberg, pyarrow, moto.server, sqlglot, duckdb' >/dev/null 2>&1; then
  echo "installing .venv (pyiceberg, moto, sqlglot, duckdb)"
  [ -x .venv/bin/python ] || python3 -m venv .venv
  .venv/bin/pip install --quiet --disable-pip-version-check -r scripts/requirements.txt
fi
