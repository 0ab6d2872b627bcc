/**
 * The embedded default (issue 11): with DATABASE_URL unset and nothing answering on the default address,
 * `npm start` (scripts/start.ts) serves PGlite itself, migrates it, and a goal completes through the API; a
 * second start on the same folder still has the goal.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { serverFilePath } from '../../db/embedded';
import { startTemporal, workflowBundlePath } from '../helpers/temporal';

const ROOT = path.resolve(__dirname, '..', '..');
const API_KEY = 'embedded-start-test-key';

let temporal: TestWorkflowEnvironment;
let work: string;

beforeAll(async () => {
  temporal = await startTemporal();
  work = mkdtempSync(path.join(tmpdir(), 'keel-embedded-start-'));
});

afterAll(async () => {
  await temporal?.teardown();
  if (work) rmSync(work, { recursive: true, force: true });
});

/** A port nothing listens on: bound, then released. */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (typeof address !== 'object' || !address) throw new Error('no port');
  return address.port;
}

interface Started {
  child: ChildProcess;
  output: () => string;
  exited: Promise<number | null>;
}

/** scripts/start.ts as `npm start` runs it, resolved once the startup box is printed. */
async function start(env: NodeJS.ProcessEnv): Promise<Started> {
  const child = spawn(process.execPath, ['-r', 'ts-node/register/transpile-only', 'scripts/start.ts'], {
    cwd: ROOT,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const deadline = Date.now() + 180_000;
  while (!output.includes('Ctrl-C stops everything.')) {
    if (child.exitCode !== null || Date.now() > deadline) throw new Error(`npm start did not come up:\n${output}`);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  return { child, output: () => output, exited };
}

async function stop(started: Started): Promise<void> {
  started.child.kill('SIGTERM');
  await started.exited;
}

async function http(port: number, method: string, url: string, body?: unknown) {
  const res = await fetch(`http://127.0.0.1:${port}${url}`, {
    method,
    headers: { Authorization: `Bearer ${API_KEY}`, 'Content-Type': 'application/json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

test('no DATABASE_URL and nothing on the default address: npm start runs on PGlite, and keeps its data', async () => {
  const refused = await freePort();
  const apiPort = await freePort();
  const dataDir = path.join(work, 'pglite');
  const env: NodeJS.ProcessEnv = { ...process.env };
  delete env.DATABASE_URL;
  delete env.KEEL_DATABASE;
  Object.assign(env, {
    KEEL_DEFAULT_DATABASE_URL: `postgresql://postgres@127.0.0.1:${refused}/keel`,
    KEEL_PGLITE_DIR: dataDir,
    TEMPORAL_ADDRESS: temporal.address,
    KEEL_TASK_QUEUE: `keel-embedded-${refused}`,
    KEEL_WORKFLOW_BUNDLE: workflowBundlePath(),
    KEEL_API_KEY: API_KEY,
    KEEL_OUTBOX_DIR: path.join(work, 'outbox'),
    PORT: String(apiPort),
  });

  const first = await start(env);
  let goalId: string;
  try {
    expect(first.output()).toMatch(/│ Database +embedded \(PGlite\) on 127\.0\.0\.1:\d+, data in /);
    expect(first.output()).toContain(`nothing answers on 127.0.0.1:${refused}`);
    expect(first.output()).toMatch(/\[migrate\] .*applied 0001_init/);
    expect(existsSync(serverFilePath(dataDir))).toBe(true);

    const created = await http(apiPort, 'POST', '/v1/goals', {
      title: 'Summarize the week on PGlite',
      kind: 'note',
      input: { text: 'We shipped the embedded database.' },
      requestId: 'embedded-start-1',
    });
    expect(created.status).toBe(202);
    goalId = String(created.body.goalId);
    const deadline = Date.now() + 90_000;
    for (;;) {
      const goal = await http(apiPort, 'GET', `/v1/goals/${goalId}`);
      if (goal.body.status === 'completed') break;
      if (Date.now() > deadline) throw new Error(`goal did not complete: ${JSON.stringify(goal.body)}`);
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
    const events = await http(apiPort, 'GET', `/v1/goals/${goalId}/events`);
    expect(JSON.stringify(events.body)).toContain('goal.completed');
  } finally {
    await stop(first);
  }
  // A clean stop closes the database and gives the folder back.
  expect(existsSync(serverFilePath(dataDir))).toBe(false);

  const second = await start(env);
  try {
    expect(second.output()).toMatch(/\[migrate\] .*already up to date/);
    const goal = await http(apiPort, 'GET', `/v1/goals/${goalId}`);
    expect(goal).toMatchObject({ status: 200, body: { goalId, status: 'completed' } });
  } finally {
    await stop(second);
  }
}, 420_000);
