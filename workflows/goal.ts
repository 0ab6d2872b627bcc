/**
 * goalWorkflow: one goal, planned and run durably. Its code is the central
 * planner: it asks for a plan, validates it against the tool registry and the
 * policy, runs the steps (independent ones in parallel), waits for people at
 * approval checkpoints, and compensates committed work when the goal cannot
 * finish. Large texts never enter this code: steps exchange artifact ids.
 */
import {
  ApplicationFailure,
  CancellationScope,
  allHandlersFinished,
  condition,
  isCancellation,
  log,
  patched,
  proxyActivities,
  proxyLocalActivities,
  setHandler,
  upsertSearchAttributes,
  uuid4,
  workflowInfo,
} from '@temporalio/workflow';
import type { KeelActivities } from '../activities';
import type { PlannedStep } from '../shared/plan';
import { isStepRef, type ProposedPlan, type StepOutput, type StepResult } from '../shared/plan';
import { TOOLS, type ToolSpec } from '../shared/tools';
import { KeelPendingApprovals, KeelStatus, cancelSignal, decideSignal, decideUpdate, stateQuery } from './messages';
import { bookkeepingPreset, connectorPreset, dbPreset, modelPreset } from './options';
import { requiresApproval, validatePlan } from './policy';
import type { ApprovalState, Decision, GoalInput, GoalResult, GoalState, GoalStatus, StepState } from './types';

const KEEL = 'keel';
/** patched() id for the episodic memory written when a goal ends. */
export const EPISODIC_MEMORY_PATCH = 'keel-episodic-memory';
/** patched() id for writing that memory as a local activity. */
export const EPISODIC_MEMORY_LOCAL_PATCH = 'keel-episodic-memory-local';

/** Runs one goal to completed, failed or cancelled. */
export async function goalWorkflow(goal: GoalInput): Promise<GoalResult> {
  const { workflowId } = workflowInfo();
  const settings = goal.settings;

  const book = proxyLocalActivities<KeelActivities>(bookkeepingPreset);
  const planner = proxyActivities<KeelActivities>(modelPreset);
  const byPreset: Record<ToolSpec['preset'], KeelActivities> = {
    model: proxyActivities<KeelActivities>(modelPreset),
    db: proxyActivities<KeelActivities>(dbPreset),
    connector: proxyActivities<KeelActivities>(connectorPreset(settings.connectorHeartbeatMs)),
  };

  const state: GoalState = {
    goalId: goal.goalId,
    title: goal.title,
    status: 'planning',
    plan: { version: 0, steps: [] },
    approvals: [],
    cost: { usd: 0, inputTokens: 0, outputTokens: 0 },
    planChurn: 0,
  };
  const decisions: Record<string, Decision> = {};
  const compensations: { stepId: string; activity: NonNullable<ToolSpec['compensation']>; output: StepOutput }[] = [];
  let cancelRequest: { reason: string; actor: string } | undefined;

  const pendingApprovals = () => state.approvals.filter((a) => a.status === 'pending').length;
  const publishStatus = (status: GoalStatus) => {
    state.status = status;
    upsertSearchAttributes([
      { key: KeelStatus, value: status },
      { key: KeelPendingApprovals, value: pendingApprovals() },
    ]);
  };
  const refreshRunningStatus = () => {
    if (state.status === 'running' || state.status === 'awaiting_approval') {
      publishStatus(pendingApprovals() > 0 ? 'awaiting_approval' : 'running');
    }
  };
  const addCost = (r: { costUsd: number; inputTokens: number; outputTokens: number }) => {
    state.cost.usd += r.costUsd;
    state.cost.inputTokens += r.inputTokens;
    state.cost.outputTokens += r.outputTokens;
  };

  /** Refuses a decision this workflow cannot take; shared by the update validator and the signal. */
  const decisionProblem = (d: Decision): string | undefined => {
    if (d.decision !== 'approve' && d.decision !== 'reject')
      return `decision must be "approve" or "reject", got "${String(d.decision)}"`;
    const approval = state.approvals.find((a) => a.approvalId === d.approvalId);
    if (!approval) return `approval ${d.approvalId} is not part of this goal`;
    if (approval.status !== 'pending' || decisions[d.approvalId])
      return `approval ${d.approvalId} is already ${approval.status === 'pending' ? 'decided' : approval.status}`;
    return undefined;
  };
  const acceptDecision = (d: Decision) => {
    const problem = decisionProblem(d);
    if (problem) {
      log.warn('Ignoring decision', { approvalId: d.approvalId, problem });
      return;
    }
    decisions[d.approvalId] = d;
  };

  let mainScope: CancellationScope | undefined;
  setHandler(stateQuery, () => state);
  setHandler(decideSignal, acceptDecision);
  setHandler(
    decideUpdate,
    (d) => {
      acceptDecision(d);
      return { approvalId: d.approvalId, status: d.decision === 'approve' ? 'approved' : 'rejected' };
    },
    {
      validator: (d) => {
        const problem = decisionProblem(d);
        if (problem) throw new Error(problem);
      },
    },
  );
  setHandler(cancelSignal, (c) => {
    cancelRequest ??= { reason: c.reason ?? 'cancelled by request', actor: c.actor ?? 'unknown' };
    mainScope?.cancel();
  });

  // --- planning -----------------------------------------------------------
  async function plan(): Promise<PlannedStep[]> {
    let feedback: string[] = [];
    for (let attempt = 0; attempt <= settings.maxReplans; attempt++) {
      const version = state.plan.version + 1;
      const proposal: ProposedPlan = await planner.planGoal({
        goalId: goal.goalId,
        title: goal.title,
        description: goal.description,
        kind: goal.kind,
        input: goal.input,
        planVersion: version,
        feedback,
      });
      addCost(proposal);
      state.plan.version = version;
      const problems = validatePlan(proposal.steps, { budgetUsd: goal.budgetUsd, spentUsd: state.cost.usd });
      if (problems.length === 0) {
        const steps = proposal.steps.map((s) => ({ ...s, requiresApproval: requiresApproval(s) }));
        state.plan.steps = steps.map((s) => ({
          id: s.id,
          tool: s.tool,
          title: s.title,
          status: 'pending',
          requiresApproval: s.requiresApproval,
          dependsOn: s.dependsOn,
        }));
        await book.startPlan({
          goalId: goal.goalId,
          planVersion: version,
          plan: proposal,
          steps,
          planChurn: state.planChurn,
        });
        publishStatus('running');
        return steps;
      }
      feedback = problems.map((p) => p.message);
      state.planChurn++;
      await book.recordPlanRejected({ goalId: goal.goalId, planVersion: version, plan: proposal, problems: feedback });
    }
    throw ApplicationFailure.nonRetryable(
      `no valid plan after ${settings.maxReplans + 1} attempts: ${feedback.join('; ')}`,
      'InvalidPlan',
    );
  }

  // --- approvals ----------------------------------------------------------
  async function awaitApproval(step: PlannedStep, stepState: StepState, inputs: Record<string, unknown>) {
    const approval: ApprovalState = {
      approvalId: uuid4(),
      stepId: step.id,
      title: step.title,
      status: 'pending',
      escalated: false,
    };
    state.approvals.push(approval);
    stepState.status = 'awaiting_approval';
    refreshRunningStatus();
    await book.openApproval({
      approvalId: approval.approvalId,
      goalId: goal.goalId,
      planVersion: state.plan.version,
      stepId: step.id,
      tool: step.tool,
      title: step.title,
      rationale: step.rationale,
      inputs,
      timeoutMs: settings.approvalTimeoutMs,
    });
    const decided = () => decisions[approval.approvalId] !== undefined;
    try {
      if (!(await condition(decided, settings.approvalTimeoutMs))) {
        approval.escalated = true;
        await book.escalateApproval({ approvalId: approval.approvalId, goalId: goal.goalId });
        if (!(await condition(decided, settings.escalationTimeoutMs))) {
          approval.status = 'expired';
          await book.expireApproval({ approvalId: approval.approvalId, goalId: goal.goalId });
          throw ApplicationFailure.nonRetryable(
            `approval for step "${step.id}" expired with no decision`,
            'ApprovalExpired',
          );
        }
      }
    } catch (err) {
      if (isCancellation(err) && approval.status === 'pending') {
        approval.status = 'cancelled';
        await CancellationScope.nonCancellable(() =>
          book.expireApproval({ approvalId: approval.approvalId, goalId: goal.goalId, status: 'cancelled' }),
        );
      }
      throw err;
    } finally {
      refreshRunningStatus();
    }
    const d = decisions[approval.approvalId];
    const recorded = await book.recordDecision({
      approvalId: d.approvalId,
      decision: d.decision,
      edits: d.edits,
      comment: d.comment,
      actor: d.actor,
    });
    approval.status = recorded.status;
    approval.decidedBy = d.actor;
    approval.comment = d.comment;
    refreshRunningStatus();
    if (recorded.status === 'rejected') {
      throw ApplicationFailure.nonRetryable(
        `approval for step "${step.id}" rejected by ${d.actor}${d.comment ? `: ${d.comment}` : ''}`,
        'ApprovalRejected',
      );
    }
    return recorded;
  }

  // --- steps --------------------------------------------------------------
  const outputs: Record<string, StepOutput> = {};

  async function runStep(step: PlannedStep): Promise<void> {
    const stepState = state.plan.steps.find((s) => s.id === step.id) as StepState;
    const spec = TOOLS[step.tool];
    const inputs: Record<string, unknown> = {};
    for (const [name, value] of Object.entries(step.inputs)) {
      inputs[name] = isStepRef(value) ? outputs[value.fromStep] : value;
    }
    if (step.requiresApproval) {
      const recorded = await awaitApproval(step, stepState, inputs);
      if (recorded.editedRef) {
        for (const name of spec.refInputs) {
          const current = inputs[name] as StepOutput | undefined;
          if (current?.ref) inputs[name] = { ...current, ref: recorded.editedRef, humanEdited: true };
        }
      }
    }
    stepState.status = 'running';
    const activity = byPreset[spec.preset][spec.activity];
    const result: StepResult = await activity({
      goalId: goal.goalId,
      workflowId,
      planVersion: state.plan.version,
      stepId: step.id,
      tool: step.tool,
      inputs,
    });
    outputs[step.id] = result.output;
    stepState.output = result.output;
    stepState.status = 'completed';
    addCost(result);
    if (spec.compensation) compensations.push({ stepId: step.id, activity: spec.compensation, output: result.output });
  }

  async function runPlan(steps: PlannedStep[]): Promise<void> {
    const finished: Record<string, Promise<void>> = {};
    let firstFailure: unknown;
    const stepsScope = new CancellationScope();
    await stepsScope.run(async () => {
      // Steps were validated acyclic; each starts once everything it depends on has finished.
      const remaining = [...steps];
      while (remaining.length > 0) {
        const index = remaining.findIndex((s) => s.dependsOn.every((d) => finished[d] !== undefined));
        const [step] = remaining.splice(index, 1);
        finished[step.id] = (async () => {
          await Promise.all(step.dependsOn.map((d) => finished[d]));
          await runStep(step);
        })().catch(async (err: unknown) => {
          const stepState = state.plan.steps.find((s) => s.id === step.id) as StepState;
          if (firstFailure === undefined) {
            firstFailure = err;
            stepsScope.cancel();
          }
          if (stepState.status !== 'completed') {
            // A step that never started was skipped because something before it failed.
            const end = stepState.status === 'pending' ? 'skipped' : isCancellation(err) ? 'cancelled' : 'failed';
            stepState.status = end;
            stepState.error = errorMessage(err);
            await CancellationScope.nonCancellable(() =>
              book.markStep({
                goalId: goal.goalId,
                planVersion: state.plan.version,
                stepId: step.id,
                status: end,
                error: stepState.error,
                eventType: `step.${end}`,
              }),
            );
          }
          throw err;
        });
      }
      await Promise.allSettled(Object.values(finished));
    });
    if (firstFailure !== undefined) throw firstFailure;
  }

  async function compensate(reason: string): Promise<void> {
    while (compensations.length > 0) {
      const c = compensations.pop()!;
      try {
        await byPreset.db[c.activity]({
          goalId: goal.goalId,
          planVersion: state.plan.version,
          stepId: c.stepId,
          output: c.output,
          reason,
        });
        const stepState = state.plan.steps.find((s) => s.id === c.stepId);
        if (stepState) stepState.status = 'compensated';
      } catch (err) {
        // A compensation that cannot run is recorded and the rest still run.
        log.error('Compensation failed', { stepId: c.stepId, error: errorMessage(err) });
      }
    }
  }

  // --- the goal -----------------------------------------------------------
  publishStatus('planning');
  let result: GoalResult;
  try {
    mainScope = new CancellationScope();
    await mainScope.run(async () => {
      // A cancel that arrived before this scope existed still counts.
      if (cancelRequest) mainScope?.cancel();
      await runPlan(await plan());
    });
    const outcome = [...state.plan.steps].reverse().find((s) => s.status === 'completed' && s.output)?.output;
    publishStatus('completed');
    await book.transitionGoal({
      goalId: goal.goalId,
      status: 'completed',
      event: { type: 'goal.completed' },
      cost: state.cost,
      planChurn: state.planChurn,
      outcome,
      finished: true,
    });
    result = { goalId: goal.goalId, status: 'completed', outcome };
  } catch (err) {
    const cancelled = isCancellation(err) || cancelRequest !== undefined;
    const reason = cancelled ? (cancelRequest?.reason ?? 'workflow cancelled') : errorMessage(err);
    result = await CancellationScope.nonCancellable(async () => {
      await compensate(reason);
      const status = cancelled ? 'cancelled' : 'failed';
      state.error = reason;
      publishStatus(status);
      await book.transitionGoal({
        goalId: goal.goalId,
        status,
        event: {
          type: cancelled ? 'goal.cancelled' : 'goal.failed',
          actor: cancelled ? (cancelRequest?.actor ?? KEEL) : KEEL,
          data: { reason, failureType: failureType(err) },
        },
        cost: state.cost,
        planChurn: state.planChurn,
        error: reason,
        finished: true,
      });
      return { goalId: goal.goalId, status, error: reason } satisfies GoalResult;
    });
  }
  // Added after the first release (histories recorded before it replay without it), then moved to a
  // local activity to save a task-queue round trip per goal; runs that recorded the first version keep it.
  const rememberGoal = patched(EPISODIC_MEMORY_LOCAL_PATCH)
    ? book.rememberGoal
    : patched(EPISODIC_MEMORY_PATCH)
      ? byPreset.model.rememberGoal
      : undefined;
  if (rememberGoal) {
    await CancellationScope.nonCancellable(async () => {
      try {
        await rememberGoal({ goalId: goal.goalId });
      } catch (err) {
        // Memory is worth having, not worth failing a finished goal over.
        log.warn('Could not write the episodic memory of the goal', { error: errorMessage(err) });
      }
    });
  }
  await condition(allHandlersFinished);
  return result;
}

function errorMessage(err: unknown): string {
  let e: unknown = err;
  // Activity failures wrap the ApplicationFailure that says what went wrong.
  while (e instanceof Error && e.cause instanceof Error && !(e instanceof ApplicationFailure)) e = e.cause;
  return e instanceof Error ? e.message : String(e);
}

function failureType(err: unknown): string | undefined {
  let e: unknown = err;
  while (e instanceof Error) {
    if (e instanceof ApplicationFailure && e.type) return e.type;
    e = e.cause;
  }
  return undefined;
}
