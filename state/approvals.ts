/** Approval records: opened by the workflow, decided by people (API, Slack) or by the workflow's deadline. */
import { createHash } from 'node:crypto';
import { ApplicationFailure } from '@temporalio/common';
import type { Db } from '../db/prisma';
import type { MemoryService } from '../memory/service';
import { toolSpec } from '../tools/registry';
import { artifactOutputSchema, describeApproval, describeIssues, type ArtifactView } from '../tools/spec';
import type {
  ApprovalRef,
  OpenApprovalInput,
  OpenApprovalResult,
  RecordDecisionInput,
  RecordDecisionResult,
} from '../shared/activity-io';
import { acceptedRuleFor, suggestAfterApproval } from '../trust/store';
import { stableJson } from '../shared/json';
import { loadArtifact, saveArtifact } from './artifacts';
import { appendEvents, json, type DbTx } from './events';
import { noFaults, type FaultHooks } from '../lib/faults';

/** Fault point hit after a decision is stored, before the activity answers the workflow. */
export const DECISION_FAULT_AFTER_WRITE = 'approval.recordDecision.afterWrite';

/** What a person sees for a step: the concrete action its tool's spec describes, not the plan's shorthand. */
async function describeProposal(db: DbTx, input: OpenApprovalInput) {
  const spec = toolSpec(input.tool);
  if (!spec) return { summary: `${input.title} (${input.tool})`, proposed: input.inputs };
  const ref = artifactRef(spec.approval?.artifactInput ? input.inputs[spec.approval.artifactInput] : undefined);
  const artifact = ref ? artifactView(await loadArtifact(db, ref)) : undefined;
  const described = describeApproval(spec, input.inputs, artifact, input.title);
  if (!described.ok) {
    throw ApplicationFailure.nonRetryable(
      `step "${input.stepId}" (${input.tool}) has invalid inputs: ${described.problem}`,
      'InvalidInput',
    );
  }
  return { summary: described.summary, proposed: described.proposed };
}

const artifactRef = (v: unknown): string | undefined => {
  const parsed = artifactOutputSchema.safeParse(v);
  return parsed.success ? parsed.data.ref : undefined;
};

const artifactView = (a: { id: string; title: string; content: string; metadata: unknown }): ArtifactView => ({
  id: a.id,
  title: a.title,
  content: a.content,
  metadata: typeof a.metadata === 'object' && a.metadata !== null ? (a.metadata as Record<string, unknown>) : {},
});

/** The tool of the step an approval holds (the latest plan version's step of that id). */
export async function toolOfApproval(db: DbTx, approval: { goalId: string; stepId: string }): Promise<string> {
  const step = await db.step.findFirst({
    where: { goalId: approval.goalId, stepId: approval.stepId },
    orderBy: { planVersion: 'desc' },
    select: { tool: true },
  });
  return step?.tool ?? '';
}

/**
 * The edits an operator may make to a step's proposal, checked against its
 * tool's spec: a message naming what is wrong, or the edits as parsed.
 */
export function checkEdits(
  tool: string,
  edits: unknown,
): { ok: true; edits: Record<string, string> } | { ok: false; problem: string } {
  const spec = toolSpec(tool)?.approval;
  if (!spec?.edits) return { ok: false, problem: `edits: ${tool} cannot be edited, only approved or rejected` };
  const parsed = spec.edits.safeParse(edits);
  return parsed.success
    ? { ok: true, edits: parsed.data }
    : { ok: false, problem: describeIssues(parsed.error, 'edits') };
}

/** The outside-content reason policy/approvals.ts gives: a trust rule never skips a review it asks for. */
const OUTSIDE_CONTENT = 'the goal was started from outside content';

export function createApprovalActivities(
  prisma: Db,
  memory?: MemoryService,
  /** Unedited approvals of one tool to one audience before a trust rule is suggested (0: never). */
  opts: { trustSuggestAfter?: number; faults?: FaultHooks } = {},
) {
  const faults = opts.faults ?? noFaults;
  const trustSuggestAfter = opts.trustSuggestAfter ?? 3;
  return {
    /** Creates the approval (idempotent on its id) and marks the step and goal as waiting. */
    async openApproval(input: OpenApprovalInput): Promise<OpenApprovalResult> {
      return prisma.$transaction(async (tx) => {
        const existing = await tx.approval.findUnique({ where: { id: input.approvalId } });
        // An accepted trust rule approves a step it covers, unless the step's text came from outside.
        const rule = input.reasons?.includes(OUTSIDE_CONTENT)
          ? undefined
          : await acceptedRuleFor(tx, input.tool, input.inputs);
        const auto = rule ? { autoApprovedBy: { ruleId: rule.id, text: rule.text } } : {};
        if (existing) return { shownHash: existing.shownHash ?? '', ...auto };
        const { summary, proposed: described } = await describeProposal(tx, input);
        const proposed = input.reasons?.length ? { ...described, why: input.reasons } : described;
        const createdAt = new Date();
        // Exactly what the operator is shown, and its hash: a decision must name this version.
        const shown = await snapshotOf(tx, input, { summary, proposed });
        const shownHash = hashOf(shown);
        await tx.approval.create({
          data: {
            id: input.approvalId,
            goalId: input.goalId,
            stepId: input.stepId,
            title: input.title,
            summary,
            rationale: input.rationale,
            proposed: json(proposed),
            shown: json(shown),
            shownHash,
            status: 'pending',
            createdAt,
            expiresAt: new Date(createdAt.getTime() + input.timeoutMs),
          },
        });
        await tx.step.updateMany({
          where: { goalId: input.goalId, planVersion: input.planVersion, stepId: input.stepId },
          data: { status: 'awaiting_approval' },
        });
        await tx.goal.update({
          where: { id: input.goalId },
          data: { status: 'awaiting_approval', updatedAt: createdAt },
        });
        await appendEvents(tx, [
          {
            goalId: input.goalId,
            type: 'approval.requested',
            actor: 'keel',
            data: {
              approvalId: input.approvalId,
              stepId: input.stepId,
              summary,
              timeoutMs: input.timeoutMs,
              goalStatus: 'awaiting_approval',
            },
          },
        ]);
        return { shownHash, ...auto };
      });
    },

    /**
     * Records a decision. The API may already have recorded the same decision
     * (it writes before signalling), so an identical one is accepted as is;
     * edits become a new, human-edited version of the proposed artifact.
     */
    async recordDecision(input: RecordDecisionInput): Promise<RecordDecisionResult> {
      const result: RecordDecisionResult = await prisma.$transaction(async (tx) => {
        const approval = await tx.approval.findUnique({ where: { id: input.approvalId } });
        if (!approval) throw ApplicationFailure.nonRetryable(`approval ${input.approvalId} does not exist`, 'NotFound');
        const status = input.decision === 'approve' ? ('approved' as const) : ('rejected' as const);
        if (approval.status === 'pending') {
          await tx.approval.update({
            where: { id: approval.id },
            data: {
              status,
              decision: input.decision,
              edits: input.edits ? json(input.edits) : undefined,
              comment: input.comment ?? null,
              actor: input.actor,
              channel: input.channel ?? null,
              decisionKey: input.key ?? null,
              decidedHash: input.shownHash ?? approval.shownHash ?? null,
              decidedAt: new Date(),
            },
          });
        } else if (approval.status !== status) {
          throw ApplicationFailure.nonRetryable(
            `approval ${approval.id} is already ${approval.status}; cannot record ${status}`,
            'PolicyViolation',
          );
        }
        const edits = (approval.edits ?? input.edits) as Record<string, string> | undefined | null;
        const proposed = approval.proposed as { artifactId?: string };
        let editedRef: string | undefined;
        if (status === 'approved' && edits && proposed.artifactId) {
          const tool = await toolOfApproval(tx, approval);
          const approvalSpec = toolSpec(tool)?.approval;
          const checked = checkEdits(tool, edits);
          if (!checked.ok || !approvalSpec?.applyEdits) {
            throw ApplicationFailure.nonRetryable(
              checked.ok ? `${tool} cannot apply edits` : checked.problem,
              'InvalidInput',
            );
          }
          const original = await loadArtifact(tx, proposed.artifactId);
          const changed = approvalSpec.applyEdits(artifactView(original), checked.edits);
          editedRef = await saveArtifact(
            tx,
            {
              goalId: original.goalId,
              stepId: original.stepId,
              kind: original.kind,
              title: changed.title,
              content: changed.content,
              contentType: original.contentType,
              subject: original.subject,
              metadata: { ...changed.metadata, editedBy: input.actor },
              previous: original,
              humanEdited: true,
            },
            `${approval.id}:edited`,
          );
        }
        // Memories the goal's actions cited gain when a person approves and lose when they reject.
        if (
          memory &&
          (approval.status === 'pending' || !(await hasDecisionEvent(tx, approval.id, 'memory.feedback')))
        ) {
          const steps = await tx.step.findMany({ where: { goalId: approval.goalId }, select: { memoryIds: true } });
          const changed = await memory.applyFeedback(
            tx,
            steps.flatMap((s) => s.memoryIds),
            status,
          );
          if (changed > 0) {
            await appendEvents(tx, [
              {
                goalId: approval.goalId,
                type: 'memory.feedback',
                actor: input.actor,
                data: { approvalId: approval.id, outcome: status, memories: changed },
              },
            ]);
          }
        }
        // A raised budget (the workflow's "raise the budget to $X?") is the goal's budget from now on.
        const raise = approval.proposed as { budgetUsd?: unknown; proposedBudgetUsd?: unknown };
        if (
          status === 'approved' &&
          typeof raise.proposedBudgetUsd === 'number' &&
          (approval.status === 'pending' || !(await hasDecisionEvent(tx, approval.id, 'goal.budget_raised')))
        ) {
          await tx.goal.update({
            where: { id: approval.goalId },
            data: { budgetUsd: raise.proposedBudgetUsd, updatedAt: new Date() },
          });
          await appendEvents(tx, [
            {
              goalId: approval.goalId,
              type: 'goal.budget_raised',
              actor: input.actor,
              data: {
                approvalId: approval.id,
                from: typeof raise.budgetUsd === 'number' ? raise.budgetUsd : 0,
                budgetUsd: raise.proposedBudgetUsd,
              },
            },
          ]);
        }
        if (status === 'approved') {
          const stillPending = await tx.approval.count({ where: { goalId: approval.goalId, status: 'pending' } });
          const goal = await tx.goal.findUnique({ where: { id: approval.goalId }, select: { status: true } });
          if (stillPending === 0 && goal?.status === 'awaiting_approval') {
            await tx.goal.update({
              where: { id: approval.goalId },
              data: { status: 'running', updatedAt: new Date() },
            });
            await appendEvents(tx, [
              {
                goalId: approval.goalId,
                type: 'goal.resumed',
                actor: input.actor,
                data: { approvalId: approval.id, goalStatus: 'running' },
              },
            ]);
          }
        }
        // A person's unedited approvals may suggest a trust rule for this tool and audience.
        if (
          status === 'approved' &&
          approval.status === 'pending' &&
          !/^(rule|policy):/.test(input.actor) &&
          input.channel !== 'policy' &&
          input.channel !== 'rule'
        ) {
          await suggestAfterApproval(
            tx,
            { goalId: approval.goalId, shown: approval.shown, edits: input.edits ?? null },
            trustSuggestAfter,
            input.actor,
          );
        }
        if (approval.status === 'pending' || !(await hasDecisionEvent(tx, approval.id))) {
          await appendEvents(tx, [
            {
              goalId: approval.goalId,
              type: `approval.${status}`,
              actor: input.actor,
              data: {
                approvalId: approval.id,
                stepId: approval.stepId,
                comment: input.comment,
                edited: Boolean(editedRef),
                editedRef,
              },
            },
          ]);
        }
        return { status, editedRef };
      });
      // Tests crash a worker here: the decision is stored and the workflow has not heard back yet.
      await faults.hit(DECISION_FAULT_AFTER_WRITE);
      return result;
    },

    /** The first deadline passed: flag the approval and tell the operator again. */
    async escalateApproval(input: ApprovalRef): Promise<void> {
      await prisma.$transaction(async (tx) => {
        const updated = await tx.approval.updateMany({
          where: { id: input.approvalId, status: 'pending', escalated: false },
          data: { escalated: true },
        });
        if (updated.count > 0) {
          await appendEvents(tx, [
            { goalId: input.goalId, type: 'approval.escalated', actor: 'keel', data: { approvalId: input.approvalId } },
          ]);
        }
      });
    },

    /** The last deadline passed, or the goal stopped waiting: the approval can no longer be decided. */
    async expireApproval(input: ApprovalRef): Promise<void> {
      const status = input.status ?? 'expired';
      await prisma.$transaction(async (tx) => {
        const updated = await tx.approval.updateMany({
          where: { id: input.approvalId, status: 'pending' },
          data: { status, decidedAt: new Date() },
        });
        if (updated.count > 0) {
          await appendEvents(tx, [
            { goalId: input.goalId, type: `approval.${status}`, actor: 'keel', data: { approvalId: input.approvalId } },
          ]);
        }
      });
    },
  };
}

async function hasDecisionEvent(tx: DbTx, approvalId: string, type?: string): Promise<boolean> {
  const found = await tx.event.findFirst({
    where: {
      type: { in: type ? [type] : ['approval.approved', 'approval.rejected'] },
      data: { path: ['approvalId'], equals: approvalId },
    },
    select: { seq: true },
  });
  return found !== null;
}

const hashOf = (shown: unknown) => createHash('sha256').update(stableJson(shown)).digest('hex');

/**
 * What an approval shows: the one-line summary, the proposed action and its
 * arguments, the rationale, why the policy asks, the risk, the cost so far,
 * and the provenance: the inputs, and for each earlier completed step of this
 * plan its model, prompt hash and the memories it used (with their text).
 */
async function snapshotOf(
  tx: DbTx,
  input: OpenApprovalInput,
  described: { summary: string; proposed: Record<string, unknown> | unknown },
) {
  const [steps, goal] = await Promise.all([
    tx.step.findMany({
      where: { goalId: input.goalId, planVersion: input.planVersion, status: 'completed' },
      orderBy: { position: 'asc' },
      select: { stepId: true, tool: true, model: true, promptHash: true, memoryIds: true, costUsd: true },
    }),
    tx.goal.findUnique({ where: { id: input.goalId }, select: { costUsd: true } }),
  ]);
  const memoryIds = [...new Set(steps.flatMap((s) => s.memoryIds))];
  const memories = memoryIds.length
    ? await tx.memoryItem.findMany({ where: { id: { in: memoryIds } }, select: { id: true, text: true } })
    : [];
  const texts = new Map(memories.map((m) => [m.id, m.text.length > 300 ? `${m.text.slice(0, 299)}…` : m.text]));
  return {
    title: input.title,
    summary: described.summary,
    proposed: described.proposed,
    rationale: input.rationale,
    risk: toolSpec(input.tool)?.risk ?? 'unknown',
    tool: input.tool,
    costSoFarUsd: Math.max(
      goal?.costUsd ?? 0,
      steps.reduce((sum, s) => sum + s.costUsd, 0),
    ),
    provenance: {
      inputs: input.inputs,
      steps: steps.map((s) => ({
        stepId: s.stepId,
        tool: s.tool,
        ...(s.model ? { model: s.model } : {}),
        ...(s.promptHash ? { promptHash: s.promptHash } : {}),
      })),
      // Canonical facts (`contact:…`, `goal:…`) are named by id; memories also by their text.
      memories: memoryIds.map((id) => ({ id, ...(texts.has(id) ? { text: texts.get(id) } : {}) })),
    },
  };
}
