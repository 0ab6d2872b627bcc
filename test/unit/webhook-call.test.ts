/**
 * webhook.call against a local receiver (test/helpers/webhook-receiver.ts)
 * that records every request, in Temporal's MockActivityEnvironment, over a
 * scratch PostgreSQL database.
 */
import { createHmac } from 'node:crypto';
import { ApplicationFailure } from '@temporalio/common';
import { defaultConfig } from '../../config';
import {
  createWebhookConnector,
  retryAfterMs,
  verifyWebhookSignature,
  WEBHOOK_FAULT_AFTER_CALL,
  type WebhookConnector,
} from '../../connectors/webhook';
import type { FaultHooks } from '../../lib/faults';
import type { MemoryService } from '../../memory/service';
import { recordIntent } from '../../state/side-effects';
import { createToolActivities } from '../../tools/activities';
import { webhookCall } from '../../tools/registry';
import { describeApproval } from '../../tools/spec';
import { requiresApproval, validatePlan } from '../../policy';
import { createTestDatabase, type TestDatabase } from '../helpers/db';
import { createTestEmail, createTestMemory } from '../helpers/engine';
import { failureOf, goalWithSteps, runAttempt } from '../helpers/tool-goal';
import { startWebhookReceiver, type WebhookReceiver } from '../helpers/webhook-receiver';

const SECRET = 'whsec_test_0123456789';

let db: TestDatabase;
let memory: MemoryService;
let receiver: WebhookReceiver;

beforeAll(async () => {
  [db, receiver] = await Promise.all([createTestDatabase(), startWebhookReceiver()]);
  memory = createTestMemory(db.prisma);
});
afterAll(async () => {
  await memory?.store.close();
  await receiver?.close();
  await db?.drop();
});

function connector(over: { secret?: string; timeoutMs?: number; faults?: FaultHooks } = {}): WebhookConnector {
  return createWebhookConnector({
    secret: 'secret' in over ? over.secret : SECRET,
    timeoutMs: over.timeoutMs ?? 3000,
    prisma: db.prisma,
    faults: over.faults,
  });
}

function activities(webhook: WebhookConnector | undefined) {
  return createToolActivities({
    prisma: db.prisma,
    email: createTestEmail(db.prisma, undefined),
    memory,
    workingSetTokens: defaultConfig().KEEL_WORKING_SET_TOKENS,
    operatorName: 'Test Operator',
    webhook,
  });
}

const hookGoal = (title: string) => goalWithSteps(db.prisma, title, [{ id: 'hook', tool: 'webhook.call' }]);
const ledger = (goalId: string) => db.prisma.sideEffect.findMany({ where: { goalId } });

test('POSTs the JSON body with an Idempotency-Key and a signature that verifies with the secret', async () => {
  const g = await hookGoal('Tell the CRM');
  const url = `${receiver.url}/hooks/crm`;
  const result = await runAttempt(
    activities(connector()).callWebhook,
    g.input('hook', { url, body: '{"event":"invoice.paid","amount":120}' }),
  );
  const key = `${g.workflowId}:v1:hook`;
  expect(webhookCall.output.safeParse(result.output).success).toBe(true);
  expect(result.output).toMatchObject({ url, status: 200, idempotencyKey: key, delivery: 'called' });

  const [req] = receiver.withKey(key);
  expect(req).toMatchObject({ method: 'POST', path: '/hooks/crm', body: '{"event":"invoice.paid","amount":120}' });
  expect(req.headers['content-type']).toBe('application/json');
  const signature = String(req.headers['x-keel-signature']);
  expect(signature).toMatch(/^t=\d+,v1=[0-9a-f]{64}$/);
  expect(verifyWebhookSignature(SECRET, signature, req.body)).toBe(true);
  // The same check by hand, as a receiver in any language would do it.
  const [, t, v1] = /^t=(\d+),v1=([0-9a-f]+)$/.exec(signature)!;
  expect(createHmac('sha256', SECRET).update(`${t}.${req.body}`).digest('hex')).toBe(v1);
  expect(Math.abs(Number(t) - Date.now() / 1000)).toBeLessThan(30);
  // Another secret, or a changed body, does not verify.
  expect(verifyWebhookSignature('other-secret', signature, req.body)).toBe(false);
  expect(verifyWebhookSignature(SECRET, signature, req.body.replace('120', '121'))).toBe(false);
  expect(await ledger(g.goalId)).toMatchObject([{ kind: 'webhook.call', status: 'committed', attempts: 1 }]);
});

test('the key is the same on every retry; once committed, a retry calls nothing', async () => {
  const acts = activities(connector());
  const g = await hookGoal('Sync the order');
  const input = g.input('hook', { url: `${receiver.url}/orders`, body: { order: 42 } });
  const key = `${g.workflowId}:v1:hook`;

  receiver.answer({ status: 503 });
  const first = await failureOf(runAttempt(acts.callWebhook, input, 1));
  expect(first).toMatchObject({ type: 'WebhookUnavailable', nonRetryable: false });
  const second = await runAttempt(acts.callWebhook, input, 2);
  expect(second.output.delivery).toBe('called');
  const third = await runAttempt(acts.callWebhook, input, 3);
  expect(third.output).toMatchObject({ delivery: 'already-called', status: 200 });

  const requests = receiver.withKey(key);
  expect(requests).toHaveLength(2);
  expect(requests.map((r) => r.body)).toEqual(['{"order":42}', '{"order":42}']);
  for (const r of requests)
    expect(verifyWebhookSignature(SECRET, String(r.headers['x-keel-signature']), r.body)).toBe(true);
  expect((await ledger(g.goalId))[0]).toMatchObject({ status: 'committed', attempts: 3 });

  // Another run of the workflow, or another plan version, is another key.
  const other = await runAttempt(acts.callWebhook, g.input('hook', input.inputs, `${g.workflowId}-again`));
  expect(other.output.idempotencyKey).not.toBe(key);
});

test('an attempt that died before calling: the retry calls once', async () => {
  const g = await hookGoal('Call after a crash before the call');
  const key = `${g.workflowId}:v1:hook`;
  await recordIntent(db.prisma, { idempotencyKey: key, goalId: g.goalId, stepId: 'hook', kind: 'webhook.call' }, {});
  await runAttempt(activities(connector()).callWebhook, g.input('hook', { url: receiver.url, body: '[]' }), 2);
  expect(receiver.withKey(key)).toHaveLength(1);
});

test('a crash after the receiver answered and before the commit: the one repeat carries the same key', async () => {
  let crashes = 1;
  const faults: FaultHooks = {
    async hit(point) {
      if (point === WEBHOOK_FAULT_AFTER_CALL && crashes-- > 0) throw new Error('worker died (simulated)');
    },
  };
  const acts = activities(connector({ faults }));
  const g = await hookGoal('Call, crash, retry');
  const input = g.input('hook', { url: receiver.url, body: { n: 1 } });
  const key = `${g.workflowId}:v1:hook`;
  await expect(runAttempt(acts.callWebhook, input, 1)).rejects.toThrow('worker died');
  await runAttempt(acts.callWebhook, input, 2);
  await runAttempt(acts.callWebhook, input, 3);
  // The receiver saw the request twice, as one key: that is what it deduplicates on.
  const requests = receiver.withKey(key);
  expect(requests).toHaveLength(2);
  expect(new Set(requests.map((r) => r.headers['idempotency-key'])).size).toBe(1);
});

test.each([400, 401, 403, 404, 410, 422])(
  'a %i is a refusal: non-retryable WebhookRejected naming the status',
  async (status) => {
    const g = await hookGoal(`Refused with ${status}`);
    receiver.answer({ status, body: '{"error":"nope"}' });
    const err = await failureOf(
      runAttempt(activities(connector()).callWebhook, g.input('hook', { url: receiver.url, body: '{}' })),
    );
    expect(err).toBeInstanceOf(ApplicationFailure);
    expect(err).toMatchObject({ type: 'WebhookRejected', nonRetryable: true });
    expect(err.message).toContain(`answered ${status}`);
    expect((await ledger(g.goalId))[0]).toMatchObject({ status: 'failed' });
  },
);

test.each([408, 429, 500, 502, 503, 504])('a %i is retryable', async (status) => {
  const g = await hookGoal(`Transient ${status}`);
  receiver.answer({ status });
  const err = await failureOf(
    runAttempt(activities(connector()).callWebhook, g.input('hook', { url: receiver.url, body: '{}' })),
  );
  expect(err).toMatchObject({ type: 'WebhookUnavailable', nonRetryable: false });
  expect(err.message).toContain(`answered ${status}`);
  expect((await ledger(g.goalId))[0]).toMatchObject({ status: 'intent' });
});

test('Retry-After is honoured as the next retry delay, in seconds or as an HTTP date', async () => {
  const acts = activities(connector());
  const g = await hookGoal('Rate limited');
  const input = g.input('hook', { url: receiver.url, body: '{}' });
  receiver.answer({ status: 429, headers: { 'retry-after': '3' } });
  expect(await failureOf(runAttempt(acts.callWebhook, input, 1))).toMatchObject({
    type: 'WebhookUnavailable',
    nextRetryDelay: 3000,
  });
  receiver.answer({ status: 503, headers: { 'retry-after': new Date(Date.now() + 10_000).toUTCString() } });
  const err = await failureOf(runAttempt(acts.callWebhook, input, 2));
  expect(err.nextRetryDelay).toBeGreaterThan(7000);
  expect(err.nextRetryDelay).toBeLessThanOrEqual(10_000);
  expect(retryAfterMs('soon')).toBeUndefined();
  expect(retryAfterMs(null)).toBeUndefined();
});

test('no answer within the timeout, or nothing listening, is retryable', async () => {
  const g = await hookGoal('Slow receiver');
  receiver.answer({ delayMs: 2000 });
  const slow = await failureOf(
    runAttempt(
      activities(connector({ timeoutMs: 300 })).callWebhook,
      g.input('hook', { url: receiver.url, body: '{}' }),
    ),
  );
  expect(slow).toMatchObject({ type: 'WebhookUnavailable', nonRetryable: false });
  expect(slow.message).toContain('KEEL_WEBHOOK_TIMEOUT_MS');

  const g2 = await hookGoal('Nobody home');
  const refused = await failureOf(
    runAttempt(activities(connector()).callWebhook, g2.input('hook', { url: 'http://127.0.0.1:9/', body: '{}' })),
  );
  expect(refused).toMatchObject({ type: 'WebhookUnavailable', nonRetryable: false });
});

test('without KEEL_WEBHOOK_SECRET it fails non-retryably naming the setting, and calls nothing', async () => {
  const g = await hookGoal('Unsigned');
  const before = receiver.requests.length;
  for (const acts of [activities(connector({ secret: undefined })), activities(undefined)]) {
    const err = await failureOf(runAttempt(acts.callWebhook, g.input('hook', { url: receiver.url, body: '{}' })));
    expect(err).toMatchObject({ type: 'WebhookNotConfigured', nonRetryable: true });
    expect(err.message).toContain('KEEL_WEBHOOK_SECRET');
  }
  expect(receiver.requests.length).toBe(before);
});

describe('the spec', () => {
  test.each(['ftp://example.com/x', 'file:///etc/passwd', 'javascript:alert(1)', 'mailto:a@b.c', 'example.com/hook'])(
    'refuses %s before anything is recorded or called',
    async (url) => {
      expect(webhookCall.input.safeParse({ url, body: '{}' }).success).toBe(false);
      const problems = validatePlan(
        [{ id: 'h', tool: 'webhook.call', title: '', rationale: '', inputs: { url, body: '{}' }, dependsOn: [] }],
        { budgetUsd: 1, spentUsd: 0 },
      );
      expect(problems.map((p) => p.code)).toEqual(['invalid_input']);
      const g = await hookGoal('Bad URL');
      const before = receiver.requests.length;
      const err = await failureOf(
        runAttempt(activities(connector()).callWebhook, g.input('hook', { url, body: '{}' })),
      );
      expect(err).toMatchObject({ type: 'InvalidInput', nonRetryable: true });
      expect(err.message).toContain('url:');
      expect(receiver.requests.length).toBe(before);
      expect(await ledger(g.goalId)).toHaveLength(0);
    },
  );

  test('takes http and https URLs, and a body as JSON text, an object or an array, but not other text', () => {
    for (const url of ['http://127.0.0.1:8080/x', 'https://hooks.example.com/a?b=c']) {
      expect(webhookCall.input.safeParse({ url, body: '{}' }).success).toBe(true);
    }
    expect(webhookCall.input.parse({ url: 'https://a.example', body: '{"a":[1]}' }).body).toEqual({ a: [1] });
    expect(webhookCall.input.parse({ url: 'https://a.example', body: { a: 1 } }).body).toEqual({ a: 1 });
    expect(webhookCall.input.parse({ url: 'https://a.example', body: [1, 2] }).body).toEqual([1, 2]);
    expect(webhookCall.input.safeParse({ url: 'https://a.example', body: 'not json' }).success).toBe(false);
  });

  test('always needs approval, which shows the URL and the body', () => {
    expect(requiresApproval({ tool: 'webhook.call' })).toBe(true);
    const described = describeApproval(
      webhookCall,
      { url: 'https://crm.example/hook', body: '{"a":1}' },
      undefined,
      't',
    );
    expect(described).toEqual({
      ok: true,
      summary: 'POST to https://crm.example/hook: {"a":1}',
      proposed: { url: 'https://crm.example/hook', body: '{\n  "a": 1\n}' },
    });
  });
});
