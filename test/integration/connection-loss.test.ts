/**
 * A connection PostgreSQL closes while it is checked out and idle (its holder between two queries) must not
 * kill the process. The long fault suite saw a worker die this way at a PostgreSQL restart: node-postgres
 * emits `error` on such a connection and pg-pool listens only while a connection sits in the pool.
 *
 * Each case runs in a child process, since the failure is an uncaught exception: the child checks a
 * connection out of the pool, has its backend terminated (pg_terminate_backend: the server sends 57P01,
 * "terminating connection due to administrator command", as a fast shutdown does to every backend), then
 * hands it back and asks the pool for another query. The control, a bare pg.Pool, shows the crash is real.
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { createTestDatabase, TEST_DATABASE, type TestDatabase } from '../helpers/db';

const ROOT = path.resolve(__dirname, '..', '..');

let db: TestDatabase;

beforeAll(async () => {
  if (TEST_DATABASE !== 'server') throw new Error('this test terminates a backend: it needs the server PostgreSQL');
  db = await createTestDatabase({ migrate: false });
});

afterAll(async () => {
  await db?.drop();
});

async function runChild(pool: 'keel' | 'bare'): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const script = `
    const pg = require('pg');
    const { createPool } = require(${JSON.stringify(path.join(ROOT, 'db', 'prisma.ts'))});
    const url = ${JSON.stringify(db.url)};
    const pool = ${pool === 'keel' ? 'createPool(url, { max: 2 })' : 'new pg.Pool({ connectionString: url, max: 2 })'};
    (async () => {
      const held = await pool.connect();
      const pid = (await held.query('SELECT pg_backend_pid() AS pid')).rows[0].pid;
      const admin = new pg.Client({ connectionString: url });
      await admin.connect();
      const killed = (await admin.query('SELECT pg_terminate_backend($1) AS ok', [pid])).rows[0].ok;
      await admin.end();
      console.log('terminated ' + killed);
      await new Promise((r) => setTimeout(r, 500));
      held.release(true);
      const one = (await pool.query('SELECT 1 AS one')).rows[0].one;
      const other = (await pool.query('SELECT pg_backend_pid() AS pid')).rows[0].pid;
      console.log('answered ' + one + ' on a new connection ' + (other !== pid));
      await pool.end();
    })().then(() => process.exit(0), (e) => { console.error(e); process.exit(1); });
  `;
  const child = spawn(process.execPath, ['-r', 'ts-node/register/transpile-only', '-e', script], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
  return { code, stdout, stderr };
}

test("Keel's pool outlives a checked-out connection the server terminates, and answers on a new one", async () => {
  const keel = await runChild('keel');
  // Said once, naming what happened, instead of thrown.
  expect(keel.stderr).toBe(
    '[db] the server closed a connection in use: terminating connection due to administrator command; the pool replaces it\n',
  );
  expect(keel.stdout).toContain('terminated true');
  expect(keel.stdout).toContain('answered 1 on a new connection true');
  expect(keel.code).toBe(0);
});

test('control: a bare pg.Pool dies of the same termination (the uncaught error the fault suite saw)', async () => {
  const bare = await runChild('bare');
  // It may die before it prints that the termination was sent: the 57P01 races the admin's answer.
  expect(bare.stdout).not.toContain('answered');
  expect(bare.stderr).toContain('terminating connection due to administrator command');
  expect(bare.code).not.toBe(0);
});
