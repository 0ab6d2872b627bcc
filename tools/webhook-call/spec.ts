/**
 * webhook.call: a signed HTTP POST of a JSON body to a URL. What the receiver
 * does with it cannot be taken back, so it always waits for the operator, who
 * sees the URL and the body.
 */
import { z } from 'zod';
import { defineTool, stepOutputSchema } from '../spec';
import { once } from '../../shared/once';

/** The largest body sent, as JSON text. */
export const WEBHOOK_BODY_MAX = 256 * 1024;

const isJsonText = (s: string) => {
  try {
    JSON.parse(s);
    return true;
  } catch {
    return false;
  }
};

/**
 * The body: JSON text (what a plan can write), or an object or array (an
 * earlier step's output, or a direct call). Sent as its JSON text either way.
 */
export const webhookBodySchema = once('tools/webhook-call/spec#webhookBodySchema', () =>
  z
    .union([
      z
        .string()
        .max(WEBHOOK_BODY_MAX)
        .refine(isJsonText, 'must be JSON text')
        .transform((s): unknown => JSON.parse(s)),
      z.record(z.string(), z.unknown()),
      z.array(z.unknown()),
    ])
    .refine(
      (b) => JSON.stringify(b).length <= WEBHOOK_BODY_MAX,
      `must be at most ${WEBHOOK_BODY_MAX} characters as JSON`,
    ),
);

/** The body as the approval shows it. */
const bodyText = (body: unknown) => JSON.stringify(body) ?? 'null';
const cutLine = (s: string, n: number) => (s.length > n ? `${s.slice(0, n - 1)}…` : s);

export const webhookCall = once('tools/webhook-call/spec#webhookCall', () =>
  defineTool({
    name: 'webhook.call',
    description:
      'POST a JSON body to an http(s) URL, signed (X-Keel-Signature) and with an Idempotency-Key that is the same on every retry',
    activity: 'callWebhook',
    input: z.object({
      url: z
        .url({ protocol: /^https?$/, error: 'must be an http or https URL' })
        .max(2048)
        .describe('the http(s) URL to POST to'),
      body: webhookBodySchema.describe('the JSON body: JSON text, or an object or array'),
    }),
    output: stepOutputSchema.extend({
      url: z.string(),
      status: z.number().int(),
      idempotencyKey: z.string(),
      delivery: z.enum(['called', 'already-called']),
    }),
    refInputs: [],
    risk: 'external',
    irreversible: true,
    rateLimit: 'webhook',
    preset: 'connector',
    estimatedCostUsd: 0,
    errors: ['WebhookNotConfigured', 'WebhookRejected'],
    approval: {
      describe(inputs) {
        const body = bodyText(inputs.body);
        return {
          summary: `POST to ${inputs.url}: ${cutLine(body, 120)}`,
          proposed: { url: inputs.url, body: JSON.stringify(inputs.body, null, 2) ?? 'null' },
        };
      },
    },
  }),
);
