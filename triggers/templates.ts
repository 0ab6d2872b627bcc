/**
 * Goal templates: `{{payload.from}}`-style placeholders filled from an event.
 *
 * Filling is one pass over the template: what a placeholder is replaced with
 * is never read again, so a payload value that itself contains `{{…}}` stays
 * literal text. Nothing is evaluated; the filled text is data about the
 * event, and the model planner reads a goal's text as data, never as
 * instructions (planner/model.ts).
 *
 * A placeholder is `{{root.path}}` where root is one of:
 * - `payload`: any path into the event's payload (`payload.from`,
 *   `payload.customer.email`, `payload.items.0.name`);
 * - `event`: `id` (Keel's id of the inbound event), `source`, `type`, `externalId`;
 * - `classification`: `kind`, `confidence`, `reason`;
 * - `trigger`: `id`, `name`.
 *
 * A path the event does not have fills an empty string and is reported as
 * missing (the goal's description says which, see triggers/goals.ts).
 */
import { cut } from '../shared/text';

/** Every `{{ … }}` in a template; group 1 is what is between the braces. */
const PLACEHOLDER = /\{\{([^{}]*)\}\}/g;

/** A path: a root and at least one segment, segments of letters, digits, `_` and `-`. */
const PATH = /^([A-Za-z]+)((?:\.[A-Za-z0-9_-]+)+)$/;

/** The fields each root other than `payload` has. */
export const TEMPLATE_FIELDS = {
  event: ['id', 'source', 'type', 'externalId'],
  classification: ['kind', 'confidence', 'reason'],
  trigger: ['id', 'name'],
} as const;

const ROOTS = ['payload', ...Object.keys(TEMPLATE_FIELDS)] as const;

/** What a filled template may read. */
export interface TemplateContext {
  event: { id: string; source: string; type: string; externalId: string };
  payload: Record<string, unknown>;
  classification: { kind: string; confidence: number; reason: string };
  trigger: { id: string; name: string };
}

/** A value as a template writes it: strings as they are, numbers and booleans as text, objects as JSON. */
const MAX_VALUE_LENGTH = 20_000;

const HOW = `a placeholder is {{payload.<field>}}, {{event.<${TEMPLATE_FIELDS.event.join('|')}>}}, {{classification.<${TEMPLATE_FIELDS.classification.join('|')}>}} or {{trigger.<${TEMPLATE_FIELDS.trigger.join('|')}>}}`;

/** Why a placeholder's path is not one a template may use, or undefined when it is. */
export function pathProblem(path: string): string | undefined {
  const m = PATH.exec(path);
  if (!m) return `"{{${path}}}" is not a placeholder: ${HOW}`;
  const root = m[1];
  if (!(ROOTS as readonly string[]).includes(root)) return `"{{${path}}}" names no known part of an event: ${HOW}`;
  if (root === 'payload') return undefined;
  const segments = m[2].slice(1).split('.');
  const fields: readonly string[] = TEMPLATE_FIELDS[root as keyof typeof TEMPLATE_FIELDS];
  if (segments.length !== 1 || !fields.includes(segments[0])) {
    return `"{{${path}}}": ${root} has ${fields.join(', ')}`;
  }
  return undefined;
}

/** The placeholders of a template, as written between the braces (trimmed). */
export function placeholdersOf(template: string): string[] {
  return [...template.matchAll(PLACEHOLDER)].map((m) => m[1].trim());
}

/**
 * What is wrong with a template: placeholders that name nothing a template
 * may read, and braces that open or close no placeholder (`{{payload.from}`).
 * Empty when the template is fine.
 */
export function templateProblems(template: string): string[] {
  const problems = placeholdersOf(template)
    .map(pathProblem)
    .filter((p): p is string => p !== undefined);
  const rest = template.replace(PLACEHOLDER, '');
  if (rest.includes('{{') || rest.includes('}}')) {
    problems.push(`"{{" and "}}" must enclose a placeholder (${HOW}); this template has an unmatched one`);
  }
  return problems;
}

/**
 * The value at a dotted path (`customer.email`, `items.0.name`), reading only
 * the object's own properties: `constructor` or `__proto__` find nothing.
 */
export function valueAt(root: unknown, path: readonly string[]): unknown {
  let here: unknown = root;
  for (const segment of path) {
    if (typeof here !== 'object' || here === null) return undefined;
    if (!Object.prototype.hasOwnProperty.call(here, segment)) return undefined;
    here = (here as Record<string, unknown>)[segment];
  }
  return here;
}

/** A value as text, or undefined for nothing (absent, null, or an empty string). */
export function textOfValue(value: unknown): string | undefined {
  if (value === undefined || value === null) return undefined;
  const text = typeof value === 'string' ? value : typeof value === 'object' ? JSON.stringify(value) : String(value);
  return text === '' ? undefined : text;
}

/** What a placeholder path reads from the context. */
export function resolve(path: string, ctx: TemplateContext): unknown {
  const [root, ...segments] = path.split('.');
  switch (root) {
    case 'payload':
      return valueAt(ctx.payload, segments);
    case 'event':
      return valueAt(ctx.event, segments);
    case 'classification':
      return valueAt(ctx.classification, segments);
    case 'trigger':
      return valueAt(ctx.trigger, segments);
    default:
      return undefined;
  }
}

/**
 * Fills a template in one pass. A placeholder the event has no value for
 * becomes an empty string and is listed in `missing` (each path once).
 */
export function fillTemplate(template: string, ctx: TemplateContext): { text: string; missing: string[] } {
  const missing: string[] = [];
  const text = template.replace(PLACEHOLDER, (_whole, inner: string) => {
    const path = inner.trim();
    const value = pathProblem(path) === undefined ? textOfValue(resolve(path, ctx)) : undefined;
    if (value === undefined) {
      if (!missing.includes(path)) missing.push(path);
      return '';
    }
    return cut(value, MAX_VALUE_LENGTH);
  });
  return { text, missing };
}
