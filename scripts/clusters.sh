#!/usr/bin/env bash
# A NATS cluster (3 nats-servers, JetStream, routes on loopback) and a Redis Cluster (3 primaries, 1 replica
# each) by hand, with the servers every script uses (scripts/lib.sh: NATS_SERVER_VERSION, REDIS_FLAVOR);
# the same code the tests use (test/support/clusters.ts). Prints the URL list and the node list to give the
# service, and stops everything (folders removed unless KEEP=1) on Ctrl-C.
#
#   bash scripts/clusters.sh              # both
#   bash scripts/clusters.sh redis        # or: nats
#   REDIS_FLAVOR=valkey bash scripts/clusters.sh redis
#
# Ports: NATS_CLUSTER_BASE_PORT (41000: clients 41000-41002, routes 41010-, monitors 41020-),
# REDIS_CLUSTER_BASE_PORT (42000: clients 42000-42005, cluster bus 42050-); REDIS_CLUSTER_NODE_TIMEOUT_MS (2000).
set -euo pipefail
cd "$(dirname "$0")/.."

# shellcheck source=scripts/lib.sh
source scripts/lib.sh
use_project_node clusters
ensure_node_modules clusters
use_servers clusters
exec node --import ./test/faults/register.mjs test/support/clusters-main.ts "$@"
