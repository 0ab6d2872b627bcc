/** text.summarize: offline, the first sentences of the source plus a count of related items. */
import { preview, saveArtifact } from '../../state/artifacts';
import { OFFLINE_LABEL, implementTool, stableId, textOf } from '../runtime';
import { textSummarize } from './spec';

export const summarizeText = implementTool(textSummarize, async ({ source, context }, step, deps) => {
  const text = await textOf(deps.prisma, source);
  const sentences = text.replace(/\s+/g, ' ').match(/[^.!?]+[.!?]?/g) ?? [text];
  const gist =
    sentences
      .slice(0, 3)
      .map((x) => x.trim())
      .join(' ') || '(empty source)';
  const related = context && context.items > 0 ? context.items : 0;
  const content = `${gist}\n\nRelated items on record: ${related}.\n-- summarized by Keel, ${OFFLINE_LABEL}`;
  const ref = await saveArtifact(
    deps.prisma,
    {
      goalId: step.goalId,
      stepId: step.stepId,
      kind: 'summary',
      title: preview(gist, 80),
      content,
      metadata: { generatedBy: 'offline-summarizer' },
    },
    stableId('sum', step.workflowId, step.planVersion, step.stepId),
  );
  return { output: { ref, preview: preview(gist) }, model: 'offline' };
});
