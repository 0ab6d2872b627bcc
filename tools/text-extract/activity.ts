/** text.extract: the small tier extracts the fields when a model is configured; patterns offline. */
import { preview } from '../../state/artifacts';
import { implementTool, textOf } from '../runtime';
import { activitySignal } from '../signal';
import { extractFieldsFrom, normalizeFields } from './extract';
import { EXTRACT_MODEL, textExtract } from './spec';

export const extractFields = implementTool(textExtract, async ({ text, fields }, step, deps) => {
  const x = await extractFieldsFrom(deps.models, await textOf(deps.prisma, text), normalizeFields(fields), {
    tier: step.tier ?? EXTRACT_MODEL.tier,
    signal: activitySignal(),
  });
  const found = Object.entries(x.fields).filter(([, v]) => v !== null);
  return {
    output: {
      fields: x.fields,
      generatedBy: x.generatedBy,
      preview: preview(found.length ? found.map(([k, v]) => `${k}: ${v}`).join('; ') : 'none of the fields was found'),
    },
    model: x.model,
    ...(x.promptHash ? { promptHash: x.promptHash } : {}),
    costUsd: x.costUsd,
    inputTokens: x.inputTokens,
    outputTokens: x.outputTokens,
  };
});
