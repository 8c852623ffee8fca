#!/usr/bin/env bash
# Installs the tools the tests and scripts need, idempotently:
#   - cargo-nextest (the test runner), if missing;
#   - .venv: Python with pyiceberg (an independent Iceberg reader for the interop tests) and
#     moto (the AWS stand-in the AWS adapter tests start on 127.0.0.1), sqlglot and DuckDB (the
#     independent parser and engine the Athena SQL conformance test uses);
#   - .venv-dbt: dbt-core with dbt-athena and dbt-duckdb (scripts/requirements-dbt.txt), the
#     clients floe did not write that the local Athena's tests run;
#   - for infra/ (the CDK app): cfn-lint in .venv, and infra/node_modules from package-lock.json
#     (`npm ci`, skipped while node_modules matches the lock file).
# `scripts/setup.sh infra` installs only the infra/ part (what scripts/test-infra.sh needs).
set -euo pipefail
cd "$(dirname "$0")/.."

CFN_LINT_VERSION="1.58"

setup_infra() {
  [ -x .venv/bin/python ] || python3 -m venv .venv
  if ! .venv/bin/cfn-lint --version 2>/dev/null | grep -q "cfn-lint $CFN_LINT_VERSION\."; then
    echo "installing cfn-lint $CFN_LINT_VERSION.* into .venv"
    .venv/bin/pip install --quiet --disable-pip-version-check "cfn-lint==$CFN_LINT_VERSION.*"
  fi
  # npm ci wipes and reinstalls node_modules; do it only when the lock file changed since.
  local lock_hash stamp=infra/node_modules/.floe-lock-sha256
  lock_hash=$(sha256sum infra/package-lock.json | cut -d' ' -f1)
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$lock_hash" ]; then
    echo "installing infra/node_modules (npm ci)"
    (cd infra && npm ci --no-audit --no-fund --loglevel=error)
    echo "$lock_hash" >"$stamp"
  fi
}

if [ "${1:-}" = "infra" ]; then
  # Reinstalled when the requirements file changes (its hash is kept in the venv).
dbt_hash=$(sha256sum scripts/requirements-dbt.txt | cut -d' ' -f1)
if [ ! -x .venv-dbt/bin/dbt ] || [ "$(cat .venv-dbt/.floe-requirements-sha256 2>/dev/null)" != "$dbt_hash" ]; then
  echo "installing .venv-dbt (dbt-core, dbt-athena, dbt-duckdb)"
  [ -x .venv-dbt/bin/python ] || python3 -m venv .venv-dbt
  .venv-dbt/bin/pip install --quiet --disable-pip-version-check -r scripts/requirements-dbt.txt
  echo "$dbt_hash" >.venv-dbt/.floe-requirements-sha256
fi

setup_infra
  exit 0
fi

if ! cargo nextest --version >/dev/null 2>&1; then
  echo "installing cargo-nextest"
  cargo install cargo-nextest --locked
fi

if [ ! -x .venv/bin/python ] || ! .venv/bin/python -c 'import pyiceberg, pyarrow, moto.server, sqlglot, duckdb, pytest, pyathena' >/dev/null 2>&1; then
  echo "installing .venv (pyiceberg, moto, sqlglot, duckdb, pytest, PyAthena)"
  [ -x .venv/bin/python ] || python3 -m venv .venv
  .venv/bin/pip install --quiet --disable-pip-version-check -r scripts/requirements.txt
fi

# Reinstalled when the requirements file changes (its hash is kept in the venv).
dbt_hash=$(sha256sum scripts/requirements-dbt.txt | cut -d' ' -f1)
if [ ! -x .venv-dbt/bin/dbt ] || [ "$(cat .venv-dbt/.floe-requirements-sha256 2>/dev/null)" != "$dbt_hash" ]; then
  echo "installing .venv-dbt (dbt-core, dbt-athena, dbt-duckdb)"
  [ -x .venv-dbt/bin/python ] || python3 -m venv .venv-dbt
  .venv-dbt/bin/pip install --quiet --disable-pip-version-check -r scripts/requirements-dbt.txt
  echo "$dbt_hash" >.venv-dbt/.floe-requirements-sha256
fi

setup_infra
