import { PrismaPg } from '@prisma/adapter-pg';
import { Pool } from 'pg';
import { PrismaClient } from '../generated/prisma/client';

export type Db = PrismaClient;

/** How a log line of {@link createPool} begins when the server closed a connection nobody listened on. */
export const CONNECTION_CLOSED_IN_USE = '[db] the server closed a connection in use';

/**
 * The node-postgres pool under Keel's Prisma clients. Every connection it opens carries an `error` listener
 * for its whole life. node-postgres emits `error` on a connection the server closes while nobody is running
 * a query on it (PostgreSQL's fast shutdown sends 57P01 "terminating connection due to administrator
 * command" to every backend), and pg-pool listens only while the connection sits idle in the pool: one
 * checked out between queries has no listener, and the emit became an uncaught exception that killed the
 * process (seen once in the long fault suite: a worker gone at a PostgreSQL restart). The lost connection
 * is not news to its holder: a query running on it rejects with the same error, and the pool drops it when
 * it comes back (or at once, if it was idle). The one case nobody else hears of is logged.
 */
export function createPool(databaseUrl: string, opts: { max?: number } = {}): Pool {
  const pool = new Pool({ connectionString: databaseUrl, max: opts.max ?? 10 });
  pool.on('connect', (client) => {
    let said = false;
    client.on('error', (err: Error) => {
      // Alone on the connection means nobody held a listener: the case that used to kill the process, and
      // rare enough to say, once per connection (the socket's end follows the server's message as a second
      // error). An idle connection has the pool's listener, one running a query has the query's.
      if (said || client.listenerCount('error') !== 1) return;
      said = true;
      console.warn(`${CONNECTION_CLOSED_IN_USE}: ${err.message}; the pool replaces it`);
    });
  });
  // What the pool reports of an idle connection it has dropped (Prisma's adapter listens too).
  pool.on('error', () => undefined);
  return pool;
}

/** One Prisma client over a node-postgres pool ({@link createPool}) for the given connection string. */
export function createPrisma(databaseUrl: string, opts: { max?: number } = {}): Db {
  // disposeExternalPool: `$disconnect()` ends the pool, as it does one the adapter made itself.
  const adapter = new PrismaPg(createPool(databaseUrl, opts), { disposeExternalPool: true });
  return new PrismaClient({ adapter });
}
