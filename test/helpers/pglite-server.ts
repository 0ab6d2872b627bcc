/**
 * One embedded test database as a child process (test/helpers/db.ts starts it): an in-memory PGlite loaded
 * from a template tarball, served on a free port. Prints `{"url": ...}` once it accepts connections, and
 * stops when its stdin closes (the test process ended, however it ended) or on SIGTERM.
 *
 * A child rather than in the Jest worker: PGlite loads parts of itself with import(), which Jest's module
 * sandbox refuses, and a process of its own is how Keel's processes reach the embedded database anyway.
 */
import { readFileSync } from 'node:fs';
import { startEmbeddedDatabase } from '../../db/embedded';

async function run(): Promise<void> {
  const template = process.argv[2];
  if (!template) throw new Error('usage: pglite-server.ts <template.tar.gz>');
  const db = await startEmbeddedDatabase({
    dataDir: 'memory://',
    loadDataDir: new Blob([readFileSync(template)]),
  });
  const stop = () => void db.stop().finally(() => process.exit(0));
  process.stdin.on('end', stop);
  process.stdin.on('close', stop);
  process.stdin.resume();
  process.once('SIGTERM', stop);
  process.stdout.write(`${JSON.stringify({ url: db.url })}\n`);
}

run().catch((err) => {
  console.error(err);
  process.exit(1);
});
