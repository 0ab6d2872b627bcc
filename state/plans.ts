/**
 * A goal's plan history, read from its events: every version the planner
 * proposed, accepted or refused (with the policy's reasons: the cause of each
 * replan), and what changed from one version to the next.
 */
import type { Db } from '../db/prisma';
import type { PromptFit } from '../shared/plan';
import { stableJson } from '../shared/json';
import type { KeelEvent, PlanVersionStep } from './events';

/** What changed from the previous version, by step id. */
export interface PlanDiff {
  added: string[];
  removed: string[];
  /** Steps in both versions whose tool, title, inputs or dependencies differ, with the fields that do. */
  changed: { id: string; fields: string[] }[];
}

export interface PlanVersionView {
  version: number;
  /** `superseded`: accepted and started, then given up for a new plan (see `replannedBecause`). */
  status: 'accepted' | 'rejected' | 'superseded';
  at: Date;
  generatedBy?: string;
  model?: string;
  promptHash?: string;
  rationale?: string;
  /** A refused version: the problems the policy found, fed back to the planner. */
  problems?: string[];
  steps: PlanVersionStep[];
  /** How the model's prompt was fitted to its context window. */
  prompt?: PromptFit;
  /** Against the version before it (absent for the first). */
  diff?: PlanDiff;
  /** A superseded version: the person's no (with their comment) or the failed step that led to a new plan. */
  replannedBecause?: { cause: string; stepId: string; tool: string; note: string; actor?: string };
}

export interface PlanHistory {
  versions: PlanVersionView[];
  /** Replans: refused versions and versions given up after they started, each with its cause. */
  churn: number;
  causes: { version: number; problems: string[] }[];
}

const COMPARED = ['tool', 'title', 'inputs', 'dependsOn'] as const;

/** The difference between two plan versions, step by step. */
export function diffPlans(before: readonly PlanVersionStep[], after: readonly PlanVersionStep[]): PlanDiff {
  const old = new Map(before.map((s) => [s.id, s]));
  const now = new Map(after.map((s) => [s.id, s]));
  const changed: PlanDiff['changed'] = [];
  for (const s of after) {
    const was = old.get(s.id);
    if (!was) continue;
    const fields = COMPARED.filter((f) => {
      // A field an older event did not keep is not a change.
      if (was[f] === undefined || s[f] === undefined) return false;
      return stableJson(was[f]) !== stableJson(s[f]);
    });
    if (fields.length) changed.push({ id: s.id, fields: [...fields] });
  }
  return {
    added: after.filter((s) => !old.has(s.id)).map((s) => s.id),
    removed: before.filter((s) => !now.has(s.id)).map((s) => s.id),
    changed,
  };
}

/** The plan versions of a goal in the order they were proposed. */
export async function planHistory(prisma: Db, goalId: string): Promise<PlanHistory> {
  const rows = await prisma.event.findMany({
    where: { goalId, type: { in: ['plan.accepted', 'plan.rejected', 'plan.replanned'] } },
    orderBy: { seq: 'asc' },
  });
  const versions: PlanVersionView[] = [];
  for (const row of rows) {
    if (row.type === 'plan.replanned') {
      const r = row.data as unknown as Extract<KeelEvent, { type: 'plan.replanned' }>['data'];
      const given = versions.find((v) => v.version === r.planVersion);
      if (given) {
        given.status = 'superseded';
        given.replannedBecause = {
          cause: r.cause,
          stepId: r.stepId,
          tool: r.tool,
          note: r.note,
          ...(r.actor ? { actor: r.actor } : {}),
        };
      }
      continue;
    }
    const e = { type: row.type, data: row.data } as unknown as Extract<
      KeelEvent,
      { type: 'plan.accepted' | 'plan.rejected' }
    >;
    const view: PlanVersionView =
      e.type === 'plan.accepted'
        ? {
            version: e.data.planVersion,
            status: 'accepted',
            at: row.at,
            generatedBy: e.data.generatedBy ?? row.actor,
            model: e.data.model,
            promptHash: e.data.promptHash,
            rationale: e.data.rationale,
            steps: e.data.steps,
            prompt: e.data.prompt,
          }
        : {
            version: e.data.planVersion,
            status: 'rejected',
            at: row.at,
            generatedBy: e.data.generatedBy,
            model: e.data.model,
            promptHash: e.data.promptHash,
            rationale: e.data.rationale,
            problems: e.data.problems,
            steps: e.data.steps ?? [],
            prompt: e.data.prompt,
          };
    const previous = versions[versions.length - 1];
    if (previous) view.diff = diffPlans(previous.steps, view.steps);
    versions.push(view);
  }
  const replaced = versions.filter((v) => v.status !== 'accepted');
  return {
    versions,
    churn: replaced.length,
    causes: replaced.map((v) => ({
      version: v.version,
      problems: v.problems ?? [
        v.replannedBecause!.cause === 'approval_rejected'
          ? `${v.replannedBecause!.actor ?? 'the operator'} rejected step "${v.replannedBecause!.stepId}" (${v.replannedBecause!.tool}): ${v.replannedBecause!.note}`
          : `step "${v.replannedBecause!.stepId}" (${v.replannedBecause!.tool}) failed: ${v.replannedBecause!.note}`,
      ],
    })),
  };
}
