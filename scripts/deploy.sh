#!/usr/bin/env bash
# Deploys floe to an AWS account with the CDK app in infra/. Not run in CI.
set -euo pipefail
cd "$(dirname "$0")/.."

usage() {
  cat <<'USAGE'
Usage: scripts/deploy.sh --project DIR [--stage dev|prod] [options] [-- extra `cdk deploy` arguments]

Deploys the whole floe pipeline (the stack floe-<stage>) to the AWS account and region of your
credentials (AWS_PROFILE / AWS_REGION or the default chain), then prints the stack outputs and a
ready-to-paste `athena:` block for floe.yaml.

  1. builds the four Lambda functions with scripts/build-lambdas.sh (cargo-lambda, arm64);
  2. assembles infra/build/assets-<stage>/<function>/ = bootstrap + project/ (the floe project's
     floe.yaml, tables/, models/, templates/, macros/, as far as they exist), so each function
     finds the project at /var/task/project;
  3. runs `npx cdk deploy floe-<stage>` in infra/ (npm ci first when needed);
  4. prints the outputs (also saved to infra/build/outputs-<stage>.json).

Options:
  --project DIR        the floe project to ship with the functions (required)
  --stage dev|prod     the deployment stage (default dev): names, retention, removal, alarm thresholds
  --skip-build         use the artifacts already in $CARGO_TARGET_DIR/lambda (default target/lambda-build)
  --bootstrap          run `cdk bootstrap` first (once per account and region)
  --synth-only         assemble and synthesize (cdk.out in infra/build/), but deploy nothing
  --yes                do not ask to approve IAM and security-group changes (--require-approval never)
  -c, --context K=V    a context key for the CDK app, repeatable, e.g. -c athenaQueryQuota=150,
                       -c batchConcurrency=4, -c notificationEmail=team@example.com,
                       -c bytesScannedCutoffGb=100 (see infra/README.md)
  -h, --help           this help

Needs: Node.js 20+ and npm, Rust with cargo (the build installs cargo-lambda and zig into .venv),
and AWS credentials allowed to deploy CloudFormation stacks. dev and prod can share an account:
Glue databases carry a per-stage prefix (floe_dev_bronze_<source>, ... in dev; bronze_<source>,
gold, ... in prod; -c glueDatabasePrefix=P_ sets another), everything else the stage name
(see infra/README.md, "Names").
USAGE
}

stage=dev
project=
build=1
bootstrap=0
synth_only=0
approval=()
context=()
extra=()
while [ $# -gt 0 ]; do
  case "$1" in
    --project) project=${2:?--project needs a folder}; shift 2 ;;
    --stage) stage=${2:?--stage needs dev or prod}; shift 2 ;;
    --skip-build) build=0; shift ;;
    --bootstrap) bootstrap=1; shift ;;
    --synth-only) synth_only=1; shift ;;
    --yes) approval=(--require-approval never); shift ;;
    -c|--context) context+=(-c "${2:?$1 needs key=value}"); shift 2 ;;
    -h|--help) usage; exit 0 ;;
    --) shift; extra=("$@"); break ;;
    *) echo "unknown argument: $1 (see scripts/deploy.sh --help)" >&2; exit 2 ;;
  esac
done
case "$stage" in dev|prod) ;; *) echo "--stage must be dev or prod, not '$stage'" >&2; exit 2 ;; esac
if [ -z "$project" ]; then
  echo "--project DIR is required: the floe project to deploy (see scripts/deploy.sh --help)" >&2
  exit 2
fi
if [ ! -f "$project/floe.yaml" ] || [ ! -d "$project/tables" ]; then
  echo "$project is not a floe project: it needs floe.yaml and tables/ (floe init makes one)" >&2
  exit 2
fi
project=$(cd "$project" && pwd)

BINS=(floe-landing floe-standardise floe-audit floe-modelling)
PROJECT_PARTS=(floe.yaml tables models templates macros)
target=${CARGO_TARGET_DIR:-target/lambda-build}
assets="$PWD/infra/build/assets-$stage"
outputs="$PWD/infra/build/outputs-$stage.json"
stack="floe-$stage"
export CDK_DISABLE_VERSION_CHECK=1 CDK_DISABLE_CLI_TELEMETRY=true

if [ "$build" = 1 ]; then
  echo "==> building the Lambda functions (scripts/build-lambdas.sh)"
  scripts/build-lambdas.sh
fi

echo "==> assembling $assets"
rm -rf "$assets"
for bin in "${BINS[@]}"; do
  artifact="$target/lambda/$bin/bootstrap"
  if [ ! -f "$artifact" ]; then
    echo "no $artifact: build it with scripts/build-lambdas.sh (or drop --skip-build)" >&2
    exit 1
  fi
  mkdir -p "$assets/$bin/project"
  cp "$artifact" "$assets/$bin/bootstrap"
  chmod 755 "$assets/$bin/bootstrap"
  for part in "${PROJECT_PARTS[@]}"; do
    [ -e "$project/$part" ] && cp -R "$project/$part" "$assets/$bin/project/"
  done
done

echo "==> infra prerequisites"
scripts/setup.sh infra

cd infra
if [ "$synth_only" = 1 ]; then
  echo "==> cdk synth $stack (nothing is deployed)"
  npx --no-install cdk synth "$stack" --quiet --no-notices -c stage="$stage" -c assetDir="$assets" "${context[@]}" \
    -o "build/cdk.out-$stage"
  echo "synthesized infra/build/cdk.out-$stage/$stack.template.json"
  exit 0
fi
if [ "$bootstrap" = 1 ]; then
  echo "==> cdk bootstrap"
  npx --no-install cdk bootstrap --no-notices -c stage="$stage" -c assetDir="$assets" "${context[@]}"
fi
echo "==> cdk deploy $stack"
npx --no-install cdk deploy "$stack" --no-notices -c stage="$stage" -c assetDir="$assets" "${context[@]}" \
  "${approval[@]}" --outputs-file "$outputs" "${extra[@]}"

echo
echo "==> $stack outputs (saved to infra/build/outputs-$stage.json)"
node - "$outputs" "$stack" <<'NODE'
const [file, stack] = process.argv.slice(2);
const o = JSON.parse(require('node:fs').readFileSync(file, 'utf8'))[stack];
for (const [k, v] of Object.entries(o).sort()) console.log(`  ${k.padEnd(34)} ${v}`);
console.log(`
Paste into floe.yaml (engine: athena) to use this deployment from the floe CLI:

athena:
  region: ${o.Region}
  workgroup: ${o.AthenaWorkgroup}
  output_location: ${o.AthenaOutputLocation}
  landing_bucket: ${o.LandingBucket}
  lake_location: ${o.LakeLocation}

Glue databases: the gold models are in ${o.GoldDatabase}; every floe database carries the same
prefix (FLOE_GLUE_DATABASE_PREFIX of the functions).

Land a file:   floe land FILE --table SOURCE.TABLE
Replay:        floe inject --event FILE --to ${stack}-landing
Dead letters:  floe redrive --queue ${stack}-standardise
Dashboard:     ${o.DashboardName} (CloudWatch); alarms and floe.failed go to ${o.NotificationTopicArn}`);
NODE
