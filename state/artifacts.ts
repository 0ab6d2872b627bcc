import { randomUUID } from 'node:crypto';
import { ApplicationFailure } from '@temporalio/common';
import type { Db } from '../db/prisma';
import type { DbTx } from './events';
import { appendEvents, json } from './events';
import { cut } from '../shared/text';

export interface NewArtifact {
  goalId?: string | null;
  stepId?: string | null;
  kind: string;
  title?: string;
  content: string;
  contentType?: string;
  subject?: string | null;
  metadata?: Record<string, unknown>;
  /** The version this one replaces; the new one joins its lineage with the next version number. */
  previous?: { id: string; lineageId: string | null; version: number } | null;
  humanEdited?: boolean;
}

const inTransaction = <T>(db: DbTx, fn: (tx: DbTx) => Promise<T>): Promise<T> =>
  '$transaction' in db ? (db as Db).$transaction((tx) => fn(tx)) : fn(db);

/**
 * Stores a text once and returns its id, with an `artifact.created` event
 * carrying everything needed to rebuild the row from the log. Callers that
 * may retry pass a derived id, so a retry finds the row instead of adding one.
 */
export async function saveArtifact(db: DbTx, a: NewArtifact, id: string = randomUUID()): Promise<string> {
  return inTransaction(db, async (tx) => {
    const row = {
      id,
      goalId: a.goalId ?? null,
      stepId: a.stepId ?? null,
      kind: a.kind,
      title: a.title ?? '',
      content: a.content,
      contentType: a.contentType ?? 'text/plain',
      subject: a.subject ?? null,
      metadata: a.metadata ?? {},
      version: a.previous ? a.previous.version + 1 : 1,
      previousId: a.previous?.id ?? null,
      lineageId: a.previous ? (a.previous.lineageId ?? a.previous.id) : id,
      humanEdited: a.humanEdited ?? false,
    };
    const created = await tx.artifact.createMany({
      data: [{ ...row, metadata: json(row.metadata) }],
      skipDuplicates: true,
    });
    if (created.count > 0) {
      await appendEvents(tx, [
        {
          goalId: row.goalId,
          type: 'artifact.created',
          actor: row.humanEdited ? 'human' : 'keel',
          data: { artifact: row },
        },
      ]);
    }
    return id;
  });
}

/** Marks an artifact discarded or voided (compensation); the row and its history stay. */
export async function setArtifactStatus(db: DbTx, id: string, status: string, reason: string): Promise<void> {
  await inTransaction(db, async (tx) => {
    const updated = await tx.artifact.updateMany({ where: { id, NOT: { status } }, data: { status } });
    if (updated.count > 0) {
      const artifact = await tx.artifact.findUniqueOrThrow({ where: { id }, select: { goalId: true } });
      await appendEvents(tx, [
        {
          goalId: artifact.goalId,
          type: 'artifact.status_changed',
          actor: 'keel',
          data: { artifactId: id, status, reason },
        },
      ]);
    }
  });
}

export async function loadArtifact(db: DbTx, id: string) {
  const artifact = await db.artifact.findUnique({ where: { id } });
  if (!artifact) throw ApplicationFailure.nonRetryable(`artifact ${id} does not exist`, 'NotFound');
  return artifact;
}

/**
 * A short, single-line preview for state and the API (at most `max` code
 * points); the full text stays in the artifact.
 */
export function preview(text: string, max = 200): string {
  return cut(text.replace(/\s+/g, ' ').trim(), max);
}
