/** slack.post: the message goes out once per step, through the side-effect ledger (connectors/slack.ts). */
import { loadArtifact } from '../../state/artifacts';
import { compensateSideEffectStep } from '../../state/side-effects';
import type { CompensationInput } from '../../shared/activity-io';
import { slackNotConfigured } from '../../connectors/slack';
import { heartbeating, implementTool, sideEffectKey, type ToolDeps } from '../runtime';
import { slackPost } from './spec';

const preview = (text: string) => (text.length > 200 ? `${text.slice(0, 199)}…` : text);

export const postSlackMessage = implementTool(slackPost, async ({ channel, text, draft }, step, deps) => {
  if (!deps.slack) throw slackNotConfigured('slack.post');
  const slack = deps.slack;
  const artifact = draft ? await loadArtifact(deps.prisma, draft.ref) : undefined;
  const message = text ?? artifact?.content ?? '';
  const key = sideEffectKey(step);
  const posted = await heartbeating((signal) =>
    slack.post({ idempotencyKey: key, goalId: step.goalId, stepId: step.stepId, channel, text: message, signal }),
  );
  return {
    output: {
      preview: `Posted to ${posted.channel}: ${preview(message)}`,
      channel: posted.channel,
      ts: posted.ts,
      idempotencyKey: key,
      delivery: posted.delivery,
      ...(artifact ? { artifactId: artifact.id } : {}),
    },
  };
});

/**
 * Compensation for slack.post: deletes the posted message (one already gone
 * counts as deleted) and marks the step compensated.
 */
export async function deleteSlackMessage(deps: ToolDeps, input: CompensationInput): Promise<void> {
  const parsed = slackPost.output.safeParse(input.output);
  // A step that never posted has nothing to take back.
  if (!parsed.success) return;
  if (!deps.slack) throw slackNotConfigured('deleting a Slack message');
  const { channel, ts, idempotencyKey } = parsed.data;
  const result = await deps.slack.delete({ channel, ts });
  await compensateSideEffectStep(deps.prisma, input, {
    idempotencyKey,
    undone: result === 'deleted' ? `chat.delete ${channel} ${ts}` : `message ${channel} ${ts} was already gone`,
  });
}
