/**
 * What comes in from outside and is stored before anything acts on it: a new
 * goal, an adapter's inbound event, a request to cancel a goal. Each is a row
 * change with its event, written here and nowhere else (the API's routes call
 * these through commands/).
 */
import { randomUUID } from 'node:crypto';
import { Prisma, type Goal } from '../generated/prisma/client';
import type { Db } from '../db/prisma';
import { memoryId, type MemoryService } from '../memory/service';
import type { GoalStatus } from '../shared/goal';
import { goalWorkflowId } from '../workflows/messages';
import { inboundMemory, mapInboundEvent } from './entities';
import { appendEvents, eventsJson, type GoalCreatedRow } from './events';

/** What a new goal is made of; the caller has validated it. */
export interface NewGoal {
  title: string;
  description?: string;
  kind: string;
  input: Record<string, unknown>;
  budgetUsd?: number;
  requestId?: string;
  /** The goal's id when the caller derives it (a trigger's goal for an event); a new UUID otherwise. */
  id?: string;
}

/** A stored goal, as much of it as starting its workflow and answering the caller need. */
export type StoredGoal = Pick<
  Goal,
  'id' | 'requestId' | 'workflowId' | 'title' | 'description' | 'kind' | 'budgetUsd' | 'status'
> & { input: Record<string, unknown> };

/**
 * Stores a goal with its `goal.created` event, or finds the one an earlier
 * request with the same `requestId` stored. `created` says which.
 */
export async function createGoal(
  db: Db,
  goal: NewGoal,
  actor: string,
): Promise<{ goal: StoredGoal; created: boolean }> {
  if (goal.requestId) {
    const existing = await findByRequestId(db, goal.requestId);
    if (existing) return { goal: existing, created: false };
  }
  const id = goal.id ?? randomUUID();
  const row: GoalCreatedRow = {
    id,
    requestId: goal.requestId ?? null,
    workflowId: goalWorkflowId(id),
    title: goal.title,
    description: goal.description ?? null,
    kind: goal.kind,
    input: goal.input,
    budgetUsd: goal.budgetUsd ?? null,
    createdAt: new Date(),
  };
  const status: GoalStatus = 'planning';
  // One statement: the goal and its goal.created event commit together. Of two concurrent requests
  // with one requestId, the second inserts nothing and reads the first's goal below. No conflict
  // target: a derived id (or its workflow id) conflicts the same way as the requestId that goes with it.
  const inserted = await db.$executeRaw`
    WITH g AS (
      INSERT INTO goals (id, request_id, workflow_id, title, description, kind, input, budget_usd, status, created_at, updated_at)
      VALUES (${row.id}, ${row.requestId}, ${row.workflowId}, ${row.title}, ${row.description}, ${row.kind},
              ${JSON.stringify(row.input)}::jsonb, ${row.budgetUsd}::float8, ${status}, ${row.createdAt}, ${row.createdAt})
      ON CONFLICT DO NOTHING
      RETURNING id)
    INSERT INTO events (goal_id, type, actor, data)
    SELECT g.id, e.value->>'type', e.value->>'actor', e.value->'data'
      FROM g, jsonb_array_elements(${eventsJson([{ type: 'goal.created', actor, data: { goal: row, goalStatus: status } }])}::jsonb) AS e(value)`;
  if (inserted > 0) {
    const { createdAt: _createdAt, ...stored } = row;
    return { goal: { ...stored, status }, created: true };
  }
  const winner = goal.requestId
    ? await findByRequestId(db, goal.requestId)
    : goal.id
      ? await findById(db, goal.id)
      : null;
  if (!winner) throw new Error(`goal ${goal.id ?? `with requestId ${goal.requestId}`} was neither inserted nor found`);
  return { goal: winner, created: false };
}

async function findByRequestId(db: Db, requestId: string): Promise<StoredGoal | null> {
  const goal = await db.goal.findUnique({ where: { requestId } });
  return goal ? { ...goal, input: (goal.input ?? {}) as Record<string, unknown> } : null;
}

async function findById(db: Db, id: string): Promise<StoredGoal | null> {
  const goal = await db.goal.findUnique({ where: { id } });
  return goal ? { ...goal, input: (goal.input ?? {}) as Record<string, unknown> } : null;
}

/** An adapter's event as it arrives. */
export interface InboundEventInput {
  source: string;
  type: string;
  externalId: string;
  payload: Record<string, unknown>;
}

export interface InboundEventResult {
  id: string;
  /** True when this source + externalId was stored before; nothing new was written. */
  duplicate: boolean;
  contactId?: string;
}

/**
 * Stores an adapter's event once per source + externalId, with its
 * `inbound.received` event and the canonical records it implies (the sender
 * as a contact), then remembers an email-like message as episodic memory.
 */
export async function recordInboundEvent(
  db: Db,
  memory: MemoryService,
  event: InboundEventInput,
): Promise<InboundEventResult> {
  const key = { source_externalId: { source: event.source, externalId: event.externalId } };
  const result = await db.$transaction(async (tx): Promise<InboundEventResult> => {
    const existing = await tx.inboundEvent.findUnique({ where: key });
    if (existing) return { id: existing.id, duplicate: true };
    const id = randomUUID();
    const inserted = await tx.$executeRaw`
      INSERT INTO inbound_events (id, source, external_id, type, payload)
      VALUES (${id}, ${event.source}, ${event.externalId}, ${event.type}, ${JSON.stringify(event.payload)}::jsonb)
      ON CONFLICT (source, external_id) DO NOTHING`;
    if (inserted === 0) return { id: (await tx.inboundEvent.findUniqueOrThrow({ where: key })).id, duplicate: true };
    await appendEvents(tx, [
      {
        type: 'inbound.received',
        actor: `adapter:${event.source}`,
        data: { inboundId: id, source: event.source, type: event.type, externalId: event.externalId },
      },
    ]);
    const mapped = await mapInboundEvent(tx, event);
    return { id, duplicate: false, ...(mapped.contactId ? { contactId: mapped.contactId } : {}) };
  });
  // After the commit, and on duplicates too: a retry after a failed memory write completes it (same id, stored once).
  const stored = await db.inboundEvent.findUniqueOrThrow({ where: { id: result.id } });
  const remembered = inboundMemory(stored.payload as Record<string, unknown>);
  if (remembered) {
    await memory.remember({
      id: memoryId('episodic', remembered.subject, `inbound:${stored.id}`, ''),
      text: remembered.text,
      kind: 'episodic',
      subject: remembered.subject,
      source: 'adapter',
      occurredAt: remembered.occurredAt ?? stored.receivedAt,
      metadata: { inboundId: stored.id, source: stored.source, type: stored.type },
    });
  }
  return result;
}

/** A stored inbound event, with how it was routed (null until it was). */
export interface StoredInboundEvent extends InboundEventInput {
  id: string;
  routing: InboundRouting | null;
}

/**
 * How an inbound event was routed, written once: Keel's classification of it
 * and the triggers it matched then. Kept on the event's own row (not in its
 * payload, which stays exactly what the adapter sent, so a sender cannot
 * forge a classification); a replay of the event reads it instead of routing
 * again, so it starts the same goals and no others.
 */
export interface InboundRouting {
  classification: Record<string, unknown>;
  matchedTriggers: string[];
}

export async function loadInboundEvent(db: Db, id: string): Promise<StoredInboundEvent> {
  const row = await db.inboundEvent.findUniqueOrThrow({ where: { id } });
  return {
    id: row.id,
    source: row.source,
    type: row.type,
    externalId: row.externalId,
    payload: (row.payload ?? {}) as Record<string, unknown>,
    routing:
      row.classification === null
        ? null
        : { classification: row.classification as Record<string, unknown>, matchedTriggers: row.matchedTriggers },
  };
}

/**
 * Stores how an event was routed unless it already was: of two racing
 * deliveries of one event, the first to write wins, and both get the
 * winner's routing back.
 */
export async function recordInboundRouting(db: Db, id: string, routing: InboundRouting): Promise<InboundRouting> {
  await db.inboundEvent.updateMany({
    where: { id, classification: { equals: Prisma.DbNull } },
    data: { classification: routing.classification as Prisma.InputJsonValue, matchedTriggers: routing.matchedTriggers },
  });
  const stored = (await loadInboundEvent(db, id)).routing;
  if (!stored) throw new Error(`inbound event ${id}: its routing was neither written nor found`);
  return stored;
}

/** Records that someone asked to cancel a goal (after the workflow took the request). */
export async function recordCancelRequest(
  db: Db,
  request: { goalId: string; reason?: string; actor: string },
): Promise<void> {
  await appendEvents(db, [
    { goalId: request.goalId, type: 'goal.cancel_requested', actor: request.actor, data: { reason: request.reason } },
  ]);
}
