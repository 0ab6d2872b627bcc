/**
 * For tests of single tool activities in Temporal's MockActivityEnvironment:
 * a goal stored with a plan of the given steps (as the workflow stores it
 * before running them), the activity input for each step, and a runner that
 * sets the attempt number.
 */
import { MockActivityEnvironment } from '@temporalio/testing';
import { DefaultLogger } from '@temporalio/worker';
import type { Db } from '../../db/prisma';
import type { StepActivityInput } from '../../shared/activity-io';
import type { PlanStep } from '../../shared/plan';
import { createGoalStateActivities } from '../../state/goals';
import { createGoal } from '../../state/intake';
import { requiresApproval } from '../../policy';

export interface ToolGoal {
  goalId: string;
  workflowId: string;
  /** The activity input for step `stepId` of plan version 1 (another workflow id for "another run"). */
  input(stepId: string, inputs: Record<string, unknown>, workflowId?: string): StepActivityInput;
}

/** A goal whose plan (version 1) has `steps`, each `{id, tool}` plus what the plan says. */
export async function goalWithSteps(
  prisma: Db,
  title: string,
  steps: (Pick<PlanStep, 'id' | 'tool'> & Partial<PlanStep>)[],
): Promise<ToolGoal> {
  const { goal } = await createGoal(prisma, { title, kind: 'general', input: {} }, 'operator:test');
  const planned = steps.map((s) => ({
    title: s.id,
    rationale: '',
    inputs: {},
    dependsOn: [],
    ...s,
  }));
  await createGoalStateActivities(prisma).startPlan({
    goalId: goal.id,
    planVersion: 1,
    plan: {
      steps: planned,
      rationale: 'test plan',
      generatedBy: 'test',
      model: 'none',
      promptHash: 'none',
      costUsd: 0,
      inputTokens: 0,
      outputTokens: 0,
    },
    steps: planned.map((s) => ({ ...s, requiresApproval: requiresApproval(s) })),
    planChurn: 0,
  });
  const toolOf = (id: string) => planned.find((s) => s.id === id)?.tool ?? 'unknown';
  return {
    goalId: goal.id,
    workflowId: goal.workflowId,
    input: (stepId, inputs, workflowId = goal.workflowId) => ({
      goalId: goal.id,
      workflowId,
      planVersion: 1,
      stepId,
      tool: toolOf(stepId),
      inputs,
    }),
  };
}

/** Runs `fn` as attempt `attempt` of the step's workflow in a MockActivityEnvironment. */
export function runAttempt<R>(
  fn: (input: StepActivityInput) => Promise<R>,
  input: StepActivityInput,
  attempt = 1,
): Promise<R> {
  const env = new MockActivityEnvironment(
    { attempt, workflowExecution: { workflowId: input.workflowId, runId: '00000000-0000-4000-8000-000000000001' } },
    { logger: new DefaultLogger('ERROR') }, // failures are what these tests expect
  );
  return env.run<[StepActivityInput], R, typeof fn>(fn, input);
}

/** The rejection of `p`, or a failed expectation when it resolves. */
export async function failureOf(p: Promise<unknown>): Promise<any> {
  return p.then(
    (v) => {
      throw new Error(`expected a failure, got ${JSON.stringify(v)}`);
    },
    (e: unknown) => e,
  );
}
