/**
 * `npm run state:rebuild [-- --keep]`: rebuilds goals, contacts, organizations
 * and artifacts from the event log into a scratch schema and reports every
 * difference from the live tables. Exits 1 when there is any.
 */
import { openDatabase } from '../db/resolve';
import { rebuildAndCompare } from '../state/rebuild';

async function run() {
  // The database settings alone (db/resolve.ts); the embedded database is served here if nothing serves it.
  const database = await openDatabase(process.env, { serve: true });
  const keep = process.argv.includes('--keep');
  const report = await rebuildAndCompare(database.url, { keep }).finally(() => database.close());
  console.log(
    `read ${report.eventsRead} events; rebuilt ${Object.entries(report.rows)
      .map(([t, n]) => `${t}=${n}`)
      .join(' ')}`,
  );
  if (keep) console.log(`scratch schema kept: ${report.schema}`);
  if (report.differences.length === 0) {
    console.log('no differences: the live tables match the event log');
    return;
  }
  for (const d of report.differences) {
    console.log(
      d.kind === 'different'
        ? `${d.table} ${d.id} ${d.column}: live=${JSON.stringify(d.live)} rebuilt=${JSON.stringify(d.rebuilt)}`
        : `${d.table} ${d.id}: ${d.kind}`,
    );
  }
  console.log(`${report.differences.length} difference(s)`);
  process.exitCode = 1;
}

run().catch((err) => {
  console.error(err);
  process.exit(1);
});
