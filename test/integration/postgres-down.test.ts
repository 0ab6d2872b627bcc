/**
 * PostgreSQL going away under a running engine: a private cluster (never the
 * machine's shared server) is stopped while goals exist. The API answers 503
 * naming PostgreSQL (not 500), /healthz says which part is down, and once the
 * cluster is back a retried start with the same requestId makes exactly one
 * goal, which finishes; nothing acknowledged before the outage is lost.
 */
import { startEngine, type TestEngine } from '../helpers/engine';
import { startPgCluster, type PgCluster } from '../helpers/pg-cluster';

let cluster: PgCluster;
let engine: TestEngine;

beforeAll(async () => {
  cluster = await startPgCluster();
  engine = await startEngine({ database: { serverUrl: cluster.serverUrl } });
  await engine.startWorker();
});
afterAll(async () => {
  if (cluster && !cluster.running) cluster.start();
  await engine?.close();
  cluster?.close();
});

test.each(['fast', 'immediate'] as const)(
  'stopped (%s): reads and writes answer 503 naming PostgreSQL, and the API recovers without losing anything',
  async (mode) => {
    const before = await engine.http('POST', '/v1/goals', {
      title: `Summarize the notes from the ${mode} planning call`,
      kind: 'note',
      requestId: `before-${mode}`,
    });
    expect(before.status).toBe(202);
    await engine.waitForGoal(before.body.goalId, (g) => g.status === 'completed');

    cluster.stop(mode);
    try {
      const list = await engine.http('GET', '/v1/goals');
      expect(list.status).toBe(503);
      expect(list.body.error.code).toBe('unavailable');
      expect(list.body.error.message).toMatch(/^PostgreSQL is unavailable \(.+\); retry shortly$/);

      const start = await engine.http('POST', '/v1/goals', {
        title: `Summarize the notes from the ${mode} retro`,
        kind: 'note',
        requestId: `during-${mode}`,
      });
      expect(start.status).toBe(503);
      expect(start.body.error.message).toContain('PostgreSQL is unavailable');

      const health = await engine.http('GET', '/healthz');
      expect(health.status).toBe(503);
      expect(health.body.postgres).toMatch(/^down: /);
      expect(health.body.temporal).toBe('up');
    } finally {
      cluster.start();
    }

    // The client retries with the same requestId: one goal, which runs to the end.
    let retried: { status: number; body: any } | undefined;
    for (let i = 0; i < 20; i++) {
      retried = await engine.http('POST', '/v1/goals', {
        title: `Summarize the notes from the ${mode} retro`,
        kind: 'note',
        requestId: `during-${mode}`,
      });
      if (retried.status !== 503) break;
      await new Promise((r) => setTimeout(r, 500));
    }
    expect(retried!.status).toBe(202);
    const again = await engine.http('POST', '/v1/goals', {
      title: `Summarize the notes from the ${mode} retro`,
      kind: 'note',
      requestId: `during-${mode}`,
    });
    expect(again.body.goalId).toBe(retried!.body.goalId);
    await engine.waitForGoal(retried!.body.goalId, (g) => g.status === 'completed');
    const kept = await engine.http('GET', `/v1/goals/${before.body.goalId}`);
    expect(kept.body.status).toBe('completed');
    expect(await engine.db.prisma.goal.count({ where: { requestId: `during-${mode}` } })).toBe(1);
  },
  180_000,
);
