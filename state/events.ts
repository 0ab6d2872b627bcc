import type { Prisma } from '../generated/prisma/client';
import type { Db } from '../db/prisma';

/** A Prisma client or an interactive transaction: both can append events. */
export type DbTx = Db | Prisma.TransactionClient;

export interface NewEvent {
  goalId?: string | null;
  type: string;
  actor: string;
  data?: Record<string, unknown>;
}

/** Appends business events to the append-only log (the table refuses UPDATE and DELETE). */
export async function appendEvents(db: DbTx, events: NewEvent[]): Promise<void> {
  if (events.length === 0) return;
  await db.event.createMany({
    data: events.map((e) => ({
      goalId: e.goalId ?? null,
      type: e.type,
      actor: e.actor,
      data: (e.data ?? {}) as Prisma.InputJsonValue,
    })),
  });
}

export const json = (v: unknown): Prisma.InputJsonValue => (v ?? {}) as Prisma.InputJsonValue;
