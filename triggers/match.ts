/**
 * Whether an event meets a trigger: its type and source, then the trigger's
 * conditions on the event's classification and payload. Pure.
 */
import type { Trigger, TriggerMatch } from './definition';
import { textOfValue, valueAt } from './templates';

/** What matching reads of an event. */
export interface MatchableEvent {
  source: string;
  type: string;
  payload: Record<string, unknown>;
  classification: { kind: string; confidence: number };
}

/** True when `trigger` is for this event's type (`*`: any) and source (none: any). */
export function isForEvent(
  trigger: Pick<Trigger, 'eventType' | 'source'>,
  event: Pick<MatchableEvent, 'source' | 'type'>,
) {
  return (
    (trigger.eventType === '*' || trigger.eventType === event.type) &&
    (!trigger.source || trigger.source === event.source)
  );
}

/**
 * True when every condition given holds: the kind is one of `kind`, the
 * confidence is at least `minConfidence`, and each `contains` field holds its
 * text, ignoring case (a field the payload does not have holds nothing).
 */
export function meetsConditions(match: TriggerMatch, event: MatchableEvent): boolean {
  if (match.kind && !(match.kind as readonly string[]).includes(event.classification.kind)) return false;
  if (match.minConfidence !== undefined && event.classification.confidence < match.minConfidence) return false;
  for (const c of match.contains ?? []) {
    const value = textOfValue(valueAt(event.payload, c.field.split('.').slice(1)));
    if (value === undefined || !value.toLowerCase().includes(c.text.toLowerCase())) return false;
  }
  return true;
}

/** The triggers the event matches, in the order given. */
export function matchingTriggers<T extends Pick<Trigger, 'eventType' | 'source' | 'match'>>(
  triggers: readonly T[],
  event: MatchableEvent,
): T[] {
  return triggers.filter((t) => isForEvent(t, event) && meetsConditions(t.match, event));
}
