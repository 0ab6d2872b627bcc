/** memory.recall: the step's working set — canonical facts and ranked memories — under a token budget. */
import { z } from 'zod';
import { defineTool, stepOutputSchema } from '../spec';
import { once } from '../../shared/once';

export const memoryRecall = once('tools/memory-recall/spec#memoryRecall', () =>
  defineTool({
    name: 'memory.recall',
    description: 'Gather what Keel knows that is relevant to the goal',
    activity: 'recallContext',
    input: z.object({
      query: z.string().min(1),
      /** A person (`Ada <ada@example.com>` or a bare address) or any subject key. */
      subject: z.string().min(1).optional(),
      tokenBudget: z.number().int().positive().optional(),
    }),
    output: stepOutputSchema.extend({
      ref: z.string(),
      /** How many working-set items were found; 0 means nothing is on record. */
      items: z.number().int().min(0),
      tokens: z.number().int().min(0),
      subject: z.string().optional(),
    }),
    refInputs: [],
    risk: 'read',
    irreversible: false,
    preset: 'db',
    estimatedCostUsd: 0,
    errors: [],
  }),
);

/** A recalled context as a later step receives it. */
export const recalledContextSchema = memoryRecall.output;
export type RecalledContext = z.infer<typeof recalledContextSchema>;
