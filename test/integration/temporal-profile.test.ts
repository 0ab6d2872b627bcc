/**
 * Temporal configured the way its users write it (config/temporal.ts, issue 11): a TOML profile file names
 * the dev server's address and a namespace of its own, and a worker and the API, each its own process, are
 * given only TEMPORAL_CONFIG_FILE and TEMPORAL_PROFILE (no TEMPORAL_ADDRESS or TEMPORAL_NAMESPACE). A goal
 * started through that API completes on that worker, in the profile's namespace. The file's default profile
 * points at a dead address, so only the named profile can have worked.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Client, WorkflowNotFoundError } from '@temporalio/client';
import { ensureSearchAttributes } from '../../scripts/dev-server';
import { startEngine, type TestEngine } from '../helpers/engine';

const ROOT = path.resolve(__dirname, '..', '..');
const NAMESPACE = 'keel-profile';
const dir = path.join(ROOT, '.keel', 'test', `temporal-profile-${randomBytes(4).toString('hex')}`);
const profileFile = path.join(dir, 'temporal.toml');

let engine: TestEngine;
let api: { process: ChildProcess; url: string; output: () => string } | undefined;

/**
 * The environment of a child given only the profile: every TEMPORAL_* variable of this process is removed
 * (undefined), then the file and the profile are named.
 */
function profileEnv(profile: string): Record<string, string | undefined> {
  const env: Record<string, string | undefined> = {};
  for (const key of Object.keys(process.env)) if (key.startsWith('TEMPORAL_')) env[key] = undefined;
  return {
    ...env,
    TEMPORAL_ADDRESS: undefined,
    TEMPORAL_NAMESPACE: undefined,
    TEMPORAL_CONFIG_FILE: profileFile,
    TEMPORAL_PROFILE: profile,
  };
}

/** api/main.ts as its own process with the engine's database, task queue and key, and the profile for Temporal. */
async function spawnApi(profile: string): Promise<NonNullable<typeof api>> {
  const env: Record<string, string | undefined> = {
    ...process.env,
    DATABASE_URL: engine.db.url,
    KEEL_TASK_QUEUE: engine.taskQueue,
    KEEL_API_KEY: engine.apiKey,
    PORT: '0',
    ...profileEnv(profile),
  };
  for (const key of Object.keys(env)) if (env[key] === undefined) delete env[key];
  const child = spawn(process.execPath, ['-r', 'ts-node/register', path.join(ROOT, 'api', 'main.ts')], {
    cwd: ROOT,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (out += c.toString()));
  const url = await new Promise<string>((resolve, reject) => {
    const deadline = Date.now() + 60_000;
    const timer = setInterval(() => {
      const m = /\[api\] listening on (http:\/\/[\d.]+:\d+)/.exec(out);
      if (m && out.includes('[api] Temporal:')) {
        clearInterval(timer);
        resolve(m[1]);
      } else if (child.exitCode !== null || Date.now() > deadline) {
        clearInterval(timer);
        child.kill('SIGKILL');
        reject(new Error(`the API did not start: ${out}`));
      }
    }, 100);
  });
  return { process: child, url, output: () => out };
}

async function http(method: string, route: string, body?: unknown) {
  const res = await fetch(`${api!.url}${route}`, {
    method,
    headers: {
      authorization: `Bearer ${engine.apiKey}`,
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : undefined };
}

beforeAll(async () => {
  // The dev server registers the profile's namespace beside `default`; Keel's search attributes are added to it
  // as `npm start` adds them to a server it did not start.
  engine = await startEngine({ temporal: { extraArgs: ['--namespace', NAMESPACE] } });
  await ensureSearchAttributes(engine.temporal.connection, NAMESPACE);
  mkdirSync(dir, { recursive: true });
  writeFileSync(
    profileFile,
    [
      '# Written by test/integration/temporal-profile.test.ts',
      '[profile.default]',
      '# Nothing listens here: a process that ignored TEMPORAL_PROFILE would never reach Temporal.',
      'address = "127.0.0.1:1"',
      '',
      '[profile.keel-test]',
      `address = "${engine.temporal.address}"`,
      `namespace = "${NAMESPACE}"`,
      '',
      '[profile.keel-test.grpc_meta]',
      'x-keel-test = "temporal-profile"',
      '',
    ].join('\n'),
  );
}, 120_000);

afterAll(async () => {
  if (api && api.process.exitCode === null) {
    api.process.kill('SIGKILL');
    await new Promise((resolve) => api!.process.once('exit', resolve));
  }
  await engine?.close();
  rmSync(dir, { recursive: true, force: true });
});

test('a worker and the API given only TEMPORAL_CONFIG_FILE and TEMPORAL_PROFILE run a goal to completion', async () => {
  const worker = await engine.spawnWorker(profileEnv('keel-test'));
  expect(worker.output()).toContain(
    `on ${engine.temporal.address}, namespace ${NAMESPACE}, no TLS, profile "keel-test" of ${profileFile}`,
  );
  api = await spawnApi('keel-test');
  expect(api.output()).toContain(`[api] Temporal: ${engine.temporal.address}, namespace ${NAMESPACE}`);

  const started = await http('POST', '/v1/goals', {
    title: 'Note that Temporal was found through a profile',
    kind: 'note',
    input: { text: 'configured by TEMPORAL_CONFIG_FILE and TEMPORAL_PROFILE' },
  });
  expect(started.status).toBe(202);
  const deadline = Date.now() + 90_000;
  let goal: any;
  while (Date.now() < deadline) {
    goal = (await http('GET', `/v1/goals/${started.body.goalId}`)).body;
    if (goal?.status === 'completed' || goal?.status === 'failed') break;
    await new Promise((r) => setTimeout(r, 250));
  }
  expect(goal?.status).toBe('completed');

  // The workflow ran in the profile's namespace, not in `default`.
  const inProfile = new Client({ connection: engine.temporal.connection, namespace: NAMESPACE });
  const handle = inProfile.workflow.getHandle(started.body.workflowId);
  // The goal's record says completed a moment before the workflow returns.
  await handle.result();
  expect((await handle.describe()).status.name).toBe('COMPLETED');
  const inDefault = new Client({ connection: engine.temporal.connection, namespace: 'default' });
  await expect(inDefault.workflow.getHandle(started.body.workflowId).describe()).rejects.toBeInstanceOf(
    WorkflowNotFoundError,
  );
  await worker.kill('SIGTERM');
}, 180_000);

test('a worker given a profile the file does not define stops at start-up naming the profile and the file', async () => {
  const failed = engine.spawnWorker(profileEnv('no-such-profile'));
  await expect(failed).rejects.toThrow(
    new RegExp(
      `TEMPORAL_PROFILE names profile "no-such-profile", which is not defined in ${profileFile.replace(/[.]/g, '\\.')} \\(it defines "default", "keel-test"\\)`,
    ),
  );
}, 60_000);
