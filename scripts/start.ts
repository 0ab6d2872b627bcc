/**
 * `npm start`: the whole engine on one machine. Picks the database (db/resolve.ts: a server PostgreSQL, or
 * the embedded one, which this process then serves to its children), starts Temporal's dev server (unless
 * TEMPORAL_ADDRESS or a Temporal profile names another server: config/temporal.ts), migrates the database,
 * runs one worker and the API, and stops them all together: on Ctrl-C, on SIGTERM, or when either child dies.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Connection } from '@temporalio/client';
import { loadConfig, type Config } from '../config/index';
import type { TemporalConnectionOptions } from '../config/temporal';
import { apiKeyFromConfig } from '../api/key';
import { codecUiToken } from '../codec';
import { redactUrl } from '../db/migrations';
import { openDatabase, type OpenDatabase } from '../db/resolve';
import { ensureSearchAttributes, startDevServer, type DevServer } from './dev-server';
import { forEachLine } from './lines';
import { resolveTemporalCli } from './temporal-cli';

const ROOT = path.resolve(__dirname, '..');
const DATA_DIR = path.join(ROOT, '.keel', 'temporal');
const TS_NODE = ['-r', 'ts-node/register/transpile-only'];
/** Long enough for a worker to finish its current activity tasks after SIGTERM. */
const CHILD_STOP_GRACE_MS = 15_000;
/** Bundling the workflows takes the worker a few seconds; a cold machine can take much longer. */
const READY_WAIT_MS = 120_000;

interface TemporalTarget {
  address: string;
  /** How to reach it: the configured options for a server named in the configuration, the address alone for ours. */
  connectionOptions: TemporalConnectionOptions;
  /** Only known for the dev server started here. */
  uiUrl?: string;
  external: boolean;
  /** The dev server's Web UI decodes payloads through the API's codec endpoint (KEEL_CODEC_KEY). */
  uiDecodes?: boolean;
}

interface Child {
  name: string;
  process: ChildProcess;
  exited: Promise<number>;
}

const children: Child[] = [];
let devServer: Promise<DevServer> | undefined;
let database: OpenDatabase | undefined;
let shuttingDown = false;

function say(line: string): void {
  console.log(`[start] ${line}`);
}

function launch(name: string, args: string[], env: NodeJS.ProcessEnv): Child {
  // Own process group: a terminal Ctrl-C reaches only this orchestrator, which then stops the children
  // before the Temporal server instead of everything dying at once.
  const proc = spawn(process.execPath, [...TS_NODE, ...args], {
    cwd: ROOT,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  const prefix = `[${name}]`;
  const write = (out: NodeJS.WriteStream) => (line: string) =>
    out.write(`${line.startsWith(prefix) ? line : `${prefix} ${line}`}\n`);
  forEachLine(proc.stdout, write(process.stdout));
  forEachLine(proc.stderr, write(process.stderr));
  const exited = new Promise<number>((resolve) => {
    proc.once('error', (err) => {
      process.stderr.write(`${prefix} could not start: ${err.message}\n`);
      resolve(1);
    });
    proc.once('exit', (code, signal) => resolve(code ?? (signal ? 1 : 0)));
  });
  const child = { name, process: proc, exited };
  children.push(child);
  return child;
}

async function stopChild(child: Child): Promise<void> {
  if (child.process.exitCode !== null || child.process.signalCode !== null) return;
  child.process.kill('SIGTERM');
  const timeout = sleep(CHILD_STOP_GRACE_MS, undefined, { ref: false }).then(() => 'timeout' as const);
  if ((await Promise.race([child.exited, timeout])) === 'timeout') {
    say(`${child.name} did not stop within ${CHILD_STOP_GRACE_MS / 1000} s; killing it`);
    child.process.kill('SIGKILL');
    await child.exited;
  }
}

async function stopAll(): Promise<void> {
  await Promise.all(children.map(stopChild));
  // The server goes last so the worker and the API can finish talking to it.
  const server = await devServer?.catch(() => undefined);
  await server?.stop();
  // The embedded database (when served here) closes last: everything above may write to it until it stops.
  await database?.close().catch((err: unknown) => say(`closing the embedded database: ${String(err)}`));
}

async function shutdown(exitCode: number): Promise<never> {
  if (shuttingDown) {
    // A second Ctrl-C: the user has stopped waiting.
    children.forEach((c) => c.process.kill('SIGKILL'));
    process.exit(exitCode || 130);
  }
  shuttingDown = true;
  say('stopping...');
  await stopAll();
  process.exit(exitCode);
}

function onSignal(signal: NodeJS.Signals): void {
  say(`${signal} received`);
  void shutdown(0);
}

function splitHostPort(address: string): { host: string; port: number } {
  const i = address.lastIndexOf(':');
  const port = Number(address.slice(i + 1));
  if (i < 0 || !Number.isInteger(port)) throw new Error(`TEMPORAL_ADDRESS must be host:port, got ${address}`);
  return { host: address.slice(0, i), port };
}

/** Resolves with the /healthz status once the API answers at all (503 still means it is listening). */
async function waitForApi(port: number): Promise<number | undefined> {
  const deadline = Date.now() + READY_WAIT_MS;
  while (Date.now() < deadline && !shuttingDown) {
    try {
      const res = await fetch(`http://127.0.0.1:${port}/healthz`, { signal: AbortSignal.timeout(5000) });
      return res.status;
    } catch {
      await sleep(300);
    }
  }
  return undefined;
}

/**
 * Resolves true once our worker polls the task queue. Temporal keeps listing a stopped worker's poller for
 * minutes, so only a poller with our child's pid in its identity (the SDK's default `pid@host`) or one seen
 * after the launch counts.
 */
async function waitForWorker(
  config: Config,
  temporal: TemporalTarget,
  worker: Child,
  launchedAt: number,
): Promise<boolean> {
  const connection = await Connection.connect(temporal.connectionOptions);
  try {
    const deadline = Date.now() + READY_WAIT_MS;
    while (Date.now() < deadline && !shuttingDown) {
      try {
        const { pollers } = await connection.workflowService.describeTaskQueue({
          namespace: config.temporal.namespace,
          taskQueue: { name: config.KEEL_TASK_QUEUE },
        });
        const ours = (pollers ?? []).some(
          (p) =>
            p.identity?.startsWith(`${worker.process.pid}@`) ||
            Number(String(p.lastAccessTime?.seconds ?? 0)) * 1000 >= launchedAt,
        );
        if (ours) return true;
      } catch {
        // the server may be busy starting the namespace's queues; ask again
      }
      await sleep(500);
    }
    return false;
  } finally {
    await connection.close();
  }
}

function printBox(lines: string[]): void {
  const width = Math.max(...lines.map((l) => l.length));
  const out = [
    `┌${'─'.repeat(width + 2)}┐`,
    ...lines.map((l) => `│ ${l.padEnd(width)} │`),
    `└${'─'.repeat(width + 2)}┘`,
  ];
  console.log(out.join('\n'));
}

interface Readiness {
  apiHealth: number | undefined;
  workerPolling: boolean;
}

function summary(config: Config, temporal: TemporalTarget, db: OpenDatabase, ready: Readiness) {
  const row = (label: string, value: string) => `${label.padEnd(10)} ${value}`;
  const health = ready.apiHealth;
  const apiState = health === undefined ? 'not answering yet' : health === 200 ? 'healthy' : `/healthz ${health}`;
  return [
    ready.workerPolling && health !== undefined
      ? 'Keel is running'
      : 'Keel is starting (see the [worker] and [api] lines)',
    '',
    row(
      'Temporal',
      temporal.external
        ? config.temporal.description
        : `${temporal.address}, namespace ${config.temporal.namespace}, dev server, data in ${path.relative(ROOT, DATA_DIR)}`,
    ),
    row(
      'Web UI',
      temporal.uiUrl
        ? `${temporal.uiUrl}${temporal.uiDecodes ? " (decrypting through the API's codec endpoint)" : ''}`
        : "the server's own Web UI (not started here)",
    ),
    row(
      'Payloads',
      config.KEEL_CODEC_KEY
        ? `encrypted in Temporal with key "${config.KEEL_CODEC_KEY.current.id}" (KEEL_CODEC_KEY)`
        : 'not encrypted (KEEL_CODEC_KEY not set)',
    ),
    row('Worker', `${ready.workerPolling ? 'polling' : 'not polling yet'} task queue ${config.KEEL_TASK_QUEUE}`),
    row('API', `http://127.0.0.1:${config.PORT} (${apiState})`),
    row('API key', config.KEEL_API_KEY ? 'KEEL_API_KEY' : 'in .keel/api-key (set KEEL_API_KEY to choose one)'),
    row('Database', db.description),
    row(
      'Email',
      config.SMTP_URL ? `SMTP ${redactUrl(config.SMTP_URL)}` : `outbox ${config.KEEL_OUTBOX_DIR} (no SMTP_URL)`,
    ),
    row('Memory', config.QDRANT_URL ? `Qdrant ${config.QDRANT_URL}` : 'embedded (no QDRANT_URL)'),
    row(
      'Models',
      config.OPENAI_API_KEY
        ? `${config.OPENAI_BASE_URL ?? 'OpenAI'} (${config.KEEL_MODEL_SMALL}, ${config.KEEL_MODEL_LARGE})`
        : 'offline provider (no OPENAI_API_KEY)',
    ),
    row('Slack', config.SLACK_BOT_TOKEN ? `channel ${config.SLACK_CHANNEL ?? '(SLACK_CHANNEL unset)'}` : 'off'),
    '',
    'Ctrl-C stops everything.',
  ];
}

async function main(): Promise<void> {
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(signal, onSignal);
  // If this process dies some other way, the detached children must not outlive it.
  process.once('exit', () => children.forEach((c) => c.process.kill('SIGTERM')));

  const config = loadConfig();
  database = await openDatabase(process.env, { serve: true });
  const db = database;
  say(`database: ${db.description}`);
  // A server named anywhere Temporal's own tools look (TEMPORAL_ADDRESS, or the address of the profile in use)
  // is used as it is; otherwise Keel runs the dev server here.
  const external = config.temporal.addressConfigured;
  let temporal: TemporalTarget;

  if (external) {
    say(`using the Temporal server at ${config.temporal.description}`);
    const connection = await Connection.connect(config.temporal.connectionOptions);
    try {
      const added = await ensureSearchAttributes(connection, config.temporal.namespace);
      if (added.length) say(`registered search attributes ${added.join(', ')}`);
    } finally {
      await connection.close();
    }
    temporal = {
      address: config.temporal.address,
      connectionOptions: config.temporal.connectionOptions,
      external: true,
    };
  } else {
    const { tls, apiKey } = config.temporal.connectionOptions;
    if ((tls !== undefined && tls !== false) || apiKey !== undefined) {
      // The dev server speaks plaintext: TLS or a key without an address is a profile missing its address.
      throw new Error(
        `Temporal TLS or an API key is configured (${config.temporal.description}) but no address: ` +
          "set TEMPORAL_ADDRESS or the profile's address, or unset them to run the dev server here",
      );
    }
    const { host, port } = splitHostPort(config.temporal.address);
    const cli = await resolveTemporalCli({ install: false });
    // With encryption on, the dev server's Web UI is pointed at the API's codec endpoint for the UI (its path
    // carries a token derived from the API key, which the UI cannot send); the key is made here if it is new.
    const uiCodecEndpoint =
      config.KEEL_CODEC_KEY && config.PORT !== 0
        ? `http://${host}:${config.PORT}/codec/ui/${codecUiToken(apiKeyFromConfig(config, ROOT).key)}`
        : undefined;
    say(
      cli.path
        ? `starting the Temporal dev server (${cli.path})`
        : 'starting the Temporal dev server downloaded by the Temporal SDK (no Temporal CLI here)',
    );
    devServer = startDevServer({
      cliPath: cli.path,
      dataDir: DATA_DIR,
      ip: host,
      port,
      uiPort: port + 1000,
      namespace: config.temporal.namespace,
      detached: true,
      uiCodecEndpoint,
    });
    const server = await devServer;
    temporal = {
      address: server.address,
      connectionOptions: { address: server.address },
      uiUrl: server.uiUrl,
      external: false,
      uiDecodes: Boolean(uiCodecEndpoint),
    };
    void server.exited.then(() => {
      if (shuttingDown) return;
      console.error('[start] the Temporal dev server exited unexpectedly; stopping everything');
      void shutdown(1);
    });
  }
  if (shuttingDown) return;

  // The children resolve the same profile and variables; the address and namespace are pinned to what was
  // resolved here (for the dev server, its address), and the environment wins over a profile.
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    DATABASE_URL: db.url,
    // The children resolve the database by the same rules; this makes them find the one served here.
    ...(db.kind === 'embedded' ? { KEEL_DATABASE: 'embedded' } : {}),
    TEMPORAL_ADDRESS: temporal.address,
    TEMPORAL_NAMESPACE: config.temporal.namespace,
    // The one worker here runs the goals, and the model calls too when KEEL_MODEL_TASK_QUEUE is set.
    KEEL_WORKER_ROLE: 'all',
  };
  // The codec endpoint answers browsers from the Web UI started here, whichever spelling of its host is typed.
  if (temporal.uiDecodes && temporal.uiUrl && !process.env.KEEL_CODEC_UI_ORIGINS) {
    const ui = new URL(temporal.uiUrl);
    const hosts =
      ui.hostname === '127.0.0.1' || ui.hostname === 'localhost' ? ['127.0.0.1', 'localhost'] : [ui.hostname];
    env.KEEL_CODEC_UI_ORIGINS = hosts.map((h) => `${ui.protocol}//${h}:${ui.port}`).join(',');
  }

  const migration = launch('migrate', ['scripts/migrate.ts', 'up'], env);
  const migrated = await migration.exited;
  children.splice(children.indexOf(migration), 1);
  if (shuttingDown) return;
  if (migrated !== 0) {
    console.error(
      `[start] migrating ${redactUrl(db.url)} failed (exit code ${migrated})` +
        (db.kind === 'server' ? '; is PostgreSQL up?' : ''),
    );
    await shutdown(1);
  }

  const launchedAt = Date.now();
  const [worker] = [
    ['worker', 'workers/main.ts'],
    ['api', 'api/main.ts'],
  ].map(([name, script]) => {
    const child = launch(name, [script], env);
    void child.exited.then((code) => {
      if (shuttingDown) return;
      console.error(`[start] ${name} exited unexpectedly (exit code ${code}); stopping everything`);
      void shutdown(code || 1);
    });
    return child;
  });

  const [apiHealth, workerPolling] = await Promise.all([
    config.PORT === 0 ? undefined : waitForApi(config.PORT),
    waitForWorker(config, temporal, worker, launchedAt),
  ]);
  if (shuttingDown) return;
  printBox(summary(config, temporal, db, { apiHealth, workerPolling }));
}

async function run() {
  try {
    await main();
  } catch (err) {
    // Leave nothing running behind a failed start (a dev server holding port 7233, say).
    shuttingDown = true;
    await stopAll();
    throw err;
  }
}

run().catch((err) => {
  console.error(err);
  process.exit(1);
});
