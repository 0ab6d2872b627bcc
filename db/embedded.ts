/*
 * The embedded database: PGlite (PostgreSQL compiled to WebAssembly) in this process, served on a local TCP
 * port so that every Keel process (API, worker, migrations, tests) reaches it through node-postgres and
 * @prisma/adapter-pg exactly as it reaches a server PostgreSQL.
 *
 * PGlite is one PostgreSQL backend: one session, one transaction at a time. pglite-socket's own server
 * multiplexes connections onto it message by message, which breaks two ordinary things (electric-sql/pglite
 * issues 1046 and PR 977, open for 0.2.17): extended-protocol batches (Parse/Bind/Execute/Sync) from two
 * connections interleave and clobber each other's unnamed statement, and one failed message stalls its queue
 * for good. So the socket side is ours (below); pglite-socket's package is not used at run time:
 *
 *   - a connection's messages run as units: everything up to a Sync, or one simple Query;
 *   - a connection owns the session from the first message of a unit until it is idle outside a
 *     transaction block, so a transaction (BEGIN ... COMMIT, Prisma's $transaction) runs alone and other
 *     connections wait their turn, first come first served;
 *   - a connection that closes while owning the session has its batch finished and its transaction rolled
 *     back; an owner idle inside a transaction while others wait is ended after `idleInTransactionMs`
 *     (PostgreSQL's idle_in_transaction_session_timeout), so one stuck client cannot stop the others.
 *
 * Session settings (SET without LOCAL, named prepared statements, advisory locks, LISTEN) are shared by
 * every connection, because there is one session; Keel uses none of them outside a transaction, except the
 * migration runner's advisory lock, which db/migrations.ts does not rely on (see there).
 */
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import path from 'node:path';
import { PGlite } from '@electric-sql/pglite';

/** The default data folder, relative to the working directory (git-ignored with the rest of .keel/). */
export const DEFAULT_EMBEDDED_DIR = path.join('.keel', 'pglite');

/** The database name in the URL: PGlite has one database, `postgres`, whatever a client asks for. */
const DATABASE = 'postgres';

const SSL_REQUEST = 80877103;
const GSSENC_REQUEST = 80877104;
const CANCEL_REQUEST = 80877102;
const PROTOCOL_3 = 196608;

/** Options of {@link startEmbeddedDatabase}. */
export interface EmbeddedOptions {
  /** Data folder (created if missing); `memory://` keeps everything in memory (tests). */
  dataDir: string;
  /** TCP port; 0 (default) lets the system pick a free one. */
  port?: number;
  host?: string;
  /** A PGlite data-folder tarball (PGlite's dumpDataDir) to start from instead of an empty database. */
  loadDataDir?: Blob;
  /** End an owner idle inside a transaction while other connections wait, after this long (default 30 s). */
  idleInTransactionMs?: number;
  /** Write the `<dataDir>.json` server file other processes find the server by (default true for folders). */
  announce?: boolean;
}

/** A running embedded database. */
export interface EmbeddedDatabase {
  /** postgresql://postgres@host:port/postgres */
  url: string;
  port: number;
  dataDir: string;
  /** The PGlite instance (for dumpDataDir in tests). */
  db: PGlite;
  /** Closes every connection (rolling back open transactions), the listener and the database. */
  stop(): Promise<void>;
}

/** What `<dataDir>.json` holds while a process serves that folder. */
export interface EmbeddedServerFile {
  pid: number;
  url: string;
  dataDir: string;
}

/** Raised when the folder is already served by another live process (two PGlites on one folder corrupt it). */
export class EmbeddedDatabaseBusy extends Error {
  override name = 'EmbeddedDatabaseBusy';
  constructor(readonly server: EmbeddedServerFile) {
    super(
      `the embedded database in ${server.dataDir} is already served by process ${server.pid}` +
        (server.url ? ` at ${server.url}` : ' (still opening it)'),
    );
  }
}

/** Where the process serving `dataDir` writes its address: next to the folder, not inside PGlite's PGDATA. */
export function serverFilePath(dataDir: string): string {
  const abs = path.resolve(dataDir);
  return path.join(path.dirname(abs), `${path.basename(abs)}.json`);
}

/**
 * The server currently serving `dataDir`, if its process is alive and its port accepts connections; a stale
 * file (a killed process) is removed.
 */
export async function findEmbeddedServer(dataDir: string): Promise<EmbeddedServerFile | undefined> {
  const file = serverFilePath(dataDir);
  let server: EmbeddedServerFile;
  try {
    server = JSON.parse(readFileSync(file, 'utf8')) as EmbeddedServerFile;
  } catch {
    return undefined;
  }
  if (!processAlive(server.pid)) {
    rmSync(file, { force: true });
    return undefined;
  }
  // A live process still opening the folder has no address yet.
  if (!server.url) return undefined;
  const url = new URL(server.url);
  return (await acceptsConnections(url.hostname, Number(url.port))) ? server : undefined;
}

/**
 * Opens (or creates: initdb takes PGlite several seconds the first time) the database in `dataDir` and
 * serves it on a local port. Resolves once the port accepts connections.
 */
export async function startEmbeddedDatabase(opts: EmbeddedOptions): Promise<EmbeddedDatabase> {
  const inMemory = opts.dataDir.startsWith('memory://');
  const dataDir = inMemory ? opts.dataDir : path.resolve(opts.dataDir);
  const announce = !inMemory && opts.announce !== false;
  const file = serverFilePath(dataDir);
  if (announce) {
    mkdirSync(dataDir, { recursive: true });
    await claim(file, dataDir);
  }
  let db: PGlite | undefined;
  const sessions: { current?: SessionScheduler } = {};
  const server = createServer((socket) => sessions.current?.attach(socket));
  const host = opts.host ?? '127.0.0.1';
  try {
    db = await PGlite.create(inMemory ? undefined : dataDir, {
      ...(opts.loadDataDir ? { loadDataDir: opts.loadDataDir } : {}),
    });
    sessions.current = new SessionScheduler(db, opts.idleInTransactionMs ?? 30_000);
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(opts.port ?? 0, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
  } catch (err) {
    await db?.close().catch(() => undefined);
    if (announce) release(file);
    throw err;
  }
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  const url = `postgresql://postgres@${host}:${port}/${DATABASE}`;
  if (announce) writeFileSync(file, `${JSON.stringify({ pid: process.pid, url, dataDir }, null, 2)}\n`);
  const scheduler = sessions.current;
  const pglite = db;

  let stopped: Promise<void> | undefined;
  return {
    url,
    port,
    dataDir,
    db: pglite,
    stop() {
      stopped ??= (async () => {
        await closeServer(server, scheduler);
        await pglite.close().catch(() => undefined);
        if (announce) release(file);
      })();
      return stopped;
    },
  };
}

/**
 * Claims the folder by creating its server file exclusively (two PGlites on one folder would corrupt it);
 * a file left by a dead process is taken over.
 */
async function claim(file: string, dataDir: string): Promise<void> {
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      writeFileSync(file, `${JSON.stringify({ pid: process.pid, url: '', dataDir }, null, 2)}\n`, { flag: 'wx' });
      return;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const holder = readServerFile(file);
    if (holder && processAlive(holder.pid)) throw new EmbeddedDatabaseBusy(holder);
    rmSync(file, { force: true });
  }
  throw new Error(`could not claim ${file}`);
}

/** Removes the server file if it is ours (a later server may have replaced it after a crash of ours). */
function release(file: string): void {
  if (existsSync(file) && readServerFile(file)?.pid === process.pid) rmSync(file, { force: true });
}

async function closeServer(server: Server, sessions: SessionScheduler): Promise<void> {
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  await sessions.closeAll();
  await closed;
}

function readServerFile(file: string): EmbeddedServerFile | undefined {
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as EmbeddedServerFile;
  } catch {
    return undefined;
  }
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** True once something accepts a TCP connection on host:port (within `timeoutMs`). */
export function acceptsConnections(host: string, port: number, timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host, port });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

/** One client connection: its unparsed bytes, its complete units waiting to run, its unit being built. */
interface Connection {
  id: number;
  socket: Socket;
  buffer: Buffer;
  started: boolean;
  /** Complete units (each a list of messages), oldest first. */
  units: Buffer[][];
  /** Messages of the extended-protocol batch not yet ended by a Sync. */
  partial: Buffer[];
  closed: boolean;
  /** When this connection last finished a unit while owning the session. */
  idleSince: number;
}

/**
 * Runs every connection's units on the one PGlite session, one connection at a time while that connection
 * is inside a transaction block or an unfinished extended-protocol batch.
 */
class SessionScheduler {
  private readonly connections = new Map<number, Connection>();
  private nextId = 1;
  private owner: Connection | undefined;
  /** Connections with units waiting, in arrival order. */
  private readonly waiting: Connection[] = [];
  private running = false;
  private idleTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly db: PGlite,
    private readonly idleInTransactionMs: number,
  ) {}

  attach(socket: Socket): void {
    const conn: Connection = {
      id: this.nextId++,
      socket,
      buffer: Buffer.alloc(0),
      started: false,
      units: [],
      partial: [],
      closed: false,
      idleSince: Date.now(),
    };
    this.connections.set(conn.id, conn);
    socket.setNoDelay(true);
    socket.on('data', (data) => this.receive(conn, data));
    socket.on('error', () => this.drop(conn));
    socket.on('close', () => this.drop(conn));
  }

  async closeAll(): Promise<void> {
    for (const conn of [...this.connections.values()]) {
      conn.socket.destroy();
      this.drop(conn);
    }
    // Let a unit in flight and the rollback of its transaction finish before the database closes.
    while (this.running) await new Promise((resolve) => setTimeout(resolve, 10));
  }

  private receive(conn: Connection, data: Buffer): void {
    conn.buffer = conn.buffer.length ? Buffer.concat([conn.buffer, data]) : data;
    for (;;) {
      if (!conn.started) {
        if (conn.buffer.length < 8) return;
        const length = conn.buffer.readInt32BE(0);
        if (conn.buffer.length < length) return;
        const code = conn.buffer.readInt32BE(4);
        const message = conn.buffer.subarray(0, length);
        conn.buffer = conn.buffer.subarray(length);
        if (code === SSL_REQUEST || code === GSSENC_REQUEST) {
          conn.socket.write('N');
        } else if (code === CANCEL_REQUEST) {
          // No backend to interrupt: a running statement finishes; the protocol expects no answer.
          conn.socket.end();
          return;
        } else if (code === PROTOCOL_3) {
          conn.started = true;
          this.enqueue(conn, [Buffer.from(message)]);
        } else {
          conn.socket.destroy();
          return;
        }
        continue;
      }
      if (conn.buffer.length < 5) return;
      const length = 1 + conn.buffer.readInt32BE(1);
      if (conn.buffer.length < length) return;
      const message = Buffer.from(conn.buffer.subarray(0, length));
      conn.buffer = conn.buffer.subarray(length);
      const type = String.fromCharCode(message[0] ?? 0);
      if (type === 'X') {
        conn.socket.end();
        return;
      }
      conn.partial.push(message);
      // Q: a simple query is a unit; S: Sync ends an extended batch; H: Flush asks for what is done so
      // far (the connection keeps the session until its Sync).
      if (type === 'Q' || type === 'S' || type === 'H') {
        this.enqueue(conn, conn.partial);
        conn.partial = [];
      }
    }
  }

  private enqueue(conn: Connection, unit: Buffer[]): void {
    conn.units.push(unit);
    if (!this.waiting.includes(conn)) this.waiting.push(conn);
    void this.pump();
  }

  private drop(conn: Connection): void {
    if (conn.closed) return;
    conn.closed = true;
    conn.units = [];
    conn.partial = [];
    this.connections.delete(conn.id);
    const i = this.waiting.indexOf(conn);
    if (i >= 0) this.waiting.splice(i, 1);
    void this.pump();
  }

  /** Runs units while there are any the session may run now. Never throws: one failure ends one connection. */
  private async pump(): Promise<void> {
    if (this.running) return;
    this.running = true;
    try {
      for (;;) {
        if (this.owner?.closed) await this.release(this.owner);
        const conn = this.owner ?? this.waiting.find((c) => c.units.length > 0);
        const unit = conn?.units.shift();
        if (!conn || !unit) break;
        if (conn.units.length === 0) {
          const i = this.waiting.indexOf(conn);
          if (i >= 0) this.waiting.splice(i, 1);
        }
        this.owner = conn;
        try {
          for (const message of unit) {
            await this.db.execProtocolRawStream(new Uint8Array(message), {
              onRawData: (data) => {
                if (!conn.closed && conn.socket.writable) conn.socket.write(Buffer.from(data));
              },
            });
          }
        } catch (err) {
          // PGlite refused a message outright (it answers SQL errors itself): end this client only.
          process.stderr.write(`[embedded-db] connection ${conn.id}: ${(err as Error).message}\n`);
          conn.socket.destroy();
          this.drop(conn);
        }
        if (conn.closed) {
          // It went away during its unit: its transaction must not become the next client's.
          await this.release(conn);
          continue;
        }
        const lastType = String.fromCharCode(unit.at(-1)?.[0] ?? 0);
        const midBatch = lastType === 'H' || conn.partial.length > 0;
        if (midBatch || this.db.isInTransaction()) {
          conn.idleSince = Date.now();
          if (conn.units.length === 0) {
            this.watchIdleOwner();
            break;
          }
        } else {
          this.owner = undefined;
        }
      }
    } finally {
      this.running = false;
    }
    if (this.owner?.closed) void this.pump();
  }

  /** Finishes a departed owner's batch and rolls back its transaction, so the session is clean again. */
  private async release(conn: Connection): Promise<void> {
    this.owner = undefined;
    try {
      await this.db.execProtocolRaw(syncMessage());
      if (this.db.isInTransaction()) await this.db.exec('ROLLBACK');
    } catch (err) {
      process.stderr.write(`[embedded-db] cleaning up after connection ${conn.id}: ${(err as Error).message}\n`);
    }
  }

  private watchIdleOwner(): void {
    clearTimeout(this.idleTimer);
    this.idleTimer = setTimeout(() => {
      const owner = this.owner;
      if (!owner || owner.closed || owner.units.length > 0 || this.running) return;
      if (!this.waiting.some((c) => c.units.length > 0)) return this.watchIdleOwner();
      if (Date.now() - owner.idleSince < this.idleInTransactionMs) return this.watchIdleOwner();
      process.stderr.write(
        `[embedded-db] connection ${owner.id} idle in a transaction for ${this.idleInTransactionMs} ms while others wait: ending it\n`,
      );
      owner.socket.end(fatal('25P03', 'terminating connection due to idle-in-transaction timeout (embedded database)'));
      this.drop(owner);
    }, this.idleInTransactionMs);
    this.idleTimer.unref();
  }
}

function syncMessage(): Uint8Array {
  const message = Buffer.alloc(5);
  message.write('S', 0);
  message.writeInt32BE(4, 1);
  return new Uint8Array(message);
}

/** An ErrorResponse with severity FATAL, as PostgreSQL sends before it closes a connection. */
function fatal(code: string, text: string): Buffer {
  const fields = Buffer.concat(
    [
      ['S', 'FATAL'],
      ['V', 'FATAL'],
      ['C', code],
      ['M', text],
    ].map(([k, v]) => Buffer.from(`${k}${v}\0`, 'utf8')),
  );
  const body = Buffer.concat([fields, Buffer.from([0])]);
  const header = Buffer.alloc(5);
  header.write('E', 0);
  header.writeInt32BE(body.length + 4, 1);
  return Buffer.concat([header, body]);
}
