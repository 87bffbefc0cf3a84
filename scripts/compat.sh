#!/usr/bin/env bash
# npm run test:compat: the end-to-end suite (jest project e2e) once on each tested combination of servers:
# the minimum nats-server (Debian trixie's package, 2.10.x) and the current one (Debian unstable's, 2.15.x)
# on Redis 7.0 (the machine's bookworm redis-server), and the current nats-server on Valkey 8.0 (Debian
# bookworm-backports), each fetched and started as scripts/lib.sh does for every script
# (NATS_SERVER_VERSION, REDIS_FLAVOR). Prints the versions, then one line per combination.
#
#   npm run test:compat
#   COMPAT_COMBINATIONS="current:valkey" npm run test:compat   # some of them only (nats-version:redis-flavor)
#   COMPAT_NATS_VERSIONS="minimum" npm run test:compat         # these nats-servers, on Redis only
#   npm run test:compat -- -t 'SIGTERM'                        # extra arguments go to jest
#
# Ports: TEST_NATS_PORT / TEST_REDIS_PORT, as for npm test (the servers are started afresh for each run).
set -euo pipefail
cd "$(dirname "$0")/.."

# shellcheck source=scripts/lib.sh
source scripts/lib.sh
use_project_node compat
ensure_node_modules compat

combinations="${COMPAT_COMBINATIONS:-minimum:redis current:redis current:valkey}"
if [ -n "${COMPAT_NATS_VERSIONS:-}" ]; then
  combinations=""
  for choice in $COMPAT_NATS_VERSIONS; do combinations+=" $choice:redis"; done
fi

summary=()
status=0
for combination in $combinations; do
  choice="${combination%%:*}"
  flavor="${combination#*:}"
  [ "$flavor" != "$combination" ] || flavor=redis
  # The servers this run uses, resolved the way scripts/test.sh will resolve them (the choice of a
  # previous combination, exported by use_servers, must not carry over: hence the unsets).
  bins="$(
    unset NATS_SERVER_BIN REDIS_SERVER_BIN REDIS_CLI_BIN META_AGENT_SERVERS_SHOWN
    NATS_SERVER_VERSION="$choice" REDIS_FLAVOR="$flavor" use_servers compat >/dev/null 2>&1 && echo "$NATS_SERVER_BIN $REDIS_SERVER_BIN"
  )" || {
    echo "[compat] no servers for NATS_SERVER_VERSION=$choice REDIS_FLAVOR=$flavor" >&2
    summary+=("nats-server ($choice) + $flavor: NOT RUN")
    status=1
    continue
  }
  nats_version="$(nats_server_version "${bins%% *}")"
  redis_bin="${bins#* }"
  redis_name="redis-server"
  if "$redis_bin" --version 2>/dev/null | grep -q '^Valkey'; then redis_name="valkey-server"; fi
  what="nats-server $nats_version ($choice) + $redis_name $(redis_server_version "$redis_bin")"
  echo
  echo "[compat] e2e suite on $what"
  set +e
  (
    unset META_AGENT_SERVERS_SHOWN NATS_SERVER_BIN REDIS_SERVER_BIN REDIS_CLI_BIN
    export NATS_SERVER_VERSION="$choice" REDIS_FLAVOR="$flavor" TEST_FAULTS=0 TEST_TOOLS=0
    bash scripts/test.sh --selectProjects e2e "$@"
  )
  rc=$?
  set -e
  summary+=("$what: $([ "$rc" -eq 0 ] && echo passed || echo FAILED)")
  [ "$rc" -eq 0 ] || status=1
done

echo
echo "[compat] node $(node -v)"
for line in "${summary[@]}"; do echo "[compat] $line"; done
exit "$status"
