/** event.classify: which kind of message an inbound event is, with a confidence and a one-line reason. */
import { z } from 'zod';
import { defineTool, stepOutputSchema } from '../spec';
import { once } from '../../shared/once';

/**
 * The kinds an inbound event can be. Fixed, so triggers can name them
 * (`match.kind`) and a model cannot invent new ones; `other` is the answer
 * when none fits.
 */
export const EVENT_KINDS = [
  'invoice_question',
  'meeting_request',
  'support_request',
  'sales_inquiry',
  'newsletter',
  'spam',
  'other',
] as const;

export type EventKind = (typeof EVENT_KINDS)[number];

/** What each kind means, for the model's prompt and for people reading a trigger. */
export const EVENT_KIND_MEANINGS: Readonly<Record<EventKind, string>> = {
  invoice_question: 'about an invoice, a bill, a payment, a receipt or a refund',
  meeting_request: 'asks to meet, call, schedule or reschedule',
  support_request: 'reports a problem or asks for help with something already bought or used',
  sales_inquiry: 'a prospect asking about prices, quotes, services or buying',
  newsletter: 'a bulk mailing, digest or marketing message sent to many',
  spam: 'unsolicited junk, scams or phishing',
  other: 'none of the above',
};

/** Classification is a small-tier call of at most 200 output tokens; it never needs the large tier. */
export const CLASSIFY_MODEL = { tier: 'small', maxTokens: 200, downgrade: false } as const;

/** A classification as the tool and the event intake hand it on. */
export const classificationSchema = once('tools/event-classify/spec#classificationSchema', () =>
  z.object({
    kind: z.enum(EVENT_KINDS),
    /** 0 to 1: how sure the classifier is. Rules never claim more than 0.8. */
    confidence: z.number().min(0).max(1),
    /** One line saying why. */
    reason: z.string(),
    /** `model:<name>`, or the rules with the offline label. */
    generatedBy: z.string(),
  }),
);

export type ClassificationOutput = z.infer<typeof classificationSchema>;

export const eventClassify = once('tools/event-classify/spec#eventClassify', () =>
  defineTool({
    name: 'event.classify',
    description: `Classify a message or event text as one of: ${EVENT_KINDS.join(', ')}; with a confidence (0 to 1) and a one-line reason`,
    activity: 'classifyEvent',
    input: z.object({
      /** The message text, or an earlier step's output. */
      text: z.union([z.string().min(1), stepOutputSchema]),
      subject: z.string().optional(),
      from: z.string().optional(),
    }),
    output: stepOutputSchema.extend(classificationSchema.shape),
    refInputs: [],
    risk: 'read',
    irreversible: false,
    preset: 'model',
    estimatedCostUsd: 0.001,
    errors: [],
    model: CLASSIFY_MODEL,
  }),
);
