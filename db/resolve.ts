/*
 * Which database Keel uses, decided in one place:
 *
 *   1. KEEL_DATABASE=embedded               the embedded database (PGlite), whatever DATABASE_URL says
 *   2. DATABASE_URL set                     that server PostgreSQL
 *   3. KEEL_DATABASE=server                 the server at KEEL_DEFAULT_DATABASE_URL, answering or not
 *   4. otherwise (KEEL_DATABASE=auto)       the server at KEEL_DEFAULT_DATABASE_URL if it accepts
 *                                           connections, else the embedded database
 *
 * Reads only the database settings (not loadConfig()), so the migration scripts do not fail because an
 * unrelated setting is invalid.
 */
import { z } from 'zod';
import { configSchema } from '../config/index';
import { acceptsConnections, findEmbeddedServer, startEmbeddedDatabase } from './embedded';
import { redactUrl } from './migrations';

const databaseSettings = configSchema.pick({
  KEEL_DATABASE: true,
  KEEL_DEFAULT_DATABASE_URL: true,
  KEEL_PGLITE_DIR: true,
  KEEL_PGLITE_PORT: true,
});

/** The decision, before anything is opened. */
export type DatabaseChoice =
  { kind: 'server'; url: string; reason: string } | { kind: 'embedded'; dataDir: string; port: number; reason: string };

/** A database ready for connections. */
export interface OpenDatabase {
  kind: 'server' | 'embedded';
  url: string;
  /** One line for the startup box and logs: which database, where, and why. */
  description: string;
  /** Stops the embedded database if this process serves it; otherwise nothing. */
  close(): Promise<void>;
}

/** Applies the rules above; probes the default address only when it has to (rule 4). */
export async function chooseDatabase(env: NodeJS.ProcessEnv = process.env): Promise<DatabaseChoice> {
  const parsed = databaseSettings.safeParse(env);
  if (!parsed.success) {
    throw new Error(`Invalid configuration: ${z.prettifyError(parsed.error).replace(/\n/g, '; ')}`);
  }
  const settings = parsed.data;
  const embedded = (reason: string): DatabaseChoice => ({
    kind: 'embedded',
    dataDir: settings.KEEL_PGLITE_DIR,
    port: settings.KEEL_PGLITE_PORT,
    reason,
  });
  if (settings.KEEL_DATABASE === 'embedded') return embedded('KEEL_DATABASE=embedded');
  const explicit = env.DATABASE_URL?.trim();
  if (explicit) {
    return { kind: 'server', url: configSchema.shape.DATABASE_URL.parse(explicit), reason: 'DATABASE_URL' };
  }
  const fallback = settings.KEEL_DEFAULT_DATABASE_URL;
  if (settings.KEEL_DATABASE === 'server') return { kind: 'server', url: fallback, reason: 'KEEL_DATABASE=server' };
  const { hostname, port } = new URL(fallback);
  const address = `${hostname}:${port || 5432}`;
  if (await acceptsConnections(hostname, Number(port || 5432))) {
    return { kind: 'server', url: fallback, reason: `answers on ${address}` };
  }
  return embedded(`nothing answers on ${address}`);
}

/**
 * The chosen database, ready for connections. An embedded database already served by another process
 * (`npm start`, `npm run db:embedded`) is shared through its port; otherwise `serve: true` serves it from
 * this process until close(), and `serve: false` refuses, naming how to start it.
 */
export async function openDatabase(
  env: NodeJS.ProcessEnv = process.env,
  opts: { serve: boolean },
): Promise<OpenDatabase> {
  const choice = await chooseDatabase(env);
  if (choice.kind === 'server') {
    return {
      kind: 'server',
      url: choice.url,
      description: `PostgreSQL ${redactUrl(choice.url)} (${choice.reason})`,
      close: async () => undefined,
    };
  }
  const running = await findEmbeddedServer(choice.dataDir);
  if (running) {
    return {
      kind: 'embedded',
      url: running.url,
      description: `embedded (PGlite) on ${new URL(running.url).host} (process ${running.pid}), data in ${choice.dataDir} (${choice.reason})`,
      close: async () => undefined,
    };
  }
  if (!opts.serve) {
    throw new Error(
      `Keel is set to use the embedded database in ${choice.dataDir} (${choice.reason}), but no process serves it: ` +
        'start Keel with `npm start`, or serve the database alone with `npm run db:embedded`',
    );
  }
  const db = await startEmbeddedDatabase({ dataDir: choice.dataDir, port: choice.port });
  return {
    kind: 'embedded',
    url: db.url,
    description: `embedded (PGlite) on ${new URL(db.url).host}, data in ${choice.dataDir} (${choice.reason})`,
    close: () => db.stop(),
  };
}
