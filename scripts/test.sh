#!/usr/bin/env bash
# The whole test suite, with its own set-up: runs under the project's Node (22; scripts/lib.sh installs it
# into .cache/toolchain when needed), installs dependencies when needed, fetches the current nats-server
# (Debian unstable's package, unpacked into .cache/servers) and starts it (JetStream) with a redis-server on
# loopback, installs promtool/prometheus when missing, builds the service, runs unit, integration,
# end-to-end and deploy tests (jest), and stops the servers again, whatever happens. Prints the Node and
# server versions it uses. Fetches Chromium too (Debian 12's package, unpacked into .cache/browsers) for the
# console's browser test.
#
#   npm test                      # everything
#   npm test -- --selectProjects unit          # extra arguments go to jest
#   NATS_SERVER_VERSION=minimum npm test       # on the minimum nats-server (2.10); see scripts/lib.sh
#   REDIS_FLAVOR=valkey npm test               # on Valkey 8.0 (Debian bookworm-backports) instead of Redis 7.0
#   TEST_FAULTS=0 / TEST_TOOLS=0               # skip the fault suite / the install of the deploy tests' tools
set -euo pipefail
cd "$(dirname "$0")/.."

# shellcheck source=scripts/lib.sh
source scripts/lib.sh
use_project_node test
ensure_node_modules test
use_servers test
# Chromium for the console's browser test (Debian 12's package, fetched into .cache/browsers like the servers).
ensure_chromium test

export NATS_PORT="${TEST_NATS_PORT:-14222}"
export REDIS_PORT="${TEST_REDIS_PORT:-16379}"
export SERVERS_DIR="${TMPDIR:-/tmp}/meta-agent-test-servers-${NATS_PORT}"
trap 'bash scripts/servers.sh stop >/dev/null 2>&1 || true' EXIT
bash scripts/servers.sh start
# promtool, prometheus and docker-compose for the deploy tests (Debian packages, installed when missing).
# TEST_TOOLS=0 skips that (npm run test:e2e, test:compat: the e2e tests need none of them).
if [ "${TEST_TOOLS:-1}" != 0 ]; then bash scripts/ensure-tools.sh; fi

export TEST_NATS_URL="nats://127.0.0.1:${NATS_PORT}"
export TEST_REDIS_URL="redis://127.0.0.1:${REDIS_PORT}"

echo "[test] building"
npm run build --silent

results="$(mktemp)"
set +e
node --experimental-vm-modules node_modules/jest/bin/jest.js --runInBand --json --outputFile="$results" "$@"
status=$?
set -e
# One plain closing line, whatever the runner printed above it.
node -e '
  const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
  console.log(`tests: ${r.numPassedTests} passed, ${r.numFailedTests} failed, ${r.numPendingTests} skipped`);
' "$results" 2>/dev/null || true
rm -f "$results"

# The fault-injection suite, short form (own servers and replicas on 30222/30379/31000+; docs/RELIABILITY.md).
# TEST_FAULTS=0 skips it (e.g. when running a few jest tests by hand).
if [ "${TEST_FAULTS:-1}" != 0 ]; then
  echo "[test] fault-injection suite, short form"
  set +e
  bash scripts/faults.sh --short --no-build
  faults=$?
  set -e
  echo "faults (short form): $([ "$faults" -eq 0 ] && echo passed || echo FAILED)"
  [ "$status" -eq 0 ] && status="$faults"
fi
exit "$status"
