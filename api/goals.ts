/** Goals: start (idempotent on requestId), read, list, cancel, explain, events. */
import { randomUUID } from 'node:crypto';
import { Router } from 'express';
import { WorkflowExecutionAlreadyStartedError, WorkflowNotFoundError } from '@temporalio/client';
import { z } from 'zod';
import type { Goal } from '../generated/prisma/client';
import { appendEvents } from '../state/events';
import { goalWorkflow } from '../workflows';
import { cancelSignal, goalWorkflowId, KeelPendingApprovals, KeelStatus } from '../workflows/messages';
import type { GoalInput } from '../workflows/types';
import { conflict, notFound, parse, route, unavailable } from './errors';
import type { AppDeps } from './app';

const FINISHED = ['completed', 'failed', 'cancelled'];

/** What starting a goal's workflow needs from its row. */
type StartableGoal = Pick<Goal, 'id' | 'workflowId' | 'title' | 'description' | 'kind' | 'budgetUsd' | 'status'> & {
  input: unknown;
};
export const GOAL_STATUSES = ['planning', 'running', 'awaiting_approval', 'completed', 'failed', 'cancelled'] as const;

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
  const { prisma, client } = deps;
  const r = Router();

  async function findGoal(goalId: string): Promise<Goal> {
    const goal = await prisma.goal.findUnique({ where: { id: goalId } });
    if (!goal) throw notFound(`goal ${goalId}`);
    return goal;
  }

  async function startWorkflow(goal: StartableGoal): Promise<void> {
    const input: GoalInput = {
      goalId: goal.id,
      title: goal.title,
      description: goal.description ?? undefined,
      kind: goal.kind,
      input: goal.input as Record<string, unknown>,
      budgetUsd: goal.budgetUsd ?? deps.defaultBudgetUsd,
      settings: deps.goalSettings,
    };
    try {
      await client.workflow.start(goalWorkflow, {
        workflowId: goal.workflowId,
        taskQueue: deps.taskQueue,
        args: [input],
        memo: { title: goal.title },
        typedSearchAttributes: [
          { key: KeelStatus, value: 'planning' },
          { key: KeelPendingApprovals, value: 0 },
        ],
        workflowIdReusePolicy: 'REJECT_DUPLICATE',
      });
    } catch (err) {
      // Started by an earlier request with the same requestId: that is the point of it.
      if (err instanceof WorkflowExecutionAlreadyStartedError) return;
      throw unavailable(
        `Temporal did not accept the goal (it is stored; retry with the same requestId): ${(err as Error).message}`,
      );
    }
  }

  /** POST /v1/goals — stores the goal, then starts goal-<goalId>. The same requestId never starts two goals. */
  r.post(
    '/goals',
    route(async (req, res) => {
      const body = parse(createGoalBody, req.body);
      let goal: StartableGoal | null = body.requestId
        ? await prisma.goal.findUnique({ where: { requestId: body.requestId } })
        : null;
      if (!goal) {
        const id = randomUUID();
        const createdAt = new Date();
        const row = {
          id,
          requestId: body.requestId ?? null,
          workflowId: goalWorkflowId(id),
          title: body.title,
          description: body.description ?? null,
          kind: body.kind ?? (typeof body.input?.to === 'string' ? 'email' : 'auto'),
          input: body.input ?? {},
          budgetUsd: body.budgetUsd ?? null,
          createdAt,
        };
        // One statement: the goal and its goal.created event commit together. Of two concurrent requests
        // with one requestId, the second inserts nothing and reads the first's goal below.
        const inserted = await prisma.$executeRaw`
          WITH g AS (
            INSERT INTO goals (id, request_id, workflow_id, title, description, kind, input, budget_usd, status, created_at, updated_at)
            VALUES (${row.id}, ${row.requestId}, ${row.workflowId}, ${row.title}, ${row.description}, ${row.kind},
                    ${JSON.stringify(row.input)}::jsonb, ${row.budgetUsd}::float8, 'planning', ${createdAt}, ${createdAt})
            ON CONFLICT (request_id) DO NOTHING
            RETURNING id)
          INSERT INTO events (goal_id, type, actor, data)
          SELECT id, 'goal.created', 'api', ${JSON.stringify({ goal: row, goalStatus: 'planning' })}::jsonb FROM g`;
        goal =
          inserted > 0
            ? { ...row, status: 'planning' }
            : await prisma.goal.findUnique({ where: { requestId: body.requestId ?? '' } });
        if (!goal) throw new Error(`goal with requestId ${body.requestId} was neither inserted nor found`);
      }
      await startWorkflow(goal);
      res.status(202).json({ goalId: goal.id, workflowId: goal.workflowId, status: goal.status });
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

  /** POST /v1/goals/:goalId/cancel — the workflow compensates committed work, then ends cancelled. */
  r.post(
    '/goals/:goalId/cancel',
    route(async (req, res) => {
      const body = parse(cancelBody, req.body ?? {});
      const goal = await findGoal(String(req.params.goalId));
      if (FINISHED.includes(goal.status)) throw conflict(`goal ${goal.id} is already ${goal.status}`);
      try {
        await client.workflow
          .getHandle(goal.workflowId)
          .signal(cancelSignal, { reason: body.reason ?? 'cancelled through the API', actor: 'api' });
      } catch (err) {
        if (err instanceof WorkflowNotFoundError) throw conflict(`goal ${goal.id} is no longer running`);
        throw unavailable(`Temporal did not take the cancel request: ${(err as Error).message}`);
      }
      await appendEvents(prisma, [
        { goalId: goal.id, type: 'goal.cancel_requested', actor: 'api', data: { reason: body.reason } },
      ]);
      res.status(202).json({ goalId: goal.id, status: 'cancelling' });
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

  /** GET /v1/goals/:goalId/explain — for each action: what, why, inputs, model and prompt hash, memory used, approvals, cost. */
  r.get(
    '/goals/:goalId/explain',
    route(async (req, res) => {
      const goal = await findGoal(String(req.params.goalId));
      const [steps, approvals, effects, planEvents] = await Promise.all([
        prisma.step.findMany({ where: { goalId: goal.id }, orderBy: [{ planVersion: 'asc' }, { position: 'asc' }] }),
        prisma.approval.findMany({ where: { goalId: goal.id }, orderBy: { createdAt: 'asc' } }),
        prisma.sideEffect.findMany({ where: { goalId: goal.id }, orderBy: { createdAt: 'asc' } }),
        prisma.event.findMany({
          where: { goalId: goal.id, type: { in: ['plan.accepted', 'plan.rejected'] } },
          orderBy: { seq: 'asc' },
        }),
      ]);
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

export function goalSummary(goal: Goal) {
  return {
    goalId: goal.id,
    workflowId: goal.workflowId,
    title: goal.title,
    kind: goal.kind,
    status: goal.status,
    cost: { usd: goal.costUsd, inputTokens: goal.inputTokens, outputTokens: goal.outputTokens },
    planChurn: goal.planChurn,
    createdAt: goal.createdAt,
    updatedAt: goal.updatedAt,
  };
}

export function approvalView(a: {
  id: string;
  goalId: string;
  stepId: string;
  title: string;
  summary: string;
  rationale: string;
  proposed: unknown;
  status: string;
  decision: string | null;
  comment: string | null;
  actor: string | null;
  escalated: boolean;
  createdAt: Date;
  expiresAt: Date;
  decidedAt: Date | null;
}) {
  return {
    approvalId: a.id,
    goalId: a.goalId,
    stepId: a.stepId,
    title: a.title,
    summary: a.summary,
    rationale: a.rationale,
    proposed: a.proposed,
    status: a.status,
    escalated: a.escalated,
    createdAt: a.createdAt,
    expiresAt: a.expiresAt,
    ...(a.decidedAt
      ? { decidedAt: a.decidedAt, decision: a.decision, actor: a.actor, comment: a.comment ?? undefined }
      : {}),
  };
}
