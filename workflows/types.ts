/** Plain-JSON inputs and state of goalWorkflow (no Map, Set, Date or classes). */
import type { PlanStep, StepOutput, StepStatus } from '../shared/plan';

export type GoalStatus = 'planning' | 'running' | 'awaiting_approval' | 'completed' | 'failed' | 'cancelled';

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
  status: 'pending' | 'approved' | 'rejected' | 'expired' | 'cancelled';
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
}

export interface GoalResult {
  goalId: string;
  status: 'completed' | 'failed' | 'cancelled';
  error?: string;
  outcome?: StepOutput;
}

export interface Decision {
  approvalId: string;
  decision: 'approve' | 'reject';
  edits?: Record<string, unknown>;
  comment?: string;
  actor: string;
}

export type { PlanStep };
