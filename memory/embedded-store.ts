import type { Db } from '../db/prisma';
import { ExactIndex } from './exact-index';
import { decodeFloat32LE } from './vectors';
import type { MemoryKind, MemoryTier, PointPayload, VectorFilter, VectorHit, VectorPoint, VectorStore } from './types';

/*
 * The embedded VectorStore: vectors stay in PostgreSQL (memory_items.embedding,
 * float32 little-endian BYTEA) and each process keeps an exact in-memory
 * index of them (exact-index.ts).
 *
 * Ownership. memory_items is the one source of truth, and this adapter never
 * writes it: the memory service inserts and updates memory rows itself, in
 * one transaction with the rest of its data, which an adapter call could not
 * join. So the mutators here are notifications, not writes:
 *   - upsert(points) and setPayload(ids, …) catch the index up with
 *     memory_items (the caller has committed the rows already); the vectors
 *     and payloads passed in are only checked (dimensions), never trusted
 *     over the table. A point whose row does not exist is not indexed.
 *   - delete(ids) drops from the index those of `ids` whose rows are gone
 *     from memory_items; an id whose row still exists stays searchable.
 * Exactly one path leads into the index — rows read from memory_items — so
 * a rolled-back transaction can never leave a phantom point behind, and
 * every process converges on the same state.
 *
 * Keeping up with other processes. Every insert and update of a row takes a
 * new `rev` (BIGSERIAL default on insert, trigger on update). Before each
 * search and count the store reads the rows with rev > cursor in one
 * indexed query, so another process's committed writes are visible at once.
 * Two cases a rev cursor alone would miss are handled as follows:
 *   - A writer may take rev r, and commit after someone else's r' > r was
 *     already read. The cursor therefore only advances past revs once every
 *     transaction that was running when they were read has ended (snapshot
 *     xmin/xmax), and rows between cursor and the newest rev read are read
 *     again until then (cheap: usually none). Past HOLDBACK_ROWS of them (a
 *     long transaction somewhere holds xmin back) the cursor moves on, and
 *     the drift check below runs within a second to catch such a late row.
 *     (A writer caught between taking its rev and being assigned a
 *     transaction id, microseconds inside one statement, is invisible to
 *     xmin/xmax too; the drift check is the backstop for that as well.)
 *   - Deletes leave no row to read. delete() handles this process's own;
 *     for other processes' deletes (and as a backstop for anything else) a
 *     background check compares (count, sum of rev) of memory_items with the
 *     index every `verifyIntervalMs` and repairs any difference. It starts
 *     after a read has returned instead of delaying that read (only a read
 *     arriving while it runs waits for it): counting a large table that
 *     autovacuum has not visited yet can take a few hundred ms.
 */

/** Options of createEmbeddedStore. */
export interface EmbeddedStoreOptions {
  prisma: Db;
  /** Vector length; rows whose embedding has another length are not indexed (counted in stats().skipped). */
  dims: number;
  /** Rows per catch-up query; default 5000. */
  pageSize?: number;
  /**
   * Minimum milliseconds between background drift checks (count and rev sum
   * of memory_items against the index), which is how deletes by other
   * processes are noticed. Default 10 000; 0 checks after every read.
   */
  verifyIntervalMs?: number;
}

/** What the embedded store reports about itself. */
export interface EmbeddedStoreStats {
  /** Points in the index. */
  points: number;
  /** Bytes of WebAssembly memory the index holds (vectors, query and scratch). */
  indexBytes: number;
  /** Rows of memory_items that cannot be indexed (embedding of another length, or NaN/Infinity in it). */
  skipped: number;
  /** Every rev up to this one is applied and final. */
  cursor: bigint;
  /** Newest rev applied. */
  appliedRev: bigint;
  /** Times a drift check found the index differing from memory_items and repaired it. */
  repairs: number;
  /** The last background drift check's failure, if it failed (the next one retries). */
  lastVerifyError: string | null;
}

/** The embedded VectorStore plus the catch-up controls tests and the memory service may use. */
export interface EmbeddedVectorStore extends VectorStore {
  readonly name: 'embedded';
  /** Applies every committed change to memory_items; what search and count do first. */
  sync(): Promise<void>;
  /** Compares the index with memory_items (count and sum of rev) now and repairs any drift; true if it found some. */
  verify(): Promise<boolean>;
  stats(): EmbeddedStoreStats;
}

/** One memory_items row as the catch-up query returns it. */
interface ItemRow {
  id: string;
  kind: string;
  subject: string | null;
  tier: string;
  superseded: boolean;
  occurred_ms: number;
  embedding: Uint8Array;
  rev: bigint;
}

/** A catch-up page: the snapshot it was read in, and (optionally) the table's fingerprint in that snapshot. */
interface PageRow extends Partial<ItemRow> {
  snap_xmin: string;
  snap_xmax: string;
  total?: bigint;
  rev_sum?: string;
}

/** Rows re-read after the newest rev while older writers may still commit; past this the cursor moves on and the drift check covers the rest. */
const HOLDBACK_ROWS = 1000;
/** After the cursor skipped ahead (see HOLDBACK_ROWS), the drift check runs within this long, not a full interval. */
const FORCED_VERIFY_DELAY_MS = 1000;

// The snapshot functions run in the same statement as the read, so xmin/xmax
// describe exactly the snapshot the rows came from.
const ITEM_COLUMNS = `id, kind, subject, tier, superseded_by IS NOT NULL AS superseded,
  (extract(epoch FROM occurred_at) * 1000)::float8 AS occurred_ms, embedding, rev`;

function pageSql(withFingerprint: boolean): string {
  const fingerprint = withFingerprint
    ? `, (SELECT count(*) FROM memory_items) AS total, (SELECT coalesce(sum(rev), 0) FROM memory_items)::text AS rev_sum`
    : '';
  return `SELECT pg_snapshot_xmin(s.snap)::text AS snap_xmin, pg_snapshot_xmax(s.snap)::text AS snap_xmax${fingerprint}, m.*
    FROM (SELECT pg_current_snapshot() AS snap) s
    LEFT JOIN LATERAL (
      SELECT ${ITEM_COLUMNS} FROM memory_items WHERE rev > $1 ORDER BY rev LIMIT $2
    ) m ON true`;
}

/**
 * Creates the embedded VectorStore over `memory_items`. init() loads every
 * row; afterwards each search/count first applies what changed since (see
 * the file comment for the ownership rules: this store never writes
 * memory_items). The caller owns `prisma` (close() does not disconnect it).
 */
export function createEmbeddedStore(opts: EmbeddedStoreOptions): EmbeddedVectorStore {
  const { prisma, dims } = opts;
  const pageSize = opts.pageSize ?? 5000;
  const verifyIntervalMs = opts.verifyIntervalMs ?? 10_000;
  if (!Number.isInteger(dims) || dims <= 0) throw new RangeError(`dims must be a positive integer, got ${dims}`);
  if (!Number.isInteger(pageSize) || pageSize <= 0) throw new RangeError(`pageSize must be a positive integer`);

  const index = new ExactIndex(dims);
  // rev of every row this process has applied, indexed or skipped: the
  // reconciliation's reference and the index's half of the fingerprint.
  const revOf = new Map<string, bigint>();
  const skipped = new Set<string>();
  let revSum = 0n;
  let cursor = 0n;
  let appliedRev = 0n;
  // Reads not yet final: after read i, revs ≤ rev are final once every
  // transaction with an xid below xmax (running or not yet started then) has ended.
  let checkpoints: { rev: bigint; xmax: bigint; rows: number }[] = [];
  let repairs = 0;
  // The first drift check waits a full interval: init() has just read everything.
  let nextVerifyAt = Date.now() + verifyIntervalMs;
  let lastVerifyError: string | null = null;
  let backgroundVerify: Promise<void> | null = null;
  let closed = false;

  // All index mutations run one at a time, in call order, on this lane.
  let lane: Promise<unknown> = Promise.resolve();
  let queuedSync: Promise<void> | null = null;

  function exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = lane.catch(() => undefined).then(fn);
    lane = run;
    return run;
  }

  function sync(): Promise<void> {
    // A sync that has not started yet will see every write committed before
    // this call, so callers arriving meanwhile share it; one already running
    // may have read before such a write, so a new one queues behind it.
    if (queuedSync) return queuedSync;
    const run = exclusive(async () => {
      queuedSync = null;
      await catchUp(false);
    });
    queuedSync = run;
    return run;
  }

  function forget(id: string): void {
    const old = revOf.get(id);
    if (old !== undefined) revSum -= old;
    revOf.delete(id);
    skipped.delete(id);
    index.delete(id);
  }

  function apply(row: ItemRow): void {
    const old = revOf.get(row.id);
    if (old === row.rev) return; // re-read inside the hold-back window: unchanged
    if (old !== undefined) revSum -= old;
    revOf.set(row.id, row.rev);
    revSum += row.rev;
    const vector = decodeFloat32LE(row.embedding, dims);
    const payload: PointPayload = {
      kind: row.kind as MemoryKind,
      subject: row.subject,
      occurredAt: row.occurred_ms,
      tier: row.tier as MemoryTier,
      superseded: row.superseded,
    };
    try {
      if (vector === undefined) throw new RangeError('embedding has another length');
      index.upsert(row.id, vector, payload);
      skipped.delete(row.id);
    } catch {
      // One unusable row (wrong length, NaN) must not stop every search; it stays counted.
      index.delete(row.id);
      skipped.add(row.id);
    }
  }

  async function readPage(after: bigint, withFingerprint: boolean): Promise<PageRow[]> {
    return prisma.$queryRawUnsafe<PageRow[]>(pageSql(withFingerprint), after, pageSize);
  }

  /** Applies rows with rev > cursor; with `wantFingerprint`, also returns the table's fingerprint. */
  async function catchUp(wantFingerprint: boolean): Promise<{ total: bigint; revSum: bigint } | null> {
    const startApplied = appliedRev;
    let after = cursor;
    let fresh = 0;
    let xmin = 0n;
    let xmax = 0n;
    let fingerprint: { total: bigint; revSum: bigint } | null = null;
    let withFingerprint = wantFingerprint;
    for (;;) {
      const page = await readPage(after, withFingerprint);
      const head = page[0];
      if (head === undefined) throw new Error('catch-up query returned no row');
      xmin = BigInt(head.snap_xmin);
      xmax = BigInt(head.snap_xmax);
      let items = 0;
      for (const r of page) {
        if (r.id == null) continue; // the LEFT JOIN's row when nothing changed
        const row = r as ItemRow;
        apply(row);
        items++;
        if (row.rev > startApplied) fresh++;
        if (row.rev > after) after = row.rev;
      }
      if (items === pageSize) {
        // More may follow. The fingerprint must come from the statement that
        // reads the last rows, so ask for it again only then.
        withFingerprint = false;
        continue;
      }
      if (wantFingerprint && !withFingerprint) {
        withFingerprint = true;
        continue;
      }
      if (withFingerprint) fingerprint = { total: BigInt(head.total ?? 0n), revSum: BigInt(head.rev_sum ?? '0') };
      break;
    }
    if (after > appliedRev) appliedRev = after;
    checkpoints.push({ rev: appliedRev, xmax, rows: fresh });
    // Everything read by a snapshot whose running transactions have all ended is final.
    while (checkpoints.length > 0 && checkpoints[0]!.xmax <= xmin) cursor = checkpoints.shift()!.rev;
    if (checkpoints.reduce((n, c) => n + c.rows, 0) > HOLDBACK_ROWS) {
      // A long transaction somewhere holds xmin back: rather than re-read an
      // ever larger window, move on and let the drift check (soon) catch a
      // late commit, which shows in the rev sum.
      cursor = appliedRev;
      checkpoints = [];
      nextVerifyAt = Math.min(nextVerifyAt, Date.now() + FORCED_VERIFY_DELAY_MS);
    }
    return fingerprint;
  }

  /** Full comparison by id and rev; brings the index to the table's state. */
  async function reconcile(): Promise<void> {
    const rows = await prisma.$queryRawUnsafe<{ id: string; rev: bigint }[]>('SELECT id, rev FROM memory_items');
    const dbRev = new Map<string, bigint>();
    for (const r of rows) dbRev.set(r.id, r.rev);
    for (const id of [...revOf.keys()]) if (!dbRev.has(id)) forget(id);
    const stale: string[] = [];
    for (const [id, rev] of dbRev) if (revOf.get(id) !== rev) stale.push(id);
    for (let i = 0; i < stale.length; i += pageSize) {
      const chunk = stale.slice(i, i + pageSize);
      const fetched = await prisma.$queryRawUnsafe<ItemRow[]>(
        `SELECT ${ITEM_COLUMNS} FROM memory_items WHERE id = ANY($1::text[])`,
        chunk,
      );
      for (const r of fetched) apply(r);
      // A row deleted between the two queries is gone now too.
      const got = new Set(fetched.map((r) => r.id));
      for (const id of chunk) if (!got.has(id)) forget(id);
    }
  }

  async function checkDrift(): Promise<boolean> {
    const fp = await catchUp(true);
    nextVerifyAt = Date.now() + verifyIntervalMs;
    if (fp === null) return false;
    if (fp.total === BigInt(revOf.size) && fp.revSum === revSum) return false;
    await reconcile();
    repairs++;
    return true;
  }

  function maybeVerifyInBackground(): void {
    if (closed || backgroundVerify !== null || Date.now() < nextVerifyAt) return;
    // Not awaited by the reader: the check costs a count over the table,
    // which must not land on a search's latency.
    backgroundVerify = exclusive(checkDrift)
      .then(
        () => {
          lastVerifyError = null;
        },
        (err: unknown) => {
          lastVerifyError = err instanceof Error ? err.message : String(err);
          nextVerifyAt = Date.now() + verifyIntervalMs;
        },
      )
      .finally(() => {
        backgroundVerify = null;
      });
  }

  function assertOpen(): void {
    if (closed) throw new Error('embedded vector store is closed');
  }

  async function ready(): Promise<void> {
    assertOpen();
    await sync();
  }

  return {
    name: 'embedded',
    dims,

    async init() {
      await ready();
    },

    async upsert(points: VectorPoint[]) {
      for (const p of points) {
        if (p.vector.length !== dims) {
          throw new RangeError(`vector of ${p.id} has ${p.vector.length} dimensions, the store has ${dims}`);
        }
      }
      await ready();
    },

    async setPayload(_ids: string[], _payload: Partial<PointPayload>) {
      await ready();
    },

    async delete(ids: string[]) {
      assertOpen();
      if (ids.length > 0) {
        await exclusive(async () => {
          const present = await prisma.$queryRawUnsafe<{ id: string }[]>(
            'SELECT id FROM memory_items WHERE id = ANY($1::text[])',
            ids,
          );
          const keep = new Set(present.map((r) => r.id));
          for (const id of ids) if (!keep.has(id)) forget(id);
        });
      }
      await sync();
    },

    async search(query: { vector: Float32Array; k: number; filter?: VectorFilter }): Promise<VectorHit[]> {
      await ready();
      const hits = index.search(query.vector, query.k, query.filter);
      maybeVerifyInBackground();
      return hits;
    },

    async count(filter?: VectorFilter) {
      await ready();
      const n = index.count(filter);
      maybeVerifyInBackground();
      return n;
    },

    sync: ready,

    async verify() {
      assertOpen();
      return exclusive(checkDrift);
    },

    stats() {
      return {
        points: index.size,
        indexBytes: index.memoryBytes,
        skipped: skipped.size,
        cursor,
        appliedRev,
        repairs,
        lastVerifyError,
      };
    },

    async close() {
      closed = true;
      await lane.catch(() => undefined);
      await backgroundVerify;
    },
  };
}
