/**
 * Values made once and then shared: the tool specs, their zod schemas and
 * the default policy. Outside the workflow sandbox this is a module-level
 * memo like any other (made once per process).
 *
 * Inside it, it is what makes a goal cheap to start. The sandbox evaluates
 * the bundle's modules again for every workflow it starts, so that module
 * state cannot leak from one workflow into another; building every tool's
 * schemas again was about two thirds of what a Keel goal spent in its first
 * workflow task (bench/load.ts, bench/sandbox.ts). This module is preloaded
 * instead (workers/bundle.ts: the SDK's `preloadModules`), so its store is
 * one per worker thread, and a value made by the first workflow that asks
 * for it is handed to every later one.
 *
 * Only what is the same for every workflow may go here: values that depend
 * on nothing but the code (no workflow input, no time, no randomness), that
 * no workflow changes. The SDK deep-freezes what a preloaded module exports,
 * which zod's schemas do not survive (they store derived parts on
 * themselves); the store's entries are outside that freeze, so plain data
 * kept here is frozen by `onceFrozen` instead.
 */
const made = new Map<string, unknown>();
const stats = { made: 0, reused: 0 };

/** The value `key` names: made by `make` the first time, the same value after. */
export function once<T>(key: string, make: () => T): T {
  if (made.has(key)) {
    stats.reused++;
    return made.get(key) as T;
  }
  const value = make();
  stats.made++;
  made.set(key, value);
  return value;
}

/** once() for plain data (no functions, no schemas), frozen all the way down so no caller can change it for others. */
export function onceFrozen<T>(key: string, make: () => T): T {
  return once(key, () => deepFreeze(make()));
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}

/** How many values this store has made (and their keys), and how often it handed out one made before (tests). */
export function onceStats(): { made: number; reused: number; keys: string[] } {
  return { ...stats, keys: [...made.keys()].sort() };
}
