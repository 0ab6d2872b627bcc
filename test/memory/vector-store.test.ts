/**
 * Runs the VectorStore contract against every adapter:
 *   - embedded, over a fresh migrated database per case;
 *   - qdrant, through the real @qdrant/js-client-rest against the REST
 *     stand-in (always), and against a real server when QDRANT_URL is set.
 * Then what only one adapter promises: the embedded store seeing other
 * processes' writes without a reload, and the Qdrant adapter's requests.
 */
import { randomBytes } from 'node:crypto';
import { QdrantClient } from '@qdrant/js-client-rest';
import { Client } from 'pg';
import { createEmbeddedStore, type EmbeddedVectorStore } from '../../memory/embedded-store';
import { createQdrantStore } from '../../memory/qdrant-store';
import type { PointPayload, VectorPoint, VectorStore } from '../../memory/types';
import { createPrisma, type Db } from '../../db/prisma';
import { createTestDatabase, TEST_DATABASE, type TestDatabase } from '../helpers/db';
import { startQdrantStandin, type QdrantStandin } from '../helpers/qdrant-standin';
import {
  CONTRACT_DIMS,
  bruteForce,
  expectSameHits,
  prng,
  randomPoints,
  runVectorStoreContract,
  unitVector,
  uuidFrom,
  type ContractBacking,
} from './vector-store.contract';

/**
 * Writes memory_items rows the way the memory service does before it tells
 * the embedded store: the store reads vectors and payloads from there.
 */
function memoryItemsBacking(prisma: Db): ContractBacking {
  return {
    async upsert(points: VectorPoint[]) {
      for (let i = 0; i < points.length; i += 500) {
        const batch = points.slice(i, i + 500);
        await prisma.$executeRawUnsafe(
          `INSERT INTO memory_items (id, text, kind, subject, source, occurred_at, tier, superseded_by, embedding, embedding_model)
           SELECT u.id, 'contract', u.kind, u.subject, 'agent', u.occurred_at, u.tier,
                  CASE WHEN u.superseded THEN 'superseded-in-test' END, decode(u.embedding, 'base64'), 'test'
           FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[], $5::text[], $6::bool[], $7::text[])
             AS u(id, kind, subject, occurred_at, tier, superseded, embedding)
           ON CONFLICT (id) DO UPDATE SET kind = EXCLUDED.kind, subject = EXCLUDED.subject,
             occurred_at = EXCLUDED.occurred_at, tier = EXCLUDED.tier, superseded_by = EXCLUDED.superseded_by,
             embedding = EXCLUDED.embedding`,
          batch.map((p) => p.id),
          batch.map((p) => p.payload.kind),
          batch.map((p) => p.payload.subject),
          batch.map((p) => new Date(p.payload.occurredAt).toISOString()),
          batch.map((p) => p.payload.tier),
          batch.map((p) => p.payload.superseded),
          batch.map((p) => Buffer.from(p.vector.buffer, p.vector.byteOffset, p.vector.byteLength).toString('base64')),
        );
      }
    },
    async setPayload(ids: string[], payload: Partial<PointPayload>) {
      const sets: string[] = [];
      const values: unknown[] = [ids];
      const param = (v: unknown) => {
        values.push(v);
        return `$${values.length}`;
      };
      if (payload.kind !== undefined) sets.push(`kind = ${param(payload.kind)}`);
      if (payload.subject !== undefined) sets.push(`subject = ${param(payload.subject)}`);
      if (payload.tier !== undefined) sets.push(`tier = ${param(payload.tier)}`);
      if (payload.occurredAt !== undefined) {
        sets.push(`occurred_at = ${param(new Date(payload.occurredAt).toISOString())}::timestamptz`);
      }
      if (payload.superseded !== undefined) {
        sets.push(`superseded_by = ${payload.superseded ? `'superseded-in-test'` : 'NULL'}`);
      }
      if (sets.length === 0) return;
      await prisma.$executeRawUnsafe(
        `UPDATE memory_items SET ${sets.join(', ')} WHERE id = ANY($1::text[])`,
        ...values,
      );
    },
    async delete(ids: string[]) {
      await prisma.$executeRawUnsafe('DELETE FROM memory_items WHERE id = ANY($1::text[])', ids);
    },
  };
}

runVectorStoreContract('embedded store (PostgreSQL + exact WASM index)', async () => {
  const db = await createTestDatabase();
  const opened: { store: VectorStore; prisma?: Db }[] = [];
  const store = createEmbeddedStore({ prisma: db.prisma, dims: CONTRACT_DIMS });
  opened.push({ store });
  return {
    store,
    backing: memoryItemsBacking(db.prisma),
    async reopen() {
      // Its own connection pool, as another process would have.
      const prisma = createPrisma(db.url, { max: 2 });
      const again = createEmbeddedStore({ prisma, dims: CONTRACT_DIMS });
      opened.push({ store: again, prisma });
      return again;
    },
    async cleanup() {
      for (const o of opened) {
        await o.store.close();
        await o.prisma?.$disconnect();
      }
      await db.drop();
    },
  };
});

runVectorStoreContract('qdrant store via the Qdrant REST stand-in', async () => {
  const standin = await startQdrantStandin();
  const collection = `keel_contract_${randomBytes(4).toString('hex')}`;
  // exact: true as in the real-server run; the stand-in is exact either way but checks the parameter.
  const open = () => createQdrantStore({ url: standin.url, collection, dims: CONTRACT_DIMS, exact: true });
  return qdrantHarness(open, () => standin.close());
});

/** The contract's harness for Qdrant stores: every store opened is closed, then `afterClose` tidies up. */
function qdrantHarness(open: () => VectorStore, afterClose: () => Promise<void>) {
  const opened = [open()];
  return {
    store: opened[0]!,
    async reopen() {
      const again = open();
      opened.push(again);
      return again;
    },
    async cleanup() {
      for (const s of opened) await s.close();
      await afterClose();
    },
  };
}

const QDRANT_URL = process.env.QDRANT_URL;
if (QDRANT_URL) {
  runVectorStoreContract(`qdrant store against the real server at QDRANT_URL`, async () => {
    const collection = `keel_contract_${randomBytes(4).toString('hex')}`;
    const apiKey = process.env.QDRANT_API_KEY;
    const open = () =>
      createQdrantStore({
        url: QDRANT_URL,
        ...(apiKey ? { apiKey } : {}),
        collection,
        dims: CONTRACT_DIMS,
        exact: true,
      });
    return qdrantHarness(open, async () => {
      const client = new QdrantClient({ url: QDRANT_URL, ...(apiKey ? { apiKey } : {}), checkCompatibility: false });
      await client.deleteCollection(collection);
    });
  });
} else {
  describe.skip('qdrant store against a real server: skipped because QDRANT_URL is not set', () => {
    it('runs the VectorStore contract against the Qdrant server at QDRANT_URL', () => undefined);
  });
}

/**
 * Two transactions open at once: a server PostgreSQL only. The embedded database runs one transaction at a
 * time (db/embedded.ts), so the second writer waits for the first and the interleaving cannot happen there.
 */
const concurrentTransactions = TEST_DATABASE === 'embedded' ? it.skip : it;

describe('embedded store: other processes write memory_items', () => {
  let db: TestDatabase;
  let writerPrisma: Db;
  let reader: EmbeddedVectorStore;
  let writer: EmbeddedVectorStore;
  let backing: ContractBacking;
  const rand = prng(101);

  beforeEach(async () => {
    db = await createTestDatabase();
    writerPrisma = createPrisma(db.url, { max: 2 });
    backing = memoryItemsBacking(writerPrisma);
    reader = createEmbeddedStore({ prisma: db.prisma, dims: CONTRACT_DIMS });
    writer = createEmbeddedStore({ prisma: writerPrisma, dims: CONTRACT_DIMS });
    await reader.init();
    await writer.init();
  });

  afterEach(async () => {
    await reader.close();
    await writer.close();
    await writerPrisma.$disconnect();
    await db.drop();
  });

  it('sees inserts and payload changes made through another instance without a reload', async () => {
    const points = randomPoints(rand, 60);
    await backing.upsert(points);
    await writer.upsert(points);
    const q = points[3]!.vector;
    expectSameHits(await reader.search({ vector: q, k: 5 }), bruteForce(points, q, 5));
    expect(await reader.count()).toBe(60);

    await backing.setPayload([points[3]!.id], { tier: 'archive' });
    await writer.setPayload([points[3]!.id], { tier: 'archive' });
    expect((await reader.search({ vector: q, k: 1 }))[0]!.id).not.toBe(points[3]!.id);
    expect(await reader.count({ tier: 'archive' })).toBe(1);

    // A changed vector too (the UPDATE takes a new rev through the trigger).
    const moved = { ...points[4]!, vector: unitVector(rand, CONTRACT_DIMS) };
    await backing.upsert([moved]);
    const hit = await reader.search({ vector: moved.vector, k: 1 });
    expect(hit[0]).toEqual({ id: moved.id, similarity: expect.closeTo(1, 5) });
  });

  concurrentTransactions('sees a row whose transaction took its rev first but committed last', async () => {
    const [early, late] = randomPoints(rand, 2);
    const slow = new Client({ connectionString: db.url });
    await slow.connect();
    try {
      await slow.query('BEGIN');
      await slow.query(
        `INSERT INTO memory_items (id, text, kind, source, occurred_at, embedding, embedding_model)
         VALUES ($1, 'early', $2, 'agent', $3, $4, 'test')`,
        [
          early!.id,
          early!.payload.kind,
          new Date(early!.payload.occurredAt),
          Buffer.from(early!.vector.buffer, early!.vector.byteOffset, early!.vector.byteLength),
        ],
      );
      // `late` takes a higher rev and commits while `early` is still open.
      await backing.upsert([late!]);
      expect((await reader.search({ vector: late!.vector, k: 5 })).map((h) => h.id)).toEqual([late!.id]);
      expect(reader.stats().appliedRev).toBeGreaterThan(reader.stats().cursor);
      await slow.query('COMMIT');
    } finally {
      await slow.end();
    }
    const hits = await reader.search({ vector: early!.vector, k: 5 });
    expect(hits.map((h) => h.id)).toEqual([early!.id, late!.id]);
    expect(reader.stats().repairs).toBe(0);
  });

  concurrentTransactions(
    'moves on past a long transaction after 1000 rows, and its late row still arrives via the drift check',
    async () => {
      const patient = createEmbeddedStore({ prisma: db.prisma, dims: CONTRACT_DIMS, verifyIntervalMs: 600_000 });
      const [early] = randomPoints(rand, 1);
      const slow = new Client({ connectionString: db.url });
      await slow.connect();
      try {
        await patient.init();
        await slow.query('BEGIN');
        await slow.query(
          `INSERT INTO memory_items (id, text, kind, source, occurred_at, embedding, embedding_model)
         VALUES ($1, 'early', 'semantic', 'agent', now(), $2, 'test')`,
          [early!.id, Buffer.from(early!.vector.buffer, early!.vector.byteOffset, early!.vector.byteLength)],
        );
        await backing.upsert(randomPoints(rand, 1200));
        expect(await patient.count()).toBe(1200);
        // More rows than it re-reads while waiting for the open transaction: the cursor moved on.
        expect(patient.stats().cursor).toBe(patient.stats().appliedRev);
        await slow.query('COMMIT');
      } finally {
        await slow.end();
      }
      try {
        // Due about a second after the cursor skipped ahead, not after verifyIntervalMs.
        await new Promise((resolve) => setTimeout(resolve, 1100));
        await patient.count(); // schedules the check; the next read queues behind it
        expect(await patient.count()).toBe(1201);
        expect((await patient.search({ vector: early!.vector, k: 1 }))[0]!.id).toBe(early!.id);
        expect(patient.stats().repairs).toBe(1);
      } finally {
        await patient.close();
      }
    },
  );

  it('never shows a write that was rolled back', async () => {
    const [ghost] = randomPoints(rand, 1);
    await writerPrisma
      .$transaction(async (tx) => {
        await memoryItemsBacking(tx as unknown as Db).upsert([ghost!]);
        throw new Error('roll back');
      })
      .catch(() => undefined);
    await writer.upsert([ghost!]);
    expect(await reader.count()).toBe(0);
    expect(await writer.count()).toBe(0);
    expect(await writer.search({ vector: ghost!.vector, k: 3 })).toEqual([]);
  });

  it('drops rows another process deleted, at the next drift check', async () => {
    const points = randomPoints(rand, 40);
    await backing.upsert(points);
    await writer.upsert(points);
    expect(await reader.count()).toBe(40);

    const gone = points.slice(0, 5).map((p) => p.id);
    await backing.delete(gone);
    await writer.delete(gone);
    // The deleting process knows at once.
    expect(await writer.count()).toBe(35);
    // A delete leaves no row with a new rev; the reader finds it by its (count, rev sum) check.
    expect(await reader.verify()).toBe(true);
    expect(await reader.count()).toBe(35);
    expect(await reader.verify()).toBe(false);
    expect(reader.stats().repairs).toBe(1);
  });

  it('runs the drift check in the background after reads when it is due', async () => {
    const eager = createEmbeddedStore({ prisma: db.prisma, dims: CONTRACT_DIMS, verifyIntervalMs: 0 });
    try {
      const points = randomPoints(rand, 20);
      await backing.upsert(points);
      await eager.init();
      await backing.delete([points[0]!.id]);
      // This read may still include the deleted row; it schedules the check,
      // and the next read queues behind it.
      await eager.search({ vector: points[0]!.vector, k: 1 });
      const after = await eager.search({ vector: points[0]!.vector, k: 20 });
      expect(after.map((h) => h.id)).not.toContain(points[0]!.id);
      expect(after).toHaveLength(19);
      expect(eager.stats().repairs).toBe(1);
    } finally {
      await eager.close();
    }
  });

  it('a delete of a row that still exists keeps it: memory_items decides', async () => {
    const points = randomPoints(rand, 3);
    await backing.upsert(points);
    await writer.delete([points[0]!.id]);
    expect(await writer.count()).toBe(3);
  });

  it('skips rows it cannot index and counts them, without breaking search', async () => {
    const points = randomPoints(rand, 10);
    await backing.upsert(points);
    await writerPrisma.$executeRawUnsafe(
      `INSERT INTO memory_items (id, text, kind, source, occurred_at, embedding, embedding_model)
       VALUES ($1, 'other model', 'semantic', 'agent', now(), decode('00000000', 'hex'), 'other')`,
      uuidFrom(rand),
    );
    const nan = new Float32Array(CONTRACT_DIMS).fill(Number.NaN);
    await backing.upsert([{ ...randomPoints(rand, 1)[0]!, vector: nan }]);
    expect(await reader.count()).toBe(10);
    expect(reader.stats().skipped).toBe(2);
    expectSameHits(await reader.search({ vector: points[0]!.vector, k: 3 }), bruteForce(points, points[0]!.vector, 3));
    // Skipped rows are part of the fingerprint, so they do not look like drift.
    expect(await reader.verify()).toBe(false);
  });
});

describe('qdrant store on the stand-in', () => {
  let standin: QdrantStandin;

  beforeEach(async () => {
    standin = await startQdrantStandin();
  });

  afterEach(async () => {
    await standin.close();
  });

  it('creates the collection with Cosine distance and payload indexes, once', async () => {
    const store = createQdrantStore({ url: standin.url, collection: 'mem', dims: 384 });
    await store.init();
    await store.init();
    const client = new QdrantClient({ url: standin.url, checkCompatibility: false });
    const info = await client.getCollection('mem');
    expect(info.config.params.vectors).toEqual({ size: 384, distance: 'Cosine' });
    expect(Object.fromEntries(Object.entries(info.payload_schema).map(([k, v]) => [k, v!.data_type]))).toEqual({
      kind: 'keyword',
      subject: 'keyword',
      tier: 'keyword',
      superseded: 'bool',
      occurredAt: 'integer',
    });
    expect(standin.requests.filter((r) => r === 'PUT /collections/mem')).toHaveLength(1);
    expect(standin.requests.filter((r) => r.startsWith('PUT /collections/mem/index'))).toHaveLength(5);
    // A second process finds everything in place and creates nothing.
    const before = standin.requests.length;
    await createQdrantStore({ url: standin.url, collection: 'mem', dims: 384 }).init();
    expect(standin.requests.slice(before)).toEqual(['GET /collections/mem']);
  });

  it('two processes creating the collection at once both succeed (the loser gets 409 and checks)', async () => {
    const a = createQdrantStore({ url: standin.url, collection: 'race', dims: 64 });
    const b = createQdrantStore({ url: standin.url, collection: 'race', dims: 64 });
    await Promise.all([a.init(), b.init()]);
    expect(standin.requests.filter((r) => r === 'PUT /collections/race')).toHaveLength(2);
    const [p] = randomPoints(prng(9), 1, 64);
    await a.upsert([p!]);
    expect(await b.count()).toBe(1);
  });

  it('refuses an existing collection of another size or distance, saying which', async () => {
    const client = new QdrantClient({ url: standin.url, checkCompatibility: false });
    await client.createCollection('small', { vectors: { size: 8, distance: 'Cosine' } });
    await client.createCollection('dot', { vectors: { size: 384, distance: 'Dot' } });
    await expect(createQdrantStore({ url: standin.url, collection: 'small', dims: 384 }).init()).rejects.toThrow(
      /"small" has vectors of size 8, Cosine; Keel needs one unnamed vector of size 384 with Cosine distance/,
    );
    await expect(createQdrantStore({ url: standin.url, collection: 'dot', dims: 384 }).init()).rejects.toThrow(
      /"dot" has vectors of size 384, Dot/,
    );
  });

  it('sends upserts in batches of 256 with wait=true; re-upserting overwrites', async () => {
    const store = createQdrantStore({ url: standin.url, collection: 'mem', dims: CONTRACT_DIMS });
    const points = randomPoints(prng(7), 1000);
    await store.upsert(points);
    const upserts = standin.requests.filter((r) => r.startsWith('PUT /collections/mem/points'));
    expect(upserts).toEqual(Array(4).fill('PUT /collections/mem/points?wait=true'));
    expect(await store.count({ tier: 'any', includeSuperseded: true })).toBe(1000);
    // Upserting the same points again overwrites them.
    await store.upsert(points.slice(0, 300));
    expect(await store.count({ tier: 'any', includeSuperseded: true })).toBe(1000);
  });

  it('surfaces Qdrant errors with their message', async () => {
    const store = createQdrantStore({ url: standin.url, collection: 'mem', dims: CONTRACT_DIMS });
    await expect(store.upsert([{ ...randomPoints(prng(8), 1)[0]!, id: 'not-a-uuid' }])).rejects.toThrow(
      /not a lower-case UUID/,
    );
    await store.init();
    const client = new QdrantClient({ url: standin.url, checkCompatibility: false });
    await client.deleteCollection('mem');
    await expect(store.count()).rejects.toThrow(
      /qdrant count on collection "mem" failed: 404 Not found: Collection `mem` doesn't exist!/,
    );
  });
});
