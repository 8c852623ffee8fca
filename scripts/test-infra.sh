#!/usr/bin/env bash
# The checks of infra/ (the AWS CDK app), offline, with no AWS credentials and no Rust build:
#   1. prerequisites: infra/node_modules (npm ci) and cfn-lint in .venv (scripts/setup.sh infra);
#   2. the TypeScript type check (tsc --noEmit);
#   3. the node tests (aws-cdk-lib/assertions; cdk-nag runs in every synth they make);
#   4. `cdk synth` of the dev and the prod stack into a temporary folder, over throwaway Lambda
#      assets (a stand-in bootstrap and the test project per function); cdk-nag's AwsSolutions
#      checks fail the synth on any unacknowledged finding;
#   5. cfn-lint on the synthesized templates;
#   6. scripts/deploy.sh: syntax and --help only (it is never run here: it deploys).
# scripts/test.sh runs this first. Takes about a minute on 2 cores once node_modules is there.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> infra: %s\n' "$*"; }
started=$(date +%s)

# Offline and quiet: no version check, no notices, no telemetry.
export CDK_DISABLE_VERSION_CHECK=1 CDK_DISABLE_CLI_TELEMETRY=true

step "prerequisites (npm ci, cfn-lint)"
scripts/setup.sh infra

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

cd infra
step "tsc --noEmit"
npx --no-install tsc --noEmit

step "node tests"
npm test --silent

step "cdk synth (dev and prod, throwaway assets)"
assets="$work/assets"
node --import tsx -e 'require("./test/helpers").makeAssets(undefined, process.argv[1])' "$assets"
for stage in dev prod; do
  npx --no-install cdk synth --quiet --no-notices -c stage="$stage" -c assetDir="$assets" -o "$work/cdk.out-$stage"
  echo "synthesized $work/cdk.out-$stage/floe-$stage.template.json"
done

step "cfn-lint $(../.venv/bin/cfn-lint --version | cut -d' ' -f2)"
../.venv/bin/cfn-lint "$work"/cdk.out-*/floe-*.template.json
echo "no findings"

cd ..
step "scripts/deploy.sh: syntax and --help (never deployed here)"
bash -n scripts/deploy.sh
scripts/deploy.sh --help >/dev/null

echo
echo "infra checks passed in $(( $(date +%s) - started )) s"
