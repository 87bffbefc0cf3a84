#!/usr/bin/env bash
# npm run start:dev: the service in watch mode, under the project's Node: `nest start --watch` (nest-cli.json)
# compiles src/ into dist/ with tsc in watch mode, copies the assets (the Lua scripts, the workflows file's JSON
# Schema) and copies them again when they change, and restarts dist/main.js (with source maps) after each change.
# It connects to META_AGENT_NATS_URL / META_AGENT_REDIS_URL (defaults localhost:4222 / :6379; `npm run
# servers:start` runs a pair there).
set -euo pipefail
cd "$(dirname "$0")/.."

# shellcheck source=scripts/lib.sh
source scripts/lib.sh
use_project_node dev
ensure_node_modules dev

exec node node_modules/@nestjs/cli/bin/nest.js start --watch --preserveWatchOutput "$@"
