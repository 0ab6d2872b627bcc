/**
 * The offline planner: turns common goals into plans with rules instead of a
 * model, so the engine runs end to end with no model access. Every plan it
 * makes says so (generatedBy `offline-planner`).
 */
import { createHash } from 'node:crypto';
import type { PlanStep, ProposedPlan } from '../shared/plan';
import { findEmailAddresses } from '../policy/approvals';
import type { PlanGoalInput } from '../shared/activity-io';
import { emailDraft, emailSend, followupWait, memoryRecall, outcomeRecord, textSummarize } from '../tools/registry';

export const OFFLINE_PLANNER = 'offline-planner';

/** What the goal asks for, as the offline planner understands it. */
export function classifyGoal(
  goal: Pick<PlanGoalInput, 'title' | 'description' | 'kind' | 'input'>,
): { kind: 'email'; to: string; purpose: string } | { kind: 'note'; source: string } {
  const text = `${goal.title}\n${goal.description ?? ''}`;
  /** A blank string says nothing: the title and description speak instead. */
  const given = (v: unknown) => (typeof v === 'string' && v.trim() !== '' ? v : undefined);
  const inputTo = given(goal.input.to);
  const mentioned = findEmailAddresses(text)[0];
  const wantsEmail =
    goal.kind === 'email' ||
    (goal.kind !== 'note' && goal.kind !== 'summary' && /\b(e-?mail|reply|write to|send)\b/i.test(text));
  const to = inputTo ?? mentioned;
  if (wantsEmail && to) {
    const purpose = given(goal.input.purpose) ?? goal.title;
    return { kind: 'email', to, purpose };
  }
  const source = given(goal.input.text) ?? [goal.title, goal.description].filter(Boolean).join('\n\n');
  return { kind: 'note', source };
}

export function planOffline(goal: PlanGoalInput): ProposedPlan {
  const intent = classifyGoal(goal);
  const query = [goal.title, goal.description].filter(Boolean).join(' ');
  let steps: PlanStep[];
  let rationale: string;
  if (intent.kind === 'email') {
    rationale = `Email goal for ${intent.to}: recall what we know, draft, ask the operator, send, record.`;
    steps = [
      {
        id: 'recall',
        tool: memoryRecall.name,
        title: `Recall context about ${intent.to}`,
        rationale: 'A reply should reflect past exchanges with this person.',
        inputs: { query, subject: intent.to },
        dependsOn: [],
      },
      {
        id: 'draft',
        tool: emailDraft.name,
        title: `Draft the email to ${intent.to}`,
        rationale: 'The operator reviews a concrete draft, not an intention.',
        inputs: {
          to: intent.to,
          purpose: intent.purpose,
          context: { fromStep: 'recall' },
          // After the operator rejected a draft with a comment, the new draft is written to answer it.
          ...(goal.revision?.cause === 'approval_rejected' ? { revision: goal.revision.note } : {}),
        },
        dependsOn: ['recall'],
      },
      {
        id: 'send',
        tool: emailSend.name,
        title: `Send the email to ${intent.to}`,
        rationale: 'Email leaves the building and cannot be unsent, so a person approves it first.',
        inputs: { to: intent.to, draft: { fromStep: 'draft' } },
        dependsOn: ['draft'],
      },
      {
        id: 'record',
        tool: outcomeRecord.name,
        title: 'Record the outcome',
        rationale: 'The canonical store remembers what was sent and why.',
        inputs: { summary: { fromStep: 'send' } },
        dependsOn: ['send'],
      },
    ];
    // `followUpAfter: "3d"` in the goal's input: if nobody replies in that time, draft a nudge and ask again.
    const followUpAfter = typeof goal.input.followUpAfter === 'string' ? goal.input.followUpAfter : undefined;
    if (followUpAfter !== undefined) {
      rationale += ` If ${intent.to} does not reply within ${followUpAfter}, draft a nudge and ask before sending it.`;
      steps.push(
        {
          id: 'wait',
          tool: followupWait.name,
          title: `Wait ${followUpAfter} for a reply from ${intent.to}`,
          rationale: 'A nudge is only worth sending when nobody answered.',
          inputs: { after: followUpAfter, awaitingReplyFrom: intent.to },
          dependsOn: ['send'],
        },
        {
          id: 'nudge-draft',
          tool: emailDraft.name,
          title: `Draft a nudge to ${intent.to}`,
          rationale: 'No reply came in time.',
          inputs: {
            to: intent.to,
            purpose: `A short, friendly follow-up: no reply yet to "${intent.purpose}"`,
            context: { fromStep: 'recall' },
          },
          dependsOn: ['wait', 'recall'],
        },
        {
          id: 'nudge-send',
          tool: emailSend.name,
          title: `Send the nudge to ${intent.to}`,
          rationale: 'A person approves every email first.',
          inputs: { to: intent.to, draft: { fromStep: 'nudge-draft' } },
          dependsOn: ['nudge-draft'],
        },
      );
    }
  } else {
    rationale = 'Note goal: recall related context, summarize it with the goal text, record the summary.';
    steps = [
      {
        id: 'recall',
        tool: memoryRecall.name,
        title: 'Recall related context',
        rationale: 'A summary is better with what Keel already knows.',
        inputs: { query },
        dependsOn: [],
      },
      {
        id: 'summarize',
        tool: textSummarize.name,
        title: 'Summarize',
        rationale: 'The operator wants the gist, not the pile.',
        inputs: { source: intent.source, context: { fromStep: 'recall' } },
        dependsOn: ['recall'],
      },
      {
        id: 'record',
        tool: outcomeRecord.name,
        title: 'Record the summary',
        rationale: 'The canonical store keeps the result.',
        inputs: { summary: { fromStep: 'summarize' } },
        dependsOn: ['summarize'],
      },
    ];
  }
  const prompt = JSON.stringify({
    planner: OFFLINE_PLANNER,
    goal: { title: goal.title, description: goal.description, kind: goal.kind, input: goal.input },
    feedback: goal.feedback,
    ...(goal.revision ? { revision: goal.revision } : {}),
  });
  return {
    steps,
    rationale: `${rationale} (offline planner: rules, no model)`,
    generatedBy: OFFLINE_PLANNER,
    model: 'offline',
    promptHash: createHash('sha256').update(prompt).digest('hex'),
    costUsd: 0,
    inputTokens: 0,
    outputTokens: 0,
  };
}
