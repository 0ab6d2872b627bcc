/**
 * Replanning after a plan has started: a person's no with a comment leads to
 * one new plan that answers it (the policy's default), the given-up plan's
 * work is undone, and the churn is recorded with its cause; a no without a
 * comment, or a second no, ends the goal as before. Real dev server, real
 * SMTP server, offline planner.
 */
import { startEngine, type TestEngine } from '../helpers/engine';

let engine: TestEngine;

beforeAll(async () => {
  engine = await startEngine();
  await engine.startWorker();
});
afterAll(async () => {
  await engine?.close();
});

/** The goal's pending approval, waiting for one other than `after` (the approval just decided). */
async function pendingApproval(goalId: string, after?: string) {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const { approvals } = (await engine.http('GET', '/v1/approvals?status=pending')).body;
    const mine = approvals.filter((a: any) => a.goalId === goalId && a.approvalId !== after);
    if (mine.length > 0) {
      expect(mine).toHaveLength(1);
      return mine[0];
    }
    if (Date.now() > deadline) throw new Error(`goal ${goalId} has no new pending approval`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const decide = (approvalId: string, body: Record<string, unknown>) =>
  engine.http('POST', `/v1/approvals/${approvalId}/decision`, body);

test('a rejection with a comment replans once, using the comment; the first draft is discarded and one email is sent', async () => {
  const to = 'replan-ada@example.com';
  const { body } = await engine.http('POST', '/v1/goals', { title: `Email ${to} about the renewal`, input: { to } });
  const first = await pendingApproval(body.goalId);
  const firstDraftId = first.proposed.artifactId;
  expect(
    (await decide(first.approvalId, { decision: 'reject', comment: 'Mention the 5% loyalty discount' })).status,
  ).toBe(200);

  const second = await pendingApproval(body.goalId, first.approvalId);
  expect(second.approvalId).not.toBe(first.approvalId);
  expect(second.proposed.artifactId).not.toBe(firstDraftId);
  const goal = (await engine.http('GET', `/v1/goals/${body.goalId}`)).body;
  expect(goal.plan.version).toBe(2);
  expect(goal.planChurn).toBe(1);

  // The plan history keeps both versions: the first given up because of the comment, the second carrying it.
  const history = (await engine.http('GET', `/v1/goals/${body.goalId}/plans`)).body;
  expect(history.versions.map((v: any) => [v.version, v.status])).toEqual([
    [1, 'superseded'],
    [2, 'accepted'],
  ]);
  expect(history.versions[0].replannedBecause).toMatchObject({
    cause: 'approval_rejected',
    stepId: 'send',
    tool: 'email.send',
    note: 'Mention the 5% loyalty discount',
  });
  expect(history.causes).toEqual([
    {
      version: 1,
      problems: [expect.stringContaining('rejected step "send" (email.send): Mention the 5% loyalty discount')],
    },
  ]);
  expect(history.versions[1].diff.changed).toEqual([{ id: 'draft', fields: ['inputs'] }]);
  expect(history.versions[1].steps.find((s: any) => s.id === 'draft').inputs.revision).toBe(
    'Mention the 5% loyalty discount',
  );

  // The superseded plan's draft was discarded by its compensation; the new draft keeps the note beside it.
  const events = (await engine.http('GET', `/v1/goals/${body.goalId}/events`)).body.events;
  expect(events.filter((e: any) => e.type === 'step.compensated').map((e: any) => e.data.ref)).toEqual([firstDraftId]);
  expect(events.filter((e: any) => e.type === 'plan.replanned')).toHaveLength(1);

  const sentBefore = engine.smtp.messages.length;
  await decide(second.approvalId, { decision: 'approve' });
  await engine.waitForGoal(body.goalId, (g) => g.status === 'completed');
  const sent = engine.smtp.messages.slice(sentBefore).filter((m) => JSON.stringify(m).includes(to));
  expect(sent).toHaveLength(1);
});

test('a rejection without a comment ends the goal, as before', async () => {
  const to = 'replan-bo@example.com';
  const { body } = await engine.http('POST', '/v1/goals', { title: `Email ${to} about the renewal`, input: { to } });
  const approval = await pendingApproval(body.goalId);
  await decide(approval.approvalId, { decision: 'reject' });
  const failed = await engine.waitForGoal(body.goalId, (g) => g.status === 'failed');
  expect(failed.planChurn).toBe(0);
  expect(failed.error).toContain('rejected');
});

test('one replan only: a second rejection with a comment ends the goal', async () => {
  const to = 'replan-cy@example.com';
  const { body } = await engine.http('POST', '/v1/goals', { title: `Email ${to} about the renewal`, input: { to } });
  const first = await pendingApproval(body.goalId);
  await decide(first.approvalId, { decision: 'reject', comment: 'Shorter, please' });
  await decide((await pendingApproval(body.goalId, first.approvalId)).approvalId, {
    decision: 'reject',
    comment: 'Still too long',
  });
  const failed = await engine.waitForGoal(body.goalId, (g) => g.status === 'failed');
  expect(failed.planChurn).toBe(1);
  expect(failed.error).toContain('Still too long');
  const history = (await engine.http('GET', `/v1/goals/${body.goalId}/plans`)).body;
  expect(history.versions.map((v: any) => v.status)).toEqual(['superseded', 'accepted']);
});
