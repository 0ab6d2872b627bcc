/** Inputs and outputs of Keel's activities: plain JSON, one object parameter each. */
import type { Decision, GoalStatus } from './goal';
import type { PlannedStep, ProposedPlan, StepOutput, StepResult, StepStatus } from './plan';

export interface PlanGoalInput {
  goalId: string;
  title: string;
  description?: string;
  kind: string;
  input: Record<string, unknown>;
  planVersion: number;
  /** Problems with the previous proposal, for a replan. */
  feedback: string[];
  /** The large-tier model pinned for this goal by its first model plan; absent until then (and offline). */
  model?: string;
  /** Why the previous plan was given up after it started: a person's no with their comment, or a failed step. */
  revision?: PlanRevision;
}

/** What made the workflow give up a running plan and ask for another. */
export interface PlanRevision {
  cause: 'approval_rejected' | 'step_failed';
  stepId: string;
  tool: string;
  /** The operator's comment on the rejection, or the step's error. */
  note: string;
  /** Who rejected it (a rejection). */
  actor?: string;
}

/** A running plan given up for a new one (plan churn with its cause). */
export interface ReplanInput {
  goalId: string;
  planVersion: number;
  revision: PlanRevision;
}

export interface StartPlanInput {
  goalId: string;
  planVersion: number;
  plan: ProposedPlan;
  steps: PlannedStep[];
  planChurn: number;
}

export interface PlanRejectedInput {
  goalId: string;
  planVersion: number;
  plan: ProposedPlan;
  problems: string[];
}

export interface GoalTransitionInput {
  goalId: string;
  status: GoalStatus;
  event: {
    type: 'goal.completed' | 'goal.failed' | 'goal.cancelled';
    data?: { reason?: string; failureType?: string };
    actor?: string;
  };
  cost?: { usd: number; inputTokens: number; outputTokens: number };
  planChurn?: number;
  outcome?: StepOutput;
  error?: string;
  finished?: boolean;
}

export interface MarkStepInput {
  goalId: string;
  planVersion: number;
  stepId: string;
  status: Extract<StepStatus, 'failed' | 'cancelled' | 'skipped'>;
  error?: string;
  /** `step.<status>`; kept in the input because recorded histories carry it. */
  eventType: `step.${Extract<StepStatus, 'failed' | 'cancelled' | 'skipped'>}`;
}

/** What every step activity receives; step references already resolved to outputs. */
export interface StepActivityInput {
  goalId: string;
  workflowId: string;
  planVersion: number;
  stepId: string;
  tool: string;
  inputs: Record<string, unknown>;
  /** The goal's pinned large-tier model, for tools that call a model (absent offline and in older runs). */
  model?: string;
  /** The tier the workflow chose for the step's model call within the budget (absent: the tool's own). */
  tier?: 'small' | 'large';
}

export interface OpenApprovalInput {
  approvalId: string;
  goalId: string;
  planVersion: number;
  stepId: string;
  tool: string;
  title: string;
  rationale: string;
  inputs: Record<string, unknown>;
  timeoutMs: number;
  /** Why the policy asks (policy/approvals.ts); shown with the approval as `proposed.why`. */
  reasons?: string[];
}

/** What opening an approval tells the workflow: the hash of what the operator is shown. */
export interface OpenApprovalResult {
  shownHash: string;
  /** An accepted trust rule covers this step: the workflow records it approved by the rule. */
  autoApprovedBy?: { ruleId: string; text: string };
}

/** What the workflow records when a decision arrives. */
export type RecordDecisionInput = Decision;

export interface RecordDecisionResult {
  status: 'approved' | 'rejected';
  /** The human-edited artifact version, when the decision carried edits. */
  editedRef?: string;
}

export interface ApprovalRef {
  approvalId: string;
  goalId: string;
  /** For expireApproval: `cancelled` when the goal stopped waiting, else `expired`. */
  status?: 'expired' | 'cancelled';
}

export interface CompensationInput {
  goalId: string;
  planVersion: number;
  stepId: string;
  output: StepOutput;
  reason: string;
}

export type { PlannedStep, StepResult, ProposedPlan };
