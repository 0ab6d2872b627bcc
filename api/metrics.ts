/**
 * GET /v1/metrics (JSON) and GET /metrics (Prometheus text): two views of one
 * snapshot read from the canonical tables at request time (metrics/read.ts),
 * so they agree with each other and across API processes.
 */
import { Router, type RequestHandler } from 'express';
import { createPrometheusMetrics } from '../metrics/prometheus';
import { readMetrics, type TierModels } from '../metrics/read';
import { route } from './errors';
import type { AppDeps } from './types';

/** The models the tiers name in this API's configuration, to label model cost by tier. */
function tierModels(deps: AppDeps): TierModels | undefined {
  if (deps.goalSettings.models) return { small: deps.goalSettings.models.small, large: deps.goalSettings.models.large };
  if (deps.models) return { small: deps.models.endpoint('small').model, large: deps.models.endpoint('large').model };
  return undefined;
}

const loader = (deps: AppDeps) => () =>
  readMetrics({ prisma: deps.prisma, memory: deps.memory, tiers: tierModels(deps) });

export function metricsRoutes(deps: AppDeps): Router {
  const load = loader(deps);
  const r = Router();

  /**
   * GET /v1/metrics — goals by status, plan churn, human intervention (decisions per step and per committed
   * outcome, edits per approval), approval latency, cost per committed outcome and by model, context growth,
   * side effects, the model output cache.
   */
  r.get(
    '/metrics',
    route(async (_req, res) => {
      const m = await load();
      res.json({
        goals: m.goals.total,
        goalsByStatus: m.goals.byStatus,
        planChurn: { replans: m.planChurn.replans, perGoal: m.planChurn.perGoal },
        planChurnPerGoal: m.planChurn.histogram,
        humanInterventionRatio: {
          decisions: m.humanIntervention.decisions,
          actions: m.humanIntervention.actions,
          ratio: m.humanIntervention.ratio,
          committedOutcomes: m.humanIntervention.committedOutcomes,
          perCommittedOutcome: m.humanIntervention.decisionsPerCommittedOutcome,
          edits: m.approvals.edits,
          editsPerApproval: m.humanIntervention.editsPerApproval,
        },
        approvals: m.approvals,
        costPerCommittedOutcome: {
          usd: m.cost.usd,
          committedOutcomes: m.cost.committedOutcomes,
          perOutcome: m.cost.perCommittedOutcome,
        },
        modelCost: m.cost.byModel,
        contextSize: {
          avgChars: m.context.avgChars,
          maxChars: m.context.maxChars,
          workingSetTokens: m.context.workingSetTokens,
          memory: m.context.memory,
        },
        // Model answers served again instead of paid for again (models/cache.ts), over every process.
        modelCache: m.modelCache,
        sideEffects: m.sideEffects,
      });
    }),
  );

  return r;
}

/**
 * GET /metrics — the same snapshot as Prometheus text exposition (prom-client). The app mounts it behind the
 * API key: Prometheus sends it as a bearer token (`authorization.credentials_file` in the scrape config).
 */
export function prometheusRoute(deps: AppDeps): RequestHandler {
  const prometheus = createPrometheusMetrics(loader(deps));
  return route(async (_req, res) => {
    const text = await prometheus.text();
    res.type(prometheus.contentType).send(text);
  });
}
