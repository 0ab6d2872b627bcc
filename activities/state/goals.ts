/** Canonical goal, plan and step records, each change written with its event in one transaction. */
import type { Db } from '../../lib/prisma';
import type { GoalTransitionInput, MarkStepInput, PlanRejectedInput, StartPlanInput } from '../types';
import { appendEvents, json } from './events';

export function createGoalStateActivities(prisma: Db) {
  return {
    /** Stores an accepted plan version and moves the goal to running. */
    async startPlan(input: StartPlanInput): Promise<void> {
      await prisma.$transaction(async (tx) => {
        for (const s of input.steps) {
          const id = `${input.goalId}:${input.planVersion}:${s.id}`;
          await tx.step.upsert({
            where: { id },
            update: {},
            create: {
              id,
              goalId: input.goalId,
              planVersion: input.planVersion,
              stepId: s.id,
              tool: s.tool,
              title: s.title,
              rationale: s.rationale,
              inputs: json(s.inputs),
              dependsOn: s.dependsOn,
              requiresApproval: s.requiresApproval,
              status: 'pending',
              model: input.plan.model,
              promptHash: input.plan.promptHash,
            },
          });
        }
        await tx.goal.update({
          where: { id: input.goalId },
          data: {
            status: 'running',
            planVersion: input.planVersion,
            planChurn: input.planChurn,
            updatedAt: new Date(),
          },
        });
        await appendEvents(tx, [
          {
            goalId: input.goalId,
            type: 'plan.accepted',
            actor: input.plan.generatedBy,
            data: {
              planVersion: input.planVersion,
              rationale: input.plan.rationale,
              model: input.plan.model,
              promptHash: input.plan.promptHash,
              steps: input.steps.map((s) => ({
                id: s.id,
                tool: s.tool,
                requiresApproval: s.requiresApproval,
                dependsOn: s.dependsOn,
              })),
            },
          },
          {
            goalId: input.goalId,
            type: 'goal.running',
            actor: 'keel',
            data: { planVersion: input.planVersion, planChurn: input.planChurn, goalStatus: 'running' },
          },
        ]);
      });
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
            data: { planVersion: input.planVersion, problems: input.problems, generatedBy: input.plan.generatedBy },
          },
        ]);
      });
    },

    /** Moves a goal to a new status with its event, cost and outcome. */
    async transitionGoal(input: GoalTransitionInput): Promise<void> {
      await prisma.$transaction(async (tx) => {
        const now = new Date();
        await tx.goal.update({
          where: { id: input.goalId },
          data: {
            status: input.status,
            updatedAt: now,
            ...(input.finished ? { finishedAt: now } : {}),
            ...(input.cost
              ? { costUsd: input.cost.usd, inputTokens: input.cost.inputTokens, outputTokens: input.cost.outputTokens }
              : {}),
            ...(input.planChurn !== undefined ? { planChurn: input.planChurn } : {}),
            ...(input.outcome !== undefined ? { outcome: json(input.outcome) } : {}),
            ...(input.error !== undefined ? { error: input.error } : {}),
          },
        });
        await appendEvents(tx, [
          {
            goalId: input.goalId,
            type: input.event.type,
            actor: input.event.actor ?? 'keel',
            data: {
              goalStatus: input.status,
              ...(input.event.data ?? {}),
              ...(input.cost ? { cost: input.cost } : {}),
              ...(input.planChurn !== undefined ? { planChurn: input.planChurn } : {}),
              ...(input.error !== undefined ? { error: input.error } : {}),
            },
          },
        ]);
      });
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
