/**
 * `npm run bench:memory [-- --sizes 1000,10000,100000 --queries 200 --dims 384]`
 *
 * The embedded vector store (PostgreSQL memory_items + exact WASM index) at
 * growing sizes, in a scratch database `keel_bench_mem_<random>` on the
 * server named by KEEL_BENCH_PG (default: local postgres), dropped at the end.
 * Vectors are seeded random unit vectors, so runs are comparable.
 *
 * Per size it measures:
 *   - ingest items/s: multi-row INSERTs into memory_items (1000 rows per
 *     statement, as the memory service writes them) followed by
 *     store.upsert() of the batch, which catches the index up from the table;
 *   - load ms: a second, cold store instance's init() over the same table;
 *   - search p50/p95/max ms over `--queries` queries (k = 10), each a full
 *     store.search(): the catch-up query against PostgreSQL plus the scan;
 *   - recall@10 against a brute-force float64 top-10 computed in plain JS in
 *     this run, from the same vectors;
 *   - process RSS and the index's WebAssembly memory after the size is reached.
 * RSS includes the benchmark's own copy of every vector (for brute force).
 * Targets: recall@10 = 1.0 and search p95 at 100k < 30 ms.
 */
import { prng } from '../lib/prng';
import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import { Client as PgClient } from 'pg';
import { createEmbeddedStore, type EmbeddedVectorStore } from '../memory/embedded-store';
import { MEMORY_KINDS } from '../memory/types';
import { migrate } from '../db/migrations';
import { createPrisma, type Db } from '../db/prisma';

const INSERT_BATCH = 1000;
const K = 10;
const WARMUP_QUERIES = 20;

/** A random unit vector written into `out` at `offset` (normal components, so directions are uniform). */
function unitVectorInto(rand: () => number, out: Float32Array, offset: number, dims: number): void {
  let norm = 0;
  for (let d = 0; d < dims; d++) {
    const g = Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());
    out[offset + d] = g;
    norm += g * g;
  }
  const s = 1 / Math.sqrt(norm);
  for (let d = 0; d < dims; d++) out[offset + d] *= s;
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}

function idOf(i: number): string {
  // Same shape as the memory service's ids (UUID text); deterministic per row number.
  const hex = i.toString(16).padStart(12, '0');
  return `00000000-0000-4000-8000-${hex}`;
}

/** Inserts rows [from, to) of `vectors` into memory_items, INSERT_BATCH per statement, telling the store after each. */
async function ingest(
  prisma: Db,
  store: EmbeddedVectorStore,
  vectors: Float32Array,
  dims: number,
  from: number,
  to: number,
) {
  const rand = prng(from + 7);
  for (let start = from; start < to; start += INSERT_BATCH) {
    const end = Math.min(to, start + INSERT_BATCH);
    const ids: string[] = [];
    const kinds: string[] = [];
    const occurred: string[] = [];
    const embeddings: string[] = [];
    for (let i = start; i < end; i++) {
      ids.push(idOf(i));
      kinds.push(MEMORY_KINDS[Math.floor(rand() * MEMORY_KINDS.length)]);
      occurred.push(new Date(Date.UTC(2025, 0, 1) + Math.floor(rand() * 365) * 86_400_000).toISOString());
      embeddings.push(Buffer.from(vectors.buffer, i * dims * 4, dims * 4).toString('base64'));
    }
    await prisma.$executeRawUnsafe(
      `INSERT INTO memory_items (id, text, kind, source, occurred_at, embedding, embedding_model)
       SELECT u.id, 'bench memory ' || u.id, u.kind, 'agent', u.occurred_at, decode(u.embedding, 'base64'), 'bench-random'
       FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::text[]) AS u(id, kind, occurred_at, embedding)`,
      ids,
      kinds,
      occurred,
      embeddings,
    );
    // What the memory service does after its transaction: tell the store (which reads the rows back).
    await store.upsert(
      ids.map((id, j) => ({
        id,
        vector: vectors.subarray((start + j) * dims, (start + j + 1) * dims),
        payload: { kind: 'semantic', subject: null, occurredAt: 0, tier: 'hot', superseded: false },
      })),
    );
  }
}

/** Exact top-k ids by float64 dot product over the first `n` rows (vectors are unit length). */
function bruteForceTopK(vectors: Float32Array, n: number, dims: number, q: Float32Array, k: number): string[] {
  const best: { i: number; s: number }[] = [];
  for (let i = 0; i < n; i++) {
    let s = 0;
    const base = i * dims;
    for (let d = 0; d < dims; d++) s += vectors[base + d] * q[d];
    if (best.length < k || s > best[best.length - 1].s) {
      best.push({ i, s });
      best.sort((a, b) => b.s - a.s || a.i - b.i);
      if (best.length > k) best.pop();
    }
  }
  return best.map((b) => idOf(b.i));
}

interface Row {
  size: number;
  ingestPerSec: number;
  loadMs: number;
  p50: number;
  p95: number;
  max: number;
  recall: number;
  rssMb: number;
  indexMb: number;
}

async function run() {
  const { values } = parseArgs({
    options: {
      sizes: { type: 'string', default: '1000,10000,100000' },
      queries: { type: 'string', default: '200' },
      dims: { type: 'string', default: '384' },
    },
  });
  const sizes = values.sizes.split(',').map(Number);
  const queryCount = Number(values.queries);
  const dims = Number(values.dims);
  if (sizes.some((s, i) => !(s > 0) || (i > 0 && s <= sizes[i - 1]))) {
    throw new Error('--sizes must be increasing positive numbers');
  }
  if (!(queryCount > 0 && dims > 0)) throw new Error('--queries and --dims must be positive');
  const maxSize = sizes[sizes.length - 1];

  const serverUrl = process.env.KEEL_BENCH_PG ?? 'postgresql://postgres@127.0.0.1:5432/postgres';
  const dbName = `keel_bench_mem_${randomBytes(4).toString('hex')}`;
  const admin = new PgClient({ connectionString: serverUrl, application_name: 'keel-bench-admin' });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${dbName}`);
  const url = new URL(serverUrl);
  url.pathname = `/${dbName}`;
  const dbUrl = url.toString();

  const prisma = createPrisma(dbUrl, { max: 4 });
  const rows: Row[] = [];
  try {
    await migrate(dbUrl);
    process.stdout.write(
      `scratch database ${dbName}; ${dims}-dim random unit vectors; ${queryCount} queries, k=${K}\n`,
    );

    const rand = prng(42);
    const vectors = new Float32Array(maxSize * dims);
    for (let i = 0; i < maxSize; i++) unitVectorInto(rand, vectors, i * dims, dims);
    const queries = Array.from({ length: queryCount + WARMUP_QUERIES }, () => {
      const q = new Float32Array(dims);
      unitVectorInto(rand, q, 0, dims);
      return q;
    });

    const store = createEmbeddedStore({ prisma, dims });
    await store.init();
    let have = 0;
    for (const size of sizes) {
      const t0 = performance.now();
      await ingest(prisma, store, vectors, dims, have, size);
      const ingestMs = performance.now() - t0;
      const ingestPerSec = ((size - have) / ingestMs) * 1000;
      have = size;

      // A cold instance over the same table: what a newly started worker pays.
      const coldPrisma = createPrisma(dbUrl, { max: 2 });
      const cold = createEmbeddedStore({ prisma: coldPrisma, dims });
      const l0 = performance.now();
      await cold.init();
      const loadMs = performance.now() - l0;
      if (cold.stats().points !== size)
        throw new Error(`cold load found ${cold.stats().points} points, expected ${size}`);
      await cold.close();
      await coldPrisma.$disconnect();

      for (const q of queries.slice(0, WARMUP_QUERIES)) await store.search({ vector: q, k: K });
      // Timed searches back to back; brute force afterwards, so its work
      // (and garbage) does not land inside the measured intervals.
      const latencies: number[] = [];
      const results: string[][] = [];
      for (const q of queries.slice(WARMUP_QUERIES)) {
        const s0 = performance.now();
        const hits = await store.search({ vector: q, k: K });
        latencies.push(performance.now() - s0);
        results.push(hits.map((h) => h.id));
      }
      let recallSum = 0;
      queries.slice(WARMUP_QUERIES).forEach((q, i) => {
        const truth = new Set(bruteForceTopK(vectors, size, dims, q, K));
        recallSum += results[i].filter((id) => truth.has(id)).length / K;
      });
      latencies.sort((a, b) => a - b);
      const row: Row = {
        size,
        ingestPerSec,
        loadMs,
        p50: percentile(latencies, 50),
        p95: percentile(latencies, 95),
        max: latencies[latencies.length - 1],
        recall: recallSum / queryCount,
        rssMb: process.memoryUsage().rss / 2 ** 20,
        indexMb: store.stats().indexBytes / 2 ** 20,
      };
      rows.push(row);
      process.stdout.write(
        `  ${size}: ingest ${row.ingestPerSec.toFixed(0)}/s, load ${row.loadMs.toFixed(0)} ms, ` +
          `search p50 ${row.p50.toFixed(2)} ms p95 ${row.p95.toFixed(2)} ms, recall@10 ${row.recall.toFixed(4)}\n`,
      );
    }
    const stats = store.stats();
    await store.close();

    const header = ['items', 'ingest/s', 'load ms', 'p50 ms', 'p95 ms', 'max ms', 'recall@10', 'RSS MB', 'index MB'];
    const table = rows.map((r) => [
      String(r.size),
      r.ingestPerSec.toFixed(0),
      r.loadMs.toFixed(0),
      r.p50.toFixed(2),
      r.p95.toFixed(2),
      r.max.toFixed(2),
      r.recall.toFixed(4),
      r.rssMb.toFixed(0),
      r.indexMb.toFixed(0),
    ]);
    const widths = header.map((h, i) => Math.max(h.length, ...table.map((t) => t[i].length)));
    const line = (cells: string[]) => cells.map((c, i) => c.padStart(widths[i])).join('  ');
    process.stdout.write(`\n${line(header)}\n${table.map(line).join('\n')}\n`);
    process.stdout.write(
      `(drift checks repaired ${stats.repairs} time(s); RSS includes the benchmark's own ${((maxSize * dims * 4) / 2 ** 20).toFixed(0)} MB copy of the vectors)\n\n`,
    );

    const minRecall = Math.min(...rows.map((r) => r.recall));
    const largest = rows[rows.length - 1];
    const recallOk = minRecall === 1;
    process.stdout.write(`recall@10 = 1.0: ${recallOk ? 'met' : 'NOT met'} (lowest ${minRecall.toFixed(4)})\n`);
    if (largest.size >= 100_000) {
      const p95Ok = largest.p95 < 30;
      process.stdout.write(
        `search p95 at ${largest.size / 1000}k < 30 ms: ${p95Ok ? 'met' : 'NOT met'} (${largest.p95.toFixed(2)} ms)\n`,
      );
      if (!p95Ok) process.exitCode = 1;
    } else {
      process.stdout.write(`search p95 at 100k < 30 ms: not measured (largest size ${largest.size})\n`);
    }
    if (!recallOk) process.exitCode = 1;
  } finally {
    await prisma.$disconnect().catch(() => undefined);
    await admin.query(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`).catch(() => undefined);
    await admin.end();
  }
}

run().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exitCode = 1;
});
