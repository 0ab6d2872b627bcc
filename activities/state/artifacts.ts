import { randomUUID } from 'node:crypto';
import { ApplicationFailure } from '@temporalio/common';
import type { DbTx } from './events';
import { json } from './events';

export interface NewArtifact {
  goalId?: string | null;
  stepId?: string | null;
  kind: string;
  title?: string;
  content: string;
  metadata?: Record<string, unknown>;
  previousId?: string | null;
  version?: number;
  humanEdited?: boolean;
}

/**
 * Stores a text and returns its id. The id is derived by the caller when a
 * retry must find the same row (see `stableArtifactId`), otherwise random.
 */
export async function saveArtifact(db: DbTx, a: NewArtifact, id: string = randomUUID()): Promise<string> {
  await db.artifact.upsert({
    where: { id },
    update: {},
    create: {
      id,
      goalId: a.goalId ?? null,
      stepId: a.stepId ?? null,
      kind: a.kind,
      title: a.title ?? '',
      content: a.content,
      metadata: json(a.metadata),
      previousId: a.previousId ?? null,
      version: a.version ?? 1,
      humanEdited: a.humanEdited ?? false,
    },
  });
  return id;
}

export async function loadArtifact(db: DbTx, id: string) {
  const artifact = await db.artifact.findUnique({ where: { id } });
  if (!artifact) throw ApplicationFailure.nonRetryable(`artifact ${id} does not exist`, 'NotFound');
  return artifact;
}

/** A short, single-line preview for state and the API; the full text stays in the artifact. */
export function preview(text: string, max = 200): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length > max ? `${flat.slice(0, max - 1)}…` : flat;
}
