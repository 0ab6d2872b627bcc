/**
 * Which steps wait for a person, and why. Pure: the workflow asks it for
 * every step of every plan, with the policy its goal started with.
 *
 * Always, whatever the policy says: a step whose effect cannot be taken back
 * (the spec's `irreversible`), and a step naming a tool the registry does not
 * know. Then the policy's rules, each adding its reason: the tool is on the
 * always-ask list; its risk is at or above `minRisk`; it reaches someone who
 * is not yet a contact (first contact); it reaches more people than
 * `audienceOver`; it moves an amount over `amountOverUsd`; or the goal was
 * started from outside content and the step writes memory or reaches outside.
 */
import { isStepRef, type PlanStep } from '../shared/plan';
import { toolSpec } from '../tools/registry';
import { DEFAULT_POLICY, RISKS, type Policy, type Risk } from './settings';

/** What the rules know besides the step. */
export interface ApprovalContext {
  policy: Policy;
  /** Addresses (lower case) that are the operator's contacts; undefined when unknown (no first-contact rule then). */
  contacts?: readonly string[];
  /** The goal was started from outside content (an inbound event through a trigger). */
  untrusted?: boolean;
}

/**
 * An address: RFC 5321's limits (64 characters before the @, 255 after) bound
 * every quantifier, so a long run of letters without an @ costs linear time,
 * not the quadratic backtracking of unbounded `+` (a 200 kB note stalled a
 * worker that way).
 */
const EMAIL_ADDRESS =
  /(?<![A-Za-z0-9._%+-])[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9-]{1,63}(?:\.[A-Za-z0-9-]{1,63}){0,8}\.[A-Za-z]{2,24}/g;

/** Every email address in a text, as written. */
export function findEmailAddresses(text: string): string[] {
  return text.match(EMAIL_ADDRESS) ?? [];
}

/** Every email address in a text, lower case. */
export function emailAddresses(text: string): string[] {
  return findEmailAddresses(text).map((a) => a.toLowerCase());
}

const atLeast = (risk: Risk, min: Risk) => RISKS.indexOf(risk) >= RISKS.indexOf(min);

/** The people a step reaches: the addresses in its recipient inputs (literal values; a reference names nobody yet). */
export function stepRecipients(step: StepLike): string[] {
  const spec = toolSpec(step.tool);
  const found = new Set<string>();
  for (const name of spec?.recipientInputs ?? []) {
    const v = step.inputs?.[name];
    if (typeof v === 'string') for (const a of emailAddresses(v)) found.add(a);
  }
  return [...found];
}

/** The largest amount a step names in an `amount` or `amountUsd` input, or undefined. */
function stepAmount(step: StepLike): number | undefined {
  let max: number | undefined;
  for (const name of ['amount', 'amountUsd']) {
    const v = step.inputs?.[name];
    if (v === undefined || v === null || isStepRef(v)) continue;
    const n = typeof v === 'number' ? v : Number(String(v).replace(/[$,\s]/g, ''));
    if (Number.isFinite(n)) max = Math.max(max ?? n, n);
  }
  return max;
}

/** A step as the rules read it (inputs absent: none given). */
type StepLike = Pick<PlanStep, 'tool'> & { inputs?: PlanStep['inputs'] };

/** Why a step waits for a person; empty when it does not. Without a context: the default policy. */
export function approvalReasons(step: StepLike, ctx: ApprovalContext = { policy: DEFAULT_POLICY }): string[] {
  const spec = toolSpec(step.tool);
  if (!spec) return [`${step.tool} is not a known tool`];
  const { approve } = ctx.policy;
  const reasons: string[] = [];
  if (spec.irreversible) reasons.push(`${spec.name} cannot be undone`);
  if (approve.tools.includes(spec.name)) reasons.push(`the policy asks before every ${spec.name}`);
  if (atLeast(spec.risk, approve.minRisk) && !spec.irreversible)
    reasons.push(`${spec.name} is ${spec.risk} and the policy asks from ${approve.minRisk} up`);
  const recipients = stepRecipients(step);
  if (approve.firstContact && ctx.contacts) {
    const first = recipients.filter((r) => !ctx.contacts!.includes(r));
    if (first.length) reasons.push(`first contact with ${first.join(', ')}`);
  }
  if (approve.audienceOver !== undefined && recipients.length > approve.audienceOver)
    reasons.push(`reaches ${recipients.length} people, over the policy's ${approve.audienceOver}`);
  const amount = stepAmount(step);
  if (approve.amountOverUsd !== undefined && amount !== undefined && amount > approve.amountOverUsd)
    reasons.push(`moves $${amount}, over the policy's $${approve.amountOverUsd}`);
  // Outside content may not reach memory or the outside world unreviewed; drafts and summaries are reviewed
  // before anything uses them, so they run.
  if (approve.untrusted && ctx.untrusted && (spec.writesMemory || spec.risk === 'external'))
    reasons.push('the goal was started from outside content');
  return reasons;
}

/** Whether a step waits for a person (see {@link approvalReasons}). */
export function requiresApproval(step: StepLike, ctx?: ApprovalContext): boolean {
  return approvalReasons(step, ctx).length > 0;
}

/** Whether plans for goals of `kind` may use `tool` (the policy's `tools` lists; `*` for kinds without their own). */
export function toolAllowed(policy: Policy, kind: string, tool: string): boolean {
  const list = policy.tools[kind] ?? policy.tools['*'];
  return list === undefined || list.includes(tool);
}

/**
 * What an approval of `tool` that nobody decided in time becomes: the
 * policy's `onExpiry` for the tool, `reject` by default, and always `reject`
 * for an irreversible tool (nothing irreversible happens without a person).
 */
export function expiryDecision(policy: Policy, tool: string): 'approve' | 'reject' {
  const spec = toolSpec(tool);
  if (!spec || spec.irreversible) return 'reject';
  return policy.approve.onExpiry[tool] ?? 'reject';
}
