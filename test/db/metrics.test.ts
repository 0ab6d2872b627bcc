/**
 * metrics/read.ts on PostgreSQL, over rows written here: exact figures for
 * each metric, histogram bounds that include their edge (`le` is "at most"),
 * decisions the policy made on expiry kept apart from people's, model tiers
 * from the configured models, and the Prometheus text built from the same
 * snapshot.
 */
import { createPrometheusMetrics } from '../../metrics/prometheus';
import { modelTier, readMetrics } from '../../metrics/read';
import { createTestDatabase, type TestDatabase } from '../helpers/db';

jest.setTimeout(60_000);

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase();
  await seed();
});
afterAll(async () => {
  await db?.drop();
});

const T0 = new Date('2026-12-01T10:00:00Z');
const after = (seconds: number) => new Date(T0.getTime() + seconds * 1000);
const memory = { stats: async () => ({ hot: 7, archived: 2, superseded: 1 }) };
const tiers = { small: 'gpt-4o-mini', large: 'gpt-4o' };

async function seed() {
  const p = db.prisma;
  const goal = (id: string, status: string, planChurn: number, costUsd: number) =>
    p.goal.create({ data: { id, workflowId: `goal-${id}`, title: id, kind: 'email', status, planChurn, costUsd } });
  await goal('g1', 'completed', 0, 0.5);
  await goal('g2', 'completed', 1, 0.25);
  await goal('g3', 'failed', 3, 0.25);
  await goal('g4', 'awaiting_approval', 0, 0);

  const approval = (id: string, goalId: string, status: string, seconds: number | null, more: object = {}) =>
    p.approval.create({
      data: {
        id,
        goalId,
        stepId: 'send',
        title: id,
        status,
        createdAt: T0,
        expiresAt: after(7200),
        decidedAt: seconds === null ? null : after(seconds),
        ...more,
      },
    });
  await approval('a1', 'g1', 'approved', 60, { decision: 'approve', edits: { body: 'edited' }, actor: 'operator:x' });
  await approval('a2', 'g2', 'approved', 0.5, { decision: 'approve', actor: 'operator:x', channel: 'slack' });
  await approval('a3', 'g3', 'rejected', 90, { decision: 'reject', actor: 'operator:x', channel: 'api' });
  await approval('a4', 'g3', 'rejected', 3600, { decision: 'reject', actor: 'policy:on-expiry', channel: 'policy' });
  await approval('a5', 'g4', 'pending', null);

  const step = (goalId: string, stepId: string, status: string, model: string | null, costUsd: number) =>
    p.step.create({
      data: {
        id: `${goalId}:1:${stepId}`,
        goalId,
        planVersion: 1,
        stepId,
        tool: 'x',
        title: stepId,
        status,
        model,
        costUsd,
      },
    });
  await step('g1', 'draft', 'completed', 'gpt-4o-mini-2024-07-18', 0.01);
  await step('g1', 'send', 'completed', 'gpt-4o', 0);
  await step('g2', 'draft', 'compensated', 'gpt-4o', 0.02);
  await step('g2', 'recall', 'completed', 'offline-hash (lexical retrieval)', 0);
  await step('g3', 'draft', 'failed', 'gpt-4o', 0.5); // did not run to completion: not counted
  await step('g3', 'other', 'completed', 'some-local-model', 0.001);

  for (const [i, tokens] of [0, 250, 251, 5000].entries()) {
    await p.artifact.create({
      data: { id: `c${i}`, kind: 'context', content: 'x'.repeat(10 * (i + 1)), metadata: { tokens } },
    });
  }
  await p.sideEffect.createMany({
    data: [
      { id: 's1', idempotencyKey: 'k1', kind: 'email.send', status: 'committed' },
      { id: 's2', idempotencyKey: 'k2', kind: 'email.send', status: 'committed' },
      { id: 's3', idempotencyKey: 'k3', kind: 'slack.post', status: 'intent' },
    ],
  });
  await p.modelCacheStat.create({
    data: { purpose: 'plan', hits: 3n, misses: 1n, inputTokensSaved: 300n, outputTokensSaved: 30n, usdSaved: 0.03 },
  });
}

test('the snapshot has the exact figures of the rows', async () => {
  const m = await readMetrics({ prisma: db.prisma, memory, tiers });

  expect(m.goals).toEqual({
    total: 4,
    byStatus: { planning: 0, running: 0, awaiting_approval: 1, completed: 2, failed: 1, cancelled: 0 },
  });
  expect(m.planChurn.replans).toBe(4);
  expect(m.planChurn.perGoal).toBe(1);
  expect(m.planChurn.histogram).toEqual({
    buckets: [
      { le: 0, count: 2 },
      { le: 1, count: 3 },
      { le: 2, count: 3 },
      { le: 3, count: 4 },
      { le: 5, count: 4 },
      { le: 10, count: 4 },
    ],
    count: 4,
    sum: 4,
  });

  expect(m.approvals.byStatus).toEqual({ pending: 1, approved: 2, rejected: 2, expired: 0, cancelled: 0 });
  // The policy's reject on expiry is a decision, but not a person's.
  expect(m.approvals.decisions).toEqual({ approve: 2, reject: 1 });
  expect(m.approvals.policyDecisions).toEqual({ approve: 0, reject: 1 });
  expect(m.approvals.edits).toBe(1);
  const latency = (status: string, le: number) =>
    m.approvals.latencySeconds[status].buckets.find((b) => b.le === le)!.count;
  expect(latency('approved', 1)).toBe(1); // 0.5 s
  expect(latency('approved', 30)).toBe(1);
  expect(latency('approved', 60)).toBe(2); // exactly 60 s is in the 60 s bucket
  expect(latency('rejected', 60)).toBe(0);
  expect(latency('rejected', 120)).toBe(1);
  expect(latency('rejected', 3600)).toBe(2);
  expect(m.approvals.latencySeconds.approved).toMatchObject({ count: 2, sum: 60.5 });
  expect(m.approvals.latencySeconds.rejected).toMatchObject({ count: 2, sum: 3690 });
  expect(m.approvals.latencySeconds.expired).toMatchObject({ count: 0, sum: 0 });

  expect(m.humanIntervention).toEqual({
    decisions: 3,
    actions: 5,
    ratio: 3 / 5,
    committedOutcomes: 2,
    decisionsPerCommittedOutcome: 3 / 2,
    editsPerApproval: 1 / 2,
  });
  expect(m.cost.usd).toBeCloseTo(1, 12);
  expect(m.cost.perCommittedOutcome).toBeCloseTo(0.5, 12);
  expect(m.cost.byModel).toEqual([
    { model: 'gpt-4o', tier: 'large', usd: 0.02 },
    { model: 'gpt-4o-mini-2024-07-18', tier: 'small', usd: 0.01 },
    { model: 'offline-hash (lexical retrieval)', tier: 'offline', usd: 0 },
    { model: 'some-local-model', tier: 'unknown', usd: 0.001 },
  ]);

  expect(m.context.workingSetTokens).toMatchObject({ avg: 5501 / 4, max: 5000, steps: 4 });
  expect(m.context.workingSetTokens.histogram.buckets.slice(0, 3)).toEqual([
    { le: 250, count: 2 },
    { le: 500, count: 3 },
    { le: 1000, count: 3 },
  ]);
  expect(m.context.memory).toEqual({ hot: 7, archived: 2, superseded: 1 });
  expect(m.modelCache).toMatchObject({ hits: 3, misses: 1, hitRate: 0.75, usdSaved: 0.03 });
  expect(m.sideEffects).toEqual([
    { kind: 'email.send', status: 'committed', count: 2 },
    { kind: 'slack.post', status: 'intent', count: 1 },
  ]);
});

test('model tiers: exact, without a dated suffix, offline, or unknown', () => {
  expect(modelTier('gpt-4o', tiers)).toBe('large');
  expect(modelTier('gpt-4o-2024-08-06', tiers)).toBe('large');
  expect(modelTier('gpt-4o-mini', tiers)).toBe('small');
  expect(modelTier('offline', tiers)).toBe('offline');
  expect(modelTier('none')).toBe('offline');
  expect(modelTier('gpt-4o')).toBe('unknown'); // no tiers configured
  expect(modelTier('llama3', tiers)).toBe('unknown');
});

test('the Prometheus text is built from the same snapshot', async () => {
  const prometheus = createPrometheusMetrics(() => readMetrics({ prisma: db.prisma, memory, tiers }));
  const text = await prometheus.text();
  for (const line of [
    'keel_goals{status="completed"} 2',
    'keel_approval_decisions_total{decision="reject",by="person"} 1',
    'keel_approval_decisions_total{decision="reject",by="policy"} 1',
    'keel_approval_latency_seconds_bucket{status="approved",le="60"} 2',
    'keel_approval_latency_seconds_bucket{status="approved",le="+Inf"} 2',
    'keel_approval_latency_seconds_sum{status="approved"} 60.5',
    'keel_human_decisions_per_committed_outcome 1.5',
    'keel_human_edits_per_approval 0.5',
    'keel_model_cost_usd_total{model="gpt-4o-mini-2024-07-18",tier="small"} 0.01',
    'keel_model_cache_hit_ratio 0.75',
    'keel_goal_plan_churn_bucket{le="0"} 2',
    'keel_side_effects{kind="email.send",status="committed"} 2',
    'keel_memory_items{tier="hot"} 7',
  ]) {
    expect(text.split('\n')).toContain(line);
  }
  // A scrape while another is reading shares its snapshot; both answer the same.
  const [a, b] = await Promise.all([prometheus.text(), prometheus.text()]);
  expect(a).toBe(b);
});
