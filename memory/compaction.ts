/**
 * Compaction: old episodic memories of one subject become one summary item,
 * and the originals leave the hot index (their rows stay in PostgreSQL as the
 * archive). Keeps what retrieval searches bounded as history grows.
 */
import { createHash } from 'node:crypto';
import type { Db } from '../db/prisma';
import type { MemoryService } from './service';
import { cut } from '../shared/text';

export interface CompactionCandidatesInput {
  olderThanDays: number;
  minItems: number;
  /** Subjects per run; the next scheduled run takes the rest. */
  maxSubjects: number;
  /** Originals per summary. */
  maxItemsPerSubject: number;
}

export interface CompactionGroup {
  subject: string | null;
  ids: string[];
}

export function createCompactionActivities(deps: { prisma: Db; memory: MemoryService; now?: () => Date }) {
  const now = deps.now ?? (() => new Date());
  return {
    /** Subjects with at least `minItems` hot episodic memories older than the cut-off, oldest subjects first. */
    async findCompactionCandidates(input: CompactionCandidatesInput): Promise<CompactionGroup[]> {
      const cutoff = new Date(now().getTime() - input.olderThanDays * 24 * 60 * 60 * 1000);
      const groups = await deps.prisma.$queryRaw<{ subject: string | null; n: bigint; oldest: Date }[]>`
        SELECT subject, count(*) AS n, min(occurred_at) AS oldest FROM memory_items
         WHERE kind = 'episodic' AND tier = 'hot' AND superseded_by IS NULL AND occurred_at < ${cutoff}
         GROUP BY subject HAVING count(*) >= ${input.minItems}
         ORDER BY oldest, subject NULLS FIRST LIMIT ${input.maxSubjects}`;
      const out: CompactionGroup[] = [];
      for (const g of groups) {
        const rows = await deps.prisma.memoryItem.findMany({
          where: { kind: 'episodic', tier: 'hot', supersededBy: null, occurredAt: { lt: cutoff }, subject: g.subject },
          orderBy: [{ occurredAt: 'asc' }, { id: 'asc' }],
          take: input.maxItemsPerSubject,
          select: { id: true },
        });
        out.push({ subject: g.subject, ids: rows.map((r) => r.id) });
      }
      return out;
    },

    /** Summarizes one subject's memories into a summary item and archives them. Idempotent per id set. */
    async compactSubject(group: CompactionGroup): Promise<{ summaryId: string; archived: number }> {
      const rows = await deps.prisma.memoryItem.findMany({
        where: { id: { in: group.ids } },
        orderBy: [{ occurredAt: 'asc' }, { id: 'asc' }],
        omit: { embedding: true },
      });
      const hot = rows.filter((r) => r.tier === 'hot');
      if (hot.length === 0) return { summaryId: '', archived: 0 };
      const firstSentence = (t: string) => cut((t.replace(/\s+/g, ' ').match(/^[^.!?]*[.!?]?/)?.[0] ?? t).trim(), 240);
      const lines = [...new Set(hot.map((r) => firstSentence(r.text)))];
      const from = hot[0].occurredAt.toISOString().slice(0, 10);
      const to = hot[hot.length - 1].occurredAt.toISOString().slice(0, 10);
      const text = [
        `Summary of ${hot.length} earlier episodes${group.subject ? ` about ${group.subject}` : ''} (${from} to ${to}):`,
        ...lines.map((l) => `- ${l}`),
        '-- compacted by Keel, offline (no model was used)',
      ].join('\n');
      const key = createHash('sha256')
        .update(hot.map((r) => r.id).join(','))
        .digest('hex')
        .slice(0, 16);
      const { id } = await deps.memory.remember({
        text,
        kind: 'summary',
        subject: group.subject,
        attribute: null,
        importance: Math.max(...hot.map((r) => r.importance)),
        source: 'agent',
        occurredAt: hot[hot.length - 1].occurredAt,
        humanEdited: hot.some((r) => r.humanEdited),
        metadata: { compactedFrom: hot.map((r) => r.id), compactionKey: key, generatedBy: 'offline-summarizer' },
      });
      const archived = await deps.memory.archive(
        hot.map((r) => r.id),
        id,
      );
      return { summaryId: id, archived };
    },
  };
}
