/**
 * The goal's budget, enforced: before a model call (a model plan, a model
 * step) the workflow reserves its worst case — the most output tokens it asks
 * for plus the goal's prompt allowance, at the tier's price — against what is
 * left after spending and other reservations, and settles the real cost
 * after. When the tier does not fit it drops to the small tier if the caller
 * allows; when nothing fits it does not overspend: it asks the operator to
 * raise the budget, and waits.
 */
import { worstCaseCostUsd } from '../../models/prices';
import type { PlannedStep } from '../../shared/plan';
import type { GoalModels, StepState } from '../types';
import type { createApprovals } from './approvals';
import type { GoalRun } from './state';

/** patched() id: model calls reserve their worst-case cost against the goal's budget before they run. */
export const BUDGET_RESERVATION_PATCH = 'keel-budget-reservation';
/** The tool name of the approval a goal opens when its budget cannot cover the next model call. */
export const BUDGET_RAISE = 'budget.raise';

export type ModelTier = 'small' | 'large';
export interface ModelUse {
  tier: ModelTier;
  maxTokens: number;
  downgrade: boolean;
}
export interface Reservation {
  tier: ModelTier;
  usd: number;
}

export function createBudget(run: GoalRun, approvals: ReturnType<typeof createApprovals>) {
  const { goal, state } = run;
  return {
    /**
     * Reserves `use` for `step`, waiting for a raised budget when nothing
     * fits; the tier to call with. Undefined for goals started without a
     * model configured, and for runs that began before reservations (they
     * never reach the patch marker here, so their histories replay).
     */
    async reserve(use: ModelUse, step: PlannedStep, stepState: StepState): Promise<Reservation | undefined> {
      const models = goal.settings.models;
      if (!models || !run.hasPatch(BUDGET_RESERVATION_PATCH)) return undefined;
      return reserveWith(models, use, step, stepState);
    },
    /** The call is over: its real cost (added to the goal's cost by the caller) replaces the reservation. */
    release(r: Reservation | undefined) {
      if (r) state.reservedUsd = (state.reservedUsd ?? 0) - r.usd;
    },
  };

  async function reserveWith(
    models: GoalModels,
    use: ModelUse,
    step: PlannedStep,
    stepState: StepState,
  ): Promise<Reservation> {
    const worstCase = (tier: ModelTier) =>
      worstCaseCostUsd({
        model: tier === 'large' ? (state.model ?? models.large) : models.small,
        maxTokens: use.maxTokens,
        inputTokens: models.promptTokens,
        prices: models.prices,
      });
    const take = (tier: ModelTier, usd: number): Reservation => {
      state.reservedUsd = (state.reservedUsd ?? 0) + usd;
      return { tier, usd };
    };
    for (;;) {
      const budget = state.budgetUsd ?? goal.budgetUsd;
      const reservedUsd = state.reservedUsd ?? 0;
      const free = budget - state.cost.usd - reservedUsd;
      const preferred = worstCase(use.tier);
      if (preferred <= free) return take(use.tier, preferred);
      if (use.downgrade && use.tier === 'large' && worstCase('small') <= free) return take('small', worstCase('small'));
      const proposed = Math.ceil((state.cost.usd + reservedUsd + preferred) * 100) / 100;
      await approvals.awaitApproval(
        {
          ...step,
          tool: BUDGET_RAISE,
          title: `Raise the budget to $${proposed.toFixed(2)}?`,
          rationale: `"${step.title}" (${step.tool}) may cost up to $${preferred.toFixed(4)} in model calls; $${Math.max(free, 0).toFixed(4)} of the $${budget.toFixed(2)} budget is left.`,
        },
        stepState,
        { budgetUsd: budget, spentUsd: state.cost.usd, reservedUsd, neededUsd: preferred, proposedBudgetUsd: proposed },
      );
      // Approved (a rejection fails the step): the goal may now spend up to the raised budget.
      state.budgetUsd = proposed;
    }
  }
}
