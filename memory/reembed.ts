/**
 * Re-embeds every memory with the configured embedder (`npm run
 * memory:reembed`), for when the embedding model or its size changed and
 * the engine refuses the old vectors (EmbeddingMismatch).
 *
 * Resumable by construction: a row is done when its embedding_model and
 * vector size are the configured ones, and each batch writes both in one
 * statement, so a rerun after a crash picks up exactly the rows not yet
 * converted. Then the vector store is rebuilt: a Qdrant collection of
 * another size is dropped and created again with the new size, and every
 * memory is sent to it; the embedded store needs only the rows (running
 * processes must be restarted with the new configuration).
 */
import { QdrantClient, type Schemas } from '@qdrant/js-client-rest';
import type { Db } from '../db/prisma';
import { createEmbeddedStore } from './embedded-store';
import { embedderDims } from './embedders';
import { foreignVectors } from './embedding-check';
import { createQdrantStore } from './qdrant-store';
import { createMemoryService } from './service';
import type { Embedder, VectorStore } from './types';
import { encodeFloat32LE } from './vectors';

/** Where the vectors are searched from; without `qdrant`, the embedded store over memory_items. */
export interface ReembedQdrant {
  url: string;
  apiKey?: string;
  collection: string;
}

export interface ReembedProgress {
  /** Rows converted so far by this run. */
  done: number;
  /** Rows that needed converting when this run started (later writes of another model are converted too). */
  pending: number;
  /** Rows in memory_items. */
  total: number;
}

export interface ReembedOptions {
  prisma: Db;
  embedder: Embedder;
  qdrant?: ReembedQdrant;
  /** Texts per embedding call and rows per update; default 256. */
  batchSize?: number;
  /** Called after every batch (and once before the first); a throw stops the run, as a crash would. */
  onProgress?: (p: ReembedProgress) => void | Promise<void>;
}

export interface ReembedResult {
  model: string;
  dims: number;
  /** Rows this run converted. */
  reembedded: number;
  /** Rows in memory_items at the end. */
  total: number;
  /** Points in the rebuilt store (all tiers, superseded included); equals `total`. */
  indexed: number;
  store: 'embedded' | 'qdrant';
  /** True when an existing Qdrant collection of another size was dropped and created again. */
  recreatedCollection: boolean;
}

interface PendingRow {
  id: string;
  text: string;
}

/** See the file comment. Throws if the rebuilt store does not hold every memory. */
export async function reembedMemories(opts: ReembedOptions): Promise<ReembedResult> {
  const { prisma, embedder } = opts;
  const batchSize = opts.batchSize ?? 256;
  if (!Number.isInteger(batchSize) || batchSize <= 0) throw new RangeError('batchSize must be a positive integer');
  const dims = await embedderDims(embedder);
  const model = embedder.model;
  const bytes = dims * 4;

  const pending = (await foreignVectors(prisma, model, dims)).reduce((n, g) => n + g.count, 0);
  const total = await prisma.memoryItem.count();
  let done = 0;
  await opts.onProgress?.({ done, pending, total });

  // Walk by id, then once more from the start for rows written behind the
  // cursor meanwhile (by a process still on the old model); stop when a
  // whole pass finds nothing.
  let cursor = '';
  let convertedThisPass = 0;
  for (;;) {
    const rows = await prisma.$queryRaw<PendingRow[]>`
      SELECT id, text FROM memory_items
       WHERE id > ${cursor} AND (embedding_model <> ${model} OR octet_length(embedding) <> ${bytes})
       ORDER BY id LIMIT ${batchSize}`;
    if (rows.length === 0) {
      if (cursor === '' || convertedThisPass === 0) break;
      cursor = '';
      convertedThisPass = 0;
      continue;
    }
    const vectors = await embedder.embed(rows.map((r) => r.text));
    for (const v of vectors) {
      if (v.length !== dims) throw new Error(`Embedder ${model} returned ${v.length} dimensions, expected ${dims}`);
    }
    const encoded = vectors.map((v) => Buffer.from(encodeFloat32LE(v).buffer).toString('base64'));
    // Vector and model in one statement: the row is either done or not, never half.
    const updated = await prisma.$executeRaw`
      UPDATE memory_items m SET embedding = decode(u.v, 'base64'), embedding_model = ${model}
        FROM unnest(${rows.map((r) => r.id)}::text[], ${encoded}::text[]) AS u(id, v)
       WHERE m.id = u.id AND (m.embedding_model <> ${model} OR octet_length(m.embedding) <> ${bytes})`;
    done += updated;
    convertedThisPass += updated;
    cursor = rows[rows.length - 1]!.id;
    await opts.onProgress?.({ done, pending, total });
  }

  let recreatedCollection = false;
  let store: VectorStore;
  if (opts.qdrant) {
    recreatedCollection = await dropCollectionOfOtherSize(opts.qdrant, dims);
    store = createQdrantStore({ ...opts.qdrant, dims, embedModel: model });
  } else {
    store = createEmbeddedStore({ prisma, dims });
  }
  try {
    const service = createMemoryService({ prisma, embedder, store });
    await service.reindex(batchSize);
    const [indexed, rowsNow] = await Promise.all([
      store.count({ tier: 'any', includeSuperseded: true }),
      prisma.memoryItem.count(),
    ]);
    if (indexed < rowsNow) {
      throw new Error(`the rebuilt ${store.name} store holds ${indexed} of ${rowsNow} memories`);
    }
    return {
      model,
      dims,
      reembedded: done,
      total: rowsNow,
      indexed,
      store: store.name,
      recreatedCollection,
    };
  } finally {
    await store.close();
  }
}

/** Drops the collection when it exists with another vector size; true if it did. */
async function dropCollectionOfOtherSize(q: ReembedQdrant, dims: number): Promise<boolean> {
  const client = new QdrantClient({
    url: q.url,
    ...(q.apiKey !== undefined ? { apiKey: q.apiKey } : {}),
    checkCompatibility: false,
  });
  let info: Schemas['CollectionInfo'];
  try {
    info = await client.getCollection(q.collection);
  } catch (err) {
    if ((err as { status?: number }).status === 404) return false;
    throw err;
  }
  const vectors = info.config.params.vectors as Partial<Schemas['VectorParams']> | undefined;
  if (vectors?.size === dims) return false;
  await client.deleteCollection(q.collection);
  return true;
}
