/** outcome.record: what the goal achieved, kept in the canonical store (voided if the goal is compensated). */
import { z } from 'zod';
import { defineTool, stepOutputSchema } from '../spec';
import { once } from '../../shared/once';

export const outcomeRecord = once('tools/outcome-record/spec#outcomeRecord', () =>
  defineTool({
    name: 'outcome.record',
    description: 'Record the outcome of the goal in the canonical store',
    activity: 'recordOutcome',
    input: z.object({ summary: z.union([z.string().min(1), stepOutputSchema]) }),
    output: stepOutputSchema.extend({ ref: z.string() }),
    refInputs: [],
    risk: 'internal',
    irreversible: false,
    writesMemory: true,
    compensation: 'voidOutcome',
    preset: 'db',
    estimatedCostUsd: 0,
    errors: [],
  }),
);
