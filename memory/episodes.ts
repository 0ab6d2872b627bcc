/**
 * Episodic memory of goals: after a goal ends, what happened, about the
 * person it concerned (or the goal itself). Its id derives from the goal and
 * its final status, so a retry does not remember it twice.
 */
import { ApplicationFailure } from '@temporalio/common';
import type { Db } from '../db/prisma';
import type { StepOutput } from '../shared/plan';
import { preview } from '../state/artifacts';
import { appendEvents } from '../state/events';
import { memoryId, type MemoryService } from './service';

interface EpisodeRow {
  id: string;
  title: string;
  status: string;
  error: string | null;
  outcome: StepOutput | null;
  finishedAt: Date | null;
  steps: { stepId: string; status: string }[];
  approvals: { decision: string | null; actor: string | null; comment: string | null }[];
  draft: {
    id: string;
    title: string;
    content: string;
    subject: string | null;
    humanEdited: boolean;
    version: number;
  } | null;
}

const memoryIdFor = (goalId: string, status: string) => memoryId('episodic', `goal:${goalId}`, status, 'goal-outcome');

export async function rememberGoal(
  deps: { prisma: Db; memory: MemoryService },
  input: { goalId: string },
): Promise<{ memoryId: string }> {
  const { prisma } = deps;
  // Everything the episode says, in one query.
  const [goal] = await prisma.$queryRaw<EpisodeRow[]>`
        SELECT g.id, g.title, g.status, g.error, g.outcome, g.finished_at AS "finishedAt",
          (SELECT coalesce(json_agg(json_build_object('stepId', s.step_id, 'status', s.status) ORDER BY s.position), '[]')
             FROM steps s WHERE s.goal_id = g.id AND s.plan_version = g.plan_version) AS steps,
          (SELECT coalesce(json_agg(json_build_object('decision', a.decision, 'actor', a.actor, 'comment', a.comment)
                                    ORDER BY a.created_at), '[]')
             FROM approvals a WHERE a.goal_id = g.id) AS approvals,
          (SELECT json_build_object('id', d.id, 'title', d.title, 'content', d.content, 'subject', d.subject,
                                    'humanEdited', d.human_edited, 'version', d.version)
             FROM artifacts d WHERE d.goal_id = g.id AND d.kind = 'draft' ORDER BY d.version DESC LIMIT 1) AS draft
        FROM goals g WHERE g.id = ${input.goalId}`;
  if (!goal) throw ApplicationFailure.nonRetryable(`goal ${input.goalId} does not exist`, 'NotFound');
  const { steps, approvals, draft } = goal;
  const outcome = goal.outcome as StepOutput | null;
  const decided = approvals
    .filter((a) => a.decision)
    .map(
      (a) =>
        `${a.decision === 'approve' ? 'approved' : 'rejected'} by ${a.actor}${a.comment ? ` ("${a.comment}")` : ''}`,
    );
  const text = [
    `Goal "${goal.title}" ended ${goal.status}.`,
    outcome?.preview ? `Outcome: ${outcome.preview}` : goal.error ? `Reason: ${goal.error}` : '',
    decided.length ? `The operator ${decided.join('; ')}.` : '',
    draft?.humanEdited ? `The operator edited the draft before it was sent: "${preview(draft.content, 300)}"` : '',
    `Steps: ${steps.map((s) => `${s.stepId} ${s.status}`).join(', ')}.`,
  ]
    .filter(Boolean)
    .join(' ');
  const subject = draft?.subject ?? `goal:${goal.id}`;
  const { id } = await deps.memory.remember({
    id: memoryIdFor(goal.id, goal.status),
    text,
    kind: 'episodic',
    subject,
    source: 'agent',
    importance: goal.status === 'completed' ? 0.6 : 0.4,
    humanEdited: Boolean(draft?.humanEdited),
    goalId: goal.id,
    occurredAt: goal.finishedAt ?? new Date(),
    metadata: { goalStatus: goal.status },
  });
  const remembered = [{ memoryId: id, kind: 'episodic', subject }];
  // What the operator wrote in place of the draft is the best evidence of how they want it done.
  if (draft?.humanEdited && goal.status === 'completed') {
    const edited = await deps.memory.remember({
      text: `Sent as edited by the operator ("${draft.title}"): ${draft.content}`,
      kind: 'artifact',
      subject,
      source: 'human',
      humanEdited: true,
      importance: 0.8,
      goalId: goal.id,
      occurredAt: goal.finishedAt ?? new Date(),
      metadata: { artifactId: draft.id, version: draft.version },
    });
    remembered.push({ memoryId: edited.id, kind: 'artifact', subject });
  }
  await appendEvents(
    prisma,
    remembered.map((r) => ({ goalId: goal.id, type: 'memory.remembered', actor: 'keel', data: r })),
  );
  return { memoryId: id };
}
