/**
 * Approvals bound to what the operator saw (issue 9, item 1): each approval
 * carries a snapshot (summary, proposal, rationale, why, provenance, risk,
 * cost so far) and its hash; a decision naming another hash, or arriving after
 * the expiry, is refused by the workflow's update validator with a 409 and
 * nothing is applied; the same Idempotency-Key again answers the first
 * result, while a second decision without a key (or with another) is a 409.
 * Real API over HTTP, dev server, PostgreSQL, SMTP.
 */
import { createHash } from 'node:crypto';
import { startEngine, type TestEngine } from '../helpers/engine';

let engine: TestEngine;

beforeAll(async () => {
  engine = await startEngine({ settings: { approvalTimeoutMs: 60_000, escalationTimeoutMs: 60_000 } });
  await engine.startWorker();
});
afterAll(async () => {
  await engine?.close();
});

async function pending(goalId: string) {
  const goal = await engine.waitForGoal(goalId, (g) => g.approvals.some((a: any) => a.status === 'pending'));
  return goal.approvals.find((a: any) => a.status === 'pending');
}

async function emailGoal(to: string) {
  const { body } = await engine.http('POST', '/v1/goals', { title: `Email ${to} about the launch`, input: { to } });
  return body.goalId as string;
}

const decisionEvents = (approvalId: string) =>
  engine.db.prisma.event.count({
    where: {
      type: { in: ['approval.approved', 'approval.rejected'] },
      data: { path: ['approvalId'], equals: approvalId },
    },
  });

test('an approval shows its proposal, rationale, why, provenance, risk and cost, and its hash is of exactly that', async () => {
  const goalId = await emailGoal('shown@example.com');
  const approval = await pending(goalId);
  expect(approval.shownHash).toMatch(/^[0-9a-f]{64}$/);
  expect(approval.shown).toMatchObject({
    summary: approval.summary,
    rationale: approval.rationale,
    tool: 'email.send',
    risk: 'external',
    costSoFarUsd: expect.any(Number),
    proposed: { to: 'shown@example.com', subject: expect.any(String), body: expect.stringContaining('Hi Shown') },
  });
  expect(approval.shown.proposed.why).toEqual(['email.send cannot be undone', 'first contact with shown@example.com']);
  // Provenance: the inputs, and the earlier steps with the memories they used.
  expect(approval.shown.provenance.steps.map((s: any) => s.stepId)).toEqual(['recall', 'draft']);
  expect(approval.shown.provenance.inputs.to).toBe('shown@example.com');
  expect(Array.isArray(approval.shown.provenance.memories)).toBe(true);
  // The hash is sha256 of the snapshot with its keys sorted: anyone can check what was signed off.
  const stable = (v: unknown): unknown =>
    Array.isArray(v)
      ? v.map(stable)
      : v && typeof v === 'object'
        ? Object.fromEntries(
            Object.keys(v as object)
              .sort()
              .map((k) => [k, stable((v as Record<string, unknown>)[k])]),
          )
        : v;
  expect(
    createHash('sha256')
      .update(JSON.stringify(stable(approval.shown)))
      .digest('hex'),
  ).toBe(approval.shownHash);
  await engine.http('POST', `/v1/approvals/${approval.approvalId}/decision`, { decision: 'reject' });
});

test('a decision naming another version is refused with a 409 and nothing is applied; the right one is taken', async () => {
  const goalId = await emailGoal('binding@example.com');
  const approval = await pending(goalId);
  const stale = createHash('sha256').update('what an older page showed').digest('hex');
  const refused = await engine.http('POST', `/v1/approvals/${approval.approvalId}/decision`, {
    decision: 'approve',
    shownHash: stale,
  });
  expect(refused.status).toBe(409);
  expect(refused.body.error.message).toContain('changed since it was shown');
  expect(await decisionEvents(approval.approvalId)).toBe(0);
  expect((await engine.db.prisma.approval.findUniqueOrThrow({ where: { id: approval.approvalId } })).status).toBe(
    'pending',
  );
  const bad = await engine.http('POST', `/v1/approvals/${approval.approvalId}/decision`, {
    decision: 'approve',
    shownHash: 'not-a-hash',
  });
  expect(bad.status).toBe(400);

  const taken = await engine.http('POST', `/v1/approvals/${approval.approvalId}/decision`, {
    decision: 'approve',
    shownHash: approval.shownHash,
  });
  expect(taken).toEqual({ status: 200, body: { approvalId: approval.approvalId, status: 'approved' } });
  await engine.waitForGoal(goalId, (g) => g.status === 'completed');
  const row = await engine.db.prisma.approval.findUniqueOrThrow({ where: { id: approval.approvalId } });
  expect(row).toMatchObject({ channel: 'api', decidedHash: approval.shownHash, actor: 'operator:test' });
});

test('the same Idempotency-Key is applied once and answers the first result; another key or none is a 409', async () => {
  const goalId = await emailGoal('idem@example.com');
  const approval = await pending(goalId);
  const url = `/v1/approvals/${approval.approvalId}/decision`;
  const key = { 'idempotency-key': 'click-1' };
  // Two at once with the same key (a double click), then the same again after it landed.
  const [a, b] = await Promise.all([
    engine.http('POST', url, { decision: 'approve' }, key),
    engine.http('POST', url, { decision: 'approve' }, key),
  ]);
  expect([a, b]).toEqual([
    { status: 200, body: { approvalId: approval.approvalId, status: 'approved' } },
    { status: 200, body: { approvalId: approval.approvalId, status: 'approved' } },
  ]);
  expect(await engine.http('POST', url, { decision: 'approve' }, key)).toEqual(a);
  // Another key, or none, is a second decision: refused.
  expect((await engine.http('POST', url, { decision: 'reject' }, { 'idempotency-key': 'click-2' })).status).toBe(409);
  expect((await engine.http('POST', url, { decision: 'approve' })).status).toBe(409);
  expect(await decisionEvents(approval.approvalId)).toBe(1);
  const done = await engine.waitForGoal(goalId, (g) => g.status === 'completed');
  expect(engine.smtp.messages.filter((m) => m.to.includes('idem@example.com'))).toHaveLength(1);
  expect(done.approvals[0]).toMatchObject({ channel: 'api', decision: 'approve' });
  expect((await engine.db.prisma.approval.findUniqueOrThrow({ where: { id: approval.approvalId } })).decisionKey).toBe(
    'api:click-1',
  );
});

test('a decision after the approval expired is refused by the validator with a 409', async () => {
  const short = await startEngine({ settings: { approvalTimeoutMs: 1_000, escalationTimeoutMs: 1_000 } });
  try {
    await short.startWorker();
    const { body } = await short.http('POST', '/v1/goals', {
      title: 'Email late@example.com about the launch',
      input: { to: 'late@example.com' },
    });
    const goal = await short.waitForGoal(body.goalId, (g) => g.approvals.length > 0);
    const approvalId = goal.approvals[0].approvalId;
    await short.waitForGoal(body.goalId, (g) => g.status === 'failed');
    const late = await short.http('POST', `/v1/approvals/${approvalId}/decision`, { decision: 'approve' });
    expect(late.status).toBe(409);
    expect(late.body.error.message).toMatch(/expired/);
    expect(short.smtp.messages).toHaveLength(0);
  } finally {
    await short.close();
  }
});

test('GET /v1/approvals?groupBy=kind groups pending approvals by the tool they are for', async () => {
  const goals = [await emailGoal('group-a@example.com'), await emailGoal('group-b@example.com')];
  for (const g of goals) await pending(g);
  const { body } = await engine.http('GET', '/v1/approvals?status=pending&groupBy=kind');
  const email = body.groups.find((g: any) => g.kind === 'email.send');
  expect(email.count).toBe(email.approvals.length);
  expect(email.approvals.map((a: any) => a.goalId)).toEqual(expect.arrayContaining(goals));
  expect((await engine.http('GET', '/v1/approvals?groupBy=tool')).status).toBe(400);
  // Decide the group at once: both goals finish.
  const res = await engine.http('POST', '/v1/approvals/decisions', {
    decisions: email.approvals
      .filter((a: any) => goals.includes(a.goalId))
      .map((a: any) => ({ approvalId: a.approvalId, decision: 'approve', shownHash: a.shownHash })),
  });
  expect(res.body.results.map((r: any) => r.status)).toEqual(['approved', 'approved']);
  for (const g of goals) await engine.waitForGoal(g, (x) => x.status === 'completed');
});

test('ten approvals across ten goals decided in one call: each result reported, ten goals finish, ten emails', async () => {
  const goals = await Promise.all(Array.from({ length: 10 }, (_, i) => emailGoal(`batch-${i}@example.com`)));
  const approvals = await Promise.all(goals.map((g) => pending(g)));
  const res = await engine.http('POST', '/v1/approvals/decisions', {
    decisions: approvals.map((a, i) => ({
      approvalId: a.approvalId,
      decision: 'approve',
      shownHash: a.shownHash,
      idempotencyKey: `batch-ten-${i}`,
    })),
  });
  expect(res.status).toBe(200);
  // An item Temporal did not confirm in time (a loaded machine) says so and is retried with its own key, as
  // the error tells a client to: the same decision, applied once.
  const results = [...res.body.results];
  for (let round = 0; round < 3 && results.some((r) => r.status === 'error'); round++) {
    for (const [i, r] of results.entries()) {
      if (r.status !== 'error') continue;
      expect(r.error.code).toBe('unavailable');
      const again = await engine.http('POST', '/v1/approvals/decisions', {
        decisions: [
          {
            approvalId: r.approvalId,
            decision: 'approve',
            shownHash: approvals[i].shownHash,
            idempotencyKey: `batch-ten-${i}`,
          },
        ],
      });
      results[i] = again.body.results[0];
    }
  }
  expect(results).toEqual(approvals.map((a) => ({ approvalId: a.approvalId, status: 'approved' })));
  for (const g of goals) await engine.waitForGoal(g, (x) => x.status === 'completed');
  for (let i = 0; i < 10; i++)
    expect(engine.smtp.messages.filter((m) => m.to.includes(`batch-${i}@example.com`))).toHaveLength(1);
}, 180_000);
