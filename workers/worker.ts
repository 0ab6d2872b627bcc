/** Builds a Keel worker from its dependencies; used by workers/main.ts, the tests and the benchmark. */
import { Client, Connection, ScheduleAlreadyRunning, ScheduleOverlapPolicy } from '@temporalio/client';
import type { DataConverter, Duration } from '@temporalio/common';
import { hostname } from 'node:os';
import { NativeConnection, Worker, type WorkerOptions } from '@temporalio/worker';
import { createActivities, type ActivityDeps, type KeelActivities } from '../activities';
import { createModelGateway, modelsConfigured } from '../models/gateway';
import { createEmailConnector, type EmailConnector } from '../connectors/email';
import { createSlackConnector } from '../connectors/slack';
import { createWebhookConnector } from '../connectors/webhook';
import { memoryFromConfig } from '../memory';
import type { MemoryService } from '../memory/service';
import type { Config } from '../config/index';
import { parseFaults } from '../lib/faults';
import { plainActivityErrors } from './errors';
import { heartbeatWhileRunning } from './heartbeat';
import { keelBundlerOptions, WORKFLOWS_PATH } from './bundle';
import { createPrisma, type Db } from '../db/prisma';
import { COMPACTION_SCHEDULE_ID, type CompactionInput } from '../workflows/compaction';
import { codecDataConverter } from '../codec';

export interface KeelWorkerDeps {
  connection: NativeConnection;
  namespace: string;
  taskQueue: string;
  prisma: Db;
  email: EmailConnector;
  memory: MemoryService;
  /** slack.post's connector (createSlackConnector). */
  slack?: ActivityDeps['slack'];
  /** webhook.call's connector (createWebhookConnector). */
  webhook?: ActivityDeps['webhook'];
  /** Connector rate limits (KEEL_POLICY `rateLimits`). */
  rateLimits?: ActivityDeps['rateLimits'];
  /** KEEL_TRUST_SUGGEST_AFTER. */
  trustSuggestAfter?: number;
  /** A prebuilt workflow bundle (bundleKeelWorkflows: tests and the benchmark build it once); otherwise workflows/ is bundled at start. */
  workflowBundlePath?: string;
  /** KEEL_OPERATOR_NAME. */
  operatorName: string;
  /** KEEL_WORKING_SET_TOKENS. */
  workingSetTokens: number;
  /** The model gateway (createModelGateway), when a model endpoint is configured. */
  models?: ActivityDeps['models'];
  planner?: ActivityDeps['planner'];
  /** The model output cache's options, or false to run without it (on by default). */
  modelCache?: ActivityDeps['modelCache'];
  /**
   * The payload codec's data converter (codecDataConverter, KEEL_CODEC_KEY); unset: the SDK's default. A
   * prebuilt `workflowBundlePath` must have been bundled with its `failureConverterPath` for failures raised in
   * workflow code to be encrypted too; bundling at start does that.
   */
  dataConverter?: DataConverter;
  /**
   * False for a worker that runs activities only (the model task queue's): it polls no workflow tasks. Default
   * true: goal workflows and every activity.
   */
  workflows?: boolean;
  /** The worker's Temporal identity; default the SDK's (`pid@host`). Recorded on every step.started event. */
  identity?: string;
  options?: Partial<WorkerOptions>;
  /** KEEL_FAULTS for the bookkeeping activities (tests). */
  faults?: ActivityDeps['faults'];
}

export async function createKeelWorker(deps: KeelWorkerDeps): Promise<Worker> {
  return Worker.create(keelWorkerOptions(deps));
}

/** The options of a Keel worker: its workflows, and its activities built once from `deps`. */
export function keelWorkerOptions(deps: KeelWorkerDeps): WorkerOptions {
  return {
    connection: deps.connection,
    namespace: deps.namespace,
    taskQueue: deps.taskQueue,
    ...(deps.workflows === false
      ? {}
      : deps.workflowBundlePath
        ? { workflowBundle: { codePath: deps.workflowBundlePath } }
        : { workflowsPath: WORKFLOWS_PATH, bundlerOptions: keelBundlerOptions() }),
    ...(deps.dataConverter ? { dataConverter: deps.dataConverter } : {}),
    ...(deps.identity ? { identity: deps.identity } : {}),
    activities: createActivities({
      prisma: deps.prisma,
      email: deps.email,
      memory: deps.memory,
      slack: deps.slack,
      webhook: deps.webhook,
      rateLimits: deps.rateLimits,
      trustSuggestAfter: deps.trustSuggestAfter,
      operatorName: deps.operatorName,
      workingSetTokens: deps.workingSetTokens,
      models: deps.models,
      planner: deps.planner,
      modelCache: deps.modelCache,
      faults: deps.faults,
      workerIdentity: deps.identity,
    }),
    ...deps.options,
    interceptors: {
      ...deps.options?.interceptors,
      // Outermost, so it sees what every other interceptor lets through.
      activity: [plainActivityErrors, heartbeatWhileRunning, ...(deps.options?.interceptors?.activity ?? [])],
    },
  };
}

/** `6h`, `30m`, `45s` or milliseconds, as the schedule's interval. */
function parseInterval(value: string): Duration {
  if (/^\d+$/.test(value)) return Number(value);
  if (/^\d+(ms|s|m|h|d)$/.test(value)) return value as Duration;
  throw new Error(`KEEL_COMPACTION_INTERVAL must look like 6h, 30m or 45s, got "${value}"`);
}

/**
 * Creates the memory-compaction schedule unless it exists. The schedule, not
 * this process, owns the timing: any number of workers may call this.
 */
export async function ensureCompactionSchedule(
  client: Client,
  opts: { taskQueue: string; interval: string; args: CompactionInput },
): Promise<'created' | 'exists'> {
  try {
    await client.schedule.create({
      scheduleId: COMPACTION_SCHEDULE_ID,
      spec: { intervals: [{ every: parseInterval(opts.interval) }] },
      action: {
        type: 'startWorkflow',
        workflowType: 'compactMemoryWorkflow',
        taskQueue: opts.taskQueue,
        args: [opts.args],
      },
      policies: { overlap: ScheduleOverlapPolicy.SKIP, catchupWindow: '1 hour' },
      memo: { title: 'Keel memory compaction' },
    });
    return 'created';
  } catch (err) {
    if (err instanceof ScheduleAlreadyRunning) return 'exists';
    throw err;
  }
}

/** One worker of a process: what it polls, and the line `npm run worker` prints for it. */
export interface RunnableWorker {
  worker: Worker;
  /** `goals` polls KEEL_TASK_QUEUE (workflows and every activity); `model` polls KEEL_MODEL_TASK_QUEUE. */
  role: 'goals' | 'model';
  taskQueue: string;
  /** The task queue's rate limit this worker asks the server for (model workers with KEEL_MODEL_RATE_PER_SECOND). */
  ratePerSecond?: number;
}

/**
 * The workers KEEL_WORKER_ROLE asks for: `all` (the default) runs the goal worker and, when
 * KEEL_MODEL_TASK_QUEUE is set, a model-call worker beside it; `goals` only the first, `model` only the second.
 */
export function workerRoles(config: Pick<Config, 'KEEL_WORKER_ROLE' | 'KEEL_MODEL_TASK_QUEUE'>): ('goals' | 'model')[] {
  if (config.KEEL_WORKER_ROLE === 'model' && !config.KEEL_MODEL_TASK_QUEUE) {
    throw new Error('KEEL_WORKER_ROLE=model needs KEEL_MODEL_TASK_QUEUE: the task queue of the model calls to run');
  }
  const roles: ('goals' | 'model')[] = [];
  if (config.KEEL_WORKER_ROLE !== 'model') roles.push('goals');
  if (config.KEEL_WORKER_ROLE !== 'goals' && config.KEEL_MODEL_TASK_QUEUE) roles.push('model');
  return roles;
}

/** Everything a worker process owns, built from configuration: its workers (KEEL_WORKER_ROLE) and their resources. */
export async function createWorkerFromConfig(config: Config) {
  const roles = workerRoles(config);
  // One set of options (config/temporal.ts: profile file and TEMPORAL_* variables) for both connections.
  const connection = await NativeConnection.connect(config.temporal.connectionOptions);
  // One converter for the worker and its client: what one encrypts the other must read.
  const dataConverter = codecDataConverter(config.KEEL_CODEC_KEY);
  const prisma = createPrisma(config.DATABASE_URL);
  const email = createEmailConnector({
    smtpUrl: config.SMTP_URL,
    from: config.KEEL_SMTP_FROM,
    outboxDir: config.KEEL_OUTBOX_DIR,
    prisma,
    faults: parseFaults(config.KEEL_FAULTS),
  });
  const memory = memoryFromConfig(config, prisma);
  // Built even without their secrets: the tools then fail naming the missing setting.
  const slack = createSlackConnector({
    token: config.SLACK_BOT_TOKEN,
    apiUrl: config.SLACK_API_URL,
    defaultChannel: config.SLACK_CHANNEL,
    timeoutMs: config.SLACK_TIMEOUT_MS,
    prisma,
    faults: parseFaults(config.KEEL_FAULTS),
  });
  const webhook = createWebhookConnector({
    secret: config.KEEL_WEBHOOK_SECRET,
    timeoutMs: config.KEEL_WEBHOOK_TIMEOUT_MS,
    prisma,
    faults: parseFaults(config.KEEL_FAULTS),
  });
  // The SDK's default identity, named here so the activities can record it on step.started events.
  const identity = `${process.pid}@${hostname()}`;
  const shared = {
    connection,
    namespace: config.temporal.namespace,
    prisma,
    email,
    memory,
    slack,
    webhook,
    workflowBundlePath: config.KEEL_WORKFLOW_BUNDLE,
    operatorName: config.KEEL_OPERATOR_NAME,
    workingSetTokens: config.KEEL_WORKING_SET_TOKENS,
    // Without a model endpoint the engine plans and drafts offline, and says so in everything it produces.
    models: modelsConfigured(config) ? createModelGateway(config) : undefined,
    modelCache: config.KEEL_MODEL_CACHE === 'off' ? (false as const) : { freshForMs: config.KEEL_MODEL_CACHE_FRESH },
    rateLimits: config.KEEL_POLICY.rateLimits,
    trustSuggestAfter: config.KEEL_TRUST_SUGGEST_AFTER,
    dataConverter,
    identity,
    faults: parseFaults(config.KEEL_FAULTS),
  };
  // Bounded stop: activities get the grace period to finish, then are cancelled (Temporal retries them
  // on another worker; every side effect's key makes the retry safe), then the worker gives up on them.
  const shutdown = {
    shutdownGraceTime: config.KEEL_WORKER_SHUTDOWN_GRACE_MS,
    shutdownForceTime: config.KEEL_WORKER_SHUTDOWN_GRACE_MS + config.KEEL_WORKER_SHUTDOWN_FORCE_MS,
  };
  const workers: RunnableWorker[] = [];
  // The goal worker's options are kept: a benchmark runs its baseline on the same connection and activities.
  const goalOptions = roles.includes('goals')
    ? keelWorkerOptions({ ...shared, taskQueue: config.KEEL_TASK_QUEUE, options: shutdown })
    : undefined;
  if (goalOptions) {
    workers.push({ role: 'goals', taskQueue: config.KEEL_TASK_QUEUE, worker: await Worker.create(goalOptions) });
  }
  if (roles.includes('model') && config.KEEL_MODEL_TASK_QUEUE) {
    const rate = config.KEEL_MODEL_RATE_PER_SECOND;
    workers.push({
      role: 'model',
      taskQueue: config.KEEL_MODEL_TASK_QUEUE,
      ratePerSecond: rate,
      worker: await createKeelWorker({
        ...shared,
        taskQueue: config.KEEL_MODEL_TASK_QUEUE,
        workflows: false,
        // The server hands out at most this many of the queue's activities per second, however many workers
        // poll it: a provider's rate limit holds across all of them. Every poller of the queue must ask for
        // the same figure (the last poll's wins), so it comes from the one shared setting.
        options: { ...shutdown, ...(rate !== undefined ? { maxTaskQueueActivitiesPerSecond: rate } : {}) },
      }),
    });
  }
  const clientConnection = await Connection.connect(config.temporal.connectionOptions);
  // The goal worker owns the compaction schedule (its workflow runs on KEEL_TASK_QUEUE); a model-only worker does not.
  const schedule = roles.includes('goals')
    ? await ensureCompactionSchedule(
        new Client({ connection: clientConnection, namespace: config.temporal.namespace, dataConverter }),
        {
          taskQueue: config.KEEL_TASK_QUEUE,
          interval: config.KEEL_COMPACTION_INTERVAL,
          args: { olderThanDays: config.KEEL_COMPACTION_AGE_DAYS, minItems: config.KEEL_COMPACTION_MIN_ITEMS },
        },
      )
    : undefined;
  const close = async () => {
    await memory.store.close();
    await email.close();
    await prisma.$disconnect();
    await clientConnection.close();
    await connection.close();
  };
  return {
    workers,
    identity,
    close,
    schedule,
    connection,
    /** The goal worker (undefined for KEEL_WORKER_ROLE=model). */
    worker: workers.find((w) => w.role === 'goals')?.worker,
    activities: goalOptions?.activities as KeelActivities | undefined,
  };
}
