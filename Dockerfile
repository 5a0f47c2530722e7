# syntax=docker/dockerfile:1
# logpush-receiver: a Cloudflare Logpush HTTP destination.
#   docker build -t logpush-receiver .
#   docker run -p 8080:8080 -v logpush-data:/var/lib/logpush-receiver logpush-receiver
# Every setting is an environment variable (see docs/configuration.md). The status page and
# /metrics are on the admin listener, 127.0.0.1:8081 inside the container: to reach them from
# outside, add -e ADMIN_HOST=0.0.0.0 -p 127.0.0.1:8081:8081 (never publish it to everyone).

# ---- build: compile the TypeScript sources into dist/ ----------------------------------------
FROM node:24-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
# --ignore-scripts: the "prepare" build needs src/, copied below (and the runtime has no TypeScript).
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json ./
COPY src ./src
RUN npm run build

# ---- runtime: production dependencies, compiled service, dataset schemas ---------------------
FROM node:24-bookworm-slim AS runtime
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force
COPY --from=build /app/dist/src ./dist/src
COPY schemas ./schemas

ENV DATA_DIR=/var/lib/logpush-receiver PORT=8080 HOST=0.0.0.0

# Created and owned by node before VOLUME, so a fresh named volume starts out writable by node.
RUN mkdir -p /var/lib/logpush-receiver && chown node:node /var/lib/logpush-receiver
USER node
VOLUME ["/var/lib/logpush-receiver"]

EXPOSE 8080

# Liveness, not readiness: Swarm and ECS replace a task whose health check fails, and a replica
# that refuses batches because its destination is down (spool above its watermark) is not helped
# by a restart. Balancers probe GET /health (readiness) themselves. Slim images have no curl.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD node -e "fetch('http://127.0.0.1:'+(process.env.PORT||8080)+'/health/live').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"

# SIGTERM: stop accepting, finish in-flight requests (SHUTDOWN_GRACE_MS), flush, exit 0.
STOPSIGNAL SIGTERM
# The main thread only moves bytes (parse workers parse): a small young generation keeps RSS low.
CMD ["node", "--max-semi-space-size=2", "dist/src/main.js"]
