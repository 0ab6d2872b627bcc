/**
 * One vector space per database. Every stored vector must come from the
 * configured embedding model and have its size: a search over vectors of
 * two models (or sizes) would compare unrelated numbers, and the embedded
 * index would have to leave the odd ones out. So a mismatch stops remember
 * and search with one typed, non-retryable failure that says what to run.
 */
import { ApplicationFailure } from '@temporalio/common';
import type { Db } from '../db/prisma';

/** The `type` of the failure; retrying cannot help, re-embedding does. */
export const EMBEDDING_MISMATCH = 'EmbeddingMismatch';

export const REEMBED_COMMAND = 'npm run memory:reembed';

/** A group of stored vectors that the configured embedder did not make. */
export interface StoredVectors {
  model: string;
  dims: number;
  count: number;
}

/** What a mismatch failure carries in `details[0]`. */
export interface EmbeddingMismatchDetails {
  /** Where the other vectors are: `memory_items` or `qdrant collection "<name>"`. */
  where: string;
  stored: StoredVectors[];
  embedder: { model: string; dims: number };
}

function describe(s: StoredVectors): string {
  const model = s.model ? ` from model ${s.model}` : '';
  return `${s.count} vector${s.count === 1 ? '' : 's'} of ${s.dims} dimensions${model}`;
}

/**
 * The failure for vectors in `where` that the embedder `model` (giving
 * `dims`) did not make. `found` replaces the generated first sentence.
 */
export function embeddingMismatch(details: EmbeddingMismatchDetails, found?: string): ApplicationFailure {
  const { where, stored, embedder } = details;
  const listed = stored.slice(0, 3).map(describe).join(', ');
  const more = stored.length > 3 ? ` and ${stored.length - 3} more groups` : '';
  const first =
    found ??
    `${where} holds ${listed}${more}, but the configured embedding model ${embedder.model} gives ` +
      `${embedder.dims} dimensions; vectors of different models cannot be searched together.`;
  return ApplicationFailure.create({
    type: EMBEDDING_MISMATCH,
    nonRetryable: true,
    message:
      `${first} Run \`${REEMBED_COMMAND}\` to re-embed every memory with ${embedder.model} ` +
      `(until then memories are neither written nor searched).`,
    details: [details],
  });
}

/** True for the failure {@link embeddingMismatch} makes. */
export function isEmbeddingMismatch(err: unknown): err is ApplicationFailure {
  return err instanceof ApplicationFailure && err.type === EMBEDDING_MISMATCH;
}

/**
 * The memory_items vectors not made by `model` at `dims` dimensions, grouped
 * by model and size, largest group first. One scan of the table (the size
 * comes from the varlena header, the vectors are not read).
 */
export async function foreignVectors(prisma: Db, model: string, dims: number): Promise<StoredVectors[]> {
  const rows = await prisma.$queryRaw<Array<{ model: string; dims: number; count: number }>>`
    SELECT embedding_model AS model, (octet_length(embedding) / 4)::int AS dims, count(*)::int AS count
      FROM memory_items
     WHERE embedding_model <> ${model} OR octet_length(embedding) <> ${dims * 4}
     GROUP BY 1, 2
     ORDER BY 3 DESC, 1, 2`;
  return rows.map((r) => ({ model: r.model, dims: Number(r.dims), count: Number(r.count) }));
}

/** Throws {@link embeddingMismatch} when memory_items holds vectors `model` at `dims` did not make. */
export async function assertOneVectorSpace(prisma: Db, model: string, dims: number): Promise<void> {
  const stored = await foreignVectors(prisma, model, dims);
  if (stored.length > 0) throw embeddingMismatch({ where: 'memory_items', stored, embedder: { model, dims } });
}
