/**
 * Which Slack message shows which approval (`slack_messages`, one row per
 * approval). A row is written — claimed — before its message is posted, with
 * `ts` null until Slack answers: the claim is what keeps two API processes,
 * or one process before and after a restart, from posting one approval twice.
 * Approvals posted as one group message share `message_key` and `ts`.
 * `shown_status` is the approval status the message shows; a row whose
 * approval's status differs is a message to update.
 */
import type { Db } from '../db/prisma';
import type { SlackApproval } from './blocks';

/** An approval row as Prisma reads it, with its goal's title. */
type ApprovalRow = Awaited<ReturnType<Db['approval']['findMany']>>[number] & { goal: { title: string } };

/** The tools of steps, for many approvals at once (the latest plan version's step of each id). */
async function toolsOf(prisma: Db, approvals: { goalId: string; stepId: string }[]): Promise<Map<string, string>> {
  if (approvals.length === 0) return new Map();
  const steps = await prisma.step.findMany({
    where: { OR: approvals.map((a) => ({ goalId: a.goalId, stepId: a.stepId })) },
    orderBy: { planVersion: 'asc' },
    select: { goalId: true, stepId: true, tool: true },
  });
  // Ascending plan versions: the latest one's tool is written last.
  return new Map(steps.map((s) => [`${s.goalId}/${s.stepId}`, s.tool]));
}

/** Rows as the Slack parts read them (the shown hash and channel only when the approval row has them). */
async function toSlackApprovals(prisma: Db, rows: ApprovalRow[]): Promise<SlackApproval[]> {
  const tools = await toolsOf(prisma, rows);
  return rows.map((r) => {
    const extra = r as unknown as { shownHash?: unknown; channel?: unknown };
    return {
      id: r.id,
      goalId: r.goalId,
      goalTitle: r.goal.title,
      stepId: r.stepId,
      title: r.title,
      summary: r.summary,
      rationale: r.rationale,
      proposed: r.proposed,
      status: r.status,
      decision: r.decision,
      edits: r.edits,
      comment: r.comment,
      actor: r.actor,
      expiresAt: r.expiresAt,
      decidedAt: r.decidedAt,
      kind: tools.get(`${r.goalId}/${r.stepId}`) ?? 'unknown',
      ...(typeof extra.shownHash === 'string' && extra.shownHash ? { shownHash: extra.shownHash } : {}),
      ...(typeof extra.channel === 'string' && extra.channel ? { channel: extra.channel } : {}),
    };
  });
}

/** One approval as the Slack parts read it; undefined when it does not exist. */
export async function loadApproval(prisma: Db, approvalId: string): Promise<SlackApproval | undefined> {
  const row = await prisma.approval.findUnique({
    where: { id: approvalId },
    include: { goal: { select: { title: true } } },
  });
  return row ? (await toSlackApprovals(prisma, [row]))[0] : undefined;
}

/** Pending, unexpired approvals no message shows or claims yet, oldest first. */
export async function unposted(prisma: Db, limit: number, now = new Date()): Promise<SlackApproval[]> {
  const rows = await prisma.approval.findMany({
    where: { status: 'pending', expiresAt: { gt: now }, slackMessage: { is: null } },
    include: { goal: { select: { title: true } } },
    orderBy: { createdAt: 'asc' },
    take: limit,
  });
  return toSlackApprovals(prisma, rows);
}

/**
 * Claims approvals for one message: the ids this caller now owns (an
 * approval another process claimed first is left out, never posted twice).
 */
export async function claim(
  prisma: Db,
  message: { key: string; kind: string; channel: string },
  approvalIds: string[],
): Promise<string[]> {
  const created = await prisma.slackMessage.createManyAndReturn({
    data: approvalIds.map((approvalId) => ({
      approvalId,
      messageKey: message.key,
      kind: message.kind,
      channel: message.channel,
    })),
    skipDuplicates: true,
    select: { approvalId: true },
  });
  return created.map((c) => c.approvalId);
}

/** The message is in Slack: its channel id and ts, for every approval it shows. */
export async function markPosted(prisma: Db, key: string, posted: { channel: string; ts: string }): Promise<void> {
  await prisma.slackMessage.updateMany({
    where: { messageKey: key },
    data: { channel: posted.channel, ts: posted.ts, postedAt: new Date() },
  });
}

/** Gives up a claim that Slack refused outright (nothing was posted), so a later pass posts it again. */
export async function release(prisma: Db, key: string): Promise<void> {
  await prisma.slackMessage.deleteMany({ where: { messageKey: key, ts: null } });
}

/** Claims whose post never got its ts written (the poster died or timed out) and are older than `before`. */
export async function staleClaims(
  prisma: Db,
  before: Date,
  limit: number,
): Promise<{ key: string; kind: string; channel: string; claimedAt: Date }[]> {
  const rows = await prisma.slackMessage.findMany({
    where: { ts: null, claimedAt: { lt: before } },
    distinct: ['messageKey'],
    select: { messageKey: true, kind: true, channel: true, claimedAt: true },
    take: limit,
  });
  return rows.map((r) => ({ key: r.messageKey, kind: r.kind, channel: r.channel, claimedAt: r.claimedAt }));
}

/** Takes over a stale claim; false when another process took it over first. */
export async function reclaim(prisma: Db, key: string, claimedAt: Date): Promise<boolean> {
  const taken = await prisma.slackMessage.updateMany({
    where: { messageKey: key, ts: null, claimedAt },
    data: { claimedAt: new Date() },
  });
  return taken.count > 0;
}

/** Keys of posted messages that show an approval as pending while the approval no longer is. */
export async function outdated(prisma: Db, limit: number): Promise<string[]> {
  const rows = await prisma.slackMessage.findMany({
    where: { ts: { not: null }, shownStatus: 'pending', approval: { status: { not: 'pending' } } },
    distinct: ['messageKey'],
    select: { messageKey: true },
    take: limit,
  });
  return rows.map((r) => r.messageKey);
}

/** One message: where it is and the approvals it shows, in the order they were claimed. */
export interface StoredMessage {
  key: string;
  kind: string;
  channel: string;
  ts: string | null;
  approvals: SlackApproval[];
  /** The status each approval's row says the message shows. */
  shown: Map<string, string>;
}

export async function loadMessage(prisma: Db, key: string): Promise<StoredMessage | undefined> {
  const rows = await prisma.slackMessage.findMany({
    where: { messageKey: key },
    include: { approval: { include: { goal: { select: { title: true } } } } },
    orderBy: [{ claimedAt: 'asc' }, { approvalId: 'asc' }],
  });
  if (rows.length === 0) return undefined;
  return {
    key,
    kind: rows[0].kind,
    channel: rows[0].channel,
    ts: rows[0].ts,
    approvals: await toSlackApprovals(
      prisma,
      rows.map((r) => r.approval),
    ),
    shown: new Map(rows.map((r) => [r.approvalId, r.shownStatus])),
  };
}

/** The message key that shows an approval, if one does. */
export async function messageKeyOf(prisma: Db, approvalId: string): Promise<string | undefined> {
  const row = await prisma.slackMessage.findUnique({ where: { approvalId }, select: { messageKey: true } });
  return row?.messageKey;
}

/** Records the status the message now shows for each approval. */
export async function markShown(prisma: Db, shown: { approvalId: string; status: string }[]): Promise<void> {
  const now = new Date();
  await prisma.$transaction(
    shown.map((s) =>
      prisma.slackMessage.update({
        where: { approvalId: s.approvalId },
        data: { shownStatus: s.status, updatedAt: now },
      }),
    ),
  );
}

/** Keys of posted messages showing an approval that was escalated (its first deadline passed) and not yet reminded of. */
export async function unreminded(prisma: Db, limit: number): Promise<string[]> {
  const rows = await prisma.slackMessage.findMany({
    where: { ts: { not: null }, remindedAt: null, approval: { status: 'pending', escalated: true } },
    distinct: ['messageKey'],
    select: { messageKey: true },
    take: limit,
  });
  return rows.map((r) => r.messageKey);
}

/**
 * Claims a message's reminder before it is sent: true for exactly one caller across processes (the row is
 * marked reminded in one statement); {@link releaseReminder} gives it back when sending failed.
 */
export async function claimReminder(prisma: Db, key: string): Promise<boolean> {
  const taken = await prisma.slackMessage.updateMany({
    where: { messageKey: key, remindedAt: null },
    data: { remindedAt: new Date() },
  });
  return taken.count > 0;
}

export async function releaseReminder(prisma: Db, key: string): Promise<void> {
  await prisma.slackMessage.updateMany({ where: { messageKey: key }, data: { remindedAt: null } });
}
