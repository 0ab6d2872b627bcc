/**
 * Contract types of a goal that the workflow, the activities, the state layer
 * and the API all use. Each status list is a const array: it feeds both the
 * TypeScript type and the API's zod enums, so they cannot drift apart.
 */

export const GOAL_STATUSES = ['planning', 'running', 'awaiting_approval', 'completed', 'failed', 'cancelled'] as const;
export type GoalStatus = (typeof GOAL_STATUSES)[number];

/** The statuses a goal ends in; nothing moves it afterwards. */
export const FINISHED_GOAL_STATUSES = ['completed', 'failed', 'cancelled'] as const satisfies readonly GoalStatus[];
export type FinishedGoalStatus = (typeof FINISHED_GOAL_STATUSES)[number];
export const isFinished = (s: string): s is FinishedGoalStatus =>
  (FINISHED_GOAL_STATUSES as readonly string[]).includes(s);

export const APPROVAL_STATUSES = ['pending', 'approved', 'rejected', 'expired', 'cancelled'] as const;
export type ApprovalStatus = (typeof APPROVAL_STATUSES)[number];

export const DECISIONS = ['approve', 'reject'] as const;
export type DecisionKind = (typeof DECISIONS)[number];

/** The approval status a decision leads to. */
export const decidedStatus = (d: DecisionKind): 'approved' | 'rejected' => (d === 'approve' ? 'approved' : 'rejected');

/**
 * A decision on a pending approval: the one shape the API, the `decide`
 * signal and update, and the recordDecision activity share. `edits` holds
 * the fields the tool's spec lets an operator change (for an email: subject, body).
 */
export interface Decision {
  approvalId: string;
  decision: DecisionKind;
  edits?: Record<string, string>;
  comment?: string;
  actor: string;
  /** Where it came from: `api`, `slack`, `inbox`, `cli` (absent in decisions from before channels were kept). */
  channel?: string;
  /** The channel's idempotency key for it (an Idempotency-Key header, a Slack action id). */
  key?: string;
  /** The hash of what the decider was shown; the workflow refuses a decision on another version. */
  shownHash?: string;
}
