/** `npm run worker`: one Keel worker against what the environment names. Stops cleanly on SIGINT/SIGTERM. */
import { loadConfig } from '../config/index';
import { createWorkerFromConfig } from './worker';
import { codecStatus } from '../codec';

async function run() {
  const config = loadConfig();
  const { worker, close } = await createWorkerFromConfig(config);
  console.log(codecStatus(config.KEEL_CODEC_KEY, 'worker'));
  console.log(
    `[worker] polling task queue "${config.KEEL_TASK_QUEUE}" on ${config.TEMPORAL_ADDRESS} (namespace ${config.TEMPORAL_NAMESPACE})`,
  );

  try {
    await worker.run();
  } finally {
    await close();
  }
}

run().catch((err) => {
  console.error(err);
  process.exit(1);
});
