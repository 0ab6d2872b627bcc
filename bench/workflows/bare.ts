/**
 * The benchmark baselines: the same step activities as Keel's offline plans,
 * with the same inputs, in a fixed order, with no planning, validation,
 * approval records or bookkeeping. `bareGoalWorkflow` is a note (no
 * approval); `bareApprovalWorkflow` is an email that waits for a bare
 * `decide` update before its send.
 */
import { condition, defineQuery, defineUpdate, proxyActivities, setHandler, workflowInfo } from '@temporalio/workflow';
import type { KeelActivities } from '../../activities';
import { connectorPreset, dbPreset, modelPreset } from '../../workflows/options';

/** What a bare email goal shows: whether it waits for the decision, and the decision once taken. */
export interface BareState {
  status: 'running' | 'awaiting_approval' | 'completed';
  decision?: 'approve' | 'reject';
}
export const bareStateQuery = defineQuery<BareState>('bareState');
export const bareDecideUpdate = defineUpdate<BareState, [{ decision: 'approve' | 'reject' }]>('bareDecide');

/** The connector heartbeat the benchmark's Keel goals run with (its engine's connectorHeartbeatMs). */
const BENCH_CONNECTOR_HEARTBEAT_MS = 30_000;

const activities = () => ({
  model: proxyActivities<KeelActivities>(modelPreset),
  db: proxyActivities<KeelActivities>(dbPreset),
  connector: proxyActivities<KeelActivities>(connectorPreset(BENCH_CONNECTOR_HEARTBEAT_MS)),
});

export async function bareGoalWorkflow(input: { goalId: string; query: string; text?: string }): Promise<string> {
  const { model, db } = activities();
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
    inputs: { source: input.text ?? recall.output, context: recall.output },
  });
  const outcome = await db.recordOutcome({
    ...base,
    stepId: 'record',
    tool: 'outcome.record',
    inputs: { summary: summary.output },
  });
  return String(outcome.output.ref);
}

export async function bareApprovalWorkflow(input: {
  goalId: string;
  query: string;
  to: string;
  purpose: string;
}): Promise<string> {
  const { model, db, connector } = activities();
  const state: BareState = { status: 'running' };
  setHandler(bareStateQuery, () => state);
  setHandler(bareDecideUpdate, (d) => {
    state.decision = d.decision;
    state.status = 'running';
    return state;
  });
  const base = { goalId: input.goalId, workflowId: workflowInfo().workflowId, planVersion: 1 };
  const recall = await db.recallContext({
    ...base,
    stepId: 'recall',
    tool: 'memory.recall',
    inputs: { query: input.query, subject: input.to },
  });
  const draft = await model.draftEmail({
    ...base,
    stepId: 'draft',
    tool: 'email.draft',
    inputs: { to: input.to, purpose: input.purpose, context: recall.output },
  });
  state.status = 'awaiting_approval';
  await condition(() => state.decision !== undefined);
  if (state.decision !== 'approve') return 'rejected';
  const sent = await connector.sendEmail({
    ...base,
    stepId: 'send',
    tool: 'email.send',
    inputs: { to: input.to, draft: draft.output },
  });
  const outcome = await db.recordOutcome({
    ...base,
    stepId: 'record',
    tool: 'outcome.record',
    inputs: { summary: sent.output },
  });
  state.status = 'completed';
  return String(outcome.output.ref);
}
