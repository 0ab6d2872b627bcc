/**
 * Connector rate limits (KEEL_POLICY `rateLimits`) at the tool activities:
 * a tool whose spec names a connector takes a slot per run from windows
 * counted in PostgreSQL, so two workers share one limit; a full window fails
 * the attempt as retryable `RateLimited` with Temporal's nextRetryDelay set
 * to when it opens, before anything is started or sent.
 */
import { defaultConfig } from '../../config';
import { createWebhookConnector } from '../../connectors/webhook';
import type { MemoryService } from '../../memory/service';
import { createToolActivities } from '../../tools/activities';
import { TOOLS } from '../../tools/registry';
import type { ToolDeps } from '../../tools/runtime';
import { createTestDatabase, type TestDatabase } from '../helpers/db';
import { createTestEmail, createTestMemory } from '../helpers/engine';
import { failureOf, goalWithSteps, runAttempt } from '../helpers/tool-goal';
import { startWebhookReceiver, type WebhookReceiver } from '../helpers/webhook-receiver';

jest.setTimeout(60_000);

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

/** The tool activities of one "worker", with its own connector and the given limits. */
function worker(rateLimits: ToolDeps['rateLimits']) {
  return createToolActivities({
    prisma: db.prisma,
    email: createTestEmail(db.prisma, undefined),
    memory,
    workingSetTokens: defaultConfig().KEEL_WORKING_SET_TOKENS,
    operatorName: 'Test Operator',
    webhook: createWebhookConnector({ secret: 'whsec_rate', timeoutMs: 3000, prisma: db.prisma }),
    rateLimits,
  });
}

test('every connector-facing tool names the connector it takes slots from', () => {
  const named = Object.values(TOOLS)
    .filter((s) => s.rateLimit)
    .map((s) => [s.name, s.rateLimit]);
  expect(named).toEqual(
    expect.arrayContaining([
      ['email.send', 'email'],
      ['slack.post', 'slack'],
      ['webhook.call', 'webhook'],
    ]),
  );
  // A tool that reaches outside without naming its connector would escape the limits.
  for (const spec of Object.values(TOOLS)) if (spec.risk === 'external') expect(spec.rateLimit).toBeDefined();
});

test('two workers share one limit; the call over it sends nothing and is retried when the window opens', async () => {
  const limits = { webhook: { perMinute: 3 } };
  const a = worker(limits);
  const b = worker(limits);
  // The windows are calendar minutes: five calls that straddle a minute's turn could all fit (two in one, three
  // in the next), so the calls start in a minute with at least 20 s left (on a slow machine they take seconds).
  const left = 60_000 - (Date.now() % 60_000);
  if (left < 20_000) await new Promise((r) => setTimeout(r, left + 50));
  const outcomes: unknown[] = [];
  for (let i = 0; i < 5; i++) {
    const g = await goalWithSteps(db.prisma, `Hook ${i}`, [{ id: 'hook', tool: 'webhook.call' }]);
    const acts = i % 2 ? a : b;
    outcomes.push(
      await runAttempt(acts.callWebhook, g.input('hook', { url: `${receiver.url}/rl/${i}`, body: { i } })).catch(
        (e: unknown) => e,
      ),
    );
  }
  const limited = outcomes.filter((o) => (o as { type?: string }).type === 'RateLimited');
  // Unless the minute turned during the calls (20 s), exactly three went through.
  const sent = receiver.requests.filter((r) => r.path.startsWith('/rl/')).length;
  expect(sent + limited.length).toBe(5);
  expect(sent).toBeGreaterThanOrEqual(3);
  expect(limited.length).toBeGreaterThan(0);
  const failure = limited[0] as { nonRetryable: boolean; nextRetryDelay?: unknown; message: string };
  expect(failure.nonRetryable).toBe(false);
  expect(failure.message).toMatch(
    /the webhook connector took its 3 actions this minute; webhook\.call runs again in \d+ s/,
  );
  expect(Number(failure.nextRetryDelay)).toBeGreaterThan(0);
  expect(Number(failure.nextRetryDelay)).toBeLessThanOrEqual(60_000);
});

test('a limited step is not started: no step.started event, no side effect', async () => {
  const acts = worker({ webhook: { perDay: 1 } });
  // Another connector name's windows are separate, so fill this one on its own: a fresh limit for a fresh name.
  const first = await goalWithSteps(db.prisma, 'Hook day 1', [{ id: 'hook', tool: 'webhook.call' }]);
  const second = await goalWithSteps(db.prisma, 'Hook day 2', [{ id: 'hook', tool: 'webhook.call' }]);
  await db.prisma.rateLimitWindow.deleteMany({ where: { connector: 'webhook' } });
  await runAttempt(acts.callWebhook, first.input('hook', { url: `${receiver.url}/day/1`, body: {} }));
  const failure = await failureOf(
    runAttempt(acts.callWebhook, second.input('hook', { url: `${receiver.url}/day/2`, body: {} })),
  );
  expect(failure.type).toBe('RateLimited');
  expect(await db.prisma.event.count({ where: { goalId: second.goalId, type: 'step.started' } })).toBe(0);
  expect(await db.prisma.sideEffect.count({ where: { goalId: second.goalId } })).toBe(0);
  expect(receiver.requests.some((r) => r.path === '/day/2')).toBe(false);
});

test('without limits for a connector, its tools are not counted', async () => {
  const acts = worker({ slack: { perMinute: 1 } });
  await db.prisma.rateLimitWindow.deleteMany({ where: { connector: 'webhook' } });
  for (let i = 0; i < 3; i++) {
    const g = await goalWithSteps(db.prisma, `Free hook ${i}`, [{ id: 'hook', tool: 'webhook.call' }]);
    await runAttempt(acts.callWebhook, g.input('hook', { url: `${receiver.url}/free/${i}`, body: {} }));
  }
  expect(await db.prisma.rateLimitWindow.count({ where: { connector: 'webhook' } })).toBe(0);
});
