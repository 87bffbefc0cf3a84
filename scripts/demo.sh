#!/usr/bin/env bash
# The demo, in one command: runs on the project's Node 22 and the current nats-server (scripts/lib.sh:
# installed into .cache when needed, versions printed; NATS_SERVER_VERSION=minimum for 2.10), installs
# dependencies when needed, starts a private nats-server (JetStream)
# and redis-server on loopback, builds the service, starts the orchestrator in the background, runs the
# agent simulator against it (decisions are printed as they arrive), and stops everything again,
# whatever happens. Exits with the simulator's status.
#
#   npm run demo
#   SIM_WORKFLOWS=100 SIM_RATE=20 npm run demo     # SIM_* settings go to scripts/agent-simulator.mjs
#   DEMO_KEEP_RUNNING=1 npm run demo               # keep the orchestrator up afterwards (Ctrl-C stops it),
#                                                  # e.g. to look around in the operator console (/console)
#
# Ports: DEMO_NATS_PORT (24222), DEMO_REDIS_PORT (26379), META_AGENT_METRICS_PORT (29090).
set -euo pipefail
cd "$(dirname "$0")/.."

# shellcheck source=scripts/lib.sh
source scripts/lib.sh
use_project_node demo
ensure_node_modules demo
use_servers demo

export NATS_PORT="${DEMO_NATS_PORT:-24222}"
export REDIS_PORT="${DEMO_REDIS_PORT:-26379}"
export SERVERS_DIR="${TMPDIR:-/tmp}/meta-agent-demo-servers-${NATS_PORT}"
HTTP_PORT="${META_AGENT_METRICS_PORT:-29090}"
# The admin endpoints (GET /workflows/<corr_id>) need a bearer token: the demo makes one for its run.
DEMO_ADMIN_TOKEN="${DEMO_ADMIN_TOKEN:-demo-$(od -An -tx1 -N12 /dev/urandom | tr -d ' \n')}"
BASE_URL="http://127.0.0.1:${HTTP_PORT}"
ORCHESTRATOR_LOG="$SERVERS_DIR/orchestrator.log"

http_status() { # prints the HTTP status of a GET (000 when nothing answers)
  node -e 'fetch(process.argv[1], { signal: AbortSignal.timeout(2000) })
    .then((r) => console.log(r.status), () => console.log("000"))' "$1"
}

orchestrator_pid=""
servers_started=""
stop_orchestrator() {
  [ -n "$orchestrator_pid" ] || return 0
  if kill -0 "$orchestrator_pid" 2>/dev/null; then
    kill -TERM "$orchestrator_pid" 2>/dev/null || true
    # It drains in-flight work first (META_AGENT_SHUTDOWN_TIMEOUT_MS caps that); 30 s is plenty.
    for _ in $(seq 1 300); do kill -0 "$orchestrator_pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$orchestrator_pid" 2>/dev/null || true
  fi
  wait "$orchestrator_pid" 2>/dev/null || true
  orchestrator_pid=""
}
cleanup() {
  local status=$?
  trap - EXIT INT TERM
  stop_orchestrator
  if [ "$status" -ne 0 ] && [ -f "$ORCHESTRATOR_LOG" ]; then
    echo "[demo] last lines of the orchestrator's log:" >&2
    tail -n 20 "$ORCHESTRATOR_LOG" >&2 || true
  fi
  if [ -n "$servers_started" ]; then bash scripts/servers.sh stop >/dev/null 2>&1 || true; fi
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Another process on the HTTP port would answer the readiness check in our orchestrator's place.
if [ "$(http_status "$BASE_URL/health/live")" != "000" ]; then
  echo "[demo] port $HTTP_PORT is already in use; set META_AGENT_METRICS_PORT to a free port" >&2
  exit 1
fi

servers_started=1
bash scripts/servers.sh start

echo "[demo] building"
npm run build --silent

echo "[demo] starting the orchestrator (log: $ORCHESTRATOR_LOG)"
META_AGENT_NATS_URL="nats://127.0.0.1:${NATS_PORT}" \
META_AGENT_REDIS_URL="redis://127.0.0.1:${REDIS_PORT}" \
META_AGENT_METRICS_PORT="$HTTP_PORT" \
META_AGENT_ADMIN_TOKEN="demo:${DEMO_ADMIN_TOKEN}" \
META_AGENT_LOG_LEVEL="${DEMO_LOG_LEVEL:-warning}" \
  node dist/main.js >"$ORCHESTRATOR_LOG" 2>&1 &
orchestrator_pid=$!

ready=""
for _ in $(seq 1 120); do
  if ! kill -0 "$orchestrator_pid" 2>/dev/null; then
    echo "[demo] the orchestrator stopped during start-up" >&2
    exit 1
  fi
  if [ "$(http_status "$BASE_URL/health/ready")" = "200" ]; then ready=1; break; fi
  sleep 0.5
done
if [ -z "$ready" ]; then
  echo "[demo] the orchestrator was not ready within 60 s ($BASE_URL/health/ready)" >&2
  exit 1
fi
echo "[demo] orchestrator ready on $BASE_URL; running the agent simulator"
echo "[demo] operator console (live decisions): $BASE_URL/console   admin token: $DEMO_ADMIN_TOKEN"
demo_started="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
echo

set +e
SIM_NATS_URL="nats://127.0.0.1:${NATS_PORT}" node scripts/agent-simulator.mjs
status=$?
set -e

echo
echo "[demo] metrics: $BASE_URL/metrics   health: $BASE_URL/health"
echo "[demo] operator console: $BASE_URL/console (admin token: $DEMO_ADMIN_TOKEN)"
echo "[demo] one workflow: curl -H 'Authorization: Bearer $DEMO_ADMIN_TOKEN' $BASE_URL/workflows/<corr_id>"
echo "[demo] its audit history: curl -H 'Authorization: Bearer $DEMO_ADMIN_TOKEN' $BASE_URL/workflows/<corr_id>/history"
echo "[demo] backtest a change: META_AGENT_NATS_URL=nats://127.0.0.1:${NATS_PORT} META_AGENT_MIN_CONFIDENCE_THRESHOLD=0.75 npm run replay -- --since $demo_started"
# The orchestrator's own count of what just happened (the histograms left out).
node -e '
  fetch(process.argv[1]).then((r) => r.text()).then((text) => {
    const wanted = /^meta_agent_(workflows_started|workflows_completed|declined_triggers|duplicates|early_signals|late_signals|dead_letters)_total/;
    for (const line of text.split("\n")) if (wanted.test(line)) console.log("  " + line);
  }, () => {});
' "$BASE_URL/metrics"

if [ -n "${DEMO_KEEP_RUNNING:-}" ]; then
  echo "[demo] the orchestrator keeps running (DEMO_KEEP_RUNNING); Ctrl-C stops it and the servers"
  wait "$orchestrator_pid" || true
fi
exit "$status"
