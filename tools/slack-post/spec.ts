/**
 * slack.post: a message to a Slack channel. It leaves the building and
 * cannot be unread, so it always waits for the operator, who sees the channel
 * and the text and may edit the text. Compensation deletes the message.
 */
import { z } from 'zod';
import { artifactOutputSchema, defineTool, stepOutputSchema } from '../spec';
import { once } from '../../shared/once';

/** Slack truncates a message's text beyond this many characters. */
export const SLACK_TEXT_MAX = 40_000;

/** What an operator may change before the message is posted. */
export const slackEditsSchema = once('tools/slack-post/spec#slackEditsSchema', () =>
  z
    .strictObject({ text: z.string().trim().min(1).max(SLACK_TEXT_MAX) })
    .transform((e): Record<string, string> => ({ text: e.text })),
);

/** `#general` for a name, the id as it is (C…), or what the default channel is called. */
const channelLabel = (channel: string | undefined) =>
  channel === undefined
    ? 'the default channel (SLACK_CHANNEL)'
    : /^[CGD][A-Z0-9]{2,}$/.test(channel) || channel.startsWith('#')
      ? channel
      : `#${channel}`;

/** The first line of a message, cut for a one-line summary. */
const firstLine = (text: string) => {
  const line = text.trim().split('\n')[0] ?? '';
  return line.length > 80 ? `${line.slice(0, 79)}…` : line;
};

export const slackPost = once('tools/slack-post/spec#slackPost', () =>
  defineTool({
    name: 'slack.post',
    description:
      'Post a message to a Slack channel (chat.postMessage): give the text, or a draft from an earlier step; the channel defaults to SLACK_CHANNEL',
    activity: 'postSlackMessage',
    input: z
      .object({
        channel: z
          .string()
          .trim()
          .min(1)
          .max(200)
          .regex(/^[^\s]+$/, 'a channel id (C…) or name (#general), without spaces')
          .optional(),
        text: z.string().trim().min(1).max(SLACK_TEXT_MAX).optional(),
        draft: artifactOutputSchema.optional(),
      })
      .refine((i) => (i.text === undefined) !== (i.draft === undefined), {
        message: 'give the message as text or as a draft, one of the two',
        path: ['text'],
      }),
    output: stepOutputSchema.extend({
      channel: z.string(),
      ts: z.string(),
      idempotencyKey: z.string(),
      delivery: z.enum(['posted', 'already-posted', 'found-earlier-post']),
      artifactId: z.string().optional(),
    }),
    refInputs: ['draft'],
    risk: 'external',
    irreversible: true,
    rateLimit: 'slack',
    compensation: 'deleteSlackMessage',
    preset: 'connector',
    estimatedCostUsd: 0,
    errors: ['SlackNotConfigured', 'SlackChannelMissing', 'SlackRejected', 'SlackPostUnverified'],
    approval: {
      artifactInput: 'draft',
      describe(inputs, artifact) {
        const text = inputs.text ?? artifact?.content ?? '(no draft)';
        return {
          summary: `Post to ${channelLabel(inputs.channel)}: "${firstLine(text)}"`,
          proposed: {
            channel: inputs.channel ?? null,
            text,
            ...(artifact ? { artifactId: artifact.id } : {}),
          },
        };
      },
      edits: slackEditsSchema,
      applyEdits(artifact, edits) {
        return { title: artifact.title, content: edits.text ?? artifact.content, metadata: artifact.metadata };
      },
      applyEditsToInputs(inputs, edits) {
        return edits.text !== undefined && inputs.text !== undefined ? { ...inputs, text: edits.text } : inputs;
      },
    },
  }),
);
