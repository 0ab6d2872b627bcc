/**
 * Running a validated plan: each step starts once everything it depends on
 * has finished (independent steps run in parallel), held steps wait for their
 * approval first, and every committed step that can be undone pushes its
 * compensation on a stack that unwinds in reverse order if the goal fails.
 */
import { ApplicationFailure, CancellationScope, isCancellation, log, sleep } from '@temporalio/workflow';
import { durationMs } from '../../shared/duration';
import { uiSummary } from '../../shared/summary';
import { isStepRef, type PlannedStep, type StepOutput, type StepResult } from '../../shared/plan';
import { toolSpec, type KeelToolSpec } from '../../tools/registry';
import { describeIssues, stepOutputSchema, type CompensationActivityName } from '../../tools/spec';
import type { createBudget } from './budget';
import type { createApprovals } from './approvals';
import { errorMessage } from './errors';
import type { GoalRun } from './state';

/**
 * Replaces `inputs` with what the spec makes of an approved edit, after
 * checking the edit against the spec's edit schema (the API checks it before
 * delivering it; a decision sent straight to Temporal is checked here).
 */
function applyInputEdits(spec: KeelToolSpec, step: PlannedStep, inputs: Record<string, unknown>, edits: unknown) {
  const approval = spec.approval;
  const checked = approval?.edits?.safeParse(edits);
  if (!approval?.applyEditsToInputs || !checked) return;
  if (!checked.success) {
    throw ApplicationFailure.nonRetryable(
      `step "${step.id}" (${spec.name}) was approved with invalid edits: ${describeIssues(checked.error, 'edits')}`,
      'InvalidInput',
    );
  }
  const parsed = spec.input.safeParse(inputs);
  if (!parsed.success) return; // the activity refuses invalid inputs itself, naming them
  const edited = (approval.applyEditsToInputs as (i: unknown, e: Record<string, string>) => Record<string, unknown>)(
    parsed.data,
    checked.data,
  );
  for (const [name, value] of Object.entries(edited)) inputs[name] = value;
}

export function createRunner(
  run: GoalRun,
  approvals: ReturnType<typeof createApprovals>,
  budget: ReturnType<typeof createBudget>,
) {
  const { goal, state, acts } = run;
  const outputs: Record<string, StepOutput> = {};
  const compensations: { stepId: string; activity: CompensationActivityName; output: StepOutput }[] = [];
  /** Steps whose dependents are not needed: a step that said so (`halt`), and the steps skipped for it. */
  const halted = new Set<string>();

  async function runStep(step: PlannedStep, workflowId: string): Promise<void> {
    const stepState = run.stepState(step.id);
    const spec = toolSpec(step.tool);
    if (!spec)
      throw ApplicationFailure.nonRetryable(`step "${step.id}" names unknown tool "${step.tool}"`, 'InvalidPlan');
    const inputs: Record<string, unknown> = {};
    for (const [name, value] of Object.entries(step.inputs)) {
      inputs[name] = isStepRef(value) ? outputs[value.fromStep] : value;
    }
    if (step.requiresApproval) {
      const recorded = await approvals.awaitApproval(step, stepState, inputs);
      if (recorded.editedRef) {
        // The operator's edited version is what the step acts on.
        for (const name of spec.refInputs) {
          const current = stepOutputSchema.safeParse(inputs[name]);
          if (current.success && current.data.ref) {
            inputs[name] = { ...current.data, ref: recorded.editedRef, humanEdited: true };
          }
        }
      } else if (recorded.edits && spec.approval?.applyEditsToInputs) {
        // Edits of something given inline (a message's text): the step runs with the edited inputs.
        applyInputEdits(spec, step, inputs, recorded.edits);
      }
    }
    if (spec.waitFor) {
      // A durable timer (followup.wait): it survives restarts, and a cancel of the goal ends it.
      let ms: number;
      try {
        ms = durationMs(String(inputs[spec.waitFor]));
      } catch (err) {
        throw ApplicationFailure.nonRetryable(`step "${step.id}" (${spec.name}): ${errorMessage(err)}`, 'InvalidInput');
      }
      stepState.status = 'running';
      await sleep(ms);
    }
    const reserved = spec.model ? await budget.reserve(spec.model, step, stepState) : undefined;
    stepState.status = 'running';
    let result: StepResult;
    try {
      // The step's title is the activity's summary in the Temporal Web UI (user metadata, not replayed).
      result = await acts.byPreset[spec.preset][spec.activity].executeWithOptions({ summary: uiSummary(step.title) }, [
        {
          goalId: goal.goalId,
          workflowId,
          planVersion: state.plan.version,
          stepId: step.id,
          tool: step.tool,
          inputs,
          ...(state.model ? { model: state.model } : {}),
          ...(reserved ? { tier: reserved.tier } : {}),
        },
      ]);
    } finally {
      // Settled: the real cost replaces the reservation (added below when the step succeeded).
      budget.release(reserved);
    }
    outputs[step.id] = result.output;
    // A step that says the rest is not needed (a reply came before the follow-up): its dependents are skipped.
    if (result.output.halt === true) halted.add(step.id);
    stepState.output = result.output;
    stepState.status = 'completed';
    run.addCost(result);
    if (spec.compensation) compensations.push({ stepId: step.id, activity: spec.compensation, output: result.output });
  }

  return {
    /** Runs every step; the first failure cancels the rest and is rethrown once they have settled. */
    async runPlan(steps: PlannedStep[], workflowId: string): Promise<void> {
      const finished: Record<string, Promise<void>> = {};
      let firstFailure: unknown;
      const stepsScope = new CancellationScope();
      await stepsScope.run(async () => {
        // Steps were validated acyclic; each starts once everything it depends on has finished.
        const remaining = [...steps];
        while (remaining.length > 0) {
          const index = remaining.findIndex((s) => s.dependsOn.every((d) => finished[d] !== undefined));
          if (index === -1) {
            // Only a plan that skipped validation gets here: a dependency no step provides, or a cycle.
            throw ApplicationFailure.nonRetryable(
              `steps ${remaining.map((s) => `"${s.id}"`).join(', ')} depend on steps that cannot run first`,
              'InvalidPlan',
            );
          }
          const [step] = remaining.splice(index, 1);
          finished[step.id] = (async () => {
            await Promise.all(step.dependsOn.map((d) => finished[d]));
            const haltedBy = step.dependsOn.find((d) => halted.has(d));
            if (haltedBy !== undefined) {
              halted.add(step.id);
              const stepState = run.stepState(step.id);
              stepState.status = 'skipped';
              stepState.error = `not needed: ${outputs[haltedBy]?.preview ?? `step "${haltedBy}" ended the branch`}`;
              await acts.book.markStep({
                goalId: goal.goalId,
                planVersion: state.plan.version,
                stepId: step.id,
                status: 'skipped',
                error: stepState.error,
                eventType: 'step.skipped',
              });
              return;
            }
            await runStep(step, workflowId);
          })().catch(async (err: unknown) => {
            const stepState = run.stepState(step.id);
            if (firstFailure === undefined) {
              firstFailure = err;
              stepsScope.cancel();
            }
            if (stepState.status !== 'completed') {
              // A step that never started was skipped because something before it failed.
              const end = stepState.status === 'pending' ? 'skipped' : isCancellation(err) ? 'cancelled' : 'failed';
              stepState.status = end;
              stepState.error = errorMessage(err);
              await CancellationScope.nonCancellable(() =>
                acts.book.markStep({
                  goalId: goal.goalId,
                  planVersion: state.plan.version,
                  stepId: step.id,
                  status: end,
                  error: stepState.error,
                  eventType: `step.${end}`,
                }),
              );
            }
            throw err;
          });
        }
        await Promise.allSettled(Object.values(finished));
      });
      if (firstFailure !== undefined) throw firstFailure;
    },

    /** Undoes committed steps in reverse order; a compensation that fails is logged and the rest still run. */
    async compensate(reason: string): Promise<void> {
      while (compensations.length > 0) {
        const c = compensations.pop()!;
        try {
          const title = state.plan.steps.find((s) => s.id === c.stepId)?.title ?? c.stepId;
          await acts.byPreset.db[c.activity].executeWithOptions({ summary: uiSummary(`Undo: ${title}`) }, [
            {
              goalId: goal.goalId,
              planVersion: state.plan.version,
              stepId: c.stepId,
              output: c.output,
              reason,
            },
          ]);
          const stepState = state.plan.steps.find((s) => s.id === c.stepId);
          if (stepState) stepState.status = 'compensated';
        } catch (err) {
          log.error('Compensation failed', { stepId: c.stepId, error: errorMessage(err) });
        }
      }
    },
  };
}
