/**
 * The HTTP contract (../shared/API.md) over real HTTP: auth, health, validation,
 * idempotency, listing, explanations, inbound events, decisions, metrics and
 * unknown routes. Every rejection is also checked against the database: a 4xx
 * must leave nothing behind, and a duplicate must not create a second row or a
 * second workflow.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:net';
import type { AddressInfo } from 'node:net';
import * as grpc from '@grpc/grpc-js';
import { Client, Connection, defaultGrpcRetryOptions, makeGrpcRetryInterceptor } from '@temporalio/client';
import { createPrisma } from '../../db/prisma';
import { databaseUrlFor } from '../helpers/db';
import { startEngine, type TestEngine } from '../helpers/engine';

let engine: TestEngine;

beforeAll(async () => {
  engine = await startEngine();
  await engine.startWorker();
});
afterAll(async () => {
  await engine?.close();
});

/** HTTP with exactly the headers given (engine.http always adds the key). */
async function raw(
  method: string,
  route: string,
  opts: { headers?: Record<string, string>; body?: string; base?: string } = {},
) {
  const res = await fetch(`${opts.base ?? engine.apiUrl}${route}`, { method, headers: opts.headers, body: opts.body });
  const text = await res.text();
  let body: any;
  try {
    body = text ? JSON.parse(text) : undefined;
  } catch {
    body = text; // kept as text so a non-JSON error shows up in the assertion diff
  }
  return { status: res.status, contentType: res.headers.get('content-type') ?? '', body };
}

/** The error shape every failure must have: `{error: {code, message}}`. */
function expectError(res: { status: number; body: any }, status: number, messagePattern?: RegExp) {
  expect(res.status).toBe(status);
  expect(res.body).toEqual({
    error: expect.objectContaining({ code: expect.any(String), message: expect.any(String) }),
  });
  if (messagePattern) expect(res.body.error.message).toMatch(messagePattern);
}

/** Rows a rejected request could have written. */
async function counts() {
  const p = engine.db.prisma;
  const [goals, events, inbound, approvals] = await Promise.all([
    p.goal.count(),
    p.event.count(),
    p.inboundEvent.count(),
    p.approval.count(),
  ]);
  return { goals, events, inbound, approvals };
}

/** A port nothing listens on: bind an ephemeral one, then release it. */
async function closedPort(): Promise<number> {
  const s: Server = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const { port } = s.address() as AddressInfo;
  await new Promise((r) => s.close(r));
  return port;
}

/** Workflow executions whose id is exactly goal-<goalId>, as Temporal's visibility store sees them. */
async function executionsOf(goalId: string) {
  const found = [];
  for await (const wf of engine.temporal.client.workflow.list({ query: `WorkflowId = "goal-${goalId}"` }))
    found.push(wf);
  return found;
}

/** Waits until no goal in the database is still planning or running, so counts stop moving. */
async function settle(timeoutMs = 60_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const busy = await engine.db.prisma.goal.findMany({
      where: { status: { in: ['planning', 'running'] } },
      select: { id: true, status: true },
    });
    if (busy.length === 0) return;
    if (Date.now() > deadline) throw new Error(`goals still busy: ${JSON.stringify(busy)}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

async function pendingApproval(goalId: string) {
  const goal = await engine.waitForGoal(goalId, (g) => g.status === 'awaiting_approval');
  expect(goal.approvals).toHaveLength(1);
  return goal.approvals[0];
}

const uniq = () => randomBytes(4).toString('hex');

describe('auth', () => {
  test('/v1 routes without Authorization answer 401 JSON and do nothing', async () => {
    const before = await counts();
    for (const [method, route] of [
      ['GET', '/v1/goals'],
      ['GET', '/v1/metrics'],
      ['GET', '/v1/approvals'],
      ['GET', '/v1/no-such-route'], // the key guards all of /v1, even what does not exist
    ]) {
      const res = await raw(method, route);
      expectError(res, 401);
      expect(res.body.error.code).toBe('unauthorized');
      expect(res.contentType).toMatch(/application\/json/);
    }
    // A perfectly valid goal without a key is refused before anything is stored.
    const post = await raw('POST', '/v1/goals', {
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ title: 'Sneaky' }),
    });
    expectError(post, 401);
    expect(await counts()).toEqual(before);
  });

  test('a wrong key, a key of the right length, and a non-Bearer scheme are all 401', async () => {
    const sameLength = engine.apiKey.replace(/./g, (c) => (c === 'a' ? 'b' : 'a'));
    expect(sameLength).not.toBe(engine.apiKey);
    for (const authorization of [
      'Bearer wrong',
      `Bearer ${sameLength}`,
      `Bearer ${engine.apiKey}x`,
      `Basic ${engine.apiKey}`,
      engine.apiKey,
    ]) {
      expectError(await raw('GET', '/v1/goals', { headers: { authorization } }), 401);
    }
    // And the right key works, so the 401s above are about the key.
    expect((await raw('GET', '/v1/goals', { headers: { authorization: `Bearer ${engine.apiKey}` } })).status).toBe(200);
  });

  test('/healthz needs no key and reports both dependencies up', async () => {
    const res = await raw('GET', '/healthz');
    expect(res).toMatchObject({ status: 200, body: { status: 'ok', postgres: 'up', temporal: 'up' } });
  });
});

describe('healthz when a dependency is down', () => {
  test.each([
    ['Postgres on a closed port', async () => `postgresql://postgres@127.0.0.1:${await closedPort()}/keel`],
    ['a database that does not exist', async () => databaseUrlFor(`keel_missing_${uniq()}`)],
  ])('%s: 503 naming postgres, temporal still up', async (_name, url) => {
    const prisma = createPrisma(await url(), { max: 1 });
    const api = await engine.serveApi({ prisma });
    try {
      const res = await raw('GET', '/healthz', { base: api.url });
      expect(res.status).toBe(503);
      expect(res.body).toMatchObject({ status: 'degraded', temporal: 'up' });
      expect(res.body.postgres).toMatch(/^down/);
    } finally {
      await api.close();
      await prisma.$disconnect().catch(() => undefined);
    }
  });

  test('Temporal unreachable: 503 naming temporal, postgres still up, and the probe does not linger', async () => {
    // The client's default retry interceptor (as in production) with a spy inside it that sees every
    // attempt's final gRPC status, so the test can tell when the probe's call has really ended.
    const attempts: { at: number; code?: grpc.status }[] = [];
    const spy: grpc.Interceptor = (options, nextCall) =>
      new grpc.InterceptingCall(nextCall(options), {
        start(metadata, _listener, next) {
          const attempt: { at: number; code?: grpc.status } = { at: Date.now() };
          attempts.push(attempt);
          next(metadata, { onReceiveStatus: (status, done) => ((attempt.code = status.code), done(status)) });
        },
      });
    // lazy: connecting eagerly would throw here instead of inside the health check.
    const connection = Connection.lazy({
      address: `127.0.0.1:${await closedPort()}`,
      interceptors: [makeGrpcRetryInterceptor(defaultGrpcRetryOptions()), spy],
    });
    const api = await engine.serveApi({ client: new Client({ connection }) });
    try {
      const started = Date.now();
      const res = await raw('GET', '/healthz', { base: api.url });
      expect(res.status).toBe(503);
      expect(res.body).toMatchObject({ status: 'degraded', postgres: 'up' });
      expect(res.body.temporal).toMatch(/^down/);
      expect(Date.now() - started).toBeLessThan(5_000);
      expect(attempts.length).toBeGreaterThan(0);
      // The probe's call ends at its deadline instead of retrying in the background for ~20 s
      // (ten attempts with backoff): some attempt ends DEADLINE_EXCEEDED, which is not retried.
      const deadline = Date.now() + 10_000;
      while (!attempts.some((a) => a.code === grpc.status.DEADLINE_EXCEEDED) && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 100));
      }
      expect(attempts.map((a) => a.code)).toContain(grpc.status.DEADLINE_EXCEEDED);
      const count = attempts.length;
      await new Promise((r) => setTimeout(r, 500));
      expect(attempts).toHaveLength(count); // and nothing retries after that
    } finally {
      await api.close();
      // Closing is safe only once no retry is pending: the SDK's retry timer throws into a closed channel.
      await connection.close().catch(() => undefined);
    }
  });
});

describe('POST /v1/goals validation', () => {
  test('each bad request is a 400 naming the field, and nothing is stored', async () => {
    const before = await counts();
    const cases: [unknown, RegExp][] = [
      [{ description: 'no title' }, /title/],
      [{ title: '   ' }, /title/], // trimmed to empty
      [{ title: 'Fine', budgetUsd: 'lots' }, /budgetUsd/],
      [{ title: 'Fine', budgetUsd: -1 }, /budgetUsd/],
      [{ title: 'Fine', input: 'not an object' }, /input/],
      [{ title: 'Fine', kind: 'Not A Word' }, /kind/],
      [{ title: 'Fine', requestId: 42 }, /requestId/],
      [{ title: 'Fine', priority: 'high' }, /priority/], // unknown field
      [[{ title: 'an array' }], /body/],
    ];
    for (const [body, field] of cases) {
      const res = await engine.http('POST', '/v1/goals', body);
      expectError(res, 400, field);
      expect(res.body.error.code).toBe('bad_request');
    }
    expect(await counts()).toEqual(before);
  });

  test('malformed JSON is a 400 JSON error', async () => {
    const before = await counts();
    const res = await raw('POST', '/v1/goals', {
      headers: { authorization: `Bearer ${engine.apiKey}`, 'content-type': 'application/json' },
      body: '{"title": "half a goal",',
    });
    expectError(res, 400, /JSON/);
    expect(res.contentType).toMatch(/application\/json/);
    expect(await counts()).toEqual(before);
  });

  test('a body over the 256kb limit is a 413 JSON error', async () => {
    const before = await counts();
    const res = await raw('POST', '/v1/goals', {
      headers: { authorization: `Bearer ${engine.apiKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({ title: 'Huge', input: { text: 'x'.repeat(300 * 1024) } }),
    });
    expectError(res, 413);
    expect(res.contentType).toMatch(/application\/json/);
    expect(await counts()).toEqual(before);
    // Just under the limit is accepted: the limit is the limit, not something smaller.
    const fits = await engine.http('POST', '/v1/goals', {
      title: 'Big but fine',
      kind: 'note',
      input: { text: 'y'.repeat(200 * 1024) },
    });
    expect(fits.status).toBe(202);
    await engine.waitForGoal(fits.body.goalId, (g) => g.status === 'completed');
  });
});

describe('requestId idempotency', () => {
  test('the same requestId twice starts one goal and one workflow', async () => {
    const requestId = `req-${uniq()}`;
    const body = { title: `Summarize the week ${requestId}`, kind: 'note', input: { text: 'We shipped.' }, requestId };
    const first = await engine.http('POST', '/v1/goals', body);
    const second = await engine.http('POST', '/v1/goals', body);
    expect(first.status).toBe(202);
    expect(second.status).toBe(202);
    expect(first.body).toMatchObject({ goalId: expect.any(String), workflowId: `goal-${first.body.goalId}` });
    expect(second.body.goalId).toBe(first.body.goalId);
    expect(await engine.db.prisma.goal.count({ where: { requestId } })).toBe(1);
    expect(await engine.db.prisma.goal.count({ where: { title: body.title } })).toBe(1);
    await engine.waitForGoal(first.body.goalId, (g) => g.status === 'completed');
    // After the goal finished, the same requestId still answers with that goal and starts nothing new.
    const third = await engine.http('POST', '/v1/goals', body);
    expect(third).toMatchObject({ status: 202, body: { goalId: first.body.goalId, status: 'completed' } });
    expect(await executionsOf(first.body.goalId)).toHaveLength(1);
  });

  test('five concurrent requests with one requestId make one goal row and one workflow execution', async () => {
    const requestId = `req-${uniq()}`;
    const body = { title: `Concurrent note ${requestId}`, kind: 'note', input: { text: 'Five at once.' }, requestId };
    const before = await engine.db.prisma.goal.count();
    const answers = await Promise.all(Array.from({ length: 5 }, () => engine.http('POST', '/v1/goals', body)));
    expect(answers.map((a) => a.status)).toEqual([202, 202, 202, 202, 202]);
    const ids = new Set(answers.map((a) => a.body.goalId));
    expect(ids.size).toBe(1);
    const [goalId] = [...ids];
    expect(await engine.db.prisma.goal.count()).toBe(before + 1);
    expect(await engine.db.prisma.goal.count({ where: { requestId } })).toBe(1);
    // Only the winner wrote goal.created.
    expect(await engine.db.prisma.event.count({ where: { goalId, type: 'goal.created' } })).toBe(1);
    await engine.waitForGoal(goalId, (g) => g.status === 'completed');
    // The row says completed before the run closes (it still writes the goal's memory), and
    // visibility trails the run: wait for the result, then for the list to show it closed.
    await engine.temporal.client.workflow.getHandle(`goal-${goalId}`).result();
    let runs = await executionsOf(goalId);
    for (let i = 0; i < 50 && runs[0]?.status.name !== 'COMPLETED'; i++) {
      await new Promise((r) => setTimeout(r, 100));
      runs = await executionsOf(goalId);
    }
    expect(runs).toHaveLength(1);
    expect(runs[0].status.name).toBe('COMPLETED');
    // And no stray workflow carries this title under some other id.
    const sameTitle = [];
    for await (const wf of engine.temporal.client.workflow.list({ query: `WorkflowType = "goalWorkflow"` })) {
      if (wf.memo?.title === body.title) sameTitle.push(wf.workflowId);
    }
    expect(sameTitle).toEqual([`goal-${goalId}`]);
  });
});

describe('GET /v1/goals', () => {
  test('filters by status, honours limit, and returns newest first', async () => {
    const made: string[] = [];
    for (const n of [1, 2]) {
      const res = await engine.http('POST', '/v1/goals', {
        title: `List me ${n} ${uniq()}`,
        kind: 'note',
        input: { text: `Note ${n}.` },
      });
      expect(res.status).toBe(202);
      made.push(res.body.goalId);
      await engine.waitForGoal(res.body.goalId, (g) => g.status === 'completed');
    }
    // One goal left waiting, so the filter has something to leave out.
    const waiting = await engine.http('POST', '/v1/goals', { title: `Email lister-${uniq()}@example.com a hello` });
    await pendingApproval(waiting.body.goalId);

    const completedInDb = await engine.db.prisma.goal.findMany({
      where: { status: 'completed' },
      orderBy: { createdAt: 'desc' },
    });
    const one = await engine.http('GET', '/v1/goals?status=completed&limit=1');
    expect(one.status).toBe(200);
    expect(one.body.goals).toHaveLength(1);
    expect(one.body.goals[0]).toMatchObject({ goalId: made[1], status: 'completed' });
    expect(one.body.goals[0].goalId).toBe(completedInDb[0].id);

    const all = await engine.http('GET', '/v1/goals?status=completed');
    expect(all.body.goals.map((g: any) => g.goalId)).toEqual(completedInDb.map((g) => g.id));
    expect(all.body.goals.every((g: any) => g.status === 'completed')).toBe(true);
    expect(all.body.goals.map((g: any) => g.goalId)).not.toContain(waiting.body.goalId);

    const awaiting = await engine.http('GET', '/v1/goals?status=awaiting_approval');
    expect(awaiting.body.goals.map((g: any) => g.goalId)).toContain(waiting.body.goalId);
    expect(awaiting.body.goals.every((g: any) => g.status === 'awaiting_approval')).toBe(true);

    // Don't leave it waiting for the rest of the file.
    await engine.http('POST', `/v1/goals/${waiting.body.goalId}/cancel`, {});
    await engine.waitForGoal(waiting.body.goalId, (g) => g.status === 'cancelled');
  });

  test('a bad status or limit is a 400 naming the parameter', async () => {
    expectError(await engine.http('GET', '/v1/goals?status=done'), 400, /status/);
    expectError(await engine.http('GET', '/v1/goals?limit=0'), 400, /limit/);
    expectError(await engine.http('GET', '/v1/goals?limit=many'), 400, /limit/);
  });

  test('an unknown goal is a 404 on every goal route', async () => {
    const id = randomUUID();
    for (const route of [`/v1/goals/${id}`, `/v1/goals/${id}/explain`, `/v1/goals/${id}/events`]) {
      const res = await engine.http('GET', route);
      expectError(res, 404, new RegExp(id));
      expect(res.body.error.code).toBe('not_found');
    }
    expectError(await engine.http('POST', `/v1/goals/${id}/cancel`, {}), 404);
  });
});

describe('GET /v1/goals/:id/explain', () => {
  test('a finished email goal explains every action, and the send lists its committed side effect', async () => {
    const to = `explain-${uniq()}@example.com`;
    const { body } = await engine.http('POST', '/v1/goals', { title: `Email ${to} a thank-you note` });
    const goalId = body.goalId;
    const approval = await pendingApproval(goalId);
    const decided = await engine.http('POST', `/v1/approvals/${approval.approvalId}/decision`, {
      decision: 'approve',
      comment: 'ship it',
    });
    expect(decided).toEqual({ status: 200, body: { approvalId: approval.approvalId, status: 'approved' } });
    const done = await engine.waitForGoal(goalId, (g) => g.status === 'completed');

    const res = await engine.http('GET', `/v1/goals/${goalId}/explain`);
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ goalId, status: 'completed', cost: { usd: expect.any(Number) } });
    expect(res.body.plans.map((p: any) => p.type)).toContain('plan.accepted');
    const actions: any[] = res.body.actions;
    // One action per step of the plan the goal ran.
    expect(actions.map((a) => a.stepId)).toEqual(done.plan.steps.map((s: any) => s.id));
    for (const a of actions) {
      expect(a).toEqual(
        expect.objectContaining({
          what: expect.stringContaining(': '),
          why: expect.any(String),
          inputs: expect.any(Object),
          model: expect.any(String),
          promptHash: expect.stringMatching(/^[0-9a-f]{64}$/),
          memoryUsed: expect.any(Array),
          approvals: expect.any(Array),
          cost: { usd: expect.any(Number) },
        }),
      );
      expect(a.why.length).toBeGreaterThan(0);
    }

    const send = actions.find((a) => a.what.startsWith('email.send'));
    expect(send).toBeDefined();
    expect(send.inputs).toMatchObject({ to });
    expect(send.approvals).toEqual([
      expect.objectContaining({
        approvalId: approval.approvalId,
        status: 'approved',
        decision: 'approve',
        comment: 'ship it',
        actor: 'operator:test',
        channel: 'api',
        // What the operator saw, and that the decision was on exactly that.
        shownHash: approval.shownHash,
        decidedHash: approval.shownHash,
        shown: expect.objectContaining({ summary: approval.summary, tool: 'email.send' }),
      }),
    ]);
    // The memories an action used are named with their text.
    const recall = actions.find((a) => a.what.startsWith('memory.recall'));
    expect(recall.memory.map((m: any) => m.id)).toEqual(recall.memoryUsed);
    for (const m of recall.memory.filter((x: any) => !/^(contact|goal):/.test(x.id)))
      expect(typeof m.text).toBe('string');
    expect(send.sideEffects).toEqual([
      expect.objectContaining({ kind: expect.any(String), status: 'committed', idempotencyKey: `goal-${goalId}:send` }),
    ]);
    // Only the send needed a person; the other actions list no approvals and no side effects.
    for (const a of actions.filter((x) => x !== send)) {
      expect(a.approvals).toEqual([]);
      expect(a.sideEffects).toEqual([]);
    }
    // The explanation agrees with the database on the side effect.
    const effect = await engine.db.prisma.sideEffect.findUniqueOrThrow({
      where: { idempotencyKey: `goal-${goalId}:send` },
    });
    expect(effect).toMatchObject({ goalId, stepId: 'send', status: 'committed' });
    await engine.smtp.waitFor(1);
    expect(engine.smtp.messages.filter((m) => m.to.includes(to))).toHaveLength(1);
  });
});

describe('POST /v1/events', () => {
  test('the same source+externalId is stored once; a new externalId is a new event', async () => {
    const ext = `msg-${uniq()}`;
    const event = {
      source: 'gmail',
      type: 'email.received',
      externalId: ext,
      payload: { from: 'ada@example.com', subject: 'Hi' },
    };
    const first = await engine.http('POST', '/v1/events', event);
    expect(first).toMatchObject({ status: 201, body: { id: expect.any(String), duplicate: false } });
    const again = await engine.http('POST', '/v1/events', { ...event, payload: { changed: true } });
    expect(again).toMatchObject({ status: 200, body: { id: first.body.id, duplicate: true } });
    const stored = await engine.db.prisma.inboundEvent.findMany({ where: { source: 'gmail', externalId: ext } });
    expect(stored).toHaveLength(1);
    expect(stored[0].payload).toEqual(event.payload); // the first one wins, the duplicate changed nothing

    // Same externalId from another source is a different event; so is another externalId.
    const otherSource = await engine.http('POST', '/v1/events', { ...event, source: 'slack' });
    const otherId = await engine.http('POST', '/v1/events', { ...event, externalId: `${ext}-2` });
    expect(otherSource.status).toBe(201);
    expect(otherId.status).toBe(201);
    expect(new Set([first.body.id, otherSource.body.id, otherId.body.id]).size).toBe(3);
    // One audit event per stored inbound event, none for the duplicate.
    const audit = await engine.db.prisma.event.findMany({ where: { type: 'inbound.received' } });
    expect(audit.filter((e) => (e.data as any).externalId === ext)).toHaveLength(2);
  });

  test('five concurrent duplicates make one row, one 201 and four 200s with the same id', async () => {
    const event = { source: 'webhook', type: 'ping', externalId: `race-${uniq()}`, payload: { n: 1 } };
    const answers = await Promise.all(Array.from({ length: 5 }, () => engine.http('POST', '/v1/events', event)));
    expect(answers.map((a) => a.status).sort()).toEqual([200, 200, 200, 200, 201]);
    expect(new Set(answers.map((a) => a.body.id)).size).toBe(1);
    expect(
      await engine.db.prisma.inboundEvent.count({ where: { source: event.source, externalId: event.externalId } }),
    ).toBe(1);
  });

  test('a bad body is a 400 naming the field, and nothing is stored', async () => {
    const before = await counts();
    const good = { source: 'gmail', type: 'email.received', externalId: `bad-${uniq()}`, payload: {} };
    const cases: [unknown, RegExp][] = [
      [{ ...good, source: undefined }, /source/],
      [{ ...good, externalId: '' }, /externalId/],
      [{ ...good, type: 7 }, /type/],
      [{ ...good, payload: 'text' }, /payload/],
      [{ ...good, extra: 1 }, /extra/],
    ];
    for (const [body, field] of cases) expectError(await engine.http('POST', '/v1/events', body), 400, field);
    expect(await counts()).toEqual(before);
  });
});

describe('POST /v1/approvals/:id/decision', () => {
  test('404 unknown, 400 for a bad decision or edits with reject, 409 for a second decision', async () => {
    expectError(await engine.http('POST', `/v1/approvals/${randomUUID()}/decision`, { decision: 'approve' }), 404);

    const { body } = await engine.http('POST', '/v1/goals', { title: `Email decider-${uniq()}@example.com a hello` });
    const approval = await pendingApproval(body.goalId);
    const url = `/v1/approvals/${approval.approvalId}/decision`;
    const before = await counts();

    expectError(await engine.http('POST', url, { decision: 'maybe' }), 400, /decision/);
    expectError(await engine.http('POST', url, {}), 400, /decision/);
    expectError(await engine.http('POST', url, { decision: 'reject', edits: { body: 'New text' } }), 400, /edits/);
    expectError(await engine.http('POST', url, { decision: 'approve', edits: {} }), 400, /edits/);
    expectError(await engine.http('POST', url, { decision: 'approve', mood: 'good' }), 400, /mood/);
    // The email tool's spec lets the operator change subject and body, nothing else: not the recipient.
    expectError(
      await engine.http('POST', url, { decision: 'approve', edits: { to: 'someone-else@example.com' } }),
      400,
      /edits.*to/,
    );
    expectError(
      await engine.http('POST', url, { decision: 'approve', edits: { subject: 'x'.repeat(999) } }),
      400,
      /edits\.subject/,
    );
    // None of that decided anything.
    expect(await counts()).toEqual(before);
    expect(await engine.db.prisma.approval.findUniqueOrThrow({ where: { id: approval.approvalId } })).toMatchObject({
      status: 'pending',
      decidedAt: null,
    });

    const first = await engine.http('POST', url, { decision: 'reject', comment: 'not now' });
    expect(first).toEqual({ status: 200, body: { approvalId: approval.approvalId, status: 'rejected' } });
    const second = await engine.http('POST', url, { decision: 'approve' });
    expectError(second, 409, /already rejected/);
    expect(second.body.error.code).toBe('conflict');
    // The first decision stands.
    expect(await engine.db.prisma.approval.findUniqueOrThrow({ where: { id: approval.approvalId } })).toMatchObject({
      status: 'rejected',
      comment: 'not now',
    });
    // A rejection with a comment replans once (a new draft answering it waits for a new decision); nothing was sent.
    const replanned = await engine.waitForGoal(
      body.goalId,
      (g) => g.plan.version === 2 && g.approvals.some((a: any) => a.status === 'pending'),
    );
    expect(replanned.planChurn).toBe(1);
    expect(engine.smtp.messages.filter((m) => m.to.some((t) => t.startsWith('decider-')))).toHaveLength(0);
    await engine.http('POST', `/v1/goals/${body.goalId}/cancel`, { reason: 'done testing' });
    await engine.waitForGoal(body.goalId, (g) => g.status === 'cancelled');
  });
});

describe('GET /v1/metrics', () => {
  test('goal counts match the database and the ratios follow from what was done', async () => {
    await settle();
    const before = (await engine.http('GET', '/v1/metrics')).body;

    // One goal that completes with no person involved, one email a person rejects.
    const note = await engine.http('POST', '/v1/goals', {
      title: `Metrics note ${uniq()}`,
      kind: 'note',
      input: { text: 'Counted.' },
    });
    const email = await engine.http('POST', '/v1/goals', { title: `Email metrics-${uniq()}@example.com a hello` });
    const approval = await pendingApproval(email.body.goalId);
    expect(
      (await engine.http('POST', `/v1/approvals/${approval.approvalId}/decision`, { decision: 'reject' })).status,
    ).toBe(200);
    const noteDone = await engine.waitForGoal(note.body.goalId, (g) => g.status === 'completed');
    const emailDone = await engine.waitForGoal(email.body.goalId, (g) => g.status === 'failed');
    await settle();

    const res = await engine.http('GET', '/v1/metrics');
    expect(res.status).toBe(200);
    const m = res.body;

    // Goals by status: exactly what the database holds, every status named.
    const grouped = await engine.db.prisma.goal.groupBy({ by: ['status'], _count: { _all: true } });
    const expected: Record<string, number> = {
      planning: 0,
      running: 0,
      awaiting_approval: 0,
      completed: 0,
      failed: 0,
      cancelled: 0,
    };
    for (const g of grouped) expected[g.status] = g._count._all;
    expect(m.goalsByStatus).toEqual(expected);
    expect(m.goals).toBe(await engine.db.prisma.goal.count());
    expect(m.goals - before.goals).toBe(2);
    expect(m.goalsByStatus.completed - before.goalsByStatus.completed).toBe(1);
    expect(m.goalsByStatus.failed - before.goalsByStatus.failed).toBe(1);

    // Human intervention: one more decision (the reject); actions grew by the steps these two goals ran.
    const ran = (g: any) =>
      g.plan.steps.filter((s: any) => s.status === 'completed' || s.status === 'compensated').length;
    expect(m.humanInterventionRatio.decisions - before.humanInterventionRatio.decisions).toBe(1);
    expect(m.humanInterventionRatio.actions - before.humanInterventionRatio.actions).toBe(
      ran(noteDone) + ran(emailDone),
    );
    expect(m.humanInterventionRatio.decisions).toBeGreaterThanOrEqual(3); // explain approve, decision reject, this reject
    expect(m.humanInterventionRatio.ratio).toBeCloseTo(
      m.humanInterventionRatio.decisions / m.humanInterventionRatio.actions,
      10,
    );
    expect(m.humanInterventionRatio.ratio).toBeGreaterThan(0);
    expect(m.humanInterventionRatio.ratio).toBeLessThan(1);

    // Cost per committed outcome: total goal cost over completed goals.
    const cost = await engine.db.prisma.goal.aggregate({ _sum: { costUsd: true } });
    expect(m.costPerCommittedOutcome.usd).toBeCloseTo(cost._sum.costUsd ?? 0, 10);
    expect(m.costPerCommittedOutcome.committedOutcomes).toBe(expected.completed);
    expect(m.costPerCommittedOutcome.perOutcome).toBeCloseTo(m.costPerCommittedOutcome.usd / expected.completed, 10);

    // Plan churn and context size are there and are numbers.
    expect(m.planChurn).toEqual({ replans: expect.any(Number), perGoal: expect.any(Number) });
    expect(m.contextSize.maxChars).toBeGreaterThan(0); // every goal here recalled context
    expect(m.contextSize.avgChars).toBeLessThanOrEqual(m.contextSize.maxChars);
  });
});

describe('unknown routes', () => {
  test('are 404 JSON, inside and outside /v1', async () => {
    for (const [method, route] of [
      ['GET', '/nope'],
      ['GET', '/v1/nope'],
      ['DELETE', '/v1/goals'],
      ['PUT', '/healthz'],
    ]) {
      const res = await engine.http(method, route);
      expectError(res, 404, /no route/);
      expect(res.body.error.code).toBe('not_found');
    }
    const outside = await raw('GET', '/nope');
    expect(outside.status).toBe(404);
    expect(outside.contentType).toMatch(/application\/json/);
  });
});
