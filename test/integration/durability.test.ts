/**
 * Durability with real processes: workers run as child processes against the
 * dev server and are stopped or SIGKILLed mid-goal; the goal still finishes,
 * and the SMTP server counts what actually arrived.
 */
import { startEngine, type TestEngine } from '../helpers/engine';

let engine: TestEngine;

beforeAll(async () => {
  engine = await startEngine({ settings: { connectorHeartbeatMs: 2_000 } });
});
afterAll(async () => {
  await engine?.close();
});

async function pendingApprovalFor(goalId: string) {
  await engine.waitForGoal(goalId, (g) => g.status === 'awaiting_approval');
  const res = await engine.http('GET', '/v1/approvals?status=pending');
  const approval = res.body.approvals.find((a: any) => a.goalId === goalId);
  expect(approval).toBeDefined();
  return approval;
}

const sentTo = (to: string) => engine.smtp.messages.filter((m) => m.to.includes(to));

test('(a) a goal waiting for approval survives a worker restart and completes after the decision', async () => {
  const first = await engine.spawnWorker();
  const { body } = await engine.http('POST', '/v1/goals', {
    title: 'Email grace@example.com a thank-you note for the referral',
  });
  const approval = await pendingApprovalFor(body.goalId);

  await first.kill('SIGTERM');
  expect(first.process.exitCode).toBe(0);
  const second = await engine.spawnWorker();

  const decided = await engine.http('POST', `/v1/approvals/${approval.approvalId}/decision`, {
    decision: 'approve',
    comment: 'looks good',
  });
  expect(decided.status).toBe(200);
  const done = await engine.waitForGoal(body.goalId, (g) => g.status === 'completed');
  expect(done.approvals[0]).toMatchObject({ status: 'approved', comment: 'looks good' });
  await engine.smtp.waitFor(1);
  expect(sentTo('grace@example.com')).toHaveLength(1);
  await second.kill('SIGTERM');
});

test('(b) a worker SIGKILLed in the middle of the send step is replaced and exactly one message arrives', async () => {
  const before = engine.smtp.messages.length;
  // The fault hook pauses the send after the intent is recorded and before SMTP: the kill lands there.
  const doomed = await engine.spawnWorker({ KEEL_FAULTS: 'email.send.beforeSmtp=pause:60000' });
  const { body } = await engine.http('POST', '/v1/goals', {
    title: 'Email linus@example.com a thank-you note for the referral',
  });
  const approval = await pendingApprovalFor(body.goalId);
  await engine.http('POST', `/v1/approvals/${approval.approvalId}/decision`, { decision: 'approve' });

  await doomed.waitForOutput('KEEL_FAULT_HIT email.send.beforeSmtp');
  await doomed.kill('SIGKILL');
  expect(doomed.process.signalCode).toBe('SIGKILL');
  const effect = await engine.db.prisma.sideEffect.findFirstOrThrow({ where: { goalId: body.goalId } });
  expect(effect.status).toBe('intent');
  expect(engine.smtp.messages.length).toBe(before);

  const replacement = await engine.spawnWorker();
  const done = await engine.waitForGoal(body.goalId, (g) => g.status === 'completed', 90_000);
  expect(done.plan.steps.find((s: any) => s.id === 'send').status).toBe('completed');
  expect(sentTo('linus@example.com')).toHaveLength(1);
  const committed = await engine.db.prisma.sideEffect.findFirstOrThrow({ where: { goalId: body.goalId } });
  expect(committed.status).toBe('committed');
  expect(committed.attempts).toBeGreaterThanOrEqual(2);
  const starts = (await engine.http('GET', `/v1/goals/${body.goalId}/events`)).body.events.filter(
    (e: any) => e.type === 'step.started' && e.data.stepId === 'send',
  );
  expect(starts.length).toBeGreaterThanOrEqual(2);
  await replacement.kill('SIGTERM');
}, 180_000);

test('(c) a rejected approval sends nothing, compensates the draft, and the goal fails with the reason', async () => {
  const worker = await engine.spawnWorker();
  const { body } = await engine.http('POST', '/v1/goals', { title: 'Email ken@example.com about the invoice delay' });
  const approval = await pendingApprovalFor(body.goalId);
  // No comment: a plain no ends the goal (a comment would replan it once: test/workflow/replan.test.ts).
  const res = await engine.http('POST', `/v1/approvals/${approval.approvalId}/decision`, { decision: 'reject' });
  expect(res.body).toEqual({ approvalId: approval.approvalId, status: 'rejected' });
  const failed = await engine.waitForGoal(body.goalId, (g) => g.status === 'failed');
  expect(failed.error).toContain('rejected by operator:test');
  expect(failed.plan.steps.map((s: any) => [s.id, s.status])).toEqual([
    ['recall', 'completed'],
    ['draft', 'compensated'],
    ['send', 'failed'],
    ['record', 'skipped'],
  ]);
  expect(sentTo('ken@example.com')).toHaveLength(0);
  expect(await engine.db.prisma.sideEffect.count({ where: { goalId: body.goalId } })).toBe(0);
  const draft = await engine.db.prisma.artifact.findFirstOrThrow({ where: { goalId: body.goalId, kind: 'draft' } });
  expect(draft.status).toBe('discarded');
  const events = (await engine.http('GET', `/v1/goals/${body.goalId}/events`)).body.events;
  const types = events.map((e: any) => e.type);
  expect(types).toEqual(expect.arrayContaining(['approval.rejected', 'step.compensated', 'goal.failed']));
  expect(types.indexOf('step.compensated')).toBeLessThan(types.indexOf('goal.failed'));
  expect(events.find((e: any) => e.type === 'goal.failed').data.reason).toContain('rejected by operator:test');
  await worker.kill('SIGTERM');
});

test('(d) SIGTERM during a stalled send: the worker hands the activity back within its grace, exits 0, and another worker sends exactly once', async () => {
  const before = engine.smtp.messages.length;
  const stalled = await engine.spawnWorker({
    KEEL_FAULTS: 'email.send.beforeSmtp=pause:60000',
    KEEL_WORKER_SHUTDOWN_GRACE_MS: '1500',
    KEEL_WORKER_SHUTDOWN_FORCE_MS: '5000',
  });
  const { body } = await engine.http('POST', '/v1/goals', {
    title: 'Email margaret@example.com a thank-you note for the referral',
  });
  const approval = await pendingApprovalFor(body.goalId);
  await engine.http('POST', `/v1/approvals/${approval.approvalId}/decision`, { decision: 'approve' });
  await stalled.waitForOutput('KEEL_FAULT_HIT email.send.beforeSmtp');

  const t0 = Date.now();
  await stalled.kill('SIGTERM');
  const stoppedAfterMs = Date.now() - t0;
  // It did not wait out the 60 s stall: the grace (1.5 s) cancelled the send, and the process ended by itself.
  expect(stalled.process.exitCode).toBe(0);
  expect(stoppedAfterMs).toBeLessThan(30_000);
  expect(stalled.output()).toContain('SIGTERM: stopping');
  expect(stalled.output()).toContain('[worker] stopped');
  expect(engine.smtp.messages.length).toBe(before);

  const replacement = await engine.spawnWorker();
  await engine.waitForGoal(body.goalId, (g) => g.status === 'completed', 90_000);
  expect(sentTo('margaret@example.com')).toHaveLength(1);
  await replacement.kill('SIGTERM');
}, 180_000);

test('(e) a worker that dies right after storing a decision: the decision still reaches the workflow, which goes on to send once', async () => {
  const before = engine.smtp.messages.length;
  const doomed = await engine.spawnWorker({ KEEL_FAULTS: 'approval.recordDecision.afterWrite=crash' });
  const { body } = await engine.http('POST', '/v1/goals', {
    title: 'Email dorothy@example.com a thank-you note for the referral',
  });
  const approval = await pendingApprovalFor(body.goalId);
  const decide = () =>
    engine.http(
      'POST',
      `/v1/approvals/${approval.approvalId}/decision`,
      { decision: 'approve' },
      { 'idempotency-key': 'durability-e' },
    );
  const first = decide();
  await doomed.waitForOutput('KEEL_FAULT_HIT approval.recordDecision.afterWrite');
  await doomed.kill('SIGKILL');
  // The row says approved, but the workflow has not heard back: nothing may be sent yet, and the
  // decision must not be lost when the next worker takes over.
  const row = await engine.db.prisma.approval.findUniqueOrThrow({ where: { id: approval.approvalId } });
  expect(row.status).toBe('approved');
  const replacement = await engine.spawnWorker();
  let answer = await first;
  for (let i = 0; answer.status !== 200 && i < 20; i++) answer = await decide();
  expect(answer.body).toEqual({ approvalId: approval.approvalId, status: 'approved' });
  await engine.waitForGoal(body.goalId, (g) => g.status === 'completed', 90_000);
  expect(engine.smtp.messages.length).toBe(before + 1);
  expect(sentTo('dorothy@example.com')).toHaveLength(1);

  // The order that makes this safe: Temporal accepted the update before the row was written, by an
  // ordinary activity (a local activity would have written it inside a task history might never get).
  const history = await engine.temporal.client.workflow.getHandle(body.workflowId).fetchHistory();
  const events = history.events ?? [];
  const accepted = events.findIndex((e) => e.workflowExecutionUpdateAcceptedEventAttributes);
  const scheduled = events.findIndex(
    (e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'recordDecision',
  );
  expect(accepted).toBeGreaterThan(-1);
  expect(scheduled).toBeGreaterThan(accepted);
  await replacement.kill('SIGTERM');
}, 180_000);
