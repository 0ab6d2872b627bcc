/**
 * Payload encryption end to end, with real parts: the Temporal CLI's dev server
 * keeping its data in a SQLite file, a worker and the API as child processes
 * (their output captured) with KEEL_CODEC_KEY, a goal that plans, waits for an
 * approval (decided with edits), sends its email and completes. A random canary
 * in the goal's title, description, input and the approval's edits must be in
 * none of: `temporal workflow show` (text and JSON), the SQLite file (and its
 * WAL), the worker's and the API's output; and must come back through the
 * API's codec endpoint, both from the history's payloads posted to
 * /codec/decode and from `temporal workflow show --codec-endpoint`. A control
 * workflow started without the codec shows the same scans do see plaintext.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { Client } from '@temporalio/client';
import type { Payload } from '@temporalio/common';
import type { temporal } from '@temporalio/proto';
import { bundleKeelWorkflows } from '../../workers/bundle';
import { ENCODING_ENCRYPTED, payloadsFromJson, payloadsToJson } from '../../codec';
import { startEngine, type ChildWorker, type TestEngine } from '../helpers/engine';
import { startSmtpServer, type TestSmtpServer } from '../helpers/smtp';

const ROOT = path.resolve(__dirname, '..', '..');
const run = promisify(execFile);
const KEY = `k1:${randomBytes(32).toString('base64')}`;
const CANARY = `canary${randomBytes(12).toString('hex')}`;
const CONTROL = `control${randomBytes(12).toString('hex')}`;
const dataDir = path.join(ROOT, '.keel', 'test', `codec-${randomBytes(4).toString('hex')}`);
const dbFile = path.join(dataDir, 'temporal.db');
const bundle = path.join(dataDir, 'workflow-bundle.js');

let engine: TestEngine;
let worker: ChildWorker;
let api: { process: ChildProcess; url: string; output: () => string };
let rejecting: TestSmtpServer;

/**
 * The canary as text and as base64 at each of the three byte alignments (only
 * the characters that depend on the canary alone), so a payload shown or stored
 * as base64 is caught too.
 */
function needles(text: string): string[] {
  const bytes = Buffer.from(text);
  const out = [text];
  for (let shift = 0; shift < 3; shift++) {
    const encoded = Buffer.concat([Buffer.alloc(shift), bytes]).toString('base64');
    const first = Math.ceil(shift / 3);
    const last = Math.floor((shift + bytes.length) / 3) - 1;
    out.push(encoded.slice(first * 4, (last + 1) * 4));
  }
  return out;
}

const found = (haystack: string | Buffer, text: string) => {
  const hay = typeof haystack === 'string' ? haystack : haystack.toString('latin1');
  return needles(text).filter((n) => hay.includes(n));
};

/** The API as its own process (api/main.ts), with the engine's database, Temporal and key. */
async function spawnApi(env: Record<string, string>): Promise<typeof api> {
  const child = spawn(process.execPath, ['-r', 'ts-node/register', path.join(ROOT, 'api', 'main.ts')], {
    cwd: ROOT,
    env: {
      ...process.env,
      DATABASE_URL: engine.db.url,
      TEMPORAL_ADDRESS: engine.temporal.address,
      TEMPORAL_NAMESPACE: 'default',
      KEEL_TASK_QUEUE: engine.taskQueue,
      KEEL_API_KEY: engine.apiKey,
      PORT: '0',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (out += c.toString()));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setInterval(() => {
      const m = /\[api\] listening on (http:\/\/[\d.]+:\d+)/.exec(out);
      if (m && out.includes('[api] payload encryption')) {
        clearInterval(timer);
        resolve(m[1]);
      } else if (child.exitCode !== null) {
        clearInterval(timer);
        reject(new Error(`the API exited: ${out}`));
      }
    }, 100);
  });
  return { process: child, url, output: () => out };
}

async function http(method: string, route: string, body?: unknown, headers: Record<string, string> = {}) {
  const res = await fetch(`${api.url}${route}`, {
    method,
    headers: {
      authorization: `Bearer ${engine.apiKey}`,
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      ...headers,
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : undefined };
}

async function waitForGoal(goalId: string, predicate: (g: any) => boolean, timeoutMs = 90_000) {
  const deadline = Date.now() + timeoutMs;
  let last: any;
  while (Date.now() < deadline) {
    const res = await http('GET', `/v1/goals/${goalId}`);
    last = res.body;
    if (res.status === 200 && predicate(last)) return last;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`goal did not get there; last: ${JSON.stringify(last)}`);
}

/** Waits for the goal's approval and approves it through the API (the `decide` update carries the edits). */
async function approve(goalId: string, edits?: Record<string, string>) {
  await waitForGoal(goalId, (g) => g.status === 'awaiting_approval');
  const pending = await http('GET', '/v1/approvals?status=pending');
  const approval = pending.body.approvals.find((a: any) => a.goalId === goalId);
  const decided = await http('POST', `/v1/approvals/${approval.approvalId}/decision`, {
    decision: 'approve',
    ...(edits ? { edits } : {}),
    comment: `ok ${CANARY}`,
  });
  expect(decided.status).toBe(200);
}

/** A workflow's whole history as Temporal stores it, undecoded. */
async function history(workflowId: string) {
  const events: temporal.api.history.v1.IHistoryEvent[] = [];
  let nextPageToken: Uint8Array | undefined;
  do {
    const page = await engine.temporal.client.workflowService.getWorkflowExecutionHistory({
      namespace: 'default',
      execution: { workflowId },
      nextPageToken,
    });
    events.push(...(page.history?.events ?? []));
    nextPageToken = page.nextPageToken?.length ? page.nextPageToken : undefined;
  } while (nextPageToken);
  return events;
}

const temporalCli = (...args: string[]) =>
  run(
    process.env.KEEL_TEST_TEMPORAL_CLI!,
    [...args, '--address', engine.temporal.address, '--namespace', 'default', '--color', 'never'],
    { maxBuffer: 64 * 1024 * 1024 },
  ).then((r) => r.stdout + r.stderr);

/** Every payload in a raw history except search attributes' (which Temporal indexes, so never encodes). */
function payloadsIn(value: unknown, out: { path: string; payload: Payload }[] = [], at = '') {
  if (at.endsWith('.searchAttributes') || value === null || typeof value !== 'object') return out;
  if (value instanceof Uint8Array) return out;
  const v = value as Record<string, unknown>;
  if (v.data instanceof Uint8Array && typeof v.metadata === 'object' && v.metadata !== null) {
    out.push({ path: at, payload: v as Payload });
    return out;
  }
  for (const [k, child] of Object.entries(v)) payloadsIn(child, out, `${at}.${k}`);
  return out;
}

beforeAll(async () => {
  mkdirSync(dataDir, { recursive: true });
  engine = await startEngine({ codecKey: KEY, temporal: { dbFilename: dbFile } });
  // The production worker bundles its workflows with the codec's failure converter; a prebuilt bundle must too.
  const { code } = await bundleKeelWorkflows({
    failureConverterPath: require.resolve('../../codec/failure-converter'),
    logger: { trace() {}, debug() {}, info() {}, warn() {}, error: console.error, log() {} },
  });
  writeFileSync(bundle, code);
  [worker, api] = await Promise.all([
    engine.spawnWorker({ KEEL_WORKFLOW_BUNDLE: bundle }),
    spawnApi({ KEEL_CODEC_KEY: KEY }),
  ]);
}, 180_000);

afterAll(async () => {
  api?.process.kill('SIGKILL');
  await rejecting?.close();
  await engine?.close();
  rmSync(dataDir, { recursive: true, force: true });
});

test('a goal’s text reaches Temporal only as ciphertext, and the codec endpoint shows it to the operator', async () => {
  expect(worker.output()).toContain('[worker] payload encryption on: AES-256-GCM with key "k1"');
  expect(api.output()).toContain('[api] payload encryption on: AES-256-GCM with key "k1"');

  // The control: a workflow started without the codec, never run, its text in its input and memo.
  const plain = new Client({ connection: engine.temporal.connection, namespace: 'default' });
  await plain.workflow.start('controlWorkflow', {
    workflowId: `control-${CONTROL}`,
    taskQueue: 'nobody-polls-this',
    args: [{ note: CONTROL }],
    memo: { note: CONTROL },
  });

  // Goal 1 plans, waits for the approval (decided with edits), sends its email and completes.
  const first = await http('POST', '/v1/goals', {
    title: `Email grace@example.com a thank-you note for the referral (${CANARY})`,
    description: `Mention ${CANARY} in the note`,
    input: { reference: CANARY },
  });
  expect(first.status).toBe(202);
  await approve(first.body.goalId, { body: `Hi Grace, thank you for the referral. Ref ${CANARY}.` });
  await waitForGoal(first.body.goalId, (g) => g.status === 'completed');
  await engine.smtp.waitFor(1);
  // The email itself is the goal's purpose: it carries the operator's words.
  expect(engine.smtp.messages.some((m) => m.raw.includes(CANARY))).toBe(true);

  // Goal 2's recipient is the canary, and its SMTP server refuses the message: the activity failure's message
  // ("Email to <recipient> was rejected…") is goal text, so failures must be encrypted too.
  const firstWorker = worker;
  await firstWorker.kill('SIGTERM');
  rejecting = await startSmtpServer({ rejectWith: { code: 550, message: 'mailbox unavailable' } });
  worker = await engine.spawnWorker({ KEEL_WORKFLOW_BUNDLE: bundle, SMTP_URL: rejecting.url });
  const second = await http('POST', '/v1/goals', { title: `Email ${CANARY}@example.com about the invoice delay` });
  expect(second.status).toBe(202);
  await approve(second.body.goalId);
  const failed = await waitForGoal(second.body.goalId, (g) => g.status === 'failed');
  expect(failed.error).toContain(`Email to ${CANARY}@example.com was rejected by the SMTP server`);
  expect(rejecting.rejectedCount).toBe(1);

  const workflowIds: string[] = [first.body.workflowId, second.body.workflowId];
  // Temporal's own CLI, without the codec: text and JSON.
  for (const workflowId of workflowIds) {
    const shown = await temporalCli('workflow', 'show', '--workflow-id', workflowId);
    const shownJson = await temporalCli('workflow', 'show', '--workflow-id', workflowId, '--output', 'json');
    const described = await temporalCli('workflow', 'describe', '--workflow-id', workflowId, '--output', 'json');
    expect(shown).toContain('ActivityTaskCompleted');
    for (const out of [shown, shownJson, described]) expect(found(out, CANARY)).toEqual([]);
  }
  const control = await temporalCli('workflow', 'show', '--workflow-id', `control-${CONTROL}`, '--output', 'json');
  expect(found(control, CONTROL).length).toBeGreaterThan(0);

  // The dev server's SQLite file and its write-ahead log.
  const files = [dbFile, `${dbFile}-wal`, `${dbFile}-shm`].filter((f) => existsSync(f));
  const stored = Buffer.concat(files.map((f) => readFileSync(f)));
  expect(stored.length).toBeGreaterThan(0);
  expect(found(stored, CANARY)).toEqual([]);
  expect(found(stored, CONTROL).length).toBeGreaterThan(0);
  for (const workflowId of workflowIds) expect(stored.toString('latin1')).toContain(workflowId);

  // The worker's and the API's output.
  // The refused send is logged by the SDK as "Activity failed", its message withheld (codec/logging.ts).
  expect(worker.output()).toContain('ApplicationFailure (EmailRejected): [withheld: payload encryption is on]');
  for (const w of [firstWorker, worker])
    expect(
      w
        .output()
        .split('\n')
        .filter((l) => l.includes(CANARY)),
    ).toEqual([]);
  for (const w of [firstWorker, worker]) expect(found(w.output(), CANARY)).toEqual([]);
  expect(found(api.output(), CANARY)).toEqual([]);

  // Every payload of the histories (search attributes aside) is encrypted, and so is the failure's message.
  const events = (await Promise.all(workflowIds.map(history))).flat();
  const failures = events.filter((e) => e.activityTaskFailedEventAttributes);
  expect(failures).toHaveLength(1);
  expect(failures[0].activityTaskFailedEventAttributes!.failure!.message).toBe('Encoded failure');
  const inHistory = payloadsIn(events);
  const payloads = inHistory.map((f) => f.payload);
  expect(payloads.length).toBeGreaterThan(10);
  // Temporal's core writes two marker details itself, past the codec: a local activity's bookkeeping (seq,
  // attempt, activity type, times: its result is encrypted) and a patch marker's id. Nothing else is plain.
  const sdkMarker = /^\.\d+\.markerRecordedEventAttributes\.details\.(data|patch-data)\.payloads\.0$/;
  const unencrypted = inHistory
    .filter((f) => Buffer.from(f.payload.metadata!.encoding ?? []).toString() !== ENCODING_ENCRYPTED)
    .filter((f) => !sdkMarker.test(f.path))
    .map((f) => `${f.path}: ${Buffer.from(f.payload.data ?? []).toString()}`);
  expect(unencrypted).toEqual([]);

  // The operator's view: the history's payloads through the API's codec endpoint...
  const decoded = await http('POST', '/codec/decode', payloadsToJson(payloads), { 'x-namespace': 'default' });
  expect(decoded.status).toBe(200);
  const plainText = payloadsFromJson(decoded.body)
    .map((p) => Buffer.from(p.data ?? []).toString('utf8'))
    .join('\n');
  expect(plainText).toContain(`(${CANARY})`); // the title: workflow input, memo, summaries
  expect(plainText).toContain(`Ref ${CANARY}.`); // the approval's edits: the decide update
  expect(plainText).toContain(`Email to ${CANARY}@example.com was rejected`); // goal 2's activity failure
  // ...and Temporal's CLI pointed at it, as the Web UI would be.
  const viaCodec = await temporalCli(
    'workflow',
    'show',
    '--workflow-id',
    first.body.workflowId,
    '--output',
    'json',
    '--codec-endpoint',
    `${api.url}/codec`,
    '--codec-auth',
    `Bearer ${engine.apiKey}`,
  );
  // It prints the decoded payloads in protobuf JSON, their data as base64.
  expect(found(viaCodec, CANARY).length).toBeGreaterThan(0);
  // The codec endpoint's answers stayed out of the API's output.
  expect(found(api.output(), CANARY)).toEqual([]);
}, 240_000);
