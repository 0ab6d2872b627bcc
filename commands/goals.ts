/**
 * Goal use cases: start a goal (store it, then start its workflow) and cancel
 * one; and, for both cancel and decisions, reconciling a goal whose workflow
 * ended outside Keel. Canonical writes go through state/; every Temporal call
 * through callTemporal's deadline.
 */
import { WorkflowExecutionAlreadyStartedError, WorkflowNotFoundError } from '@temporalio/client';
import { isFinished, type GoalStatus } from '../shared/goal';
import { createGoal, recordCancelRequest, type StoredGoal } from '../state/intake';
import { reconcileGoal } from '../state/reconcile';
import { goalWorkflow } from '../workflows';
import { cancelSignal, KeelPendingApprovals, KeelStatus } from '../workflows/messages';
import type { GoalInput, GoalModels, GoalOrigin } from '../workflows/types';
import type { Config } from '../config';
import { resolvePrices } from '../models/prices';
import { uiDetails, uiSummary } from '../shared/summary';
import { cut } from '../shared/text';
import { ConflictError, NotFoundError, UnavailableError } from './errors';
import { callTemporal } from './temporal';
import type { CommandDeps } from './types';

/** Who goal creation and cancel requests through the API are recorded as in the audit log (as before commands/). */
const API_ACTOR = 'api';

export interface StartGoalRequest {
  title: string;
  description?: string;
  kind?: string;
  input?: Record<string, unknown>;
  budgetUsd?: number;
  requestId?: string;
  /** A goal id the caller derived (a trigger's goal for an event, with its requestId); a new one otherwise. Not for HTTP callers. */
  goalId?: string;
  /** Who the goal.created event names; `api` when not given. */
  actor?: string;
  /** The inbound event a trigger started the goal from: its text is outside content, and the policy treats it so. */
  origin?: GoalOrigin;
}

export interface GoalAnswer {
  goalId: string;
  workflowId: string;
  status: string;
}

/**
 * Stores the goal (or finds the one stored under the same `requestId`) and
 * starts `goalWorkflow` as `goal-<goalId>` with REJECT_DUPLICATE, so a retried
 * request never starts a second run. A finished goal is not started again.
 * When Temporal does not take the start, the goal stays stored and an
 * UnavailableError says to retry with the same requestId.
 */
export async function startGoal(deps: CommandDeps, request: StartGoalRequest): Promise<GoalAnswer> {
  const { created: _created, ...answer } = await startGoalOnce(deps, request);
  return answer;
}

/** {@link startGoal}, also saying whether this request created the goal (false: an earlier one with its requestId did). */
export async function startGoalOnce(
  deps: CommandDeps,
  request: StartGoalRequest,
): Promise<GoalAnswer & { created: boolean }> {
  const { goal, created } = await createGoal(
    deps.prisma,
    {
      title: request.title,
      description: request.description,
      // Until the planner picks tools from the input itself, an addressee is what makes a goal an email.
      kind: request.kind ?? (typeof request.input?.to === 'string' ? 'email' : 'auto'),
      input: request.input ?? {},
      budgetUsd: request.budgetUsd,
      requestId: request.requestId,
      id: request.goalId,
    },
    request.actor ?? API_ACTOR,
  );
  if (!isFinished(goal.status)) await startWorkflow(deps, goal, request.origin);
  return { goalId: goal.id, workflowId: goal.workflowId, status: goal.status, created };
}

/** The workflow's static details: a line naming the goal, and what it came from. */
function goalDetails(goal: StoredGoal, budgetUsd: number, origin?: GoalOrigin): string {
  return uiDetails([
    `Keel goal ${goal.id} · kind ${goal.kind} · budget $${budgetUsd}`,
    origin ? `Started by trigger ${origin.triggerId} from ${origin.source} event ${origin.externalId}` : undefined,
    goal.description ? cut(goal.description, 300) : undefined,
  ]);
}

async function startWorkflow(deps: CommandDeps, goal: StoredGoal, origin?: GoalOrigin): Promise<void> {
  const input: GoalInput = {
    goalId: goal.id,
    title: goal.title,
    description: goal.description ?? undefined,
    kind: goal.kind,
    input: goal.input,
    budgetUsd: goal.budgetUsd ?? deps.defaultBudgetUsd,
    settings: deps.goalSettings,
    ...(origin ? { origin } : {}),
  };
  try {
    await callTemporal(deps.client, deps.temporalTimeoutMs, () =>
      deps.client.workflow.start(goalWorkflow, {
        workflowId: goal.workflowId,
        taskQueue: deps.taskQueue,
        args: [input],
        memo: { title: goal.title },
        // What the Temporal Web UI lists for the run instead of its id (user metadata, clamped to the server's limits).
        staticSummary: uiSummary(goal.title),
        staticDetails: goalDetails(goal, input.budgetUsd, origin),
        typedSearchAttributes: [
          { key: KeelStatus, value: 'planning' },
          { key: KeelPendingApprovals, value: 0 },
        ],
        workflowIdReusePolicy: 'REJECT_DUPLICATE',
      }),
    );
  } catch (err) {
    // Started by an earlier request with the same requestId: that is the point of it.
    if (err instanceof WorkflowExecutionAlreadyStartedError) return;
    if (err instanceof UnavailableError) {
      const retry = goal.requestId
        ? 'retry with the same requestId to start it'
        : 'send a requestId next time so a retry starts this goal instead of a new one';
      throw new UnavailableError(
        `goal ${goal.id} is stored but not started (${retry}): ${err.message}`,
        { goalId: goal.id },
        err.unreachable,
      );
    }
    throw err;
  }
}

/**
 * Asks a goal's workflow to cancel (it compensates committed work, then ends
 * `cancelled`) and records the request. A finished goal is a conflict. When
 * the workflow is gone (terminated outside Keel, or never started because
 * Temporal was down), the goal is reconciled from what Temporal says instead.
 */
export async function cancelGoal(
  deps: CommandDeps,
  request: { goalId: string; reason?: string },
): Promise<{ goalId: string; status: string }> {
  const goal = await deps.prisma.goal.findUnique({
    where: { id: request.goalId },
    select: { id: true, workflowId: true, status: true },
  });
  if (!goal) throw new NotFoundError(`goal ${request.goalId} does not exist`);
  if (isFinished(goal.status)) throw new ConflictError(`goal ${goal.id} is already ${goal.status}`);
  const reason = request.reason ?? 'cancelled through the API';
  try {
    await callTemporal(deps.client, deps.temporalTimeoutMs, () =>
      deps.client.workflow.getHandle(goal.workflowId).signal(cancelSignal, { reason, actor: API_ACTOR }),
    );
  } catch (err) {
    if (!(err instanceof WorkflowNotFoundError)) throw err;
    const after = await reconcileFromTemporal(deps, goal, 'cancel');
    if (after.goalStatus === 'cancelled') return { goalId: goal.id, status: 'cancelled' };
    throw new ConflictError(`goal ${goal.id} can no longer be cancelled: ${after.explanation}`);
  }
  await recordCancelRequest(deps.prisma, { goalId: goal.id, reason: request.reason, actor: API_ACTOR });
  return { goalId: goal.id, status: 'cancelling' };
}

/** How a run's Temporal status ends its goal; undefined where the workflow records its own end. */
function goalStatusFor(temporalStatus: string, purpose: 'cancel' | 'decide'): 'failed' | 'cancelled' | undefined {
  switch (temporalStatus) {
    case 'TERMINATED':
    case 'TIMED_OUT':
    case 'FAILED':
      return 'failed';
    case 'CANCELLED':
      return 'cancelled';
    // No run at all: for a cancel, the goal was stored but never started (Temporal was down), so
    // there is nothing to compensate; for a decision, the run that asked has vanished.
    case 'NOT_FOUND':
      return purpose === 'cancel' ? 'cancelled' : 'failed';
    default:
      return undefined;
  }
}

/**
 * Called when Temporal says a goal's workflow is not running (a signal or
 * update found no run): asks Temporal how the run ended and, where the
 * workflow cannot have recorded it, ends the goal accordingly through
 * state/reconcile.ts. Returns the goal's status and a sentence for the caller.
 */
export async function reconcileFromTemporal(
  deps: CommandDeps,
  goal: { id: string; workflowId: string },
  purpose: 'cancel' | 'decide',
): Promise<{ goalStatus: GoalStatus | string; explanation: string }> {
  let temporalStatus: string;
  try {
    const described = await callTemporal(deps.client, deps.temporalTimeoutMs, () =>
      deps.client.workflow.getHandle(goal.workflowId).describe(),
    );
    temporalStatus = described.status.name;
  } catch (err) {
    if (!(err instanceof WorkflowNotFoundError)) throw err;
    temporalStatus = 'NOT_FOUND';
  }
  const goalStatus = goalStatusFor(temporalStatus, purpose);
  if (!goalStatus) {
    if (temporalStatus === 'COMPLETED') {
      return { goalStatus: 'completed', explanation: `goal ${goal.id}'s workflow has completed` };
    }
    // Running again (continued as new, or a race with the lookup): nothing to reconcile; a retry will reach it.
    throw new UnavailableError(
      `Temporal did not find goal ${goal.id}'s run but describes its workflow as ${temporalStatus}; retry`,
    );
  }
  const error =
    temporalStatus === 'NOT_FOUND'
      ? `Temporal has no workflow ${goal.workflowId}`
      : `the workflow ended outside Keel (Temporal says ${temporalStatus})`;
  const result = await reconcileGoal(deps.prisma, {
    goalId: goal.id,
    goalStatus,
    temporalStatus,
    error,
    actor: 'keel',
  });
  return {
    goalStatus: result.status,
    explanation: result.reconciled
      ? `${error}; goal ${goal.id} is now ${result.status}`
      : `goal ${goal.id} is already ${result.status}`,
  };
}

/**
 * The models and prices a new goal keeps its budget with: the configured
 * tiers, the price table, and a prompt allowance of the working set plus the
 * instructions. They travel in the goal's input, so changing them affects new goals only.
 */
export function goalModels(
  config: Pick<Config, 'KEEL_MODEL_SMALL' | 'KEEL_MODEL_LARGE' | 'KEEL_PRICES' | 'KEEL_WORKING_SET_TOKENS'>,
): GoalModels {
  return {
    small: config.KEEL_MODEL_SMALL,
    large: config.KEEL_MODEL_LARGE,
    prices: resolvePrices(config.KEEL_PRICES),
    promptTokens: config.KEEL_WORKING_SET_TOKENS + PROMPT_ALLOWANCE_TOKENS,
  };
}

/** Instructions, the tool catalogue and the goal around the working set, in tokens (measured: about 900). */
export const PROMPT_ALLOWANCE_TOKENS = 1500;
