/** Approvals: the inbox, and decisions one at a time or in a batch. */
import { Router } from 'express';
import { z } from 'zod';
import { appendEvents, json } from '../state/events';
import type { Db } from '../db/prisma';
import { decideSignal, goalWorkflowId } from '../workflows/messages';
import { approvalView } from './goals';
import { HttpError, conflict, notFound, parse, route, unavailable } from './errors';
import type { AppDeps } from './app';

const edits = z
  .strictObject({
    subject: z.string().min(1).max(998).optional(),
    body: z.string().min(1).max(100_000).optional(),
  })
  .refine((e) => e.subject !== undefined || e.body !== undefined, 'edits must change subject or body');

const decisionFields = {
  decision: z.enum(['approve', 'reject']),
  edits: edits.optional(),
  comment: z.string().max(5_000).optional(),
};
const decisionBody = z.strictObject(decisionFields).refine((d) => !(d.decision === 'reject' && d.edits), {
  message: 'edits only go with approve',
  path: ['edits'],
});
const batchBody = z.strictObject({
  decisions: z
    .array(z.strictObject({ approvalId: z.string().min(1).max(100), ...decisionFields }))
    .min(1, 'decisions must not be empty')
    .max(200),
});
const listQuery = z.object({
  status: z.enum(['pending', 'approved', 'rejected', 'expired', 'cancelled']).optional(),
  goalId: z.string().optional(),
  limit: z.coerce.number().int().min(1).max(500).default(100),
});

type DecisionInput = {
  approvalId: string;
  decision: 'approve' | 'reject';
  edits?: { subject?: string; body?: string };
  comment?: string;
};

/**
 * Records the decision and signals the goal's workflow in one transaction: if
 * Temporal does not take the signal, nothing is recorded and the caller gets a
 * 503, so a 200 always means the workflow has the decision.
 */
export async function decide(prisma: Db, deps: Pick<AppDeps, 'client'>, d: DecisionInput, actor: string) {
  const status = d.decision === 'approve' ? 'approved' : 'rejected';
  return prisma.$transaction(async (tx) => {
    const updated = await tx.approval.updateMany({
      where: { id: d.approvalId, status: 'pending' },
      data: {
        status,
        decision: d.decision,
        edits: d.edits ? json(d.edits) : undefined,
        comment: d.comment ?? null,
        actor,
        decidedAt: new Date(),
      },
    });
    const approval = await tx.approval.findUnique({ where: { id: d.approvalId } });
    if (!approval) throw notFound(`approval ${d.approvalId}`);
    if (updated.count === 0) throw conflict(`approval ${d.approvalId} is already ${approval.status}`);
    await appendEvents(tx, [
      {
        goalId: approval.goalId,
        type: `approval.${status}`,
        actor,
        data: { approvalId: approval.id, stepId: approval.stepId, comment: d.comment, edited: Boolean(d.edits) },
      },
    ]);
    try {
      await deps.client.workflow.getHandle(goalWorkflowId(approval.goalId)).signal(decideSignal, {
        approvalId: approval.id,
        decision: d.decision,
        edits: d.edits,
        comment: d.comment,
        actor,
      });
    } catch (err) {
      throw unavailable(`Temporal did not take the decision, nothing was recorded: ${(err as Error).message}`);
    }
    return { approvalId: approval.id, status };
  });
}

export function approvalRoutes(deps: AppDeps): Router {
  const { prisma } = deps;
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
      res.json({ approvals: approvals.map(approvalView) });
    }),
  );

  /** POST /v1/approvals/:approvalId/decision — 404 unknown, 409 already decided. */
  r.post(
    '/approvals/:approvalId/decision',
    route(async (req, res) => {
      const body = parse(decisionBody, req.body);
      res.json(await decide(prisma, deps, { ...body, approvalId: String(req.params.approvalId) }, deps.actor));
    }),
  );

  /** POST /v1/approvals/decisions — many decisions; each gets its own result. */
  r.post(
    '/approvals/decisions',
    route(async (req, res) => {
      const body = parse(batchBody, req.body);
      const results = [];
      for (const d of body.decisions) {
        try {
          results.push(await decide(prisma, deps, d, deps.actor));
        } catch (err) {
          if (!(err instanceof HttpError)) throw err;
          results.push({ approvalId: d.approvalId, status: 'error', error: { code: err.code, message: err.message } });
        }
      }
      res.json({ results });
    }),
  );

  return r;
}
