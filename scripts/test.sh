#!/usr/bin/env bash
# The whole test suite, as CI runs it. Installs what it needs first:
#   - cargo-nextest, if missing (from crates.io);
#   - a Python venv in .venv with pyiceberg, the independent Iceberg reader the interop tests use.
# Then: rustfmt check, clippy with warnings denied, and every test of the workspace.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

step "prerequisites"
scripts/setup.sh

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy (warnings are errors)"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "cargo nextest run"
# The interop tests must run here, not skip: they are the proof that other engines read our tables.
export FLOE_REQUIRE_PYICEBERG=1
export FLOE_PYTHON="$PWD/.venv/bin/python"
cargo nextest run --workspace --locked --no-fail-fast
