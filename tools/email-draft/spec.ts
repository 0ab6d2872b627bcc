/** email.draft: writes an email draft and stores it as an artifact, for a person to review before it is sent. */
import { z } from 'zod';
import { recalledContextSchema } from '../memory-recall/spec';
import { defineTool, stepOutputSchema } from '../spec';
import { once } from '../../shared/once';

/**
 * A draft is written by the large tier, may drop to the small one to fit a
 * budget, and takes at most 800 tokens; the same request built from the same
 * memories is answered from the output cache for 15 minutes.
 */
export const DRAFT_MODEL = { tier: 'large', maxTokens: 800, downgrade: true, cacheForMs: 15 * 60_000 } as const;

export const emailDraft = once('tools/email-draft/spec#emailDraft', () =>
  defineTool({
    name: 'email.draft',
    description: 'Write an email draft and store it as an artifact',
    activity: 'draftEmail',
    input: z.object({
      to: z.string().min(1),
      purpose: z.string().min(1),
      context: recalledContextSchema.optional(),
      /** What the operator said when they rejected an earlier draft of this email: the new draft answers it. */
      revision: z.string().max(4000).optional(),
    }),
    output: stepOutputSchema.extend({ ref: z.string(), to: z.string(), subject: z.string() }),
    refInputs: ['context'],
    risk: 'internal',
    irreversible: false,
    compensation: 'discardArtifact',
    preset: 'model',
    estimatedCostUsd: 0.02,
    errors: [],
    model: DRAFT_MODEL,
  }),
);
