/**
 * followup.wait's check, after the workflow's timer: did the awaited person
 * write (an inbound `email.received` event from their address) since the
 * wait began? The events are the adapters' record (POST /v1/events).
 */
import { parseAddress } from '../../state/entities';
import { implementTool } from '../runtime';
import { durationMs } from '../../shared/duration';
import { followupWait } from './spec';

export const checkFollowUp = implementTool(followupWait, async ({ after, awaitingReplyFrom }, _step, deps) => {
  const waitedMs = durationMs(after);
  const address = awaitingReplyFrom ? (parseAddress(awaitingReplyFrom)?.email ?? awaitingReplyFrom) : undefined;
  if (!address) return { output: { replied: false, halt: false, waitedMs, preview: `Waited ${after}.` } };
  // The timer fired just now, so the wait began `after` ago (a retried check looks a little further back).
  const since = new Date(Date.now() - waitedMs);
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
