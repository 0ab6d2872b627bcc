# Keel's worker, API and migrations in one image; docker-compose.yml picks the process with `command`.
FROM node:20-slim

WORKDIR /app
ENV NODE_ENV=production \
    CHECKPOINT_DISABLE=1

# Dependencies first, so source edits reuse this layer. No install scripts: nothing Keel uses needs them,
# and Prisma's would download engines that `prisma generate` does not use.
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts && npm cache clean --force

COPY . .
# setup.js generates the Prisma client (with a placeholder schema engine) and leaves the stamps that make
# the `npm run ...` checks at run time find nothing to do in this read-only tree.
RUN node scripts/setup.js --for run \
 && mkdir -p .keel/outbox \
 && chown -R node:node .keel

USER node
EXPOSE 3000
CMD ["node", "-r", "ts-node/register/transpile-only", "api/main.ts"]
