# syntax=docker/dockerfile:1
# The meta-agent orchestrator. Build: docker build -t meta-agent-orchestrator .
# Run: docker compose up (see docker-compose.yml), or with META_AGENT_NATS_URL / META_AGENT_REDIS_URL set.

# ---- build: compile TypeScript to dist/ (with the Lua scripts copied next to it) ----
FROM node:22-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json nest-cli.json ./
COPY scripts/copy-assets.mjs ./scripts/
COPY src ./src
RUN npm run build

# ---- runtime: production dependencies and the compiled service only ----
FROM node:22-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force
COPY --from=build /app/dist ./dist
# The agent simulator runs from this image too (docker compose --profile simulator up), and so does the
# dead-letter replay (docs/OPERATIONS.md#replaying-dead-letters).
COPY scripts/agent-simulator.mjs scripts/simulator-messages.mjs scripts/replay-dead-letters.mjs ./scripts/
USER node
EXPOSE 9090
# Liveness only: readiness (/health/ready) also depends on NATS and Redis, which is not the container's fault.
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.META_AGENT_METRICS_PORT || 9090) + '/health/live', { signal: AbortSignal.timeout(4000) }).then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
# Exec form: node is PID 1 and receives SIGTERM itself, so it drains before exiting.
CMD ["node", "dist/main.js"]
