/**
 * The workflow as planner: replanning after an invalid proposal, parallel
 * independent steps, and approval deadlines with escalation. A scripted
 * planner is passed to the worker as a dependency (no module patching).
 */
import type { PlanGoalInput } from '../../shared/activity-io';
import { planOffline } from '../../planner/offline';
import type { ProposedPlan } from '../../shared/plan';
import { startEngine, type TestEngine } from '../helpers/engine';

let engine: TestEngine;
const plannerCalls: PlanGoalInput[] = [];

/** Plans by goal title: "bad-then-good" proposes an unknown tool first; "fan-out" recalls twice in parallel. */
async function scriptedPlanner(input: PlanGoalInput): Promise<ProposedPlan> {
  plannerCalls.push(input);
  const base = planOffline(input);
  if (input.title === 'bad-then-good' && input.feedback.length === 0) {
    return {
      ...base,
      steps: [{ id: 'x', tool: 'crystal.ball', title: 'Guess', rationale: '', inputs: {}, dependsOn: [] }],
    };
  }
  if (input.title === 'fan-out') {
    return {
      ...base,
      steps: [
        { id: 'a', tool: 'memory.recall', title: 'Recall A', rationale: '', inputs: { query: 'alpha' }, dependsOn: [] },
        { id: 'b', tool: 'memory.recall', title: 'Recall B', rationale: '', inputs: { query: 'bravo' }, dependsOn: [] },
        {
          id: 'sum',
          tool: 'text.summarize',
          title: 'Summarize',
          rationale: '',
          inputs: { source: { fromStep: 'a' }, context: { fromStep: 'b' } },
          dependsOn: ['a', 'b'],
        },
      ],
    };
  }
  return base;
}

beforeAll(async () => {
  engine = await startEngine({ settings: { approvalTimeoutMs: 1_500, escalationTimeoutMs: 1_500 } });
  await engine.startWorker({ planner: scriptedPlanner });
});
afterAll(async () => {
  await engine?.close();
});

test('an invalid plan is rejected with its reasons and the planner is asked again with them', async () => {
  const { body } = await engine.http('POST', '/v1/goals', { title: 'bad-then-good', kind: 'note' });
  const done = await engine.waitForGoal(body.goalId, (g) => g.status === 'completed');
  expect(done.plan.version).toBe(2);
  expect(done.planChurn).toBe(1);
  const calls = plannerCalls.filter((c) => c.goalId === body.goalId);
  expect(calls.map((c) => c.feedback)).toEqual([[], ['step "x" names unknown tool "crystal.ball"']]);
  const rejected = (await engine.http('GET', `/v1/goals/${body.goalId}/events`)).body.events.find(
    (e: any) => e.type === 'plan.rejected',
  );
  expect(rejected.data.problems).toEqual(['step "x" names unknown tool "crystal.ball"']);
});

test('independent steps are scheduled together; the dependent one waits for both', async () => {
  const { body } = await engine.http('POST', '/v1/goals', { title: 'fan-out', kind: 'note' });
  await engine.waitForGoal(body.goalId, (g) => g.status === 'completed');
  const history = await engine.temporal.client.workflow.getHandle(body.workflowId).fetchHistory();
  const order: string[] = [];
  for (const e of history.events ?? []) {
    if (e.activityTaskScheduledEventAttributes) {
      const attrs = e.activityTaskScheduledEventAttributes;
      const payload = attrs.input?.payloads?.[0]?.data;
      const stepId = payload ? JSON.parse(Buffer.from(payload).toString()).stepId : undefined;
      if (stepId) order.push(`scheduled:${stepId}`);
    }
    if (e.workflowTaskCompletedEventAttributes) order.push('|');
  }
  const batches = order
    .join(' ')
    .split('|')
    .map((b) => b.trim())
    .filter(Boolean);
  expect(batches).toContain('scheduled:a scheduled:b');
  expect(batches.findIndex((b) => b.includes('scheduled:sum'))).toBeGreaterThan(
    batches.findIndex((b) => b.includes('scheduled:a')),
  );
});

test('an approval nobody decides is escalated, then expires, and nothing is sent', async () => {
  const { body } = await engine.http('POST', '/v1/goals', { title: 'Email zed@example.com the quarterly numbers' });
  const failed = await engine.waitForGoal(body.goalId, (g) => g.status === 'failed', 30_000);
  expect(failed.approvals[0]).toMatchObject({ status: 'expired', escalated: true });
  expect(failed.error).toMatch(/expired with no decision/);
  const types = (await engine.http('GET', `/v1/goals/${body.goalId}/events`)).body.events.map((e: any) => e.type);
  expect(types.indexOf('approval.escalated')).toBeGreaterThan(types.indexOf('approval.requested'));
  expect(types.indexOf('approval.expired')).toBeGreaterThan(types.indexOf('approval.escalated'));
  expect(engine.smtp.messages).toHaveLength(0);
});
