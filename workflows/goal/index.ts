/**
 * goalWorkflow: one goal, planned and run durably. Its code is the central
 * planner: it asks for a plan, validates it against the tool registry and the
 * policy, runs the steps (independent ones in parallel), waits for people at
 * approval checkpoints, and compensates committed work when the goal cannot
 * finish. Large texts never enter this code: steps exchange artifact ids.
 *
 * This file is the story; the parts live beside it: state.ts (live state and
 * activities), plan.ts (planning and validation), approvals.ts (checkpoints
 * and decisions), run.ts (steps and the compensation stack).
 */
import {
  CancellationScope,
  allHandlersFinished,
  condition,
  isCancellation,
  log,
  patched,
  setHandler,
  workflowInfo,
} from '@temporalio/workflow';
import { cancelSignal, decideSignal, decideUpdate, stateQuery } from '../messages';
import { DEFAULT_POLICY } from '../../policy';
import type { GoalTransitionInput, PlanRevision } from '../../shared/activity-io';
import type { GoalInput, GoalResult } from '../types';
import { createApprovals } from './approvals';
import { createBudget } from './budget';
import { errorMessage, failureType } from './errors';
import { planGoal, revisionFor } from './plan';
import { createRunner } from './run';
import { createGoalRun } from './state';

const KEEL = 'keel';
/** patched() id for the episodic memory written when a goal ends. */
export const EPISODIC_MEMORY_PATCH = 'keel-episodic-memory';
/** patched() id for writing that memory as a local activity. */
export const EPISODIC_MEMORY_LOCAL_PATCH = 'keel-episodic-memory-local';

/** patched() id: a rejected approval with a comment (or a failed step the policy names) leads to a new plan. */
export const REPLAN_PATCH = 'keel-replan-after-start';

/** Runs one goal to completed, failed or cancelled. */
export async function goalWorkflow(goal: GoalInput): Promise<GoalResult> {
  const run = createGoalRun(goal);
  const policy = goal.settings.policy ?? DEFAULT_POLICY;
  const { state, acts } = run;
  const approvals = createApprovals(run);
  const budget = createBudget(run, approvals);
  const runner = createRunner(run, approvals, budget);
  let cancelRequest: { reason: string; actor: string } | undefined;
  /** Whether the goal's end was remembered with its record (finishGoal). */
  let remembered = false;
  /**
   * Records the goal's end: with its episodic memory in one local activity on the finish-in-one path (a memory
   * that failed there is logged and asked again by rememberGoal below), else the record alone.
   */
  async function finish(end: GoalTransitionInput): Promise<void> {
    if (!run.finishInOne) return acts.book.transitionGoal(end);
    const { memoryError } = await acts.book.finishGoal(end);
    if (memoryError) log.warn('Could not write the episodic memory with the end of the goal', { error: memoryError });
    remembered = !memoryError;
  }
  let mainScope: CancellationScope | undefined;

  // --- handlers: what people and the API can ask of a running goal ---------
  setHandler(stateQuery, () => state);
  setHandler(decideSignal, approvals.accept);
  setHandler(decideUpdate, approvals.decide, {
    validator: (d) => {
      const problem = approvals.decisionProblem(d);
      if (problem) throw new Error(problem);
    },
  });
  setHandler(cancelSignal, (c) => {
    cancelRequest ??= { reason: c.reason ?? 'cancelled by request', actor: c.actor ?? 'unknown' };
    mainScope?.cancel();
  });

  // --- the main path: plan, run, then record how it ended -------------------
  // The start set the status to planning (commands/goals.ts); runs from before the lean path said it again.
  if (!run.lean) run.publishStatus('planning');
  let result: GoalResult;
  try {
    mainScope = new CancellationScope();
    await mainScope.run(async () => {
      // A cancel that arrived before this scope existed still counts.
      if (cancelRequest) mainScope?.cancel();
      let revision: PlanRevision | undefined;
      for (let replans = 0; ; replans++) {
        try {
          await runner.runPlan(await planGoal(run, budget, revision), workflowInfo().workflowId);
          return;
        } catch (err) {
          // A person's no with a comment (or a failed step the policy names) may lead to one new plan
          // that uses it; runs from before replanning existed end here as they always did.
          revision = replans < policy.replan.max ? revisionFor(err, run, policy) : undefined;
          if (!revision || cancelRequest || !run.hasPatch(REPLAN_PATCH)) throw err;
          // The given-up plan's committed work is undone first (a draft nobody will send is discarded).
          await runner.compensate(`replanned: ${revision.note}`);
          state.planChurn++;
          await acts.book.recordReplan({ goalId: goal.goalId, planVersion: state.plan.version, revision });
          run.publishStatus('planning');
        }
      }
    });
    const outcome = [...state.plan.steps].reverse().find((s) => s.status === 'completed' && s.output)?.output;
    run.publishStatus('completed');
    await finish({
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
      await runner.compensate(reason);
      const status = cancelled ? 'cancelled' : 'failed';
      state.error = reason;
      run.publishStatus(status);
      await finish({
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
  // Since FINISH_GOAL_PATCH the end's own activity writes it, and this asks again only when that failed.
  const rememberGoal = remembered
    ? undefined
    : run.hasPatch(EPISODIC_MEMORY_LOCAL_PATCH)
      ? acts.book.rememberGoal
      : patched(EPISODIC_MEMORY_PATCH)
        ? acts.byPreset.model.rememberGoal
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
