/**
 * Whether a plan may run: every tool known and allowed for the goal's kind,
 * inputs that match the specs, references to earlier steps, no cycle,
 * recipients the goal names or knows, within budget. Pure and deterministic:
 * the workflow holds every proposal to it and replans with its problems.
 */
import { isStepRef, type PlanStep } from '../shared/plan';
import { toolSpec } from '../tools/registry';
import { describeIssues, inputFields } from '../tools/spec';
import { emailAddresses, toolAllowed } from './approvals';
import type { Policy } from './settings';

export interface PlanProblem {
  stepId?: string;
  code:
    | 'unknown_tool'
    | 'tool_not_allowed'
    | 'unknown_recipient'
    | 'missing_input'
    | 'invalid_input'
    | 'bad_reference'
    | 'duplicate_step'
    | 'cycle'
    | 'over_budget'
    | 'empty_plan';
  message: string;
}

/**
 * What a plan is expected to cost. With `reservedAtRun`, steps that call a
 * model are left out: the workflow reserves their worst case against the
 * budget right before each runs (and asks the operator when it does not fit).
 */
export function estimatePlanCost(steps: PlanStep[], opts: { reservedAtRun?: boolean } = {}): number {
  return steps.reduce((sum, s) => {
    const spec = toolSpec(s.tool);
    return sum + (opts.reservedAtRun && spec?.model ? 0 : (spec?.estimatedCostUsd ?? 0));
  }, 0);
}

/**
 * Checks a proposed plan against the tool registry and the budget.
 * Returns every problem found, so a replan can be told all of them at once.
 */
export function validatePlan(
  steps: PlanStep[],
  opts: {
    budgetUsd: number;
    spentUsd: number;
    reservedAtRun?: boolean;
    /** When given, the only addresses (lower case) a step may name as a recipient. */
    recipients?: readonly string[];
    /** With the goal's kind: the policy's tool allow-list for that kind applies. */
    policy?: Policy;
    kind?: string;
  },
): PlanProblem[] {
  const problems: PlanProblem[] = [];
  if (steps.length === 0) return [{ code: 'empty_plan', message: 'the plan has no steps' }];
  const ids = new Set<string>();
  for (const step of steps) {
    if (ids.has(step.id))
      problems.push({ stepId: step.id, code: 'duplicate_step', message: `step id "${step.id}" is used twice` });
    ids.add(step.id);
  }
  for (const step of steps) {
    const spec = toolSpec(step.tool);
    if (!spec) {
      problems.push({
        stepId: step.id,
        code: 'unknown_tool',
        message: `step "${step.id}" names unknown tool "${step.tool}"`,
      });
      continue;
    }
    if (opts.policy && opts.kind !== undefined && !toolAllowed(opts.policy, opts.kind, spec.name)) {
      problems.push({
        stepId: step.id,
        code: 'tool_not_allowed',
        message: `step "${step.id}" uses ${spec.name}, which the policy does not allow for ${opts.kind} goals`,
      });
    }
    for (const name of opts.recipients ? (spec.recipientInputs ?? []) : []) {
      const v = step.inputs[name];
      for (const address of typeof v === 'string' ? emailAddresses(v) : []) {
        if (!opts.recipients?.includes(address)) {
          problems.push({
            stepId: step.id,
            code: 'unknown_recipient',
            message: `step "${step.id}" (${step.tool}) names ${address}, who is neither named by the goal nor a contact`,
          });
        }
      }
    }
    // The spec's input schema says what each input must be; a reference is checked when it resolves.
    for (const field of inputFields(spec)) {
      const v = step.inputs[field.name];
      if (v === undefined || v === null || v === '') {
        if (field.required) {
          problems.push({
            stepId: step.id,
            code: 'missing_input',
            message: `step "${step.id}" (${step.tool}) is missing input "${field.name}"`,
          });
        }
      } else if (field.ref && !isStepRef(v)) {
        problems.push({
          stepId: step.id,
          code: 'bad_reference',
          message: `step "${step.id}" input "${field.name}" must reference an earlier step`,
        });
      } else if (!isStepRef(v)) {
        const parsed = field.schema.safeParse(v);
        if (!parsed.success) {
          problems.push({
            stepId: step.id,
            code: 'invalid_input',
            message: `step "${step.id}" (${step.tool}) has an invalid input: ${describeIssues(parsed.error, field.name)}`,
          });
        }
      }
    }
    for (const [name, v] of Object.entries(step.inputs)) {
      if (!isStepRef(v)) continue;
      if (!ids.has(v.fromStep)) {
        problems.push({
          stepId: step.id,
          code: 'bad_reference',
          message: `step "${step.id}" input "${name}" references unknown step "${v.fromStep}"`,
        });
      } else if (!step.dependsOn.includes(v.fromStep)) {
        problems.push({
          stepId: step.id,
          code: 'bad_reference',
          message: `step "${step.id}" reads "${v.fromStep}" but does not depend on it`,
        });
      }
    }
    for (const dep of step.dependsOn) {
      if (!ids.has(dep))
        problems.push({
          stepId: step.id,
          code: 'bad_reference',
          message: `step "${step.id}" depends on unknown step "${dep}"`,
        });
    }
  }
  const cycle = findCycle(steps);
  if (cycle) problems.push({ code: 'cycle', message: `steps depend on each other in a cycle: ${cycle.join(' -> ')}` });
  const estimate = estimatePlanCost(steps, opts);
  if (opts.spentUsd + estimate > opts.budgetUsd) {
    problems.push({
      code: 'over_budget',
      message: `plan is estimated at $${estimate.toFixed(4)} with $${opts.spentUsd.toFixed(4)} spent, over the $${opts.budgetUsd.toFixed(4)} budget`,
    });
  }
  return problems;
}

function findCycle(steps: PlanStep[]): string[] | undefined {
  const byId: Record<string, PlanStep> = {};
  for (const s of steps) byId[s.id] = s;
  const state: Record<string, 'visiting' | 'done'> = {};
  const path: string[] = [];
  const visit = (id: string): string[] | undefined => {
    if (state[id] === 'done' || !byId[id]) return undefined;
    if (state[id] === 'visiting') return [...path.slice(path.indexOf(id)), id];
    state[id] = 'visiting';
    path.push(id);
    for (const dep of byId[id].dependsOn) {
      const found = visit(dep);
      if (found) return found;
    }
    path.pop();
    state[id] = 'done';
    return undefined;
  };
  for (const s of steps) {
    const found = visit(s.id);
    if (found) return found;
  }
  return undefined;
}

/** The people a goal names itself, in its title, description and input: what its operator (or rule) wrote. */
export function goalRecipients(goal: {
  title: string;
  description?: string;
  input: Record<string, unknown>;
}): string[] {
  return [...new Set(emailAddresses(`${goal.title}\n${goal.description ?? ''}\n${JSON.stringify(goal.input)}`))];
}

const SINGLE_ADDRESS = /^(?:[^<>@]*<)?\s*([^\s<>@,;]+@[^\s<>@,;]+?)\s*>?$/;

/**
 * The people a goal started from outside content names (a trigger's goal, `origin` set): only the
 * input values that are one address each (`to: "{{payload.from}}"`, the sender the rule's author
 * chose to answer). Addresses inside its text are the outside's words ("send it to x@evil.test"),
 * so they name nobody: a model that follows them is refused.
 */
export function originRecipients(goal: { input: Record<string, unknown> }): string[] {
  const found = new Set<string>();
  for (const v of Object.values(goal.input)) {
    const m = typeof v === 'string' ? SINGLE_ADDRESS.exec(v.trim()) : null;
    if (m && emailAddresses(m[1]).length === 1) found.add(m[1].toLowerCase());
  }
  return [...found];
}
