#!/usr/bin/env bash
# The benchmark (issue 5), with its own set-up: installs dependencies when needed, starts a private
# nats-server (JetStream) and redis-server on loopback (ports 27222 / 27379, data in a temporary folder),
# builds the service, runs bench/run.mjs, and stops the servers again, whatever happens.
#
#   npm run bench                   # the full run (a few minutes); writes bench/results/latest.json + latency.svg
#   npm run bench -- --quick        # small sizes, about a minute: for development
#   npm run bench -- --only=throughput,latency   # some phases only (see bench/README.md)
#   npm run bench -- --profile      # also a CPU profile of the service under the throughput backlog
#   NATS_SERVER_VERSION=minimum npm run bench -- --only=scaling   # on the minimum nats-server (2.10.27); the
#                                   # default is the current one (2.15.x); NATS_SERVER_BIN=<path>: any other
#
# Node and servers: scripts/lib.sh (the project's Node 22; nats-server from Debian's packages in .cache/servers).
#
# Ports: BENCH_NATS_PORT (27222), BENCH_REDIS_PORT (27379); the services it starts listen on
# BENCH_HTTP_PORT_BASE (28000) and up to 899 above it.
set -euo pipefail
cd "$(dirname "$0")/.."

# shellcheck source=scripts/lib.sh
source scripts/lib.sh
use_project_node bench
ensure_node_modules bench
use_servers bench

fresh_bench_servers bench "${BENCH_NATS_PORT:-27222}" "${BENCH_REDIS_PORT:-27379}"

echo "[bench] building"
npm run build --silent

node bench/run.mjs "$@"
