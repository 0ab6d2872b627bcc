/** text.extract: named fields pulled out of a text, each a string or null when the text does not say. */
import { z } from 'zod';
import { defineTool, stepOutputSchema } from '../spec';
import { once } from '../../shared/once';

/** Extraction is a small-tier call of at most 600 output tokens. */
export const EXTRACT_MODEL = { tier: 'small', maxTokens: 600, downgrade: false } as const;

/** At most this many fields per step, and this long a value: outputs travel through workflow history. */
export const MAX_FIELDS = 20;
export const MAX_VALUE_LENGTH = 500;

/** A field name is an identifier, so it is a JSON Schema property and a template placeholder as it is. */
export const fieldName = once('tools/text-extract/spec#fieldName', () =>
  z
    .string()
    .regex(
      /^[A-Za-z_][A-Za-z0-9_]{0,63}$/,
      'a field name is letters, digits and _ (at most 64), not starting with a digit',
    ),
);

/** A field to extract: its name, or its name and what it means. */
export const fieldRequest = once('tools/text-extract/spec#fieldRequest', () =>
  z.union([fieldName, z.object({ name: fieldName, description: z.string().max(300).optional() })]),
);

export type FieldRequest = z.infer<typeof fieldRequest>;

export const textExtract = once('tools/text-extract/spec#textExtract', () =>
  defineTool({
    name: 'text.extract',
    description:
      'Extract named fields (e.g. invoice_number, amount, due_date, email) from a text or an earlier step output; each value is a string, or null when the text does not state it',
    activity: 'extractFields',
    input: z.object({
      /** The text, or an earlier step's output. */
      text: z.union([z.string().min(1), stepOutputSchema]),
      fields: z
        .array(fieldRequest)
        .min(1)
        .max(MAX_FIELDS)
        .refine(
          (fields) => new Set(fields.map((f) => (typeof f === 'string' ? f : f.name))).size === fields.length,
          'field names must be unique',
        ),
    }),
    output: stepOutputSchema.extend({
      fields: z.record(z.string(), z.string().nullable()),
      /** `model:<name>`, or the rules with the offline label. */
      generatedBy: z.string(),
    }),
    refInputs: [],
    risk: 'read',
    irreversible: false,
    preset: 'model',
    estimatedCostUsd: 0.002,
    errors: [],
    model: EXTRACT_MODEL,
  }),
);
