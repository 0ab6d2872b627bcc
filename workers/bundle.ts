/**
 * How Keel's workflow code is bundled for the worker's sandbox: one place for
 * the worker that bundles at start, the tests, the fault suite and the
 * benchmarks, so every one of them runs the bundle production runs.
 *
 * With a reusable V8 context (the SDK's default) the sandbox evaluates the
 * bundle's modules again for every workflow it starts, so that no module
 * state leaks from one workflow into another. A module can instead be
 * evaluated once per worker thread and shared (the SDK's `preloadModules`,
 * which deep-freezes what it exports). Keel preloads one: shared/once.ts, the
 * store through which the tool specs, their zod schemas and the default
 * policy are made once and handed to every later workflow (they were the
 * largest part of what a goal evaluated again: bench/load.ts --profile,
 * bench/sandbox.ts). zod and the specs themselves cannot be preloaded: zod
 * writes to its schemas and patterns as it parses, and a frozen one throws.
 * zod is instead loaded through that store too: the bundle's `zod` is
 * shared/lazy-zod.ts, so the library is evaluated by the first workflow on a
 * thread, not by every one.
 */
import { bundleWorkflowCode } from '@temporalio/worker';

/** Keel's workflows: goalWorkflow and the memory compaction. */
export const WORKFLOWS_PATH = require.resolve('../workflows');

/**
 * Modules evaluated once per worker thread and shared by every workflow: pure
 * ones only (no state of a workflow at module scope, nothing a workflow changes).
 */
export const PRELOAD_MODULES: readonly string[] = [require.resolve('../shared/once')];

/** What the bundle's `import { z } from 'zod'` loads: zod through the shared store (shared/lazy-zod.ts). */
export const LAZY_ZOD = require.resolve('../shared/lazy-zod');

type BundleOptions = Parameters<typeof bundleWorkflowCode>[0];
type WebpackConfigHook = NonNullable<BundleOptions['webpackConfigHook']>;

/** Points the bundle's `zod` (the bare specifier only: lazy-zod itself loads `zod/v4`) at LAZY_ZOD. */
const lazyZod: WebpackConfigHook = (config) => ({
  ...config,
  resolve: { ...config.resolve, alias: { ...(config.resolve?.alias as object), zod$: LAZY_ZOD } },
});

/** The options the SDK bundles Keel's workflow code with, when a worker bundles at start. */
export function keelBundlerOptions(): { preloadModules: string[]; webpackConfigHook: WebpackConfigHook } {
  return { preloadModules: [...PRELOAD_MODULES], webpackConfigHook: lazyZod };
}

type Logger = BundleOptions['logger'];

/**
 * Bundles Keel's workflows (or `workflowsPath`, an entry that imports them) as
 * the worker does: its code, for `workflowBundle: { code }` or a file.
 */
export async function bundleKeelWorkflows(
  opts: { workflowsPath?: string; failureConverterPath?: string; logger?: Logger } = {},
): Promise<{ code: string }> {
  return bundleWorkflowCode({
    workflowsPath: opts.workflowsPath ?? WORKFLOWS_PATH,
    ...(opts.failureConverterPath ? { failureConverterPath: opts.failureConverterPath } : {}),
    ...(opts.logger ? { logger: opts.logger } : {}),
    ...keelBundlerOptions(),
  });
}
