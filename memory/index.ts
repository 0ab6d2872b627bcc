/** Builds the memory layer from configuration: Qdrant when QDRANT_URL is set, else the embedded index. */
import type { Config } from '../config/index';
import type { Db } from '../db/prisma';
import { createDeferredStore } from './deferred-store';
import { createEmbeddedStore } from './embedded-store';
import { embedderDims, embedderFromConfig } from './embedders';
import { createQdrantStore } from './qdrant-store';
import type { DeepPartial, RetrievalConfig } from './retrieval';
import { createMemoryService, type MemoryService } from './service';
import type { Embedder, VectorStore } from './types';

export function vectorStoreFromConfig(
  config: Pick<Config, 'QDRANT_URL' | 'QDRANT_API_KEY' | 'KEEL_QDRANT_COLLECTION'>,
  prisma: Db,
  dims: number,
  embedModel?: string,
): VectorStore {
  if (config.QDRANT_URL) {
    return createQdrantStore({
      url: config.QDRANT_URL,
      apiKey: config.QDRANT_API_KEY,
      collection: config.KEEL_QDRANT_COLLECTION,
      dims,
      embedModel,
    });
  }
  return createEmbeddedStore({ prisma, dims });
}

export function memoryFromConfig(
  config: Pick<
    Config,
    | 'QDRANT_URL'
    | 'QDRANT_API_KEY'
    | 'KEEL_QDRANT_COLLECTION'
    | 'OPENAI_API_KEY'
    | 'OPENAI_BASE_URL'
    | 'KEEL_EMBED_MODEL'
    | 'KEEL_EMBED_DIMS'
  >,
  prisma: Db,
  opts: { retrieval?: DeepPartial<RetrievalConfig>; embedder?: Embedder } = {},
): MemoryService {
  const embedder = opts.embedder ?? embedderFromConfig(config, prisma, { dims: config.KEEL_EMBED_DIMS });
  // Opened at first use: an embedder of unconfigured size learns it from its first answer.
  const store = createDeferredStore({
    name: config.QDRANT_URL ? 'qdrant' : 'embedded',
    dims: () => embedderDims(embedder),
    open: (dims) => vectorStoreFromConfig(config, prisma, dims, embedder.model),
  });
  return createMemoryService({ prisma, embedder, store, config: opts.retrieval });
}

export type { MemoryService };
