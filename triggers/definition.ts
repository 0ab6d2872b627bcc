/**
 * What a trigger is, as a zod schema: the contract of `POST /v1/triggers` and
 * of the rows triggers/store.ts keeps. A trigger names the events it is for,
 * the conditions they must meet (a deliberately small language: the
 * classification's kind and confidence, and text contained in payload
 * fields), and the goal each matching event starts, as templates.
 */
import { z } from 'zod';
import { EVENT_KINDS } from '../tools/event-classify/spec';
import { templateProblems } from './templates';

/** A template of at most `max` characters whose placeholders all name something an event has. */
const template = (max: number) =>
  z
    .string()
    .max(max)
    .superRefine((text, ctx) => {
      for (const problem of templateProblems(text)) ctx.addIssue({ code: 'custom', message: problem });
    });

/** A payload field a condition reads, written as in templates: `payload.subject`, `payload.customer.email`. */
export const payloadField = z
  .string()
  .trim()
  .regex(
    /^payload(?:\.[A-Za-z0-9_-]+)+$/,
    'a field is a path into the payload, written as in templates: payload.subject, payload.customer.email',
  );

/** The conditions an event must meet; all that are given must hold. An empty match takes every event. */
export const matchSchema = z.strictObject({
  /** The event's classification is one of these kinds. */
  kind: z.array(z.enum(EVENT_KINDS)).min(1).max(EVENT_KINDS.length).optional(),
  /** The classification is at least this confident (0 to 1). */
  minConfidence: z.number().min(0).max(1).optional(),
  /** Each payload field contains its text (case-insensitive). */
  contains: z
    .array(z.strictObject({ field: payloadField, text: z.string().trim().min(1).max(200) }))
    .min(1)
    .max(10)
    .optional(),
});

export type TriggerMatch = z.infer<typeof matchSchema>;

/** A goal input's name, as goals and tools name their inputs. */
const INPUT_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/;
const MAX_INPUTS = 20;

/** The goal a matching event starts; every text is a template. */
export const goalTemplateSchema = z.strictObject({
  /** As in `POST /v1/goals`; left out, the goal's kind is decided as there (`email` when the input has a `to`). */
  kind: z
    .string()
    .trim()
    .min(1)
    .max(50)
    .regex(/^[a-z][a-z0-9_-]*$/, 'kind is a lowercase word')
    .optional(),
  title: template(500).refine((t) => t.trim() !== '', 'title is required'),
  description: template(20_000).optional(),
  input: z
    .record(z.string(), template(20_000))
    .superRefine((input, ctx) => {
      const names = Object.keys(input);
      for (const name of names.filter((n) => !INPUT_NAME.test(n))) {
        ctx.addIssue({ code: 'custom', path: [name], message: 'an input name is letters, digits and _ (at most 64)' });
      }
      if (names.length > MAX_INPUTS) ctx.addIssue({ code: 'custom', message: `at most ${MAX_INPUTS} inputs` });
    })
    .optional(),
  budgetUsd: z.number().positive().max(10_000).optional(),
});

export type GoalTemplate = z.infer<typeof goalTemplateSchema>;

/** `POST /v1/triggers`. */
export const triggerDefinitionSchema = z.strictObject({
  /** Unique among triggers: a second trigger with the same name is refused (409), so a retried create makes one. */
  name: z.string().trim().min(1, 'name is required').max(100),
  /** The event type it is for (`email.received`), or `*` for every type. */
  eventType: z.string().trim().min(1, 'eventType is required (or "*" for every type)').max(100),
  /** Only events from this source (`gmail`); left out, events from every source. */
  source: z.string().trim().min(1).max(100).optional(),
  match: matchSchema.default({}),
  goal: goalTemplateSchema,
});

export type TriggerDefinition = z.infer<typeof triggerDefinitionSchema>;

/** A stored trigger. */
export interface Trigger extends TriggerDefinition {
  id: string;
  createdAt: Date;
}
