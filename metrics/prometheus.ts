/**
 * The Prometheus exposition of Keel's metrics, through prom-client: a
 * Registry of its own (not prom-client's global one, so two apps in one
 * process never share metrics) whose counters and gauges fill themselves in
 * `collect()` from one {@link MetricsSnapshot} per scrape, and whose
 * histograms are the bucket counts the snapshot's SQL computed.
 *
 * Nothing here counts in memory: every value is read from the canonical
 * tables when Prometheus asks, so each API process answers the same.
 * Labels are bounded sets (statuses, decisions, models, tool kinds, cache
 * purposes), never ids, titles or addresses.
 */
import { Counter, Gauge, Histogram, Registry, type HistogramConfiguration, type LabelValues } from 'prom-client';
import {
  APPROVAL_LATENCY_BUCKETS,
  PLAN_CHURN_BUCKETS,
  WORKING_SET_TOKEN_BUCKETS,
  type BucketCounts,
  type MetricsSnapshot,
} from './read';

/** One exposition line of a histogram: the series name (`_bucket`, `_sum`, `_count`), its labels, its value. */
interface HistogramValue {
  metricName: string;
  labels: Record<string, string | number>;
  value: number;
}

/**
 * A histogram whose buckets are counted elsewhere (in SQL) rather than by
 * `observe()`: prom-client validates its name, labels and buckets and writes
 * its text, and `read` supplies the counts per label set at scrape time.
 */
class CountedHistogram<T extends string> extends Histogram<T> {
  private readonly exposition: { name: string; help: string; bounds: number[] };

  constructor(
    config: HistogramConfiguration<T> & { buckets: number[] },
    private readonly read: () => Promise<{ labels: LabelValues<T>; counts: BucketCounts }[]>,
  ) {
    super(config);
    this.exposition = { name: config.name, help: config.help, bounds: config.buckets };
  }

  private async values(): Promise<HistogramValue[]> {
    const { name, bounds } = this.exposition;
    const out: HistogramValue[] = [];
    for (const { labels, counts } of await this.read()) {
      const base = labels as Record<string, string | number>;
      const byBound = new Map(counts.buckets.map((b) => [b.le, b.count]));
      for (const le of bounds) {
        out.push({ metricName: `${name}_bucket`, labels: { ...base, le }, value: byBound.get(le) ?? 0 });
      }
      out.push({ metricName: `${name}_bucket`, labels: { ...base, le: '+Inf' }, value: counts.count });
      out.push({ metricName: `${name}_sum`, labels: base, value: counts.sum });
      out.push({ metricName: `${name}_count`, labels: base, value: counts.count });
    }
    return out;
  }

  private async metricObject() {
    return {
      name: this.exposition.name,
      help: this.exposition.help,
      type: 'histogram',
      values: await this.values(),
      aggregator: 'sum',
    };
  }

  /** What the Registry writes as text (it prefers this method when a metric has it). */
  async getForPromString() {
    return this.metricObject();
  }

  /** The same, for `registry.getMetricsAsJSON()`. */
  override async get(): ReturnType<Histogram<T>['get']> {
    return (await this.metricObject()) as unknown as Awaited<ReturnType<Histogram<T>['get']>>;
  }
}

/** The Prometheus side of the metrics: `text()` is one scrape. */
export interface PrometheusMetrics {
  registry: Registry;
  contentType: string;
  text(): Promise<string>;
}

/**
 * Builds the registry over `load`, which reads a snapshot (metrics/read.ts).
 * Every metric of one scrape is filled from the same snapshot: the first
 * `collect()` of a scrape starts the read and the others join it.
 */
export function createPrometheusMetrics(load: () => Promise<MetricsSnapshot>): PrometheusMetrics {
  const registry = new Registry();
  const registers = [registry];
  let inFlight: Promise<MetricsSnapshot> | undefined;
  const snapshot = () =>
    (inFlight ??= load().finally(() => {
      inFlight = undefined;
    }));

  /** A gauge set from the snapshot on each scrape; label sets that are gone disappear. */
  function gauge<T extends string>(
    name: string,
    help: string,
    labelNames: readonly T[],
    values: (s: MetricsSnapshot) => { labels?: LabelValues<T>; value: number }[],
  ) {
    return new Gauge<T>({
      name,
      help,
      labelNames,
      registers,
      async collect() {
        const s = await snapshot();
        this.reset();
        for (const v of values(s)) this.set(v.labels ?? {}, v.value);
      },
    });
  }

  /** A counter: a total that only grows, read from the tables (so a restart of the API does not reset it). */
  function counter<T extends string>(
    name: string,
    help: string,
    labelNames: readonly T[],
    values: (s: MetricsSnapshot) => { labels?: LabelValues<T>; value: number }[],
  ) {
    return new Counter<T>({
      name,
      help,
      labelNames,
      registers,
      async collect() {
        const s = await snapshot();
        this.reset();
        for (const v of values(s)) this.inc(v.labels ?? {}, Math.max(0, v.value));
      },
    });
  }

  function histogram<T extends string>(
    name: string,
    help: string,
    labelNames: readonly T[],
    buckets: number[],
    values: (s: MetricsSnapshot) => { labels: LabelValues<T>; counts: BucketCounts }[],
  ) {
    return new CountedHistogram<T>({ name, help, labelNames, buckets, registers }, async () =>
      values(await snapshot()),
    );
  }

  const one = (value: number) => [{ value }];

  // Goals
  gauge('keel_goals', 'Goals by status.', ['status'], (s) =>
    Object.entries(s.goals.byStatus).map(([status, value]) => ({ labels: { status }, value })),
  );
  counter('keel_goals_created_total', 'Goals created.', [], (s) => one(s.goals.total));
  counter('keel_plan_replans_total', 'Replans over all goals: plans refused by validation or given up.', [], (s) =>
    one(s.planChurn.replans),
  );
  histogram('keel_goal_plan_churn', 'Plan churn per goal (replans).', [], PLAN_CHURN_BUCKETS, (s) => [
    { labels: {}, counts: s.planChurn.histogram },
  ]);
  gauge('keel_plan_churn_per_goal', 'Replans per goal, on average.', [], (s) => one(s.planChurn.perGoal));

  // People
  gauge('keel_approvals', 'Approvals by status.', ['status'], (s) =>
    Object.entries(s.approvals.byStatus).map(([status, value]) => ({ labels: { status }, value })),
  );
  counter(
    'keel_approval_decisions_total',
    'Decisions by decision and by whom: a person, or the policy (its default on expiry).',
    ['decision', 'by'],
    (s) => [
      { labels: { decision: 'approve', by: 'person' }, value: s.approvals.decisions.approve },
      { labels: { decision: 'reject', by: 'person' }, value: s.approvals.decisions.reject },
      { labels: { decision: 'approve', by: 'policy' }, value: s.approvals.policyDecisions.approve },
      { labels: { decision: 'reject', by: 'policy' }, value: s.approvals.policyDecisions.reject },
    ],
  );
  counter('keel_approval_edits_total', 'Approvals approved with edits.', [], (s) => one(s.approvals.edits));
  histogram(
    'keel_approval_latency_seconds',
    'Time from an approval being asked to it being decided (or expiring, or being cancelled), by the status it ended in.',
    ['status'],
    APPROVAL_LATENCY_BUCKETS,
    (s) => Object.entries(s.approvals.latencySeconds).map(([status, counts]) => ({ labels: { status }, counts })),
  );
  gauge('keel_human_decisions_per_committed_outcome', "People's decisions per completed goal.", [], (s) =>
    one(s.humanIntervention.decisionsPerCommittedOutcome),
  );
  gauge('keel_human_edits_per_approval', 'Approvals approved with edits per approval approved.', [], (s) =>
    one(s.humanIntervention.editsPerApproval),
  );
  gauge('keel_human_intervention_ratio', "People's decisions per step run.", [], (s) => one(s.humanIntervention.ratio));
  counter('keel_steps_run_total', 'Steps that ran (completed, including those later compensated).', [], (s) =>
    one(s.humanIntervention.actions),
  );

  // Cost
  counter('keel_committed_outcomes_total', 'Goals completed.', [], (s) => one(s.cost.committedOutcomes));
  counter('keel_goal_cost_usd_total', 'What goals cost (plans and steps), in US dollars.', [], (s) => one(s.cost.usd));
  gauge('keel_cost_per_committed_outcome_usd', 'Cost of all goals per completed goal, in US dollars.', [], (s) =>
    one(s.cost.perCommittedOutcome),
  );
  counter(
    'keel_model_cost_usd_total',
    "Steps' model cost by the model that answered and its tier, in US dollars.",
    ['model', 'tier'],
    (s) => s.cost.byModel.map((m) => ({ labels: { model: m.model, tier: m.tier }, value: m.usd })),
  );

  // The model output cache (models/cache.ts), over every process.
  const byPurpose = (s: MetricsSnapshot) => Object.entries(s.modelCache.byPurpose);
  counter('keel_model_cache_hits_total', 'Model answers served from the cache, by purpose.', ['purpose'], (s) =>
    byPurpose(s).map(([purpose, f]) => ({ labels: { purpose }, value: f.hits })),
  );
  counter(
    'keel_model_cache_misses_total',
    'Cacheable model calls the cache did not answer, by purpose.',
    ['purpose'],
    (s) => byPurpose(s).map(([purpose, f]) => ({ labels: { purpose }, value: f.misses })),
  );
  counter(
    'keel_model_cache_invalidated_total',
    'Misses whose stored answer was built from something that changed since.',
    ['purpose'],
    (s) => byPurpose(s).map(([purpose, f]) => ({ labels: { purpose }, value: f.invalidated })),
  );
  counter(
    'keel_model_cache_expired_total',
    'Misses whose stored answer was past its freshness window.',
    ['purpose'],
    (s) => byPurpose(s).map(([purpose, f]) => ({ labels: { purpose }, value: f.expired })),
  );
  gauge('keel_model_cache_hit_ratio', 'Hits per cacheable model call, over all purposes.', [], (s) =>
    one(s.modelCache.hitRate),
  );
  counter('keel_model_cache_saved_usd_total', 'What cache hits did not spend, in US dollars.', ['purpose'], (s) =>
    byPurpose(s).map(([purpose, f]) => ({ labels: { purpose }, value: f.usdSaved })),
  );
  counter(
    'keel_model_cache_saved_tokens_total',
    'Tokens cache hits did not spend, by purpose and direction.',
    ['purpose', 'direction'],
    (s) =>
      byPurpose(s).flatMap(([purpose, f]) => [
        { labels: { purpose, direction: 'input' }, value: f.inputTokensSaved },
        { labels: { purpose, direction: 'output' }, value: f.outputTokensSaved },
      ]),
  );

  // Context growth
  gauge(
    'keel_memory_items',
    'Memories by tier: hot (searched, not superseded) and archive (compacted into summaries).',
    ['tier'],
    (s) => [
      { labels: { tier: 'hot' }, value: s.context.memory.hot },
      { labels: { tier: 'archive' }, value: s.context.memory.archived },
    ],
  );
  gauge('keel_memory_items_superseded', 'Memories a newer one superseded (kept, not retrieved).', [], (s) =>
    one(s.context.memory.superseded),
  );
  histogram(
    'keel_working_set_tokens',
    'Tokens of context each memory.recall step assembled for the steps after it.',
    [],
    WORKING_SET_TOKEN_BUCKETS,
    (s) => [{ labels: {}, counts: s.context.workingSetTokens.histogram }],
  );

  // Side effects (connectors: intent before the call, commit after)
  gauge('keel_side_effects', 'Side effects by kind and status.', ['kind', 'status'], (s) =>
    s.sideEffects.map((e) => ({ labels: { kind: e.kind, status: e.status }, value: e.count })),
  );

  return { registry, contentType: registry.contentType, text: () => registry.metrics() };
}
