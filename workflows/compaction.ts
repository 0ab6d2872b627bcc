/**
 * compactMemoryWorkflow: run by the `keel-memory-compaction` Temporal
 * Schedule. Finds subjects with many old episodic memories and compacts each
 * into a summary, one activity per subject so a crash resumes where it stopped.
 */
import { proxyActivities } from '@temporalio/workflow';
import type { KeelActivities } from '../activities';
import { dbPreset } from './options';

export interface CompactionInput {
  olderThanDays: number;
  minItems: number;
  maxSubjects?: number;
  maxItemsPerSubject?: number;
}

export interface CompactionResult {
  subjects: number;
  archived: number;
  summaryIds: string[];
}

export const COMPACTION_SCHEDULE_ID = 'keel-memory-compaction';

export async function compactMemoryWorkflow(input: CompactionInput): Promise<CompactionResult> {
  const acts = proxyActivities<KeelActivities>({ ...dbPreset, startToCloseTimeout: '5 minutes' });
  const groups = await acts.findCompactionCandidates({
    olderThanDays: input.olderThanDays,
    minItems: input.minItems,
    maxSubjects: input.maxSubjects ?? 50,
    maxItemsPerSubject: input.maxItemsPerSubject ?? 200,
  });
  const result: CompactionResult = { subjects: 0, archived: 0, summaryIds: [] };
  for (const group of groups) {
    const done = await acts.compactSubject(group);
    if (done.archived === 0) continue;
    result.subjects++;
    result.archived += done.archived;
    result.summaryIds.push(done.summaryId);
  }
  return result;
}
