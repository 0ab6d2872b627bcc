/** memory.recall: assembles the working set and stores it as a context artifact. */
import { assembleWorkingSet } from '../../memory/working-set';
import { preview, saveArtifact } from '../../state/artifacts';
import { contactSubject, parseAddress } from '../../state/entities';
import { implementTool, stableId } from '../runtime';
import { memoryRecall } from './spec';

export const recallContext = implementTool(memoryRecall, async (inputs, step, deps) => {
  const address = parseAddress(inputs.subject);
  const subject = address ? contactSubject(address.email) : inputs.subject;
  const ws = await assembleWorkingSet(
    { prisma: deps.prisma, memory: deps.memory },
    {
      query: inputs.query,
      subject,
      tokenBudget: inputs.tokenBudget ?? deps.workingSetTokens,
      excludeGoalId: step.goalId,
    },
  );
  // An empty working set is said in words for people reading the artifact; steps read `items`.
  const content = ws.items.length ? ws.text : `Nothing on record about: ${subject ?? inputs.query}`;
  const ref = await saveArtifact(
    deps.prisma,
    {
      goalId: step.goalId,
      stepId: step.stepId,
      kind: 'context',
      title: `Context for ${subject ?? inputs.query}`,
      content,
      subject,
      metadata: {
        memoryIds: ws.memoryIds,
        tokens: ws.tokens,
        budget: ws.budget,
        dropped: ws.dropped,
        lexical: ws.lexical,
      },
    },
    stableId('ctx', step.workflowId, step.planVersion, step.stepId),
  );
  return {
    output: { ref, preview: preview(content), items: ws.items.length, tokens: ws.tokens, subject },
    memoryIds: ws.memoryIds,
    model: ws.lexical ? 'offline-hash (lexical retrieval)' : deps.memory.embedder.model,
  };
});
