/** `npm run worker`: one Keel worker against what the environment names. Stops cleanly on SIGINT/SIGTERM. */
import { loadConfig } from '../config/index';
import { openDatabase } from '../db/resolve';
import { createWorkerFromConfig } from './worker';

async function run() {
  // The database by db/resolve.ts's rules; an embedded one must already be served (npm start does).
  const database = await openDatabase(process.env, { serve: false });
  const config = { ...loadConfig(), DATABASE_URL: database.url };
  const { worker, close } = await createWorkerFromConfig(config);
  console.log(`[worker] database: ${database.description}`);
  console.log(
    `[worker] polling task queue "${config.KEEL_TASK_QUEUE}" on ${config.TEMPORAL_ADDRESS} (namespace ${config.TEMPORAL_NAMESPACE})`,
  );
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
