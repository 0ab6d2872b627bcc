/** `npm run api`: the Express API against what the environment names. */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Client } from '@temporalio/client';
import { temporalConnection } from '../commands/temporal';
import { loadConfig, type Config } from '../config/index';
import { createPrisma } from '../db/prisma';
import { openDatabase } from '../db/resolve';
import { memoryFromConfig } from '../memory';
import { goalModels } from '../commands/goals';
import { createModelGateway, modelsConfigured } from '../models/gateway';
import { slackFromConfig } from '../slack';
import { createApp } from './app';

/** Without KEEL_API_KEY, a key is made once and kept in .keel/api-key so restarts keep it. */
function apiKey(config: Config): { key: string; from: string } {
  if (config.KEEL_API_KEY) return { key: config.KEEL_API_KEY, from: 'KEEL_API_KEY' };
  const file = path.resolve('.keel', 'api-key');
  if (existsSync(file)) return { key: readFileSync(file, 'utf8').trim(), from: file };
  mkdirSync(path.dirname(file), { recursive: true });
  const key = randomBytes(24).toString('base64url');
  writeFileSync(file, `${key}\n`, { mode: 0o600 });
  return { key, from: `${file} (generated)` };
}

async function run() {
  const config = loadConfig();
  // The database by db/resolve.ts's rules; an embedded one must already be served (npm start does).
  const database = await openDatabase(process.env, { serve: false });
  // Lazy: the API starts and answers (healthz and the routes say 503, naming Temporal) while Temporal is down.
  const connection = temporalConnection({ address: config.TEMPORAL_ADDRESS });
  const client = new Client({ connection, namespace: config.TEMPORAL_NAMESPACE });
  const prisma = createPrisma(database.url);
  const key = apiKey(config);
  const memory = memoryFromConfig(config, prisma);
  const slack = slackFromConfig(config, prisma);
  const app = createApp({
    ...(slack.on ? { slack: slack.interactions } : {}),
    client,
    prisma,
    memory,
    apiKey: key.key,
    taskQueue: config.KEEL_TASK_QUEUE,
    bodyLimit: config.KEEL_BODY_LIMIT,
    temporalTimeoutMs: config.KEEL_TEMPORAL_TIMEOUT_MS,
    defaultBudgetUsd: config.KEEL_DEFAULT_BUDGET_USD,
    actor: 'operator:api',
    // Inbound events are classified by the small tier when a model is configured, by keyword rules otherwise.
    ...(modelsConfigured(config) ? { models: createModelGateway(config) } : {}),
    goalSettings: {
      approvalTimeoutMs: config.KEEL_APPROVAL_TIMEOUT_MS,
      escalationTimeoutMs: config.KEEL_ESCALATION_TIMEOUT_MS,
      connectorHeartbeatMs: config.KEEL_CONNECTOR_HEARTBEAT_MS,
      maxReplans: config.KEEL_MAX_REPLANS,
      ...(modelsConfigured(config) ? { models: goalModels(config) } : {}),
      // Pinned in every goal when it starts: a policy change applies to new goals only.
      policy: config.KEEL_POLICY,
    },
  });
  const server = app.listen(config.PORT, () => {
    const address = server.address();
    const port = typeof address === 'object' && address ? address.port : config.PORT;
    console.log(`[api] listening on http://127.0.0.1:${port} (API key from ${key.from})`);
    console.log(`[api] database: ${database.description}`);
    console.log(
      slack.on
        ? `[api] Slack approvals on: posting to ${config.SLACK_CHANNEL}, ${slack.approvers.length} approver(s), interactivity at POST /slack/interactions`
        : `[api] Slack approvals off (${slack.missing.join(', ')} not set)`,
    );
  });
  if (slack.on) slack.notifier.start();
  const stop = () => {
    server.close(() => {
      // The notifier's pass in flight finishes before the database it writes to is closed.
      void (slack.on ? slack.notifier.stop() : Promise.resolve())
        .then(() => Promise.all([memory.store.close(), prisma.$disconnect(), connection.close()]))
        .finally(() => process.exit(0));
    });
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

run().catch((err) => {
  console.error(err);
  process.exit(1);
});
