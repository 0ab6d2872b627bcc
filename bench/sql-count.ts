/**
 * Counts the SQL statements node-postgres sends from this process (each one a
 * round trip to PostgreSQL, BEGIN and COMMIT included), so the load benchmark
 * can say how many a goal costs. Measurement only: the benchmark installs it,
 * nothing in Keel does.
 */
import { Client } from 'pg';

/** Starts counting statements of clients whose database `counts`; returns the running total. */
export function countStatements(counts: (database: string | undefined) => boolean = () => true): () => number {
  let n = 0;
  const proto = Client.prototype as unknown as { query: (this: { database?: string }, ...args: unknown[]) => unknown };
  const original = proto.query;
  proto.query = function (this: { database?: string }, ...args: unknown[]) {
    if (counts(this.database)) n++;
    return original.apply(this, args);
  };
  return () => n;
}
