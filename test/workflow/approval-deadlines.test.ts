/**
 * Deadlines as policy (issue 9, item 2): an approval nobody decides is
 * escalated (the reminder: flagged for the inbox and Slack) after the first
 * deadline, then on expiry takes the policy's default for its tool — reject,
 * unless the policy says approve for a reversible tool; an irreversible tool
 * is always rejected on expiry. Workflow timers in seconds on the dev server.
 */
import { policySchema } from '../../policy';
import { startEngine, type TestEngine } from '../helpers/engine';

let engine: TestEngine;

beforeAll(async () => {
  engine = await startEngine({
    settings: {
      approvalTimeoutMs: 1_000,
      escalationTimeoutMs: 1_500,
      policy: policySchema.parse({
        approve: { tools: ['outcome.record'], onExpiry: { 'outcome.record': 'approve', 'email.send': 'approve' } },
      }),
    },
  });
  await engine.startWorker();
});
afterAll(async () => {
  await engine?.close();
});

test("a reversible step's approval is reminded, then approved on expiry by the policy, and says so", async () => {
  const { body } = await engine.http('POST', '/v1/goals', {
    title: 'Note the weekly numbers',
    kind: 'note',
    input: { text: 'Revenue up 4%.' },
  });
  const done = await engine.waitForGoal(body.goalId, (g) => g.status === 'completed');
  const [approval] = done.approvals;
  expect(approval).toMatchObject({
    stepId: 'record',
    status: 'approved',
    escalated: true,
    actor: 'policy:on-expiry',
    channel: 'policy',
  });
  const types = (await engine.http('GET', `/v1/goals/${body.goalId}/events`)).body.events.map((e: any) => e.type);
  expect(types.indexOf('approval.escalated')).toBeGreaterThan(-1);
  expect(types.indexOf('approval.escalated')).toBeLessThan(types.indexOf('approval.approved'));
});

test('an irreversible step is rejected on expiry whatever the policy says: nothing is sent', async () => {
  const { body } = await engine.http('POST', '/v1/goals', {
    title: 'Email nobody-answers@example.com about the launch',
    input: { to: 'nobody-answers@example.com' },
  });
  const failed = await engine.waitForGoal(body.goalId, (g) => g.status === 'failed');
  expect(failed.approvals[0]).toMatchObject({ stepId: 'send', status: 'expired', escalated: true });
  expect(failed.error).toContain('expired with no decision');
  expect(engine.smtp.messages.filter((m) => m.to.includes('nobody-answers@example.com'))).toHaveLength(0);
});
