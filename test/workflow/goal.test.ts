/** goalWorkflow end to end through the API, on a real dev server, database and SMTP server. */
import { startEngine, type TestEngine } from '../helpers/engine';

let engine: TestEngine;

beforeAll(async () => {
  engine = await startEngine();
  await engine.startWorker();
});
afterAll(async () => {
  await engine?.close();
});

test('a note goal plans, runs and completes with no approval', async () => {
  const res = await engine.http('POST', '/v1/goals', {
    title: 'Summarize this week',
    kind: 'note',
    input: { text: 'We shipped the invoice fix. Acme replied. Newsletter is due Friday.' },
  });
  expect(res.status).toBe(202);
  const goal = await engine.waitForGoal(res.body.goalId, (g) => g.status === 'completed');
  expect(goal.plan.steps.map((s: any) => s.tool)).toEqual(['memory.recall', 'text.summarize', 'outcome.record']);
  expect(goal.plan.steps.every((s: any) => s.status === 'completed')).toBe(true);
  expect(goal.approvals).toEqual([]);
  expect(goal.outcome.preview).toContain('We shipped the invoice fix.');
  // The status is stored before the episodic memory is written: wait for the run itself to end.
  await engine.temporal.client.workflow.getHandle(res.body.workflowId).result();
  const events = (await engine.http('GET', `/v1/goals/${res.body.goalId}/events`)).body.events.map((e: any) => e.type);
  expect(events[0]).toBe('goal.created');
  expect(events).toContain('plan.accepted');
  // The goal's last transition; an episodic memory of it is written after.
  expect(events.filter((t: string) => t.startsWith('goal.')).at(-1)).toBe('goal.completed');
  expect(events.at(-1)).toBe('memory.remembered');
  expect(engine.smtp.messages).toHaveLength(0);
});

test('an email goal waits for approval, then sends exactly once', async () => {
  const res = await engine.http('POST', '/v1/goals', {
    title: 'Email ada@example.com a thank-you note for the referral',
  });
  const goalId = res.body.goalId;
  const waiting = await engine.waitForGoal(goalId, (g) => g.status === 'awaiting_approval');
  expect(waiting.approvals).toHaveLength(1);
  const inbox = (await engine.http('GET', '/v1/approvals?status=pending')).body.approvals.filter(
    (a: any) => a.goalId === goalId,
  );
  expect(inbox).toHaveLength(1);
  expect(inbox[0].proposed.to).toBe('ada@example.com');
  expect(inbox[0].proposed.body).toContain('offline');
  expect(engine.smtp.messages).toHaveLength(0);
  const decided = await engine.http('POST', `/v1/approvals/${inbox[0].approvalId}/decision`, {
    decision: 'approve',
    edits: { body: 'Hi Ada, thank you so much for the referral! -- Sam' },
  });
  expect(decided).toEqual({ status: 200, body: { approvalId: inbox[0].approvalId, status: 'approved' } });
  const done = await engine.waitForGoal(goalId, (g) => g.status === 'completed');
  expect(done.plan.steps.map((s: any) => s.status)).toEqual(['completed', 'completed', 'completed', 'completed']);
  await engine.smtp.waitFor(1);
  expect(engine.smtp.messages).toHaveLength(1);
  expect(engine.smtp.messages[0].to).toEqual(['ada@example.com']);
  expect(engine.smtp.messages[0].raw).toContain('thank you so much for the referral');
  const again = await engine.http('POST', `/v1/approvals/${inbox[0].approvalId}/decision`, { decision: 'reject' });
  expect(again.status).toBe(409);
  const state = await engine.temporal.client.workflow.getHandle(`goal-${goalId}`).query('state');
  expect(state).toMatchObject({ status: 'completed', approvals: [{ status: 'approved' }] });
});

test('cancel while waiting for approval compensates the draft and ends cancelled', async () => {
  const { body } = await engine.http('POST', '/v1/goals', { title: 'Email bob@example.com about the newsletter' });
  await engine.waitForGoal(body.goalId, (g) => g.status === 'awaiting_approval');
  const res = await engine.http('POST', `/v1/goals/${body.goalId}/cancel`, { reason: 'changed my mind' });
  expect(res.status).toBe(202);
  const cancelled = await engine.waitForGoal(body.goalId, (g) => g.status === 'cancelled');
  expect(cancelled.approvals[0].status).toBe('cancelled');
  expect(cancelled.plan.steps.find((s: any) => s.id === 'draft').status).toBe('compensated');
  const events = (await engine.http('GET', `/v1/goals/${body.goalId}/events`)).body.events;
  expect(events.filter((e: any) => e.type.startsWith('goal.')).at(-1)).toMatchObject({
    type: 'goal.cancelled',
    actor: 'api',
    data: { reason: 'changed my mind' },
  });
  expect((await engine.http('POST', `/v1/goals/${body.goalId}/cancel`, {})).status).toBe(409);
  const late = await engine.http('POST', `/v1/approvals/${cancelled.approvals[0].approvalId}/decision`, {
    decision: 'approve',
  });
  expect(late.status).toBe(409);
  expect(engine.smtp.messages.filter((m) => m.to.includes('bob@example.com'))).toHaveLength(0);
});

test('a plan over budget is replanned a bounded number of times, then the goal fails naming the budget', async () => {
  const { body } = await engine.http('POST', '/v1/goals', { title: 'Email cy@example.com a hello', budgetUsd: 0.001 });
  const failed = await engine.waitForGoal(body.goalId, (g) => g.status === 'failed');
  expect(failed.error).toMatch(/no valid plan after 3 attempts: .*over the \$0\.0010 budget/);
  expect(failed.planChurn).toBe(3);
  const events = (await engine.http('GET', `/v1/goals/${body.goalId}/events`)).body.events;
  expect(events.filter((e: any) => e.type === 'plan.rejected')).toHaveLength(3);
});

test('similar approvals are decided in one batch, each with its own result', async () => {
  const ids: string[] = [];
  for (const who of ['d1', 'd2']) {
    ids.push(
      (await engine.http('POST', '/v1/goals', { title: `Email ${who}@example.com the weekly update` })).body.goalId,
    );
  }
  const approvals = [];
  for (const id of ids)
    approvals.push((await engine.waitForGoal(id, (g) => g.status === 'awaiting_approval')).approvals[0]);
  const res = await engine.http('POST', '/v1/approvals/decisions', {
    decisions: [
      { approvalId: approvals[0].approvalId, decision: 'approve' },
      // No comment: a plain no ends the goal (a comment would replan it once; test/workflow/replan.test.ts).
      { approvalId: approvals[1].approvalId, decision: 'reject' },
      { approvalId: 'no-such-approval', decision: 'approve' },
    ],
  });
  expect(res.status).toBe(200);
  expect(res.body.results).toEqual([
    { approvalId: approvals[0].approvalId, status: 'approved' },
    { approvalId: approvals[1].approvalId, status: 'rejected' },
    {
      approvalId: 'no-such-approval',
      status: 'error',
      error: { code: 'not_found', message: 'approval no-such-approval does not exist' },
    },
  ]);
  await engine.waitForGoal(ids[0], (g) => g.status === 'completed');
  await engine.waitForGoal(ids[1], (g) => g.status === 'failed');
});

test('the decide update refuses an unknown approval and accepts a pending one', async () => {
  const { body } = await engine.http('POST', '/v1/goals', { title: 'Email eve@example.com a reminder' });
  const waiting = await engine.waitForGoal(body.goalId, (g) => g.status === 'awaiting_approval');
  const handle = engine.temporal.client.workflow.getHandle(`goal-${body.goalId}`);
  const refused = await handle
    .executeUpdate('decide', { args: [{ approvalId: 'nope', decision: 'approve', actor: 'test' }] })
    .then(
      () => undefined,
      (err: Error) => err,
    );
  expect((refused?.cause as Error | undefined)?.message).toBe('approval nope is not part of this goal');
  const answer = await handle.executeUpdate('decide', {
    args: [{ approvalId: waiting.approvals[0].approvalId, decision: 'approve', actor: 'temporal-ui' }],
  });
  expect(answer).toEqual({ approvalId: waiting.approvals[0].approvalId, status: 'approved' });
  const done = await engine.waitForGoal(body.goalId, (g) => g.status === 'completed');
  expect(done.approvals[0]).toMatchObject({ status: 'approved', actor: 'temporal-ui' });
  await handle.result();
  const desc = await handle.describe();
  expect(desc.searchAttributes.KeelStatus).toEqual(['completed']);
  expect(desc.memo).toEqual({ title: 'Email eve@example.com a reminder' });
});
