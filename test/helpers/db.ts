import { randomBytes } from 'node:crypto';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { Client } from 'pg';
import { migrate } from '../../db/migrations';
import { createPrisma, type Db } from '../../db/prisma';

/** Server used for throwaway test databases; the path names the maintenance database. */
export const TEST_SERVER_URL = process.env.KEEL_TEST_PG ?? 'postgresql://postgres@127.0.0.1:5432/postgres';

/**
 * `KEEL_TEST_DATABASE=embedded` (npm run test:embedded): every test database is its own in-memory PGlite,
 * served on a port of its own by a child process (pglite-server.ts), started from the data folders the
 * global setup made once (test/pglite.ts).
 */
export const TEST_DATABASE: 'server' | 'embedded' =
  process.env.KEEL_TEST_DATABASE === 'embedded' ? 'embedded' : 'server';

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

/** Options of {@link createTestDatabase}; the defaults are what the tests use. */
export interface TestDatabaseOptions {
  /** Migrate to head with db/migrations (default true). */
  migrate?: boolean;
  /** Server (path: its maintenance database); default KEEL_TEST_PG. The benchmark passes KEEL_BENCH_PG. */
  serverUrl?: string;
  /** Name prefix, a plain lower-case identifier (default `keel_test`). */
  prefix?: string;
  /** Size of the Prisma client's pool (default 4: tests run several files on two cores). */
  poolMax?: number;
}

/**
 * Creates a uniquely named database `keel_test_<random>` on the server named
 * by KEEL_TEST_PG, migrated to head with db/migrations unless
 * `migrate: false`. Every test gets its own database, so suites can run in
 * parallel Jest workers without sharing state. Call drop() in afterAll.
 */
export async function createTestDatabase(opts: TestDatabaseOptions = {}): Promise<TestDatabase> {
  const serverUrl = opts.serverUrl ?? TEST_SERVER_URL;
  const prefix = opts.prefix ?? 'keel_test';
  if (!/^[a-z_][a-z0-9_]*$/.test(prefix)) throw new Error(`database prefix must be a plain identifier: ${prefix}`);
  // 12 hex chars: collisions between concurrent workers are not a concern,
  // and the name stays a plain lower-case identifier (no quoting surprises).
  const name = `${prefix}_${randomBytes(6).toString('hex')}`;
  if (TEST_DATABASE === 'embedded' && opts.serverUrl === undefined) return createEmbeddedTestDatabase(name, opts);
  await adminQuery(serverUrl, `CREATE DATABASE ${name}`);

  const url = databaseUrlFor(name, serverUrl);
  try {
    if (opts.migrate !== false) await migrate(url);
  } catch (err) {
    await adminQuery(serverUrl, `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`).catch(() => undefined);
    throw err;
  }

  const prisma = createPrisma(url, { max: opts.poolMax ?? 4 });
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
      await adminQuery(serverUrl, `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    },
  };
}

/** An in-memory PGlite from the global setup's template (migrated to head, or not), in a child process. */
async function createEmbeddedTestDatabase(name: string, opts: TestDatabaseOptions): Promise<TestDatabase> {
  const templates = process.env.KEEL_TEST_PGLITE_TEMPLATES;
  if (!templates) {
    throw new Error('KEEL_TEST_PGLITE_TEMPLATES is not set: run the tests through jest (test/global-setup.ts)');
  }
  const template = path.join(templates, opts.migrate === false ? 'empty.tar.gz' : 'head.tar.gz');
  const child = spawn(
    process.execPath,
    ['-r', 'ts-node/register/transpile-only', path.join(__dirname, 'pglite-server.ts'), template],
    { stdio: ['pipe', 'pipe', 'inherit'] },
  );
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const url = await new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      const line = out.split('\n').find((l) => l.startsWith('{'));
      if (line) resolve((JSON.parse(line) as { url: string }).url);
    });
    child.once('exit', (code) => reject(new Error(`the embedded test database exited (code ${code}) before serving`)));
  });
  const prisma = createPrisma(url, { max: opts.poolMax ?? 4 });
  let dropped = false;
  return {
    url,
    name,
    prisma,
    async drop() {
      if (dropped) return;
      dropped = true;
      await prisma.$disconnect().catch(() => undefined);
      child.stdin.end();
      await exited;
    },
  };
}

/** Connection string for database `name` on the KEEL_TEST_PG server (same host, credentials and parameters). */
export function databaseUrlFor(name: string, serverUrl: string = TEST_SERVER_URL): string {
  const url = new URL(serverUrl);
  url.pathname = `/${encodeURIComponent(name)}`;
  return url.toString();
}

async function adminQuery(serverUrl: string, sql: string): Promise<void> {
  const client = new Client({ connectionString: serverUrl, application_name: 'keel-test-admin' });
  client.on('error', () => undefined);
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end().catch(() => undefined);
  }
}
