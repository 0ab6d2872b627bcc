import { QdrantClient, type Schemas } from '@qdrant/js-client-rest';
import { embeddingMismatch } from './embedding-check';
import type { PointPayload, VectorFilter, VectorHit, VectorPoint, VectorStore } from './types';

/*
 * The Qdrant VectorStore, chosen when QDRANT_URL is set. PostgreSQL still
 * holds every memory's canonical row; the collection holds each point's
 * vector and the PointPayload fields used for filtering, under the memory's
 * own UUID, so re-sending a memory (reindex, retries) overwrites instead of
 * duplicating.
 */

/** Options of createQdrantStore. */
export interface QdrantStoreOptions {
  /** e.g. `http://127.0.0.1:6333`. */
  url: string;
  apiKey?: string;
  collection: string;
  dims: number;
  /** The embedding model whose vectors the collection holds, named when an existing collection has another size. */
  embedModel?: string;
  /** Points per upsert request; default 256. */
  batchSize?: number;
  /**
   * Ask Qdrant for an exact (full-scan) search instead of its HNSW index.
   * Default false: at the sizes that justify Qdrant, HNSW is the point; the
   * contract tests set it so results can be compared with brute force.
   */
  exact?: boolean;
  /** Per-request timeout in milliseconds; default 30 000. */
  timeoutMs?: number;
}

/** Payload fields and the index type each gets; VectorFilter conditions hit only these. */
const PAYLOAD_INDEXES: Record<keyof PointPayload, 'keyword' | 'bool' | 'integer'> = {
  kind: 'keyword',
  subject: 'keyword',
  tier: 'keyword',
  superseded: 'bool',
  occurredAt: 'integer',
};

// Qdrant answers point ids in this canonical form; anything else would come back changed.
const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
// Ids per set-payload or delete request.
const ID_CHUNK = 1000;
// When the (k+1)-th hit ties the k-th, how many more hits to fetch so ties can be ordered by id.
const TIE_WINDOW = 1024;

/** The Qdrant filter equivalent to a VectorFilter (including its defaults: hot tier, not superseded). */
export function toQdrantFilter(filter: VectorFilter = {}): Schemas['Filter'] | undefined {
  const must: Schemas['FieldCondition'][] = [];
  // An empty `kinds` list means "no kind condition", as in the embedded index.
  if (filter.kinds !== undefined && filter.kinds.length > 0)
    must.push({ key: 'kind', match: { any: [...filter.kinds] } });
  if (filter.subject !== undefined) must.push({ key: 'subject', match: { value: filter.subject } });
  if (filter.occurredFrom !== undefined || filter.occurredTo !== undefined) {
    const range: Schemas['Range'] = {};
    if (filter.occurredFrom !== undefined) range.gte = filter.occurredFrom;
    if (filter.occurredTo !== undefined) range.lte = filter.occurredTo;
    must.push({ key: 'occurredAt', range });
  }
  const tier = filter.tier ?? 'hot';
  if (tier !== 'any') must.push({ key: 'tier', match: { value: tier } });
  if (!filter.includeSuperseded) must.push({ key: 'superseded', match: { value: false } });
  return must.length > 0 ? { must } : undefined;
}

/** A Qdrant client error with Qdrant's own message (`{"status":{"error":…}}`) when there is one. */
function qdrantMessage(err: unknown): string {
  const e = err as { status?: number; data?: { status?: { error?: string } }; message?: string };
  const detail = e.data?.status?.error ?? e.message ?? String(err);
  return e.status !== undefined ? `${e.status} ${detail}` : detail;
}

function statusOf(err: unknown): number | undefined {
  return (err as { status?: number }).status;
}

/**
 * Creates the Qdrant VectorStore over `collection`. init() creates the
 * collection (size = dims, Cosine) and its payload indexes if missing, and
 * refuses an existing collection of another size or distance.
 */
export function createQdrantStore(opts: QdrantStoreOptions): VectorStore {
  const { collection, dims } = opts;
  const batchSize = opts.batchSize ?? 256;
  if (!Number.isInteger(dims) || dims <= 0) throw new RangeError(`dims must be a positive integer, got ${dims}`);
  if (!Number.isInteger(batchSize) || batchSize <= 0) throw new RangeError('batchSize must be a positive integer');
  const client = new QdrantClient({
    url: opts.url,
    ...(opts.apiKey !== undefined ? { apiKey: opts.apiKey } : {}),
    timeout: opts.timeoutMs ?? 30_000,
    // The check is an unawaited request that only logs; init() verifies what matters.
    checkCompatibility: false,
  });
  const params: Schemas['SearchParams'] | undefined = opts.exact ? { exact: true } : undefined;
  let ready: Promise<void> | null = null;

  async function call<T>(what: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      throw new Error(`qdrant ${what} on collection "${collection}" failed: ${qdrantMessage(err)}`, { cause: err });
    }
  }

  async function getCollection(): Promise<Schemas['CollectionInfo'] | null> {
    try {
      return await client.getCollection(collection);
    } catch (err) {
      if (statusOf(err) === 404) return null;
      throw new Error(`qdrant get collection "${collection}" failed: ${qdrantMessage(err)}`, { cause: err });
    }
  }

  async function setUp(): Promise<void> {
    let info = await getCollection();
    if (info === null) {
      let createError: unknown;
      try {
        await client.createCollection(collection, { vectors: { size: dims, distance: 'Cosine' } });
      } catch (err) {
        // Another process may have created it first (409); the check below decides.
        createError = err;
      }
      info = await getCollection();
      if (info === null) {
        const why = createError === undefined ? 'it is missing right after its creation' : qdrantMessage(createError);
        throw new Error(`qdrant create collection "${collection}" failed: ${why}`, { cause: createError });
      }
    }
    const vectors = info.config.params.vectors as Partial<Schemas['VectorParams']> | undefined;
    if (vectors?.distance === 'Cosine' && typeof vectors.size === 'number' && vectors.size !== dims) {
      // Vectors of another embedder: typed, so callers can tell it from an outage.
      const model = opts.embedModel ?? 'the configured model';
      throw embeddingMismatch(
        {
          where: `qdrant collection "${collection}"`,
          stored: [{ model: '', dims: vectors.size, count: info.points_count ?? 0 }],
          embedder: { model, dims },
        },
        `qdrant collection "${collection}" has vectors of size ${vectors.size}, Cosine; Keel needs one unnamed vector ` +
          `of size ${dims} with Cosine distance${opts.embedModel ? `, the size of embedding model ${opts.embedModel}` : ''}.`,
      );
    }
    if (vectors?.size !== dims || vectors.distance !== 'Cosine') {
      const found =
        vectors?.size === undefined ? 'named or no vectors' : `vectors of size ${vectors.size}, ${vectors.distance}`;
      throw new Error(
        `qdrant collection "${collection}" has ${found}; Keel needs one unnamed vector of size ${dims} with Cosine distance ` +
          `(use another collection name, or delete this one and reindex)`,
      );
    }
    for (const [field, schema] of Object.entries(PAYLOAD_INDEXES)) {
      if (info.payload_schema[field]?.data_type === schema) continue;
      await call(`create payload index ${field}`, () =>
        client.createPayloadIndex(collection, { field_name: field, field_schema: schema, wait: true }),
      );
    }
  }

  function init(): Promise<void> {
    // A failed set-up is retried by the next call rather than cached.
    ready ??= setUp().catch((err: unknown) => {
      ready = null;
      throw err;
    });
    return ready;
  }

  return {
    name: 'qdrant',
    dims,
    init,

    async upsert(points: VectorPoint[]) {
      for (const p of points) {
        if (!UUID_RE.test(p.id)) throw new RangeError(`point id ${JSON.stringify(p.id)} is not a lower-case UUID`);
        if (p.vector.length !== dims) {
          throw new RangeError(`vector of ${p.id} has ${p.vector.length} dimensions, the store has ${dims}`);
        }
      }
      await init();
      for (let i = 0; i < points.length; i += batchSize) {
        const batch = points.slice(i, i + batchSize).map((p) => ({
          id: p.id,
          vector: Array.from(p.vector),
          payload: { ...p.payload },
        }));
        await call('upsert', () => client.upsert(collection, { wait: true, points: batch }));
      }
    },

    async setPayload(ids: string[], payload: Partial<PointPayload>) {
      const fields = Object.fromEntries(Object.entries(payload).filter(([, v]) => v !== undefined));
      if (ids.length === 0 || Object.keys(fields).length === 0) return;
      await init();
      for (let i = 0; i < ids.length; i += ID_CHUNK) {
        // By filter, not by `points`: Qdrant fails a whole set-payload by id
        // list when one id is missing, and the contract ignores unknown ids.
        const chunk = ids.slice(i, i + ID_CHUNK);
        await call('set payload', () =>
          client.setPayload(collection, { payload: fields, filter: { must: [{ has_id: chunk }] }, wait: true }),
        );
      }
    },

    async delete(ids: string[]) {
      if (ids.length === 0) return;
      await init();
      for (let i = 0; i < ids.length; i += ID_CHUNK) {
        const chunk = ids.slice(i, i + ID_CHUNK);
        await call('delete', () => client.delete(collection, { wait: true, points: chunk }));
      }
    },

    async search(query: { vector: Float32Array; k: number; filter?: VectorFilter }): Promise<VectorHit[]> {
      const { k } = query;
      if (!Number.isInteger(k) || k < 0) throw new RangeError(`k must be a non-negative integer, got ${k}`);
      if (query.vector.length !== dims) {
        throw new RangeError(`query vector has ${query.vector.length} dimensions, the store has ${dims}`);
      }
      if (k === 0) return [];
      await init();
      const vector = Array.from(query.vector);
      const filter = toQdrantFilter(query.filter);
      const run = (limit: number) =>
        call('query', () =>
          client.query(collection, {
            query: vector,
            limit,
            ...(filter ? { filter } : {}),
            ...(params ? { params } : {}),
            with_payload: false,
          }),
        );
      // One extra hit shows whether a tie crosses the k-th place; Qdrant
      // orders equal scores arbitrarily, the contract orders them by id.
      let points = (await run(k + 1)).points;
      if (points.length > k && points[k]!.score === points[k - 1]!.score) {
        points = (await run(k + TIE_WINDOW)).points;
      }
      return points
        .map((p) => ({ id: String(p.id), similarity: Math.max(-1, Math.min(1, p.score)) }))
        .sort((a, b) => b.similarity - a.similarity || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
        .slice(0, k);
    },

    async count(filter?: VectorFilter) {
      await init();
      const f = toQdrantFilter(filter);
      const result = await call('count', () => client.count(collection, { ...(f ? { filter: f } : {}), exact: true }));
      return result.count;
    },

    async close() {
      // The client holds only keep-alive sockets, which the server or idle timeout closes.
    },
  };
}
