/**
 * followup.wait through the whole engine: an email goal with `followUpAfter`
 * sends, waits on a durable timer, and drafts a nudge only when nobody
 * replied (a reply is an inbound email.received event from the recipient).
 * Real dev server and SMTP server, offline planner, timers in seconds.
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

async function approve(goalId: string, stepId: string) {
  const waiting = await engine.waitForGoal(goalId, (g) =>
    g.approvals.some((a: any) => a.stepId === stepId && a.status === 'pending'),
  );
  const approval = waiting.approvals.find((a: any) => a.stepId === stepId && a.status === 'pending');
  expect(
    (await engine.http('POST', `/v1/approvals/${approval.approvalId}/decision`, { decision: 'approve' })).status,
  ).toBe(200);
}

const sentTo = (address: string) => engine.smtp.messages.filter((m) => m.to.includes(address));
const statuses = (goal: any) => Object.fromEntries(goal.plan.steps.map((s: any) => [s.id, s.status]));

test('no reply within the wait: a nudge is drafted, approved and sent', async () => {
  const to = 'quiet@example.com';
  const { body } = await engine.http('POST', '/v1/goals', {
    title: `Email ${to} about the proposal`,
    input: { to, followUpAfter: '2s' },
  });
  await approve(body.goalId, 'send');
  await approve(body.goalId, 'nudge-send');
  const done = await engine.waitForGoal(body.goalId, (g) => g.status === 'completed');
  expect(statuses(done)).toMatchObject({
    send: 'completed',
    wait: 'completed',
    'nudge-draft': 'completed',
    'nudge-send': 'completed',
  });
  expect(done.plan.steps.find((s: any) => s.id === 'wait').output).toMatchObject({
    replied: false,
    halt: false,
    waitedMs: 2000,
  });
  const sent = sentTo(to);
  expect(sent).toHaveLength(2);
  expect(sent[1].raw).toMatch(/follow-up/i);
});

test('a reply before the wait ends: the nudge is not needed, and only the first email goes out', async () => {
  const to = 'quick@example.com';
  const { body } = await engine.http('POST', '/v1/goals', {
    title: `Email ${to} about the proposal`,
    input: { to, followUpAfter: '10s' },
  });
  await approve(body.goalId, 'send');
  await engine.waitForGoal(body.goalId, (g) => g.plan.steps.find((s: any) => s.id === 'send').status === 'completed');
  const reply = await engine.http('POST', '/v1/events', {
    source: 'email',
    type: 'email.received',
    externalId: `reply-${body.goalId}`,
    payload: { from: `Quick Replier <${to}>`, subject: 'Re: the proposal', text: 'Looks good, thanks!' },
  });
  expect(reply.status).toBe(201);
  const done = await engine.waitForGoal(body.goalId, (g) => g.status === 'completed');
  expect(statuses(done)).toMatchObject({ wait: 'completed', 'nudge-draft': 'skipped', 'nudge-send': 'skipped' });
  expect(done.plan.steps.find((s: any) => s.id === 'wait').output).toMatchObject({
    replied: true,
    halt: true,
    replyEventId: reply.body.id,
  });
  expect(sentTo(to)).toHaveLength(1);
  expect(done.approvals.filter((a: any) => a.stepId === 'nudge-send')).toHaveLength(0);
  const skipped = (await engine.http('GET', `/v1/goals/${body.goalId}/events`)).body.events.filter(
    (e: any) => e.type === 'step.skipped',
  );
  expect(skipped.map((e: any) => e.data.stepId).sort()).toEqual(['nudge-draft', 'nudge-send']);
});

test('a wait that is not a duration is refused with the reason', async () => {
  const { body } = await engine.http('POST', '/v1/goals', {
    title: 'Email slow@example.com about the proposal',
    input: { to: 'slow@example.com', followUpAfter: 'soon' },
  });
  const failed = await engine.waitForGoal(body.goalId, (g) => g.status === 'failed');
  expect(failed.error).toContain('a duration like 90s, 30m, 12h or 3d');
});
