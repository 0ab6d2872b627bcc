/**
 * The operator's policy, as configuration (`KEEL_POLICY`, JSON): which steps
 * wait for a person beyond the ones that always do, which tools each goal
 * kind may use, and how often each connector may act. Pure and
 * sandbox-safe: a goal carries the policy it started with in its settings,
 * so changing it affects new goals only and replays stay deterministic.
 */
import { z } from 'zod';
import { once, onceFrozen } from '../shared/once';

export const RISKS = ['read', 'internal', 'external'] as const;
export type Risk = (typeof RISKS)[number];

const toolNames = once('policy/settings#toolNames', () => z.array(z.string().trim().min(1)).max(100));

/** One connector's limits; each window holds across worker restarts and across workers (stored in PostgreSQL). */
export const rateLimitSchema = once('policy/settings#rateLimitSchema', () =>
  z
    .strictObject({
      perMinute: z.number().int().positive().optional(),
      perHour: z.number().int().positive().optional(),
      perDay: z.number().int().positive().optional(),
    })
    .refine((l) => l.perMinute ?? l.perHour ?? l.perDay, 'a rate limit names perMinute, perHour or perDay'),
);
export type RateLimit = z.infer<typeof rateLimitSchema>;

export const policySchema = once('policy/settings#policySchema', () =>
  z.strictObject({
    approve: z
      .strictObject({
        /** Tools whose every step waits for a person. */
        tools: toolNames.default([]),
        /** Steps of this risk or above wait (irreversible steps always wait, whatever this says). */
        minRisk: z.enum(RISKS).default('external'),
        /** A step that reaches a recipient who is not yet a contact waits, and the approval says so. */
        firstContact: z.boolean().default(true),
        /** In a goal started from outside content (an inbound email, a webhook), every step that writes memory or reaches outside waits. */
        untrusted: z.boolean().default(true),
        /**
         * What an approval that nobody decided in time becomes, per tool: `reject` (the default) or `approve`.
         * An irreversible tool is always rejected on expiry, whatever this says.
         */
        onExpiry: z.record(z.string().trim().min(1), z.enum(['approve', 'reject'])).default({}),
        /** A step whose `amount`/`amountUsd` input is above this waits. */
        amountOverUsd: z.number().nonnegative().optional(),
        /** A step that reaches more recipients than this waits. */
        audienceOver: z.number().int().positive().optional(),
      })
      .default({ tools: [], minRisk: 'external', firstContact: true, untrusted: true, onExpiry: {} }),
    /** When a person's no or a failed step leads to a new plan instead of ending the goal. */
    replan: z
      .strictObject({
        /** A rejected approval: replan when it came with a comment (the default), always, or never. */
        onRejection: z.enum(['with-comment', 'always', 'never']).default('with-comment'),
        /** Tools whose failed steps lead to a replan (with the failure as the reason). */
        onFailure: toolNames.default([]),
        /** Replans of these kinds a goal may make. */
        max: z.number().int().min(0).max(5).default(1),
      })
      .default({ onRejection: 'with-comment', onFailure: [], max: 1 }),
    /** Goal kind → the tools its plans may use (`*`: every kind without its own list). No entry: every tool. */
    tools: z.record(z.string().trim().min(1), toolNames).default({}),
    /** Connector (`email`, `slack`, `webhook`) → its limits. */
    rateLimits: z.record(z.string().trim().min(1), rateLimitSchema).default({}),
  }),
);

export type Policy = z.infer<typeof policySchema>;

/** The policy with nothing configured: what every goal started before policies existed is held to. */
export const DEFAULT_POLICY = onceFrozen('policy/settings#DEFAULT_POLICY', (): Policy => policySchema.parse({}));
