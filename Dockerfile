# Appeal: one image for every process (web, worker, cli); pick one with the command.
#   docker build -t appeal .
#   docker run -e DATABASE_URL=… -e REDIS_URL=… -e SESSION_SECRET=… -p 3000:3000 appeal node --enable-source-maps dist/main.js web
# docker-compose.yml wires it to Postgres, Redis and a mail catcher.
FROM node:24-slim

ENV NODE_ENV=production \
    DATA_DIR=/data \
    PORT=3000
WORKDIR /app

# esbuild (the app's build, below) and tsx (the cli runs its TypeScript as it is) are runtime
# dependencies, so --omit=dev keeps them and drops only the test and type-checking tools.
COPY package.json package-lock.json ./
# --ignore-scripts: postinstall prepares a PGlite template from src/, which is not copied yet
# (and a container uses Postgres).
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force

COPY tsconfig.json ./
COPY src ./src
COPY workers ./workers
COPY templates ./templates
COPY public ./public
COPY scripts ./scripts
# The app built once, here, into dist/main.js (what `npm start` does at each start).
RUN node scripts/start.mjs --build

# DATA_DIR: the embedded database, the dev outbox and the generated secret when those are used.
# No VOLUME here: every container (migrate, each worker) would get an anonymous volume of its own
# that outlives it; mount one where it is wanted (docker-compose.yml's appdata).
RUN mkdir -p /data && chown node:node /data
USER node

EXPOSE 3000
# /healthz says the process is up; /readyz also checks Postgres and Redis. No curl in the slim image.
# A worker (PID 1 started with `worker`) has no HTTP server: nothing to ask, so it passes.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD ["node", "-e", "if (require('fs').readFileSync('/proc/1/cmdline', 'utf8').split('\\0').includes('worker')) process.exit(0); fetch('http://127.0.0.1:' + (process.env.PORT || 3000) + '/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]

# node itself is PID 1 (not npm, not a shell), so `docker stop`'s SIGTERM reaches Appeal's handler:
# it stops taking requests and jobs, lets in-flight sends finish, then closes its connections.
# With no argument this is `npm start`'s mode (web + workers in one process); add `web` or `worker`.
CMD ["node", "--enable-source-maps", "dist/main.js"]
