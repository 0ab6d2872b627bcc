/**
 * Model calls on their own task queue: goals started with KEEL_MODEL_TASK_QUEUE pinned in their settings send
 * their model activities (the plan, the classification) there, where two `npm run worker` processes with
 * KEEL_WORKER_ROLE=model and KEEL_MODEL_RATE_PER_SECOND poll. The limit is Temporal's server-side
 * `maxTaskQueueActivitiesPerSecond`, so it holds across both workers: a burst of goals reaches the OpenAI
 * stand-in no faster than the configured rate, counted per window from the stand-in's request timestamps.
 */
import { startEngine, type ChildWorker, type TestEngine } from '../helpers/engine';
import { startOpenAIStandin, type OpenAIStandin } from '../helpers/openai-standin';

const MODEL_QUEUE = 'keel-test-models';
/** Model-call activities per second across the queue. */
const RATE = 2;
/** Each goal makes two model calls (its plan and one classification): 28 calls, which the limit spreads over ~14 s. */
const GOALS = 14;

let engine: TestEngine;
let standin: OpenAIStandin;

const invoiceIn = (body: unknown) => /INV-\d+/.exec(JSON.stringify(body))?.[0] ?? 'INV-?';

beforeAll(async () => {
  standin = await startOpenAIStandin({
    chat: (body) => {
      const name = (body.response_format as { json_schema?: { name?: string } } | undefined)?.json_schema?.name;
      const invoice = invoiceIn(body.messages);
      if (name === 'keel_plan')
        return JSON.stringify({
          rationale: 'One classification answers it.',
          steps: [
            {
              id: 'classify',
              tool: 'event.classify',
              title: `Classify the message about ${invoice}`,
              rationale: 'the kind of message decides what comes next',
              inputs: { text: `Hello, where is invoice ${invoice}? It is 30 days overdue.` },
              dependsOn: [],
            },
          ],
        });
      if (name === 'keel_classification')
        return JSON.stringify({ kind: 'invoice_question', confidence: 0.9, reason: `asks about ${invoice}` });
      return 'unexpected request';
    },
  });
  engine = await startEngine({ settings: { modelTaskQueue: MODEL_QUEUE } });
  // The goal worker (workflows and every other activity) on the goals' queue, without a model: it is never asked.
  await engine.startWorker();
});
afterAll(async () => {
  await engine?.close();
  await standin?.close();
});

function identityOf(worker: ChildWorker): string {
  const match = /identity ([^)\s]+)\)/.exec(worker.output());
  if (!match) throw new Error(`no identity in the worker's output:\n${worker.output()}`);
  return match[1];
}

/** The environment of an `npm run worker` for model calls on `queue`, each tier on the stand-in. */
function modelWorkerEnv(queue: string, rate?: number): Record<string, string> {
  return {
    TS_NODE_TRANSPILE_ONLY: 'true',
    KEEL_WORKER_ROLE: 'model',
    KEEL_MODEL_TASK_QUEUE: queue,
    ...(rate !== undefined ? { KEEL_MODEL_RATE_PER_SECOND: String(rate) } : {}),
    // Each tier on the stand-in (memory keeps the offline embedder, as the API's does), every call to it.
    KEEL_MODEL_SMALL_URL: standin.baseURL,
    KEEL_MODEL_SMALL_KEY: 'test-key',
    KEEL_MODEL_LARGE_URL: standin.baseURL,
    KEEL_MODEL_LARGE_KEY: 'test-key',
    KEEL_MODEL_CACHE: 'off',
  };
}

let numbered = 100;
/**
 * Starts `n` goals at once through the API at `apiUrl` (each a plan and a classification) and waits until
 * every one has completed.
 */
async function runGoals(n: number, apiUrl = engine.apiUrl): Promise<string[]> {
  const started = await Promise.all(
    Array.from({ length: n }, async () => {
      const res = await fetch(`${apiUrl}/v1/goals`, {
        method: 'POST',
        headers: { authorization: `Bearer ${engine.apiKey}`, 'content-type': 'application/json' },
        body: JSON.stringify({ title: `Find the invoice number in invoice INV-${numbered++}`, kind: 'note' }),
      });
      expect(res.status).toBe(202);
      return ((await res.json()) as { goalId: string }).goalId;
    }),
  );
  for (const goalId of started) {
    const done = await engine.waitForGoal(
      goalId,
      (g) => ['completed', 'failed', 'cancelled'].includes(g.status),
      120_000,
    );
    expect([done.status, done.error]).toEqual(['completed', undefined]);
  }
  return started;
}

const classifiedBy = async (goalIds: string[]) =>
  (await engine.db.prisma.event.findMany({ where: { goalId: { in: goalIds }, type: 'step.started' } })).map(
    (e) => e.data as { worker?: string; taskQueue?: string },
  );

/** The most requests in any window of `ms` that starts at a request. */
function busiestWindow(times: number[], ms: number): number {
  let most = 0;
  for (let i = 0, j = 0; i < times.length; i++) {
    while (j < times.length && times[j] < times[i] + ms) j++;
    most = Math.max(most, j - i);
  }
  return most;
}

test(`two model workers share the model task queue, held to ${RATE} model calls per second between them`, async () => {
  const modelEnv = modelWorkerEnv(MODEL_QUEUE, RATE);
  const modelWorkers = await Promise.all([engine.spawnWorker(modelEnv), engine.spawnWorker(modelEnv)]);
  for (const w of modelWorkers) {
    expect(w.output()).toContain(`polling task queue "${MODEL_QUEUE}" (model calls, at most ${RATE}/s`);
    expect(w.output()).not.toContain(`polling task queue "${engine.taskQueue}"`);
  }
  const identities = modelWorkers.map(identityOf);

  // Warm-up, a few goals at a time until both model workers have run one: a worker's first model call loads the
  // tokenizer and opens its connections, which would hold calls the limiter released one by one and let them
  // reach the stand-in together, measuring the worker's start-up rather than the limit.
  const warmUp: string[] = [];
  for (let round = 0; round < 6; round++) {
    warmUp.push(...(await runGoals(2)));
    const workersSoFar = new Set((await classifiedBy(warmUp)).map((r) => r.worker));
    if (identities.every((id) => workersSoFar.has(id))) break;
  }
  const burstFrom = standin.chatRequests().length;
  const goalIds = await runGoals(GOALS);

  // Every goal's model calls went to the stand-in through the model workers, and each got its own answer.
  const chats = standin.chatRequests().slice(burstFrom);
  expect(chats).toHaveLength(2 * GOALS);
  for (const goalId of goalIds) {
    const goal = await engine.db.prisma.goal.findUniqueOrThrow({ where: { id: goalId } });
    const step = await engine.db.prisma.step.findFirstOrThrow({ where: { goalId, stepId: 'classify' } });
    expect(step.output).toMatchObject({ kind: 'invoice_question', reason: `asks about ${invoiceIn(goal.title)}` });
  }
  const ran = await classifiedBy([...warmUp, ...goalIds]);
  expect(ran).toHaveLength(warmUp.length + GOALS);
  expect(ran.every((r) => r.taskQueue === MODEL_QUEUE && identities.includes(r.worker!))).toBe(true);
  const perWorker = identities.map((id) => ran.filter((r) => r.worker === id).length);
  expect(perWorker.every((n) => n > 0)).toBe(true);

  // The rate, from the stand-in's clock. Temporal's limiter is a token bucket refilled at RATE per second that
  // holds about one second's worth, so w seconds of dispatches may hold RATE * (w + 1) calls; a call reaches the
  // stand-in some time after its dispatch (the planner reads memory first, a busy machine adds more), which can
  // put up to about one more second's worth in a window of request times: at most RATE * (w + 2).
  const times = chats.map((r) => r.at).sort((a, b) => a - b);
  const windows = [1, 2, 5].map((s) => ({ seconds: s, most: busiestWindow(times, s * 1000) }));
  console.log(
    `model calls: ${times.length} in ${((times.at(-1)! - times[0]) / 1000).toFixed(1)} s at a limit of ${RATE}/s; ` +
      `classifications per model worker (with the warm-up's ${warmUp.length}) ${perWorker.join(' + ')}; busiest windows: ` +
      windows.map((w) => `${w.most} in ${w.seconds} s`).join(', '),
  );
  for (const w of windows) expect(w.most).toBeLessThanOrEqual(RATE * (w.seconds + 2));
  // The window of the whole burst, by the same rule: 28 calls take at least (28 - 2 * RATE) / RATE = 12 s.
  expect(times.at(-1)! - times[0]).toBeGreaterThanOrEqual(((times.length - 2 * RATE) / RATE) * 1000);

  await Promise.all(modelWorkers.map((w) => w.kill('SIGTERM')));
  for (const w of modelWorkers)
    expect([w.process.exitCode, w.output()]).toEqual([0, expect.stringContaining('[worker] stopped')]);
}, 240_000);

test('control: without the limit, the same burst on one model worker reaches the stand-in faster than the limit allows', async () => {
  // Another queue, pinned by a second API, polled by a worker that asks for no limit. It runs as `npm start`'s
  // does (KEEL_WORKER_ROLE=all): a goal worker on the goals' queue too, in the same process.
  const CONTROL_QUEUE = 'keel-test-models-unlimited';
  const api = await engine.serveApi({ goalSettings: { ...engine.settings, modelTaskQueue: CONTROL_QUEUE } });
  const unlimited = await engine.spawnWorker({ ...modelWorkerEnv(CONTROL_QUEUE), KEEL_WORKER_ROLE: 'all' });
  // The process prints one line per worker as each starts polling; spawnWorker returns at the first.
  const printed = async (line: string) => {
    for (const end = Date.now() + 15_000; !unlimited.output().includes(line) && Date.now() < end;)
      await new Promise((r) => setTimeout(r, 100));
    return unlimited.output();
  };
  expect(await printed(`polling task queue "${CONTROL_QUEUE}" (model calls, no rate limit)`)).toContain(
    `polling task queue "${CONTROL_QUEUE}" (model calls, no rate limit)`,
  );
  expect(await printed(`polling task queue "${engine.taskQueue}" (goals)`)).toContain(
    `polling task queue "${engine.taskQueue}" (goals)`,
  );
  await runGoals(2, api.url);
  const burstFrom = standin.chatRequests().length;
  const goalIds = await runGoals(GOALS, api.url);
  expect((await classifiedBy(goalIds)).every((r) => r.taskQueue === CONTROL_QUEUE)).toBe(true);
  const times = standin
    .chatRequests()
    .slice(burstFrom)
    .map((r) => r.at)
    .sort((a, b) => a - b);
  expect(times).toHaveLength(2 * GOALS);
  const most = busiestWindow(times, 1000);
  console.log(
    `control, no limit: ${times.length} model calls in ${((times.at(-1)! - times[0]) / 1000).toFixed(1)} s; busiest 1 s: ${most}`,
  );
  // What the limited test allows in a second, exceeded: that test would fail without the limit.
  expect(most).toBeGreaterThan(RATE * (1 + 2));
  // SIGTERM stops both of its workers, and the process ends by itself.
  await unlimited.kill('SIGTERM');
  expect(unlimited.process.exitCode).toBe(0);
  expect(unlimited.output()).toContain('[worker] stopped');
}, 180_000);
