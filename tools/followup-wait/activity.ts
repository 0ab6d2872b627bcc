/**
 * followup.wait's check, after the workflow's timer: did the awaited person
 * write (an inbound `email.received` event from their address) since the
 * wait began? The events are the adapters' record (POST /v1/events).
 */
import { parseAddress } from '../../state/entities';
import { implementTool } from '../runtime';
import { durationMs } from '../../shared/duration';
import { followupWait } from './spec';

export const checkFollowUp = implementTool(followupWait, async ({ after, awaitingReplyFrom }, step, deps) => {
  const waitedMs = durationMs(after);
  const address = awaitingReplyFrom ? (parseAddress(awaitingReplyFrom)?.email ?? awaitingReplyFrom) : undefined;
  if (!address) return { output: { replied: false, halt: false, waitedMs, preview: `Waited ${after}.` } };
  // The wait began when the steps it depends on finished (a busy worker may run this check well after the
  // timer fired, so "now minus the wait" would miss early replies); without them, `after` ago.
  const [began] = await deps.prisma.$queryRaw<{ at: Date | null }[]>`
    SELECT max(d.finished_at) AS at
      FROM steps w JOIN steps d
        ON d.goal_id = w.goal_id AND d.plan_version = w.plan_version AND d.step_id = ANY(w.depends_on)
     WHERE w.goal_id = ${step.goalId} AND w.plan_version = ${step.planVersion} AND w.step_id = ${step.stepId}`;
  const since = began?.at ?? new Date(Date.now() - waitedMs);
  const [reply] = await deps.prisma.$queryRaw<{ id: string }[]>`
    SELECT id FROM inbound_events
     WHERE type = 'email.received' AND received_at >= ${since}
       AND position(lower(${address}) IN lower(coalesce(payload->>'from', ''))) > 0
     ORDER BY received_at LIMIT 1`;
  return {
    output: {
      replied: reply !== undefined,
      halt: reply !== undefined,
      waitedMs,
      ...(reply ? { replyEventId: reply.id } : {}),
      preview: reply ? `${address} replied within ${after}.` : `No reply from ${address} in ${after}.`,
    },
  };
});
