/**
 * Adaptive truncation: prompts are fitted to the tier's context window with
 * the real tokenizer by leaving out the least useful working-set items, never
 * the instructions or the <untrusted> delimiters; what was left out is
 * recorded. Pure cases first, then the model planner and the draft activity
 * over a scratch database and the protocol stand-in with a small window.
 */
import { ApplicationFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { DefaultLogger } from '@temporalio/worker';
import { defaultConfig, loadConfig } from '../../config';
import type { MemoryService } from '../../memory/service';
import { createModelGateway, type ChatMessage } from '../../models/gateway';
import { fitPrompt, itemLine, promptTokens, untrusted, type PromptItem } from '../../models/prompt';
import { countTokens } from '../../models/tokenizer';
import { createModelPlanner } from '../../planner/model';
import { planOffline } from '../../planner/offline';
import type { StepActivityInput } from '../../shared/activity-io';
import type { StepResult } from '../../shared/plan';
import { createGoalStateActivities } from '../../state/goals';
import { createGoal } from '../../state/intake';
import { diffPlans, planHistory } from '../../state/plans';
import { createToolActivities } from '../../tools/activities';
import { requiresApproval } from '../../policy';
import { createTestDatabase, type TestDatabase } from '../helpers/db';
import { createTestEmail, createTestMemory } from '../helpers/engine';
import { startOpenAIStandin, type OpenAIStandin } from '../helpers/openai-standin';

jest.setTimeout(60_000);

const INSTRUCTIONS = 'You are a careful planner. Follow these instructions exactly.';
const build = (lines: string): ChatMessage[] => [
  { role: 'system', content: INSTRUCTIONS },
  { role: 'user', content: `Context:\n${untrusted(lines)}` },
];
const items = (n: number, words = 30): PromptItem[] =>
  Array.from({ length: n }, (_, i) => ({
    id: `m${i}`,
    text: `memory ${i}: ${Array.from({ length: words }, (_, w) => `word${(i * 7 + w) % 97}`).join(' ')}`,
  }));

describe('fitPrompt', () => {
  test('a prompt that fits is left whole', () => {
    const all = items(5);
    const { messages, fit } = fitPrompt({ items: all, build, contextTokens: 10_000, maxTokens: 500 });
    expect(fit.dropped).toEqual([]);
    expect(fit.kept).toEqual(all.map((i) => i.id));
    expect(messages).toEqual(build(all.map(itemLine).join('\n')));
    expect(fit.promptTokens).toBe(promptTokens(messages));
  });

  test('the least useful items go first, until the prompt and the answer fit the window', () => {
    const all = items(40);
    const whole = promptTokens(build(all.map(itemLine).join('\n')));
    const contextTokens = Math.floor(whole * 0.6) + 300;
    const { messages, fit } = fitPrompt({ items: all, build, contextTokens, maxTokens: 300 });
    // It fits, with the tokenizer's own count.
    expect(promptTokens(messages)).toBeLessThanOrEqual(contextTokens - 300);
    expect(fit.promptTokens).toBe(promptTokens(messages));
    // Kept: a prefix of the items in their order (most useful first); dropped: the rest, least useful first.
    const n = fit.kept.length;
    expect(n).toBeGreaterThan(0);
    expect(n).toBeLessThan(all.length);
    expect(fit.kept).toEqual(all.slice(0, n).map((i) => i.id));
    expect(fit.dropped.map((d) => d.id)).toEqual(
      all
        .slice(n)
        .map((i) => i.id)
        .reverse(),
    );
    for (const d of fit.dropped) expect(d.tokens).toBe(countTokens(`${itemLine(all.find((i) => i.id === d.id)!)}\n`));
    // No more was dropped than needed: one more item would not have fitted.
    expect(
      promptTokens(
        build(
          all
            .slice(0, n + 1)
            .map(itemLine)
            .join('\n'),
        ),
      ),
    ).toBeGreaterThan(contextTokens - 300);
    // The instructions and the delimiters are intact.
    expect(messages[0].content).toBe(INSTRUCTIONS);
    expect(messages[1].content).toMatch(/^Context:\n<untrusted>\n[\s\S]*\n<\/untrusted>$/);
  });

  test('an item with newlines takes one line', () => {
    const { messages } = fitPrompt({
      items: [{ id: 'a', text: 'line one\n\n  line two\nline three' }],
      build,
      contextTokens: 1000,
      maxTokens: 10,
    });
    expect(messages[1].content).toContain('- line one line two line three\n</untrusted>');
  });

  test('when the instructions alone do not fit, the call fails for good and gives the sizes', () => {
    const fixed = promptTokens(build(''));
    let thrown: unknown;
    try {
      fitPrompt({ items: items(3), build, contextTokens: fixed + 100, maxTokens: 101 });
    } catch (err) {
      thrown = err;
    }
    expect(thrown).toBeInstanceOf(ApplicationFailure);
    const failure = thrown as ApplicationFailure;
    expect(failure.type).toBe('PromptTooLarge');
    expect(failure.nonRetryable).toBe(true);
    expect(failure.message).toContain(`${fixed} tokens`);
    expect(failure.message).toContain(`${fixed + 100} tokens with 101 kept for the answer`);
  });
});

describe('through the planner and the draft activity', () => {
  let db: TestDatabase;
  let memory: MemoryService;
  let standin: OpenAIStandin;
  const CONTEXT = 4500;

  beforeAll(async () => {
    db = await createTestDatabase();
    memory = createTestMemory(db.prisma);
    standin = await startOpenAIStandin({
      chat: (body) => {
        const format = body.response_format as { json_schema?: { name: string } } | undefined;
        if (format?.json_schema?.name === 'keel_email_draft')
          return JSON.stringify({ subject: 'Invoice 118', body: 'Hi Ada, the invoice is on its way.' });
        return JSON.stringify({
          rationale: 'Recall, then record.',
          steps: [
            {
              id: 'recall',
              tool: 'memory.recall',
              title: 'Recall',
              rationale: 'context',
              inputs: { query: 'invoice' },
              dependsOn: [],
            },
          ],
        });
      },
    });
    // Many long memories about the same customer: more than the small window holds.
    for (let i = 0; i < 40; i++) {
      await memory.remember({
        text: `Acme invoice note ${i}: ${'the customer asked about invoice timing and payment terms again '.repeat(36)}`,
        kind: 'semantic',
        subject: 'contact:ada@acme.test',
        source: 'human',
      });
    }
  });

  afterAll(async () => {
    await standin?.close();
    await memory?.store.close();
    await db?.drop();
  });

  const gateway = () =>
    createModelGateway(
      loadConfig({
        OPENAI_BASE_URL: standin.baseURL,
        OPENAI_API_KEY: 'sk-fit',
        KEEL_MODEL_LARGE_CONTEXT: String(CONTEXT),
        KEEL_MODEL_SMALL_CONTEXT: String(CONTEXT),
      }),
    );

  test('the planner fits the working set to the large tier, says what it left out, and the plan history keeps it', async () => {
    const { goal } = await createGoal(
      db.prisma,
      { title: 'Answer Ada about the Acme invoice', kind: 'general', input: {} },
      'operator:test',
    );
    const planner = createModelPlanner({ gateway: gateway(), prisma: db.prisma, memory, workingSetTokens: 20_000 });
    const before = standin.chatRequests().length;
    const plan = await planner({
      goalId: goal.id,
      title: goal.title,
      kind: 'general',
      input: {},
      planVersion: 1,
      feedback: [],
    });
    const sent = standin.chatRequests().slice(before);
    expect(sent).toHaveLength(1);
    const messages = sent[0].body.messages as ChatMessage[];
    expect(promptTokens(messages)).toBeLessThanOrEqual(CONTEXT - 1500);
    expect(plan.prompt?.dropped.length).toBeGreaterThan(0);
    expect(plan.prompt?.kept.length).toBeGreaterThan(0);
    expect(plan.prompt?.promptTokens).toBe(promptTokens(messages));
    // The tool catalogue and the delimiters were never cut.
    expect(messages[0].content).toContain('email.send');
    expect(messages[1].content).toMatch(/<untrusted>[\s\S]*<\/untrusted>[\s\S]*<untrusted>[\s\S]*<\/untrusted>/);
    for (const d of plan.prompt!.dropped) expect(messages[1].content).not.toContain(d.id);

    // Recorded with the plan: the history shows what the planner's prompt left out.
    await createGoalStateActivities(db.prisma).startPlan({
      goalId: goal.id,
      planVersion: 1,
      plan,
      steps: plan.steps.map((s) => ({ ...s, requiresApproval: requiresApproval(s) })),
      planChurn: 0,
    });
    const history = await planHistory(db.prisma, goal.id);
    expect(history.versions[0].prompt?.dropped).toEqual(plan.prompt?.dropped);
    expect(history.versions[0].steps[0]).toMatchObject({ id: 'recall', inputs: { query: 'invoice' } });
  });

  test('a draft step fits its recalled context to the tier and records what it dropped on the step', async () => {
    const title = 'Email ada@acme.test about the invoice';
    const { goal } = await createGoal(
      db.prisma,
      { title, kind: 'email', input: { to: 'ada@acme.test' } },
      'operator:test',
    );
    const plan = planOffline({
      goalId: goal.id,
      title,
      kind: 'email',
      input: { to: 'ada@acme.test' },
      planVersion: 1,
      feedback: [],
    });
    await createGoalStateActivities(db.prisma).startPlan({
      goalId: goal.id,
      planVersion: 1,
      plan,
      steps: plan.steps.map((s) => ({ ...s, requiresApproval: requiresApproval(s) })),
      planChurn: 0,
    });
    const email = createTestEmail(db.prisma, undefined);
    const acts = createToolActivities({
      prisma: db.prisma,
      email,
      memory,
      workingSetTokens: 20_000,
      operatorName: 'Op',
      models: gateway(),
    });
    const env = () =>
      new MockActivityEnvironment(
        {
          attempt: 1,
          workflowExecution: { workflowId: goal.workflowId, runId: '00000000-0000-4000-8000-000000000002' },
        },
        { logger: new DefaultLogger('WARN') },
      );
    const input = (stepId: string, inputs: Record<string, unknown>): StepActivityInput => ({
      goalId: goal.id,
      workflowId: goal.workflowId,
      planVersion: 1,
      stepId,
      tool: plan.steps.find((s) => s.id === stepId)!.tool,
      inputs,
    });
    const recall: StepResult = await env().run(
      acts.recallContext,
      input('recall', { query: 'invoice', subject: 'ada@acme.test' }),
    );
    expect(recall.output.items as number).toBeGreaterThan(5);
    const before = standin.chatRequests().length;
    const draft: StepResult = await env().run(
      acts.draftEmail,
      input('draft', { to: 'ada@acme.test', purpose: 'the invoice', context: recall.output }),
    );
    const [request] = standin.chatRequests().slice(before);
    expect(promptTokens(request.body.messages)).toBeLessThanOrEqual(CONTEXT - 800);
    expect(draft.prompt?.dropped.length).toBeGreaterThan(0);
    expect(draft.prompt!.kept.length + draft.prompt!.dropped.length).toBe(recall.output.items as number);
    const completed = await db.prisma.event.findFirstOrThrow({
      where: { goalId: goal.id, type: 'step.completed', data: { path: ['stepId'], equals: 'draft' } },
    });
    expect((completed.data as { prompt?: unknown }).prompt).toEqual(draft.prompt);
    await email.close();
  });
});

test('the context windows default to 128k tokens and are settings', () => {
  expect(defaultConfig().KEEL_MODEL_LARGE_CONTEXT).toBe(128_000);
  expect(() => loadConfig({ KEEL_MODEL_SMALL_CONTEXT: '12' })).toThrow(/KEEL_MODEL_SMALL_CONTEXT/);
});

describe('diffPlans', () => {
  test('steps added, removed and changed, by id; key order and fields an older event lacks are not changes', () => {
    const before = [
      { id: 'a', tool: 'memory.recall', dependsOn: [], inputs: { query: 'x', subject: 'y' } },
      { id: 'b', tool: 'email.draft', dependsOn: ['a'], inputs: { to: 'ada@example.com' } },
      { id: 'c', tool: 'email.send', dependsOn: ['b'] },
    ];
    const after = [
      { id: 'a', tool: 'memory.recall', dependsOn: [], inputs: { subject: 'y', query: 'x' } },
      { id: 'b', tool: 'email.draft', dependsOn: [], inputs: { to: 'bo@example.com' } },
      { id: 'c', tool: 'email.send', dependsOn: ['b'], inputs: { to: 'bo@example.com' } },
      { id: 'd', tool: 'outcome.record', dependsOn: ['c'] },
    ];
    expect(diffPlans(before, after)).toEqual({
      added: ['d'],
      removed: [],
      changed: [{ id: 'b', fields: ['inputs', 'dependsOn'] }],
    });
    expect(diffPlans(after, before.slice(0, 1))).toEqual({ added: [], removed: ['b', 'c', 'd'], changed: [] });
  });
});
