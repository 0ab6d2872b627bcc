/** `npm run worker`: one Keel worker against what the environment names. Stops cleanly on SIGINT/SIGTERM. */
import { loadConfig } from '../config/index';
import { createWorkerFromConfig } from './worker';
import { DefaultLogger, Runtime } from '@temporalio/worker';
import { codecStatus, withholdingLogger } from '../codec';

async function run() {
  const config = loadConfig();
  // Before any connection exists: the runtime's logger is fixed once the first one is made.
  if (config.KEEL_CODEC_KEY) Runtime.install({ logger: withholdingLogger(new DefaultLogger('INFO')) });
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
