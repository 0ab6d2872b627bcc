/** How goals and approvals look in answers: the shapes shared/API.md documents. */
import type { Goal } from '../generated/prisma/client';

/** A goal in lists and at the top of its own view. */
export function goalSummary(goal: Goal) {
  return {
    goalId: goal.id,
    workflowId: goal.workflowId,
    title: goal.title,
    kind: goal.kind,
    status: goal.status,
    cost: { usd: goal.costUsd, inputTokens: goal.inputTokens, outputTokens: goal.outputTokens },
    /** The goal's budget (null: the engine's default, KEEL_DEFAULT_BUDGET_USD); raised when the operator approves more. */
    budgetUsd: goal.budgetUsd,
    planChurn: goal.planChurn,
    createdAt: goal.createdAt,
    updatedAt: goal.updatedAt,
  };
}

/** An approval as the inbox, the goal view and explanations show it. */
export function approvalView(a: {
  id: string;
  goalId: string;
  stepId: string;
  title: string;
  summary: string;
  rationale: string;
  proposed: unknown;
  status: string;
  decision: string | null;
  edits?: unknown;
  comment: string | null;
  actor: string | null;
  escalated: boolean;
  createdAt: Date;
  expiresAt: Date;
  decidedAt: Date | null;
  shown?: unknown;
  shownHash?: string | null;
  channel?: string | null;
  decidedHash?: string | null;
}) {
  return {
    approvalId: a.id,
    goalId: a.goalId,
    stepId: a.stepId,
    title: a.title,
    summary: a.summary,
    rationale: a.rationale,
    proposed: a.proposed,
    status: a.status,
    escalated: a.escalated,
    createdAt: a.createdAt,
    expiresAt: a.expiresAt,
    // What the operator is shown (provenance, risk, cost so far) and its hash, which a decision may name.
    ...(a.shownHash ? { shownHash: a.shownHash, shown: a.shown } : {}),
    ...(a.decidedAt
      ? {
          decidedAt: a.decidedAt,
          decision: a.decision,
          actor: a.actor,
          comment: a.comment ?? undefined,
          ...(a.edits ? { edits: a.edits } : {}),
          ...(a.channel ? { channel: a.channel } : {}),
          ...(a.decidedHash ? { decidedHash: a.decidedHash } : {}),
        }
      : {}),
  };
}
