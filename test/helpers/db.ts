import { randomBytes } from 'node:crypto';
import { Client } from 'pg';
import { migrate } from '../../db/migrations';
import { createPrisma, type Db } from '../../db/prisma';

/** Server used for throwaway test databases; the path names the maintenance database. */
export const TEST_SERVER_URL = process.env.KEEL_TEST_PG ?? 'postgresql://postgres@127.0.0.1:5432/postgres';

/** A throwaway database created by createTestDatabase(). */
export interface TestDatabase {
  /** Connection string for the new database. */
  url: string;
  /** Its name, `keel_test_<random>`. */
  name: string;
  /** A Prisma client on it, created lazily by Prisma (no connection until first query). */
  prisma: Db;
  /** Disconnects `prisma` and drops the database, even if other sessions are still connected. */
  drop(): Promise<void>;
}

/**
 * Creates a uniquely named database `keel_test_<random>` on the server named
 * by KEEL_TEST_PG, migrated to head with db/migrations unless
 * `migrate: false`. Every test gets its own database, so suites can run in
 * parallel Jest workers without sharing state. Call drop() in afterAll.
 */
export async function createTestDatabase(opts: { migrate?: boolean } = {}): Promise<TestDatabase> {
  // 12 hex chars: collisions between concurrent workers are not a concern,
  // and the name stays a plain lower-case identifier (no quoting surprises).
  const name = `keel_test_${randomBytes(6).toString('hex')}`;
  await adminQuery(`CREATE DATABASE ${name}`);

  const url = databaseUrlFor(name);
  try {
    if (opts.migrate !== false) await migrate(url);
  } catch (err) {
    await adminQuery(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`).catch(() => undefined);
    throw err;
  }

  const prisma = createPrisma(url, { max: 4 });
  let dropped = false;
  return {
    url,
    name,
    prisma,
    async drop() {
      if (dropped) return;
      dropped = true;
      await prisma.$disconnect().catch(() => undefined);
      // FORCE: a test that failed midway may have left sessions open (pg
      // clients, the adapter's pool); they must not keep the database alive.
      await adminQuery(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    },
  };
}

/** Connection string for database `name` on the KEEL_TEST_PG server (same host, credentials and parameters). */
export function databaseUrlFor(name: string): string {
  const url = new URL(TEST_SERVER_URL);
  url.pathname = `/${encodeURIComponent(name)}`;
  return url.toString();
}

async function adminQuery(sql: string): Promise<void> {
  const client = new Client({ connectionString: TEST_SERVER_URL, application_name: 'keel-test-admin' });
  client.on('error', () => undefined);
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end().catch(() => undefined);
  }
}
