/**
 * `npm run bench:engine [-- --n 100 --concurrency 20]`
 *
 * N no-approval goals through the whole engine (HTTP API → goalWorkflow →
 * activities → PostgreSQL) against a bare workflow that calls the same step
 * activities with no planning, validation, approvals or bookkeeping, on one
 * dev server, in one process. Prints goals/s and start-to-complete p50/p95 for
 * both, and `ratio p50 keel/bare`. Target: within 1.5x.
 */
import { parseArgs } from 'node:util';
import { bareGoalDone, keelGoalDone, latencies, startBareGoal, startBenchEngine, startKeelGoal } from './harness';

/** What one side of the comparison measured: each job's latency in ms, and the wall time and count of its runs. */
interface Sample {
  latencies: number[];
  wallMs: number;
  n: number;
}

/** Runs `n` jobs with at most `concurrency` in flight, adding each job's latency and the wall time to `into`. */
async function drive(n: number, concurrency: number, job: (i: number) => Promise<void>, into?: Sample) {
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: Math.min(concurrency, n) }, async () => {
      while (next < n) {
        const i = next++;
        const t0 = performance.now();
        await job(i);
        into?.latencies.push(performance.now() - t0);
      }
    }),
  );
  if (into) {
    into.wallMs += performance.now() - started;
    into.n += n;
  }
}

function summary(s: Sample) {
  return { ...latencies(s.latencies), perSecond: (s.n / s.wallMs) * 1000 };
}

async function run() {
  const { values } = parseArgs({
    options: {
      n: { type: 'string', default: '100' },
      concurrency: { type: 'string', default: '20' },
      warmup: { type: 'string', default: '10' },
      rounds: { type: 'string', default: '2' },
    },
  });
  const n = Number(values.n);
  const concurrency = Number(values.concurrency);
  const warmup = Number(values.warmup);
  const rounds = Math.max(1, Number(values.rounds));
  if (!(n > 0 && concurrency > 0)) throw new Error('--n and --concurrency must be positive numbers');

  // A pool sized for the concurrency, and a worker in this process running the bundle with the bare workflow in it.
  const { engine, cli } = await startBenchEngine({ poolMax: 20 });
  const client = engine.temporal.client;
  const keelGoal = async (i: number) => keelGoalDone(client, await startKeelGoal(engine, 'note', i));
  const bareGoal = async (i: number) => bareGoalDone(client, await startBareGoal(client, engine.taskQueue, 'note', i));

  try {
    await engine.startWorker();
    console.log(
      `bench:engine  n=${n} concurrency=${concurrency} warmup=${warmup} rounds=${rounds}  (Temporal CLI: ${cli.source})`,
    );
    await drive(warmup, concurrency, bareGoal);
    await drive(warmup, concurrency, keelGoal);
    // Alternating rounds, each side first in turn, so drift on a shared machine (a growing database, a
    // busy neighbour) lands on both sides instead of on whichever ran second.
    const bare: Sample = { latencies: [], wallMs: 0, n: 0 };
    const keel: Sample = { latencies: [], wallMs: 0, n: 0 };
    for (let r = 0; r < rounds; r++) {
      const size = Math.floor(n / rounds) + (r < n % rounds ? 1 : 0);
      const order: [Sample, (i: number) => Promise<void>][] = [
        [bare, bareGoal],
        [keel, keelGoal],
      ];
      if (r % 2 === 1) order.reverse();
      for (const [into, job] of order) await drive(size, concurrency, job, into);
    }
    const row = (name: string, r: ReturnType<typeof summary>) =>
      `${name.padEnd(5)} ${r.perSecond.toFixed(1).padStart(7)} goals/s   p50 ${r.p50.toFixed(0).padStart(5)} ms   p95 ${r.p95.toFixed(0).padStart(5)} ms`;
    const b = summary(bare);
    const k = summary(keel);
    console.log(row('bare', b));
    console.log(row('keel', k));
    console.log(`ratio p50 keel/bare: ${(k.p50 / b.p50).toFixed(2)}`);
  } finally {
    await engine.close();
  }
}

run().catch((err) => {
  console.error(err);
  process.exit(1);
});
