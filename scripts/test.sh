#!/usr/bin/env bash
# The whole test suite, as CI runs it. Installs what it needs first:
#   - cargo-nextest, if missing (from crates.io);
#   - a Python venv in .venv with pyiceberg, the independent Iceberg reader the interop tests use,
#     and moto, the AWS stand-in;
#   - Trino (from Maven Central, cached in ~/.cache/floe) for the Athena stand-in: one
#     scripts/aws-local.sh stand-in on 127.0.0.1 (moto serving S3, SQS, EventBridge and Glue,
#     with Athena's API run on Trino) serves the whole run (each test names its own buckets,
#     queues, workgroups and databases) and is stopped at the end.
#   - .venv-dbt with dbt-core, dbt-athena and dbt-duckdb (the local Athena's dbt test);
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

step "the Athena stand-in (scripts/aws-local.sh up: moto + Trino on 127.0.0.1)"
free_port() { .venv/bin/python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
export FLOE_AWS_LOCAL_PORT FLOE_TRINO_PORT FLOE_AWS_LOCAL_DIR="$PWD/target/aws-local"
FLOE_AWS_LOCAL_PORT=$(free_port)
FLOE_TRINO_PORT=$(free_port)
trap 'scripts/aws-local.sh down || true' EXIT
started=$SECONDS
scripts/aws-local.sh up >/dev/null
echo "stand-in ready in $((SECONDS - started)) s"
endpoint="http://127.0.0.1:$FLOE_AWS_LOCAL_PORT"

step "the stand-in's own tests (pytest: Athena's API, Glue's concurrency, what Athena refuses; boto3, PyAthena and dbt-athena as clients)"
FLOE_REQUIRE_DBT=1 AWS_ENDPOINT_URL="$endpoint" .venv/bin/python -m pytest -q -p no:cacheprovider scripts/aws_local/tests

step "cargo nextest run"
# These must run here, not skip: pyiceberg is the proof that other engines read our tables, the
# stand-in that floe's Athena path works.
export FLOE_REQUIRE_PYICEBERG=1 FLOE_REQUIRE_MOTO=1 FLOE_REQUIRE_ATHENA=1
export FLOE_PYTHON="$PWD/.venv/bin/python"
export FLOE_MOTO_ENDPOINT="$endpoint" FLOE_ATHENA_ENDPOINT="$endpoint"
cargo nextest run --workspace --locked --no-fail-fast
