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
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { DefaultLogger, Runtime, bundleWorkflowCode } from '@temporalio/worker';
import { Client as PgClient } from 'pg';
import { createApp } from '../api/app';
import { createEmailConnector } from '../connectors/email';
import { createEmbeddedStore } from '../memory/embedded-store';
import { createHashingEmbedder } from '../memory/embedders';
import { createMemoryService } from '../memory/service';
import { migrate } from '../db/migrations';
import { createPrisma } from '../db/prisma';
import { loadConfig } from '../config';
import { bareGoalWorkflow } from './workflows';
import { KeelPendingApprovals, KeelStatus } from '../workflows/messages';
import { createKeelWorker } from '../workers/worker';

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

/** Runs `n` jobs with at most `concurrency` in flight; returns each job's latency in ms and the wall time. */
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
  Runtime.install({ logger: new DefaultLogger('WARN') });

  const cli = await resolveTemporalCli({ install: true });
  const serverUrl = process.env.KEEL_BENCH_PG ?? 'postgresql://postgres@127.0.0.1:5432/postgres';
  const dbName = `keel_bench_${randomBytes(4).toString('hex')}`;
  const admin = new PgClient({ connectionString: serverUrl });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${dbName}`);
  const dbUrl = new URL(serverUrl);
  dbUrl.pathname = `/${dbName}`;
  await migrate(dbUrl.toString());

  const env = await TestWorkflowEnvironment.createLocal({
    server: {
      ...(cli.path ? { executable: { type: 'existing-path' as const, path: cli.path } } : {}),
      ip: '127.0.0.1',
      searchAttributes: [KeelStatus, KeelPendingApprovals],
      log: { format: 'pretty', level: 'error' },
    },
  });
  const prisma = createPrisma(dbUrl.toString(), { max: 20 });
  const email = createEmailConnector({
    from: 'Keel <keel@bench.local>',
    outboxDir: path.join(ROOT, '.keel', 'bench', 'outbox'),
    prisma,
  });
  const { code } = await bundleWorkflowCode({
    workflowsPath: path.join(__dirname, 'workflows'),
    logger: new DefaultLogger('WARN'),
  });
  const bundlePath = path.join(ROOT, '.keel', 'bench', 'workflow-bundle.js');
  await (await import('node:fs/promises')).mkdir(path.dirname(bundlePath), { recursive: true });
  await (await import('node:fs/promises')).writeFile(bundlePath, code);
  const taskQueue = 'keel-bench';
  const embedder = createHashingEmbedder();
  const memory = createMemoryService({ prisma, embedder, store: createEmbeddedStore({ prisma, dims: embedder.dims }) });
  const worker = await createKeelWorker({
    connection: env.nativeConnection,
    namespace: 'default',
    taskQueue,
    prisma,
    email,
    memory,
    workflowBundlePath: bundlePath,
    operatorName: 'Bench Operator',
    workingSetTokens: loadConfig({}).KEEL_WORKING_SET_TOKENS,
  });
  const running = worker.run();

  const apiKey = randomBytes(16).toString('hex');
  const app = createApp({
    client: env.client,
    prisma,
    memory,
    apiKey,
    taskQueue,
    defaultBudgetUsd: 5,
    actor: 'bench',
    goalSettings: {
      approvalTimeoutMs: 60_000,
      escalationTimeoutMs: 60_000,
      connectorHeartbeatMs: 30_000,
      maxReplans: 2,
    },
  });
  const server = await new Promise<import('node:http').Server>((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  const apiUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  const keelGoal = async (i: number) => {
    const res = await fetch(`${apiUrl}/v1/goals`, {
      method: 'POST',
      headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({
        title: `Summarize bench note ${i}`,
        kind: 'note',
        input: { text: `Bench note ${i}. Nothing to see.` },
      }),
    });
    if (res.status !== 202) throw new Error(`POST /v1/goals answered ${res.status}: ${await res.text()}`);
    const { workflowId } = (await res.json()) as { workflowId: string };
    const result = await env.client.workflow.getHandle(workflowId).result();
    if (result.status !== 'completed') throw new Error(`goal ${workflowId} ended ${result.status}: ${result.error}`);
  };
  const bareGoal = async (i: number) => {
    const id = `bare-${randomBytes(6).toString('hex')}-${i}`;
    await env.client.workflow.execute(bareGoalWorkflow, {
      workflowId: id,
      taskQueue,
      args: [{ goalId: id, query: `Summarize bench note ${i}` }],
    });
  };

  try {
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
    worker.shutdown();
    await running;
    await new Promise((r) => server.close(r));
    await email.close();
    await prisma.$disconnect();
    await env.teardown();
    await admin.query(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`);
    await admin.end();
  }
}

run().catch((err) => {
  console.error(err);
  process.exit(1);
});
