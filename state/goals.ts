/** Canonical goal, plan and step records, each change written with its event in one transaction. */
import { ApplicationFailure } from '@temporalio/common';
import type { Db } from '../db/prisma';
import type {
  GoalTransitionInput,
  MarkStepInput,
  PlanRejectedInput,
  ReplanInput,
  StartPlanInput,
} from '../shared/activity-io';
import { appendEvents, eventsJson, type KeelEvent } from './events';

export function createGoalStateActivities(prisma: Db) {
  return {
    /** Stores an accepted plan version and moves the goal to running. */
    async startPlan(input: StartPlanInput): Promise<void> {
      const steps = input.steps.map((s, position) => ({
        id: `${input.goalId}:${input.planVersion}:${s.id}`,
        step_id: s.id,
        position,
        tool: s.tool,
        title: s.title,
        rationale: s.rationale,
        inputs: s.inputs,
        depends_on: s.dependsOn,
        requires_approval: s.requiresApproval,
      }));
      const events = eventsJson([
        {
          type: 'plan.accepted',
          actor: input.plan.generatedBy,
          data: {
            planVersion: input.planVersion,
            rationale: input.plan.rationale,
            model: input.plan.model,
            promptHash: input.plan.promptHash,
            generatedBy: input.plan.generatedBy,
            steps: input.steps.map((s) => ({
              id: s.id,
              tool: s.tool,
              title: s.title,
              rationale: s.rationale,
              inputs: s.inputs,
              requiresApproval: s.requiresApproval,
              dependsOn: s.dependsOn,
            })),
            ...(input.plan.prompt ? { prompt: input.plan.prompt } : {}),
          },
        },
        {
          type: 'goal.running',
          actor: 'keel',
          data: { planVersion: input.planVersion, planChurn: input.planChurn, goalStatus: 'running' },
        },
      ]);
      // One statement (one round trip, one atomic change): the steps (a retry finds them and adds
      // nothing), the goal's new status, and both events in order.
      const written = await prisma.$executeRaw`
        WITH s AS (
          INSERT INTO steps (id, goal_id, plan_version, step_id, position, tool, title, rationale, inputs, depends_on,
                             requires_approval, status, model, prompt_hash)
          SELECT x.id, ${input.goalId}, ${input.planVersion}::int, x.step_id, x.position, x.tool, x.title, x.rationale, x.inputs,
                 ARRAY(SELECT jsonb_array_elements_text(x.depends_on)), x.requires_approval, 'pending',
                 ${input.plan.model}, ${input.plan.promptHash}
            FROM jsonb_to_recordset(${JSON.stringify(steps)}::jsonb) AS x(id text, step_id text, position int, tool text, title text,
                 rationale text, inputs jsonb, depends_on jsonb, requires_approval boolean)
          ON CONFLICT (id) DO NOTHING),
        g AS (
          UPDATE goals SET status = 'running', plan_version = ${input.planVersion}::int,
                 plan_churn = ${input.planChurn}::int, updated_at = now()
           WHERE id = ${input.goalId} RETURNING id)
        INSERT INTO events (goal_id, type, actor, data)
        SELECT g.id, e.value->>'type', e.value->>'actor', e.value->'data'
          FROM g, jsonb_array_elements(${events}::jsonb) WITH ORDINALITY AS e(value, n)
         ORDER BY e.n`;
      if (written === 0) throw ApplicationFailure.nonRetryable(`goal ${input.goalId} does not exist`, 'NotFound');
    },

    /** Records a plan the workflow refused, with every reason, for plan-churn metrics and explanations. */
    async recordPlanRejected(input: PlanRejectedInput): Promise<void> {
      await prisma.$transaction(async (tx) => {
        await tx.goal.update({
          where: { id: input.goalId },
          data: { planChurn: { increment: 1 }, updatedAt: new Date() },
        });
        await appendEvents(tx, [
          {
            goalId: input.goalId,
            type: 'plan.rejected',
            actor: 'keel',
            data: {
              planVersion: input.planVersion,
              problems: input.problems,
              generatedBy: input.plan.generatedBy,
              rationale: input.plan.rationale,
              model: input.plan.model,
              promptHash: input.plan.promptHash,
              // Every version is kept whole, refused ones too, so the plan history shows what changed.
              steps: input.plan.steps.map((s) => ({
                id: s.id,
                tool: s.tool,
                title: s.title,
                rationale: s.rationale,
                inputs: s.inputs,
                dependsOn: s.dependsOn,
              })),
              ...(input.plan.prompt ? { prompt: input.plan.prompt } : {}),
            },
          },
        ]);
      });
    },

    /**
     * Records that a running plan was given up for a new one (a person's no with a comment, a failed
     * step the policy replans): one more plan churn, with its cause. Once per plan version, so a retry
     * does not count it twice.
     */
    async recordReplan(input: ReplanInput): Promise<void> {
      await prisma.$transaction(async (tx) => {
        const already = await tx.event.findFirst({
          where: {
            goalId: input.goalId,
            type: 'plan.replanned',
            data: { path: ['planVersion'], equals: input.planVersion },
          },
          select: { seq: true },
        });
        if (already) return;
        await tx.goal.update({
          where: { id: input.goalId },
          data: { planChurn: { increment: 1 }, updatedAt: new Date() },
        });
        await appendEvents(tx, [
          {
            goalId: input.goalId,
            type: 'plan.replanned',
            actor: input.revision.actor ?? 'keel',
            data: { planVersion: input.planVersion, ...input.revision },
          },
        ]);
      });
    },

    /** Moves a goal to a new status with its event, cost and outcome. */
    async transitionGoal(input: GoalTransitionInput): Promise<void> {
      const data: Extract<KeelEvent, { type: typeof input.event.type }>['data'] = {
        goalStatus: input.status,
        ...(input.event.data ?? {}),
        ...(input.cost ? { cost: input.cost } : {}),
        ...(input.planChurn !== undefined ? { planChurn: input.planChurn } : {}),
        ...(input.error !== undefined ? { error: input.error } : {}),
      };
      // One statement, so one round trip: the row change and its event commit together or not at all.
      const updated = await prisma.$executeRaw`
        WITH g AS (
          UPDATE goals SET
            status = ${input.status},
            updated_at = now(),
            finished_at = CASE WHEN ${input.finished ?? false} THEN now() ELSE finished_at END,
            cost_usd = coalesce(${input.cost?.usd ?? null}::float8, cost_usd),
            input_tokens = coalesce(${input.cost?.inputTokens ?? null}::int, input_tokens),
            output_tokens = coalesce(${input.cost?.outputTokens ?? null}::int, output_tokens),
            plan_churn = coalesce(${input.planChurn ?? null}::int, plan_churn),
            outcome = coalesce(${input.outcome === undefined ? null : JSON.stringify(input.outcome)}::jsonb, outcome),
            error = coalesce(${input.error ?? null}::text, error)
          WHERE id = ${input.goalId}
          RETURNING id)
        INSERT INTO events (goal_id, type, actor, data)
        SELECT id, ${input.event.type}, ${input.event.actor ?? 'keel'}, ${JSON.stringify(data)}::jsonb FROM g`;
      if (updated === 0) throw ApplicationFailure.nonRetryable(`goal ${input.goalId} does not exist`, 'NotFound');
    },

    /** Records a step's status change made by the workflow (failed, cancelled, skipped). */
    async markStep(input: MarkStepInput): Promise<void> {
      await prisma.$transaction(async (tx) => {
        await tx.step.updateMany({
          where: { goalId: input.goalId, planVersion: input.planVersion, stepId: input.stepId },
          data: { status: input.status, error: input.error ?? null, finishedAt: new Date() },
        });
        await appendEvents(tx, [
          {
            goalId: input.goalId,
            type: input.eventType,
            actor: 'keel',
            data: { stepId: input.stepId, planVersion: input.planVersion, error: input.error },
          },
        ]);
      });
    },
  };
}
