/**
 * The whole engine for a test file, with real parts: a Temporal dev server, a
 * scratch PostgreSQL database, an SMTP server, workers (in this process or as
 * child processes) and the API over real HTTP.
 *
 * The one place the engine is assembled: the tests, `npm run replay:record`
 * (test/replay/record.ts) and `npm run bench:engine` (bench/engine.ts) all
 * start it through {@link startEngine}; a test that needs a second API over
 * other dependencies (a dead database, an unreachable Temporal) serves it with
 * `engine.serveApi`, and tests of single activities build their dependencies
 * with {@link createTestMemory} and {@link createTestEmail}.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import type { Server } from 'node:http';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { Worker } from '@temporalio/worker';
import type { ActivityDeps } from '../../activities';
import { createApp } from '../../api/app';
import { AesGcmPayloadCodec, codecDataConverter, parseCodecKeys } from '../../codec';
import { defaultConfig } from '../../config';
import { createEmailConnector, type EmailConnector, type EmailConnectorOptions } from '../../connectors/email';
import type { GoalSettings } from '../../workflows/types';
import { createKeelWorker } from '../../workers/worker';
import { createEmbeddedStore, type EmbeddedStoreOptions } from '../../memory/embedded-store';
import { createHashingEmbedder } from '../../memory/embedders';
import { createMemoryService, type MemoryService } from '../../memory/service';
import type { Db } from '../../db/prisma';
import { createTestDatabase, type TestDatabase, type TestDatabaseOptions } from './db';
import { startSmtpServer, type TestSmtpServer } from './smtp';
import { startTemporal, workflowBundlePath, type StartTemporalOptions } from './temporal';

const ROOT = path.resolve(__dirname, '..', '..');

export interface RunningWorker {
  stop(): Promise<void>;
}

export interface ChildWorker {
  process: ChildProcess;
  output(): string;
  /** Resolves when the child printed a line containing `text`. */
  waitForOutput(text: string, timeoutMs?: number): Promise<void>;
  kill(signal: NodeJS.Signals): Promise<void>;
}

export interface TestEngine {
  db: TestDatabase;
  /** The API's memory service (workers build their own, as separate processes would). */
  memory: MemoryService;
  temporal: TestWorkflowEnvironment;
  smtp: TestSmtpServer;
  taskQueue: string;
  settings: GoalSettings;
  apiUrl: string;
  apiKey: string;
  /** Real HTTP to the API with the bearer key. */
  http(
    method: string,
    route: string,
    body?: unknown,
    headers?: Record<string, string>,
  ): Promise<{ status: number; body: any }>;
  startWorker(opts?: {
    planner?: ActivityDeps['planner'];
    models?: ActivityDeps['models'];
    slack?: ActivityDeps['slack'];
    webhook?: ActivityDeps['webhook'];
    /** Wraps the worker's memory service (a test that makes it fail). */
    memory?: (memory: MemoryService) => MemoryService;
  }): Promise<RunningWorker>;
  /** A worker process (workers/main.ts) on this engine; a variable given as `undefined` is removed from its environment. */
  spawnWorker(env?: Record<string, string | undefined>): Promise<ChildWorker>;
  /** Polls GET /v1/goals/:id until `predicate` holds. */
  waitForGoal(goalId: string, predicate: (goal: any) => boolean, timeoutMs?: number): Promise<any>;
  /**
   * Serves another API with this engine's configuration (key, task queue,
   * settings, memory) with some dependencies replaced, e.g. a database or a
   * Temporal client that is down, or a shorter Temporal deadline; closed by
   * close() if the caller did not.
   */
  serveApi(over?: Partial<AppDeps>): Promise<ServedApi>;
  close(): Promise<void>;
}

/** An API served on an ephemeral port of 127.0.0.1. */
export interface ServedApi {
  url: string;
  close(): Promise<void>;
}

/** How {@link startEngine} builds the engine; every default is what the tests use. */
export interface EngineOptions {
  settings?: Partial<GoalSettings>;
  /** The scratch database (server, name prefix, pool size). */
  database?: Omit<TestDatabaseOptions, 'migrate'>;
  temporal?: StartTemporalOptions;
  /** The workflow bundle workers run (default: the one the global setup built). */
  workflowBundlePath?: string;
  /** Who the API says acted (default `operator:test`). */
  actor?: string;
  /** Who signs drafts (default `Test Operator`). */
  operatorName?: string;
  /** Memory options for the API and every in-process worker. */
  memory?: TestMemoryOptions;
  /**
   * KEEL_CODEC_KEY's text: turns payload encryption on for the engine's Temporal client (so the API), its
   * in-process workers, its codec endpoint and (through the environment) its child workers.
   */
  codecKey?: string;
  /** KEEL_CODEC_UI_ORIGINS of the API's codec endpoint (default: the config's). */
  codecUiOrigins?: string[];
  /** The API key (default: random), for a test that must know it before the engine starts. */
  apiKey?: string;
}

/** The goal settings of a test engine: short enough to wait for, long enough not to fire by accident. */
export const TEST_GOAL_SETTINGS: GoalSettings = {
  approvalTimeoutMs: 60_000,
  escalationTimeoutMs: 60_000,
  connectorHeartbeatMs: 3_000,
  maxReplans: 2,
};

/** Where test emails go when no SMTP URL is given. */
const TEST_OUTBOX = path.join(ROOT, '.keel', 'test', 'outbox');

export interface TestMemoryOptions {
  /**
   * Options of the embedded store. Default `{ verifyIntervalMs: 0 }` (a drift
   * check after every read, so a test sees another process's deletes at
   * once); `{}` gives the store's production defaults, as the benchmark wants.
   */
  store?: Pick<EmbeddedStoreOptions, 'verifyIntervalMs' | 'pageSize'>;
}

/** The default memory stack: offline hashing embedder behind the cache, embedded exact index. */
export function createTestMemory(prisma: TestDatabase['prisma'], opts: TestMemoryOptions = {}): MemoryService {
  const embedder = createHashingEmbedder();
  return createMemoryService({
    prisma,
    embedder,
    store: createEmbeddedStore({ prisma, dims: embedder.dims, ...(opts.store ?? { verifyIntervalMs: 0 }) }),
  });
}

/** The email connector a test worker uses: the test sender, to `smtpUrl` (or the test outbox without one). */
export function createTestEmail(
  prisma: Db,
  smtpUrl: string | undefined,
  opts: Partial<Pick<EmailConnectorOptions, 'faults' | 'progressIntervalMs' | 'outboxDir'>> = {},
): EmailConnector {
  return createEmailConnector({ from: 'Keel <keel@test.local>', outboxDir: TEST_OUTBOX, ...opts, smtpUrl, prisma });
}

/** What the API is built from. */
type AppDeps = Parameters<typeof createApp>[0];

/** Serves an Express app on an ephemeral port of 127.0.0.1. */
export async function serveApp(app: ReturnType<typeof createApp>): Promise<ServedApi> {
  const server: Server = await new Promise((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
    // The test's own fetch reuses idle sockets; with Node's 5 s server keep-alive, a test process starved for
    // seconds (2 shared cores) could reuse a socket the server was closing at that moment (ECONNRESET).
    s.keepAliveTimeout = 65_000;
    s.headersTimeout = 66_000;
  });
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

export async function startEngine(opts: EngineOptions = {}): Promise<TestEngine> {
  const codecKeys = opts.codecKey ? parseCodecKeys(opts.codecKey) : undefined;
  const dataConverter = codecDataConverter(codecKeys);
  const [db, temporal, smtp] = await Promise.all([
    createTestDatabase(opts.database),
    startTemporal({ ...opts.temporal, ...(dataConverter ? { dataConverter } : {}) }),
    startSmtpServer(),
  ]);
  const taskQueue = `keel-test-${randomBytes(4).toString('hex')}`;
  const apiKey = opts.apiKey ?? randomBytes(16).toString('hex');
  const settings: GoalSettings = { ...TEST_GOAL_SETTINGS, ...opts.settings };
  const bundlePath = () => opts.workflowBundlePath ?? workflowBundlePath();
  const operatorName = opts.operatorName ?? 'Test Operator';
  const memory = createTestMemory(db.prisma, opts.memory);
  const apiFor = (over: Partial<AppDeps> = {}) =>
    createApp({
      client: temporal.client,
      prisma: db.prisma,
      memory,
      apiKey,
      taskQueue,
      goalSettings: settings,
      defaultBudgetUsd: defaultConfig().KEEL_DEFAULT_BUDGET_USD,
      actor: opts.actor ?? 'operator:test',
      ...(codecKeys
        ? {
            codec: {
              codec: new AesGcmPayloadCodec(codecKeys),
              uiOrigins: opts.codecUiOrigins ?? defaultConfig().KEEL_CODEC_UI_ORIGINS,
            },
          }
        : {}),
      ...over,
    });
  const api = await serveApp(apiFor());
  const apiUrl = api.url;
  const workers: RunningWorker[] = [];
  const children: ChildWorker[] = [];
  const extraApis: ServedApi[] = [];

  const engine: TestEngine = {
    db,
    memory,
    temporal,
    smtp,
    taskQueue,
    settings,
    apiUrl,
    apiKey,
    async http(method, route, body, headers = {}) {
      const res = await fetch(`${apiUrl}${route}`, {
        method,
        headers: {
          authorization: `Bearer ${apiKey}`,
          ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
          ...headers,
        },
        body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
      });
      const text = await res.text();
      return { status: res.status, body: text ? JSON.parse(text) : undefined };
    },
    async startWorker(workerOpts = {}) {
      const email = createTestEmail(db.prisma, smtp.url);
      const workerMemory = createTestMemory(db.prisma, opts.memory);
      const worker: Worker = await createKeelWorker({
        connection: temporal.nativeConnection,
        namespace: 'default',
        taskQueue,
        prisma: db.prisma,
        email,
        workflowBundlePath: bundlePath(),
        operatorName,
        workingSetTokens: defaultConfig().KEEL_WORKING_SET_TOKENS,
        planner: workerOpts.planner,
        models: workerOpts.models,
        slack: workerOpts.slack,
        webhook: workerOpts.webhook,
        memory: workerOpts.memory ? workerOpts.memory(workerMemory) : workerMemory,
        dataConverter,
      });
      const running = worker.run();
      const handle: RunningWorker = {
        async stop() {
          if (worker.getState() === 'RUNNING') worker.shutdown();
          await running;
          await email.close();
          await workerMemory.store.close();
        },
      };
      workers.push(handle);
      return handle;
    },
    async spawnWorker(env = {}) {
      const childEnv: Record<string, string | undefined> = {
        ...process.env,
        DATABASE_URL: db.url,
        TEMPORAL_ADDRESS: temporal.address,
        TEMPORAL_NAMESPACE: 'default',
        KEEL_TASK_QUEUE: taskQueue,
        SMTP_URL: smtp.url,
        KEEL_WORKFLOW_BUNDLE: bundlePath(),
        KEEL_OPERATOR_NAME: operatorName,
        ...(opts.codecKey ? { KEEL_CODEC_KEY: opts.codecKey } : {}),
        ...env,
      };
      for (const key of Object.keys(childEnv)) if (childEnv[key] === undefined) delete childEnv[key];
      const child = spawn(process.execPath, ['-r', 'ts-node/register', path.join(ROOT, 'workers', 'main.ts')], {
        cwd: ROOT,
        env: childEnv,
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let out = '';
      const waiters: { text: string; resolve: () => void }[] = [];
      const onData = (chunk: Buffer) => {
        out += chunk.toString();
        for (const w of [...waiters]) {
          if (out.includes(w.text)) {
            waiters.splice(waiters.indexOf(w), 1);
            w.resolve();
          }
        }
      };
      child.stdout!.on('data', onData);
      child.stderr!.on('data', onData);
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      const handle: ChildWorker = {
        process: child,
        output: () => out,
        waitForOutput(text, timeoutMs = 30_000) {
          if (out.includes(text)) return Promise.resolve();
          return new Promise((resolve, reject) => {
            const timer = setTimeout(
              () => reject(new Error(`worker did not print "${text}" in ${timeoutMs} ms; output:\n${out}`)),
              timeoutMs,
            );
            waiters.push({ text, resolve: () => (clearTimeout(timer), resolve()) });
            child.once('exit', (code, signal) => {
              clearTimeout(timer);
              if (!out.includes(text))
                reject(new Error(`worker exited (${code ?? signal}) before printing "${text}"; output:\n${out}`));
            });
          });
        },
        async kill(signal) {
          if (child.exitCode === null && child.signalCode === null) child.kill(signal);
          await exited;
        },
      };
      children.push(handle);
      await handle.waitForOutput('[worker] polling');
      return handle;
    },
    async waitForGoal(goalId, predicate, timeoutMs = 60_000) {
      const deadline = Date.now() + timeoutMs;
      let last: any;
      while (Date.now() < deadline) {
        const res = await engine.http('GET', `/v1/goals/${goalId}`);
        last = res.body;
        if (res.status === 200 && predicate(last)) return last;
        await new Promise((r) => setTimeout(r, 200));
      }
      throw new Error(
        `goal ${goalId} did not reach the expected state in ${timeoutMs} ms; last: ${JSON.stringify(last)}`,
      );
    },
    async serveApi(over = {}) {
      const served = await serveApp(apiFor(over));
      let closed: Promise<void> | undefined;
      const handle: ServedApi = { url: served.url, close: () => (closed ??= served.close()) };
      extraApis.push(handle);
      return handle;
    },
    async close() {
      await Promise.all(children.map((c) => c.kill('SIGKILL')));
      await Promise.all(workers.map((w) => w.stop().catch(() => undefined)));
      await Promise.all(extraApis.map((a) => a.close()));
      await api.close();
      await memory.store.close();
      await smtp.close();
      await temporal.teardown();
      await db.drop();
    },
  };
  return engine;
}
