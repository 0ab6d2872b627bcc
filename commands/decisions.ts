/**
 * Decisions on approvals. The goal's workflow is the one writer of a decision
 * (its recordDecision activity stores it): this module only checks the
 * approval can be decided and delivers the decision with the `decide` update,
 * which answers once the decision is stored. No database connection or
 * transaction is held while Temporal is called.
 */
import { createHash, randomUUID as uuid } from 'node:crypto';
import { WorkflowNotFoundError, WorkflowUpdateFailedError } from '@temporalio/client';
import type { Decision, DecisionKind } from '../shared/goal';
import { decideUpdate } from '../workflows/messages';
import { checkEdits, toolOfApproval } from '../state/approvals';
import { CommandError, ConflictError, InvalidError, NotFoundError, UnavailableError } from './errors';
import { reconcileFromTemporal } from './goals';
import { callTemporal } from './temporal';
import type { CommandDeps } from './types';

/** A decision as a caller sends it; who made it comes from the deps. */
export interface DecisionRequest {
  approvalId: string;
  decision: DecisionKind;
  edits?: Record<string, string>;
  comment?: string;
  /** Who decided, when the channel knows better than the deps (a Slack user: `slack:U123`). */
  actor?: string;
  /** Where the decision came from: `api` (default), `slack`, `inbox`, `cli`. */
  channel?: DecisionChannel;
  /**
   * The channel's own id for this decision (the API's Idempotency-Key header,
   * Slack's action id): the same key again is the same decision, answered
   * with the first one's result.
   */
  idempotencyKey?: string;
  /** The hash of what the operator was shown (the approval's `shownHash`); a decision on another version is refused. */
  shownHash?: string;
}

export const DECISION_CHANNELS = ['api', 'slack', 'inbox', 'cli'] as const;
export type DecisionChannel = (typeof DECISION_CHANNELS)[number];

export interface DecisionAnswer {
  approvalId: string;
  status: string;
}

/** How many decisions of one batch are in flight at once. */
export const DECISION_CONCURRENCY = 8;

/**
 * Decides one approval: NotFoundError when it does not exist, ConflictError
 * when it is no longer pending or the workflow refuses it (its validator's
 * message, e.g. `approval … is already rejected`) or the workflow ended
 * outside Keel (the goal is reconciled first), UnavailableError when Temporal
 * does not answer in time. A success means the decision is stored.
 */
export async function decide(deps: CommandDeps, request: DecisionRequest): Promise<DecisionAnswer> {
  const channel = request.channel ?? 'api';
  const key = request.idempotencyKey !== undefined ? `${channel}:${request.idempotencyKey}` : undefined;
  const approval = await deps.prisma.approval.findUnique({
    where: { id: request.approvalId },
    select: {
      id: true,
      status: true,
      goalId: true,
      stepId: true,
      decisionKey: true,
      goal: { select: { id: true, workflowId: true } },
    },
  });
  if (!approval) throw new NotFoundError(`approval ${request.approvalId} does not exist`);
  if (approval.status !== 'pending') {
    // The same key again (a repeated click, a retried request) is the same decision: its first answer.
    if (key !== undefined && approval.decisionKey === key) return { approvalId: approval.id, status: approval.status };
    throw new ConflictError(`approval ${approval.id} is already ${approval.status}`);
  }
  if (request.edits) {
    // The step's tool spec says which fields an operator may change; anything else is refused before Temporal.
    const checked = checkEdits(await toolOfApproval(deps.prisma, approval), request.edits);
    if (!checked.ok) throw new InvalidError(checked.problem);
    request = { ...request, edits: checked.edits };
  }
  const decision: Decision = {
    approvalId: approval.id,
    decision: request.decision,
    ...(request.edits ? { edits: request.edits } : {}),
    ...(request.comment !== undefined ? { comment: request.comment } : {}),
    actor: request.actor ?? deps.actor,
    channel,
    ...(key !== undefined ? { key } : {}),
    ...(request.shownHash !== undefined ? { shownHash: request.shownHash } : {}),
  };
  try {
    const answer = await callTemporal(deps.client, deps.temporalTimeoutMs, () =>
      deps.client.workflow
        .getHandle(approval.goal.workflowId)
        .executeUpdate(decideUpdate, { args: [decision], updateId: updateIdOf(decision) }),
    );
    return { approvalId: answer.approvalId, status: answer.status };
  } catch (err) {
    if (err instanceof WorkflowUpdateFailedError) {
      // The validator's (or the handler's) own words: `approval … is already rejected`, `… is not part of this goal`.
      throw new ConflictError((err.cause as Error | undefined)?.message ?? err.message);
    }
    if (err instanceof WorkflowNotFoundError) {
      const after = await reconcileFromTemporal(deps, approval.goal, 'decide');
      throw new ConflictError(`approval ${approval.id} can no longer be decided: ${after.explanation}`);
    }
    if (err instanceof UnavailableError) {
      throw new UnavailableError(
        `the decision on approval ${approval.id} is not confirmed; retry it (the same decision is applied once): ${err.message}`,
        undefined,
        err.unreachable,
      );
    }
    throw err;
  }
}

/**
 * The update's id, from the approval and the channel's own id for the
 * decision: the same key again (a repeated click, a retry after a timeout) is
 * the same update, which Temporal answers with the first one's result instead
 * of running it twice. Without a key every request is its own update, so a
 * second decision on a decided approval is refused by the validator (409).
 */
function updateIdOf(d: Decision): string {
  if (d.key === undefined) return `decide:${d.approvalId}:${uuid()}`;
  const digest = createHash('sha256').update(d.key).digest('hex').slice(0, 32);
  return `decide:${d.approvalId}:${digest}`;
}

export type BatchOutcome =
  { ok: true; answer: DecisionAnswer } | { ok: false; approvalId: string; error: CommandError };

/**
 * Decides many approvals, each independently, at most DECISION_CONCURRENCY
 * at a time, answering in the order given. Once one decision finds Temporal
 * unreachable, those not yet sent are not sent: they answer with the same
 * cause instead of each waiting out its own deadline.
 */
export async function decideMany(deps: CommandDeps, requests: DecisionRequest[]): Promise<BatchOutcome[]> {
  const outcomes: BatchOutcome[] = new Array(requests.length);
  let down: UnavailableError | undefined;
  let next = 0;
  const lane = async () => {
    while (next < requests.length) {
      const i = next++;
      const request = requests[i];
      if (down) {
        outcomes[i] = {
          ok: false,
          approvalId: request.approvalId,
          error: new UnavailableError(
            `not sent, Temporal was unavailable for this batch: ${down.message}`,
            undefined,
            true,
          ),
        };
        continue;
      }
      try {
        outcomes[i] = { ok: true, answer: await decide(deps, request) };
      } catch (err) {
        if (!(err instanceof CommandError)) throw err;
        // Only an unreachable Temporal stops the batch: a slow answer for one goal says nothing about the others.
        if (err instanceof UnavailableError && err.unreachable) down ??= err;
        outcomes[i] = { ok: false, approvalId: request.approvalId, error: err };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(DECISION_CONCURRENCY, requests.length) }, lane));
  return outcomes;
}
