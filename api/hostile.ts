/**
 * Refuses input no route can store, before any route sees it: strings with a
 * NUL character or an unpaired UTF-16 surrogate (PostgreSQL refuses both in
 * text and jsonb) and JSON nested deeper than MAX_JSON_DEPTH (serializing it
 * again overflows the stack). One iterative walk over the body, the query
 * and the route's parameters (./middleware.ts and `route()` in ./errors.ts),
 * so hostile input costs O(size) and no recursion.
 */

import { cut } from '../shared/text';

/** Deepest nesting of objects and arrays a body may have (the body itself is level 1). */
export const MAX_JSON_DEPTH = 32;

// With the u flag a well-formed pair is one code point outside this range; only a lone half matches.
const LONE_SURROGATE = /[\uD800-\uDFFF]/u;

function stringProblem(s: string): string | undefined {
  if (s.includes('\u0000')) return 'contains a NUL character';
  if (LONE_SURROGATE.test(s)) return 'contains an unpaired UTF-16 surrogate (not valid Unicode)';
  return undefined;
}

/** A field path for messages, `input.note` or `decisions.0.comment`; hostile keys and very long paths shortened. */
function fieldName(path: readonly string[], root: string): string {
  if (path.length === 0) return root;
  const text = path
    .map((k) => (stringProblem(k) || k.length > 60 ? `${k.slice(0, 20).replace(/[\u0000\uD800-\uDFFF]/g, '?')}…` : k))
    .join('.');
  return cut(text, 200);
}

/**
 * The first problem in `value` as `field: what is wrong`, or undefined when
 * there is none. `root` names the value itself (`body`, `query`).
 */
export function findHostileInput(value: unknown, root: string): string | undefined {
  const stack: { value: unknown; path: string[]; depth: number }[] = [{ value, path: [], depth: 1 }];
  while (stack.length > 0) {
    const { value: v, path, depth } = stack.pop()!;
    if (typeof v === 'string') {
      const problem = stringProblem(v);
      if (problem) return `${fieldName(path, root)}: ${problem}`;
      continue;
    }
    if (v === null || typeof v !== 'object') continue;
    if (depth > MAX_JSON_DEPTH) {
      return `${fieldName(path, root)}: nested deeper than ${MAX_JSON_DEPTH} levels of objects and arrays`;
    }
    const entries = Array.isArray(v) ? v.map((item, i) => [String(i), item] as const) : Object.entries(v);
    // Pushed in reverse so the walk reports the first problem in document order.
    for (let i = entries.length - 1; i >= 0; i--) {
      const [key, item] = entries[i];
      const keyProblem = stringProblem(key);
      if (keyProblem) return `${fieldName(path, root)}: a key ${keyProblem}`;
      stack.push({ value: item, path: [...path, key], depth: depth + 1 });
    }
  }
  return undefined;
}
