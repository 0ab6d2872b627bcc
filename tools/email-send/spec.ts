/**
 * email.send: the irreversible step. It always waits for the operator, who
 * sees the recipient, subject and body and may edit the subject and body.
 */
import { z } from 'zod';
import { artifactOutputSchema, defineTool, stepOutputSchema } from '../spec';
import { once } from '../../shared/once';

/** What an operator may change in a draft before it is sent (RFC 5322 caps a header line at 998 characters). */
export const emailEditsSchema = once('tools/email-send/spec#emailEditsSchema', () =>
  z
    .strictObject({
      subject: z.string().min(1).max(998).optional(),
      body: z.string().min(1).max(100_000).optional(),
    })
    .refine((e) => e.subject !== undefined || e.body !== undefined, 'edits must change subject or body')
    .transform((e) => {
      const out: Record<string, string> = {};
      if (e.subject !== undefined) out.subject = e.subject;
      if (e.body !== undefined) out.body = e.body;
      return out;
    }),
);

/**
 * A Message-ID (RFC 5322 msg-id), with or without its angle brackets; kept
 * with them. No spaces or line breaks, so it cannot smuggle a header.
 */
export const messageIdSchema = once('tools/email-send/spec#messageIdSchema', () =>
  z
    .string()
    .trim()
    .max(998)
    .regex(/^<?[^\s<>@]+@[^\s<>@]+>?$/, 'must be a Message-ID such as <id@example.com>')
    .transform((id) => `<${id.replace(/^<|>$/g, '')}>`),
);

const subjectOf = (artifact: { title: string; metadata: Record<string, unknown> }): string =>
  typeof artifact.metadata.subject === 'string' ? artifact.metadata.subject : artifact.title;

export const emailSend = once('tools/email-send/spec#emailSend', () =>
  defineTool({
    name: 'email.send',
    description: 'Send a drafted email over SMTP',
    activity: 'sendEmail',
    input: z.object({
      to: z.string().min(1),
      draft: artifactOutputSchema,
      /** The Message-ID of the email this one answers: it is sent with In-Reply-To and References. */
      inReplyTo: messageIdSchema.optional().describe('the Message-ID of the email this one replies to, if any'),
    }),
    output: stepOutputSchema.extend({
      to: z.string(),
      subject: z.string(),
      messageId: z.string(),
      transport: z.string(),
      artifactId: z.string(),
      humanEdited: z.boolean(),
      delivery: z.string(),
      inReplyTo: z.string().optional(),
    }),
    refInputs: ['draft'],
    risk: 'external',
    irreversible: true,
    rateLimit: 'email',
    preset: 'connector',
    estimatedCostUsd: 0,
    errors: ['InvalidEmailAddress', 'EmailRejected'],
    recipientInputs: ['to'],
    approval: {
      artifactInput: 'draft',
      describe(inputs, artifact) {
        const subject = artifact ? subjectOf(artifact) : '(no draft)';
        return {
          summary: `Send an email to ${inputs.to}: "${subject}"`,
          proposed: {
            to: inputs.to,
            subject,
            body: artifact?.content ?? '',
            artifactId: artifact?.id,
            ...(inputs.inReplyTo ? { inReplyTo: inputs.inReplyTo } : {}),
          },
        };
      },
      edits: emailEditsSchema,
      applyEdits(artifact, edits) {
        return {
          title: edits.subject ?? artifact.title,
          content: edits.body ?? artifact.content,
          metadata: { ...artifact.metadata, ...(edits.subject !== undefined ? { subject: edits.subject } : {}) },
        };
      },
    },
  }),
);
