/**
 * Budgets, enforced by the workflow: every model call reserves its worst case
 * before it runs. A call that would not fit drops to the small tier where the
 * step allows it; when nothing fits the goal stops at an approval to raise
 * the budget, having spent no more than it was given.
 */
import { goalModels } from '../../commands/goals';
import { loadConfig } from '../../config';
import { createModelGateway } from '../../models/gateway';
import { worstCaseCostUsd } from '../../models/prices';
import { PLAN_MODEL } from '../../shared/plan';
import { DRAFT_MODEL } from '../../tools/email-draft/spec';
import { startEngine, type TestEngine } from '../helpers/engine';
import { startOpenAIStandin, type OpenAIStandin } from '../helpers/openai-standin';

let engine: TestEngine;
let standin: OpenAIStandin;
let planRationale = 'Write, ask, send.';

const config = () => loadConfig({ OPENAI_BASE_URL: standin.baseURL, OPENAI_API_KEY: 'test-key' });
const chatCalls = (from: number) =>
  standin.requests
    .slice(from)
    .filter((r) => r.path === '/v1/chat/completions')
    .map((r) => r.body as any);

/** The goal's live cost, from the workflow (the goal row's cost is written when the goal ends). */
const liveCost = async (workflowId: string): Promise<number> =>
  ((await engine.temporal.client.workflow.getHandle(workflowId).query('state')) as any).cost.usd;

const plan = (to: string) => ({
  rationale: planRationale,
  steps: [
    {
      id: 'draft',
      tool: 'email.draft',
      title: 'Draft',
      rationale: '',
      inputs: { to, purpose: 'say thanks' },
      dependsOn: [],
    },
    {
      id: 'send',
      tool: 'email.send',
      title: 'Send',
      rationale: '',
      inputs: { to, draft: { fromStep: 'draft' } },
      dependsOn: ['draft'],
    },
  ],
});

beforeAll(async () => {
  standin = await startOpenAIStandin({
    chat: (body) => {
      const name = (body.response_format as any)?.json_schema?.name;
      const to = /[a-z]+@example\.com/.exec(JSON.stringify(body.messages))?.[0] ?? 'x@example.com';
      if (name === 'keel_plan') return JSON.stringify(plan(to));
      return JSON.stringify({ subject: 'Thanks', body: 'Thank you!' });
    },
  });
  engine = await startEngine({ settings: { models: goalModels(config()) } });
  await engine.startWorker({ models: createModelGateway(config()) });
});
afterAll(async () => {
  await engine?.close();
  await standin?.close();
});

/** The worst case the workflow reserves for a call, from the same settings the goal carries. */
const worst = (model: string, maxTokens: number) => {
  const m = goalModels(config());
  return worstCaseCostUsd({ model, maxTokens, inputTokens: m.promptTokens, prices: m.prices });
};

test('a goal whose budget cannot cover planning stops at "raise the budget" having spent nothing, and goes on once raised', async () => {
  planRationale = 'Write, ask, send.';
  const planWorst = worst('gpt-4o', PLAN_MODEL.maxTokens);
  const budgetUsd = Math.floor(planWorst * 0.5 * 10_000) / 10_000;
  const before = standin.requests.length;
  const { body } = await engine.http('POST', '/v1/goals', { title: 'Thank ada@example.com', budgetUsd });
  const waiting = await engine.waitForGoal(body.goalId, (g) => g.approvals.some((a: any) => a.status === 'pending'));
  const raise = waiting.approvals[0];
  const proposed = Math.ceil(planWorst * 100) / 100;
  expect(raise.title).toBe(`Raise the budget to $${proposed.toFixed(2)}?`);
  expect(raise.proposed).toMatchObject({ budgetUsd, spentUsd: 0, proposedBudgetUsd: proposed });
  // It did not overspend: no model call was made.
  expect(chatCalls(before)).toHaveLength(0);
  expect(await liveCost(body.workflowId)).toBe(0);

  expect(
    (await engine.http('POST', `/v1/approvals/${raise.approvalId}/decision`, { decision: 'approve' })).status,
  ).toBe(200);
  const sending = await engine.waitForGoal(body.goalId, (g) =>
    g.approvals.some((a: any) => a.stepId === 'send' && a.status === 'pending'),
  );
  expect(chatCalls(before).map((c) => c.response_format.json_schema.name)).toEqual(['keel_plan', 'keel_email_draft']);
  expect(sending.approvals[0].status).toBe('approved');
  // The raised budget is the goal's budget now, in its row and its log.
  expect(sending.budgetUsd).toBe(proposed);
  const raised = (await engine.http('GET', `/v1/goals/${body.goalId}/events`)).body.events.filter(
    (e: any) => e.type === 'goal.budget_raised',
  );
  expect(raised.map((e: any) => e.data)).toEqual([
    { approvalId: raise.approvalId, from: budgetUsd, budgetUsd: proposed },
  ]);
  const spent = await liveCost(body.workflowId);
  expect(spent).toBeGreaterThan(0);
  expect(spent).toBeLessThanOrEqual(proposed);
});

test('a draft that the rest of the budget cannot cover at the large tier is written by the small tier', async () => {
  // A long plan answer spends enough that the draft's large-tier worst case no longer fits.
  planRationale = 'Because '.repeat(1200);
  const budgetUsd = worst('gpt-4o', PLAN_MODEL.maxTokens);
  expect(worst('gpt-4o', DRAFT_MODEL.maxTokens)).toBeGreaterThan(worst('gpt-4o-mini', DRAFT_MODEL.maxTokens));
  const before = standin.requests.length;
  const { body } = await engine.http('POST', '/v1/goals', { title: 'Thank bo@example.com', budgetUsd });
  const waiting = await engine.waitForGoal(body.goalId, (g) =>
    g.approvals.some((a: any) => a.stepId === 'send' && a.status === 'pending'),
  );
  const calls = chatCalls(before);
  expect(calls.map((c) => [c.response_format.json_schema.name, c.model])).toEqual([
    ['keel_plan', 'gpt-4o'],
    ['keel_email_draft', 'gpt-4o-mini'],
  ]);
  // No budget approval was needed, and the goal stayed within its budget.
  expect(waiting.approvals.map((a: any) => a.stepId)).toEqual(['send']);
  const spent = await liveCost(body.workflowId);
  expect(spent).toBeGreaterThan(worst('gpt-4o', PLAN_MODEL.maxTokens) - worst('gpt-4o', DRAFT_MODEL.maxTokens));
  expect(spent).toBeLessThanOrEqual(budgetUsd);
});
