/** outcome.record: what the goal achieved, kept in the canonical store. */
import { preview, saveArtifact } from '../../state/artifacts';
import { contactSubject, parseAddress } from '../../state/entities';
import { implementTool, stableId, textOf } from '../runtime';
import { outcomeRecord } from './spec';

export const recordOutcome = implementTool(outcomeRecord, async ({ summary }, step, deps) => {
  const text = typeof summary === 'string' ? summary : (summary.preview ?? (await textOf(deps.prisma, summary)));
  // An outcome about a person (a sent email names its recipient) is remembered about them.
  const to = typeof summary === 'object' ? parseAddress(summary.to) : null;
  const ref = await saveArtifact(
    deps.prisma,
    {
      goalId: step.goalId,
      stepId: step.stepId,
      kind: 'outcome',
      title: preview(text, 80),
      content: text,
      subject: to ? contactSubject(to.email) : `goal:${step.goalId}`,
      metadata: { from: summary },
    },
    stableId('out', step.workflowId, step.planVersion, step.stepId),
  );
  return { output: { ref, preview: preview(text) } };
});
