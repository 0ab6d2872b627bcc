/** Goals: start (idempotent on requestId), read, list, cancel, explain, plans, events. */
import { Router } from 'express';
import { z } from 'zod';
import type { Goal } from '../generated/prisma/client';
import { cancelGoal, startGoal } from '../commands/goals';
import { GOAL_STATUSES } from '../shared/goal';
import { planHistory } from '../state/plans';
import { notFound, parse, route } from './errors';
import { commandDeps, type AppDeps } from './types';
import { approvalView, goalSummary } from './views';

const createGoalBody = z.strictObject({
  title: z.string().trim().min(1, 'title is required').max(500),
  description: z.string().max(20_000).optional(),
  kind: z
    .string()
    .trim()
    .min(1)
    .max(50)
    .regex(/^[a-z][a-z0-9_-]*$/, 'kind is a lowercase word')
    .optional(),
  input: z.record(z.string(), z.unknown()).optional(),
  budgetUsd: z.number().positive().max(10_000).optional(),
  requestId: z.string().trim().min(1).max(200).optional(),
});

const listQuery = z.object({
  status: z.enum(GOAL_STATUSES).optional(),
  limit: z.coerce.number().int().min(1).max(500).default(50),
});

const cancelBody = z.strictObject({ reason: z.string().max(2000).optional() });

export function goalRoutes(deps: AppDeps): Router {
  const { prisma } = deps;
  const commands = commandDeps(deps);
  const r = Router();

  async function findGoal(goalId: string): Promise<Goal> {
    const goal = await prisma.goal.findUnique({ where: { id: goalId } });
    if (!goal) throw notFound(`goal ${goalId}`);
    return goal;
  }

  /** POST /v1/goals — stores the goal, then starts goal-<goalId> (commands/goals.ts). The same requestId never starts two goals; 503 naming the cause when Temporal does not take it (the goal stays stored). */
  r.post(
    '/goals',
    route(async (req, res) => {
      const body = parse(createGoalBody, req.body);
      res.status(202).json(await startGoal(commands, body));
    }),
  );

  /** GET /v1/goals — newest first, optionally by status. */
  r.get(
    '/goals',
    route(async (req, res) => {
      const q = parse(listQuery, req.query, 'query');
      const goals = await prisma.goal.findMany({
        where: q.status ? { status: q.status } : {},
        orderBy: { createdAt: 'desc' },
        take: q.limit,
      });
      res.json({ goals: goals.map(goalSummary) });
    }),
  );

  /** GET /v1/goals/:goalId — the canonical view of a goal, its current plan, approvals and cost. */
  r.get(
    '/goals/:goalId',
    route(async (req, res) => {
      const goal = await findGoal(String(req.params.goalId));
      const [steps, approvals] = await Promise.all([
        prisma.step.findMany({
          where: { goalId: goal.id, planVersion: goal.planVersion },
          orderBy: { position: 'asc' },
        }),
        prisma.approval.findMany({ where: { goalId: goal.id }, orderBy: { createdAt: 'asc' } }),
      ]);
      res.json({
        ...goalSummary(goal),
        plan: {
          version: goal.planVersion,
          steps: steps.map((s) => ({
            id: s.stepId,
            tool: s.tool,
            title: s.title,
            status: s.status,
            requiresApproval: s.requiresApproval,
            dependsOn: s.dependsOn,
            ...(s.output ? { output: s.output } : {}),
            ...(s.error ? { error: s.error } : {}),
          })),
        },
        approvals: approvals.map(approvalView),
        outcome: goal.outcome ?? undefined,
        error: goal.error ?? undefined,
      });
    }),
  );

  /** POST /v1/goals/:goalId/cancel — the workflow compensates committed work, then ends cancelled; 409 when finished, 503 when Temporal does not answer. */
  r.post(
    '/goals/:goalId/cancel',
    route(async (req, res) => {
      const body = parse(cancelBody, req.body ?? {});
      res.status(202).json(await cancelGoal(commands, { goalId: String(req.params.goalId), reason: body.reason }));
    }),
  );

  /** GET /v1/goals/:goalId/events — the goal's audit events, oldest first. */
  r.get(
    '/goals/:goalId/events',
    route(async (req, res) => {
      const goal = await findGoal(String(req.params.goalId));
      const events = await prisma.event.findMany({ where: { goalId: goal.id }, orderBy: { seq: 'asc' } });
      res.json({
        events: events.map((e) => ({ seq: Number(e.seq), type: e.type, at: e.at, actor: e.actor, data: e.data })),
      });
    }),
  );

  /** GET /v1/goals/:goalId/plans — every plan version (accepted or refused, with the policy's reasons), and what changed between consecutive ones. */
  r.get(
    '/goals/:goalId/plans',
    route(async (req, res) => {
      const goal = await findGoal(String(req.params.goalId));
      res.json({ goalId: goal.id, ...(await planHistory(prisma, goal.id)) });
    }),
  );

  /** GET /v1/goals/:goalId/explain — for each action: what, why, inputs, model and prompt hash, memory used, approvals, cost. */
  r.get(
    '/goals/:goalId/explain',
    route(async (req, res) => {
      const goal = await findGoal(String(req.params.goalId));
      const [steps, approvals, effects, planEvents, completions] = await Promise.all([
        prisma.step.findMany({ where: { goalId: goal.id }, orderBy: [{ planVersion: 'asc' }, { position: 'asc' }] }),
        prisma.approval.findMany({ where: { goalId: goal.id }, orderBy: { createdAt: 'asc' } }),
        prisma.sideEffect.findMany({ where: { goalId: goal.id }, orderBy: { createdAt: 'asc' } }),
        prisma.event.findMany({
          where: { goalId: goal.id, type: { in: ['plan.accepted', 'plan.rejected'] } },
          orderBy: { seq: 'asc' },
        }),
        prisma.event.findMany({ where: { goalId: goal.id, type: 'step.completed' }, orderBy: { seq: 'asc' } }),
      ]);
      // The memories the actions used, with their text, so an explanation says what Keel relied on.
      const usedIds = [...new Set(steps.flatMap((st) => st.memoryIds))];
      const memoryRows = usedIds.length
        ? await prisma.memoryItem.findMany({ where: { id: { in: usedIds } }, select: { id: true, text: true } })
        : [];
      const memoryText = new Map(memoryRows.map((m) => [m.id, m.text]));
      // What each model step's prompt left out to fit its context window (the latest completion wins).
      const prompts = new Map<string, unknown>();
      for (const e of completions) {
        const data = e.data as { stepId?: string; prompt?: unknown };
        if (data.stepId && data.prompt) prompts.set(data.stepId, data.prompt);
      }
      res.json({
        goalId: goal.id,
        title: goal.title,
        status: goal.status,
        plans: planEvents.map((e) => ({ type: e.type, actor: e.actor, at: e.at, ...(e.data as object) })),
        actions: steps.map((s) => ({
          planVersion: s.planVersion,
          stepId: s.stepId,
          what: `${s.tool}: ${s.title}`,
          why: s.rationale,
          status: s.status,
          inputs: s.inputs,
          output: s.output ?? undefined,
          model: s.model ?? undefined,
          promptHash: s.promptHash ?? undefined,
          memoryUsed: s.memoryIds,
          // Ids with their text (canonical facts such as `contact:…` are named by id only).
          memory: s.memoryIds.map((id) => ({ id, ...(memoryText.has(id) ? { text: memoryText.get(id) } : {}) })),
          prompt: prompts.get(s.stepId),
          approvals: approvals.filter((a) => a.stepId === s.stepId).map(approvalView),
          sideEffects: effects
            .filter((e) => e.stepId === s.stepId)
            .map((e) => ({
              kind: e.kind,
              status: e.status,
              idempotencyKey: e.idempotencyKey,
              attempts: e.attempts,
              result: e.result ?? undefined,
            })),
          cost: { usd: s.costUsd },
        })),
        cost: { usd: goal.costUsd, inputTokens: goal.inputTokens, outputTokens: goal.outputTokens },
      });
    }),
  );

  return r;
}
