/**
 * The benchmark baseline: the same step activities as a no-approval goal, in a
 * fixed order, with no planning, validation, approvals or bookkeeping.
 */
import { proxyActivities, workflowInfo } from '@temporalio/workflow';
import type { KeelActivities } from '../../activities';
import { dbPreset, modelPreset } from '../../workflows/options';

export async function bareGoalWorkflow(input: { goalId: string; query: string }): Promise<string | undefined> {
  const model = proxyActivities<KeelActivities>(modelPreset);
  const db = proxyActivities<KeelActivities>(dbPreset);
  const base = { goalId: input.goalId, workflowId: workflowInfo().workflowId, planVersion: 1 };
  const recall = await db.recallContext({
    ...base,
    stepId: 'recall',
    tool: 'memory.recall',
    inputs: { query: input.query },
  });
  const summary = await model.summarizeText({
    ...base,
    stepId: 'summarize',
    tool: 'text.summarize',
    inputs: { source: recall.output },
  });
  const outcome = await db.recordOutcome({
    ...base,
    stepId: 'record',
    tool: 'outcome.record',
    inputs: { summary: summary.output },
  });
  return outcome.output.ref;
}
