/**
 * An adapter's event arriving: stored once (state/intake.ts), classified,
 * matched against the operators' triggers, and each match starting exactly
 * one goal through {@link startGoalOnce}.
 *
 * Routing (the classification and the triggers matched) is written once on
 * the event's row, and each goal's id derives from the event's source +
 * externalId and the trigger's id. So a replayed webhook, or two identical
 * deliveries racing, name the same goals and start none twice; and a delivery
 * that failed half-way (Temporal down) is completed by delivering it again.
 */
import { APIUserAbortError } from 'openai';
import { ApplicationFailure } from '@temporalio/common';
import type { ModelGateway } from '../models/gateway';
import type { MemoryService } from '../memory/service';
import {
  loadInboundEvent,
  recordInboundEvent,
  recordInboundRouting,
  type InboundEventInput,
  type InboundEventResult,
  type InboundRouting,
  type StoredInboundEvent,
} from '../state/intake';
import { classifyByRules, classifyWithModel, messageOfEvent } from '../tools/event-classify/classify';
import { EVENT_KINDS, type EventKind } from '../tools/event-classify/spec';
import { goalFromTrigger, triggerGoalId } from '../triggers/goals';
import { matchingTriggers } from '../triggers/match';
import { triggersById, triggersForEvent } from '../triggers/store';
import { UnavailableError } from './errors';
import { startGoalOnce } from './goals';
import type { CommandDeps } from './types';

/** How long the API waits for the small model to classify an event before it classifies it by the rules. */
export const DEFAULT_CLASSIFY_TIMEOUT_MS = 15_000;

export interface EventCommandDeps extends CommandDeps {
  memory: MemoryService;
  /** The model gateway, when a model endpoint is configured; events are classified by the rules without it. */
  models?: ModelGateway;
  /** Deadline of the classification's model call (default {@link DEFAULT_CLASSIFY_TIMEOUT_MS}). */
  classifyTimeoutMs?: number;
}

/** An event's classification, as stored on its row and answered. */
export interface EventClassification {
  kind: EventKind;
  confidence: number;
  reason: string;
  /** `model:<name>`, or the rules with the offline label. */
  generatedBy: string;
  model: string;
  costUsd: number;
  inputTokens: number;
  outputTokens: number;
  promptHash?: string;
  /** Why the model's answer was not used, when a model is configured but failed (the rules answered instead). */
  modelFailure?: string;
  classifiedAt: string;
}

/** A goal an event started, or had started on an earlier delivery. */
export interface EventGoal {
  goalId: string;
  workflowId: string;
  status: string;
  triggerId: string;
  /** The trigger's name; null when the trigger has been deleted since. */
  trigger: string | null;
  /** True when this delivery created the goal; false when an earlier delivery of the same event did. */
  created: boolean;
  /** Template placeholders the event had no value for (filled with empty strings; the description says so). */
  missing?: string[];
}

export interface EventAnswer extends InboundEventResult {
  classification: Pick<EventClassification, 'kind' | 'confidence' | 'reason' | 'generatedBy'>;
  goals: EventGoal[];
}

/**
 * Stores the event (once per source + externalId), routes it unless an
 * earlier delivery did, and starts the goal of every trigger it matched.
 * UnavailableError when Temporal does not take a start: the event, its
 * routing and the goals are kept, and delivering the same event again starts
 * what is missing.
 */
export async function receiveEvent(deps: EventCommandDeps, input: InboundEventInput): Promise<EventAnswer> {
  const stored = await recordInboundEvent(deps.prisma, deps.memory, input);
  // The stored event, not this delivery's body: of two deliveries the first one's payload is the event.
  const event = await loadInboundEvent(deps.prisma, stored.id);
  const routing = event.routing ?? (await route(deps, event));
  const classification = routing.classification as unknown as EventClassification;
  const goals = await startGoals(deps, event, routing, classification);
  return {
    ...stored,
    classification: {
      kind: classification.kind,
      confidence: classification.confidence,
      reason: classification.reason,
      generatedBy: classification.generatedBy,
    },
    goals,
  };
}

/** Classifies the event, matches it against the triggers for its type and source, and records both once. */
async function route(deps: EventCommandDeps, event: StoredInboundEvent): Promise<InboundRouting> {
  const classification = await classify(deps, event);
  const candidates = await triggersForEvent(deps.prisma, event);
  const matched = matchingTriggers(candidates, { ...event, classification });
  return recordInboundRouting(deps.prisma, event.id, {
    classification: { ...classification },
    matchedTriggers: matched.map((t) => t.id),
  });
}

/**
 * The small model's classification, or the rules' when no model is
 * configured or the model fails: an adapter's webhook should not fail
 * because a model is slow, and the stored classification says which it was.
 */
async function classify(deps: EventCommandDeps, event: StoredInboundEvent): Promise<EventClassification> {
  const message = messageOfEvent(event.type, event.payload);
  const classifiedAt = new Date().toISOString();
  if (deps.models) {
    try {
      const c = await classifyWithModel(deps.models, message, {
        timeoutMs: deps.classifyTimeoutMs ?? DEFAULT_CLASSIFY_TIMEOUT_MS,
      });
      return { ...c, classifiedAt };
    } catch (err) {
      if (err instanceof APIUserAbortError) throw err;
      const why = err instanceof ApplicationFailure ? `${err.type}: ${err.message}` : String(err);
      return { ...classifyByRules(message), modelFailure: why.slice(0, 500), classifiedAt };
    }
  }
  return { ...classifyByRules(message), classifiedAt };
}

/** Starts (or finds) the goal of every trigger the event matched, in the order they matched. */
async function startGoals(
  deps: EventCommandDeps,
  event: StoredInboundEvent,
  routing: InboundRouting,
  classification: EventClassification,
): Promise<EventGoal[]> {
  const triggers = await triggersById(deps.prisma, routing.matchedTriggers);
  const goals: EventGoal[] = [];
  for (const triggerId of routing.matchedTriggers) {
    const trigger = triggers.get(triggerId);
    if (!trigger) {
      // Deleted since the event matched it: its goal, if one was made, is still the event's; none is made now.
      const goalId = triggerGoalId(triggerId, event.source, event.externalId);
      const goal = await deps.prisma.goal.findUnique({ where: { id: goalId } });
      if (goal) {
        goals.push({
          goalId,
          workflowId: goal.workflowId,
          status: goal.status,
          triggerId,
          trigger: null,
          created: false,
        });
      }
      continue;
    }
    const goal = goalFromTrigger(trigger, event, {
      kind: EVENT_KINDS.includes(classification.kind) ? classification.kind : 'other',
      confidence: classification.confidence,
      reason: classification.reason,
    });
    try {
      const answer = await startGoalOnce(deps, {
        goalId: goal.goalId,
        requestId: goal.requestId,
        title: goal.title,
        description: goal.description,
        kind: goal.kind,
        input: goal.input,
        budgetUsd: goal.budgetUsd,
        actor: `trigger:${trigger.id}`,
        origin: { kind: 'event', source: event.source, externalId: event.externalId, triggerId: trigger.id },
      });
      goals.push({
        ...answer,
        triggerId,
        trigger: trigger.name,
        ...(goal.missing.length ? { missing: goal.missing } : {}),
      });
    } catch (err) {
      if (!(err instanceof UnavailableError)) throw err;
      throw new UnavailableError(
        `event ${event.id} is stored and matched ${routing.matchedTriggers.length} trigger(s), but the goal of trigger ` +
          `"${trigger.name}" (${goal.goalId}) is not started: deliver the same event again to start it (${err.message})`,
        { inboundId: event.id, goalId: goal.goalId },
        err.unreachable,
      );
    }
  }
  return goals;
}
