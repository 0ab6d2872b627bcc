/**
 * Triggers end to end, over real HTTP against the API with a real Temporal
 * dev server, PostgreSQL and a worker: a trigger is created, an event that
 * matches it starts exactly one goal which runs to the end; the same event
 * again, or twice at once, starts no second goal; an event that does not
 * match starts none; bad trigger bodies are refused naming the problem. A
 * second API with a model configured classifies events with the small tier
 * (through the protocol stand-in), and falls back to the rules when the
 * model fails.
 */
import { randomBytes } from 'node:crypto';
import { defaultConfig } from '../../config';
import { createModelGateway } from '../../models/gateway';
import { OFFLINE_LABEL } from '../../tools/runtime';
import { startEngine, type TestEngine } from '../helpers/engine';
import { startOpenAIStandin, type OpenAIStandin } from '../helpers/openai-standin';

let engine: TestEngine;

beforeAll(async () => {
  engine = await startEngine();
  await engine.startWorker();
});
afterAll(async () => {
  await engine?.close();
});

const uniq = () => randomBytes(4).toString('hex');

const INVOICE_TRIGGER = {
  name: 'invoice questions',
  eventType: 'email.received',
  source: 'gmail',
  match: { kind: ['invoice_question'] },
  goal: {
    kind: 'note',
    title: 'Invoice question from {{payload.from}}',
    description: 'Look into: {{payload.subject}}. Their phone: {{payload.phone}}.',
    input: { text: '{{payload.text}}' },
  },
};

function invoiceEmail(externalId: string) {
  return {
    source: 'gmail',
    type: 'email.received',
    externalId,
    payload: {
      from: 'Ada Lovelace <ada@acme.example>',
      subject: 'Invoice INV-7 was charged twice',
      text: 'Hello, our invoice INV-7 (EUR 120) was charged twice this month. Could you refund one?',
    },
  };
}

/** Goals whose id is this one (0 or 1) and how many workflow executions goal-<id> has, once visibility caught up. */
async function goalAndRuns(goalId: string) {
  const goals = await engine.db.prisma.goal.count({ where: { id: goalId } });
  let runs = 0;
  for (let i = 0; i < 50; i++) {
    runs = 0;
    for await (const _wf of engine.temporal.client.workflow.list({ query: `WorkflowId = "goal-${goalId}"` })) runs++;
    if (runs > 0) break;
    await new Promise((r) => setTimeout(r, 200));
  }
  return { goals, runs };
}

let triggerId: string;

/**
 * A triggered goal's text is outside content: the default policy lets it recall and summarize, but asks
 * before it writes to memory. Approves that step (checking why it was asked) and waits for the goal to finish.
 */
async function approveRecordAndFinish(goalId: string) {
  const waiting = await engine.waitForGoal(goalId, (g) => g.approvals.some((a: any) => a.status === 'pending'));
  const pending = waiting.approvals.filter((a: any) => a.status === 'pending');
  expect(pending.map((a: any) => [a.stepId, a.proposed.why])).toEqual([
    ['record', ['the goal was started from outside content']],
  ]);
  await engine.http('POST', `/v1/approvals/${pending[0].approvalId}/decision`, { decision: 'approve' });
  return engine.waitForGoal(goalId, (g) => g.status === 'completed');
}

describe('POST /v1/triggers', () => {
  test('bad bodies are 400s naming the problem, and store nothing', async () => {
    const cases: [unknown, RegExp][] = [
      [{ ...INVOICE_TRIGGER, name: undefined }, /name/],
      [{ ...INVOICE_TRIGGER, eventType: '' }, /eventType/],
      [{ ...INVOICE_TRIGGER, match: { kind: ['urgent'] } }, /match\.kind\.0: .*invoice_question/],
      [{ ...INVOICE_TRIGGER, match: { contains: [{ field: 'subject', text: 'x' }] } }, /match\.contains\.0\.field/],
      [{ ...INVOICE_TRIGGER, match: { regex: '.*' } }, /match.*regex/],
      [
        { ...INVOICE_TRIGGER, goal: { title: 'From {{sender}}' } },
        /goal\.title: "\{\{sender\}\}" is not a placeholder/,
      ],
      [{ ...INVOICE_TRIGGER, goal: { title: 'x', description: '{{payload.from}' } }, /goal\.description: .*unmatched/],
      [{ ...INVOICE_TRIGGER, goal: undefined }, /goal/],
      [{ ...INVOICE_TRIGGER, extra: 1 }, /extra/],
      ['not json', /JSON/],
    ];
    for (const [body, message] of cases) {
      const res = await engine.http('POST', '/v1/triggers', body);
      expect(res.status).toBe(400);
      expect(res.body.error).toMatchObject({ code: 'bad_request', message: expect.stringMatching(message) });
    }
    expect(await engine.db.prisma.trigger.count()).toBe(0);
  });

  test('a trigger is created and listed; a second one with the same name is a 409', async () => {
    const created = await engine.http('POST', '/v1/triggers', INVOICE_TRIGGER);
    expect(created.status).toBe(201);
    expect(created.body).toEqual({
      id: expect.any(String),
      ...INVOICE_TRIGGER,
      createdAt: expect.any(String),
    });
    triggerId = created.body.id;

    const again = await engine.http('POST', '/v1/triggers', INVOICE_TRIGGER);
    expect(again.status).toBe(409);
    expect(again.body.error.message).toContain(triggerId);

    const list = await engine.http('GET', '/v1/triggers');
    expect(list).toMatchObject({ status: 200, body: { triggers: [{ id: triggerId, name: 'invoice questions' }] } });
  });
});

describe('POST /v1/events with a trigger', () => {
  let firstEvent: ReturnType<typeof invoiceEmail>;
  let goalId: string;

  test('a matching event starts exactly one goal, and it runs to the end', async () => {
    firstEvent = invoiceEmail(`msg-${uniq()}`);
    const res = await engine.http('POST', '/v1/events', firstEvent);
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({
      id: expect.any(String),
      duplicate: false,
      classification: { kind: 'invoice_question', generatedBy: expect.stringContaining(OFFLINE_LABEL) },
      goals: [
        {
          goalId: expect.any(String),
          workflowId: expect.stringMatching(/^goal-/),
          triggerId,
          trigger: 'invoice questions',
          created: true,
          missing: ['payload.phone'],
        },
      ],
    });
    goalId = res.body.goals[0].goalId;

    const goal = await approveRecordAndFinish(goalId);
    expect(goal.title).toBe('Invoice question from Ada Lovelace <ada@acme.example>');
    const row = await engine.db.prisma.goal.findUniqueOrThrow({ where: { id: goalId } });
    expect(row.kind).toBe('note');
    expect(row.input).toEqual({ text: firstEvent.payload.text });
    expect(row.description).toContain('Look into: Invoice INV-7 was charged twice. Their phone: .');
    expect(row.description).toContain("the event had no value for payload.phone; the trigger's template left it empty");
    expect(row.description).toContain(
      `Started by trigger "invoice questions" for the email.received event ${firstEvent.externalId}`,
    );
    // The audit log says who started it.
    const created = await engine.db.prisma.event.findFirstOrThrow({ where: { goalId, type: 'goal.created' } });
    expect(created.actor).toBe(`trigger:${triggerId}`);
    // The classification and the match are stored with the event.
    const stored = await engine.db.prisma.inboundEvent.findUniqueOrThrow({ where: { id: res.body.id } });
    expect(stored.classification).toMatchObject({ kind: 'invoice_question', model: 'offline' });
    expect(stored.matchedTriggers).toEqual([triggerId]);
    expect(stored.payload).toEqual(firstEvent.payload);

    expect(await goalAndRuns(goalId)).toEqual({ goals: 1, runs: 1 });
  });

  test('the same event again names the same goal and starts no second one', async () => {
    const before = await engine.db.prisma.goal.count();
    const again = await engine.http('POST', '/v1/events', { ...firstEvent, payload: { subject: 'changed' } });
    expect(again.status).toBe(200);
    expect(again.body).toMatchObject({
      duplicate: true,
      classification: { kind: 'invoice_question' },
      goals: [{ goalId, triggerId, created: false, status: 'completed' }],
    });
    expect(await engine.db.prisma.goal.count()).toBe(before);
    expect(await goalAndRuns(goalId)).toEqual({ goals: 1, runs: 1 });
  });

  test('two identical deliveries at once start one goal; both answers name it', async () => {
    const before = await engine.db.prisma.goal.count();
    const event = invoiceEmail(`race-${uniq()}`);
    const answers = await Promise.all([1, 2, 3].map(() => engine.http('POST', '/v1/events', event)));
    expect(answers.map((a) => a.status).sort()).toEqual([200, 200, 201]);
    const ids = answers.map((a) => a.body.goals.map((g: { goalId: string }) => g.goalId));
    expect(ids.every((x) => x.length === 1)).toBe(true);
    expect(new Set(ids.flat()).size).toBe(1);
    expect(answers.filter((a) => a.body.goals[0].created)).toHaveLength(1);
    expect(await engine.db.prisma.goal.count()).toBe(before + 1);
    const raced = ids[0][0];
    expect(await goalAndRuns(raced)).toEqual({ goals: 1, runs: 1 });
    await approveRecordAndFinish(raced);
  });

  test('an event that does not match starts no goal', async () => {
    const before = await engine.db.prisma.goal.count();
    const cases = [
      // Another kind.
      {
        ...invoiceEmail(`hello-${uniq()}`),
        payload: { from: 'bob@example.com', subject: 'Hello', text: 'Just saying hi.' },
      },
      // Another type.
      { ...invoiceEmail(`type-${uniq()}`), type: 'email.sent' },
      // Another source.
      { ...invoiceEmail(`src-${uniq()}`), source: 'outlook' },
    ];
    for (const event of cases) {
      const res = await engine.http('POST', '/v1/events', event);
      expect(res.status).toBe(201);
      expect(res.body.goals).toEqual([]);
    }
    expect(await engine.db.prisma.goal.count()).toBe(before);
  });

  test('a deleted trigger starts nothing new; a replay still names the goal it had started', async () => {
    const del = await engine.http('DELETE', `/v1/triggers/${triggerId}`);
    expect(del).toEqual({ status: 200, body: { id: triggerId, deleted: true } });
    expect((await engine.http('DELETE', `/v1/triggers/${triggerId}`)).status).toBe(404);
    expect((await engine.http('GET', '/v1/triggers')).body).toEqual({ triggers: [] });

    const before = await engine.db.prisma.goal.count();
    const replay = await engine.http('POST', '/v1/events', firstEvent);
    expect(replay.body.goals).toEqual([expect.objectContaining({ goalId, triggerId, trigger: null, created: false })]);
    const fresh = await engine.http('POST', '/v1/events', invoiceEmail(`after-${uniq()}`));
    expect(fresh.status).toBe(201);
    expect(fresh.body.goals).toEqual([]);
    expect(await engine.db.prisma.goal.count()).toBe(before);
  });
});

describe('with a model configured', () => {
  let standin: OpenAIStandin;
  let url: string;

  beforeAll(async () => {
    standin = await startOpenAIStandin();
    const models = createModelGateway({
      ...defaultConfig(),
      OPENAI_BASE_URL: standin.baseURL,
      OPENAI_API_KEY: 'sk-test',
    });
    url = (await engine.serveApi({ models, classifyTimeoutMs: 2000 })).url;
  });
  afterAll(async () => {
    await standin?.close();
  });

  async function post(route: string, body: unknown) {
    const res = await fetch(`${url}${route}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${engine.apiKey}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    return { status: res.status, body: (await res.json()) as any };
  }

  test('the small tier classifies the event (keel_classification) and its kind picks the trigger', async () => {
    const trigger = await post('/v1/triggers', {
      name: 'meetings',
      eventType: '*',
      match: { kind: ['meeting_request'], minConfidence: 0.6 },
      goal: { kind: 'note', title: 'Meeting request: {{payload.subject}} ({{classification.reason}})' },
    });
    expect(trigger.status).toBe(201);
    standin.scriptChat(JSON.stringify({ kind: 'meeting_request', confidence: 0.9, reason: 'Asks for a call.' }));
    // No keyword of any kind: the rules would say `other`.
    const res = await post('/v1/events', {
      source: 'gmail',
      type: 'email.received',
      externalId: `model-${uniq()}`,
      payload: {
        from: 'grace@navy.example',
        subject: 'Tuesday?',
        text: 'Would Tuesday at 3 suit you to talk things over?',
      },
    });
    expect(res.status).toBe(201);
    expect(res.body.classification).toEqual({
      kind: 'meeting_request',
      confidence: 0.9,
      reason: 'Asks for a call.',
      generatedBy: `model:${defaultConfig().KEEL_MODEL_SMALL}`,
    });
    expect(res.body.goals).toHaveLength(1);
    const [req] = standin.chatRequests();
    expect(req.body.model).toBe(defaultConfig().KEEL_MODEL_SMALL);
    expect(req.body.response_format.json_schema.name).toBe('keel_classification');
    expect(String(req.body.messages.at(-1).content)).toMatch(/<untrusted>[\s\S]*Tuesday at 3[\s\S]*<\/untrusted>/);
    const goal = await approveRecordAndFinish(res.body.goals[0].goalId);
    expect(goal.title).toBe('Meeting request: Tuesday? (Asks for a call.)');
    expect((await engine.http('DELETE', `/v1/triggers/${trigger.body.id}`)).status).toBe(200);
  });

  test('when the model fails, the rules classify the event and the stored classification says why', async () => {
    standin.failNext(500, 1);
    const res = await post('/v1/events', { ...invoiceEmail(`fail-${uniq()}`) });
    expect(res.status).toBe(201);
    expect(res.body.classification).toMatchObject({
      kind: 'invoice_question',
      generatedBy: expect.stringContaining(OFFLINE_LABEL),
    });
    const stored = await engine.db.prisma.inboundEvent.findUniqueOrThrow({ where: { id: res.body.id } });
    expect(stored.classification).toMatchObject({ modelFailure: expect.stringMatching(/^ModelServerError: /) });
  });
});
