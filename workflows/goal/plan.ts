/**
 * Planning: ask the planner, hold its proposal to the tool registry and the
 * policy, and ask again with the problems found, a bounded number of times.
 */
import { ApplicationFailure, patched } from '@temporalio/workflow';
import type { PlanRevision } from '../../shared/activity-io';
import { PLAN_MODEL, type PlannedStep, type ProposedPlan } from '../../shared/plan';
import { uiSummary } from '../../shared/summary';
import type { createBudget } from './budget';
import {
  approvalReasons,
  DEFAULT_POLICY,
  goalRecipients,
  originRecipients,
  validatePlan,
  type Policy,
} from '../../policy';
import { toolSpec } from '../../tools/registry';
import { errorMessage, failureType } from './errors';
import type { GoalRun } from './state';

/** patched() id: a model's plan may name as recipients only people the goal names or known contacts. */
export const RECIPIENT_GUARD_PATCH = 'keel-recipient-guard';
/** patched() id: in a goal started from outside content, addresses in its text name nobody (policy/plans.ts originRecipients). */
export const RECIPIENT_ORIGIN_PATCH = 'keel-recipient-guard-origin';

/** Where a budget approval for planning is recorded: a step of its own, ahead of the plan's steps. */
const PLANNING_STEP = 'plan';

export async function planGoal(
  run: GoalRun,
  budget: ReturnType<typeof createBudget>,
  /** Why the previous running plan was given up, for a replan after it started. */
  revision?: PlanRevision,
): Promise<PlannedStep[]> {
  const { goal, state, acts } = run;
  const { maxReplans } = goal.settings;
  let feedback: string[] = [];
  for (let attempt = 0; attempt <= maxReplans; attempt++) {
    const version = state.plan.version + 1;
    const planning: PlannedStep = {
      id: PLANNING_STEP,
      tool: 'planner',
      title: `Plan "${goal.title}"`,
      rationale: 'The large model tier proposes the plan.',
      inputs: {},
      dependsOn: [],
      requiresApproval: false,
    };
    const reserved = await budget.reserve(PLAN_MODEL, planning, {
      id: planning.id,
      tool: planning.tool,
      title: planning.title,
      status: 'pending',
      requiresApproval: false,
      dependsOn: [],
    });
    let proposal: ProposedPlan;
    try {
      // Without a model the plan is rules and one query: a local activity in the lean path. A model's plan
      // stays an activity (slow calls, retried on their own schedule, on a queue that may be rate-limited).
      // A goal pinned to a model task queue plans there too: the workers on that queue hold the model settings.
      const planner =
        run.lean && !goal.settings.models && !goal.settings.modelTaskQueue ? acts.localPlanner : acts.planner;
      proposal = await planner.planGoal.executeWithOptions({ summary: uiSummary(planning.title) }, [
        {
          goalId: goal.goalId,
          title: goal.title,
          description: goal.description,
          kind: goal.kind,
          input: goal.input,
          planVersion: version,
          feedback,
          ...(state.model ? { model: state.model } : {}),
          ...(revision ? { revision } : {}),
        },
      ]);
    } finally {
      budget.release(reserved);
    }
    run.addCost(proposal);
    // The first model plan pins the goal's model: a configuration change affects new goals only.
    if (!state.model && proposal.generatedBy.startsWith('model:')) state.model = proposal.model;
    state.plan.version = version;
    // A model's plan may only reach people the goal names or the operator's contacts: an address the
    // model picked up from outside text (an inbound email, a memory) is refused. Offline plans take
    // their recipient from the goal itself; runs from before this rule replay without it.
    // In a goal a trigger started, the text is the outside's: only its input's addresses count as named.
    const named = () =>
      goal.origin !== undefined && patched(RECIPIENT_ORIGIN_PATCH) ? originRecipients(goal) : goalRecipients(goal);
    const recipients =
      proposal.generatedBy.startsWith('model:') && run.hasPatch(RECIPIENT_GUARD_PATCH)
        ? [...named(), ...(proposal.knownRecipients ?? [])]
        : undefined;
    // The policy the goal started with; goals from before policies are held to the default, which
    // asks for exactly what they asked for, so their histories replay unchanged.
    const policy = goal.settings.policy ?? DEFAULT_POLICY;
    const problems = validatePlan(proposal.steps, {
      recipients,
      budgetUsd: state.budgetUsd ?? goal.budgetUsd,
      spentUsd: state.cost.usd,
      reservedAtRun: goal.settings.models !== undefined,
      ...(goal.settings.policy ? { policy, kind: goal.kind } : {}),
    });
    if (problems.length === 0) {
      const approvalContext = {
        policy,
        contacts: proposal.knownRecipients,
        untrusted: goal.origin !== undefined,
      };
      const steps = proposal.steps.map((s) => {
        const reasons = approvalReasons(s, approvalContext);
        return { ...s, requiresApproval: reasons.length > 0, ...(reasons.length ? { approvalReasons: reasons } : {}) };
      });
      state.plan.steps = steps.map((s) => ({
        id: s.id,
        tool: s.tool,
        title: s.title,
        status: 'pending',
        requiresApproval: s.requiresApproval,
        dependsOn: s.dependsOn,
      }));
      await acts.book.startPlan({
        goalId: goal.goalId,
        planVersion: version,
        plan: proposal,
        steps,
        planChurn: state.planChurn,
      });
      run.publishStatus('running');
      return steps;
    }
    feedback = problems.map((p) => p.message);
    state.planChurn++;
    await acts.book.recordPlanRejected({
      goalId: goal.goalId,
      planVersion: version,
      plan: proposal,
      problems: feedback,
    });
  }
  throw ApplicationFailure.nonRetryable(
    `no valid plan after ${maxReplans + 1} attempts: ${feedback.join('; ')}`,
    'InvalidPlan',
  );
}

/**
 * Why the plan that just failed may be replaced by a new one, by the goal's
 * policy: a person rejected a tool's step with a comment (or, with
 * `onRejection: always`, at all), or a step of a tool in `onFailure` failed.
 * Undefined when the failure ends the goal (a budget the operator would not
 * raise, an expiry, a failure the policy does not replan, a cancellation).
 */
export function revisionFor(err: unknown, run: GoalRun, policy: Policy): PlanRevision | undefined {
  const { state } = run;
  const type = failureType(err);
  if (type === 'ApprovalRejected') {
    const rejected = [...state.approvals].reverse().find((a) => a.status === 'rejected');
    if (!rejected?.tool || !toolSpec(rejected.tool)) return undefined;
    const comment = rejected.comment?.trim();
    const { onRejection } = policy.replan;
    if (onRejection === 'never' || (onRejection === 'with-comment' && !comment)) return undefined;
    return {
      cause: 'approval_rejected',
      stepId: rejected.stepId,
      tool: rejected.tool,
      note: comment || 'rejected without a comment',
      ...(rejected.decidedBy ? { actor: rejected.decidedBy } : {}),
    };
  }
  if (type === 'ApprovalExpired') return undefined;
  const failed = state.plan.steps.find((s) => s.status === 'failed' && policy.replan.onFailure.includes(s.tool));
  if (!failed) return undefined;
  return { cause: 'step_failed', stepId: failed.id, tool: failed.tool, note: failed.error ?? errorMessage(err) };
}
