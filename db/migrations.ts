import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { Client } from 'pg';

/*
 * Keel's own migration runner. Prisma 7's `migrate` needs the schema engine,
 * which is not available everywhere Keel runs (CI images, air-gapped hosts),
 * so migrations are plain SQL folders applied over node-postgres:
 *
 *   prisma/migrations/<name>/up.sql     applied by migrate()
 *   prisma/migrations/<name>/down.sql   applied by rollback()
 *
 * Folders apply in plain string order of their names, so names start with a
 * zero-padded number (0001_init, 0002_...).
 */

/** Where migrations live unless a caller passes `dir`. */
export const DEFAULT_MIGRATIONS_DIR = path.resolve(__dirname, '..', 'prisma', 'migrations');

/** Bookkeeping table; one row per applied migration. */
export const MIGRATIONS_TABLE = '_keel_migrations';

// Arbitrary but fixed: every Keel process must agree on it. Advisory locks
// are scoped to the current database, so runs against different databases
// never wait for each other.
const MIGRATION_LOCK_KEY = '7306552370019620001';

// SQLSTATEs that mean "another caller created the database first".
const DUPLICATE_DATABASE = '42P04';
const UNIQUE_VIOLATION = '23505';
// SQLSTATE for connecting to a database that does not exist.
const INVALID_CATALOG_NAME = '3D000';

/** Options shared by migrate(), rollback() and status(). */
export interface MigrationOptions {
  /** Folder holding one sub-folder per migration; defaults to prisma/migrations. */
  dir?: string;
}

/** One migration folder as read from disk. */
export interface MigrationFolder {
  name: string;
  upSql: string;
  downSql: string;
  /** sha256 of up.sql (line endings normalised), recorded when applied. */
  checksum: string;
}

/** One row of `_keel_migrations`. */
export interface AppliedMigration {
  name: string;
  checksum: string;
  appliedAt: Date;
}

/** What status() reports about a database. */
export interface MigrationStatus {
  /** Applied migrations, oldest first. */
  applied: AppliedMigration[];
  /** Folders on disk that are not applied yet, in the order migrate() would apply them. */
  pending: string[];
  /** Applied migrations whose up.sql on disk no longer matches the recorded checksum. */
  modified: string[];
  /** Applied migrations that have no folder on disk any more. */
  missing: string[];
}

/** Raised for every refusal of the runner (bad folders, edited or out-of-order migrations, failed SQL). */
export class MigrationError extends Error {
  override name = 'MigrationError';
}

/**
 * Checksum of a migration's up.sql. Line endings are normalised first so a
 * checkout with CRLF conversion does not look like an edited migration.
 */
export function checksum(sql: string): string {
  return createHash('sha256').update(sql.replace(/\r\n/g, '\n'), 'utf8').digest('hex');
}

/**
 * Reads every migration folder under `dir`, sorted by name. Throws a
 * MigrationError if the directory is missing or any folder lacks up.sql or
 * down.sql: a migration that cannot be undone must not be applied at all.
 * Plain files at the top level (READMEs, lock files) and dot-folders are ignored.
 */
export function readMigrations(dir: string = DEFAULT_MIGRATIONS_DIR): MigrationFolder[] {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) {
    throw new MigrationError(`Migrations directory not found: ${dir}`);
  }
  const names = readdirSync(dir, { withFileTypes: true })
    .filter((entry) => entry.isDirectory() && !entry.name.startsWith('.'))
    .map((entry) => entry.name)
    // Plain code-unit order, not localeCompare: the order must not depend on
    // the machine's locale.
    .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));

  const problems: string[] = [];
  const folders: MigrationFolder[] = [];
  for (const name of names) {
    const upPath = path.join(dir, name, 'up.sql');
    const downPath = path.join(dir, name, 'down.sql');
    const missing = [upPath, downPath].filter((file) => !existsSync(file)).map((file) => path.basename(file));
    if (missing.length > 0) {
      problems.push(`${name} is missing ${missing.join(' and ')}`);
      continue;
    }
    const upSql = readFileSync(upPath, 'utf8');
    folders.push({ name, upSql, downSql: readFileSync(downPath, 'utf8'), checksum: checksum(upSql) });
  }
  if (problems.length > 0) {
    throw new MigrationError(
      `Invalid migration folder(s) in ${dir}: ${problems.join('; ')}. Every migration needs both up.sql and down.sql.`,
    );
  }
  return folders;
}

/**
 * Applies every pending migration, oldest first, each in its own
 * transaction together with its `_keel_migrations` row, so a failing
 * migration leaves no trace and earlier ones stay applied. Holds an advisory
 * lock for the whole run, so concurrent callers queue up and the later ones
 * find nothing left to do.
 *
 * Refuses, before applying anything, if an applied migration's up.sql was
 * edited, if an applied migration has no folder on disk (the database is
 * newer than this code), or if a pending migration sorts before an applied
 * one (it would never have run in the order other databases ran it).
 */
export async function migrate(databaseUrl: string, opts: MigrationOptions = {}): Promise<{ applied: string[] }> {
  const migrations = readMigrations(opts.dir);
  return withClient(databaseUrl, async (client) =>
    withMigrationLock(client, async () => {
      await ensureMigrationsTable(client);
      const applied = await readApplied(client);
      const plan = comparePlan(migrations, applied);

      const refusals: string[] = [];
      for (const name of plan.modified) {
        refusals.push(
          `migration ${name} was edited after it was applied (up.sql checksum differs); ship the change as a new migration instead`,
        );
      }
      for (const name of plan.missing) {
        refusals.push(
          `migration ${name} is applied in the database but has no folder in ${opts.dir ?? DEFAULT_MIGRATIONS_DIR}`,
        );
      }
      const lastApplied = applied.at(-1)?.name;
      if (lastApplied !== undefined) {
        for (const name of plan.pending) {
          if (name < lastApplied) {
            refusals.push(
              `pending migration ${name} sorts before already-applied ${lastApplied}; rename it so it sorts last`,
            );
          }
        }
      }
      if (refusals.length > 0) {
        throw new MigrationError(`Refusing to migrate: ${refusals.join('; ')}`);
      }

      const done: string[] = [];
      const byName = new Map(migrations.map((m) => [m.name, m]));
      for (const name of plan.pending) {
        const migration = byName.get(name);
        if (!migration) throw new MigrationError(`internal: pending migration ${name} not loaded`);
        let raced = false;
        await inTransaction(client, `Migration ${name} failed (up.sql)`, async () => {
          // The advisory lock serializes runners on a server PostgreSQL. On the embedded database (PGlite,
          // one session shared by every connection) it is re-entrant for everyone and serializes nothing,
          // but a transaction runs alone there, so this check and the migration cannot interleave with
          // another runner's: the later runner finds the row and leaves the rest to the one ahead of it.
          const already = await client.query(`SELECT 1 FROM ${MIGRATIONS_TABLE} WHERE name = $1`, [name]);
          if ((already.rowCount ?? 0) > 0) {
            raced = true;
            return;
          }
          await client.query(migration.upSql);
          await client.query(`INSERT INTO ${MIGRATIONS_TABLE} (name, checksum, applied_at) VALUES ($1, $2, now())`, [
            name,
            migration.checksum,
          ]);
        });
        if (raced) break;
        done.push(name);
      }
      return { applied: done };
    }),
  );
}

/**
 * Reverts the most recently applied migration (the last by name) by running
 * its down.sql and deleting its `_keel_migrations` row in one transaction.
 * Returns `{ rolledBack: null }` when nothing is applied. Refuses if that
 * migration's folder is gone or its up.sql was edited since it was applied,
 * because its down.sql may then not undo what actually ran.
 */
export async function rollback(
  databaseUrl: string,
  opts: MigrationOptions = {},
): Promise<{ rolledBack: string | null }> {
  const migrations = readMigrations(opts.dir);
  return withClient(databaseUrl, async (client) =>
    withMigrationLock(client, async () => {
      if (!(await migrationsTableExists(client))) return { rolledBack: null };
      const last = (await readApplied(client)).at(-1);
      if (!last) return { rolledBack: null };

      const migration = migrations.find((m) => m.name === last.name);
      if (!migration) {
        throw new MigrationError(
          `Refusing to roll back: migration ${last.name} is applied but has no folder in ${opts.dir ?? DEFAULT_MIGRATIONS_DIR}`,
        );
      }
      if (migration.checksum !== last.checksum) {
        throw new MigrationError(
          `Refusing to roll back: migration ${last.name} was edited after it was applied (up.sql checksum differs), so its down.sql may not match what ran`,
        );
      }
      await inTransaction(client, `Rollback of ${last.name} failed (down.sql)`, async () => {
        await client.query(migration.downSql);
        await client.query(`DELETE FROM ${MIGRATIONS_TABLE} WHERE name = $1`, [last.name]);
      });
      return { rolledBack: last.name };
    }),
  );
}

/**
 * Reports applied, pending, edited and missing migrations without changing
 * anything (and without taking the lock: it is a snapshot).
 */
export async function status(databaseUrl: string, opts: MigrationOptions = {}): Promise<MigrationStatus> {
  const migrations = readMigrations(opts.dir);
  return withClient(databaseUrl, async (client) => {
    const applied = (await migrationsTableExists(client)) ? await readApplied(client) : [];
    return { applied, ...comparePlan(migrations, applied) };
  });
}

/**
 * Creates the database named in `databaseUrl` if it does not exist, by
 * connecting to the `postgres` maintenance database on the same server with
 * the same credentials. Safe when several processes call it at once: losing
 * the CREATE DATABASE race counts as "already there".
 */
export async function ensureDatabase(databaseUrl: string): Promise<{ created: boolean }> {
  const url = new URL(databaseUrl);
  const name = decodeURIComponent(url.pathname.replace(/^\//, ''));
  if (!name) throw new MigrationError(`DATABASE_URL names no database: ${redactUrl(databaseUrl)}`);
  if (name === 'postgres') return { created: false };

  url.pathname = '/postgres';
  return withClient(url.toString(), async (client) => {
    const found = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
    if ((found.rowCount ?? 0) > 0) return { created: false };
    try {
      await client.query(`CREATE DATABASE ${quoteIdent(name)}`);
      return { created: true };
    } catch (err) {
      // Two concurrent creators can both see "missing"; the loser gets one of
      // these depending on how far the winner got.
      const code = (err as { code?: unknown }).code;
      if (code === DUPLICATE_DATABASE || code === UNIQUE_VIOLATION) return { created: false };
      throw err;
    }
  });
}

/** Quotes a PostgreSQL identifier (database, table or column name). */
export function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

/** The URL with any password replaced by `***`, for logs and error messages. */
export function redactUrl(databaseUrl: string): string {
  try {
    const url = new URL(databaseUrl);
    if (url.password) url.password = '***';
    return url.toString();
  } catch {
    return '<unparseable database url>';
  }
}

function comparePlan(
  migrations: MigrationFolder[],
  applied: AppliedMigration[],
): Pick<MigrationStatus, 'pending' | 'modified' | 'missing'> {
  const onDisk = new Map(migrations.map((m) => [m.name, m]));
  const appliedNames = new Set(applied.map((a) => a.name));
  return {
    pending: migrations.filter((m) => !appliedNames.has(m.name)).map((m) => m.name),
    modified: applied
      .filter((a) => onDisk.has(a.name) && onDisk.get(a.name)?.checksum !== a.checksum)
      .map((a) => a.name),
    missing: applied.filter((a) => !onDisk.has(a.name)).map((a) => a.name),
  };
}

async function withClient<T>(databaseUrl: string, fn: (client: Client) => Promise<T>): Promise<T> {
  const client = new Client({ connectionString: databaseUrl, application_name: 'keel-migrate' });
  // Without a listener, a connection dropped by the server (e.g. DROP
  // DATABASE ... WITH (FORCE)) would crash the process; the failing query
  // rejects with the same error anyway.
  client.on('error', () => undefined);
  try {
    await client.connect();
  } catch (err) {
    if ((err as { code?: unknown }).code === INVALID_CATALOG_NAME) {
      throw new MigrationError(
        `Database does not exist: ${redactUrl(databaseUrl)} (create it with ensureDatabase() or \`scripts/migrate.ts up\`)`,
        { cause: err },
      );
    }
    throw err;
  }
  try {
    return await fn(client);
  } finally {
    await client.end().catch(() => undefined);
  }
}

async function withMigrationLock<T>(client: Client, fn: () => Promise<T>): Promise<T> {
  // Session-level lock: it must outlive the per-migration transactions.
  await client.query('SELECT pg_advisory_lock($1::bigint)', [MIGRATION_LOCK_KEY]);
  try {
    return await fn();
  } finally {
    // Closing the connection would release it too; unlocking explicitly
    // just lets waiters go a little sooner.
    await client.query('SELECT pg_advisory_unlock($1::bigint)', [MIGRATION_LOCK_KEY]).catch(() => undefined);
  }
}

async function inTransaction(client: Client, failure: string, fn: () => Promise<void>): Promise<void> {
  await client.query('BEGIN');
  try {
    await fn();
    await client.query('COMMIT');
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw new MigrationError(`${failure}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
}

async function ensureMigrationsTable(client: Client): Promise<void> {
  // Only ever called under the advisory lock: CREATE TABLE IF NOT EXISTS is
  // not race-free on its own (concurrent creators can hit a unique violation
  // in pg_type).
  await client.query(
    `CREATE TABLE IF NOT EXISTS ${MIGRATIONS_TABLE} (
       name text PRIMARY KEY,
       checksum text NOT NULL,
       applied_at timestamptz NOT NULL DEFAULT now()
     )`,
  );
}

async function migrationsTableExists(client: Client): Promise<boolean> {
  const res = await client.query<{ exists: boolean }>('SELECT to_regclass($1) IS NOT NULL AS exists', [
    MIGRATIONS_TABLE,
  ]);
  return res.rows[0]?.exists === true;
}

async function readApplied(client: Client): Promise<AppliedMigration[]> {
  const res = await client.query<{ name: string; checksum: string; applied_at: Date }>(
    `SELECT name, checksum, applied_at FROM ${MIGRATIONS_TABLE}`,
  );
  // Sorted here rather than with ORDER BY so the order matches readMigrations
  // exactly, whatever the database collation.
  return res.rows
    .map((row) => ({ name: row.name, checksum: row.checksum, appliedAt: row.applied_at }))
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}
