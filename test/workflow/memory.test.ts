/**
 * Memory through the whole engine: inbound email → contact + memory; a goal
 * reads its working set and records which memories it used; approval feeds
 * back into them; the goal's episode is remembered; compaction runs as a
 * workflow on a Temporal Schedule and keeps the hot set bounded.
 */
import { compactMemoryWorkflow, COMPACTION_SCHEDULE_ID } from '../../workflows/compaction';
import { ensureCompactionSchedule } from '../../workers/worker';
import { startEngine, type TestEngine } from '../helpers/engine';

let engine: TestEngine;

beforeAll(async () => {
  engine = await startEngine();
  await engine.startWorker();
});
afterAll(async () => {
  await engine?.close();
});

test('a goal uses what an inbound email taught Keel, and approval feeds back into those memories', async () => {
  const inbound = await engine.http('POST', '/v1/events', {
    source: 'email',
    type: 'email.received',
    externalId: '<m-1@acme.example>',
    payload: {
      from: 'Ada Lovelace <ada@acme.example>',
      subject: 'Referral',
      text: 'I referred Initech to you; they need bookkeeping help.',
    },
  });
  expect(inbound.status).toBe(201);
  const subject = await engine.http('GET', `/v1/memory/subjects/${encodeURIComponent('contact:ada@acme.example')}`);
  expect(subject.body.contact).toMatchObject({ email: 'ada@acme.example', name: 'Ada Lovelace' });
  expect(subject.body.memories).toHaveLength(1);
  const inboundMemoryId = subject.body.memories[0].id;
  // The same event again is stored once, and remembered once.
  await engine.http('POST', '/v1/events', {
    source: 'email',
    type: 'email.received',
    externalId: '<m-1@acme.example>',
    payload: {},
  });
  expect(
    (await engine.http('GET', `/v1/memory/subjects/${encodeURIComponent('contact:ada@acme.example')}`)).body.memories,
  ).toHaveLength(1);

  const { body } = await engine.http('POST', '/v1/goals', {
    title: 'Email ada@acme.example a thank-you note for the Initech referral',
  });
  const waiting = await engine.waitForGoal(body.goalId, (g) => g.status === 'awaiting_approval');
  const explain = (await engine.http('GET', `/v1/goals/${body.goalId}/explain`)).body;
  const recall = explain.actions.find((a: any) => a.stepId === 'recall');
  expect(recall.memoryUsed[0]).toMatch(/^contact:/);
  expect(recall.memoryUsed).toContain(inboundMemoryId);
  expect(recall.output.tokens).toBeGreaterThan(0);
  expect(recall.output.tokens).toBeLessThanOrEqual(1500);

  await engine.http('POST', `/v1/approvals/${waiting.approvals[0].approvalId}/decision`, {
    decision: 'approve',
    edits: { body: 'Thank you, Ada! Initech is in good hands.' },
  });
  await engine.waitForGoal(body.goalId, (g) => g.status === 'completed');
  const fed = await engine.db.prisma.memoryItem.findUniqueOrThrow({ where: { id: inboundMemoryId } });
  expect(fed.feedback).toBeGreaterThan(0);

  // The goal's own episode is remembered about Ada, marked as edited by the operator.
  // And the operator's edited text, as a human-written artifact memory.
  await waitFor(async () => (await engine.db.prisma.memoryItem.count({ where: { goalId: body.goalId } })) === 2);
  const edited = await engine.db.prisma.memoryItem.findFirstOrThrow({
    where: { goalId: body.goalId, kind: 'artifact' },
  });
  expect(edited).toMatchObject({ source: 'human', humanEdited: true, subject: 'contact:ada@acme.example' });
  expect(edited.text).toContain('Initech is in good hands');
  const episode = await engine.db.prisma.memoryItem.findFirstOrThrow({
    where: { goalId: body.goalId, kind: 'episodic' },
  });
  expect(episode).toMatchObject({ kind: 'episodic', subject: 'contact:ada@acme.example', humanEdited: true });
  expect(episode.text).toContain('Thank you, Ada!');
  const events = (await engine.http('GET', `/v1/goals/${body.goalId}/events`)).body.events.map((e: any) => e.type);
  expect(events).toEqual(expect.arrayContaining(['memory.feedback', 'memory.remembered']));
});

test('POST /v1/memory validates, and search shows scores and what decay buried', async () => {
  const bad = await engine.http('POST', '/v1/memory', { text: '', importance: 3 });
  expect(bad.status).toBe(400);
  expect(bad.body.error.message).toMatch(/text/);
  expect(bad.body.error.message).toMatch(/importance/);
  expect((await engine.http('POST', '/v1/memory', { text: 'x', attribute: 'channel' })).status).toBe(400);

  const old = await engine.http('POST', '/v1/memory', {
    text: 'Bob likes the weekly digest format',
    kind: 'episodic',
    subject: 'contact:bob@x.example',
    occurredAt: '2020-01-01T00:00:00Z',
  });
  expect(old.status).toBe(201);
  await engine.http('POST', '/v1/memory', {
    text: 'Bob likes the weekly digest format a lot',
    kind: 'episodic',
    subject: 'contact:bob@x.example',
  });
  const res = await engine.http(
    'GET',
    `/v1/memory/search?q=${encodeURIComponent('Bob weekly digest format')}&k=1&subject=${encodeURIComponent('contact:bob@x.example')}`,
  );
  expect(res.status).toBe(200);
  expect(res.body.results).toHaveLength(1);
  expect(res.body.results[0]).toMatchObject({
    text: 'Bob likes the weekly digest format a lot',
    kind: 'episodic',
    source: 'human',
  });
  expect(res.body.results[0].score).toBeGreaterThan(res.body.results[0].similarity);
  expect(res.body.buried[0]).toMatchObject({ id: old.body.id });
  expect(res.body.buried[0].reason).toMatch(/recency decay/);
  expect(res.body.lexical).toBe(true);
  expect((await engine.http('GET', '/v1/memory/search?k=0&q=x')).status).toBe(400);
  expect((await engine.http('GET', '/v1/memory/search?q=x&kind=gossip')).body.error.message).toMatch(/kind/);
});

test('compaction on its Temporal Schedule summarizes old episodes per subject and archives them', async () => {
  const longAgo = new Date(Date.now() - 90 * 24 * 60 * 60 * 1000);
  for (const who of ['carol', 'dave']) {
    for (let i = 0; i < 6; i++) {
      await engine.memory.remember({
        text: `Call ${i} with ${who} about the retainer. Went fine.`,
        kind: 'episodic',
        subject: `contact:${who}@y.example`,
        source: 'agent',
        occurredAt: new Date(longAgo.getTime() + i * 60_000),
      });
    }
  }
  await engine.memory.remember({
    text: 'Recent call with carol about the retainer.',
    kind: 'episodic',
    subject: 'contact:carol@y.example',
    source: 'agent',
  });
  const before = await engine.memory.stats();

  const args = { olderThanDays: 30, minItems: 5 };
  expect(
    await ensureCompactionSchedule(engine.temporal.client, { taskQueue: engine.taskQueue, interval: '1h', args }),
  ).toBe('created');
  expect(
    await ensureCompactionSchedule(engine.temporal.client, { taskQueue: engine.taskQueue, interval: '1h', args }),
  ).toBe('exists');
  const schedule = engine.temporal.client.schedule.getHandle(COMPACTION_SCHEDULE_ID);
  await schedule.trigger();
  await waitFor(async () => (await schedule.describe()).info.recentActions.length > 0);
  const run = (await schedule.describe()).info.recentActions[0].action;
  const result = await engine.temporal.client.workflow
    .getHandle<typeof compactMemoryWorkflow>(run.workflow.workflowId)
    .result();
  expect(result.subjects).toBe(2);
  expect(result.archived).toBe(12);

  const after = await engine.memory.stats();
  expect(after.hot).toBe(before.hot - 12 + 2);
  expect(after.archived).toBe(before.archived + 12);
  const carol = await engine.http('GET', `/v1/memory/subjects/${encodeURIComponent('contact:carol@y.example')}`);
  const tiers = carol.body.memories.map((m: any) => `${m.kind}/${m.tier}`).sort();
  expect(tiers).toEqual([...Array(6).fill('episodic/archive'), 'episodic/hot', 'summary/hot'].sort());
  const summary = carol.body.memories.find((m: any) => m.kind === 'summary');
  expect(summary.text).toMatch(/^Summary of 6 earlier episodes about contact:carol@y.example/);
  const hits = await engine.http('GET', `/v1/memory/search?q=${encodeURIComponent('call with carol retainer')}&k=10`);
  expect(hits.body.results.every((r: any) => r.kind !== 'episodic' || !r.text.startsWith('Call '))).toBe(true);

  // Running it again finds nothing left to compact: the hot set stays bounded.
  const again = await engine.temporal.client.workflow.execute(compactMemoryWorkflow, {
    taskQueue: engine.taskQueue,
    workflowId: `compact-again-${Date.now()}`,
    args: [args],
  });
  expect(again).toEqual({ subjects: 0, archived: 0, summaryIds: [] });
  await schedule.delete();
});

async function waitFor(check: () => Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error('condition not met in time');
}
