/**
 * The operator's policy through the whole engine (KEEL_POLICY pinned in the
 * goal's settings at start): a tool the policy always asks about waits with
 * its reason, a tool a goal kind may not use gets the plan refused, and a
 * first contact is named in the approval the operator sees.
 */
import { policySchema } from '../../policy';
import { startEngine, type TestEngine } from '../helpers/engine';

let engine: TestEngine;

beforeAll(async () => {
  engine = await startEngine({
    settings: {
      maxReplans: 1,
      policy: policySchema.parse({
        approve: { tools: ['outcome.record'] },
        tools: { restricted: ['memory.recall', 'text.summarize'] },
      }),
    },
  });
  await engine.startWorker();
});
afterAll(async () => {
  await engine?.close();
});

const pendingFor = async (goalId: string) =>
  (await engine.http('GET', '/v1/approvals?status=pending')).body.approvals.filter((a: any) => a.goalId === goalId);

test('a tool the policy always asks about waits, and the approval says why', async () => {
  const { body } = await engine.http('POST', '/v1/goals', {
    title: 'Note that Acme paid',
    kind: 'note',
    input: { text: 'Acme paid invoice 118.' },
  });
  await engine.waitForGoal(body.goalId, (g) => g.status === 'awaiting_approval');
  const [approval] = await pendingFor(body.goalId);
  expect(approval.stepId).toBe('record');
  expect(approval.proposed.why).toEqual(['the policy asks before every outcome.record']);
  // The summarize step before it ran without asking.
  const goal = (await engine.http('GET', `/v1/goals/${body.goalId}`)).body;
  expect(goal.plan.steps.filter((s: any) => s.requiresApproval).map((s: any) => s.id)).toEqual(['record']);
  await engine.http('POST', `/v1/approvals/${approval.approvalId}/decision`, { decision: 'approve' });
  await engine.waitForGoal(body.goalId, (g) => g.status === 'completed');
});

test('a plan using a tool its goal kind may not use is refused with the reason, every time', async () => {
  const { body } = await engine.http('POST', '/v1/goals', {
    title: 'Restricted work',
    kind: 'restricted',
    input: { text: 'Summarize this and keep it.' },
  });
  const failed = await engine.waitForGoal(body.goalId, (g) => g.status === 'failed');
  expect(failed.error).toContain('which the policy does not allow for restricted goals');
  const history = (await engine.http('GET', `/v1/goals/${body.goalId}/plans`)).body;
  expect(history.versions.map((v: any) => v.status)).toEqual(['rejected', 'rejected']);
  expect(history.causes[0].problems).toEqual([
    'step "record" uses outcome.record, which the policy does not allow for restricted goals',
  ]);
});

test('an email to someone who is not yet a contact names the first contact in its approval', async () => {
  const { body } = await engine.http('POST', '/v1/goals', {
    title: 'Email newperson@example.com about the launch',
    input: { to: 'newperson@example.com' },
  });
  await engine.waitForGoal(body.goalId, (g) => g.status === 'awaiting_approval');
  const [approval] = await pendingFor(body.goalId);
  expect(approval.stepId).toBe('send');
  expect(approval.proposed.why).toEqual(['email.send cannot be undone', 'first contact with newperson@example.com']);
  await engine.http('POST', `/v1/approvals/${approval.approvalId}/decision`, { decision: 'reject' });
  await engine.waitForGoal(body.goalId, (g) => g.status === 'failed');
});
