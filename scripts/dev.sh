#!/usr/bin/env bash
# npm run start:dev: the service in watch mode, under the project's Node. Builds once, then `tsc --watch`
# recompiles src/ into dist/ on every change and `node --watch` restarts dist/main.js when a module it loaded
# changes. (Lua scripts under src/redis/lua are copied at the first build only: restart for a Lua change.)
# It connects to META_AGENT_NATS_URL / META_AGENT_REDIS_URL (defaults localhost:4222 / :6379; `npm run
# servers:start` runs a pair there).
set -euo pipefail
cd "$(dirname "$0")/.."

# shellcheck source=scripts/lib.sh
source scripts/lib.sh
use_project_node dev
ensure_node_modules dev

npm run build --silent
node node_modules/typescript/bin/tsc -p tsconfig.build.json --watch --preserveWatchOutput &
tsc_pid=$!
trap 'kill "$tsc_pid" 2>/dev/null || true' EXIT
node --watch --enable-source-maps dist/main.js
