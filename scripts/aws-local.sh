#!/usr/bin/env bash
# A local AWS for floe and for any Athena client: moto (S3, SQS, EventBridge, Glue) on
# 127.0.0.1 with Athena's API answered by Trino (Iceberg + Hive connectors on moto's Glue and S3).
#
#   scripts/aws-local.sh up [PROJECT_DIR]   start (or reuse) the stand-in; with PROJECT_DIR, also
#                                           create that project's resources as the CDK stack
#                                           names them and write engine: athena + athena: into
#                                           its floe.yaml. Prints the export lines to use.
#   scripts/aws-local.sh env                print the export lines again
#   scripts/aws-local.sh status             say what runs where
#   scripts/aws-local.sh reset              forget every bucket, queue, table and query (keeps running)
#   scripts/aws-local.sh down               stop both processes (state is in memory: gone)
#
# It installs what is missing: the Python venv (.venv, scripts/requirements.txt) and Trino
# (server core + Iceberg and Hive plugins from Maven Central, into $FLOE_CACHE, default
# ~/.cache/floe). Trino needs Java 24 or newer: $FLOE_JAVA_HOME, else a Temurin 25 JDK under
# /usr/lib/jvm, else $JAVA_HOME.
#
# Environment: FLOE_AWS_LOCAL_PORT (moto, default 4566), FLOE_TRINO_PORT (default 8085),
# FLOE_AWS_LOCAL_DIR (pids, logs and Trino's data; default $FLOE_CACHE/aws-local-$PORT),
# FLOE_TRINO_HEAP (default 2G), FLOE_AWS_LOCAL_STAGE (the stack stage a project's resources are
# named for, default dev: floe-dev-* and Glue databases floe_dev_*), AWS region eu-west-2.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"

TRINO_VERSION=476
REGION=eu-west-2
cache="${FLOE_CACHE:-$HOME/.cache/floe}"
port="${FLOE_AWS_LOCAL_PORT:-4566}"
trino_port="${FLOE_TRINO_PORT:-8085}"
state="${FLOE_AWS_LOCAL_DIR:-$cache/aws-local-$port}"
trino_home="$cache/trino-$TRINO_VERSION"
py="$root/.venv/bin/python"
endpoint="http://127.0.0.1:$port"

say() { printf '%s\n' "$*" >&2; }
die() { say "aws-local: $*"; exit 1; }

usage() { sed -n '2,24p' "$0" | sed 's/^# \{0,1\}//'; }

java_home() {
  if [ -n "${FLOE_JAVA_HOME:-}" ]; then echo "$FLOE_JAVA_HOME"; return; fi
  local d
  for d in /usr/lib/jvm/temurin-2[5-9]-jdk* /usr/lib/jvm/temurin-2[4-9]*; do
    [ -x "$d/bin/java" ] && { echo "$d"; return; }
  done
  if [ -n "${JAVA_HOME:-}" ] && "$JAVA_HOME/bin/java" -version 2>&1 | grep -qE 'version "(2[4-9]|[3-9][0-9])'; then
    echo "$JAVA_HOME"; return
  fi
  die "Trino $TRINO_VERSION needs Java 24 or newer: set FLOE_JAVA_HOME to such a JDK"
}

install_python() {
  if [ ! -x "$py" ] || ! "$py" -c 'import moto.server, boto3, requests' >/dev/null 2>&1; then
    say "installing .venv (scripts/requirements.txt)"
    [ -x "$py" ] || python3 -m venv "$root/.venv"
    "$root/.venv/bin/pip" install --quiet --disable-pip-version-check -r "$root/scripts/requirements.txt"
  fi
}

install_trino() {
  [ -x "$trino_home/bin/launcher" ] && [ -d "$trino_home/plugin/trino-iceberg-$TRINO_VERSION" ] \
    && [ -d "$trino_home/plugin/trino-hive-$TRINO_VERSION" ] && return
  say "installing Trino $TRINO_VERSION into $trino_home (about 800 MB from Maven Central, once)"
  local dl="$cache/trino-download" tmp="$trino_home.partial"
  mkdir -p "$dl"
  local a
  for a in trino-server-core:$TRINO_VERSION:tar.gz trino-iceberg:$TRINO_VERSION:zip trino-hive:$TRINO_VERSION:zip; do
    local file="$dl/${a%%:*}-$TRINO_VERSION.${a##*:}"
    [ -s "$file" ] || mvn -q -B dependency:copy -Dartifact="io.trino:$a" -DoutputDirectory="$dl" \
      || die "could not fetch io.trino:$a from Maven Central"
  done
  rm -rf "$tmp" && mkdir -p "$tmp/plugin"
  tar -xzf "$dl/trino-server-core-$TRINO_VERSION.tar.gz" -C "$tmp" --strip-components=1
  (cd "$tmp/plugin" && unzip -q "$dl/trino-iceberg-$TRINO_VERSION.zip" && unzip -q "$dl/trino-hive-$TRINO_VERSION.zip")
  rm -rf "$trino_home" && mv "$tmp" "$trino_home"
}

moto_up() { (echo >"/dev/tcp/127.0.0.1/$port") 2>/dev/null; }
trino_up() { curl -sf "http://127.0.0.1:$trino_port/v1/info" 2>/dev/null | grep -q '"starting":false'; }

start() {
  mkdir -p "$state"
  if ! moto_up; then
    say "starting moto + the Athena API on $endpoint"
    PYTHONPATH="$root/scripts" nohup "$py" -m aws_local serve --port "$port" \
      --trino "http://127.0.0.1:$trino_port" >"$state/moto.log" 2>&1 &
    echo $! >"$state/moto.pid"
    for _ in $(seq 1 100); do moto_up && break; sleep 0.1; done
    moto_up || die "moto did not start: see $state/moto.log"
  fi
  PYTHONPATH="$root/scripts" "$py" -m aws_local base --endpoint "$endpoint" --region "$REGION"
  if ! trino_up; then
    say "starting Trino $TRINO_VERSION on 127.0.0.1:$trino_port (about 30 s)"
    PYTHONPATH="$root/scripts" "$py" -m aws_local trino-config --etc "$state/etc" --data "$state/trino" \
      --port "$trino_port" --moto "$endpoint" --region "$REGION" --heap "${FLOE_TRINO_HEAP:-2G}"
    JAVA_HOME="$(java_home)" "$trino_home/bin/launcher" start --etc-dir "$state/etc" \
      --data-dir "$state/trino" >/dev/null
    local started=$SECONDS
    until trino_up; do
      [ $((SECONDS - started)) -lt 300 ] || die "Trino did not start in 5 minutes: see $state/trino/var/log/"
      sleep 0.5
    done
    say "Trino ready in $((SECONDS - started)) s"
  fi
}

exports() {
  cat <<EOF
export AWS_ENDPOINT_URL=$endpoint
export FLOE_AWS_ENDPOINT_URL=$endpoint
export AWS_ACCESS_KEY_ID=test
export AWS_SECRET_ACCESS_KEY=test
export AWS_REGION=$REGION
export AWS_DEFAULT_REGION=$REGION
EOF
}

stop() {
  if [ -d "$state/trino" ] && [ -x "$trino_home/bin/launcher" ]; then
    JAVA_HOME="$(java_home)" "$trino_home/bin/launcher" stop --etc-dir "$state/etc" \
      --data-dir "$state/trino" >/dev/null 2>&1 || true
  fi
  if [ -f "$state/moto.pid" ]; then
    kill "$(cat "$state/moto.pid")" 2>/dev/null || true
    rm -f "$state/moto.pid"
  fi
  say "stopped"
}

case "${1:-}" in
  up)
    install_python
    install_trino
    start
    if [ -n "${2:-}" ]; then
      say "creating the resources of project $2"
      PYTHONPATH="$root/scripts" "$py" -m aws_local project --dir "$2" --endpoint "$endpoint" \
        --region "$REGION" --stage "${FLOE_AWS_LOCAL_STAGE:-dev}" >&2
    fi
    exports
    ;;
  env) exports ;;
  status)
    moto_up && say "moto + Athena API: $endpoint" || say "moto: not running"
    trino_up && say "Trino: http://127.0.0.1:$trino_port" || say "Trino: not running"
    ;;
  down) stop ;;
  reset)
    moto_up || die "not running: scripts/aws-local.sh up first"
    curl -sf -X POST "$endpoint/moto-api/reset" >/dev/null
    PYTHONPATH="$root/scripts" "$py" -m aws_local base --endpoint "$endpoint" --region "$REGION"
    say "reset: every resource is gone; scripts/aws-local.sh up PROJECT_DIR makes a project's again"
    ;;
  -h | --help | help) usage ;;
  *) usage; exit 2 ;;
esac
