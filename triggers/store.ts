/**
 * Triggers in PostgreSQL (the `triggers` table): created, listed, found for an
 * event, deleted. A trigger is never edited: a goal it started can always be
 * traced to the exact definition that started it (its id), and changing what
 * a trigger does is deleting it and creating another.
 */
import { randomUUID } from 'node:crypto';
import type { Prisma, Trigger as TriggerRow } from '../generated/prisma/client';
import type { Db } from '../db/prisma';
import { goalTemplateSchema, matchSchema, type Trigger, type TriggerDefinition } from './definition';

/** A row as the domain reads it; the JSON columns were validated on the way in and are parsed again on the way out. */
function fromRow(row: TriggerRow): Trigger {
  return {
    id: row.id,
    name: row.name,
    eventType: row.eventType,
    ...(row.source !== null ? { source: row.source } : {}),
    match: matchSchema.parse(row.match),
    goal: goalTemplateSchema.parse(row.goal),
    createdAt: row.createdAt,
  };
}

/**
 * Stores a new trigger; `{taken}` with the existing trigger's id when one
 * already has this name (names are unique, so a retried create makes one).
 */
export async function createTrigger(
  db: Db,
  def: TriggerDefinition,
): Promise<{ trigger: Trigger } | { taken: { id: string } }> {
  const data = {
    id: randomUUID(),
    name: def.name,
    eventType: def.eventType,
    source: def.source ?? null,
    match: def.match as Prisma.InputJsonValue,
    goal: def.goal as Prisma.InputJsonValue,
  };
  try {
    return { trigger: fromRow(await db.trigger.create({ data })) };
  } catch (err) {
    if ((err as { code?: unknown }).code !== 'P2002') throw err;
    const existing = await db.trigger.findUnique({ where: { name: def.name }, select: { id: true } });
    if (!existing) throw err;
    return { taken: existing };
  }
}

/** Every trigger, oldest first. */
export async function listTriggers(db: Db): Promise<Trigger[]> {
  return (await db.trigger.findMany({ orderBy: [{ createdAt: 'asc' }, { id: 'asc' }] })).map(fromRow);
}

/** The triggers for an event of this type and source (their conditions still to be checked), oldest first. */
export async function triggersForEvent(db: Db, event: { type: string; source: string }): Promise<Trigger[]> {
  const rows = await db.trigger.findMany({
    where: {
      eventType: { in: [event.type, '*'] },
      OR: [{ source: null }, { source: event.source }],
    },
    orderBy: [{ createdAt: 'asc' }, { id: 'asc' }],
  });
  return rows.map(fromRow);
}

/** The triggers with these ids that still exist. */
export async function triggersById(db: Db, ids: readonly string[]): Promise<Map<string, Trigger>> {
  if (ids.length === 0) return new Map();
  const rows = await db.trigger.findMany({ where: { id: { in: [...ids] } } });
  return new Map(rows.map((r) => [r.id, fromRow(r)]));
}

/** Deletes a trigger; false when there was none with this id. Goals it started are not touched. */
export async function deleteTrigger(db: Db, id: string): Promise<boolean> {
  return (await db.trigger.deleteMany({ where: { id } })).count > 0;
}
