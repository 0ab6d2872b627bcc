/**
 * The goal a trigger starts for an event: its id, derived from the event's
 * source + externalId and the trigger's id, so the same event (a replayed
 * webhook, two racing deliveries) always names the same goal; and its title,
 * description and input, filled from the trigger's templates.
 */
import { createHash } from 'node:crypto';
import { cut } from '../shared/text';
import type { Trigger } from './definition';
import { fillTemplate, type TemplateContext } from './templates';

/** Where goals' own limits are (as `POST /v1/goals` checks them). */
const TITLE_MAX = 500;
const DESCRIPTION_MAX = 20_000;

/**
 * The goal id for this trigger and event: a UUID (version 8, RFC 9562) made
 * from sha256(trigger id, source, externalId).
 */
export function triggerGoalId(triggerId: string, source: string, externalId: string): string {
  const h = createHash('sha256')
    .update(JSON.stringify(['keel-trigger-goal', triggerId, source, externalId]))
    .digest();
  h[6] = (h[6] & 0x0f) | 0x80;
  h[8] = (h[8] & 0x3f) | 0x80;
  const hex = h.subarray(0, 16).toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20, 32)}`;
}

/** The goal's requestId, the key goal creation is idempotent on (state/intake.ts). */
export function triggerRequestId(triggerId: string, inboundId: string): string {
  return `trigger:${triggerId}:event:${inboundId}`;
}

/** What a trigger makes of an event: a goal to start, and the placeholders the event had no value for. */
export interface TriggeredGoal {
  goalId: string;
  requestId: string;
  title: string;
  description: string;
  kind?: string;
  input: Record<string, string>;
  budgetUsd?: number;
  missing: string[];
}

/**
 * Fills the trigger's goal templates from the event. A placeholder the event
 * has no value for becomes an empty string, and the description says which
 * were missing, so the operator (and the planner) sees the gap rather than a
 * silently shorter text; a title left blank becomes the trigger's name and
 * the event. The description ends with where the goal came from.
 */
export function goalFromTrigger(
  trigger: Pick<Trigger, 'id' | 'name' | 'goal'>,
  event: TemplateContext['event'] & { payload: Record<string, unknown> },
  classification: TemplateContext['classification'],
): TriggeredGoal {
  const ctx: TemplateContext = {
    event: { id: event.id, source: event.source, type: event.type, externalId: event.externalId },
    payload: event.payload,
    classification,
    trigger: { id: trigger.id, name: trigger.name },
  };
  const missing: string[] = [];
  const fill = (template: string) => {
    const filled = fillTemplate(template, ctx);
    for (const m of filled.missing) if (!missing.includes(m)) missing.push(m);
    return filled.text;
  };

  // A title is one line.
  const title =
    fill(trigger.goal.title).replace(/\s+/g, ' ').trim() || `${trigger.name}: ${event.type} from ${event.source}`;
  const body = trigger.goal.description !== undefined ? fill(trigger.goal.description).trim() : '';
  const input = Object.fromEntries(Object.entries(trigger.goal.input ?? {}).map(([k, t]) => [k, fill(t)]));
  const notes = [
    missing.length
      ? `Note: the event had no value for ${missing.join(', ')}; the trigger's template left ${missing.length === 1 ? 'it' : 'them'} empty.`
      : '',
    `Started by trigger "${trigger.name}" for the ${event.type} event ${event.externalId} from ${event.source} ` +
      `(classified ${classification.kind}, confidence ${classification.confidence.toFixed(2)}).`,
  ].filter(Boolean);
  const description = [body, ...notes].filter(Boolean).join('\n\n');

  return {
    goalId: triggerGoalId(trigger.id, event.source, event.externalId),
    requestId: triggerRequestId(trigger.id, event.id),
    title: cut(title, TITLE_MAX),
    // The notes matter more than the end of a long body: the body is cut first.
    description:
      description.length <= DESCRIPTION_MAX
        ? description
        : [cut(body, DESCRIPTION_MAX - notes.join('\n\n').length - 2), ...notes].join('\n\n'),
    ...(trigger.goal.kind ? { kind: trigger.goal.kind } : {}),
    input,
    ...(trigger.goal.budgetUsd !== undefined ? { budgetUsd: trigger.goal.budgetUsd } : {}),
    missing,
  };
}
