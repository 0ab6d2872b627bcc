/** Memory: remember something, search with ranking the operator can read, see one subject's memory. */
import { Router } from 'express';
import { z } from 'zod';
import { MEMORY_KINDS, type MemoryKind } from '../memory/types';
import type { MemoryHit } from '../memory/service';
import { badRequest, parse, route } from './errors';
import type { AppDeps } from './types';

const isoDate = z.iso.datetime({ offset: true }).transform((s) => new Date(s));

const rememberBody = z.strictObject({
  text: z.string().trim().min(1, 'text is required').max(20_000),
  kind: z.enum(MEMORY_KINDS as [MemoryKind, ...MemoryKind[]]).default('semantic'),
  subject: z.string().trim().min(1).max(300).optional(),
  attribute: z.string().trim().min(1).max(200).optional(),
  importance: z.number().min(0).max(1).optional(),
  occurredAt: isoDate.optional(),
  validUntil: isoDate.optional(),
});

const searchQuery = z.object({
  q: z.string().trim().min(1, 'q is required').max(2_000),
  k: z.coerce.number().int().min(1).max(100).default(10),
  subject: z.string().trim().min(1).max(300).optional(),
  kind: z
    .string()
    .transform((s) => s.split(','))
    .pipe(z.array(z.enum(MEMORY_KINDS as [MemoryKind, ...MemoryKind[]])))
    .optional(),
  from: isoDate.optional(),
  to: isoDate.optional(),
  includeSuperseded: z
    .enum(['true', 'false'])
    .transform((v) => v === 'true')
    .optional(),
  tier: z.enum(['hot', 'archive', 'any']).optional(),
});

const view = (m: MemoryHit) => ({
  id: m.id,
  text: m.text,
  score: round(m.score),
  similarity: round(m.similarity),
  recency: round(m.recency),
  kind: m.kind,
  subject: m.subject,
  attribute: m.attribute,
  source: m.source,
  importance: m.importance,
  feedback: m.feedback,
  humanEdited: m.humanEdited,
  superseded: m.superseded,
  occurredAt: m.occurredAt,
});
const round = (n: number) => Math.round(n * 10_000) / 10_000;

export function memoryRoutes(deps: AppDeps): Router {
  const r = Router();

  /** POST /v1/memory — remembered as written by a person (source `human`, boosted in ranking). */
  r.post(
    '/memory',
    route(async (req, res) => {
      const body = parse(rememberBody, req.body);
      if (body.attribute && !body.subject) {
        throw badRequest(
          'attribute: needs a subject (a newer fact supersedes an older one of the same subject and attribute)',
        );
      }
      const result = await deps.memory.remember({ ...body, source: 'human' });
      res.status(201).json({ id: result.id, created: result.created, superseded: result.superseded });
    }),
  );

  /** GET /v1/memory/search — results by score, and what recency decay pushed below the cut, with the reason. */
  r.get(
    '/memory/search',
    route(async (req, res) => {
      const q = parse(searchQuery, req.query, 'query');
      const found = await deps.memory.search({
        query: q.q,
        k: q.k,
        subject: q.subject,
        kinds: q.kind,
        occurredFrom: q.from,
        occurredTo: q.to,
        includeSuperseded: q.includeSuperseded,
        tier: q.tier,
      });
      res.json({
        results: found.results.map(view),
        buried: found.buried.map((b) => ({ ...view(b), reason: b.reason })),
        embeddingModel: found.embeddingModel,
        lexical: found.lexical,
        ...(found.lexical ? { note: 'offline embedder: similarity is lexical (shared words), not semantic' } : {}),
      });
    }),
  );

  /** GET /v1/memory/subjects/:subject — the canonical record and every memory of a subject, superseded and archived ones flagged. */
  r.get(
    '/memory/subjects/:subject',
    route(async (req, res) => {
      const subject = String(req.params.subject);
      const contact = subject.startsWith('contact:')
        ? await deps.prisma.contact.findUnique({
            where: { email: subject.slice('contact:'.length) },
            include: { organization: true },
          })
        : null;
      const memories = await deps.memory.forSubject(subject);
      res.json({
        subject,
        ...(contact ? { contact } : {}),
        memories: memories.map((m) => ({
          id: m.id,
          text: m.text,
          kind: m.kind,
          attribute: m.attribute,
          source: m.source,
          importance: m.importance,
          feedback: m.feedback,
          humanEdited: m.humanEdited,
          tier: m.tier,
          superseded: m.superseded,
          supersededBy: m.supersededBy,
          occurredAt: m.occurredAt,
          learnedAt: m.learnedAt,
          lastAccessedAt: m.lastAccessedAt,
        })),
      });
    }),
  );

  return r;
}
