/**
 * The worker of `npm run bench:load`, in a process of its own so that its
 * memory and CPU are its own: the production worker (createWorkerFromConfig,
 * configured by the environment the benchmark gives it) and, beside it on
 * BENCH_BARE_TASK_QUEUE and BENCH_RECORDS_TASK_QUEUE, workers of the bare baselines (their own bundle,
 * BENCH_BARE_BUNDLE) running the same activity functions; reporting over IPC
 * twice a second its RSS, heap, CPU time, the sticky cache's size and the SQL
 * statements it sent. `gc` asks for a collection first (the benchmark starts
 * it with --expose-gc); `stop` shuts it down and exits, which writes the CPU
 * profile when it runs under --cpu-prof.
 */
import { DefaultLogger, Runtime, Worker } from '@temporalio/worker';
import { loadConfig } from '../config/index';
import { createWorkerFromConfig } from '../workers/worker';
import { countStatements } from './sql-count';

/** What the worker reports. */
export interface WorkerStatus {
  type: 'status';
  rss: number;
  heapUsed: number;
  /** CPU time used so far, user + system, in ms. */
  cpuMs: number;
  cachedWorkflows: number;
  statements: number;
}

export type WorkerCommand = { type: 'gc' } | { type: 'stop' };

function required(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: bench/load.ts sets it`);
  return value;
}

async function run() {
  if (!process.send) throw new Error('bench/load-worker.ts is started by bench/load.ts, with an IPC channel');
  const statements = countStatements();
  // The worker's state changes would drown the benchmark's figures.
  // The SDK core's own metrics (activation and local-activity latencies, per task queue) on a port the driver
  // reads at the end: where the workflow tasks' time goes.
  Runtime.install({
    logger: new DefaultLogger('WARN'),
    telemetryOptions: { metrics: { prometheus: { bindAddress: `127.0.0.1:${required('BENCH_CORE_METRICS_PORT')}` } } },
  });
  const config = loadConfig();
  const { worker, close, connection, activities } = await createWorkerFromConfig(config);
  if (!worker || !activities)
    throw new Error('the benchmark needs the goal worker: unset KEEL_WORKER_ROLE or set it to all');
  // The baselines' bundle, on one queue per baseline, so the SDK core's metrics (per task queue) keep them apart:
  // the steps only, and every activity Keel's goals call.
  const baseline = (taskQueue: string) =>
    Worker.create({
      connection,
      namespace: config.temporal.namespace,
      taskQueue,
      workflowBundle: { codePath: required('BENCH_BARE_BUNDLE') },
      activities,
    });
  const bare = await baseline(required('BENCH_BARE_TASK_QUEUE'));
  const records = await baseline(required('BENCH_RECORDS_TASK_QUEUE'));
  const workers = [worker, bare, records];
  const status = (): WorkerStatus => {
    const cpu = process.cpuUsage();
    const mem = process.memoryUsage();
    return {
      type: 'status',
      rss: mem.rss,
      heapUsed: mem.heapUsed,
      cpuMs: (cpu.user + cpu.system) / 1000,
      cachedWorkflows: workers.reduce((n, w) => n + w.getStatus().numCachedWorkflows, 0),
      statements: statements(),
    };
  };
  const timer = setInterval(() => process.send?.(status()), 500);
  process.on('message', (m: WorkerCommand) => {
    if (m.type === 'gc') {
      (globalThis as { gc?: () => void }).gc?.();
      process.send?.(status());
    } else if (m.type === 'stop') {
      stop();
    }
  });
  const stop = () => workers.forEach((w) => w.getState() === 'RUNNING' && w.shutdown());
  // The parent going away (a crash, Ctrl-C) stops the workers too.
  process.on('disconnect', stop);
  const running = Promise.all(workers.map((w) => w.run()));
  process.send(status());
  process.send({ type: 'ready' });
  try {
    await running;
  } finally {
    clearInterval(timer);
    await close();
  }
}

run().then(
  () => process.exit(0),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
