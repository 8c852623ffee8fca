#!/usr/bin/env bash
# The whole test suite, as CI runs it. Installs what it needs first:
#   - cargo-nextest, if missing (from crates.io);
#   - a Python venv in .venv with pyiceberg, the independent Iceberg reader the interop tests use,
#     and moto, the AWS stand-in: one moto server on 127.0.0.1 serves the whole run (each test
#     names its own buckets and queues) and is stopped at the end.
#   - for infra/: node_modules (npm ci) and cfn-lint in .venv.
# Then: the infra/ checks (scripts/test-infra.sh: type check, node tests, cdk synth with cdk-nag,
# cfn-lint; first, as they fail fast), rustfmt check, clippy with warnings denied, and every test
# of the workspace.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

step "prerequisites"
scripts/setup.sh

step "infra: tsc, node tests, cdk synth + cdk-nag, cfn-lint (scripts/test-infra.sh)"
scripts/test-infra.sh

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy (warnings are errors)"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "cargo nextest run"
# The interop tests must run here, not skip: they are the proof that other engines read our tables.
export FLOE_REQUIRE_PYICEBERG=1
export FLOE_PYTHON="$PWD/.venv/bin/python"
export FLOE_REQUIRE_MOTO=1
port=$(.venv/bin/python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
.venv/bin/moto_server -H 127.0.0.1 -p "$port" >target/moto.log 2>&1 &
moto_pid=$!
trap 'kill $moto_pid 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
  if (echo >/dev/tcp/127.0.0.1/"$port") 2>/dev/null; then break; fi
  sleep 0.1
done
export FLOE_MOTO_ENDPOINT="http://127.0.0.1:$port"
cargo nextest run --workspace --locked --no-fail-fast
