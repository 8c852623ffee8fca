#!/usr/bin/env bash
# Installs the tools the tests and scripts need, idempotently:
#   - cargo-nextest (the test runner), if missing;
#   - .venv: Python with pyiceberg (an independent Iceberg reader for the interop tests).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! cargo nextest --version >/dev/null 2>&1; then
  echo "installing cargo-nextest"
  cargo install cargo-nextest --locked
fi

if [ ! -x .venv/bin/python ] || ! .venv/bin/python -c 'import pyiceberg, pyarrow' >/dev/null 2>&1; then
  echo "creating .venv with pyiceberg"
  python3 -m venv .venv
  .venv/bin/pip install --quiet --disable-pip-version-check -r scripts/requirements.txt
fi
