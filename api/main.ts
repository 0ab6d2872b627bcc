/** `npm run api`: the Express API against what the environment names. */
import { Client } from '@temporalio/client';
import { temporalConnection } from '../commands/temporal';
import { loadConfig } from '../config/index';
import { createPrisma } from '../db/prisma';
import { openDatabase } from '../db/resolve';
import { memoryFromConfig } from '../memory';
import { goalModels } from '../commands/goals';
import { createModelGateway, modelsConfigured } from '../models/gateway';
import { slackFromConfig } from '../slack';
import { createApp } from './app';
import { apiKeyFromConfig } from './key';
import { AesGcmPayloadCodec, codecDataConverter, codecStatus } from '../codec';

async function run() {
  const config = loadConfig();
  // The database by db/resolve.ts's rules; an embedded one must already be served (npm start does).
  const database = await openDatabase(process.env, { serve: false });
  // Lazy: the API starts and answers (healthz and the routes say 503, naming Temporal) while Temporal is down.
  // Address, namespace, TLS and API key: the profile file and TEMPORAL_* variables (config/temporal.ts).
  const connection = temporalConnection(config.temporal.connectionOptions);
  // With KEEL_CODEC_KEY, what the API sends Temporal (goal input, memo, summaries, updates) is encrypted.
  const dataConverter = codecDataConverter(config.KEEL_CODEC_KEY);
  const client = new Client({ connection, namespace: config.temporal.namespace, dataConverter });
  const prisma = createPrisma(database.url);
  const key = apiKeyFromConfig(config);
  const memory = memoryFromConfig(config, prisma);
  const slack = slackFromConfig(config, prisma);
  const app = createApp({
    ...(slack.on ? { slack: slack.interactions } : {}),
    ...(config.KEEL_CODEC_KEY
      ? { codec: { codec: new AesGcmPayloadCodec(config.KEEL_CODEC_KEY), uiOrigins: config.KEEL_CODEC_UI_ORIGINS } }
      : {}),
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
      // Pinned too: a goal's model calls keep going to the queue it started with.
      ...(config.KEEL_MODEL_TASK_QUEUE ? { modelTaskQueue: config.KEEL_MODEL_TASK_QUEUE } : {}),
    },
  });
  const server = app.listen(config.PORT, () => {
    const address = server.address();
    const port = typeof address === 'object' && address ? address.port : config.PORT;
    console.log(`[api] listening on http://127.0.0.1:${port} (API key from ${key.from})`);
    console.log(`[api] Temporal: ${config.temporal.description}`);
    console.log(`[api] database: ${database.description}`);
    console.log(
      slack.on
        ? `[api] Slack approvals on: posting to ${config.SLACK_CHANNEL}, ${slack.approvers.length} approver(s), interactivity at POST /slack/interactions`
        : `[api] Slack approvals off (${slack.missing.join(', ')} not set)`,
    );
    console.log(
      codecStatus(config.KEEL_CODEC_KEY, 'api') +
        (config.KEEL_CODEC_KEY
          ? `; codec endpoint POST /codec/decode for ${config.KEEL_CODEC_UI_ORIGINS.join(', ')}`
          : ''),
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
