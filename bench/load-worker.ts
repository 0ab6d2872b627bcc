/**
 * The worker of `npm run bench:load`, in a process of its own so that its
 * memory and CPU are its own: the production worker (createWorkerFromConfig,
 * configured by the environment the benchmark gives it), reporting over IPC
 * twice a second its RSS, heap, CPU time, the sticky cache's size and the SQL
 * statements it sent. `gc` asks for a collection first (the benchmark starts
 * it with --expose-gc); `stop` shuts it down and exits, which writes the CPU
 * profile when it runs under --cpu-prof.
 */
import { DefaultLogger, Runtime } from '@temporalio/worker';
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

async function run() {
  if (!process.send) throw new Error('bench/load-worker.ts is started by bench/load.ts, with an IPC channel');
  const statements = countStatements();
  // The worker's state changes would drown the benchmark's figures.
  Runtime.install({ logger: new DefaultLogger('WARN') });
  const { worker, close } = await createWorkerFromConfig(loadConfig());
  const status = (): WorkerStatus => {
    const cpu = process.cpuUsage();
    const mem = process.memoryUsage();
    return {
      type: 'status',
      rss: mem.rss,
      heapUsed: mem.heapUsed,
      cpuMs: (cpu.user + cpu.system) / 1000,
      cachedWorkflows: worker.getStatus().numCachedWorkflows,
      statements: statements(),
    };
  };
  const timer = setInterval(() => process.send?.(status()), 500);
  process.on('message', (m: WorkerCommand) => {
    if (m.type === 'gc') {
      (globalThis as { gc?: () => void }).gc?.();
      process.send?.(status());
    } else if (m.type === 'stop' && worker.getState() === 'RUNNING') {
      worker.shutdown();
    }
  });
  // The parent going away (a crash, Ctrl-C) stops the worker too.
  process.on('disconnect', () => worker.getState() === 'RUNNING' && worker.shutdown());
  const running = worker.run();
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
