/** goalWorkflow end to end through the API, on a real dev server, database and SMTP server. */
import { startEngine, type TestEngine, type RunningWorker } from '../helpers/engine';

let engine: TestEngine;
let worker: RunningWorker;

beforeAll(async () => {
  engine = await startEngine();
  worker = await engine.startWorker();
});
afterAll(async () => {
  await engine?.close();
});

test('a note goal plans, runs and completes with no approval', async () => {
  const res = await engine.http('POST', '/v1/goals', { title: 'Summarize this week', kind: 'note', input: { text: 'We shipped the invoice fix. Acme replied. Newsletter is due Friday.' } });
  expect(res.status).toBe(202);
  const goal = await engine.waitForGoal(res.body.goalId, (g) => g.status === 'completed');
  expect(goal.plan.steps.map((s: any) => s.tool)).toEqual(['memory.recall', 'text.summarize', 'outcome.record']);
  expect(goal.plan.steps.every((s: any) => s.status === 'completed')).toBe(true);
  expect(goal.approvals).toEqual([]);
  expect(goal.outcome.preview).toContain('We shipped the invoice fix.');
  const events = (await engine.http('GET', `/v1/goals/${res.body.goalId}/events`)).body.events.map((e: any) => e.type);
  expect(events[0]).toBe('goal.created');
  expect(events).toContain('plan.accepted');
  expect(events.at(-1)).toBe('goal.completed');
  expect(engine.smtp.messages).toHaveLength(0);
});

test('an email goal waits for approval, then sends exactly once', async () => {
  const res = await engine.http('POST', '/v1/goals', { title: 'Email ada@example.com a thank-you note for the referral' });
  const goalId = res.body.goalId;
  const waiting = await engine.waitForGoal(goalId, (g) => g.status === 'awaiting_approval');
  expect(waiting.approvals).toHaveLength(1);
  const inbox = (await engine.http('GET', '/v1/approvals?status=pending')).body.approvals.filter((a: any) => a.goalId === goalId);
  expect(inbox).toHaveLength(1);
  expect(inbox[0].proposed.to).toBe('ada@example.com');
  expect(inbox[0].proposed.body).toContain('offline');
  expect(engine.smtp.messages).toHaveLength(0);
  const decided = await engine.http('POST', `/v1/approvals/${inbox[0].approvalId}/decision`, { decision: 'approve', edits: { body: 'Hi Ada, thank you so much for the referral! -- Sam' } });
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
