/** GET /v1/metrics: what the engine did, read from the canonical tables. */
import { Router } from 'express';
import { cacheStats } from '../models/cache';
import { GOAL_STATUSES } from '../shared/goal';
import { route } from './errors';
import type { AppDeps } from './types';

interface ContextRow {
  avg_chars: number | null;
  max_chars: number | null;
  avg_tokens: number | null;
  max_tokens: number | null;
  steps: bigint;
}

export function metricsRoutes(deps: AppDeps): Router {
  const { prisma } = deps;
  const r = Router();

  /** GET /v1/metrics — plan churn, human-intervention ratio, cost per committed outcome, context size, goals by status, the model output cache. */
  r.get(
    '/metrics',
    route(async (_req, res) => {
      const [byStatus, totals, decided, stepsRun, [context], memoryStats, modelCache] = await Promise.all([
        prisma.goal.groupBy({ by: ['status'], _count: { _all: true } }),
        prisma.goal.aggregate({ _sum: { planChurn: true, costUsd: true }, _count: { _all: true } }),
        prisma.approval.count({ where: { status: { in: ['approved', 'rejected'] } } }),
        prisma.step.count({ where: { status: { in: ['completed', 'compensated'] } } }),
        // One scan of the context artifacts for both sizes; aggregates skip rows without a token count.
        prisma.$queryRaw<ContextRow[]>`
          SELECT avg(length(content))::float8 AS avg_chars, max(length(content))::float8 AS max_chars,
                 avg((metadata->>'tokens')::float8) AS avg_tokens, max((metadata->>'tokens')::float8) AS max_tokens,
                 count(metadata->'tokens') AS steps
            FROM artifacts WHERE kind = 'context'`,
        deps.memory.stats(),
        cacheStats(prisma),
      ]);
      const goalsByStatus: Record<string, number> = Object.fromEntries(GOAL_STATUSES.map((s) => [s, 0]));
      for (const row of byStatus) goalsByStatus[row.status] = row._count._all;
      const goals = totals._count._all;
      const completed = goalsByStatus.completed ?? 0;
      res.json({
        goals,
        goalsByStatus,
        planChurn: { replans: totals._sum.planChurn ?? 0, perGoal: goals ? (totals._sum.planChurn ?? 0) / goals : 0 },
        humanInterventionRatio: { decisions: decided, actions: stepsRun, ratio: stepsRun ? decided / stepsRun : 0 },
        costPerCommittedOutcome: {
          usd: totals._sum.costUsd ?? 0,
          committedOutcomes: completed,
          perOutcome: completed ? (totals._sum.costUsd ?? 0) / completed : 0,
        },
        contextSize: {
          avgChars: context?.avg_chars ?? 0,
          maxChars: context?.max_chars ?? 0,
          workingSetTokens: {
            avg: context?.avg_tokens ?? 0,
            max: context?.max_tokens ?? 0,
            steps: Number(context?.steps ?? 0),
          },
          memory: memoryStats,
        },
        // Model answers served again instead of paid for again (models/cache.ts), over every process.
        modelCache,
      });
    }),
  );

  return r;
}
