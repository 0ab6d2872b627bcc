/**
 * `npm run db:embedded`: serves the embedded database (PGlite, data in KEEL_PGLITE_DIR) on a local port
 * until Ctrl-C, for running the API and the worker as separate commands (`npm start` serves it itself).
 */
import { startEmbeddedDatabase } from '../db/embedded';
import { configSchema } from '../config/index';

async function run(): Promise<void> {
  const dataDir = configSchema.shape.KEEL_PGLITE_DIR.parse(process.env.KEEL_PGLITE_DIR);
  const port = configSchema.shape.KEEL_PGLITE_PORT.parse(process.env.KEEL_PGLITE_PORT);
  const db = await startEmbeddedDatabase({ dataDir, port });
  console.log(`[embedded-db] serving ${dataDir} at ${db.url}; KEEL_DATABASE=embedded finds it. Ctrl-C stops it.`);
  const stop = () => {
    void db.stop().finally(() => process.exit(0));
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

run().catch((err) => {
  console.error(err);
  process.exit(1);
});
