/**
 * A local HTTP server that speaks the Qdrant REST protocol for the endpoints
 * memory/qdrant-store.ts calls, so tests run the real
 * `@qdrant/js-client-rest` client (request building, query strings, error
 * handling, response parsing) where no Qdrant server can run.
 *
 * It is a small but real implementation, not canned answers: collections
 * keep points in memory; search is exact (brute force) with Qdrant's
 * distances (Cosine normalises stored and query vectors, as Qdrant does);
 * filters evaluate must / should / must_not with match (value, any, except),
 * range, has_id, is_null, is_empty and nested filters; equal scores come
 * back in storage order, not by id, as Qdrant promises nothing about ties.
 *
 * Shapes follow Qdrant: success `{ result, status: "ok", time }`; errors
 * `{ status: { error }, time }` with 404 for a missing collection or point,
 * 409 for a collection that exists, 400 for bad input. Anything outside the
 * subset answers 400 or 404 naming what is not implemented, never a guess.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** A running stand-in. */
export interface QdrantStandin {
  /** e.g. `http://127.0.0.1:41234`: pass as the client's url. */
  url: string;
  /** Every request, as `METHOD /path?query`, in arrival order (errors included). */
  requests: string[];
  close(): Promise<void>;
}

type Distance = 'Cosine' | 'Dot' | 'Euclid' | 'Manhattan';
type PointId = string | number;

interface StoredPoint {
  id: PointId;
  vector: Float32Array;
  payload: Record<string, unknown>;
  version: number;
}

interface Collection {
  size: number;
  distance: Distance;
  /** Keyed by the canonical id (`String(id)`); Map order is storage order. */
  points: Map<string, StoredPoint>;
  payloadSchema: Map<string, string>;
  operations: number;
}

/** A failed request: HTTP status and Qdrant's error text. */
class QdrantError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

const DISTANCES: readonly Distance[] = ['Cosine', 'Dot', 'Euclid', 'Manhattan'];
const PAYLOAD_TYPES = ['keyword', 'integer', 'float', 'bool', 'geo', 'text', 'datetime', 'uuid'];
const UUID_RE = /^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$/i;
// Qdrant reports the version it implements; the client compares major.minor with its own (1.18).
const VERSION = '1.18.0';

/** Qdrant accepts unsigned integers and UUIDs (any case, with or without dashes) and answers UUIDs lower-case, dashed. */
function parsePointId(raw: unknown): PointId {
  if (typeof raw === 'number' && Number.isSafeInteger(raw) && raw >= 0) return raw;
  if (typeof raw === 'string' && UUID_RE.test(raw)) {
    const hex = raw.replace(/-/g, '').toLowerCase();
    return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
  }
  throw new QdrantError(
    400,
    `Format error in JSON body: value ${JSON.stringify(raw)} is not a valid point ID, valid values are either an unsigned integer or a UUID`,
  );
}

function asArray<T>(v: T | T[] | null | undefined): T[] {
  if (v === undefined || v === null) return [];
  return Array.isArray(v) ? v : [v];
}

/** Values at a payload path (`a.b`, `a[].b`), flattened the way Qdrant matches arrays: any element counts. */
function valuesAt(payload: Record<string, unknown>, key: string): unknown[] {
  let current: unknown[] = [payload];
  for (const part of key.split('.')) {
    const name = part.endsWith('[]') ? part.slice(0, -2) : part;
    const next: unknown[] = [];
    for (const c of current) {
      if (c === null || typeof c !== 'object' || Array.isArray(c)) continue;
      const v = (c as Record<string, unknown>)[name];
      if (v === undefined) continue;
      if (Array.isArray(v)) next.push(...v);
      else next.push(v);
    }
    current = next;
  }
  return current;
}

// Parsed once per request's condition object, not once per point it is tested against.
const hasIdSets = new WeakMap<object, Set<string>>();
function hasIdSet(cond: Record<string, unknown>): Set<string> {
  let set = hasIdSets.get(cond);
  if (!set) {
    set = new Set(asArray(cond.has_id as unknown[]).map((raw) => String(parsePointId(raw))));
    hasIdSets.set(cond, set);
  }
  return set;
}

function matchesCondition(point: StoredPoint, cond: Record<string, unknown>): boolean {
  if ('must' in cond || 'should' in cond || 'must_not' in cond) return matchesFilter(point, cond);
  if ('has_id' in cond) return hasIdSet(cond).has(String(point.id));
  if ('is_null' in cond) {
    const key = (cond.is_null as { key: string }).key;
    const direct = key.split('.').reduce<unknown>((o, k) => (o as Record<string, unknown> | null)?.[k], point.payload);
    return direct === null;
  }
  if ('is_empty' in cond) {
    const key = (cond.is_empty as { key: string }).key;
    return valuesAt(point.payload, key).filter((v) => v !== null).length === 0;
  }
  if (typeof cond.key !== 'string')
    throw new QdrantError(400, `Format error in JSON body: unknown condition ${JSON.stringify(cond)}`);
  const values = valuesAt(point.payload, cond.key);
  if (cond.match !== undefined) {
    const m = cond.match as Record<string, unknown>;
    if ('value' in m) return values.some((v) => v === m.value);
    if ('any' in m) return values.some((v) => (m.any as unknown[]).includes(v));
    if ('except' in m) {
      // Qdrant: a point with no value for the key does not match `except`.
      return values.length > 0 && values.some((v) => !(m.except as unknown[]).includes(v));
    }
    throw new QdrantError(400, `match ${JSON.stringify(m)} is not implemented by the Qdrant stand-in`);
  }
  if (cond.range !== undefined) {
    const r = cond.range as { gt?: number | null; gte?: number | null; lt?: number | null; lte?: number | null };
    return values.some(
      (v) =>
        typeof v === 'number' &&
        (r.gt == null || v > r.gt) &&
        (r.gte == null || v >= r.gte) &&
        (r.lt == null || v < r.lt) &&
        (r.lte == null || v <= r.lte),
    );
  }
  if (cond.is_null !== undefined || cond.is_empty !== undefined) {
    throw new QdrantError(400, 'field-level is_null / is_empty are not implemented by the Qdrant stand-in');
  }
  throw new QdrantError(400, `condition ${JSON.stringify(cond)} is not implemented by the Qdrant stand-in`);
}

function matchesFilter(point: StoredPoint, filter: unknown): boolean {
  if (filter === undefined || filter === null) return true;
  const f = filter as { must?: unknown; should?: unknown; must_not?: unknown; min_should?: unknown };
  if (f.min_should !== undefined && f.min_should !== null) {
    throw new QdrantError(400, 'min_should is not implemented by the Qdrant stand-in');
  }
  const must = asArray(f.must as Record<string, unknown>[]);
  const should = asArray(f.should as Record<string, unknown>[]);
  const mustNot = asArray(f.must_not as Record<string, unknown>[]);
  return (
    must.every((c) => matchesCondition(point, c)) &&
    (should.length === 0 || should.some((c) => matchesCondition(point, c))) &&
    !mustNot.some((c) => matchesCondition(point, c))
  );
}

function normalised(v: Float32Array): Float32Array {
  let norm = 0;
  for (const x of v) norm += x * x;
  if (norm === 0) return v;
  const s = 1 / Math.sqrt(norm);
  return v.map((x) => x * s);
}

/** Qdrant's score for a distance: similarity for Cosine and Dot (higher is closer), distance otherwise (lower is closer). */
function score(distance: Distance, a: Float32Array, b: Float32Array): number {
  let acc = 0;
  for (let i = 0; i < a.length; i++) {
    const x = a[i]!;
    const y = b[i]!;
    if (distance === 'Euclid') acc += (x - y) * (x - y);
    else if (distance === 'Manhattan') acc += Math.abs(x - y);
    else acc += x * y;
  }
  return Math.fround(distance === 'Euclid' ? Math.sqrt(acc) : acc);
}

/** Starts the stand-in on 127.0.0.1 with an OS-assigned port. */
export async function startQdrantStandin(): Promise<QdrantStandin> {
  const collections = new Map<string, Collection>();
  const requests: string[] = [];

  function collectionOf(name: string): Collection {
    const c = collections.get(name);
    if (!c) throw new QdrantError(404, `Not found: Collection \`${name}\` doesn't exist!`);
    return c;
  }

  function toVector(c: Collection, raw: unknown): Float32Array {
    if (!Array.isArray(raw) || raw.some((x) => typeof x !== 'number')) {
      throw new QdrantError(400, 'Format error in JSON body: expected an unnamed dense vector (array of numbers)');
    }
    if (raw.length !== c.size) {
      throw new QdrantError(400, `Wrong input: Vector dimension error: expected dim: ${c.size}, got ${raw.length}`);
    }
    const v = Float32Array.from(raw as number[]);
    return c.distance === 'Cosine' ? normalised(v) : v;
  }

  /** Points chosen by `points: [...]` or `filter`, as Qdrant's PointsSelector. */
  function select(c: Collection, body: { points?: unknown[]; filter?: unknown }, requireExisting: boolean): string[] {
    if (body.points !== undefined) {
      const keys = body.points.map((raw) => String(parsePointId(raw)));
      if (requireExisting) {
        const missing = keys.find((k) => !c.points.has(k));
        if (missing !== undefined) throw new QdrantError(404, `Not found: No point with id ${missing} found`);
      }
      return keys.filter((k) => c.points.has(k));
    }
    if (body.filter !== undefined)
      return [...c.points].filter(([, p]) => matchesFilter(p, body.filter)).map(([k]) => k);
    throw new QdrantError(400, 'Format error in JSON body: expected `points` or `filter`');
  }

  function updateResult(c: Collection, wait: boolean) {
    return { operation_id: c.operations, status: wait ? 'completed' : 'acknowledged' };
  }

  function collectionInfo(c: Collection) {
    const schema: Record<string, { data_type: string; params?: unknown; points: number }> = {};
    for (const [field, type] of c.payloadSchema) {
      let points = 0;
      for (const p of c.points.values()) if (valuesAt(p.payload, field).some((v) => v !== null)) points++;
      schema[field] = { data_type: type, points };
    }
    return {
      status: 'green',
      optimizer_status: 'ok',
      indexed_vectors_count: 0,
      points_count: c.points.size,
      segments_count: 1,
      config: {
        params: {
          vectors: { size: c.size, distance: c.distance },
          shard_number: 1,
          replication_factor: 1,
          write_consistency_factor: 1,
          on_disk_payload: true,
        },
        hnsw_config: { m: 16, ef_construct: 100, full_scan_threshold: 10000, max_indexing_threads: 0, on_disk: false },
        optimizer_config: {
          deleted_threshold: 0.2,
          vacuum_min_vector_number: 1000,
          default_segment_number: 0,
          max_segment_size: null,
          memmap_threshold: null,
          indexing_threshold: 10000,
          flush_interval_sec: 5,
          max_optimization_threads: null,
        },
        wal_config: { wal_capacity_mb: 32, wal_segments_ahead: 0 },
        quantization_config: null,
      },
      payload_schema: schema,
    };
  }

  function handle(method: string, path: string, query: URLSearchParams, body: any): unknown {
    const wait = query.get('wait') === 'true';
    if (method === 'GET' && path === '/') return { title: 'qdrant - vector search engine', version: VERSION };
    if (method === 'GET' && path === '/collections') {
      return { collections: [...collections.keys()].map((name) => ({ name })) };
    }
    const m = /^\/collections\/([^/]+)(\/.*)?$/.exec(path);
    if (!m) throw new QdrantError(404, `Not found: ${method} ${path} is not implemented by the Qdrant stand-in`);
    const name = decodeURIComponent(m[1]!);
    const rest = m[2] ?? '';

    if (rest === '') {
      if (method === 'GET') return collectionInfo(collectionOf(name));
      if (method === 'DELETE') return collections.delete(name);
      if (method === 'PUT') {
        if (collections.has(name)) throw new QdrantError(409, `Wrong input: Collection \`${name}\` already exists!`);
        const vectors = body?.vectors;
        if (!vectors || typeof vectors.size !== 'number' || !Number.isInteger(vectors.size) || vectors.size < 1) {
          throw new QdrantError(400, 'Format error in JSON body: expected `vectors: { size, distance }`');
        }
        if (!DISTANCES.includes(vectors.distance)) {
          throw new QdrantError(400, `Format error in JSON body: unknown distance ${JSON.stringify(vectors.distance)}`);
        }
        collections.set(name, {
          size: vectors.size,
          distance: vectors.distance,
          points: new Map(),
          payloadSchema: new Map(),
          operations: 0,
        });
        return true;
      }
    }
    if (method === 'GET' && rest === '/exists') return { exists: collections.has(name) };

    const c = collectionOf(name);
    if (method === 'PUT' && rest === '/index') {
      const type = typeof body?.field_schema === 'string' ? body.field_schema : body?.field_schema?.type;
      if (typeof body?.field_name !== 'string' || !PAYLOAD_TYPES.includes(type)) {
        throw new QdrantError(400, 'Format error in JSON body: expected `field_name` and a known `field_schema`');
      }
      c.payloadSchema.set(body.field_name, type);
      c.operations++;
      return updateResult(c, wait);
    }
    if (method === 'PUT' && rest === '/points') {
      if (!Array.isArray(body?.points)) {
        throw new QdrantError(400, 'Format error in JSON body: expected `points` (the batch form is not implemented)');
      }
      // Validate everything first: Qdrant applies a request entirely or not at all.
      const parsed = body.points.map((p: any) => ({
        id: parsePointId(p?.id),
        vector: toVector(c, p?.vector),
        payload: (p?.payload ?? {}) as Record<string, unknown>,
      }));
      c.operations++;
      for (const p of parsed) {
        const key = String(p.id);
        const existing = c.points.get(key);
        const point = { id: p.id, vector: p.vector, payload: { ...p.payload }, version: c.operations };
        if (existing) Object.assign(existing, point);
        else c.points.set(key, point);
      }
      return updateResult(c, wait);
    }
    if (method === 'POST' && rest === '/points/payload') {
      if (body?.key !== undefined && body?.key !== null) {
        throw new QdrantError(400, 'set payload by `key` is not implemented by the Qdrant stand-in');
      }
      if (!body?.payload || typeof body.payload !== 'object') {
        throw new QdrantError(400, 'Format error in JSON body: expected `payload`');
      }
      const keys = select(c, body, true);
      c.operations++;
      for (const k of keys) {
        const p = c.points.get(k)!;
        Object.assign(p.payload, body.payload);
        p.version = c.operations;
      }
      return updateResult(c, wait);
    }
    if (method === 'POST' && rest === '/points/delete') {
      const keys = select(c, body ?? {}, false);
      c.operations++;
      for (const k of keys) c.points.delete(k);
      return updateResult(c, wait);
    }
    if (method === 'POST' && rest === '/points/count') {
      let count = 0;
      for (const p of c.points.values()) if (matchesFilter(p, body?.filter)) count++;
      return { count };
    }
    if (method === 'POST' && rest === '/points/query') {
      for (const unsupported of ['prefetch', 'using', 'lookup_from', 'score_threshold']) {
        if (body?.[unsupported] !== undefined && body?.[unsupported] !== null) {
          throw new QdrantError(400, `query \`${unsupported}\` is not implemented by the Qdrant stand-in`);
        }
      }
      // SearchParams: every search here is exact, so `exact` and the HNSW
      // knobs change nothing, but they must be well-formed as Qdrant checks.
      const params = body?.params ?? {};
      for (const [key, value] of Object.entries(params as Record<string, unknown>)) {
        const ok =
          (['exact', 'indexed_only'].includes(key) && typeof value === 'boolean') ||
          (key === 'hnsw_ef' && Number.isInteger(value)) ||
          (['quantization', 'acorn'].includes(key) && typeof value === 'object');
        if (!ok)
          throw new QdrantError(
            400,
            `Format error in JSON body: params.${key}: invalid value ${JSON.stringify(value)}`,
          );
      }
      const raw = Array.isArray(body?.query) ? body.query : body?.query?.nearest;
      const q = toVector(c, raw);
      const limit = body?.limit ?? 10;
      const offset = body?.offset ?? 0;
      const lowerIsBetter = c.distance === 'Euclid' || c.distance === 'Manhattan';
      const scored: { p: StoredPoint; score: number; order: number }[] = [];
      let order = 0;
      for (const p of c.points.values()) {
        if (matchesFilter(p, body?.filter)) scored.push({ p, score: score(c.distance, p.vector, q), order: order++ });
      }
      // Equal scores keep storage order: Qdrant does not order ties by id.
      scored.sort((a, b) => (lowerIsBetter ? a.score - b.score : b.score - a.score) || a.order - b.order);
      return {
        points: scored.slice(offset, offset + limit).map(({ p, score: s }) => ({
          id: p.id,
          version: p.version,
          score: s,
          ...(body?.with_payload === true ? { payload: p.payload } : {}),
          ...(body?.with_vector === true ? { vector: Array.from(p.vector) } : {}),
        })),
      };
    }
    throw new QdrantError(404, `Not found: ${method} ${path} is not implemented by the Qdrant stand-in`);
  }

  function send(res: ServerResponse, status: number, payload: unknown): void {
    const text = JSON.stringify(payload);
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
    res.end(text);
  }

  async function onRequest(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const started = process.hrtime.bigint();
    const elapsed = () => Number(process.hrtime.bigint() - started) / 1e9;
    const url = new URL(req.url ?? '/', 'http://standin');
    const method = req.method ?? 'GET';
    requests.push(`${method} ${url.pathname}${url.search}`);
    try {
      const chunks: Buffer[] = [];
      for await (const chunk of req) chunks.push(chunk as Buffer);
      const text = Buffer.concat(chunks).toString('utf8');
      let body: unknown;
      if (text.length > 0) {
        try {
          body = JSON.parse(text);
        } catch (err) {
          throw new QdrantError(400, `Format error in JSON body: ${(err as Error).message}`);
        }
      }
      const result = handle(method, url.pathname, url.searchParams, body);
      send(res, 200, { result, status: 'ok', time: elapsed() });
    } catch (err) {
      const status = err instanceof QdrantError ? err.status : 500;
      const message = err instanceof Error ? err.message : String(err);
      send(res, status, {
        status: { error: status === 500 ? `Service internal error: ${message}` : message },
        time: elapsed(),
      });
    }
  }

  const server = createServer((req, res) => {
    void onRequest(req, res);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    async close() {
      // The client keeps sockets alive; end them so close() does not wait for their timeout.
      server.closeAllConnections();
      await new Promise<void>((resolve, reject) => server.close((err) => (err ? reject(err) : resolve())));
    },
  };
}
