/**
 * zod as the workflow sandbox sees it (workers/bundle.ts points the bundle's
 * `zod` here): the same `z`, evaluated once per worker thread instead of once
 * per workflow.
 *
 * The sandbox evaluates every module a workflow imports again for each
 * workflow it starts; zod is a large library, and evaluating it was most of
 * what a goal still spent on modules once the specs were shared
 * (bench/sandbox.ts, bench/load.ts --profile). Here the first workflow on a
 * thread loads it through the shared store (shared/once.ts) and every later
 * one is handed that same module, so the schemas in the store and the `z`
 * a workflow calls come from one zod. Outside the bundle, `zod` is zod.
 */
import type * as Zod from 'zod';
import { once } from './once';

/** This workflow's handle on the thread's zod (module state: one per workflow, asked of the store once). */
let loaded: typeof Zod | undefined;
// A require, not an import: the bundle then evaluates zod when this first runs, not when a workflow loads.
// eslint-disable-next-line @typescript-eslint/no-require-imports, no-restricted-globals
const zod = (): typeof Zod => (loaded ??= once('zod', () => require('zod/v4') as typeof Zod));

/** `z`, whose every property is read from the one zod of this worker thread. */
export const z: typeof Zod.z = new Proxy({} as typeof Zod.z, {
  get: (_target, key) => Reflect.get(zod().z, key),
});
