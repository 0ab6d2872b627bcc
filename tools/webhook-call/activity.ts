/** webhook.call: one signed POST per step, through the side-effect ledger (connectors/webhook.ts). */
import { webhookNotConfigured } from '../../connectors/webhook';
import { heartbeating, implementTool, sideEffectKey } from '../runtime';
import { webhookCall } from './spec';

export const callWebhook = implementTool(webhookCall, async ({ url, body }, step, deps) => {
  if (!deps.webhook) throw webhookNotConfigured();
  const webhook = deps.webhook;
  const key = sideEffectKey(step);
  const called = await heartbeating((signal) =>
    webhook.call({ idempotencyKey: key, goalId: step.goalId, stepId: step.stepId, url, body, signal }),
  );
  return {
    output: {
      preview: `POST ${url}: ${called.status}${called.delivery === 'already-called' ? ' (recorded earlier)' : ''}`,
      url,
      status: called.status,
      idempotencyKey: key,
      delivery: called.delivery,
    },
  };
});
