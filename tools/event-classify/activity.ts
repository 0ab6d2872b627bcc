/** event.classify: the small tier classifies the text when a model is configured; keyword rules offline. */
import { preview } from '../../state/artifacts';
import { implementTool, textOf } from '../runtime';
import { activitySignal } from '../signal';
import { classifyMessage } from './classify';
import { CLASSIFY_MODEL, eventClassify } from './spec';

export const classifyEvent = implementTool(eventClassify, async ({ text, subject, from }, step, deps) => {
  const c = await classifyMessage(
    deps.models,
    { text: await textOf(deps.prisma, text), subject, from },
    { tier: step.tier ?? CLASSIFY_MODEL.tier, signal: activitySignal() },
  );
  return {
    output: {
      kind: c.kind,
      confidence: c.confidence,
      reason: c.reason,
      generatedBy: c.generatedBy,
      preview: preview(`${c.kind} (${c.confidence.toFixed(2)}): ${c.reason}`),
    },
    model: c.model,
    ...(c.promptHash ? { promptHash: c.promptHash } : {}),
    costUsd: c.costUsd,
    inputTokens: c.inputTokens,
    outputTokens: c.outputTokens,
  };
});
