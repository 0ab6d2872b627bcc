/**
 * The benchmark baselines: the same step activities as Keel's offline plans,
 * with the same inputs, in a fixed order, with no planning, validation,
 * approval records or bookkeeping. `bareGoalWorkflow` is a note (no
 * approval); `bareApprovalWorkflow` is an email that waits for a bare
 * `decide` update before its send. `bareRecordedNoteWorkflow` is a note that
 * also calls every other activity a Keel note goal calls, the same way (the
 * planner, the plan's record, the end's record and the episodic memory, as
 * local activities): what is left between it and Keel is Keel's workflow code.
 *
 * Bare Temporal code: it imports nothing of Keel's but the activities' types,
 * so a bundle of this file alone (bench:load's baseline) carries no Keel
 * module code, and its options are Keel's presets' timeouts and retries
 * written out (Keel's import the tool registry for their error types).
 */
import {
  ActivityCancellationType,
  condition,
  defineQuery,
  defineUpdate,
  proxyActivities,
  proxyLocalActivities,
  setHandler,
  workflowInfo,
  type ActivityOptions,
  type RetryPolicy,
} from '@temporalio/workflow';
import type { Duration } from '@temporalio/common';
import type { KeelActivities } from '../../activities';

/** What a bare email goal shows: whether it waits for the decision, and the decision once taken. */
export interface BareState {
  status: 'running' | 'awaiting_approval' | 'completed';
  decision?: 'approve' | 'reject';
}
export const bareStateQuery = defineQuery<BareState>('bareState');
export const bareDecideUpdate = defineUpdate<BareState, [{ decision: 'approve' | 'reject' }]>('bareDecide');

/** The connector heartbeat the benchmark's Keel goals run with (its engine's connectorHeartbeatMs). */
const BENCH_CONNECTOR_HEARTBEAT_MS = 30_000;

/** workflows/options.ts's modelPreset, dbPreset and connectorPreset, without their non-retryable error types. */
const retry = (initialInterval: Duration, maximumInterval: Duration, maximumAttempts: number): RetryPolicy => ({
  initialInterval,
  backoffCoefficient: 2,
  maximumInterval,
  maximumAttempts,
});
const modelOptions: ActivityOptions = { startToCloseTimeout: '2 minutes', retry: retry('1s', '30s', 5) };
const dbOptions: ActivityOptions = { startToCloseTimeout: '30s', retry: retry('200ms', '10s', 10) };
const connectorOptions: ActivityOptions = {
  startToCloseTimeout: '5 minutes',
  heartbeatTimeout: BENCH_CONNECTOR_HEARTBEAT_MS,
  cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
  retry: retry('1s', '30s', 20),
};

const activities = () => ({
  model: proxyActivities<KeelActivities>(modelOptions),
  db: proxyActivities<KeelActivities>(dbOptions),
  connector: proxyActivities<KeelActivities>(connectorOptions),
  /** workflows/options.ts's bookkeepingPreset and localPlannerPreset. */
  book: proxyLocalActivities<KeelActivities>({ startToCloseTimeout: '30s', retry: retry('200ms', '10s', 10) }),
  planner: proxyLocalActivities<KeelActivities>({ startToCloseTimeout: '2 minutes', retry: retry('1s', '30s', 10) }),
});

export async function bareGoalWorkflow(input: { goalId: string; query: string; text?: string }): Promise<string> {
  return (await noteSteps(input)).ref;
}

/** A note's three steps (recall, summarize, record), as an offline plan has them. */
async function noteSteps(input: { goalId: string; query: string; text?: string }) {
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
  const costs = [recall, summary, outcome];
  return {
    ref: String(outcome.output.ref),
    output: outcome.output,
    cost: {
      usd: costs.reduce((n, r) => n + r.costUsd, 0),
      inputTokens: costs.reduce((n, r) => n + r.inputTokens, 0),
      outputTokens: costs.reduce((n, r) => n + r.outputTokens, 0),
    },
  };
}

/**
 * A stored note goal (the driver stores it as the API does) run by bare code that calls every activity a Keel
 * note goal calls: the planner, the plan's record, the three steps, the end's record and the episodic memory.
 */
export async function bareRecordedNoteWorkflow(input: {
  goalId: string;
  title: string;
  text: string;
}): Promise<string> {
  const { book, planner } = activities();
  const plan = await planner.planGoal({
    goalId: input.goalId,
    title: input.title,
    kind: 'note',
    input: { text: input.text },
    planVersion: 1,
    feedback: [],
  });
  await book.startPlan({
    goalId: input.goalId,
    planVersion: 1,
    plan,
    steps: plan.steps.map((s) => ({ ...s, requiresApproval: false })),
    planChurn: 0,
  });
  const done = await noteSteps({ goalId: input.goalId, query: input.title, text: input.text });
  await book.transitionGoal({
    goalId: input.goalId,
    status: 'completed',
    event: { type: 'goal.completed' },
    cost: done.cost,
    planChurn: 0,
    outcome: done.output,
    finished: true,
  });
  await book.rememberGoal({ goalId: input.goalId });
  return done.ref;
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
