/**
 * What the engine did, read from the canonical tables at the moment it is
 * asked: the one place the metrics' SQL lives. `GET /v1/metrics` (JSON) and
 * `GET /metrics` (Prometheus text) both present a {@link MetricsSnapshot}, so
 * they cannot disagree, and every API process answers from the same rows, so
 * several of them agree with each other too (a per-process counter would not).
 *
 * Histograms are bucket counts computed in SQL: cumulative, Prometheus-style
 * (`le` is "at most"), over every row, whatever process wrote it.
 */
import { Prisma } from '../generated/prisma/client';
import type { Db } from '../db/prisma';
import type { MemoryService } from '../memory/service';
import { cacheStats, type ModelCacheStats } from '../models/cache';
import { APPROVAL_STATUSES, GOAL_STATUSES } from '../shared/goal';

/** Upper bounds of the approval-latency histogram, in seconds: a second to a week. */
export const APPROVAL_LATENCY_BUCKETS = [
  1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200, 14_400, 43_200, 86_400, 259_200, 604_800,
];

/** Upper bounds of the plan-churn histogram: replans per goal. */
export const PLAN_CHURN_BUCKETS = [0, 1, 2, 3, 5, 10];

/** Upper bounds of the working-set histogram: tokens of context a `memory.recall` step assembled. */
export const WORKING_SET_TOKEN_BUCKETS = [250, 500, 1000, 2000, 4000, 8000, 16_000, 32_000];

/** A histogram: cumulative counts per upper bound (the last one is +Inf, i.e. `count`), the count and the sum. */
export interface BucketCounts {
  buckets: { le: number; count: number }[];
  count: number;
  sum: number;
}

/** A model's tier as the API's configuration names it; `offline` for rules and templates, `unknown` for a model no tier names now. */
export type ModelTierLabel = 'small' | 'large' | 'offline' | 'unknown';

/** The models each tier uses (the goal settings' models, or the gateway's endpoints). */
export interface TierModels {
  small?: string;
  large?: string;
}

export interface MetricsSnapshot {
  goals: {
    total: number;
    byStatus: Record<string, number>;
  };
  planChurn: {
    /** Replans over every goal (plans refused by validation, and plans given up after they started). */
    replans: number;
    perGoal: number;
    histogram: BucketCounts;
  };
  approvals: {
    byStatus: Record<string, number>;
    /** Decisions a person made: approvals now `approved` or `rejected`, not by the policy. */
    decisions: { approve: number; reject: number };
    /** Decisions the policy made for nobody (its default on expiry): not human intervention. */
    policyDecisions: { approve: number; reject: number };
    /** Approvals approved with edits. */
    edits: number;
    /** Created to decided (or expired, or cancelled), in seconds, by the status it ended in. */
    latencySeconds: Record<string, BucketCounts>;
  };
  humanIntervention: {
    decisions: number;
    /** Steps that ran: completed, or completed and later compensated. */
    actions: number;
    /** Decisions per step run. */
    ratio: number;
    committedOutcomes: number;
    decisionsPerCommittedOutcome: number;
    /** Approvals approved with edits per approval approved. */
    editsPerApproval: number;
  };
  cost: {
    /** Every goal's cost: plans and steps. */
    usd: number;
    committedOutcomes: number;
    perCommittedOutcome: number;
    /** Steps' model cost by the model that answered (sum of steps.cost_usd), with its tier. */
    byModel: { model: string; tier: ModelTierLabel; usd: number }[];
  };
  context: {
    avgChars: number;
    maxChars: number;
    workingSetTokens: { avg: number; max: number; steps: number; histogram: BucketCounts };
    memory: { hot: number; archived: number; superseded: number };
  };
  modelCache: ModelCacheStats;
  sideEffects: { kind: string; status: string; count: number }[];
}

export interface MetricsSources {
  prisma: Db;
  memory: Pick<MemoryService, 'stats'>;
  /** Which model each tier names, to label model cost by tier. */
  tiers?: TierModels;
}

/** A model name's tier: exact, or without an endpoint's dated snapshot suffix (`gpt-4o-2024-08-06`). */
export function modelTier(model: string, tiers: TierModels = {}): ModelTierLabel {
  // Rules, templates and the offline hashing embedder; steps that call no model keep their plan's model name.
  if (model === 'none' || model.startsWith('offline')) return 'offline';
  const undated = model.replace(/-\d{4}-\d{2}-\d{2}$/, '');
  for (const tier of ['small', 'large'] as const) {
    const name = tiers[tier];
    if (name && (name === model || name === undated)) return tier;
  }
  return 'unknown';
}

const ratio = (a: number, b: number) => (b > 0 ? a / b : 0);

interface BucketRow {
  label: string;
  le: number;
  n: number;
}
interface TotalRow {
  label: string;
  n: number;
  sum: number;
}

/**
 * Histograms of `source` (a query giving `label text, v float8` per row) over
 * `bounds`, per label: one statement for the cumulative bucket counts, one for
 * count and sum.
 */
async function histograms(prisma: Db, source: Prisma.Sql, bounds: number[]): Promise<Record<string, BucketCounts>> {
  const [buckets, totals] = await Promise.all([
    prisma.$queryRaw<BucketRow[]>(Prisma.sql`
      WITH src AS (${source})
      SELECT src.label, b.le, (count(*) FILTER (WHERE src.v <= b.le))::int AS n
        FROM src CROSS JOIN unnest(${bounds}::float8[]) AS b(le)
       GROUP BY src.label, b.le`),
    prisma.$queryRaw<TotalRow[]>(Prisma.sql`
      WITH src AS (${source})
      SELECT label, count(*)::int AS n, coalesce(sum(v), 0)::float8 AS sum FROM src GROUP BY label`),
  ]);
  const out: Record<string, BucketCounts> = {};
  for (const t of totals) {
    const mine = new Map(buckets.filter((b) => b.label === t.label).map((b) => [Number(b.le), b.n]));
    out[t.label] = {
      buckets: bounds.map((le) => ({ le, count: mine.get(le) ?? 0 })),
      count: t.n,
      sum: t.sum,
    };
  }
  return out;
}

const emptyHistogram = (bounds: number[]): BucketCounts => ({
  buckets: bounds.map((le) => ({ le, count: 0 })),
  count: 0,
  sum: 0,
});

interface GoalRow {
  status: string;
  n: number;
  churn: number;
  usd: number;
}
interface ApprovalRow {
  status: string;
  by: 'person' | 'policy';
  n: number;
  edits: number;
}
interface ContextRow {
  avg_chars: number | null;
  max_chars: number | null;
  avg_tokens: number | null;
  max_tokens: number | null;
  steps: number;
}
interface ModelRow {
  model: string;
  usd: number;
}
interface SideEffectRow {
  kind: string;
  status: string;
  n: number;
}

/** Reads every metric from PostgreSQL (about a dozen small queries, run together). */
export async function readMetrics({ prisma, memory, tiers }: MetricsSources): Promise<MetricsSnapshot> {
  const [
    goalRows,
    approvalRows,
    [stepsRun],
    modelRows,
    [context],
    sideEffectRows,
    churnHistogram,
    latency,
    workingSet,
    memoryStats,
    modelCache,
  ] = await Promise.all([
    prisma.$queryRaw<GoalRow[]>`
      SELECT status, count(*)::int AS n, coalesce(sum(plan_churn), 0)::int AS churn,
             coalesce(sum(cost_usd), 0)::float8 AS usd
        FROM goals GROUP BY status`,
    // Who decided: the policy's default on expiry (channel `policy`, actor `policy:…`) and the trust rules the
    // operator accepted (channel `rule`, actor `rule:…`) are not a person's decisions.
    prisma.$queryRaw<ApprovalRow[]>`
      SELECT status,
             CASE WHEN channel IN ('policy', 'rule') OR actor LIKE 'policy:%' OR actor LIKE 'rule:%'
                  THEN 'policy' ELSE 'person' END AS by,
             count(*)::int AS n,
             (count(*) FILTER (WHERE edits IS NOT NULL AND edits <> 'null'::jsonb AND edits <> '{}'::jsonb))::int AS edits
        FROM approvals GROUP BY 1, 2`,
    prisma.$queryRaw<{ n: number }[]>`
      SELECT count(*)::int AS n FROM steps WHERE status IN ('completed', 'compensated')`,
    prisma.$queryRaw<ModelRow[]>`
      SELECT coalesce(model, 'none') AS model, coalesce(sum(cost_usd), 0)::float8 AS usd
        FROM steps WHERE status IN ('completed', 'compensated') GROUP BY 1 ORDER BY 1`,
    // One scan of the context artifacts for both sizes; aggregates skip rows without a token count.
    prisma.$queryRaw<ContextRow[]>`
      SELECT avg(length(content))::float8 AS avg_chars, max(length(content))::float8 AS max_chars,
             avg((metadata->>'tokens')::float8) AS avg_tokens, max((metadata->>'tokens')::float8) AS max_tokens,
             count(metadata->'tokens')::int AS steps
        FROM artifacts WHERE kind = 'context'`,
    prisma.$queryRaw<SideEffectRow[]>`
      SELECT kind, status, count(*)::int AS n FROM side_effects GROUP BY kind, status ORDER BY kind, status`,
    histograms(prisma, Prisma.sql`SELECT '' AS label, plan_churn::float8 AS v FROM goals`, PLAN_CHURN_BUCKETS),
    histograms(
      prisma,
      Prisma.sql`SELECT status AS label, extract(epoch FROM decided_at - created_at)::float8 AS v
                   FROM approvals WHERE decided_at IS NOT NULL`,
      APPROVAL_LATENCY_BUCKETS,
    ),
    histograms(
      prisma,
      Prisma.sql`SELECT '' AS label, (metadata->>'tokens')::float8 AS v
                   FROM artifacts WHERE kind = 'context' AND metadata->'tokens' IS NOT NULL`,
      WORKING_SET_TOKEN_BUCKETS,
    ),
    memory.stats(),
    cacheStats(prisma),
  ]);

  const goalsByStatus: Record<string, number> = Object.fromEntries(GOAL_STATUSES.map((s) => [s, 0]));
  let goals = 0;
  let replans = 0;
  let usd = 0;
  for (const r of goalRows) {
    goalsByStatus[r.status] = r.n;
    goals += r.n;
    replans += r.churn;
    usd += r.usd;
  }
  const approvalsByStatus: Record<string, number> = Object.fromEntries(APPROVAL_STATUSES.map((s) => [s, 0]));
  const decided = { person: { approve: 0, reject: 0 }, policy: { approve: 0, reject: 0 } };
  let edits = 0;
  for (const r of approvalRows) {
    approvalsByStatus[r.status] = (approvalsByStatus[r.status] ?? 0) + r.n;
    if (r.by === 'person') edits += r.edits;
    if (r.status === 'approved') decided[r.by].approve += r.n;
    if (r.status === 'rejected') decided[r.by].reject += r.n;
  }
  const { approve, reject } = decided.person;
  const decisions = approve + reject;
  const committedOutcomes = goalsByStatus.completed ?? 0;
  const actions = stepsRun?.n ?? 0;

  return {
    goals: { total: goals, byStatus: goalsByStatus },
    planChurn: {
      replans,
      perGoal: ratio(replans, goals),
      histogram: churnHistogram[''] ?? emptyHistogram(PLAN_CHURN_BUCKETS),
    },
    approvals: {
      byStatus: approvalsByStatus,
      decisions: { approve, reject },
      policyDecisions: decided.policy,
      edits,
      // Every status an approval ends in, so a dashboard has a series before the first one does.
      latencySeconds: Object.fromEntries(
        APPROVAL_STATUSES.filter((st) => st !== 'pending').map((st) => [
          st,
          latency[st] ?? emptyHistogram(APPROVAL_LATENCY_BUCKETS),
        ]),
      ),
    },
    humanIntervention: {
      decisions,
      actions,
      ratio: ratio(decisions, actions),
      committedOutcomes,
      decisionsPerCommittedOutcome: ratio(decisions, committedOutcomes),
      editsPerApproval: ratio(edits, approve),
    },
    cost: {
      usd,
      committedOutcomes,
      perCommittedOutcome: ratio(usd, committedOutcomes),
      byModel: modelRows.map((r) => ({ model: r.model, tier: modelTier(r.model, tiers), usd: r.usd })),
    },
    context: {
      avgChars: context?.avg_chars ?? 0,
      maxChars: context?.max_chars ?? 0,
      workingSetTokens: {
        avg: context?.avg_tokens ?? 0,
        max: context?.max_tokens ?? 0,
        steps: context?.steps ?? 0,
        histogram: workingSet[''] ?? emptyHistogram(WORKING_SET_TOKEN_BUCKETS),
      },
      memory: memoryStats,
    },
    modelCache,
    sideEffects: sideEffectRows.map((r) => ({ kind: r.kind, status: r.status, count: r.n })),
  };
}
