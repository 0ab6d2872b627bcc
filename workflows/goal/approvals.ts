/**
 * Approval checkpoints: a step the policy holds waits here for a person's
 * decision (the `decide` signal or update), escalates after the first
 * deadline and expires after the second.
 */
import { ApplicationFailure, CancellationScope, condition, isCancellation, log, uuid4 } from '@temporalio/workflow';
import { decidedStatus, isFinished, type Decision } from '../../shared/goal';
import type { PlannedStep } from '../../shared/plan';
import type { ApprovalState, StepState } from '../types';
import { DEFAULT_POLICY, expiryDecision } from '../../policy';
import { uiSummary } from '../../shared/summary';
import type { GoalRun } from './state';

/**
 * patched() id: the decision is recorded by an ordinary activity, scheduled in the workflow task that accepts
 * the update, instead of a local activity inside that task. A local activity wrote the approval row before the
 * task (and the update's acceptance) reached history; when the task was then lost (the dev server restarted,
 * a worker died), the database said "approved" while the workflow still waited, and a retry of the same
 * decision was answered from the database: the goal hung (issue 10's fault suite, seed 7). Now the row is
 * written only after Temporal holds the acceptance, and a lost activity is retried by the server.
 */
export const DECISION_AFTER_ACCEPT_PATCH = 'keel-decision-recorded-after-accept';

/** patched() id: the decide update answers once the decision is recorded, not when it arrives. */
export const DECIDE_ANSWERS_WHEN_RECORDED_PATCH = 'keel-decide-answers-when-recorded';

export function createApprovals(run: GoalRun) {
  const { state, goal, acts } = run;
  const decisions: Record<string, Decision> = {};

  /** Refuses a decision this workflow cannot take; shared by the update validator and the signal. */
  const decisionProblem = (d: Decision): string | undefined => {
    if (d.decision !== 'approve' && d.decision !== 'reject')
      return `decision must be "approve" or "reject", got "${String(d.decision)}"`;
    const approval = state.approvals.find((a) => a.approvalId === d.approvalId);
    if (!approval) return `approval ${d.approvalId} is not part of this goal`;
    // Expiry is the second deadline's timer: from the moment it fires the approval is `expired`.
    if (approval.status === 'expired') return `approval ${d.approvalId} expired with no decision; nothing was applied`;
    if (approval.status !== 'pending' || decisions[d.approvalId])
      return `approval ${d.approvalId} is already ${approval.status === 'pending' ? 'decided' : approval.status}`;
    // Bound to what the operator saw: a decision on another version of the proposal (e.g. before a replan) is
    // refused. Until the approval is opened its hash is not known here; the update then waits for it (decide).
    if (d.shownHash !== undefined && approval.shownHash !== undefined && d.shownHash !== approval.shownHash)
      return `approval ${d.approvalId} changed since it was shown (it now shows version ${approval.shownHash.slice(0, 12)}, the decision names ${d.shownHash.slice(0, 12)}); nothing was applied`;
    return undefined;
  };

  const accept = (d: Decision) => {
    const problem = decisionProblem(d);
    if (problem) {
      log.warn('Ignoring decision', { approvalId: d.approvalId, problem });
      return;
    }
    decisions[d.approvalId] = d;
  };

  return {
    decisionProblem,
    /** The `decide` signal: durable even while no worker runs; a decision it cannot take is logged and dropped. */
    accept,

    /**
     * The `decide` update: accepts the decision, then answers with the
     * approval's status once the workflow has recorded it in PostgreSQL, so
     * the caller's answer means the decision is stored (or, if the goal ended
     * first, says where the approval stands).
     */
    async decide(d: Decision): Promise<{ approvalId: string; status: string }> {
      const opening = state.approvals.find((a) => a.approvalId === d.approvalId);
      if (d.shownHash !== undefined && opening && !opening.opened) {
        // The row is visible before its opening activity has answered here: wait for the hash, then check it.
        await condition(() => opening.opened === true || opening.status !== 'pending');
        const problem = decisionProblem(d);
        if (problem) throw ApplicationFailure.create({ type: 'DecisionRefused', message: problem, nonRetryable: true });
      }
      accept(d);
      if (!run.hasPatch(DECIDE_ANSWERS_WHEN_RECORDED_PATCH))
        return { approvalId: d.approvalId, status: decidedStatus(d.decision) };
      const approval = state.approvals.find((a) => a.approvalId === d.approvalId);
      await condition(() => approval?.status !== 'pending' || isFinished(state.status));
      return { approvalId: d.approvalId, status: approval?.status ?? decidedStatus(d.decision) };
    },

    /** Opens an approval for the step and waits for its decision; a rejection or expiry fails the step. */
    async awaitApproval(step: PlannedStep, stepState: StepState, inputs: Record<string, unknown>) {
      const settings = goal.settings;
      const approval: ApprovalState = {
        approvalId: uuid4(),
        stepId: step.id,
        tool: step.tool,
        title: step.title,
        status: 'pending',
        escalated: false,
      };
      state.approvals.push(approval);
      stepState.status = 'awaiting_approval';
      run.refreshRunningStatus();
      const opened = await acts.book.openApproval({
        approvalId: approval.approvalId,
        goalId: goal.goalId,
        planVersion: state.plan.version,
        stepId: step.id,
        tool: step.tool,
        title: step.title,
        rationale: step.rationale,
        inputs,
        timeoutMs: settings.approvalTimeoutMs,
        ...(step.approvalReasons ? { reasons: step.approvalReasons } : {}),
      });
      // Runs recorded before approvals were bound to what they showed have no hash: nothing to check then.
      if (opened?.shownHash) approval.shownHash = opened.shownHash;
      approval.opened = true;
      // A trust rule the operator accepted covers this step: approved by the rule, and the decision names it.
      if (opened?.autoApprovedBy && !decisions[approval.approvalId]) {
        decisions[approval.approvalId] = {
          approvalId: approval.approvalId,
          decision: 'approve',
          actor: `rule:${opened.autoApprovedBy.ruleId}`,
          channel: 'rule',
          comment: `approved by the rule "${opened.autoApprovedBy.text}"`,
        };
      }
      const decided = () => decisions[approval.approvalId] !== undefined;
      try {
        if (!(await condition(decided, settings.approvalTimeoutMs))) {
          approval.escalated = true;
          await acts.book.escalateApproval({ approvalId: approval.approvalId, goalId: goal.goalId });
          if (
            !(await condition(decided, settings.escalationTimeoutMs)) &&
            expiryDecision(goal.settings.policy ?? DEFAULT_POLICY, step.tool) === 'approve'
          ) {
            // The policy's default for this (reversible) tool: approved on expiry, and recorded as the policy's.
            decisions[approval.approvalId] = {
              approvalId: approval.approvalId,
              decision: 'approve',
              actor: 'policy:on-expiry',
              channel: 'policy',
            };
          }
          if (!decided()) {
            approval.status = 'expired';
            await acts.book.expireApproval({ approvalId: approval.approvalId, goalId: goal.goalId });
            throw ApplicationFailure.nonRetryable(
              `approval for step "${step.id}" expired with no decision`,
              'ApprovalExpired',
            );
          }
        }
      } catch (err) {
        if (isCancellation(err) && approval.status === 'pending') {
          approval.status = 'cancelled';
          await CancellationScope.nonCancellable(() =>
            acts.book.expireApproval({ approvalId: approval.approvalId, goalId: goal.goalId, status: 'cancelled' }),
          );
        }
        throw err;
      } finally {
        run.refreshRunningStatus();
      }
      const d = decisions[approval.approvalId];
      const input = {
        approvalId: d.approvalId,
        decision: d.decision,
        edits: d.edits,
        comment: d.comment,
        actor: d.actor,
        ...(d.channel ? { channel: d.channel } : {}),
        ...(d.key ? { key: d.key } : {}),
        ...(d.shownHash ? { shownHash: d.shownHash } : {}),
      };
      const recorded = run.hasPatchBeforeFinish(DECISION_AFTER_ACCEPT_PATCH)
        ? await acts.byPreset.db.recordDecision.executeWithOptions(
            {
              summary: uiSummary(`Record the ${d.decision === 'approve' ? 'approval' : 'rejection'}: ${step.title}`),
            },
            [input],
          )
        : await acts.book.recordDecision(input);
      approval.status = recorded.status;
      approval.decidedBy = d.actor;
      approval.comment = d.comment;
      run.refreshRunningStatus();
      if (recorded.status === 'rejected') {
        throw ApplicationFailure.nonRetryable(
          `approval for step "${step.id}" rejected by ${d.actor}${d.comment ? `: ${d.comment}` : ''}`,
          'ApprovalRejected',
        );
      }
      // The edits travel on for a step whose tool applies them to its inputs (no artifact holds them).
      return { ...recorded, edits: d.edits };
    },
  };
}
