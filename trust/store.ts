/**
 * Trust rules in PostgreSQL (`trust_rules`): suggested from the operator's
 * unedited approvals, accepted or dismissed by the operator, revoked at any
 * time; an accepted rule approves matching steps when their approval opens
 * (state/approvals.ts), and the decision names the rule.
 */
import type { Db } from '../db/prisma';
import { Prisma } from '../generated/prisma/client';
import { appendEvents, type DbTx } from '../state/events';
import { audienceOf, ruleId, ruleText, type TrustRuleStatus } from './rules';

export interface TrustRuleView {
  id: string;
  tool: string;
  audience: string;
  text: string;
  status: string;
  /** Unedited approvals that suggested it. */
  evidence: number;
  createdAt: Date;
  decidedAt?: Date;
  decidedBy?: string;
}

const view = (r: {
  id: string;
  tool: string;
  audience: string;
  status: string;
  evidence: number;
  createdAt: Date;
  decidedAt: Date | null;
  decidedBy: string | null;
}): TrustRuleView => ({
  id: r.id,
  tool: r.tool,
  audience: r.audience,
  text: ruleText(r),
  status: r.status,
  evidence: r.evidence,
  createdAt: r.createdAt,
  ...(r.decidedAt ? { decidedAt: r.decidedAt } : {}),
  ...(r.decidedBy ? { decidedBy: r.decidedBy } : {}),
});

/** A decided approval as the rules read it. */
interface DecidedApproval {
  goalId: string;
  shown: unknown;
  edits: unknown;
}

const snapshotTool = (shown: unknown) => (shown as { tool?: string } | null)?.tool;
const snapshotInputs = (shown: unknown) =>
  (shown as { provenance?: { inputs?: Record<string, unknown> } } | null)?.provenance?.inputs;

/**
 * After a person approved without edits: when `threshold` such approvals of
 * this tool reached exactly this audience, the rule is suggested (once; a
 * dismissed or revoked rule is not suggested again). Returns the rule when it
 * was suggested just now.
 */
export async function suggestAfterApproval(
  tx: DbTx,
  approval: DecidedApproval,
  threshold: number,
  actor: string,
): Promise<TrustRuleView | undefined> {
  if (threshold <= 0 || approval.edits) return undefined;
  const tool = snapshotTool(approval.shown);
  if (!tool) return undefined;
  const audience = audienceOf(tool, snapshotInputs(approval.shown));
  if (!audience) return undefined;
  const id = ruleId(tool, audience);
  const existing = await tx.trustRule.findUnique({ where: { id } });
  if (existing && existing.status !== 'suggested') return undefined;
  // People's unedited approvals of this tool (rules and the policy's defaults do not count as trust).
  const approved = await tx.approval.findMany({
    where: {
      status: 'approved',
      edits: { equals: Prisma.DbNull },
      shown: { path: ['tool'], equals: tool },
      NOT: [{ channel: 'policy' }, { channel: 'rule' }],
    },
    select: { shown: true },
    orderBy: { decidedAt: 'desc' },
    take: 500,
  });
  const evidence = approved.filter((a) => audienceOf(tool, snapshotInputs(a.shown)) === audience).length;
  if (evidence < threshold) return undefined;
  if (existing) {
    await tx.trustRule.update({ where: { id }, data: { evidence } });
    return undefined;
  }
  const rule = await tx.trustRule.create({ data: { id, tool, audience, status: 'suggested', evidence } });
  await appendEvents(tx, [
    {
      goalId: approval.goalId,
      type: 'trust.suggested',
      actor,
      data: { ruleId: id, tool, audience, evidence },
    },
  ]);
  return view(rule);
}

/** The accepted rule that covers a step of `tool` with these inputs, if any. */
export async function acceptedRuleFor(
  tx: DbTx,
  tool: string,
  inputs: Record<string, unknown>,
): Promise<TrustRuleView | undefined> {
  const audience = audienceOf(tool, inputs);
  if (!audience) return undefined;
  const rule = await tx.trustRule.findUnique({ where: { id: ruleId(tool, audience) } });
  return rule?.status === 'accepted' ? view(rule) : undefined;
}

export async function listRules(prisma: Db, status?: TrustRuleStatus): Promise<TrustRuleView[]> {
  const rows = await prisma.trustRule.findMany({
    where: status ? { status } : {},
    orderBy: [{ createdAt: 'asc' }, { id: 'asc' }],
  });
  return rows.map(view);
}

/** What the operator may do to a rule, from which statuses. */
const TRANSITIONS = {
  accept: { from: ['suggested', 'dismissed', 'revoked'], to: 'accepted' },
  dismiss: { from: ['suggested'], to: 'dismissed' },
  revoke: { from: ['accepted'], to: 'revoked' },
} as const;
export type TrustRuleAction = keyof typeof TRANSITIONS;

export type RuleChange =
  { ok: true; rule: TrustRuleView } | { ok: false; reason: 'not_found' | 'conflict'; message: string };

/** Accepts, dismisses or revokes a rule, with its event; reversible: a revoked rule may be accepted again. */
export async function changeRule(prisma: Db, id: string, action: TrustRuleAction, actor: string): Promise<RuleChange> {
  return prisma.$transaction(async (tx) => {
    const rule = await tx.trustRule.findUnique({ where: { id } });
    if (!rule) return { ok: false, reason: 'not_found', message: `trust rule ${id} does not exist` };
    const t = TRANSITIONS[action];
    if (!(t.from as readonly string[]).includes(rule.status)) {
      return { ok: false, reason: 'conflict', message: `trust rule ${id} is ${rule.status}; it cannot be ${t.to}` };
    }
    const changed = await tx.trustRule.update({
      where: { id },
      data: { status: t.to, decidedAt: new Date(), decidedBy: actor },
    });
    await appendEvents(tx, [
      {
        type: `trust.${t.to}`,
        actor,
        data: { ruleId: id, tool: rule.tool, audience: rule.audience },
      },
    ]);
    return { ok: true, rule: view(changed) };
  });
}
