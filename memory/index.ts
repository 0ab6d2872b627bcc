/** Builds the memory layer from configuration: Qdrant when QDRANT_URL is set, else the embedded index. */
import type { Config } from '../config/index';
import type { Db } from '../db/prisma';
import { createEmbeddedStore } from './embedded-store';
import { embedderFromConfig } from './embedders';
import { createQdrantStore } from './qdrant-store';
import type { DeepPartial, RetrievalConfig } from './retrieval';
import { createMemoryService, type MemoryService } from './service';
import type { Embedder, VectorStore } from './types';

export function vectorStoreFromConfig(
  config: Pick<Config, 'QDRANT_URL' | 'QDRANT_API_KEY' | 'KEEL_QDRANT_COLLECTION'>,
  prisma: Db,
  dims: number,
): VectorStore {
  if (config.QDRANT_URL) {
    return createQdrantStore({
      url: config.QDRANT_URL,
      apiKey: config.QDRANT_API_KEY,
      collection: config.KEEL_QDRANT_COLLECTION,
      dims,
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
  return createMemoryService({
    prisma,
    embedder,
    store: vectorStoreFromConfig(config, prisma, embedder.dims),
    config: opts.retrieval,
  });
}

export type { MemoryService };
