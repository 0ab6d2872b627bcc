/**
 * A VectorStore opened when its vector size is known. A store needs the
 * size before it can do anything (the embedded index allocates by it, a new
 * Qdrant collection is created with it), and an embedder whose size the
 * endpoint decides learns it only from its first answer. This wrapper asks
 * `dims()` on first use, opens the real store with the answer, and forwards
 * every call to it; a failed open is retried by the next call.
 */
import type { PointPayload, VectorFilter, VectorHit, VectorPoint, VectorStore } from './types';

/** Options of {@link createDeferredStore}. */
export interface DeferredStoreOptions {
  name: VectorStore['name'];
  /** Resolves the vector size (usually the embedder's, which may ask the endpoint). */
  dims: () => Promise<number>;
  /** Opens the real store for that size. */
  open: (dims: number) => VectorStore;
}

export function createDeferredStore(opts: DeferredStoreOptions): VectorStore {
  let inner: VectorStore | undefined;
  let opening: Promise<VectorStore> | undefined;
  let closed = false;

  function store(): Promise<VectorStore> {
    if (closed) return Promise.reject(new Error(`${opts.name} vector store is closed`));
    opening ??= opts
      .dims()
      .then((dims) => {
        if (closed) throw new Error(`${opts.name} vector store is closed`);
        inner = opts.open(dims);
        return inner;
      })
      .catch((err: unknown) => {
        opening = undefined;
        throw err;
      });
    return opening;
  }

  return {
    name: opts.name,
    get dims() {
      return inner?.dims;
    },
    async init() {
      await (await store()).init();
    },
    async upsert(points: VectorPoint[]) {
      await (await store()).upsert(points);
    },
    async setPayload(ids: string[], payload: Partial<PointPayload>) {
      await (await store()).setPayload(ids, payload);
    },
    async delete(ids: string[]) {
      await (await store()).delete(ids);
    },
    async search(query: { vector: Float32Array; k: number; filter?: VectorFilter }): Promise<VectorHit[]> {
      return (await store()).search(query);
    },
    async count(filter?: VectorFilter) {
      return (await store()).count(filter);
    },
    async close() {
      closed = true;
      await opening?.catch(() => undefined);
      await inner?.close();
    },
  };
}
