#!/usr/bin/env bash
# Topologies (issue 17): bench/topologies.mjs with its set-up, as scripts/bench.sh does for the bench: the
# project's Node and servers (scripts/lib.sh: NATS_SERVER_VERSION, REDIS_FLAVOR), a private standalone
# nats-server + redis-server (ports 52222 / 52379), the build; the clusters are started by the driver
# (53000-53029 NATS, 53100-53199 Redis), the services listen on 52500-52899. Everything it starts is stopped
# at the end, also on Ctrl-C.
#
#   npm run bench:topologies                              # standalone, cluster WAIT=0, cluster WAIT=1; 2 rounds
#   npm run bench:topologies -- --only=cluster-wait1 --replicas3
#   npm run bench:topologies -- --only=cluster-wait1,valkey-cluster-wait1   # beside a Valkey 8.0 Cluster (fetched
#                                                        # like scripts/lib.sh's REDIS_FLAVOR=valkey, into .cache/servers)
set -euo pipefail
cd "$(dirname "$0")/.."

# shellcheck source=scripts/lib.sh
source scripts/lib.sh
use_project_node bench-topologies
ensure_node_modules bench-topologies
use_servers bench-topologies

fresh_bench_servers topologies "${TOPO_NATS_PORT:-52222}" "${TOPO_REDIS_PORT:-52379}"
case "$*" in
  *valkey*) TOPO_VALKEY_BIN="$(fetch_valkey bench-topologies)"; export TOPO_VALKEY_BIN ;;
esac
export BENCH_HTTP_PORT_BASE="${TOPO_HTTP_PORT_BASE:-52500}"

echo "[bench-topologies] building"
npm run build --silent

node --import ./test/faults/register.mjs bench/topologies.mjs "$@"
