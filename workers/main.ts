/** `npm run worker`: one Keel worker against what the environment names. Stops cleanly on SIGINT/SIGTERM. */
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
  const { worker, close } = await createWorkerFromConfig(config);
  console.log(codecStatus(config.KEEL_CODEC_KEY, 'worker'));
  console.log(`[worker] database: ${database.description}`);
  console.log(`[worker] polling task queue "${config.KEEL_TASK_QUEUE}" on ${config.temporal.description}`);
  // Temporal's runtime also hears these signals and calls worker.shutdown(): polling stops, running activities
  // get KEEL_WORKER_SHUTDOWN_GRACE_MS to finish, then are cancelled and handed back for another worker to retry.
  for (const signal of ['SIGTERM', 'SIGINT'] as const)
    process.once(signal, () =>
      console.log(
        `[worker] ${signal}: stopping; running activities get ${config.KEEL_WORKER_SHUTDOWN_GRACE_MS} ms to finish`,
      ),
    );
  try {
    await worker.run();
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
