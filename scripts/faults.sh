#!/usr/bin/env bash
# The fault-injection suite (issue 3; docs/RELIABILITY.md): its own nats-server (JetStream, file
# storage) on 30222 and redis-server (AOF, appendfsync always) on 30379, three replicas of the built
# service on 31000-31002, load, hostile input, SIGKILLs and restarts; fails on any violation. Node and
# servers as every script: scripts/lib.sh (NATS_SERVER_VERSION=current|minimum, NATS_SERVER_BIN,
# REDIS_FLAVOR=redis|valkey, REDIS_SERVER_BIN).
#
#   npm run test:faults                   # every scenario, one after another (about 25 minutes)
#   bash scripts/faults.sh --short        # short form: scenarios faults, poison, cluster (about 7 minutes; npm test runs it)
#   bash scripts/faults.sh --scenario=revisions,poison [--short]   # some scenarios (issue 9): faults,
#                                         # revisions, poison, redis-stall, redis-outage, backpressure, long
#   bash scripts/faults.sh --no-build     # skip `npm run build` (npm test has just built)
#
# Environment: FAULTS_SEED, FAULTS_KEEP=1, FAULTS_REPORT=<file>, FAULTS_APPENDFSYNC, FAULTS_*_PORT,
# FAULTS_LOAD_SECONDS, FAULTS_RATE, FAULTS_REDIS_OUTAGE_SECONDS, FAULTS_BURST, FAULTS_LONG_SCALE, FAULTS_DIST
# (see test/faults/run.ts).
set -euo pipefail
cd "$(dirname "$0")/.."

args=()
build=1
for a in "$@"; do
  case "$a" in
    --no-build) build=0 ;;
    *) args+=("$a") ;;
  esac
done

# shellcheck source=scripts/lib.sh
source scripts/lib.sh
use_project_node faults
ensure_node_modules faults
use_servers faults
if [ "$build" = 1 ]; then npm run build --silent; fi

# Every process the harness starts is listed here; whatever is left when it ends (even if the harness
# itself was killed) is stopped by pid — and only if it still is one of ours (its command line or
# environment names the suite's ports), never a process that reused the pid.
export FAULTS_PIDFILE
FAULTS_PIDFILE="$(mktemp "${TMPDIR:-/tmp}/meta-agent-faults-pids.XXXXXX")"
ours() {
  local pid="$1"
  [ -r "/proc/$pid/cmdline" ] || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qE -- "-p ${FAULTS_NATS_PORT:-30222} |127\.0\.0\.1:${FAULTS_REDIS_PORT:-30379}|--port ${FAULTS_REDIS_PORT:-30379} " && return 0
  tr '\0' '\n' <"/proc/$pid/environ" 2>/dev/null | grep -qx "META_AGENT_NATS_URL=nats://127.0.0.1:${FAULTS_NATS_PORT:-30222}"
}
cleanup() {
  while read -r pid; do
    if [ -n "$pid" ] && ours "$pid"; then kill -9 "$pid" 2>/dev/null || true; fi
  done <"$FAULTS_PIDFILE"
  rm -f "$FAULTS_PIDFILE"
}
trap cleanup EXIT

node --import ./test/faults/register.mjs test/faults/run.ts ${args[@]+"${args[@]}"}
