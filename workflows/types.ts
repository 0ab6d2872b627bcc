/** Plain-JSON inputs and state of goalWorkflow (no Map, Set, Date or classes). */
import type { ApprovalStatus, Decision, FinishedGoalStatus, GoalStatus } from '../shared/goal';
import type { PlanStep, StepOutput, StepStatus } from '../shared/plan';

/** Durations live in the input so tests can use seconds and the workflow stays deterministic. */
export interface GoalSettings {
  approvalTimeoutMs: number;
  escalationTimeoutMs: number;
  connectorHeartbeatMs: number;
  maxReplans: number;
}

export interface GoalInput {
  goalId: string;
  title: string;
  description?: string;
  kind: string;
  input: Record<string, unknown>;
  budgetUsd: number;
  settings: GoalSettings;
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
}

export interface GoalResult {
  goalId: string;
  status: FinishedGoalStatus;
  error?: string;
  outcome?: StepOutput;
}

export type { Decision, GoalStatus, PlanStep };
