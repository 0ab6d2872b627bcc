/**
 * Bringing a goal's record in line with Temporal when its workflow ended
 * outside Keel (terminated in the Web UI or CLI, timed out, cancelled, or
 * gone): the workflow can no longer record its own end, so the state layer
 * records what Temporal says.
 */
import type { Db } from '../db/prisma';
import { FINISHED_GOAL_STATUSES, type GoalStatus } from '../shared/goal';
import { appendEvents, type NewEvent } from './events';

export interface ReconcileInput {
  goalId: string;
  /** Where the goal ends: `failed` for a terminated, timed-out or failed run, `cancelled` for a cancelled one. */
  goalStatus: Extract<GoalStatus, 'failed' | 'cancelled'>;
  /** The run's status as Temporal names it (`TERMINATED`, `TIMED_OUT`, ..., or `NOT_FOUND`). */
  temporalStatus: string;
  /** The plain reason shown as the goal's error. */
  error: string;
  actor: string;
}

export interface ReconcileResult {
  /** False when the goal had already finished: nothing was written. */
  reconciled: boolean;
  /** The goal's status afterwards. */
  status: string;
}

/**
 * Ends a goal whose workflow is no longer running: its row takes the status
 * and error, its pending approvals become `cancelled` (nobody can decide them
 * any more), its unfinished steps `cancelled`, and a `goal.reconciled` event
 * records what Temporal said. One transaction; a goal that already finished
 * (the workflow recorded its own end first) is left as it is.
 */
export async function reconcileGoal(db: Db, input: ReconcileInput): Promise<ReconcileResult> {
  return db.$transaction(async (tx) => {
    const now = new Date();
    const updated = await tx.goal.updateMany({
      where: { id: input.goalId, status: { notIn: [...FINISHED_GOAL_STATUSES] } },
      data: { status: input.goalStatus, error: input.error, updatedAt: now, finishedAt: now },
    });
    if (updated.count === 0) {
      const goal = await tx.goal.findUniqueOrThrow({ where: { id: input.goalId }, select: { status: true } });
      return { reconciled: false, status: goal.status };
    }
    const goal = await tx.goal.findUniqueOrThrow({ where: { id: input.goalId }, select: { planVersion: true } });
    const approvals = await tx.approval.findMany({
      where: { goalId: input.goalId, status: 'pending' },
      select: { id: true },
      orderBy: { createdAt: 'asc' },
    });
    await tx.approval.updateMany({
      where: { id: { in: approvals.map((a) => a.id) }, status: 'pending' },
      data: { status: 'cancelled', decidedAt: now },
    });
    const steps = await tx.step.findMany({
      where: {
        goalId: input.goalId,
        planVersion: goal.planVersion,
        status: { in: ['pending', 'running', 'awaiting_approval'] },
      },
      select: { stepId: true },
      orderBy: { position: 'asc' },
    });
    await tx.step.updateMany({
      where: { goalId: input.goalId, planVersion: goal.planVersion, stepId: { in: steps.map((s) => s.stepId) } },
      data: { status: 'cancelled', error: input.error, finishedAt: now },
    });
    const events: NewEvent[] = [
      ...approvals.map((a): NewEvent => ({
        goalId: input.goalId,
        type: 'approval.cancelled',
        actor: input.actor,
        data: { approvalId: a.id },
      })),
      ...steps.map((s): NewEvent => ({
        goalId: input.goalId,
        type: 'step.cancelled',
        actor: input.actor,
        data: { stepId: s.stepId, planVersion: goal.planVersion, error: input.error },
      })),
      {
        goalId: input.goalId,
        type: 'goal.reconciled',
        actor: input.actor,
        data: { goalStatus: input.goalStatus, temporalStatus: input.temporalStatus, error: input.error },
      },
    ];
    await appendEvents(tx, events);
    return { reconciled: true, status: input.goalStatus };
  });
}
