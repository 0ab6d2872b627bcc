/**
 * The side-effect ledger (`side_effects`) for connectors that reach the
 * outside world: an `intent` row before the external call, `committed` with
 * the result after it, `failed` when the other side refused for good, and
 * `compensated_at` once the effect was undone. One row per idempotency key;
 * every attempt of the same step finds the same row.
 *
 * (connectors/email.ts keeps its own copy of this protocol, which predates
 * this module; the Slack and webhook connectors use this one.)
 */
import { randomUUID } from 'node:crypto';
import { ApplicationFailure } from '@temporalio/common';
import type { Db } from '../db/prisma';
import type { CompensationInput } from '../shared/activity-io';
import { appendEvents, json } from './events';

/** Which effect a row is: its key (stable across retries), the goal and step it belongs to, and its kind. */
export interface SideEffectRef {
  idempotencyKey: string;
  goalId?: string;
  stepId?: string;
  /** e.g. `slack.post`, `webhook.call`. */
  kind: string;
}

/** The row as a connector reads it after recording its intent. */
export interface SideEffectRow {
  status: 'intent' | 'committed' | 'failed' | string;
  /** How many attempts have recorded an intent, this one included: above 1, an earlier one may have reached the outside. */
  attempts: number;
  result: unknown;
  createdAt: Date;
  compensatedAt: Date | null;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * Records the intent to act (attempts + 1) and returns the row as it now
 * stands. A `failed` row is reopened: the other side refused it, so nothing
 * was done that a new attempt could duplicate.
 */
export async function recordIntent(
  prisma: Db,
  ref: SideEffectRef,
  request: Record<string, unknown>,
): Promise<SideEffectRow> {
  const upsert = () =>
    prisma.sideEffect.upsert({
      where: { idempotencyKey: ref.idempotencyKey },
      create: {
        id: `se_${randomUUID()}`,
        idempotencyKey: ref.idempotencyKey,
        goalId: ref.goalId ?? null,
        stepId: ref.stepId ?? null,
        kind: ref.kind,
        status: 'intent',
        attempts: 1,
        request: json(request),
      },
      update: { attempts: { increment: 1 } },
    });
  let row;
  try {
    // INSERT ... ON CONFLICT DO UPDATE on PostgreSQL.
    row = await upsert();
  } catch (err) {
    // Two workers racing on the insert: the loser takes the update branch.
    if ((err as { code?: unknown }).code !== 'P2002') throw err;
    row = await upsert();
  }
  if (row.status === 'failed') {
    await prisma.sideEffect.updateMany({
      where: { idempotencyKey: ref.idempotencyKey, status: 'failed' },
      data: { status: 'intent', error: null },
    });
    row = { ...row, status: 'intent' };
  }
  return row;
}

/**
 * Marks the effect done with what the other side answered. The effect has
 * already happened, so losing this write would let a retry repeat it: a
 * transient database error gets a few quick retries before the attempt fails.
 */
export async function markCommitted(prisma: Db, key: string, result: Record<string, unknown>): Promise<void> {
  let lastErr: unknown;
  for (let attempt = 0; attempt < 4; attempt++) {
    try {
      await prisma.sideEffect.update({
        where: { idempotencyKey: key },
        data: { status: 'committed', result: json(result), error: null, committedAt: new Date() },
      });
      return;
    } catch (err) {
      lastErr = err;
      await sleep(200 * 2 ** attempt);
    }
  }
  throw ApplicationFailure.create({
    message: `side effect ${key} happened but recording its commit failed: ${lastErr instanceof Error ? lastErr.message : String(lastErr)}`,
    type: 'SideEffectCommitFailed',
    nonRetryable: false,
    cause: lastErr instanceof Error ? lastErr : undefined,
  });
}

/** The other side refused the effect for good: nothing happened, and the reason is kept. */
export async function markFailed(prisma: Db, key: string, error: string): Promise<void> {
  await prisma.sideEffect.update({ where: { idempotencyKey: key }, data: { status: 'failed', error } });
}

/** A transient failure: the row stays `intent`, with the reason kept for whoever looks at a stuck effect. */
export async function noteError(prisma: Db, key: string, error: string): Promise<void> {
  await prisma.sideEffect.update({ where: { idempotencyKey: key }, data: { error } }).catch(() => undefined);
}

/** The ledger row of a key, if any. */
export async function findSideEffect(prisma: Db, key: string): Promise<SideEffectRow | null> {
  return prisma.sideEffect.findUnique({
    where: { idempotencyKey: key },
    select: { status: true, attempts: true, result: true, createdAt: true, compensatedAt: true },
  });
}

/**
 * Compensation of a step whose effect lives outside (a posted message): the
 * ledger row gets `compensated_at`, the step is marked compensated, and one
 * `step.compensated` event names what was undone. A retried compensation
 * finds the step compensated and logs nothing twice.
 */
export async function compensateSideEffectStep(
  prisma: Db,
  input: CompensationInput,
  effect: { idempotencyKey: string; undone: string },
): Promise<void> {
  await prisma.$transaction(async (tx) => {
    await tx.sideEffect.updateMany({
      where: { idempotencyKey: effect.idempotencyKey, compensatedAt: null },
      data: { compensatedAt: new Date() },
    });
    const changed = await tx.step.updateMany({
      where: {
        goalId: input.goalId,
        planVersion: input.planVersion,
        stepId: input.stepId,
        NOT: { status: 'compensated' },
      },
      data: { status: 'compensated' },
    });
    if (changed.count === 0) return;
    await appendEvents(tx, [
      {
        goalId: input.goalId,
        type: 'step.compensated',
        actor: 'keel',
        data: {
          stepId: input.stepId,
          idempotencyKey: effect.idempotencyKey,
          undone: effect.undone,
          reason: input.reason,
        },
      },
    ]);
  });
}
