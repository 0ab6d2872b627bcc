/**
 * `npm run worker`: the Keel workers KEEL_WORKER_ROLE names (the goal worker, and the model-call worker when
 * KEEL_MODEL_TASK_QUEUE is set) against what the environment names. Stops cleanly on SIGINT/SIGTERM.
 */
import { loadConfig } from '../config/index';
import { openDatabase } from '../db/resolve';
import { createWorkerFromConfig } from './worker';
import { DefaultLogger, Runtime } from '@temporalio/worker';
import { codecStatus, withholdingLogger } from '../codec';

async function run() {
  // The database by db/resolve.ts's rules; an embedded one must already be served (npm start does).
  const database = await openDatabase(process.env, { serve: false });
  const config = { ...loadConfig(), DATABASE_URL: database.url };
  // Before any connection exists: the runtime's logger is fixed once the first one is made.
  if (config.KEEL_CODEC_KEY) Runtime.install({ logger: withholdingLogger(new DefaultLogger('INFO')) });
  const { workers, identity, close } = await createWorkerFromConfig(config);
  console.log(codecStatus(config.KEEL_CODEC_KEY, 'worker'));
  console.log(`[worker] database: ${database.description}`);
  if (config.KEEL_MODEL_RATE_PER_SECOND !== undefined && !config.KEEL_MODEL_TASK_QUEUE)
    console.warn(
      '[worker] KEEL_MODEL_RATE_PER_SECOND has no effect without KEEL_MODEL_TASK_QUEUE: model calls are not limited',
    );
  for (const w of workers) {
    const what =
      w.role === 'goals'
        ? 'goals'
        : `model calls, ${w.ratePerSecond !== undefined ? `at most ${w.ratePerSecond}/s across all its workers` : 'no rate limit'}`;
    console.log(
      `[worker] polling task queue "${w.taskQueue}" (${what}) on ${config.temporal.description} (identity ${identity})`,
    );
  }
  // Temporal's runtime also hears these signals and calls shutdown() on every worker: polling stops, running
  // activities get KEEL_WORKER_SHUTDOWN_GRACE_MS to finish, then are cancelled and handed back for another worker.
  for (const signal of ['SIGTERM', 'SIGINT'] as const)
    process.once(signal, () =>
      console.log(
        `[worker] ${signal}: stopping; running activities get ${config.KEEL_WORKER_SHUTDOWN_GRACE_MS} ms to finish`,
      ),
    );
  const runs = workers.map((w) => w.worker.run());
  try {
    // One worker failing stops the others: a process is either fully at work or gone (and restarted).
    await Promise.all(runs).catch(async (err: unknown) => {
      for (const w of workers) if (w.worker.getState() === 'RUNNING') w.worker.shutdown();
      await Promise.allSettled(runs);
      throw err;
    });
    console.log('[worker] stopped');
  } finally {
    await close();
  }
}

run().then(
  // Exit now: an activity the grace cancelled may still hold a timer or socket that would keep the process
  // alive long after the worker stopped (a stalled send kept it up for its whole stall).
  () => process.exit(0),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
