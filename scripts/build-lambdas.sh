#!/usr/bin/env bash
# Builds the four Lambda functions (floe-landing, floe-standardise, floe-modelling, floe-audit) for AWS Lambda's
# arm64 (Graviton) provided.al2023 runtime, in one invocation:
#
#   cargo lambda build --release --arm64 --bin floe-landing --bin floe-standardise --bin floe-modelling --bin floe-audit
#
# and prints where each artifact is and its size: <target>/lambda/<bin>/bootstrap (or
# bootstrap.zip with `--output-format zip`). Extra arguments are passed to `cargo lambda build`,
# e.g. `scripts/build-lambdas.sh --output-format zip`.
#
# Target folder: CARGO_TARGET_DIR, default target/lambda-build (its own folder, so this build
# neither waits for nor invalidates the everyday builds in target/).
#
# Needs, and installs when missing:
#   - cargo-lambda and zig (the cross linker), from PyPI into the repository's venv .venv
#     (`pip install cargo-lambda==1.9.2 ziglang`; .venv is created if absent, as scripts/setup.sh does);
#   - the Rust target aarch64-unknown-linux-gnu (`rustup target add`, for the pinned toolchain).
# Network access to PyPI and the Rust dist server is needed only for that first install.
#
# Takes: a release build of the whole dependency tree (DataFusion, Iceberg, AWS SDK) for arm64:
# about 20-30 minutes from scratch on a 2-core machine; seconds when nothing changed.
set -euo pipefail
cd "$(dirname "$0")/.."

BINS=(floe-landing floe-standardise floe-modelling floe-audit)
CARGO_LAMBDA_VERSION="${CARGO_LAMBDA_VERSION:-1.9.2}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-target/lambda-build}"
# cargo finds the `cargo-lambda` subcommand, and cargo-lambda finds zig (`python3 -m ziglang`), here.
export PATH="$PWD/.venv/bin:$PATH"

if ! cargo lambda --version >/dev/null 2>&1 || ! python3 -c 'import ziglang' >/dev/null 2>&1; then
  [ -x .venv/bin/python ] || python3 -m venv .venv
  echo "installing cargo-lambda $CARGO_LAMBDA_VERSION and ziglang into .venv"
  .venv/bin/pip install --quiet --disable-pip-version-check "cargo-lambda==$CARGO_LAMBDA_VERSION" ziglang
fi
echo "using $(cargo lambda --version)"

if ! rustup target list --installed | grep -qx aarch64-unknown-linux-gnu; then
  echo "adding the Rust target aarch64-unknown-linux-gnu"
  rustup target add aarch64-unknown-linux-gnu
fi

bin_args=()
for b in "${BINS[@]}"; do bin_args+=(--bin "$b"); done

start=$(date +%s)
cargo lambda build --release --arm64 "${bin_args[@]}" "$@"
elapsed=$(( $(date +%s) - start ))

echo
echo "built in ${elapsed} s (CARGO_TARGET_DIR=$CARGO_TARGET_DIR); artifacts:"
for b in "${BINS[@]}"; do
  found=0
  for f in "$CARGO_TARGET_DIR/lambda/$b/bootstrap" "$CARGO_TARGET_DIR/lambda/$b/bootstrap.zip"; do
    if [ -f "$f" ]; then
      found=1
      bytes=$(stat -c %s "$f")
      printf '  %-52s %10d bytes (%s MiB)\n' "$f" "$bytes" "$(awk -v b="$bytes" 'BEGIN { printf "%.1f", b / 1048576 }')"
    fi
  done
  if [ "$found" = 0 ]; then
    echo "  $b: no artifact under $CARGO_TARGET_DIR/lambda/$b/" >&2
    exit 1
  fi
done
