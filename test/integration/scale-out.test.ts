/**
 * Scale-out with real processes: three workers (`workers/main.ts`, child
 * processes) poll one task queue and share sixty goals started through the
 * API, half of them emails the test approves through the API. One worker is
 * SIGKILLed in the middle of a send; every goal still completes, every email
 * arrives exactly once at the SMTP server, and each send has one side-effect
 * row. Who ran what is read from the step.started events, which name the
 * worker's Temporal identity.
 */
import { startEngine, type ChildWorker, type TestEngine } from '../helpers/engine';

const EMAIL_GOALS = 30;
const NOTE_GOALS = 30;

let engine: TestEngine;

beforeAll(async () => {
  // A short heartbeat timeout: the killed worker's send is handed to another worker within seconds.
  engine = await startEngine({ settings: { connectorHeartbeatMs: 2_000 } });
});
afterAll(async () => {
  await engine?.close();
});

/** The identity a worker printed in its `[worker] polling … (identity pid@host)` line. */
function identityOf(worker: ChildWorker): string {
  const match = /identity ([^)\s]+)\)/.exec(worker.output());
  if (!match) throw new Error(`no identity in the worker's output:\n${worker.output()}`);
  return match[1];
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('three workers share sixty goals; one is SIGKILLed mid-send; every goal finishes and each email is sent once', async () => {
  // Transpile-only: three type-checking ts-node start-ups would cost a minute on two busy cores.
  const fast = { TS_NODE_TRANSPILE_ONLY: 'true' };
  // The doomed worker pauses any send it gets after recording the intent and before SMTP: the kill lands there.
  const [doomed, ...survivors] = await Promise.all([
    engine.spawnWorker({ ...fast, KEEL_FAULTS: 'email.send.beforeSmtp=pause:60000' }),
    engine.spawnWorker(fast),
    engine.spawnWorker(fast),
  ]);
  const identities = [doomed, ...survivors].map(identityOf);
  expect(new Set(identities).size).toBe(3);

  const addresses = Array.from({ length: EMAIL_GOALS }, (_, i) => `scale${i}@example.com`);
  const requests = [
    ...addresses.map((to) => ({ title: `Email ${to} a thank-you note for the referral` })),
    ...Array.from({ length: NOTE_GOALS }, (_, i) => ({
      title: `Summarize the week ${i}: shipped release ${i}, met ${i} customers`,
      kind: 'note',
    })),
  ];
  const goalIds: string[] = [];
  for (let i = 0; i < requests.length; i += 10) {
    const started = await Promise.all(
      requests.slice(i, i + 10).map((r, j) => engine.http('POST', '/v1/goals', { ...r, requestId: `scale-${i + j}` })),
    );
    for (const res of started) {
      expect(res.status).toBe(202);
      goalIds.push(res.body.goalId);
    }
  }

  // The operator: approves every pending send as it appears, through the API. Meanwhile the first send the
  // doomed worker takes is its last.
  const decided = new Set<string>();
  let retried503 = 0;
  let killedWith: { finished: number } | undefined;
  const unfinished = async () =>
    (await engine.db.prisma.goal.findMany({ where: { id: { in: goalIds } }, select: { id: true, status: true } }))
      .filter((g) => g.status !== 'completed')
      .map((g) => `${g.id}: ${g.status}`);
  const deadline = Date.now() + 150_000;
  for (;;) {
    if (!killedWith && doomed.output().includes('KEEL_FAULT_HIT email.send.beforeSmtp')) {
      await doomed.kill('SIGKILL');
      killedWith = { finished: goalIds.length - (await unfinished()).length };
    }
    const pending = await engine.http('GET', '/v1/approvals?status=pending');
    for (const a of pending.body.approvals as { approvalId: string }[]) {
      if (decided.has(a.approvalId)) continue;
      const res = await engine.http('POST', `/v1/approvals/${a.approvalId}/decision`, { decision: 'approve' });
      // 503: the decision did not reach the goal in KEEL_TEMPORAL_TIMEOUT_MS (a goal whose worker was just killed
      // waits for Temporal to hand it to another); the operator tries again, and the same decision is idempotent.
      if (res.status === 503) {
        retried503++;
        continue;
      }
      // 409 `already approved` / `already decided` (recorded, not yet applied): an earlier try got through after all.
      const through = res.status === 409 && /already (approved|decided)/.test(String(res.body?.error?.message));
      if (!through) expect({ status: res.status, body: res.body }).toMatchObject({ status: 200 });
      decided.add(a.approvalId);
    }
    const left = await unfinished();
    if (left.length === 0 && killedWith) break;
    if (Date.now() > deadline) {
      throw new Error(
        `${left.length} goals unfinished (${killedWith ? 'after' : 'and before'} the kill): ${left.slice(0, 5).join(', ')}`,
      );
    }
    await sleep(300);
  }

  // The kill came mid-run: goals were still going, and the killed process died by the signal.
  expect(doomed.process.signalCode).toBe('SIGKILL');
  expect(killedWith!.finished).toBeLessThan(goalIds.length);
  // Every send was approved by the operator (a decision that answered 503 may have got through before its retry).
  expect(
    await engine.db.prisma.approval.count({
      where: { goalId: { in: goalIds }, status: 'approved', actor: 'operator:test' },
    }),
  ).toBe(EMAIL_GOALS);

  // Each worker ran some of the work; the killed worker's send was run again by another worker.
  const starts = await engine.db.prisma.event.findMany({
    where: { goalId: { in: goalIds }, type: 'step.started' },
    orderBy: { seq: 'asc' },
  });
  const data = starts.map((e) => ({ goalId: e.goalId!, ...(e.data as { stepId: string; worker?: string }) }));
  const byWorker = identities.map((id) => data.filter((d) => d.worker === id));
  console.log(
    'step.started per worker:',
    identities.map((id, i) => `${i === 0 ? 'killed' : 'survivor'} ${id}: ${byWorker[i].length} steps`).join('; '),
    `(killed after ${killedWith!.finished}/${goalIds.length} goals had completed; ${retried503} decisions answered 503 and were sent again)`,
  );
  for (const ran of byWorker) expect(ran.length).toBeGreaterThan(0);
  expect(data.every((d) => d.worker !== undefined)).toBe(true);
  const interrupted = byWorker[0].filter((d) => d.stepId === 'send').map((d) => d.goalId);
  expect(interrupted.length).toBeGreaterThan(0);
  for (const goalId of interrupted) {
    const retried = data.filter((d) => d.goalId === goalId && d.stepId === 'send' && d.worker !== identities[0]);
    expect(retried.length).toBeGreaterThan(0);
  }

  // Exactly one message per email goal at the SMTP server, one committed side effect per send, none for notes.
  await engine.smtp.waitFor(EMAIL_GOALS);
  for (const to of addresses) expect(engine.smtp.messages.filter((m) => m.to.includes(to))).toHaveLength(1);
  expect(engine.smtp.messages).toHaveLength(EMAIL_GOALS);
  const effects = await engine.db.prisma.sideEffect.findMany({ where: { goalId: { in: goalIds } } });
  expect(effects).toHaveLength(EMAIL_GOALS);
  expect(new Set(effects.map((e) => e.goalId)).size).toBe(EMAIL_GOALS);
  expect(effects.every((e) => e.status === 'committed')).toBe(true);
  for (const goalId of interrupted) {
    expect(effects.find((e) => e.goalId === goalId)!.attempts).toBeGreaterThanOrEqual(2);
  }

  await Promise.all(survivors.map((w) => w.kill('SIGTERM')));
}, 240_000);
