/**
 * `npm run bench:engine [-- --n 100 --concurrency 20]`
 *
 * N no-approval goals through the whole engine (HTTP API → goalWorkflow →
 * activities → PostgreSQL) against a bare workflow that calls the same step
 * activities with no planning, validation, approvals or bookkeeping, on one
 * dev server, in one process. Prints goals/s and start-to-complete p50/p95 for
 * both, and `ratio p50 keel/bare`. Target: within 1.5x.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { DefaultLogger, bundleWorkflowCode } from '@temporalio/worker';
import { startEngine } from '../test/helpers/engine';
import { bareGoalWorkflow } from './workflows';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const { resolveTemporalCli } = require('../scripts/temporal-cli.js') as {
  resolveTemporalCli(opts: { install: boolean }): Promise<{ path: string | null; source: string }>;
};

const ROOT = path.resolve(__dirname, '..');

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i];
}

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
  const sorted = [...s.latencies].sort((a, b) => a - b);
  return { p50: percentile(sorted, 50), p95: percentile(sorted, 95), perSecond: (s.n / s.wallMs) * 1000 };
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

  const cli = await resolveTemporalCli({ install: true });
  const { code } = await bundleWorkflowCode({
    workflowsPath: path.join(__dirname, 'workflows'),
    logger: new DefaultLogger('WARN'),
  });
  const bundlePath = path.join(ROOT, '.keel', 'bench', 'workflow-bundle.js');
  await mkdir(path.dirname(bundlePath), { recursive: true });
  await writeFile(bundlePath, code);
  // The engine the tests run, with the benchmark's database, a pool sized for its concurrency, the
  // memory store's production defaults, and a worker running the bundle with the bare workflow in it.
  const engine = await startEngine({
    database: {
      serverUrl: process.env.KEEL_BENCH_PG ?? 'postgresql://postgres@127.0.0.1:5432/postgres',
      prefix: 'keel_bench',
      poolMax: 20,
    },
    temporal: { cliPath: cli.path, logLevel: 'error' },
    workflowBundlePath: bundlePath,
    actor: 'bench',
    operatorName: 'Bench Operator',
    settings: { connectorHeartbeatMs: 30_000 },
    memory: { store: {} },
  });
  const client = engine.temporal.client;

  const keelGoal = async (i: number) => {
    const res = await engine.http('POST', '/v1/goals', {
      title: `Summarize bench note ${i}`,
      kind: 'note',
      input: { text: `Bench note ${i}. Nothing to see.` },
    });
    if (res.status !== 202) throw new Error(`POST /v1/goals answered ${res.status}: ${JSON.stringify(res.body)}`);
    const { workflowId } = res.body as { workflowId: string };
    const result = await client.workflow.getHandle(workflowId).result();
    if (result.status !== 'completed') throw new Error(`goal ${workflowId} ended ${result.status}: ${result.error}`);
  };
  const bareGoal = async (i: number) => {
    const id = `bare-${randomBytes(6).toString('hex')}-${i}`;
    await client.workflow.execute(bareGoalWorkflow, {
      workflowId: id,
      taskQueue: engine.taskQueue,
      args: [{ goalId: id, query: `Summarize bench note ${i}` }],
    });
  };

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
