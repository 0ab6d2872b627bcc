/**
 * Semantic memory contracts. PostgreSQL (memory_items) holds every memory's
 * canonical row; a VectorStore adapter answers nearest-neighbour questions.
 * Two adapters implement VectorStore and pass one contract suite:
 * `embedded` (the default: vectors in PostgreSQL, exact in-process index) and
 * `qdrant` (chosen when QDRANT_URL is set).
 */

export type MemoryKind = 'episodic' | 'semantic' | 'summary' | 'artifact';
export type MemorySource = 'agent' | 'human' | 'adapter';
export type MemoryTier = 'hot' | 'archive';

export const MEMORY_KINDS: readonly MemoryKind[] = ['episodic', 'semantic', 'summary', 'artifact'];
export const MEMORY_SOURCES: readonly MemorySource[] = ['agent', 'human', 'adapter'];

/** What a vector store keeps beside each vector, for filtering. */
export interface PointPayload {
  kind: MemoryKind;
  subject: string | null;
  /** Epoch milliseconds. */
  occurredAt: number;
  tier: MemoryTier;
  superseded: boolean;
}

export interface VectorPoint {
  /** A UUID (Qdrant accepts only UUIDs or integers); derived from content so re-upserting does not duplicate. */
  id: string;
  vector: Float32Array;
  payload: PointPayload;
}

export interface VectorFilter {
  kinds?: MemoryKind[];
  subject?: string;
  /** Inclusive bounds on occurredAt, epoch milliseconds. */
  occurredFrom?: number;
  occurredTo?: number;
  /** Default `hot`: archived memories are not searched. `any` searches both. */
  tier?: MemoryTier | 'any';
  /** Default false: superseded memories are excluded. */
  includeSuperseded?: boolean;
}

export interface VectorHit {
  id: string;
  /** Cosine similarity in [-1, 1]. */
  similarity: number;
}

/** A nearest-neighbour index over memory vectors. Vectors are unit-normalised by the caller. */
export interface VectorStore {
  readonly name: 'embedded' | 'qdrant';
  /** Vector size; undefined only for a store that opens when the embedder's size is known (memory/deferred-store.ts). */
  readonly dims: number | undefined;
  /** Creates what the store needs (collection, payload indexes) or loads what it has; idempotent. */
  init(): Promise<void>;
  /** Inserts or replaces points by id, in batches. */
  upsert(points: VectorPoint[]): Promise<void>;
  /** Changes payload fields of existing points (tier, superseded). Unknown ids are ignored. */
  setPayload(ids: string[], payload: Partial<PointPayload>): Promise<void>;
  delete(ids: string[]): Promise<void>;
  /** The k most similar points passing the filter, most similar first; ties broken by id. */
  search(query: { vector: Float32Array; k: number; filter?: VectorFilter }): Promise<VectorHit[]>;
  count(filter?: VectorFilter): Promise<number>;
  close(): Promise<void>;
}

/** Turns texts into unit-length vectors. */
export interface Embedder {
  /** e.g. `text-embedding-3-small` or `offline-hash-384`; part of the cache key. */
  readonly model: string;
  /**
   * Vector size. Undefined until the first answer when it is not configured
   * and the endpoint decides it (an Ollama embedding model, say): the
   * embedder takes the length of the first vector it gets back.
   */
  readonly dims: number | undefined;
  /** True when the vectors are lexical (no model): every output that used them says so. */
  readonly lexical: boolean;
  embed(texts: string[]): Promise<Float32Array[]>;
}

/** An embedder whose size is known before it is used (the offline one, or a configured size). */
export interface SizedEmbedder extends Embedder {
  readonly dims: number;
}
