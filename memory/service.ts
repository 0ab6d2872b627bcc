/**
 * The memory service: one place that remembers, supersedes, searches with
 * tunable ranking, takes feedback and archives. PostgreSQL's memory_items row
 * is written first (it is canonical); the vector store is told after.
 */
import { createHash } from 'node:crypto';
import type { MemoryItem, Prisma } from '../generated/prisma/client';
import type { Db } from '../db/prisma';
import { embedderDims } from './embedders';
import { assertOneVectorSpace } from './embedding-check';
import {
  decayReason,
  nextFeedback,
  retrievalConfig,
  scoreMemory,
  type DeepPartial,
  type RetrievalConfig,
} from './retrieval';
import type { Embedder, MemoryKind, MemorySource, MemoryTier, VectorFilter, VectorStore } from './types';
import { decodeFloat32LE, encodeFloat32LE } from './vectors';

export interface RememberInput {
  text: string;
  kind: MemoryKind;
  subject?: string | null;
  /** With a subject: a newer memory of the same subject and attribute supersedes the older one. */
  attribute?: string | null;
  importance?: number;
  source: MemorySource;
  occurredAt?: Date;
  validUntil?: Date | null;
  humanEdited?: boolean;
  goalId?: string | null;
  metadata?: Record<string, unknown>;
  /** Defaults to an id derived from kind, subject, attribute and text, so the same memory is stored once. */
  id?: string;
}

export interface SearchInput {
  query: string;
  k?: number;
  subject?: string;
  kinds?: MemoryKind[];
  occurredFrom?: Date;
  occurredTo?: Date;
  includeSuperseded?: boolean;
  tier?: MemoryTier | 'any';
  /** Also report what decay pushed below the cut (default true). */
  withBuried?: boolean;
}

export interface MemoryHit {
  id: string;
  text: string;
  kind: MemoryKind;
  subject: string | null;
  attribute: string | null;
  source: string;
  importance: number;
  feedback: number;
  humanEdited: boolean;
  occurredAt: Date;
  score: number;
  similarity: number;
  recency: number;
  superseded: boolean;
}

export interface SearchResult {
  results: MemoryHit[];
  /** Items that would have made the cut without recency decay, with the reason they did not. */
  buried: (MemoryHit & { reason: string })[];
  /** True when vectors are lexical (offline embedder), not semantic. */
  lexical: boolean;
  embeddingModel: string;
}

/** A UUID-shaped id from content: Qdrant accepts UUIDs, and the same memory maps to the same point. */
export function memoryId(
  kind: string,
  subject: string | null | undefined,
  attribute: string | null | undefined,
  text: string,
): string {
  const h = createHash('sha256')
    .update([kind, subject ?? '', attribute ?? '', text].join('\u0000'))
    .digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-${((parseInt(h[16], 16) & 3) | 8).toString(16)}${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

function failReindex(message: string): never {
  throw new RangeError(message);
}

export interface MemoryServiceDeps {
  prisma: Db;
  store: VectorStore;
  embedder: Embedder;
  config?: DeepPartial<RetrievalConfig>;
  now?: () => Date;
}

export type MemoryService = ReturnType<typeof createMemoryService>;

export function createMemoryService(deps: MemoryServiceDeps) {
  const { prisma, store, embedder } = deps;
  const config = retrievalConfig(deps.config);
  const now = deps.now ?? (() => new Date());
  let ready: Promise<number> | undefined;
  /**
   * Learns the embedder's size (asking the endpoint if nothing has yet),
   * refuses a database holding vectors of another model or size (typed
   * EmbeddingMismatch: remember and search write and return nothing), then
   * opens the store. Resolves to the size. A failure is not kept, so a
   * process recovers once `npm run memory:reembed` has run.
   */
  const init = (): Promise<number> =>
    (ready ??= (async () => {
      const dims = await embedderDims(embedder);
      await assertOneVectorSpace(prisma, embedder.model, dims);
      await store.init();
      return dims;
    })().catch((err: unknown) => {
      ready = undefined;
      throw err;
    }));

  function hit(row: MemoryItem, similarity: number, at: Date) {
    const s = scoreMemory(
      {
        kind: row.kind as MemoryKind,
        similarity,
        occurredAt: row.occurredAt,
        importance: row.importance,
        humanEdited: row.humanEdited,
        source: row.source,
        feedback: row.feedback,
      },
      at,
      config,
    );
    const h: MemoryHit = {
      id: row.id,
      text: row.text,
      kind: row.kind as MemoryKind,
      subject: row.subject,
      attribute: row.attribute,
      source: row.source,
      importance: row.importance,
      feedback: row.feedback,
      humanEdited: row.humanEdited,
      occurredAt: row.occurredAt,
      score: s.score,
      similarity,
      recency: s.recency,
      superseded: row.supersededBy !== null,
    };
    return { hit: h, scored: s };
  }

  const service = {
    config,
    embedder,
    store,
    init,

    /**
     * Remembers many items with one embedding call. Items already stored (same
     * id) are left as they are; a newer item of a subject + attribute marks
     * the older ones superseded (kept, excluded from retrieval by default).
     */
    async rememberMany(inputs: RememberInput[]): Promise<{ ids: string[]; created: string[]; superseded: string[] }> {
      if (inputs.length === 0) {
        await init();
        return { ids: [], created: [], superseded: [] };
      }
      for (const input of inputs) {
        if (!input.text.trim()) throw new Error('memory text must not be empty');
        if (input.importance !== undefined && !(input.importance >= 0 && input.importance <= 1))
          throw new Error('importance must be between 0 and 1');
      }
      // Embedding first teaches an embedder of unconfigured size its size, so init() needs no probe.
      const vectors = await embedder.embed(inputs.map((i) => i.text));
      await init();
      const at = now();
      const rows = inputs.map((input, i) => ({
        id: input.id ?? memoryId(input.kind, input.subject, input.attribute, input.text),
        text: input.text,
        kind: input.kind,
        subject: input.subject ?? null,
        attribute: input.attribute ?? null,
        importance: input.importance ?? 0.5,
        source: input.source,
        occurredAt: input.occurredAt ?? at,
        validUntil: input.validUntil ?? null,
        learnedAt: at,
        humanEdited: input.humanEdited ?? input.source === 'human',
        goalId: input.goalId ?? null,
        embedding: encodeFloat32LE(vectors[i]),
        embeddingModel: embedder.model,
        metadata: (input.metadata ?? {}) as Prisma.InputJsonValue,
        vector: vectors[i],
      }));
      const needsSupersede = rows.some((r) => r.subject && r.attribute);
      const { created, superseded } = !needsSupersede
        ? // Nothing can supersede anything: one INSERT … ON CONFLICT DO NOTHING tells what is new.
          await (async () => {
            const inserted = await prisma.memoryItem.createManyAndReturn({
              data: rows.map(({ vector: _v, ...r }) => r),
              skipDuplicates: true,
              select: { id: true },
            });
            const ids = new Set(inserted.map((r) => r.id));
            return {
              created: rows.filter((r, i) => ids.has(r.id) && rows.findIndex((o) => o.id === r.id) === i),
              superseded: [] as string[],
            };
          })()
        : await prisma.$transaction(async (tx) => {
            const existing = new Set(
              (
                await tx.memoryItem.findMany({ where: { id: { in: rows.map((r) => r.id) } }, select: { id: true } })
              ).map((r) => r.id),
            );
            const fresh = rows.filter((r, i) => !existing.has(r.id) && rows.findIndex((o) => o.id === r.id) === i);
            if (fresh.length > 0) {
              await tx.memoryItem.createMany({ data: fresh.map(({ vector: _v, ...r }) => r), skipDuplicates: true });
            }
            const supersededIds: string[] = [];
            for (const r of fresh) {
              if (!r.subject || !r.attribute) continue;
              const older = await tx.memoryItem.findMany({
                where: {
                  subject: r.subject,
                  attribute: r.attribute,
                  supersededBy: null,
                  id: { not: r.id },
                  occurredAt: { lte: r.occurredAt },
                },
                select: { id: true },
              });
              if (older.length === 0) continue;
              await tx.memoryItem.updateMany({
                where: { id: { in: older.map((o) => o.id) } },
                data: { supersededBy: r.id, supersededAt: at },
              });
              supersededIds.push(...older.map((o) => o.id));
            }
            return { created: fresh, superseded: supersededIds };
          });
      if (created.length > 0) {
        await store.upsert(
          created.map((r) => ({
            id: r.id,
            vector: r.vector,
            payload: {
              kind: r.kind,
              subject: r.subject,
              occurredAt: r.occurredAt.getTime(),
              tier: 'hot',
              superseded: false,
            },
          })),
        );
      }
      if (superseded.length > 0) await store.setPayload(superseded, { superseded: true });
      return { ids: rows.map((r) => r.id), created: created.map((r) => r.id), superseded };
    },

    async remember(input: RememberInput): Promise<{ id: string; created: boolean; superseded: string[] }> {
      const r = await service.rememberMany([input]);
      return { id: r.ids[0], created: r.created.length > 0, superseded: r.superseded };
    },

    /** Ranked retrieval: exact nearest neighbours by similarity, re-ranked by the configured score. */
    async search(input: SearchInput): Promise<SearchResult> {
      const k = input.k ?? 10;
      const [vector] = await embedder.embed([input.query]);
      await init();
      const filter: VectorFilter = {
        ...(input.kinds ? { kinds: input.kinds } : {}),
        ...(input.subject ? { subject: input.subject } : {}),
        ...(input.occurredFrom ? { occurredFrom: input.occurredFrom.getTime() } : {}),
        ...(input.occurredTo ? { occurredTo: input.occurredTo.getTime() } : {}),
        tier: input.tier ?? 'hot',
        includeSuperseded: input.includeSuperseded ?? false,
      };
      const candidates = await store.search({
        vector,
        k: Math.max(k * config.candidateFactor, config.minCandidates),
        filter,
      });
      const rows = await prisma.memoryItem.findMany({ where: { id: { in: candidates.map((c) => c.id) } } });
      const byId = new Map(rows.map((r) => [r.id, r]));
      const at = now();
      const scored = candidates
        .map((c) => ({ row: byId.get(c.id), similarity: c.similarity }))
        .filter(
          (c): c is { row: MemoryItem; similarity: number } =>
            c.row !== undefined && (c.row.validUntil === null || c.row.validUntil > at),
        )
        .map((c) => hit(c.row, c.similarity, at));
      const ranked = [...scored].sort((a, b) => b.hit.score - a.hit.score || a.hit.id.localeCompare(b.hit.id));
      const results = ranked.slice(0, k);
      const buried: SearchResult['buried'] = [];
      if (input.withBuried !== false) {
        const undecayed = [...scored].sort(
          (a, b) => b.scored.undecayedScore - a.scored.undecayedScore || a.hit.id.localeCompare(b.hit.id),
        );
        const kept = new Set(results.map((r) => r.hit.id));
        for (const s of undecayed.slice(0, k)) {
          if (kept.has(s.hit.id) || buried.length >= config.buriedLimit) continue;
          buried.push({ ...s.hit, reason: decayReason(s.hit.kind, s.scored, config) });
        }
      }
      if (results.length > 0) {
        // Best effort and never a wait: concurrent searches touching the same rows skip the locked ones
        // instead of queueing (or deadlocking) behind each other.
        await prisma.$executeRaw`
          UPDATE memory_items SET last_accessed_at = ${at}
           WHERE id IN (SELECT id FROM memory_items WHERE id = ANY(${results.map((r) => r.hit.id)}::text[])
                         ORDER BY id FOR UPDATE SKIP LOCKED)`;
      }
      return { results: results.map((r) => r.hit), buried, lexical: embedder.lexical, embeddingModel: embedder.model };
    },

    /** Everything remembered about a subject, newest first, superseded and archived items flagged. */
    async forSubject(subject: string, opts: { limit?: number } = {}) {
      const rows = await prisma.memoryItem.findMany({
        where: { subject },
        orderBy: [{ occurredAt: 'desc' }, { id: 'asc' }],
        take: opts.limit ?? 200,
        omit: { embedding: true },
      });
      return rows.map((r) => ({ ...r, superseded: r.supersededBy !== null }));
    },

    /** Moves feedback of cited memories after an approval decision. Returns how many changed. */
    async applyFeedback(
      tx: Prisma.TransactionClient | Db,
      memoryIds: string[],
      outcome: 'approved' | 'rejected',
    ): Promise<number> {
      return applyMemoryFeedback(tx, memoryIds, outcome, config);
    },

    /** Takes memories out of the hot index; their rows stay in PostgreSQL as the archive. */
    async archive(ids: string[], summaryId?: string): Promise<number> {
      if (ids.length === 0) return 0;
      await init();
      const updated = await prisma.memoryItem.updateMany({
        where: { id: { in: ids }, tier: 'hot' },
        data: { tier: 'archive', ...(summaryId ? { metadata: { archivedInto: summaryId } } : {}) },
      });
      await store.setPayload(ids, { tier: 'archive' });
      return updated.count;
    },

    /** Hot, archived and superseded counts: the size of what retrieval searches. */
    async stats() {
      const [hot, archived, superseded] = await Promise.all([
        prisma.memoryItem.count({ where: { tier: 'hot', supersededBy: null } }),
        prisma.memoryItem.count({ where: { tier: 'archive' } }),
        prisma.memoryItem.count({ where: { supersededBy: { not: null } } }),
      ]);
      return { hot, archived, superseded };
    },

    /** Re-sends every canonical row to the vector store (a new Qdrant collection, or after an outage). */
    async reindex(batch = 500): Promise<number> {
      const dims = await init();
      let sent = 0;
      let cursor: string | undefined;
      for (;;) {
        const rows = await prisma.memoryItem.findMany({
          where: cursor ? { id: { gt: cursor } } : {},
          orderBy: { id: 'asc' },
          take: batch,
        });
        if (rows.length === 0) return sent;
        await store.upsert(
          rows.map((r) => ({
            id: r.id,
            vector:
              decodeFloat32LE(r.embedding, dims) ??
              failReindex(`memory ${r.id}: embedding is not ${dims} float32 values`),
            payload: {
              kind: r.kind as MemoryKind,
              subject: r.subject,
              occurredAt: r.occurredAt.getTime(),
              tier: r.tier as MemoryTier,
              superseded: r.supersededBy !== null,
            },
          })),
        );
        sent += rows.length;
        cursor = rows[rows.length - 1].id;
      }
    },
  };
  return service;
}

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** Feedback for the memories an approved or rejected action cited; ids that are not memories are ignored. */
export async function applyMemoryFeedback(
  tx: Prisma.TransactionClient | Db,
  memoryIds: string[],
  outcome: 'approved' | 'rejected',
  config: RetrievalConfig = retrievalConfig(),
): Promise<number> {
  const ids = [...new Set(memoryIds.filter((id) => UUID_RE.test(id)))];
  if (ids.length === 0) return 0;
  // In id order, so two approvals citing the same memories lock them in the same order.
  const rows = await tx.memoryItem.findMany({
    where: { id: { in: ids } },
    select: { id: true, feedback: true },
    orderBy: { id: 'asc' },
  });
  for (const r of rows) {
    await tx.memoryItem.update({ where: { id: r.id }, data: { feedback: nextFeedback(r.feedback, outcome, config) } });
  }
  return rows.length;
}
