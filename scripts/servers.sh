#!/usr/bin/env bash
# Start or stop a local nats-server (JetStream on) and redis-server on loopback, with their data in a
# temporary folder. Which servers: scripts/lib.sh (use_servers): by default the current nats-server from
# Debian's archive, unpacked into .cache/servers (NATS_SERVER_VERSION=current|minimum|system, or
# NATS_SERVER_BIN=<path>), and the machine's redis-server (installed with apt-get when missing), or with
# REDIS_FLAVOR=valkey Valkey 8.0 from Debian bookworm-backports (unpacked into .cache/servers like
# nats-server); REDIS_SERVER_BIN=<path> for another.
#
#   scripts/servers.sh start    # idempotent: reuses servers this script already started
#   scripts/servers.sh stop     # stops them and removes their data folder
#   scripts/servers.sh status
#
# Ports and folder come from the environment (defaults below), so tests, the demo and the benchmark
# can run their own pair side by side:
#   NATS_PORT (4222)  REDIS_PORT (6379)  SERVERS_DIR (${TMPDIR:-/tmp}/meta-agent-servers-$NATS_PORT)
#   REDIS_APPENDFSYNC (everysec)        REDIS_PASSWORD / NATS_USER+NATS_PASSWORD (unset: no auth)
#   REDIS_HASH_MAX_LISTPACK_VALUE (4096: workflow hashes as compact listpacks, docs/OPERATIONS.md "Redis")
set -euo pipefail

NATS_PORT="${NATS_PORT:-4222}"
REDIS_PORT="${REDIS_PORT:-6379}"
SERVERS_DIR="${SERVERS_DIR:-${TMPDIR:-/tmp}/meta-agent-servers-${NATS_PORT}}"
REDIS_APPENDFSYNC="${REDIS_APPENDFSYNC:-everysec}"

log() { printf '[servers] %s\n' "$*" >&2; }

# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

pid_alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# A server of somebody else's on our port would answer in place of ours: refuse instead.
refuse_busy_port() {
  if port_open "$1"; then
    log "port $1 is already in use by another process; stop it or choose another port ($2)"
    exit 1
  fi
}

# Up to 60 s: on a loaded machine (tests of several checkouts side by side) a server can take more than the
# few seconds it takes when idle; a server that exited is reported at once ($3: its pid, when known).
wait_port() {
  local port="$1" name="$2" pid="${3:-}"
  for _ in $(seq 1 600); do
    if port_open "$port"; then return 0; fi
    if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then break; fi
    sleep 0.1
  done
  log "$name did not open port $port; see $SERVERS_DIR/$name.log"
  exit 1
}

start_nats() {
  if pid_alive "$SERVERS_DIR/nats.pid"; then return 0; fi
  refuse_busy_port "$NATS_PORT" NATS_PORT
  local auth=""
  if [ -n "${NATS_USER:-}" ]; then auth="--user $NATS_USER --pass ${NATS_PASSWORD:-}"; fi
  # shellcheck disable=SC2086
  "$NATS_SERVER_BIN" -a 127.0.0.1 -p "$NATS_PORT" -js -sd "$SERVERS_DIR/nats" \
    -l "$SERVERS_DIR/nats.log" -P "$SERVERS_DIR/nats.pid" $auth &
  local pid=$!
  disown || true
  wait_port "$NATS_PORT" nats "$pid"
}

start_redis() {
  if pid_alive "$SERVERS_DIR/redis.pid"; then return 0; fi
  refuse_busy_port "$REDIS_PORT" REDIS_PORT
  local args=(--bind 127.0.0.1 --port "$REDIS_PORT" --dir "$SERVERS_DIR/redis" --daemonize yes
    --pidfile "$SERVERS_DIR/redis.pid" --logfile "$SERVERS_DIR/redis.log"
    --appendonly yes --appendfsync "$REDIS_APPENDFSYNC" --save "" --protected-mode no
    --hash-max-listpack-value "${REDIS_HASH_MAX_LISTPACK_VALUE:-4096}")
  if [ -n "${REDIS_PASSWORD:-}" ]; then args+=(--requirepass "$REDIS_PASSWORD"); fi
  "$REDIS_SERVER_BIN" "${args[@]}"
  wait_port "$REDIS_PORT" redis
}

stop_one() {
  local pidfile="$1"
  if pid_alive "$pidfile"; then
    local pid; pid="$(cat "$pidfile")"
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$pidfile"
}

case "${1:-}" in
  start)
    use_servers servers
    mkdir -p "$SERVERS_DIR/nats" "$SERVERS_DIR/redis"
    start_nats
    start_redis
    log "nats-server on nats://127.0.0.1:$NATS_PORT, $(basename "$REDIS_SERVER_BIN") on redis://127.0.0.1:$REDIS_PORT (data in $SERVERS_DIR)"
    ;;
  stop)
    stop_one "$SERVERS_DIR/nats.pid"
    stop_one "$SERVERS_DIR/redis.pid"
    rm -rf "$SERVERS_DIR"
    log "stopped (port $NATS_PORT / $REDIS_PORT)"
    ;;
  status)
    pid_alive "$SERVERS_DIR/nats.pid" && echo "nats: running" || echo "nats: stopped"
    pid_alive "$SERVERS_DIR/redis.pid" && echo "redis: running" || echo "redis: stopped"
    ;;
  *)
    echo "usage: $0 start|stop|status" >&2
    exit 2
    ;;
esac
