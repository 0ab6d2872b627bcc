/**
 * Event-sourced state: after a realistic mixed workload through the engine,
 * the projections rebuilt from the event log alone match the live tables;
 * a change made behind the log's back is reported.
 */
import { rebuildAndCompare } from '../../state/rebuild';
import { startEngine, type TestEngine } from '../helpers/engine';

let engine: TestEngine;

beforeAll(async () => {
  engine = await startEngine();
  await engine.startWorker();
});
afterAll(async () => {
  await engine?.close();
});

async function firstApproval(goalId: string) {
  return (await engine.waitForGoal(goalId, (g) => g.status === 'awaiting_approval')).approvals[0].approvalId as string;
}

test('projections rebuilt from the events match the live tables after a mixed workload', async () => {
  const post = async (body: object) => (await engine.http('POST', '/v1/goals', body)).body.goalId as string;
  const inbound = (externalId: string, from: string, subject: string) =>
    engine.http('POST', '/v1/events', {
      source: 'email',
      type: 'email.received',
      externalId,
      payload: { from, subject, text: `${subject}. Thanks.` },
    });

  expect((await inbound('m1', 'ada@acme.example', 'Invoice question')).status).toBe(201);
  expect((await inbound('m1', 'ada@acme.example', 'Invoice question')).status).toBe(200);
  expect((await inbound('m2', 'Ada Lovelace <ada@acme.example>', 'Follow-up')).status).toBe(201);
  expect((await inbound('m3', 'Grace <grace@gmail.com>', 'Hello')).status).toBe(201);

  const note = await post({
    title: 'Summarize the Acme thread',
    kind: 'note',
    input: { text: 'Acme asked about the invoice. We answered.' },
  });
  const edited = await post({ title: 'Email ada@acme.example a thank-you note', requestId: 'r-edited' });
  const rejected = await post({ title: 'Email grace@gmail.com about the delay' });
  const cancelled = await post({ title: 'Email bob@example.com the newsletter' });
  const overBudget = await post({ title: 'Email cy@example.com a hello', budgetUsd: 0.001 });

  await engine.http('POST', `/v1/approvals/${await firstApproval(edited)}/decision`, {
    decision: 'approve',
    edits: { subject: 'Thank you!', body: 'Thank you, Ada.' },
  });
  // Rejected with a comment: the goal replans once (plan.replanned), then a plain rejection ends it.
  const firstRejected = await firstApproval(rejected);
  await engine.http('POST', `/v1/approvals/${firstRejected}/decision`, { decision: 'reject', comment: 'not now' });
  const redraft = await engine.waitForGoal(
    rejected,
    (g) => g.plan.version === 2 && g.approvals.some((a: any) => a.status === 'pending'),
  );
  await engine.http(
    'POST',
    `/v1/approvals/${redraft.approvals.find((a: any) => a.status === 'pending').approvalId}/decision`,
    { decision: 'reject' },
  );
  await firstApproval(cancelled);
  await engine.http('POST', `/v1/goals/${cancelled}/cancel`, { reason: 'later' });
  await engine.waitForGoal(note, (g) => g.status === 'completed');
  await engine.waitForGoal(edited, (g) => g.status === 'completed');
  await engine.waitForGoal(rejected, (g) => g.status === 'failed');
  await engine.waitForGoal(cancelled, (g) => g.status === 'cancelled');
  await engine.waitForGoal(overBudget, (g) => g.status === 'failed');

  const contacts = await engine.db.prisma.contact.findMany({ orderBy: { email: 'asc' } });
  expect(contacts.map((c) => [c.email, c.name])).toEqual([
    ['ada@acme.example', 'Ada Lovelace'],
    ['grace@gmail.com', 'Grace'],
  ]);
  expect(contacts[0].organizationId).not.toBeNull();
  expect(contacts[1].organizationId).toBeNull();
  const versions = await engine.db.prisma.artifact.findMany({
    where: { goalId: edited, kind: 'draft' },
    orderBy: { version: 'asc' },
  });
  expect(versions.map((v) => [v.version, v.humanEdited, v.lineageId])).toEqual([
    [1, false, versions[0].id],
    [2, true, versions[0].id],
  ]);

  const report = await rebuildAndCompare(engine.db.url);
  expect(report.differences).toEqual([]);
  expect(report.rows).toEqual({
    goals: 5,
    organizations: 1,
    contacts: 2,
    artifacts: await engine.db.prisma.artifact.count(),
  });
});

test('a change made behind the log is reported with the column and both values', async () => {
  const goal = await engine.db.prisma.goal.findFirstOrThrow({ where: { status: 'completed' } });
  await engine.db.prisma.goal.update({ where: { id: goal.id }, data: { status: 'failed' } });
  await engine.db.prisma.contact.update({ where: { email: 'grace@gmail.com' }, data: { name: 'Mallory' } });
  const report = await rebuildAndCompare(engine.db.url);
  expect(report.differences).toEqual(
    expect.arrayContaining([
      { table: 'goals', id: goal.id, kind: 'different', column: 'status', live: 'failed', rebuilt: 'completed' },
      expect.objectContaining({
        table: 'contacts',
        kind: 'different',
        column: 'name',
        live: 'Mallory',
        rebuilt: 'Grace',
      }),
    ]),
  );
  expect(report.differences).toHaveLength(2);
});
