/** Approvals: the inbox, and decisions one at a time or in a batch (delivered by commands/decisions.ts). */
import { Router } from 'express';
import { z } from 'zod';
import { decide, decideMany } from '../commands/decisions';
import { APPROVAL_STATUSES, DECISIONS } from '../shared/goal';
import { httpErrorOf, parse, route } from './errors';
import { commandDeps, type AppDeps } from './types';
import { approvalView } from './views';

// Field names and text here; which fields a step's tool lets the operator change, and their limits, are
// its spec's to say (tools/<tool>/spec.ts), checked by the decide command.
const edits = z.record(z.string().min(1).max(100), z.string().max(100_000));

const shownHash = z
  .string()
  .regex(/^[0-9a-f]{64}$/, "shownHash is the sha256 hex of what was shown (the approval's shownHash)");
const idempotencyKey = z.string().trim().min(1).max(200);
const decisionFields = {
  decision: z.enum(DECISIONS),
  edits: edits.optional(),
  comment: z.string().max(5_000).optional(),
  /** The approval's `shownHash` as the decider saw it: a decision on another version is refused (409). */
  shownHash: shownHash.optional(),
};
const decisionBody = z.strictObject(decisionFields).refine((d) => !(d.decision === 'reject' && d.edits), {
  message: 'edits only go with approve',
  path: ['edits'],
});
const batchBody = z.strictObject({
  decisions: z
    .array(
      z.strictObject({
        approvalId: z.string().min(1).max(100),
        ...decisionFields,
        /** Per item, what the Idempotency-Key header is for one decision. */
        idempotencyKey: idempotencyKey.optional(),
      }),
    )
    .min(1, 'decisions must not be empty')
    .max(200),
});
const listQuery = z.object({
  status: z.enum(APPROVAL_STATUSES).optional(),
  goalId: z.string().optional(),
  limit: z.coerce.number().int().min(1).max(500).default(100),
  /** `kind`: grouped by the tool the approval is for (all outgoing emails, all Slack posts…). */
  groupBy: z.enum(['kind']).optional(),
});
const headers = z.object({
  'idempotency-key': idempotencyKey.optional(),
  /** A client of the HTTP API may say it is the command line; other channels have their own routes. */
  'x-keel-channel': z.enum(['api', 'cli']).optional(),
});

export function approvalRoutes(deps: AppDeps): Router {
  const { prisma } = deps;
  const commands = commandDeps(deps);
  const r = Router();

  /** GET /v1/approvals?status=pending — the operator's inbox, oldest first. */
  r.get(
    '/approvals',
    route(async (req, res) => {
      const q = parse(listQuery, req.query, 'query');
      const approvals = await prisma.approval.findMany({
        where: { ...(q.status ? { status: q.status } : {}), ...(q.goalId ? { goalId: q.goalId } : {}) },
        orderBy: { createdAt: 'asc' },
        take: q.limit,
      });
      const views = approvals.map(approvalView);
      if (q.groupBy !== 'kind') {
        res.json({ approvals: views });
        return;
      }
      // The kind is the tool the approval is for, as its snapshot names it (`budget.raise` for a budget).
      const groups = new Map<string, typeof views>();
      for (const v of views) {
        const kind = (v.shown as { tool?: string } | undefined)?.tool ?? 'other';
        groups.set(kind, [...(groups.get(kind) ?? []), v]);
      }
      res.json({
        groups: [...groups.entries()].map(([kind, items]) => ({ kind, count: items.length, approvals: items })),
      });
    }),
  );

  /**
   * POST /v1/approvals/:approvalId/decision — 200 once the goal's workflow has
   * stored the decision; 404 unknown, 409 already decided or the goal's run
   * ended, 503 naming the cause when Temporal does not answer in time.
   */
  r.post(
    '/approvals/:approvalId/decision',
    route(async (req, res) => {
      const body = parse(decisionBody, req.body);
      const h = parse(headers, req.headers, 'headers');
      const key = h['idempotency-key'];
      res.json(
        await decide(commands, {
          approvalId: String(req.params.approvalId),
          decision: body.decision,
          edits: body.edits,
          comment: body.comment,
          channel: h['x-keel-channel'] ?? 'api',
          ...(key !== undefined ? { idempotencyKey: key } : {}),
          ...(body.shownHash !== undefined ? { shownHash: body.shownHash } : {}),
        }),
      );
    }),
  );

  /** POST /v1/approvals/decisions — many decisions, a few at a time; each gets its own result, in order. */
  r.post(
    '/approvals/decisions',
    route(async (req, res) => {
      const body = parse(batchBody, req.body);
      const outcomes = await decideMany(commands, body.decisions);
      res.json({
        results: outcomes.map((o) => {
          if (o.ok) return o.answer;
          const err = httpErrorOf(o.error);
          return { approvalId: o.approvalId, status: 'error', error: { code: err.code, message: err.message } };
        }),
      });
    }),
  );

  return r;
}
