/** Plain-JSON inputs and state of goalWorkflow (no Map, Set, Date or classes). */
import type { ApprovalStatus, Decision, FinishedGoalStatus, GoalStatus } from '../shared/goal';
import type { PriceTable } from '../models/prices';
import type { PlanStep, StepOutput, StepStatus } from '../shared/plan';
import type { Policy } from '../policy/settings';

/** Durations live in the input so tests can use seconds and the workflow stays deterministic. */
export interface GoalSettings {
  approvalTimeoutMs: number;
  escalationTimeoutMs: number;
  connectorHeartbeatMs: number;
  maxReplans: number;
  /** Set when a model endpoint is configured: what model steps are reserved against the budget with. */
  models?: GoalModels;
  /** The operator's policy when the goal started (KEEL_POLICY); goals from before policies use the default. */
  policy?: Policy;
  /**
   * The task queue of the goal's model calls (KEEL_MODEL_TASK_QUEUE when the goal started), where workers hold
   * them to the provider's rate limit; unset (and in runs from before it existed), they run on the goal's own queue.
   */
  modelTaskQueue?: string;
}

/**
 * The model tiers and prices a goal's budget is kept with, fixed when the goal
 * starts (they travel in its input, so a configuration change affects new goals only).
 */
export interface GoalModels {
  small: string;
  large: string;
  prices: PriceTable;
  /** Input tokens a model step is assumed to send at most (its working set and instructions). */
  promptTokens: number;
}

export interface GoalInput {
  goalId: string;
  title: string;
  description?: string;
  kind: string;
  input: Record<string, unknown>;
  budgetUsd: number;
  settings: GoalSettings;
  /** Where the goal came from when not from the operator: an inbound event through a trigger (outside content). */
  origin?: GoalOrigin;
}

/** An inbound event that started a goal through a trigger: its text is outside content, never instructions. */
export interface GoalOrigin {
  kind: 'event';
  source: string;
  externalId: string;
  triggerId: string;
}

export interface StepState {
  id: string;
  tool: string;
  title: string;
  status: StepStatus;
  requiresApproval: boolean;
  dependsOn: string[];
  output?: StepOutput;
  error?: string;
}

export interface ApprovalState {
  approvalId: string;
  stepId: string;
  /** The tool the approval is for (`budget.raise` for a budget approval); absent in runs from before it was kept. */
  tool?: string;
  /** The hash of what the operator is shown (set once the approval is opened); a decision naming another is refused. */
  shownHash?: string;
  /** Its opening activity has answered (runs from before this was kept leave it unset). */
  opened?: boolean;
  title: string;
  status: ApprovalStatus;
  escalated: boolean;
  decidedBy?: string;
  comment?: string;
}

export interface GoalState {
  goalId: string;
  title: string;
  status: GoalStatus;
  plan: { version: number; steps: StepState[] };
  approvals: ApprovalState[];
  cost: { usd: number; inputTokens: number; outputTokens: number };
  planChurn: number;
  error?: string;
  /** The large-tier model of the goal's first model plan: later model calls of the goal keep it. */
  model?: string;
  /** The goal's budget now: its `budgetUsd`, or what the operator raised it to. */
  budgetUsd?: number;
  /** Worst-case cost of the model calls running now, not yet settled. */
  reservedUsd?: number;
}

export interface GoalResult {
  goalId: string;
  status: FinishedGoalStatus;
  error?: string;
  outcome?: StepOutput;
}

export type { Decision, GoalStatus, PlanStep };
