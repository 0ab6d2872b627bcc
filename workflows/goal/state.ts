/**
 * The goal's live state (what the `state` query answers), the activities it
 * calls, and the few operations on that state every part of the goal uses.
 */
import {
  type ActivityOptions,
  ApplicationFailure,
  proxyActivities,
  proxyLocalActivities,
  upsertSearchAttributes,
} from '@temporalio/workflow';
import type { KeelActivities } from '../../activities';
import type { GoalStatus } from '../../shared/goal';
import type { ToolPreset } from '../../tools/spec';
import { KeelPendingApprovals, KeelStatus } from '../messages';
import { bookkeepingPreset, connectorPreset, dbPreset, modelPreset } from '../options';
import type { GoalInput, GoalState, StepState } from '../types';

/** One goal run: its input, state and activities, shared by the planning, approval and step code. */
export type GoalRun = ReturnType<typeof createGoalRun>;

export function createGoalRun(goal: GoalInput) {
  // Model calls go to the queue pinned in the goal's input, so a run keeps scheduling them where it began even
  // when the configuration changes; runs without it (all runs from before it existed) use the goal's own queue.
  const modelOptions: ActivityOptions = goal.settings.modelTaskQueue
    ? { ...modelPreset, taskQueue: goal.settings.modelTaskQueue }
    : modelPreset;
  const acts = {
    /** Bookkeeping in the canonical store, as local activities (no task-queue round trip). */
    book: proxyLocalActivities<KeelActivities>(bookkeepingPreset),
    planner: proxyActivities<KeelActivities>(modelOptions),
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
