/** text.summarize: the gist of a text or of an earlier step's output, stored as an artifact. */
import { z } from 'zod';
import { recalledContextSchema } from '../memory-recall/spec';
import { defineTool, stepOutputSchema } from '../spec';
import { once } from '../../shared/once';

export const textSummarize = once('tools/text-summarize/spec#textSummarize', () =>
  defineTool({
    name: 'text.summarize',
    description: 'Summarize text or an earlier step output',
    activity: 'summarizeText',
    input: z.object({
      source: z.union([z.string().min(1), stepOutputSchema]),
      context: recalledContextSchema.optional(),
    }),
    output: stepOutputSchema.extend({ ref: z.string() }),
    refInputs: [],
    risk: 'internal',
    irreversible: false,
    compensation: 'discardArtifact',
    preset: 'model',
    estimatedCostUsd: 0.01,
    errors: [],
  }),
);
