/**
 * The step activities (tools/activities.ts) run one at a time in Temporal's
 * MockActivityEnvironment, over real parts: a scratch PostgreSQL database,
 * the default memory stack and an in-process SMTP server. Goals and their
 * plans are stored through the state layer, as the workflow would store them.
 */
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ApplicationFailure, CancelledFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { DefaultLogger } from '@temporalio/worker';
import { loadConfig } from '../../config';
import type { EmailConnector } from '../../connectors/email';
import type { FaultHooks } from '../../lib/faults';
import type { MemoryService } from '../../memory/service';
import { planOffline } from '../../planner/offline';
import type { StepActivityInput } from '../../shared/activity-io';
import type { StepOutput } from '../../shared/plan';
import { codePointLength, ELLIPSIS } from '../../shared/text';
import { createGoalStateActivities } from '../../state/goals';
import { createGoal } from '../../state/intake';
import { createToolActivities } from '../../tools/activities';
import { stableId } from '../../tools/runtime';
import { emailDraft, emailSend, memoryRecall, outcomeRecord, textSummarize } from '../../tools/registry';
import { requiresApproval } from '../../policy';
import { createTestDatabase, type TestDatabase } from '../helpers/db';
import { createTestEmail, createTestMemory } from '../helpers/engine';
import { startSmtpServer, type TestSmtpServer } from '../helpers/smtp';

type ToolActivities = ReturnType<typeof createToolActivities>;

const OPERATOR = 'Test Operator';
const OUTBOX = path.join(tmpdir(), 'keel-tool-activities-outbox');

let db: TestDatabase;
let memory: MemoryService;
let smtp: TestSmtpServer;
let email: EmailConnector;
let acts: ToolActivities;
const cleanups: (() => Promise<unknown>)[] = [];

/** An email connector over `smtpUrl`, closed after the file. */
function connector(smtpUrl: string, opts: { faults?: FaultHooks; progressIntervalMs?: number } = {}) {
  const c = createTestEmail(db.prisma, smtpUrl, { outboxDir: OUTBOX, ...opts });
  cleanups.push(() => c.close());
  return c;
}
/** The step activities over this file's database and memory, sending with `mail`. */
function activitiesWith(mail: EmailConnector): ToolActivities {
  return createToolActivities({
    prisma: db.prisma,
    email: mail,
    memory,
    workingSetTokens: loadConfig({}).KEEL_WORKING_SET_TOKENS,
    operatorName: OPERATOR,
  });
}

beforeAll(async () => {
  [db, smtp] = await Promise.all([createTestDatabase(), startSmtpServer()]);
  memory = createTestMemory(db.prisma);
  email = connector(smtp.url);
  acts = activitiesWith(email);
});

afterAll(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => undefined);
  await memory?.store.close();
  await smtp?.close();
  await db?.drop();
});

/** Runs an activity as attempt `attempt` of workflow `workflowId`; returns the environment's heartbeats too. */
async function run<R>(
  fn: (input: StepActivityInput) => Promise<R>,
  input: StepActivityInput,
  attempt = 1,
): Promise<{ result: R; heartbeats: number }> {
  const env = mockEnv(input.workflowId, attempt);
  let heartbeats = 0;
  env.on('heartbeat', () => heartbeats++);
  const result = await runIn(env, fn, input);
  return { result, heartbeats };
}

/** `env.run` with the activity's result type kept (its own generics cannot infer it). */
function runIn<R>(
  env: MockActivityEnvironment,
  fn: (input: StepActivityInput) => Promise<R>,
  input: StepActivityInput,
) {
  return env.run<[StepActivityInput], R, typeof fn>(fn, input);
}

function mockEnv(workflowId: string, attempt = 1) {
  return new MockActivityEnvironment(
    { attempt, workflowExecution: { workflowId, runId: '00000000-0000-4000-8000-000000000001' } },
    { logger: new DefaultLogger('WARN') },
  );
}

/**
 * A goal with its offline plan stored (steps pending), as the workflow leaves
 * it before running the first step; `input(stepId, inputs)` makes the
 * activity input for one of its steps.
 */
async function plannedGoal(title: string, opts: { kind?: string; input?: Record<string, unknown> } = {}) {
  const kind = opts.kind ?? 'general';
  const goalInput = opts.input ?? {};
  const { goal } = await createGoal(db.prisma, { title, kind, input: goalInput }, 'operator:test');
  const plan = planOffline({ goalId: goal.id, title, kind, input: goalInput, planVersion: 1, feedback: [] });
  await createGoalStateActivities(db.prisma).startPlan({
    goalId: goal.id,
    planVersion: 1,
    plan,
    steps: plan.steps.map((s) => ({ ...s, requiresApproval: requiresApproval(s) })),
    planChurn: 0,
  });
  const toolOf = (stepId: string) => plan.steps.find((s) => s.id === stepId)!.tool;
  return {
    goalId: goal.id,
    workflowId: goal.workflowId,
    input: (stepId: string, inputs: Record<string, unknown>, workflowId = goal.workflowId): StepActivityInput => ({
      goalId: goal.id,
      workflowId,
      planVersion: 1,
      stepId,
      tool: toolOf(stepId),
      inputs,
    }),
  };
}

const eventsOf = (goalId: string, type: string) =>
  db.prisma.event.findMany({ where: { goalId, type }, orderBy: { seq: 'asc' } });
const stepRow = (goalId: string, stepId: string) =>
  db.prisma.step.findUniqueOrThrow({ where: { goalId_planVersion_stepId: { goalId, planVersion: 1, stepId } } });
const artifact = (id: string) => db.prisma.artifact.findUniqueOrThrow({ where: { id } });

/** True when `s` has no unpaired surrogate: what PostgreSQL's jsonb accepts. */
const wellFormed = (s: string) => !/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/.test(s);

/** Recalls, then drafts from what was recalled: the first two steps of an email goal. */
async function recallAndDraft(g: Awaited<ReturnType<typeof plannedGoal>>, to: string, purpose: string) {
  const recall = await run(acts.recallContext, g.input('recall', { query: purpose, subject: to }));
  const draft = await run(acts.draftEmail, g.input('draft', { to, purpose, context: recall.result.output }));
  return { recall: recall.result, draft: draft.result };
}

describe('invalid inputs', () => {
  test.each<[keyof ToolActivities, string, Record<string, unknown>, string]>([
    ['recallContext', 'recall', { query: '' }, 'query'],
    ['recallContext', 'recall', { query: 'x', tokenBudget: -1 }, 'tokenBudget'],
    ['draftEmail', 'draft', { to: 'ada@example.com' }, 'purpose'],
    [
      'draftEmail',
      'draft',
      { to: 'ada@example.com', purpose: 'hi', context: { ref: 'r', items: -2, tokens: 0 } },
      'context.items',
    ],
    ['sendEmail', 'send', { to: 'ada@example.com', draft: { preview: 'no ref' } }, 'draft.ref'],
    ['sendEmail', 'send', { draft: { ref: 'a' } }, 'to'],
    ['recordOutcome', 'record', {}, 'summary'],
  ])(
    '%s on the %s step with %j fails as non-retryable InvalidInput naming %s, before any record',
    async (name, stepId, inputs, field) => {
      const g = await plannedGoal('Email ada@example.com about the invoice');
      const err = await run(acts[name] as (i: StepActivityInput) => Promise<unknown>, g.input(stepId, inputs)).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(ApplicationFailure);
      const failure = err as ApplicationFailure;
      expect(failure.type).toBe('InvalidInput');
      expect(failure.nonRetryable).toBe(true);
      expect(failure.message).toContain(`${field}:`);
      expect(await eventsOf(g.goalId, 'step.started')).toHaveLength(0);
      expect(await stepRow(g.goalId, stepId)).toMatchObject({ status: 'pending', startedAt: null, output: null });
      expect(await db.prisma.artifact.count({ where: { goalId: g.goalId } })).toBe(0);
    },
  );

  test('summarizeText with a number as the source is InvalidInput naming "source"', async () => {
    const g = await plannedGoal('Summarize the week', { kind: 'note', input: { text: 'Acme paid.' } });
    await expect(run(acts.summarizeText, g.input('summarize', { source: 5 }))).rejects.toMatchObject({
      type: 'InvalidInput',
      nonRetryable: true,
      message: expect.stringContaining('source:'),
    });
    expect(await eventsOf(g.goalId, 'step.started')).toHaveLength(0);
  });
});

describe('recall and draft', () => {
  // Runs first: nothing is on record yet in this file's database.
  test('with nothing on record, recall finds 0 items and the draft has no context section', async () => {
    const g = await plannedGoal('Email zed@example.com about the offsite');
    const { recall, draft } = await recallAndDraft(g, 'zed@example.com', 'the offsite agenda');
    expect(memoryRecall.output.safeParse(recall.output).success).toBe(true);
    expect(recall.output).toMatchObject({ items: 0, subject: 'contact:zed@example.com' });
    expect(recall.memoryIds).toEqual([]);

    expect(emailDraft.output.safeParse(draft.output).success).toBe(true);
    const body = (await artifact(draft.output.ref!)).content;
    expect(body).toContain('Hi Zed,');
    // The purpose becomes the sentence, its leading article dropped.
    expect(body).toContain('\nOffsite agenda.\n');
    expect(body).toContain(OPERATOR);
    expect(body).not.toMatch(/on record/i);
    expect(body).not.toContain('For reference');
  });

  test('with a memory on record about the recipient, the draft includes it', async () => {
    const fact = 'Ada prefers invoices as PDF attachments, sent on Mondays.';
    await memory.remember({ text: fact, kind: 'semantic', subject: 'contact:ada@example.com', source: 'human' });
    const g = await plannedGoal('Email ada@example.com about the invoice');
    const { recall, draft } = await recallAndDraft(g, 'ada@example.com', 'the invoice for March');
    expect(recall.output.items).toBeGreaterThan(0);
    expect((await artifact(recall.output.ref!)).content).toContain(fact);
    expect(recall.memoryIds?.length).toBeGreaterThan(0);

    const body = (await artifact(draft.output.ref!)).content;
    expect(body).toContain('For reference, what we have on record:');
    expect(body).toContain(fact);
    // The step record keeps which memories the step used.
    expect((await stepRow(g.goalId, 'recall')).memoryIds).toEqual(recall.memoryIds);
  });

  test.each([
    ['emoji only', '🎉'.repeat(120)],
    ['one letter then emoji', `a${'😀'.repeat(120)}`],
    ['joined emoji sequences', '👩\u200d💻'.repeat(60)],
  ])('the subject line is cut by code points (%s), never leaving a lone surrogate', async (_label, purpose) => {
    const g = await plannedGoal('Email ada@example.com a celebration');
    const { draft } = await recallAndDraft(g, 'ada@example.com', purpose);
    const subject = draft.output.subject as string;
    expect(wellFormed(subject)).toBe(true);
    expect(codePointLength(subject)).toBeLessThanOrEqual(78);
    expect(subject.endsWith(ELLIPSIS)).toBe(true);
    const stored = await artifact(draft.output.ref!);
    expect(stored.title).toBe(subject);
    expect((stored.metadata as Record<string, unknown>).subject).toBe(subject);
    expect(wellFormed(stored.content)).toBe(true);
    expect((await stepRow(g.goalId, 'draft')).status).toBe('completed');
  });
});

describe('send', () => {
  test('emails exactly once for the same workflow and step: a second run returns the recorded result', async () => {
    const g = await plannedGoal('Email ada@example.com about the receipt');
    const { draft } = await recallAndDraft(g, 'ada@example.com', 'the receipt');
    const sendInput = g.input('send', { to: 'ada@example.com', draft: draft.output });
    const before = smtp.messages.length;

    const first = await run(acts.sendEmail, sendInput, 1);
    const second = await run(acts.sendEmail, sendInput, 2);

    expect(emailSend.output.safeParse(first.result.output).success).toBe(true);
    expect(first.result.output).toMatchObject({ delivery: 'sent', transport: 'smtp', to: 'ada@example.com' });
    expect(second.result.output).toMatchObject({ delivery: 'already-sent', messageId: first.result.output.messageId });
    expect(second.result.output.subject).toBe(first.result.output.subject);

    const sent = smtp.messages.slice(before);
    expect(sent).toHaveLength(1);
    expect(sent[0].messageId).toBe(first.result.output.messageId);
    expect(sent[0].to).toEqual(['ada@example.com']);
    expect(sent[0].subject).toBe(draft.output.subject);
    expect(sent[0].raw).toContain('Receipt.');
    const effects = await db.prisma.sideEffect.findMany({ where: { goalId: g.goalId } });
    expect(effects).toHaveLength(1);
    expect(effects[0]).toMatchObject({ status: 'committed', attempts: 2 });
  });

  test('a different workflow sending the same draft is a different email', async () => {
    const g = await plannedGoal('Email ada@example.com about the quote');
    const { draft } = await recallAndDraft(g, 'ada@example.com', 'the quote');
    const before = smtp.messages.length;
    const a = await run(acts.sendEmail, g.input('send', { to: 'ada@example.com', draft: draft.output }));
    const b = await run(acts.sendEmail, g.input('send', { to: 'ada@example.com', draft: draft.output }, 'other-run'));
    expect(b.result.output.messageId).not.toBe(a.result.output.messageId);
    expect(smtp.messages.length - before).toBe(2);
  });

  test('heartbeats while the SMTP server takes its time, and stops when done', async () => {
    const slow = await startSmtpServer({ delayAcceptMs: 1_500 });
    cleanups.push(() => slow.close());
    const slowActs = activitiesWith(connector(slow.url, { progressIntervalMs: 100 }));
    const g = await plannedGoal('Email ada@example.com about the contract');
    const { draft } = await recallAndDraft(g, 'ada@example.com', 'the contract');

    const env = mockEnv(g.workflowId);
    let heartbeats = 0;
    env.on('heartbeat', () => heartbeats++);
    const result = await runIn(
      env,
      slowActs.sendEmail,
      g.input('send', { to: 'ada@example.com', draft: draft.output }),
    );
    expect(result.output.delivery).toBe('sent');
    expect(slow.messages).toHaveLength(1);
    // 1.5 s of waiting at a 100 ms progress interval: many beats, not just the one at the start.
    expect(heartbeats).toBeGreaterThanOrEqual(5);
    const after = heartbeats;
    await new Promise((r) => setTimeout(r, 1_300));
    expect(heartbeats).toBe(after);
  });

  test('cancellation through the environment stops a send that has not reached SMTP', async () => {
    let reached!: () => void;
    const atFault = new Promise<void>((r) => (reached = r));
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    cleanups.push(async () => release());
    const faults: FaultHooks = {
      hit: () => {
        reached();
        return held;
      },
    };
    const stalled = activitiesWith(connector(smtp.url, { faults }));
    const g = await plannedGoal('Email ada@example.com about the renewal');
    const { draft } = await recallAndDraft(g, 'ada@example.com', 'the renewal');
    const before = smtp.messages.length;

    const env = mockEnv(g.workflowId);
    const sending = runIn(env, stalled.sendEmail, g.input('send', { to: 'ada@example.com', draft: draft.output }));
    await atFault;
    env.cancel();
    await expect(sending).rejects.toBeInstanceOf(CancelledFailure);
    release();
    await new Promise((r) => setTimeout(r, 200));

    expect(smtp.messages.length).toBe(before);
    const effect = await db.prisma.sideEffect.findFirstOrThrow({ where: { goalId: g.goalId, stepId: 'send' } });
    expect(effect.status).toBe('intent');
    expect(
      await eventsOf(g.goalId, 'step.completed').then((es) => es.map((e) => (e.data as any).stepId)),
    ).not.toContain('send');
    expect((await stepRow(g.goalId, 'send')).status).toBe('running');
  });
});

describe('summarize and record', () => {
  test('write artifacts whose ids derive from workflow id + step id; a retry writes no second artifact', async () => {
    const g = await plannedGoal('Summarize the week', {
      kind: 'note',
      input: { text: 'Invoices went out. Acme paid. Bob is on leave. Nothing else.' },
    });
    const source = 'Invoices went out. Acme paid. Bob is on leave. Nothing else.';
    const sum1 = await run(acts.summarizeText, g.input('summarize', { source }), 1);
    const sum2 = await run(acts.summarizeText, g.input('summarize', { source }), 2);
    expect(textSummarize.output.safeParse(sum1.result.output).success).toBe(true);
    expect(sum1.result.output.ref).toBe(stableId('sum', g.workflowId, 1, 'summarize'));
    expect(sum2.result.output.ref).toBe(sum1.result.output.ref);
    const summary = await artifact(sum1.result.output.ref!);
    expect(summary).toMatchObject({ kind: 'summary', goalId: g.goalId, stepId: 'summarize' });
    // The gist is the first three sentences.
    expect(summary.content.replace(/\s+/g, ' ')).toContain('Invoices went out. Acme paid. Bob is on leave.');
    expect(summary.content).not.toContain('Nothing else');

    const rec1 = await run(acts.recordOutcome, g.input('record', { summary: sum1.result.output }), 1);
    const rec2 = await run(acts.recordOutcome, g.input('record', { summary: sum1.result.output }), 2);
    expect(outcomeRecord.output.safeParse(rec1.result.output).success).toBe(true);
    expect(rec1.result.output.ref).toBe(stableId('out', g.workflowId, 1, 'record'));
    expect(rec2.result.output.ref).toBe(rec1.result.output.ref);
    expect(await artifact(rec1.result.output.ref!)).toMatchObject({ kind: 'outcome', subject: `goal:${g.goalId}` });

    const artifacts = await db.prisma.artifact.findMany({ where: { goalId: g.goalId } });
    expect(artifacts.map((a) => a.kind).sort()).toEqual(['outcome', 'summary']);
    expect(await eventsOf(g.goalId, 'artifact.created')).toHaveLength(2);

    // Another run of the same goal's workflow id is another artifact.
    const other = await run(acts.summarizeText, g.input('summarize', { source }, `${g.workflowId}-again`));
    expect(other.result.output.ref).not.toBe(sum1.result.output.ref);
  });

  test('the gist joins its sentences with single spaces', async () => {
    const g = await plannedGoal('Summarize the day', { kind: 'note', input: { text: 'One. Two. Three.' } });
    const { result } = await run(acts.summarizeText, g.input('summarize', { source: 'One.   Two.\n\nThree. Four.' }));
    const gist = (await artifact(result.output.ref!)).content.split('\n')[0];
    expect(gist).toBe('One. Two. Three.');
    expect(result.output.preview).toBe('One. Two. Three.');
  });
});

describe('compensation', () => {
  async function completedNote() {
    const g = await plannedGoal('Summarize the quarter', {
      kind: 'note',
      input: { text: 'Revenue rose. Costs fell.' },
    });
    const sum = await run(acts.summarizeText, g.input('summarize', { source: 'Revenue rose. Costs fell.' }));
    const rec = await run(acts.recordOutcome, g.input('record', { summary: sum.result.output }));
    return { g, summary: sum.result.output as StepOutput, outcome: rec.result.output as StepOutput };
  }

  test.each([
    ['discardArtifact', 'summarize', 'summary', 'discarded'],
    ['voidOutcome', 'record', 'outcome', 'voided'],
  ] as const)(
    '%s on the %s step marks its %s artifact %s and the step compensated, with a step.compensated event',
    async (activity, stepId, which, status) => {
      const { g, summary, outcome } = await completedNote();
      const output = which === 'summary' ? summary : outcome;
      const reason = 'goal cancelled by the operator';
      await acts[activity]({ goalId: g.goalId, planVersion: 1, stepId, output, reason });

      expect((await artifact(output.ref!)).status).toBe(status);
      expect((await stepRow(g.goalId, stepId)).status).toBe('compensated');
      const events = await eventsOf(g.goalId, 'step.compensated');
      expect(events).toHaveLength(1);
      expect(events[0].data).toEqual({ stepId, ref: output.ref, artifactStatus: status, reason });
      expect(await eventsOf(g.goalId, 'artifact.status_changed')).toHaveLength(1);
      // The other step is untouched.
      const otherStep = stepId === 'summarize' ? 'record' : 'summarize';
      expect((await stepRow(g.goalId, otherStep)).status).toBe('completed');
    },
  );

  test('a retried compensation changes nothing more and logs no second event', async () => {
    const { g, summary } = await completedNote();
    const input = { goalId: g.goalId, planVersion: 1, stepId: 'summarize', output: summary, reason: 'rolled back' };
    await acts.discardArtifact(input);
    await acts.discardArtifact(input);
    expect((await artifact(summary.ref!)).status).toBe('discarded');
    expect(await eventsOf(g.goalId, 'artifact.status_changed')).toHaveLength(1);
    expect(await eventsOf(g.goalId, 'step.compensated')).toHaveLength(1);
  });
});

describe('step records', () => {
  test('step.started and step.completed carry the attempt number, and the row ends completed', async () => {
    const g = await plannedGoal('Summarize the month', { kind: 'note', input: { text: 'A quiet month.' } });
    const { result } = await run(acts.recallContext, g.input('recall', { query: 'month' }), 3);
    const started = await eventsOf(g.goalId, 'step.started');
    const completed = await eventsOf(g.goalId, 'step.completed');
    expect(started.map((e) => e.data)).toEqual([{ stepId: 'recall', tool: 'memory.recall', attempt: 3 }]);
    expect(completed).toHaveLength(1);
    expect(completed[0].data).toMatchObject({ stepId: 'recall', tool: 'memory.recall', attempt: 3 });
    const row = await stepRow(g.goalId, 'recall');
    expect(row.status).toBe('completed');
    expect(row.startedAt).not.toBeNull();
    expect(row.finishedAt).not.toBeNull();
    // The row keeps what the activity returned (other tests' memories may be found: the count is not the point).
    expect(row.output).toEqual(result.output);
  });

  test('each attempt of a retried step logs its own start with its number', async () => {
    const g = await plannedGoal('Summarize the year', { kind: 'note', input: { text: 'A good year.' } });
    for (const attempt of [1, 2])
      await run(acts.summarizeText, g.input('summarize', { source: 'A good year.' }), attempt);
    const started = await eventsOf(g.goalId, 'step.started');
    expect(started.map((e) => (e.data as any).attempt)).toEqual([1, 2]);
  });
});
