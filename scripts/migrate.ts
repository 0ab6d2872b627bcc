/*
 * Applies, reverts or lists Keel's SQL migrations (prisma/migrations/<name>/{up,down}.sql).
 *
 *   node -r ts-node/register scripts/migrate.ts up       create the database if needed, apply all pending
 *   node -r ts-node/register scripts/migrate.ts down     revert the last applied migration
 *   node -r ts-node/register scripts/migrate.ts status   list applied / pending / edited / missing
 *
 * Reads the database settings alone (db/resolve.ts) rather than loadConfig(): migrating must not fail
 * because some unrelated setting (Slack, OpenAI...) is invalid. On the embedded database it uses the process
 * serving it (`npm start`) or, when none does, serves it itself for the length of the command.
 */
import { ensureDatabase, migrate, redactUrl, rollback, status } from '../db/migrations';
import { openDatabase } from '../db/resolve';

const USAGE = 'usage: scripts/migrate.ts up|down|status';

async function run(): Promise<void> {
  const command = process.argv[2];
  if (!['up', 'down', 'status'].includes(command ?? '')) {
    console.error(USAGE);
    process.exitCode = 2;
    return;
  }
  const database = await openDatabase(process.env, { serve: true });
  try {
    await runCommand(command, database.url);
  } finally {
    await database.close();
  }
}

async function runCommand(command: string | undefined, databaseUrl: string): Promise<void> {
  const where = redactUrl(databaseUrl);
  switch (command) {
    case 'up': {
      const { created } = await ensureDatabase(databaseUrl);
      if (created) console.log(`created database ${new URL(databaseUrl).pathname.slice(1)}`);
      const { applied } = await migrate(databaseUrl);
      if (applied.length === 0) console.log(`${where}: already up to date`);
      for (const name of applied) console.log(`${where}: applied ${name}`);
      return;
    }
    case 'down': {
      const { rolledBack } = await rollback(databaseUrl);
      console.log(rolledBack ? `${where}: rolled back ${rolledBack}` : `${where}: nothing to roll back`);
      return;
    }
    case 'status': {
      const s = await status(databaseUrl);
      console.log(`${where}:`);
      for (const a of s.applied) {
        const note = s.modified.includes(a.name)
          ? '  (EDITED since applied)'
          : s.missing.includes(a.name)
            ? '  (MISSING on disk)'
            : '';
        console.log(`  applied  ${a.name}  ${a.appliedAt.toISOString()}${note}`);
      }
      for (const name of s.pending) console.log(`  pending  ${name}`);
      if (s.applied.length === 0 && s.pending.length === 0) console.log('  no migrations');
      // A non-zero exit lets deploy scripts gate on "database matches the code".
      if (s.modified.length > 0 || s.missing.length > 0) process.exitCode = 1;
      return;
    }
    default:
      console.error(USAGE);
      process.exitCode = 2;
  }
}

run().catch((err) => {
  console.error(err);
  process.exit(1);
});
