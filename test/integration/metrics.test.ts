/**
 * GET /metrics (Prometheus text) and GET /v1/metrics (JSON) over the whole
 * engine: a model planner and drafter behind the real `openai` client (a local
 * stand-in answers), the output cache, PostgreSQL and Temporal. Two goals run
 * (one approved with edits, one rejected); the exposition is parsed here (the
 * simple text format, line by line) and every figure must have moved as the
 * goals did, match the canonical tables, and agree with the JSON. A second API
 * over the same database answers the same text: nothing is counted per process.
 */
import { goalModels } from '../../commands/goals';
import { loadConfig } from '../../config';
import { createModelGateway } from '../../models/gateway';
import { startEngine, type TestEngine } from '../helpers/engine';
import { startOpenAIStandin, type ChatRequestBody, type OpenAIStandin } from '../helpers/openai-standin';
import { modelEmailPlan } from '../helpers/model-plans';

let engine: TestEngine;
let standin: OpenAIStandin;

/** The plan the "model" proposes for an email goal: recall, draft (a model step), send (held for approval). */
const emailPlan = (to: string) => modelEmailPlan(to, { purpose: 'thank them for the referral', subject: false });

beforeAll(async () => {
  standin = await startOpenAIStandin({
    chat: (body: ChatRequestBody) => {
      const format = body.response_format as { json_schema?: { name: string } } | undefined;
      const to = /metrics-[a-z0-9]+@example\.com/.exec(JSON.stringify(body.messages))?.[0] ?? 'nobody@example.com';
      if (format?.json_schema?.name === 'keel_plan') return JSON.stringify(emailPlan(to));
      if (format?.json_schema?.name === 'keel_email_draft')
        return JSON.stringify({ subject: 'Thank you', body: 'Hi, thank you for the referral.' });
      return 'unexpected request';
    },
  });
  const config = loadConfig({ OPENAI_BASE_URL: standin.baseURL, OPENAI_API_KEY: 'test-key' });
  // As `npm run api` does with a model configured: goals carry the tiers' models, which also label cost by tier.
  engine = await startEngine({ settings: { models: goalModels(config) } });
  await engine.startWorker({ models: createModelGateway(config) });
});
afterAll(async () => {
  await engine?.close();
  await standin?.close();
});

type Labels = Record<string, string>;
interface Sample {
  name: string;
  labels: Labels;
  value: number;
}
interface Family {
  help?: string;
  type?: string;
  samples: Sample[];
}

/** Prometheus text exposition 0.0.4: `# HELP`, `# TYPE`, then `name{label="value",…} number` per line. */
function parseExposition(text: string): Map<string, Family> {
  const families = new Map<string, Family>();
  const family = (name: string) => {
    let f = families.get(name);
    if (!f) families.set(name, (f = { samples: [] }));
    return f;
  };
  const unescape = (v: string) => v.replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    const meta = /^# (HELP|TYPE) ([a-zA-Z_:][a-zA-Z0-9_:]*) (.*)$/.exec(line);
    if (meta) {
      if (meta[1] === 'HELP') family(meta[2]).help = meta[3];
      else family(meta[2]).type = meta[3];
      continue;
    }
    const sample = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!sample) throw new Error(`not an exposition line: ${line}`);
    const labels: Labels = {};
    for (const m of (sample[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g))
      labels[m[1]] = unescape(m[2]);
    const value = sample[3] === '+Inf' ? Infinity : sample[3] === '-Inf' ? -Infinity : Number(sample[3]);
    expect(Number.isNaN(value)).toBe(false);
    // A histogram's series (_bucket, _sum, _count) belong to the family its TYPE line names.
    const base = families.has(sample[1]) ? sample[1] : sample[1].replace(/_(bucket|sum|count)$/, '');
    family(base).samples.push({ name: sample[1], labels, value });
  }
  return families;
}

const sameLabels = (a: Labels, b: Labels) =>
  Object.keys(a).length === Object.keys(b).length && Object.entries(b).every(([k, v]) => a[k] === v);

/** One scrape, parsed, with a lookup that fails loudly when a series is missing. */
async function scrape(base = engine.apiUrl) {
  const res = await fetch(`${base}/metrics`, { headers: { authorization: `Bearer ${engine.apiKey}` } });
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toBe('text/plain; version=0.0.4; charset=utf-8');
  const text = await res.text();
  const families = parseExposition(text);
  /** The sample's value; `absent` when given and the series does not exist (yet). */
  const get = (name: string, labels: Labels = {}, absent?: number): number => {
    const found = [...families.values()]
      .flatMap((f) => f.samples)
      .find((s) => s.name === name && sameLabels(s.labels, labels));
    if (!found && absent !== undefined) return absent;
    if (!found) throw new Error(`no sample ${name}${JSON.stringify(labels)} in:\n${text}`);
    return found.value;
  };
  return { text, families, get };
}

async function json() {
  const res = await engine.http('GET', '/v1/metrics');
  expect(res.status).toBe(200);
  return res.body;
}

const uniq = () => Math.random().toString(36).slice(2, 8);

/** Waits for the goal's run to end (its episodic memory is written after the status). */
async function finished(goal: { goalId: string; workflowId: string }, status: string) {
  await engine.waitForGoal(goal.goalId, (g) => g.status === status);
  await engine.temporal.client.workflow.getHandle(goal.workflowId).result();
}

test('/metrics without the API key is 401, and says nothing', async () => {
  for (const headers of [
    {},
    { authorization: 'Bearer wrong' },
    { authorization: `Basic ${engine.apiKey}` },
    { authorization: engine.apiKey },
  ] as Record<string, string>[]) {
    const res = await fetch(`${engine.apiUrl}/metrics`, { headers });
    expect(res.status).toBe(401);
    const text = await res.text();
    expect(JSON.parse(text).error.code).toBe('unauthorized');
    expect(text).not.toContain('keel_');
  }
});

test('two goals (one approved with edits, one rejected) move every metric, and both routes agree', async () => {
  const before = await scrape();
  const beforeJson = await json();
  const hotBefore = before.get('keel_memory_items', { tier: 'hot' });

  // Two goals with the same words: the second plan request is the first one's, answered from the cache.
  const to = `metrics-${uniq()}@example.com`;
  const title = `Thank ${to} for the referral`;
  // Something to recall, so the working sets have a size.
  const remembered = await engine.http('POST', '/v1/memory', {
    text: `${to} referred Acme Corp to us last week; they prefer short notes.`,
    subject: `contact:${to}`,
  });
  expect(remembered.status).toBe(201);
  const approved = (await engine.http('POST', '/v1/goals', { title })).body;
  const first = await engine.waitForGoal(approved.goalId, (g) => g.status === 'awaiting_approval');
  const rejected = (await engine.http('POST', '/v1/goals', { title })).body;
  const second = await engine.waitForGoal(rejected.goalId, (g) => g.status === 'awaiting_approval');

  const decide = (approvalId: string, body: unknown) =>
    engine.http('POST', `/v1/approvals/${approvalId}/decision`, body);
  expect(
    (await decide(first.approvals[0].approvalId, { decision: 'approve', edits: { body: 'Thanks so much! -- Sam' } }))
      .status,
  ).toBe(200);
  expect((await decide(second.approvals[0].approvalId, { decision: 'reject' })).status).toBe(200);
  await finished(approved, 'completed');
  await finished(rejected, 'failed');

  const after = await scrape();
  const m = await json();
  // A labelled series appears with its first occurrence (a cache purpose, a side-effect kind): absent before is 0.
  const moved = (name: string, labels: Labels = {}) => after.get(name, labels) - before.get(name, labels, 0);

  // Goals by status and created.
  expect(moved('keel_goals', { status: 'completed' })).toBe(1);
  expect(moved('keel_goals', { status: 'failed' })).toBe(1);
  expect(moved('keel_goals', { status: 'awaiting_approval' })).toBe(0);
  expect(moved('keel_goals_created_total')).toBe(2);

  // Decisions, edits and the ratios that follow from them.
  expect(moved('keel_approval_decisions_total', { decision: 'approve', by: 'person' })).toBe(1);
  expect(moved('keel_approval_decisions_total', { decision: 'reject', by: 'person' })).toBe(1);
  expect(moved('keel_approval_decisions_total', { decision: 'reject', by: 'policy' })).toBe(0);
  expect(moved('keel_approval_edits_total')).toBe(1);
  expect(moved('keel_approvals', { status: 'approved' })).toBe(1);
  expect(moved('keel_approvals', { status: 'rejected' })).toBe(1);
  const approvals = await engine.db.prisma.approval.findMany();
  const count = (pred: (a: (typeof approvals)[number]) => boolean) => approvals.filter(pred).length;
  // People's decisions: the policy's default on expiry (channel `policy`) is not an intervention.
  const decisions = count((a) => (a.status === 'approved' || a.status === 'rejected') && a.channel !== 'policy');
  const completed = await engine.db.prisma.goal.count({ where: { status: 'completed' } });
  const edited = count((a) => a.status === 'approved' && a.edits !== null);
  expect(after.get('keel_human_decisions_per_committed_outcome')).toBeCloseTo(decisions / completed, 12);
  expect(after.get('keel_human_edits_per_approval')).toBeCloseTo(edited / count((a) => a.status === 'approved'), 12);

  // Approval latency: the buckets are exactly what the rows say, per status they ended in.
  expect(moved('keel_approval_latency_seconds_count', { status: 'approved' })).toBe(1);
  expect(moved('keel_approval_latency_seconds_count', { status: 'rejected' })).toBe(1);
  for (const status of ['approved', 'rejected']) {
    const seconds = approvals
      .filter((a) => a.status === status)
      .map((a) => (a.decidedAt!.getTime() - a.createdAt.getTime()) / 1000);
    for (const le of ['1', '5', '60', '3600', '+Inf']) {
      expect(after.get('keel_approval_latency_seconds_bucket', { status, le })).toBe(
        seconds.filter((s) => s <= Number(le === '+Inf' ? Infinity : le)).length,
      );
    }
    expect(after.get('keel_approval_latency_seconds_sum', { status })).toBeCloseTo(
      seconds.reduce((a, b) => a + b, 0),
      3,
    );
  }

  // Cost: model steps cost something, labelled by model and tier; per committed outcome over the goals' total.
  const goalsCost = (await engine.db.prisma.goal.aggregate({ _sum: { costUsd: true } }))._sum.costUsd ?? 0;
  expect(goalsCost).toBeGreaterThan(0);
  expect(after.get('keel_goal_cost_usd_total')).toBeCloseTo(goalsCost, 12);
  expect(after.get('keel_cost_per_committed_outcome_usd')).toBeCloseTo(goalsCost / completed, 12);
  const modelCost = after.families.get('keel_model_cost_usd_total')!.samples;
  const drafted = modelCost.filter((s) => s.labels.tier === 'small' || s.labels.tier === 'large');
  expect(drafted.length).toBeGreaterThan(0);
  expect(drafted.reduce((a, s) => a + s.value, 0)).toBeGreaterThan(0);
  const stepsCost = await engine.db.prisma.step.aggregate({
    _sum: { costUsd: true },
    where: { status: { in: ['completed', 'compensated'] } },
  });
  expect(modelCost.reduce((a, s) => a + s.value, 0)).toBeCloseTo(stepsCost._sum.costUsd ?? 0, 12);

  // The output cache: two plan misses at most, one hit (the second goal's plan), savings in dollars.
  expect(moved('keel_model_cache_hits_total', { purpose: 'plan' })).toBe(1);
  expect(moved('keel_model_cache_misses_total', { purpose: 'plan' })).toBe(1);
  expect(after.get('keel_model_cache_saved_usd_total', { purpose: 'plan' })).toBeGreaterThan(0);
  expect(after.get('keel_model_cache_hit_ratio')).toBeCloseTo(m.modelCache.hitRate, 12);
  expect(after.get('keel_model_cache_hit_ratio')).toBeGreaterThan(0);

  // Context growth: one working set per goal, and episodic memories written when the goals ended.
  expect(moved('keel_working_set_tokens_count')).toBe(2);
  expect(moved('keel_working_set_tokens_sum')).toBeGreaterThan(0);
  expect(after.get('keel_memory_items', { tier: 'hot' })).toBeGreaterThanOrEqual(hotBefore + 2); // ours and one per goal

  // Side effects: one email committed, by kind and status.
  expect(moved('keel_side_effects', { kind: 'email.send', status: 'committed' })).toBe(1);
  expect(moved('keel_steps_run_total')).toBeGreaterThanOrEqual(4);

  // The JSON says the same things, from the same snapshot code.
  expect(m.goals - beforeJson.goals).toBe(2);
  for (const [status, n] of Object.entries(m.goalsByStatus)) expect(after.get('keel_goals', { status })).toBe(n);
  for (const [status, n] of Object.entries(m.approvals.byStatus))
    expect(after.get('keel_approvals', { status })).toBe(n);
  expect(after.get('keel_goals_created_total')).toBe(m.goals);
  expect(after.get('keel_plan_replans_total')).toBe(m.planChurn.replans);
  expect(after.get('keel_plan_churn_per_goal')).toBeCloseTo(m.planChurn.perGoal, 12);
  expect(after.get('keel_goal_plan_churn_count')).toBe(m.planChurnPerGoal.count);
  expect(after.get('keel_approval_decisions_total', { decision: 'approve', by: 'person' })).toBe(
    m.approvals.decisions.approve,
  );
  expect(after.get('keel_approval_decisions_total', { decision: 'reject', by: 'policy' })).toBe(
    m.approvals.policyDecisions.reject,
  );
  expect(after.get('keel_approval_edits_total')).toBe(m.humanInterventionRatio.edits);
  expect(after.get('keel_human_intervention_ratio')).toBeCloseTo(m.humanInterventionRatio.ratio, 12);
  expect(after.get('keel_human_decisions_per_committed_outcome')).toBeCloseTo(
    m.humanInterventionRatio.perCommittedOutcome,
    12,
  );
  expect(after.get('keel_human_edits_per_approval')).toBeCloseTo(m.humanInterventionRatio.editsPerApproval, 12);
  expect(after.get('keel_steps_run_total')).toBe(m.humanInterventionRatio.actions);
  expect(after.get('keel_committed_outcomes_total')).toBe(m.costPerCommittedOutcome.committedOutcomes);
  expect(after.get('keel_cost_per_committed_outcome_usd')).toBeCloseTo(m.costPerCommittedOutcome.perOutcome, 12);
  for (const c of m.modelCost) {
    expect(after.get('keel_model_cost_usd_total', { model: c.model, tier: c.tier })).toBeCloseTo(c.usd, 12);
  }
  for (const [purpose, f] of Object.entries<any>(m.modelCache.byPurpose)) {
    expect(after.get('keel_model_cache_hits_total', { purpose })).toBe(f.hits);
    expect(after.get('keel_model_cache_misses_total', { purpose })).toBe(f.misses);
    expect(after.get('keel_model_cache_saved_usd_total', { purpose })).toBeCloseTo(f.usdSaved, 12);
    expect(after.get('keel_model_cache_saved_tokens_total', { purpose, direction: 'input' })).toBe(f.inputTokensSaved);
  }
  expect(after.get('keel_memory_items', { tier: 'hot' })).toBe(m.contextSize.memory.hot);
  expect(after.get('keel_memory_items', { tier: 'archive' })).toBe(m.contextSize.memory.archived);
  expect(after.get('keel_working_set_tokens_count')).toBe(m.contextSize.workingSetTokens.steps);
  expect(after.get('keel_working_set_tokens_sum') / m.contextSize.workingSetTokens.steps).toBeCloseTo(
    m.contextSize.workingSetTokens.avg,
    9,
  );
  for (const e of m.sideEffects) {
    expect(after.get('keel_side_effects', { kind: e.kind, status: e.status })).toBe(e.count);
  }
  for (const [status, h] of Object.entries<any>(m.approvals.latencySeconds)) {
    expect(after.get('keel_approval_latency_seconds_count', { status })).toBe(h.count);
    for (const b of h.buckets)
      expect(after.get('keel_approval_latency_seconds_bucket', { status, le: String(b.le) })).toBe(b.count);
  }

  // Another API process over the same database answers the same scrape: nothing is counted in memory.
  const other = await engine.serveApi();
  expect((await scrape(other.url)).text).toBe((await scrape()).text);
});

test('after goals ran, every family is well formed: HELP and TYPE, cumulative buckets ending in +Inf = count', async () => {
  const { families } = await scrape();
  expect(families.size).toBeGreaterThan(20);
  for (const [name, f] of families) {
    expect(name).toMatch(/^keel_/);
    expect(f.help).toBeTruthy();
    expect(['counter', 'gauge', 'histogram']).toContain(f.type);
    if (f.type === 'counter') for (const s of f.samples) expect(s.value).toBeGreaterThanOrEqual(0);
    if (f.type !== 'histogram') continue;
    const series = new Map<string, Sample[]>();
    for (const s of f.samples) {
      const { le: _le, ...rest } = s.labels;
      const key = JSON.stringify(rest);
      series.set(key, [...(series.get(key) ?? []), s]);
    }
    for (const samples of series.values()) {
      const buckets = samples.filter((s) => s.name === `${name}_bucket`);
      const bounds = buckets.map((b) => (b.labels.le === '+Inf' ? Infinity : Number(b.labels.le)));
      expect(bounds).toEqual([...bounds].sort((a, b) => a - b));
      expect(bounds.at(-1)).toBe(Infinity);
      for (let i = 1; i < buckets.length; i++) expect(buckets[i].value).toBeGreaterThanOrEqual(buckets[i - 1].value);
      const count = samples.find((s) => s.name === `${name}_count`)!.value;
      expect(buckets.at(-1)!.value).toBe(count);
      expect(samples.find((s) => s.name === `${name}_sum`)).toBeDefined();
    }
  }
});
