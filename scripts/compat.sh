#!/usr/bin/env bash
# npm run test:compat: the end-to-end suite (jest project e2e) once against each supported nats-server: the
# minimum (Debian trixie's package, 2.10.x) and the current one (Debian unstable's, 2.15.x), each fetched
# and started as scripts/lib.sh does for every script. Prints the versions, then one line per server.
#
#   npm run test:compat
#   COMPAT_NATS_VERSIONS="minimum" npm run test:compat     # one of them only
#   npm run test:compat -- -t 'SIGTERM'                    # extra arguments go to jest
#
# Ports: TEST_NATS_PORT / TEST_REDIS_PORT, as for npm test (the servers are started afresh for each run).
set -euo pipefail
cd "$(dirname "$0")/.."

# shellcheck source=scripts/lib.sh
source scripts/lib.sh
use_project_node compat
ensure_node_modules compat

summary=()
status=0
for choice in ${COMPAT_NATS_VERSIONS:-minimum current}; do
  # The server this run uses, resolved the way scripts/test.sh will resolve it.
  bin="$(unset NATS_SERVER_BIN META_AGENT_SERVERS_SHOWN; NATS_SERVER_VERSION="$choice" use_servers compat >/dev/null 2>&1 && echo "$NATS_SERVER_BIN")" || {
    echo "[compat] no nats-server for NATS_SERVER_VERSION=$choice" >&2
    summary+=("nats-server ($choice): NOT RUN")
    status=1
    continue
  }
  version="$(nats_server_version "$bin")"
  echo
  echo "[compat] e2e suite on nats-server $version ($choice)"
  set +e
  (
    unset META_AGENT_SERVERS_SHOWN NATS_SERVER_BIN
    export NATS_SERVER_VERSION="$choice" TEST_FAULTS=0 TEST_TOOLS=0
    bash scripts/test.sh --selectProjects e2e "$@"
  )
  rc=$?
  set -e
  summary+=("nats-server $version ($choice): $([ "$rc" -eq 0 ] && echo passed || echo FAILED)")
  [ "$rc" -eq 0 ] || status=1
done

echo
echo "[compat] node $(node -v), redis-server $(redis_server_version "$(find_bin redis-server)")"
for line in "${summary[@]}"; do echo "[compat] $line"; done
exit "$status"
