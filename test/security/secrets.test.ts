/**
 * Secrets stay secret (issue 10, item 2). The API and a worker run as child
 * processes configured with recognisable fake secrets (the API key, Slack's
 * signing secret and bot token, the model key, the webhook secret); goals
 * are driven through model calls (the OpenAI protocol stand-in, which
 * requires the model key), Slack (the stand-in Web API, which requires the
 * bot token, and signed interactions), a webhook and SMTP, with failures on
 * the way (a refused model key, Slack errors, wrong API keys, bad
 * signatures). Then no secret may appear in either process's output, in any
 * answer the API gave, or in the Temporal history of any workflow.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHmac, randomBytes } from 'node:crypto';
import { createServer } from 'node:net';
import path from 'node:path';
import { startEngine, type ChildWorker, type TestEngine } from '../helpers/engine';
import { startOpenAIStandin, type ChatRequestBody, type OpenAIStandin } from '../helpers/openai-standin';
import { startSlackStandin, type SlackStandin } from '../helpers/slack-standin';
import { startWebhookReceiver, type WebhookReceiver } from '../helpers/webhook-receiver';
import { STILL_SETTINGS, until } from './support';
import { modelEmailPlan } from '../helpers/model-plans';

const ROOT = path.resolve(__dirname, '..', '..');
const tag = randomBytes(3).toString('hex');
const SECRETS = {
  KEEL_API_KEY: `keel-api-key-SECRET-${tag}-a1`,
  SLACK_SIGNING_SECRET: `slack-signing-SECRET-${tag}-b2`,
  SLACK_BOT_TOKEN: `xoxb-SECRET-${tag}-c3`,
  OPENAI_API_KEY: `sk-model-SECRET-${tag}-d4`,
  KEEL_WEBHOOK_SECRET: `whsec-SECRET-${tag}-e5`,
};
const APPROVER = 'U0APPROVER';
const CHANNEL = 'C0GENERAL';

let engine: TestEngine;
let model: OpenAIStandin;
let slack: SlackStandin;
let hooks: WebhookReceiver;
let worker: ChildWorker;
let apiProcess: ChildProcess;
let apiOutput = '';
let apiUrl: string;
/** Every answer the API gave during the test, as text. */
const answers: string[] = [];

jest.setTimeout(240_000);

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/** What the "model" plans: an email to the person the goal names, and a webhook call to tell the CRM. */
function plan(to: string, hook: string) {
  return modelEmailPlan(to, {
    purpose: 'thank them',
    rationale: `Write to ${to}, send once approved, tell the CRM.`,
    extra: [
      {
        id: 'crm',
        tool: 'webhook.call',
        title: 'Tell the CRM',
        rationale: 'keep the CRM current',
        inputs: { url: hook, body: JSON.stringify({ sent: to }) },
        dependsOn: ['send'],
      },
    ],
  });
}

beforeAll(async () => {
  [engine, model, slack, hooks] = await Promise.all([
    startEngine({ settings: STILL_SETTINGS }),
    startOpenAIStandin({
      apiKey: SECRETS.OPENAI_API_KEY,
      chat: (body: ChatRequestBody) => {
        const name = (body.response_format as { json_schema?: { name?: string } } | undefined)?.json_schema?.name;
        const text = JSON.stringify(body.messages);
        const to = /secret-[0-9a-f]+@example\.com/.exec(text)?.[0] ?? 'nobody@example.com';
        if (name === 'keel_plan') return JSON.stringify(plan(to, `${hooks.url}/crm`));
        if (name === 'keel_email_draft')
          return JSON.stringify({ subject: 'Thank you', body: `Hi,\n\nThank you!\n\nTest` });
        if (name === 'keel_classification') return JSON.stringify({ kind: 'other', confidence: 0.9, reason: 'a test' });
        return '{}';
      },
    }),
    startSlackStandin({ token: SECRETS.SLACK_BOT_TOKEN }),
    startWebhookReceiver(),
  ]);
  const common = {
    OPENAI_API_KEY: SECRETS.OPENAI_API_KEY,
    OPENAI_BASE_URL: model.baseURL,
    SLACK_BOT_TOKEN: SECRETS.SLACK_BOT_TOKEN,
    SLACK_API_URL: slack.apiUrl,
    SLACK_CHANNEL: CHANNEL,
    KEEL_WEBHOOK_SECRET: SECRETS.KEEL_WEBHOOK_SECRET,
    KEEL_APPROVAL_TIMEOUT_MS: String(STILL_SETTINGS.approvalTimeoutMs),
    KEEL_ESCALATION_TIMEOUT_MS: String(STILL_SETTINGS.escalationTimeoutMs),
  };
  worker = await engine.spawnWorker(common);
  const port = await freePort();
  apiUrl = `http://127.0.0.1:${port}`;
  apiProcess = spawn(process.execPath, ['-r', 'ts-node/register/transpile-only', path.join(ROOT, 'api', 'main.ts')], {
    cwd: ROOT,
    env: {
      ...process.env,
      ...common,
      DATABASE_URL: engine.db.url,
      TEMPORAL_ADDRESS: engine.temporal.address,
      TEMPORAL_NAMESPACE: 'default',
      KEEL_TASK_QUEUE: engine.taskQueue,
      PORT: String(port),
      KEEL_API_KEY: SECRETS.KEEL_API_KEY,
      SLACK_SIGNING_SECRET: SECRETS.SLACK_SIGNING_SECRET,
      SLACK_APPROVERS: APPROVER,
      SLACK_POLL_INTERVAL_MS: '200',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  apiProcess.stdout!.on('data', (c: Buffer) => (apiOutput += c.toString()));
  apiProcess.stderr!.on('data', (c: Buffer) => (apiOutput += c.toString()));
  apiProcess.once('exit', (code, signal) => (apiOutput += `\n[api exited: ${code ?? signal}]\n`));
  await until('the API to listen', () => apiOutput.includes('[api] listening'), 60_000);
});

afterAll(async () => {
  if (apiProcess && apiProcess.exitCode === null) {
    apiProcess.kill('SIGTERM');
    await new Promise((r) => apiProcess.once('exit', r));
  }
  await engine?.close();
  await Promise.all([model?.close(), slack?.close(), hooks?.close()]);
});

/** HTTP to the child API; every answer is kept for the search. */
async function http(method: string, route: string, body?: unknown, headers: Record<string, string> = {}) {
  const send = () =>
    fetch(`${apiUrl}${route}`, {
      method,
      redirect: 'manual',
      headers: {
        authorization: `Bearer ${SECRETS.KEEL_API_KEY}`,
        ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
        ...headers,
      },
      body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
    });
  // The child API closes idle sockets after Node's 5 s keep-alive; a GET that met one closing is sent again.
  const res = await send().catch((err: unknown) => {
    if (method !== 'GET') throw err;
    return send();
  });
  const text = await res.text();
  answers.push(`${method} ${route} → ${res.status} ${JSON.stringify([...res.headers])}\n${text}`);
  let parsed: any;
  try {
    parsed = text ? JSON.parse(text) : undefined;
  } catch {
    parsed = text;
  }
  return { status: res.status, body: parsed };
}

async function waitForGoal(goalId: string, predicate: (g: any) => boolean) {
  let last: unknown;
  try {
    return await until(
      `goal ${goalId}`,
      async () => {
        const res = await http('GET', `/v1/goals/${goalId}`);
        last = res.body;
        return res.status === 200 && predicate(res.body) ? res.body : undefined;
      },
      90_000,
    );
  } catch (err) {
    throw new Error(
      `${String(err)}; last: ${JSON.stringify(last)}\nworker:\n${worker.output().slice(-3000)}\napi:\n${apiOutput.slice(-3000)}`,
    );
  }
}

const nowS = () => Math.floor(Date.now() / 1000);

/** Clicks a button of the Slack message for an approval, signed as Slack signs. */
async function clickInSlack(approvalId: string, actionId: string, secret = SECRETS.SLACK_SIGNING_SECRET) {
  const m = await until(`the Slack message for ${approvalId}`, () =>
    slack.messagesIn(CHANNEL).find((x) => JSON.stringify(x.blocks ?? []).includes(approvalId)),
  );
  const block = (m.blocks as any[]).find((b) => b.type === 'actions');
  const el = block.elements.find((e: any) => e.action_id === actionId && JSON.parse(e.value).a === approvalId);
  const payload = {
    type: 'block_actions',
    user: { id: APPROVER, team_id: 'T0KEEL' },
    team: { id: 'T0KEEL' },
    trigger_id: `${nowS()}.trigger`,
    container: { type: 'message', message_ts: m.ts, channel_id: CHANNEL },
    channel: { id: CHANNEL },
    message: { ts: m.ts, blocks: m.blocks },
    actions: [{ action_id: actionId, block_id: block.block_id, value: el.value, action_ts: `${Date.now() / 1000}` }],
  };
  const body = new URLSearchParams({ payload: JSON.stringify(payload) }).toString();
  const ts = nowS();
  const sig = `v0=${createHmac('sha256', secret).update(`v0:${ts}:${body}`).digest('hex')}`;
  const res = await fetch(`${apiUrl}/slack/interactions`, {
    method: 'POST',
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      'x-slack-request-timestamp': String(ts),
      'x-slack-signature': sig,
    },
    body,
  });
  answers.push(`POST /slack/interactions → ${res.status}\n${await res.text()}`);
  return res.status;
}

/** A history as text with every payload decoded (payload data are JSON bytes, base64 in the history's JSON form). */
function historyText(history: unknown): string {
  return JSON.stringify(history, (key, v) => {
    if (v instanceof Uint8Array) return Buffer.from(v).toString('utf8');
    if (key === 'data' && typeof v === 'string') return Buffer.from(v, 'base64').toString('utf8');
    return v;
  });
}

/** Where each secret turns up: as written, base64-encoded, or its distinctive middle alone. */
function findings(where: string, text: string): string[] {
  const out: string[] = [];
  for (const [name, secret] of Object.entries(SECRETS)) {
    const forms = [secret, Buffer.from(secret).toString('base64'), secret.slice(secret.indexOf('SECRET'))];
    if (forms.some((f) => text.includes(f))) out.push(`${name} in ${where}`);
  }
  return out;
}

test('no secret appears in the logs, in any API answer, or in the Temporal history of any goal', async () => {
  // 1. A goal planned and drafted by the model, approved in Slack, emailed, and a signed webhook sent.
  const to = `secret-${randomBytes(3).toString('hex')}@example.com`;
  const started = await http('POST', '/v1/goals', { title: `Thank ${to} for the referral` });
  expect(started.status).toBe(202);
  const waiting = await waitForGoal(started.body.goalId, (g) => g.status === 'awaiting_approval');
  expect(await clickInSlack(waiting.approvals[0].approvalId, 'keel_approve')).toBe(200);
  const next = await waitForGoal(started.body.goalId, (g) =>
    g.approvals.some((a: any) => a.stepId === 'crm' && a.status === 'pending'),
  );
  const crm = next.approvals.find((a: any) => a.stepId === 'crm');
  expect((await http('POST', `/v1/approvals/${crm.approvalId}/decision`, { decision: 'approve' })).status).toBe(200);
  await waitForGoal(started.body.goalId, (g) => g.status === 'completed');
  await engine.smtp.waitFor(1);
  await hooks.waitFor(1);
  expect(hooks.requests[0].headers['x-keel-signature']).toMatch(/^t=\d+,v1=[0-9a-f]{64}$/);

  // 2. Failures on the way, each of which gets logged somewhere: the model refuses the key (echoing it, the way
  //    OpenAI's own 401 does: "Incorrect API key provided: sk-…") and a goal fails on it, Slack errors, the API
  //    is called with wrong keys, and Slack interactions arrive badly signed.
  model.scriptChat({
    status: 401,
    message: `Incorrect API key provided: ${SECRETS.OPENAI_API_KEY}. You can find your API key at https://platform.openai.com/account/api-keys.`,
  });
  const doomed = await http('POST', '/v1/goals', {
    title: `Thank secret-${randomBytes(3).toString('hex')}@example.com for the referral`,
  });
  await waitForGoal(doomed.body.goalId, (g) => g.status === 'failed');
  slack.script('chat.postMessage', { error: 'invalid_auth' }, { status: 500, body: 'upstream trouble' });
  const to2 = `secret-${randomBytes(3).toString('hex')}@example.com`;
  const second = await http('POST', '/v1/goals', { title: `Thank ${to2} for the referral` });
  const waiting2 = await waitForGoal(second.body.goalId, (g) => g.status === 'awaiting_approval');
  for (const wrong of [`${SECRETS.KEEL_API_KEY}x`, SECRETS.KEEL_API_KEY.slice(0, -1), SECRETS.SLACK_SIGNING_SECRET]) {
    expect((await http('GET', '/v1/goals', undefined, { authorization: `Bearer ${wrong}` })).status).toBe(401);
  }
  expect(await clickInSlack(waiting2.approvals[0].approvalId, 'keel_approve', 'not-the-signing-secret')).toBe(401);
  expect(await clickInSlack(waiting2.approvals[0].approvalId, 'keel_reject', SECRETS.KEEL_API_KEY)).toBe(401);
  // An inbound event, classified by the API's own model client.
  expect(
    (
      await http('POST', '/v1/events', {
        source: 'mail',
        type: 'email.received',
        externalId: `s-${tag}`,
        payload: { from: to, text: 'hello' },
      })
    ).status,
  ).toBe(201);
  // Sign in to the inbox (with a wrong key first) and read its pages.
  const login = async (key: string) => {
    const res = await fetch(`${apiUrl}/inbox/login`, {
      method: 'POST',
      redirect: 'manual',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ apiKey: key }).toString(),
    });
    answers.push(`POST /inbox/login → ${res.status} ${JSON.stringify([...res.headers])}\n${await res.text()}`);
    return res.headers.get('set-cookie')?.split(';')[0];
  };
  expect(await login(`${SECRETS.KEEL_API_KEY}-wrong`)).toBeUndefined();
  const cookie = (await login(SECRETS.KEEL_API_KEY))!;
  for (const p of ['/inbox', '/inbox/pending.json', '/inbox/cards', `/inbox/goals/${started.body.goalId}`]) {
    await http('GET', p, undefined, { cookie, authorization: '' });
  }
  expect(
    (await http('POST', `/v1/approvals/${waiting2.approvals[0].approvalId}/decision`, { decision: 'reject' })).status,
  ).toBe(200);
  await waitForGoal(second.body.goalId, (g) => g.status === 'failed');

  // 3. Everything the API answers about them.
  for (const goalId of [started.body.goalId, second.body.goalId]) {
    for (const sub of ['', '/explain', '/events', '/plans']) await http('GET', `/v1/goals/${goalId}${sub}`);
  }
  for (const p of [
    '/v1/goals',
    '/v1/approvals',
    '/v1/approvals?groupBy=kind',
    '/v1/metrics',
    '/metrics',
    '/healthz',
    '/v1/triggers',
    '/v1/trust-rules',
    `/v1/memory/search?q=${to}`,
    `/v1/memory/subjects/contact:${to}`,
  ]) {
    expect((await http('GET', p)).status).toBe(200);
  }
  // The secrets were really in use: the model, Slack and the webhook were called with them.
  expect(model.requests.some((r) => r.headers.authorization === `Bearer ${SECRETS.OPENAI_API_KEY}`)).toBe(true);
  expect(slack.callsOf('chat.postMessage').length).toBeGreaterThan(0);

  // 4. The search.
  const histories: string[] = [];
  for await (const wf of engine.temporal.client.workflow.list()) {
    const history = await engine.temporal.client.workflow.getHandle(wf.workflowId, wf.runId).fetchHistory();
    histories.push(historyText(history));
  }
  expect(histories.length).toBeGreaterThanOrEqual(2);
  const logs = `${apiOutput}\n${worker.output()}`;
  const found = [
    ...findings('the API process output', apiOutput),
    ...findings('the worker process output', worker.output()),
    ...answers.flatMap((a) => findings(`an API answer (${a.split('\n')[0].slice(0, 80)})`, a)),
    ...histories.flatMap((h, i) => findings(`workflow history ${i}`, h)),
  ];
  console.log(
    `[security] secrets: ${Object.keys(SECRETS).length} secrets searched in ${logs.length} characters of logs, ` +
      `${answers.length} API answers and ${histories.length} workflow histories: ${found.length} found`,
  );
  expect(found).toEqual([]);
  // The histories were searched for real: they hold the goals' payloads.
  expect(histories.join('\n')).toContain(to);
});
