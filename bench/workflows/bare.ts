/**
 * The benchmark baselines: the same step activities as Keel's offline plans,
 * with the same inputs, in a fixed order, with no planning, validation,
 * approval records or bookkeeping. `bareGoalWorkflow` is a note (no
 * approval); `bareApprovalWorkflow` is an email that waits for a bare
 * `decide` update before its send. `bareRecordedNoteWorkflow` and
 * `bareRecordedEmailWorkflow` also call every other activity a Keel goal of
 * their shape calls, the same way (the planner, the plan's record, the
 * approval's opening and its decision's record, the end's record with the
 * episodic memory): what is left between them and Keel is Keel's workflow code.
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
  uuid4,
  workflowInfo,
  type ActivityOptions,
  type RetryPolicy,
} from '@temporalio/workflow';
import type { Duration } from '@temporalio/common';
import type { KeelActivities } from '../../activities';
import type { StepOutput } from '../../shared/plan';

/** What a bare email goal shows: whether it waits for the decision, and the decision once taken. */
export interface BareState {
  status: 'running' | 'awaiting_approval' | 'completed';
  decision?: 'approve' | 'reject';
}
export const bareStateQuery = defineQuery<BareState>('bareState');
export const bareDecideUpdate = defineUpdate<BareState, [{ decision: 'approve' | 'reject' }]>('bareDecide');

/** The approval deadline the benchmark's Keel goals run with (bench/harness.ts: past the benchmark's end). */
const BENCH_APPROVAL_TIMEOUT_MS = 600_000;
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
  return { ref: String(outcome.output.ref), output: outcome.output, cost: costOf([recall, summary, outcome]) };
}

/** A step's cost, summed over the steps' results (what Keel's end record carries). */
function costOf(results: { costUsd: number; inputTokens: number; outputTokens: number }[]) {
  return {
    usd: results.reduce((n, r) => n + r.costUsd, 0),
    inputTokens: results.reduce((n, r) => n + r.inputTokens, 0),
    outputTokens: results.reduce((n, r) => n + r.outputTokens, 0),
  };
}

/** What the records baselines call before their steps, as a Keel goal does: the planner, then the plan's record. */
async function planAndRecord(goalId: string, title: string, kind: string, input: Record<string, unknown>) {
  const { book, planner } = activities();
  const plan = await planner.planGoal({ goalId, title, kind, input, planVersion: 1, feedback: [] });
  await book.startPlan({
    goalId,
    planVersion: 1,
    plan,
    steps: plan.steps.map((s) => ({ ...s, requiresApproval: s.tool === 'email.send' })),
    planChurn: 0,
  });
  return plan;
}

/** What they call after: the end's record with its episodic memory, in one local activity (finishGoal). */
async function recordEnd(goalId: string, done: { output: StepOutput; cost: ReturnType<typeof costOf> }) {
  await activities().book.finishGoal({
    goalId,
    status: 'completed',
    event: { type: 'goal.completed' },
    cost: done.cost,
    planChurn: 0,
    outcome: done.output,
    finished: true,
  });
}

/**
 * A stored note goal (the driver stores it as the API does) run by bare code that calls every activity a Keel
 * note goal calls: the planner, the plan's record, the three steps, the end's record with the episodic memory.
 */
export async function bareRecordedNoteWorkflow(input: {
  goalId: string;
  title: string;
  text: string;
}): Promise<string> {
  await planAndRecord(input.goalId, input.title, 'note', { text: input.text });
  const done = await noteSteps({ goalId: input.goalId, query: input.title, text: input.text });
  await recordEnd(input.goalId, done);
  return done.ref;
}

export async function bareApprovalWorkflow(input: {
  goalId: string;
  query: string;
  to: string;
  purpose: string;
}): Promise<string> {
  return (await emailSteps(bareHandlers(), input)).ref;
}

/** The bare approval's state, query and decide update: set first thing, so a query never finds them missing. */
function bareHandlers(): BareState {
  const state: BareState = { status: 'running' };
  setHandler(bareStateQuery, () => state);
  setHandler(bareDecideUpdate, (d) => {
    state.decision = d.decision;
    state.status = 'running';
    return state;
  });
  return state;
}

/**
 * A stored email goal run by bare code that calls every activity a Keel email goal calls: the planner, the
 * plan's record, recall and draft, the approval's opening, after the bare decision its record, the send and
 * the outcome, the end's record with the episodic memory.
 */
export async function bareRecordedEmailWorkflow(input: {
  goalId: string;
  title: string;
  to: string;
  purpose: string;
}): Promise<string> {
  const state = bareHandlers();
  const plan = await planAndRecord(input.goalId, input.title, 'email', { to: input.to, purpose: input.purpose });
  const send = plan.steps.find((s) => s.tool === 'email.send')!;
  const { book, db } = activities();
  const approvalId = uuid4();
  const done = await emailSteps(
    state,
    { goalId: input.goalId, query: input.title, to: input.to, purpose: input.purpose },
    {
      beforeDecision: (draft) =>
        book.openApproval({
          approvalId,
          goalId: input.goalId,
          planVersion: 1,
          stepId: send.id,
          tool: send.tool,
          title: send.title,
          rationale: send.rationale,
          inputs: { to: input.to, draft },
          timeoutMs: BENCH_APPROVAL_TIMEOUT_MS,
        }),
      afterDecision: (decision) =>
        db.recordDecision({ approvalId, decision, actor: 'bench', channel: 'api' }).then(() => undefined),
    },
  );
  await recordEnd(input.goalId, done);
  return done.ref;
}

/** An email's steps (recall, draft, a bare decision, send, record); the records baseline's approval calls around the decision. */
async function emailSteps(
  state: BareState,
  input: { goalId: string; query: string; to: string; purpose: string },
  around: {
    beforeDecision?: (draft: StepOutput) => Promise<unknown>;
    afterDecision?: (decision: 'approve' | 'reject') => Promise<void>;
  } = {},
) {
  const { model, db, connector } = activities();
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
  if (around.beforeDecision) await around.beforeDecision(draft.output);
  state.status = 'awaiting_approval';
  await condition(() => state.decision !== undefined);
  if (around.afterDecision) await around.afterDecision(state.decision!);
  if (state.decision !== 'approve') return { ref: 'rejected', output: draft.output, cost: costOf([recall, draft]) };
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
  return { ref: String(outcome.output.ref), output: outcome.output, cost: costOf([recall, draft, sent, outcome]) };
}
