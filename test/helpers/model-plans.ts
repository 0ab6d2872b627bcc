/**
 * Plans as a model writes them, for the tests whose OpenAI stand-in plays
 * the model: recall what is known of a person, draft to them, send once the
 * operator agrees, then any `extra` steps.
 */
export function modelEmailPlan(
  to: string,
  opts: {
    /** What the draft is for (the draft step's `purpose`). */
    purpose: string;
    /** The plan's rationale; by default one naming `to`. */
    rationale?: string;
    /** The risk the model claims for the send (the policy reads the spec's, whatever this says). */
    sendRisk?: string;
    /** Whether the recall names `to` as its subject (default true). */
    subject?: boolean;
    extra?: Record<string, unknown>[];
  },
) {
  return {
    rationale: opts.rationale ?? `Write to ${to} and send it once the operator agrees.`,
    steps: [
      {
        id: 'recall',
        tool: 'memory.recall',
        title: 'Recall',
        rationale: 'context',
        inputs: opts.subject === false ? { query: to } : { query: to, subject: to },
        dependsOn: [],
      },
      {
        id: 'draft',
        tool: 'email.draft',
        title: `Draft to ${to}`,
        rationale: 'a concrete draft',
        inputs: { to, purpose: opts.purpose, context: { fromStep: 'recall' } },
        dependsOn: ['recall'],
      },
      {
        id: 'send',
        tool: 'email.send',
        title: `Send to ${to}`,
        rationale: 'leaves the building',
        inputs: { to, draft: { fromStep: 'draft' } },
        dependsOn: ['draft'],
        ...(opts.sendRisk ? { expectedRisk: opts.sendRisk } : {}),
      },
      ...(opts.extra ?? []),
    ],
  };
}
