/**
 * The event catalogue: every business event Keel appends to its log, with the
 * data it carries, as one discriminated union; and the only functions that
 * write events. The rebuild (state/rebuild.ts) switches over this union
 * exhaustively, so an event type it ignores does not compile.
 */
import type { Prisma } from '../generated/prisma/client';
import type { Db } from '../db/prisma';
import type { GoalStatus } from '../shared/goal';
import type { PromptFit, StepOutput, StepStatus } from '../shared/plan';

/** A Prisma client or an interactive transaction: both can append events. */
export type DbTx = Db | Prisma.TransactionClient;

type Cost = { usd: number; inputTokens: number; outputTokens: number };

/** The goal row as created, enough to rebuild it. */
export interface GoalCreatedRow {
  id: string;
  requestId: string | null;
  workflowId: string;
  title: string;
  description: string | null;
  kind: string;
  input: Record<string, unknown>;
  budgetUsd: number | null;
  createdAt: Date | string;
}

export interface ArtifactRow {
  id: string;
  goalId: string | null;
  stepId: string | null;
  kind: string;
  title: string;
  content: string;
  contentType: string;
  subject: string | null;
  metadata: Record<string, unknown>;
  version: number;
  previousId: string | null;
  lineageId: string;
  humanEdited: boolean;
}

/** Data every goal transition carries; the rebuild reads the goal's new status, cost, churn and error from it. */
interface GoalEnd {
  goalStatus: GoalStatus;
  cost?: Cost;
  planChurn?: number;
  error?: string;
  reason?: string;
  failureType?: string;
}

/**
 * A step of a plan version as its events keep it (GET /v1/goals/:id/plans).
 * Events written before plans kept every field have only id, tool,
 * requiresApproval and dependsOn.
 */
export interface PlanVersionStep {
  id: string;
  tool: string;
  dependsOn: string[];
  requiresApproval?: boolean;
  title?: string;
  rationale?: string;
  inputs?: Record<string, unknown>;
}

/** Every event type and its data. */
export type KeelEvent =
  | { type: 'goal.created'; data: { goal: GoalCreatedRow; goalStatus: 'planning' } }
  | { type: 'goal.running'; data: { planVersion: number; planChurn: number; goalStatus: 'running' } }
  | { type: 'goal.resumed'; data: { approvalId: string; goalStatus: 'running' } }
  | { type: 'goal.completed'; data: GoalEnd }
  | { type: 'goal.failed'; data: GoalEnd }
  | { type: 'goal.cancelled'; data: GoalEnd }
  | { type: 'goal.cancel_requested'; data: { reason?: string } }
  /** A trust rule (trust/): suggested by unedited approvals, then accepted, dismissed or revoked by the operator. */
  | {
      type: 'trust.suggested';
      data: { ruleId: string; tool: string; audience: string; evidence: number };
    }
  | {
      type: 'trust.accepted' | 'trust.dismissed' | 'trust.revoked';
      data: { ruleId: string; tool: string; audience: string };
    }
  /** The operator approved spending more on the goal ("raise the budget to $X?"). */
  | { type: 'goal.budget_raised'; data: { approvalId: string; from: number; budgetUsd: number } }
  /** Temporal says the run ended outside Keel (terminated in the Web UI or CLI, timed out): state follows. */
  | { type: 'goal.reconciled'; data: { goalStatus: GoalStatus; temporalStatus: string; error: string } }
  | {
      type: 'plan.accepted';
      data: {
        planVersion: number;
        rationale: string;
        model: string;
        promptHash: string;
        steps: PlanVersionStep[];
        generatedBy?: string;
        prompt?: PromptFit;
      };
    }
  | {
      type: 'plan.rejected';
      data: {
        planVersion: number;
        /** Why the policy refused it: the cause of the replan. */
        problems: string[];
        generatedBy: string;
        rationale?: string;
        model?: string;
        promptHash?: string;
        steps?: PlanVersionStep[];
        prompt?: PromptFit;
      };
    }
  /** A running plan given up for a new one: a person's no with a comment, or a failed step the policy replans. */
  | {
      type: 'plan.replanned';
      data: {
        planVersion: number;
        cause: 'approval_rejected' | 'step_failed';
        stepId: string;
        tool: string;
        note: string;
        actor?: string;
      };
    }
  | {
      type: 'step.started';
      data: {
        stepId: string;
        tool: string;
        attempt: number;
        /** The Temporal identity of the worker that ran this attempt (`pid@host`), and the task queue it polled. */
        worker?: string;
        taskQueue?: string;
      };
    }
  | {
      type: 'step.completed';
      data: {
        stepId: string;
        tool: string;
        attempt: number;
        output: StepOutput;
        costUsd: number;
        model?: string;
        /** A model step's prompt fitting: what it left out to fit the context window. */
        prompt?: PromptFit;
      };
    }
  | { type: StepEndType; data: { stepId: string; planVersion: number; error?: string } }
  | {
      type: 'step.compensated';
      /** An artifact step names its artifact and new status; a step whose effect lives outside names its key and what undid it. */
      data: {
        stepId: string;
        ref?: string;
        artifactStatus?: string;
        idempotencyKey?: string;
        undone?: string;
        reason: string;
      };
    }
  | {
      type: 'approval.requested';
      data: { approvalId: string; stepId: string; summary: string; timeoutMs: number; goalStatus: 'awaiting_approval' };
    }
  | {
      type: 'approval.approved' | 'approval.rejected';
      data: { approvalId: string; stepId: string; comment?: string; edited: boolean; editedRef?: string };
    }
  | { type: 'approval.escalated' | 'approval.expired' | 'approval.cancelled'; data: { approvalId: string } }
  | { type: 'memory.feedback'; data: { approvalId: string; outcome: 'approved' | 'rejected'; memories: number } }
  | { type: 'memory.remembered'; data: { memoryId: string; kind: string; subject: string } }
  | { type: 'artifact.created'; data: { artifact: ArtifactRow } }
  | { type: 'artifact.status_changed'; data: { artifactId: string; status: string; reason: string } }
  | { type: 'organization.created'; data: { organization: { id: string; name: string; domain: string } } }
  | {
      type: 'contact.created';
      data: {
        contact: {
          id: string;
          email: string;
          name: string | null;
          organizationId: string | null;
          attributes: Record<string, unknown>;
        };
      };
    }
  | {
      type: 'contact.updated';
      data: {
        contactId: string;
        changes: { name?: string; organizationId?: string; attributes?: Record<string, unknown> };
      };
    }
  | { type: 'inbound.received'; data: { inboundId: string; source: string; type: string; externalId: string } };

export type KeelEventType = KeelEvent['type'];

/** The step statuses the workflow records itself (the activity records running and completed). */
export type StepEndType = `step.${Extract<StepStatus, 'failed' | 'cancelled' | 'skipped'>}`;

/** An event to append: a catalogue entry, who did it, and the goal it belongs to (none for entity events). */
export type NewEvent = KeelEvent & { goalId?: string | null; actor: string };

/** Appends business events to the append-only log (the table refuses UPDATE and DELETE). */
export async function appendEvents(db: DbTx, events: NewEvent[]): Promise<void> {
  if (events.length === 0) return;
  await db.event.createMany({ data: events.map(eventRow) });
}

/** The row of one event, for callers that write it inside a larger statement. */
export function eventRow(e: NewEvent) {
  return { goalId: e.goalId ?? null, type: e.type, actor: e.actor, data: json(e.data) };
}

/**
 * Events as a JSON array of `{type, actor, data}` for a single SQL statement
 * that writes a row change and its events together (see state/goals.ts):
 * `SELECT ... FROM jsonb_array_elements(<this>::jsonb) WITH ORDINALITY`.
 */
export function eventsJson(events: Omit<NewEvent, 'goalId'>[]): string {
  return JSON.stringify(events.map((e) => ({ type: e.type, actor: e.actor, data: e.data })));
}

export const json = (v: unknown): Prisma.InputJsonValue => (v ?? {}) as Prisma.InputJsonValue;
