// Starts Temporal's dev server (SQLite, Web UI) for `npm start` and the tests, with Keel's search attributes.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Connection, isGrpcServiceError } from '@temporalio/client';
import type { SearchAttributeType } from '@temporalio/common';
import {
  encodeSearchAttributeIndexedValueType,
  type SearchAttributeKey,
} from '@temporalio/common/lib/search-attributes';
import { KeelPendingApprovals, KeelStatus } from '../workflows/messages';
import { forEachLine } from './lines';

type AnySearchAttributeKey = SearchAttributeKey<SearchAttributeType>;

/** The search attributes goalWorkflow sets; every Temporal server Keel uses must know them. */
export const KEEL_SEARCH_ATTRIBUTES: readonly AnySearchAttributeKey[] = [KeelStatus, KeelPendingApprovals];

/** Options of {@link startDevServer}. */
export interface DevServerOptions {
  /** The Temporal CLI to run; null lets the Temporal SDK download one (needs internet). */
  cliPath: string | null;
  /** Folder for the SQLite file (`temporal.db`), so workflows survive a restart. */
  dataDir: string;
  /** Frontend gRPC port. @default 7233 */
  port?: number;
  /** Web UI port. @default 8233 */
  uiPort?: number;
  /** @default 'default' */
  namespace?: string;
  /** @default KEEL_SEARCH_ATTRIBUTES */
  searchAttributes?: readonly AnySearchAttributeKey[];
  /** Interface both the frontend and the UI bind to. @default '127.0.0.1' */
  ip?: string;
  /** Receives the server's log lines (its start-up banner is dropped). @default stderr, prefixed `[temporal]` */
  onOutput?: (line: string) => void;
  /**
   * Run the CLI in its own process group, so a terminal Ctrl-C reaches only the caller, which can then
   * stop its workers before the server. Leave false in tests: a killed test run must take the server along.
   * @default false
   */
  detached?: boolean;
  /** How long to wait for the CLI's server to answer (the SDK download path has its own limits). @default 60 s */
  startTimeoutMs?: number;
  /** The Web UI's remote codec endpoint (`--ui-codec-endpoint`), for payloads encrypted with KEEL_CODEC_KEY. */
  uiCodecEndpoint?: string;
}

/** A running dev server, as {@link startDevServer} returns it. */
export interface DevServer {
  /** `host:port` of the gRPC frontend, for TEMPORAL_ADDRESS. */
  address: string;
  uiUrl: string;
  namespace: string;
  /** Stops the server and waits for it to exit; safe to call more than once. */
  stop(): Promise<void>;
  /** Settles when the server has exited, through stop() or on its own (a crash the caller should notice). */
  exited: Promise<void>;
}

const BANNER = /^(CLI |Server:|UI:|Metrics:|\s*$)/;
const STOP_GRACE_MS = 10_000;

/**
 * Starts `temporal server start-dev` with a persistent SQLite file and Keel's search attributes, and resolves
 * once the frontend answers for the namespace with the search attributes registered. Without a CLI
 * (`cliPath: null`) it falls back to the Temporal SDK's own download of the dev server, with the same settings.
 *
 * @throws when the port is already taken, the server exits early, or it is not ready within `startTimeoutMs`
 */
export async function startDevServer(options: DevServerOptions): Promise<DevServer> {
  const {
    cliPath,
    dataDir,
    port = 7233,
    uiPort = 8233,
    namespace = 'default',
    searchAttributes = KEEL_SEARCH_ATTRIBUTES,
    ip = '127.0.0.1',
    onOutput = (line: string) => process.stderr.write(`[temporal] ${line}\n`),
    detached = false,
  } = options;
  const address = `${ip}:${port}`;
  const uiUrl = `http://${ip}:${uiPort}`;
  const dbFilename = path.join(dataDir, 'temporal.db');
  fs.mkdirSync(dataDir, { recursive: true });

  // Without this check a server already on the port would answer our readiness probe while ours dies.
  if (await isListening(ip, port)) {
    throw new Error(
      `${address} is already in use (another Temporal server?). Stop it, or set TEMPORAL_ADDRESS=${address} to use it.`,
    );
  }

  if (cliPath === null) {
    const { TestWorkflowEnvironment } = await import('@temporalio/testing');
    const env = await TestWorkflowEnvironment.createLocal({
      server: {
        executable: { type: 'cached-download' },
        dbFilename,
        namespace,
        ip,
        port,
        ui: true,
        uiPort,
        log: { format: 'pretty', level: 'warn' },
        searchAttributes: [...searchAttributes],
        ...(options.uiCodecEndpoint ? { extraArgs: ['--ui-codec-endpoint', options.uiCodecEndpoint] } : {}),
      },
    });
    try {
      await ensureSearchAttributes(env.connection, namespace, searchAttributes);
    } catch (err) {
      await env.teardown();
      throw err;
    }
    // The SDK owns this process and reports no crash, so `exited` only settles through stop().
    let markExited!: () => void;
    const exited = new Promise<void>((resolve) => (markExited = resolve));
    const stop = once(async () => {
      try {
        await env.teardown();
      } finally {
        markExited();
      }
    });
    return { address: env.address, uiUrl, namespace, stop, exited };
  }

  const args = [
    'server',
    'start-dev',
    '--db-filename',
    dbFilename,
    '--port',
    String(port),
    '--ui-port',
    String(uiPort),
    '--namespace',
    namespace,
    '--ip',
    ip,
    '--log-level',
    'warn',
    ...searchAttributes.flatMap((key) => ['--search-attribute', `${key.name}=${cliTypeName(key.type)}`]),
    ...(options.uiCodecEndpoint ? ['--ui-codec-endpoint', options.uiCodecEndpoint] : []),
  ];
  const child = spawn(cliPath, args, { stdio: ['ignore', 'pipe', 'pipe'], detached });
  const recent: string[] = [];
  let stopping = false;
  const forward = (line: string) => {
    recent.push(line);
    if (recent.length > 40) recent.shift();
    // The shutdown is a burst of harmless connection warnings; nobody needs them.
    if (!stopping && !BANNER.test(line)) onOutput(line);
  };
  forEachLine(child.stdout, forward);
  forEachLine(child.stderr, forward);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  // A crashing parent must not leave a server holding the port for the next start.
  const killOnExit = () => child.kill('SIGKILL');
  process.once('exit', killOnExit);

  const stop = once(async () => {
    stopping = true;
    process.removeListener('exit', killOnExit);
    await terminate(child, exited);
  });

  try {
    await waitUntilReady({
      address,
      namespace,
      searchAttributes,
      child,
      timeoutMs: options.startTimeoutMs ?? 60_000,
      recent,
    });
  } catch (err) {
    await stop();
    throw err;
  }
  return { address, uiUrl, namespace, stop, exited };
}

/**
 * Registers whichever of `keys` the namespace lacks, for Temporal servers Keel did not start itself
 * (TEMPORAL_ADDRESS pointing at a cluster). Returns the names it added.
 *
 * @throws when an attribute exists with a different type
 */
export async function ensureSearchAttributes(
  connection: Connection,
  namespace: string,
  keys: readonly AnySearchAttributeKey[] = KEEL_SEARCH_ATTRIBUTES,
): Promise<string[]> {
  const existing = await connection.operatorService.listSearchAttributes({ namespace });
  const custom = existing.customAttributes ?? {};
  const missing: Record<string, number> = {};
  for (const key of keys) {
    const wanted = encodeSearchAttributeIndexedValueType(key.type);
    if (wanted === undefined) throw new Error(`Unknown search attribute type ${key.type} for ${key.name}`);
    const current = custom[key.name];
    if (current === undefined) {
      missing[key.name] = wanted;
    } else if (current !== wanted) {
      throw new Error(
        `Search attribute ${key.name} exists in namespace ${namespace} with another type than ${key.type}; ` +
          'remove it (temporal operator search-attribute remove) or use another namespace',
      );
    }
  }
  const names = Object.keys(missing);
  if (names.length === 0) return [];
  try {
    await connection.operatorService.addSearchAttributes({ namespace, searchAttributes: missing });
  } catch (err) {
    // Another process (a second worker, the API) may have registered them a moment earlier.
    const ALREADY_EXISTS = 6;
    if (!(isGrpcServiceError(err) && err.code === ALREADY_EXISTS)) throw err;
  }
  return names;
}

/** The CLI spells types as KeyWord-style identifiers: KEYWORD_LIST → KeywordList. */
function cliTypeName(type: SearchAttributeType): string {
  return type
    .split('_')
    .map((word) => word[0] + word.slice(1).toLowerCase())
    .join('');
}

async function waitUntilReady(opts: {
  address: string;
  namespace: string;
  searchAttributes: readonly AnySearchAttributeKey[];
  child: ChildProcess;
  timeoutMs: number;
  recent: string[];
}): Promise<void> {
  const { address, namespace, child, recent } = opts;
  const deadline = Date.now() + opts.timeoutMs;
  const [host, port] = splitAddress(address);
  const failure = (why: string) =>
    new Error(`Temporal dev server ${why}.${recent.length ? `\nIts last output:\n${recent.join('\n')}` : ''}`);

  // A cheap TCP probe first: each failed Connection.connect would leave a gRPC channel behind.
  while (!(await isListening(host, port))) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw failure(`exited early (${child.signalCode ?? `exit code ${child.exitCode}`})`);
    }
    if (Date.now() > deadline) throw failure(`did not listen on ${address} within ${opts.timeoutMs} ms`);
    await sleep(100);
  }

  const connection = await Connection.connect({ address, connectTimeout: Math.max(1000, deadline - Date.now()) });
  try {
    for (;;) {
      try {
        // The namespace and the search attributes come up a moment after the port opens.
        await connection.workflowService.describeNamespace({ namespace });
        await ensureSearchAttributes(connection, namespace, opts.searchAttributes);
        return;
      } catch (err) {
        if (child.exitCode !== null || child.signalCode !== null) throw failure('exited while starting');
        if (Date.now() > deadline) {
          throw failure(`was not ready within ${opts.timeoutMs} ms: ${err instanceof Error ? err.message : err}`);
        }
        await sleep(200);
      }
    }
  } finally {
    await connection.close();
  }
}

async function terminate(child: ChildProcess, exited: Promise<void>): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGTERM');
  const timer = sleep(STOP_GRACE_MS, undefined, { ref: false }).then(() => 'timeout' as const);
  if ((await Promise.race([exited.then(() => 'exited' as const), timer])) === 'timeout') {
    child.kill('SIGKILL');
    await exited;
  }
}

function isListening(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    const done = (listening: boolean) => {
      socket.destroy();
      resolve(listening);
    };
    socket.setTimeout(1000, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

function splitAddress(address: string): [string, number] {
  const i = address.lastIndexOf(':');
  return [address.slice(0, i).replace(/^\[|\]$/g, ''), Number(address.slice(i + 1))];
}

function once(fn: () => Promise<void>): () => Promise<void> {
  let running: Promise<void> | undefined;
  return () => (running ??= fn());
}
