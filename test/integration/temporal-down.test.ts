/**
 * The API when Temporal is down, slow to return, or has lost a run (issue 7,
 * D5, D6, D7), with real parts: a second API whose Temporal client (built by
 * commands/temporal.ts, as api/main.ts builds it) reaches the dev server
 * through a TCP proxy the test closes and reopens, while the worker keeps its
 * own direct connection. Deadlines are 2 s here so the file runs quickly.
 */
import { randomBytes } from 'node:crypto';
import { createServer, connect, type Server, type Socket, type AddressInfo } from 'node:net';
import { Client } from '@temporalio/client';
import { temporalConnection } from '../../commands/temporal';
import { startEngine, type ServedApi, type TestEngine } from '../helpers/engine';

const DEADLINE_MS = 2_000;

let engine: TestEngine;
let proxy: TcpProxy;
let connection: ReturnType<typeof temporalConnection>;
let api: ServedApi;

/** A TCP proxy to the dev server that can play dead: `down()` refuses connections and cuts open ones. */
interface TcpProxy {
  address: string;
  down(): Promise<void>;
  up(): Promise<void>;
  close(): Promise<void>;
}

async function startProxy(target: string): Promise<TcpProxy> {
  const [host, port] = [target.slice(0, target.lastIndexOf(':')), Number(target.slice(target.lastIndexOf(':') + 1))];
  const sockets = new Set<Socket>();
  let server: Server | undefined;
  let listenPort = 0;
  const listen = async () => {
    const s = createServer((client) => {
      const upstream = connect(port, host === 'localhost' ? '127.0.0.1' : host);
      sockets.add(client).add(upstream);
      const drop = () => {
        client.destroy();
        upstream.destroy();
        sockets.delete(client);
        sockets.delete(upstream);
      };
      client.on('error', drop).on('close', drop);
      upstream.on('error', drop).on('close', drop);
      client.pipe(upstream).pipe(client);
    });
    await new Promise<void>((resolve, reject) => {
      s.once('error', reject);
      s.listen(listenPort, '127.0.0.1', () => resolve());
    });
    listenPort = (s.address() as AddressInfo).port;
    server = s;
  };
  const down = async () => {
    const s = server;
    server = undefined;
    for (const socket of sockets) socket.destroy();
    sockets.clear();
    if (s) await new Promise((r) => s.close(r));
  };
  await listen();
  return { address: `127.0.0.1:${listenPort}`, down, up: listen, close: down };
}

beforeAll(async () => {
  engine = await startEngine();
  await engine.startWorker();
  proxy = await startProxy(engine.temporal.address);
  connection = temporalConnection({ address: proxy.address });
  // The API as api/main.ts builds it, but reaching Temporal through the proxy and with a 2 s deadline.
  api = await engine.serveApi({
    client: new Client({ connection, namespace: 'default' }),
    temporalTimeoutMs: DEADLINE_MS,
  });
});
afterAll(async () => {
  await api?.close();
  await proxy?.close();
  // Its retries end by their call's deadline (commands/temporal.ts), so none fires into the closed channel.
  await connection?.close();
  await engine?.close();
});

const uniq = () => randomBytes(4).toString('hex');

/** Real HTTP to the proxied API, with the key, timed. */
async function call(method: string, route: string, body?: unknown, headers: Record<string, string> = {}) {
  const started = Date.now();
  const res = await fetch(`${api.url}${route}`, {
    method,
    headers: {
      authorization: `Bearer ${engine.apiKey}`,
      ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
      ...headers,
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : undefined, ms: Date.now() - started };
}

/** Email goals, started through the healthy API, each waiting at its approval. */
async function waitingGoals(n: number): Promise<{ goalId: string; approvalId: string }[]> {
  const started = await Promise.all(
    Array.from({ length: n }, () =>
      engine.http('POST', '/v1/goals', { title: `Email down-${uniq()}@example.com a hello` }),
    ),
  );
  expect(started.map((s) => s.status)).toEqual(started.map(() => 202));
  const waiting = [];
  for (const s of started) {
    const goal = await engine.waitForGoal(s.body.goalId, (g) => g.status === 'awaiting_approval', 120_000);
    waiting.push({ goalId: goal.goalId, approvalId: goal.approvals[0].approvalId });
  }
  return waiting;
}

/** "Temporal did not answer within 2000 ms (14 UNAVAILABLE: ...)": the deadline and the transport's own cause. */
const NAMED_CAUSE = new RegExp(`Temporal did not answer within ${DEADLINE_MS} ms \\(14 UNAVAILABLE: .+\\)`);

async function decisionEvents(approvalIds: string[]) {
  const events = await engine.db.prisma.event.findMany({
    where: { type: { in: ['approval.approved', 'approval.rejected'] } },
  });
  return events.filter((e) => approvalIds.includes((e.data as { approvalId: string }).approvalId));
}

let waiting: { goalId: string; approvalId: string }[] = [];

test('D5: 20 concurrent decisions with Temporal down all answer 503 naming the cause, and reads stay fast', async () => {
  waiting = await waitingGoals(20);
  // Healthy first: the proxied API reaches Temporal (so the 503s below are about Temporal being down).
  expect((await call('GET', '/healthz')).body).toMatchObject({ status: 'ok', temporal: 'up' });
  await proxy.down();

  const started = Date.now();
  const decisions = Promise.all(
    waiting.map((w) => call('POST', `/v1/approvals/${w.approvalId}/decision`, { decision: 'approve' })),
  );
  // While all 20 wait on Temporal, unrelated reads answer at once: no pooled connection is held meanwhile.
  await new Promise((r) => setTimeout(r, 300));
  const reads = [];
  for (let i = 0; i < 3; i++) {
    reads.push(await call('GET', '/v1/goals?limit=50'));
    reads.push(await call('GET', `/v1/goals/${waiting[i].goalId}`));
  }
  const answers = await decisions;
  const elapsed = Date.now() - started;
  console.log(
    `[temporal-down] 20 concurrent decisions with Temporal down: all answered in ${elapsed} ms; ` +
      `reads during them took ${reads.map((r) => r.ms).join(', ')} ms`,
  );

  for (const r of reads) expect(r.status).toBe(200);
  expect(Math.max(...reads.map((r) => r.ms))).toBeLessThan(500);
  expect(answers.map((a) => a.status)).toEqual(answers.map(() => 503));
  for (const a of answers) {
    expect(a.body.error.code).toBe('unavailable');
    expect(a.body.error.message).toMatch(NAMED_CAUSE);
  }
  // Each answered by its deadline (plus scheduling slack on a shared 2-core machine), not after ~20 s of retries.
  expect(Math.max(...answers.map((a) => a.ms))).toBeLessThan(DEADLINE_MS + 1_500);
  expect(elapsed).toBeLessThan(DEADLINE_MS + 2_000);
  // Nothing was decided: every approval still pending, no decision event.
  const rows = await engine.db.prisma.approval.findMany({ where: { id: { in: waiting.map((w) => w.approvalId) } } });
  expect(rows.map((r) => r.status)).toEqual(rows.map(() => 'pending'));
  expect(await decisionEvents(waiting.map((w) => w.approvalId))).toEqual([]);
});

test('D6: start, decide, cancel and a batch each answer 503 within one deadline; the API accepts again within seconds of Temporal returning', async () => {
  expect(waiting).toHaveLength(20); // the goals of the D5 test, still waiting; Temporal still down

  // Start: the goal is stored, Temporal does not take it, the answer says so and how to retry.
  const requestId = `down-${uniq()}`;
  const start = await call('POST', '/v1/goals', { title: `Note while down ${requestId}`, kind: 'note', requestId });
  expect(start.status).toBe(503);
  expect(start.body.error.message).toMatch(NAMED_CAUSE);
  expect(start.body.error.message).toMatch(/stored but not started \(retry with the same requestId/);
  expect(start.ms).toBeLessThan(DEADLINE_MS + 1_500);
  const stored = await engine.db.prisma.goal.findUniqueOrThrow({ where: { requestId } });
  expect(stored.status).toBe('planning');
  expect(start.body.error.details).toEqual({ goalId: stored.id });

  // Cancel: 503, and the goal is not marked as cancelling.
  const cancel = await call('POST', `/v1/goals/${waiting[0].goalId}/cancel`, { reason: 'while down' });
  expect(cancel.status).toBe(503);
  expect(cancel.body.error.message).toMatch(NAMED_CAUSE);
  expect(cancel.ms).toBeLessThan(DEADLINE_MS + 1_500);
  expect(
    await engine.db.prisma.event.count({ where: { goalId: waiting[0].goalId, type: 'goal.cancel_requested' } }),
  ).toBe(0);

  // A batch of 4: the items run side by side, so the batch takes about one deadline, not four.
  const batch = await call('POST', '/v1/approvals/decisions', {
    decisions: waiting.slice(0, 4).map((w) => ({ approvalId: w.approvalId, decision: 'approve' })),
  });
  console.log(`[temporal-down] batch of 4 decisions with Temporal down answered in ${batch.ms} ms`);
  expect(batch.status).toBe(200);
  expect(batch.body.results).toHaveLength(4);
  for (const [i, r] of batch.body.results.entries()) {
    expect(r).toMatchObject({ approvalId: waiting[i].approvalId, status: 'error', error: { code: 'unavailable' } });
    expect(r.error.message).toMatch(NAMED_CAUSE);
  }
  expect(batch.ms).toBeLessThan(DEADLINE_MS * 2);

  // A batch larger than the eight in flight: once Temporal is found unreachable, the rest are not sent and say so,
  // so even 16 take about one deadline.
  const big = await call('POST', '/v1/approvals/decisions', {
    decisions: waiting.slice(0, 16).map((w) => ({ approvalId: w.approvalId, decision: 'reject' })),
  });
  console.log(`[temporal-down] batch of 16 decisions with Temporal down answered in ${big.ms} ms`);
  expect(big.body.results.map((r: any) => r.error?.code)).toEqual(Array(16).fill('unavailable'));
  expect(big.body.results.slice(0, 8).every((r: any) => NAMED_CAUSE.test(r.error.message))).toBe(true);
  for (const r of big.body.results.slice(8)) expect(r.error.message).toMatch(/^not sent, Temporal was unavailable/);
  expect(big.ms).toBeLessThan(DEADLINE_MS * 2);

  // Temporal returns: the API accepts again within seconds. gRPC's own reconnect backoff grows by 1.6x per
  // failed attempt (1 s, 1.6 s, ... up to 120 s): after ~30 s down its next attempt can be 15 s away, which is
  // what kept the API answering 503 long after Temporal was back. commands/temporal.ts caps it at 1 s.
  // Traffic keeps arriving meanwhile (health probes), so the channel keeps failing and backing off.
  const outage = Date.now();
  while (Date.now() - outage < 20_000) {
    expect((await call('GET', '/healthz')).status).toBe(503);
    await new Promise((r) => setTimeout(r, 250));
  }
  await proxy.up();
  const back = Date.now();
  let first: Awaited<ReturnType<typeof call>> | undefined;
  while (Date.now() - back < 15_000) {
    // One Idempotency-Key for every retry: an attempt that landed after its 503 is answered, not refused.
    first = await call(
      'POST',
      `/v1/approvals/${waiting[0].approvalId}/decision`,
      { decision: 'approve' },
      { 'idempotency-key': `recover-${waiting[0].approvalId}` },
    );
    if (first.status !== 503) break;
  }
  const recovered = Date.now() - back;
  console.log(`[temporal-down] first decision accepted ${recovered} ms after Temporal returned`);
  expect(first).toMatchObject({ status: 200, body: { approvalId: waiting[0].approvalId, status: 'approved' } });
  expect(recovered).toBeLessThan(3_000);
  // 200 means stored: the workflow recorded it before the update answered.
  expect(await engine.db.prisma.approval.findUniqueOrThrow({ where: { id: waiting[0].approvalId } })).toMatchObject({
    status: 'approved',
    actor: 'operator:test',
  });

  // The rest go through as one batch now, eight at a time, each stored once. On this shared 2-core machine an
  // item can miss the 2 s deadline while the worker is busy: its 503 says to retry, and the retry of the same
  // decision (same idempotency key) is the same update (Temporal answers it once), so the batch is sent again for
  // those items only.
  const rest = waiting
    .slice(1)
    .map((w) => ({ approvalId: w.approvalId, decision: 'reject', idempotencyKey: `after-${w.approvalId}` }));
  let answers: any[] = (await call('POST', '/v1/approvals/decisions', { decisions: rest })).body.results;
  const missed = rest.filter((_, i) => answers[i].status === 'error');
  if (missed.length > 0) {
    console.log(
      `[temporal-down] retrying ${missed.length} decisions: ${JSON.stringify(answers.filter((a) => a.error))}`,
    );
    for (const a of answers.filter((x) => x.error)) expect(a.error.code).toBe('unavailable');
    const again = (await call('POST', '/v1/approvals/decisions', { decisions: missed })).body.results;
    answers = answers.map((a) => (a.status === 'error' ? again.find((x: any) => x.approvalId === a.approvalId) : a));
  }
  expect(answers).toEqual(rest.map((d) => ({ approvalId: d.approvalId, status: 'rejected' })));
  const events = await decisionEvents(waiting.map((w) => w.approvalId));
  expect(events).toHaveLength(20); // exactly one decision event per approval: one writer

  // The goal stored while Temporal was down starts on retry with its requestId, and only once.
  const retry = await call('POST', '/v1/goals', { title: `Note while down ${requestId}`, kind: 'note', requestId });
  expect(retry).toMatchObject({ status: 202, body: { goalId: stored.id } });
  await engine.waitForGoal(stored.id, (g) => g.status === 'completed');
}, 180_000);

test('D7: a decision on a goal whose workflow was terminated outside Keel is a 409, and the goal is reconciled to failed', async () => {
  const [w] = await waitingGoals(1);
  await engine.temporal.client.workflow.getHandle(`goal-${w.goalId}`).terminate('stopped in the Web UI');

  const res = await engine.http('POST', `/v1/approvals/${w.approvalId}/decision`, { decision: 'approve' });
  expect(res.status).toBe(409);
  expect(res.body.error.code).toBe('conflict');
  expect(res.body.error.message).toMatch(/TERMINATED/);
  expect(res.body.error.message).toMatch(/is now failed/);

  const goal = await engine.waitForGoal(w.goalId, (g) => g.status === 'failed', 5_000);
  expect(goal.error).toMatch(/ended outside Keel \(Temporal says TERMINATED\)/);
  expect(goal.approvals[0]).toMatchObject({ approvalId: w.approvalId, status: 'cancelled' });
  const events = (await engine.http('GET', `/v1/goals/${w.goalId}/events`)).body.events;
  const reconciled = events.filter((e: any) => e.type === 'goal.reconciled');
  expect(reconciled).toEqual([
    expect.objectContaining({
      actor: 'keel',
      data: { goalStatus: 'failed', temporalStatus: 'TERMINATED', error: goal.error },
    }),
  ]);
  expect(events.map((e: any) => e.type)).toContain('approval.cancelled');
  expect(events.map((e: any) => e.type)).not.toContain('approval.approved');

  // Deciding again is the plain conflict of a decided approval, and nothing is reconciled twice.
  const again = await engine.http('POST', `/v1/approvals/${w.approvalId}/decision`, { decision: 'reject' });
  expect(again.status).toBe(409);
  expect(again.body.error.message).toMatch(/already cancelled/);
  const after = (await engine.http('GET', `/v1/goals/${w.goalId}/events`)).body.events;
  expect(after.filter((e: any) => e.type === 'goal.reconciled')).toHaveLength(1);
  expect(await engine.db.prisma.sideEffect.count({ where: { goalId: w.goalId } })).toBe(0); // nothing was sent
});

test('D7: cancel reconciles too: a terminated run makes the goal failed (409), a run that never started makes it cancelled', async () => {
  const [w] = await waitingGoals(1);
  await engine.temporal.client.workflow.getHandle(`goal-${w.goalId}`).terminate('stopped with the CLI');
  const res = await engine.http('POST', `/v1/goals/${w.goalId}/cancel`, {});
  expect(res.status).toBe(409);
  expect(res.body.error.message).toMatch(/Temporal says TERMINATED.*is now failed/);
  const goal = await engine.waitForGoal(w.goalId, (g) => g.status === 'failed', 5_000);
  expect(goal.approvals[0].status).toBe('cancelled');

  // A goal stored while Temporal was down and never started: cancelling it ends it, with nothing to compensate.
  await proxy.down();
  const requestId = `never-${uniq()}`;
  const start = await call('POST', '/v1/goals', { title: `Never started ${requestId}`, kind: 'note', requestId });
  await proxy.up();
  expect(start.status).toBe(503);
  const goalId = start.body.error.details.goalId;
  const cancel = await engine.http('POST', `/v1/goals/${goalId}/cancel`, {});
  expect(cancel).toMatchObject({ status: 202, body: { goalId, status: 'cancelled' } });
  const events = (await engine.http('GET', `/v1/goals/${goalId}/events`)).body.events;
  expect(events.map((e: any) => e.type)).toEqual(['goal.created', 'goal.reconciled']);
  expect(events[1].data).toMatchObject({ goalStatus: 'cancelled', temporalStatus: 'NOT_FOUND' });
  // A cancelled goal is not started by a later retry with its requestId.
  const retry = await engine.http('POST', '/v1/goals', {
    title: `Never started ${requestId}`,
    kind: 'note',
    requestId,
  });
  expect(retry).toMatchObject({ status: 202, body: { goalId, status: 'cancelled' } });
  await expect(engine.temporal.client.workflow.getHandle(`goal-${goalId}`).describe()).rejects.toThrow(/not found/i);
});
