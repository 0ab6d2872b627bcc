/**
 * The goal's live state (what the `state` query answers), the activities it
 * calls, and the few operations on that state every part of the goal uses.
 */
import {
  type ActivityOptions,
  ApplicationFailure,
  patched,
  proxyActivities,
  proxyLocalActivities,
  upsertSearchAttributes,
} from '@temporalio/workflow';
import type { KeelActivities } from '../../activities';
import type { GoalStatus } from '../../shared/goal';
import type { ToolPreset } from '../../tools/spec';
import { KeelPendingApprovals, KeelStatus } from '../messages';
import { bookkeepingPreset, connectorPreset, dbPreset, localPlannerPreset, modelPreset } from '../options';
import type { GoalInput, GoalState, StepState } from '../types';

/**
 * patched() id of the lean goal path: a goal without a model plans in a
 * local activity (no task-queue round trip and no workflow task of its own),
 * its status is not upserted again at start (the start sets it), and every
 * older patch is implied by this one instead of adding a marker and a
 * TemporalChangeVersion upsert of its own. Runs recorded before it replay
 * the old path, each older patch asked for as it was.
 */
export const LEAN_GOAL_PATCH = 'keel-lean-goal';

/**
 * patched() id of the lean path's second step: a goal's end is recorded and
 * remembered in one local activity (finishGoal) instead of two. It stands
 * for LEAN_GOAL_PATCH and for the patches after it
 * (keel-decision-recorded-after-accept), so a run carries one patch marker
 * again; runs recorded before it replay as they ran.
 */
export const FINISH_GOAL_PATCH = 'keel-finish-goal';

/** One goal run: its input, state and activities, shared by the planning, approval and step code. */
export type GoalRun = ReturnType<typeof createGoalRun>;

/** Called first thing in the workflow, so the lean patch's marker is the run's first command. */
export function createGoalRun(goal: GoalInput) {
  const finishInOne = patched(FINISH_GOAL_PATCH);
  const lean = finishInOne || patched(LEAN_GOAL_PATCH);
  // Model calls go to the queue pinned in the goal's input, so a run keeps scheduling them where it began even
  // when the configuration changes; runs without it (all runs from before it existed) use the goal's own queue.
  const modelOptions: ActivityOptions = goal.settings.modelTaskQueue
    ? { ...modelPreset, taskQueue: goal.settings.modelTaskQueue }
    : modelPreset;
  const acts = {
    /** Bookkeeping in the canonical store, as local activities (no task-queue round trip). */
    book: proxyLocalActivities<KeelActivities>(bookkeepingPreset),
    planner: proxyActivities<KeelActivities>(modelOptions),
    /** The planner of a goal without a model (the offline planner: rules and one query), in the lean path. */
    localPlanner: proxyLocalActivities<KeelActivities>(localPlannerPreset),
    /** Tool activities, by the preset their spec names (the `model` preset is exactly the tools that call a model). */
    byPreset: {
      model: proxyActivities<KeelActivities>(modelOptions),
      db: proxyActivities<KeelActivities>(dbPreset),
      connector: proxyActivities<KeelActivities>(connectorPreset(goal.settings.connectorHeartbeatMs)),
    } satisfies Record<ToolPreset, KeelActivities>,
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

  const pendingApprovals = () => state.approvals.filter((a) => a.status === 'pending').length;

  /** Sets the status and shows it (and the pending approvals) in the Temporal Web UI's search attributes. */
  const publishStatus = (status: GoalStatus) => {
    state.status = status;
    upsertSearchAttributes([
      { key: KeelStatus, value: status },
      { key: KeelPendingApprovals, value: pendingApprovals() },
    ]);
  };

  return {
    goal,
    acts,
    state,
    /** Whether this run takes the lean path (LEAN_GOAL_PATCH). */
    lean,
    /** Whether this run records and remembers its end in one local activity (FINISH_GOAL_PATCH). */
    finishInOne,
    /**
     * patched(id) for a change older than the lean path: a lean run has it
     * without asking (no marker, no upsert); an older run asks as it always did.
     */
    hasPatch: (id: string) => lean || patched(id),
    /**
     * patched(id) for a change between the lean path and FINISH_GOAL_PATCH
     * (keel-decision-recorded-after-accept): a finish-in-one run has it
     * without asking; a lean run from before it asks.
     */
    hasPatchBeforeFinish: (id: string) => finishInOne || patched(id),
    publishStatus,
    /** While steps run, the status says whether anything waits for a person. */
    refreshRunningStatus() {
      if (state.status === 'running' || state.status === 'awaiting_approval') {
        publishStatus(pendingApprovals() > 0 ? 'awaiting_approval' : 'running');
      }
    },
    addCost(r: { costUsd: number; inputTokens: number; outputTokens: number }) {
      state.cost.usd += r.costUsd;
      state.cost.inputTokens += r.inputTokens;
      state.cost.outputTokens += r.outputTokens;
    },
    /** The state of a step of the current plan; a step the plan does not have is a broken plan, not a crash. */
    stepState(stepId: string): StepState {
      const found = state.plan.steps.find((s) => s.id === stepId);
      if (!found) throw ApplicationFailure.nonRetryable(`step "${stepId}" is not in the plan`, 'InvalidPlan');
      return found;
    },
  };
}
