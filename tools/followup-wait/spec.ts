/**
 * followup.wait: a durable timer, then a look for a reply. The workflow
 * sleeps for `after` (a Temporal timer: it survives worker restarts and costs
 * nothing while it waits), then this tool's activity checks whether
 * `awaitingReplyFrom` wrote since the wait began. When they did, the steps
 * that depend on it are not needed and are skipped ("if no reply in 3 days,
 * draft a nudge"); when nobody did, they run.
 */
import { z } from 'zod';
import { DURATION_PATTERN, durationMs } from '../../shared/duration';
import { defineTool, stepOutputSchema } from '../spec';
import { once } from '../../shared/once';

/** The longest wait a plan may ask for. */
export const FOLLOW_UP_MAX_MS = 30 * 24 * 3_600_000;

const duration = once('tools/followup-wait/spec#duration', () =>
  z
    .string()
    .trim()
    .regex(DURATION_PATTERN, 'a duration like 90s, 30m, 12h or 3d')
    // zod runs this check after a failed pattern too: a text that is not a duration is the pattern's issue alone.
    .refine(
      (t) => !DURATION_PATTERN.test(t) || (durationMs(t) >= 1_000 && durationMs(t) <= FOLLOW_UP_MAX_MS),
      'between 1s and 30d',
    ),
);

export const followupWait = once('tools/followup-wait/spec#followupWait', () =>
  defineTool({
    name: 'followup.wait',
    description:
      'Wait (a durable timer), then check whether a person replied; steps that depend on it run only when nobody did, e.g. "if no reply in 3 days, draft a nudge"',
    activity: 'checkFollowUp',
    input: z.object({
      after: duration,
      /** Whose reply ends the follow-up (an email address); without it the wait always lets the next steps run. */
      awaitingReplyFrom: z.string().min(3).max(320).optional(),
    }),
    output: stepOutputSchema.extend({
      replied: z.boolean(),
      /** True when a reply came: the steps after this one are not needed. */
      halt: z.boolean(),
      waitedMs: z.number().int().nonnegative(),
      replyEventId: z.string().optional(),
    }),
    refInputs: [],
    risk: 'read',
    irreversible: false,
    preset: 'db',
    estimatedCostUsd: 0,
    errors: [],
    waitFor: 'after',
  }),
);
