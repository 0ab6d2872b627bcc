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
 */
import { bundleWorkflowCode } from '@temporalio/worker';

/** Keel's workflows: goalWorkflow and the memory compaction. */
export const WORKFLOWS_PATH = require.resolve('../workflows');

/**
 * Modules evaluated once per worker thread and shared by every workflow: pure
 * ones only (no state of a workflow at module scope, nothing a workflow changes).
 */
export const PRELOAD_MODULES: readonly string[] = [require.resolve('../shared/once')];

/** The options the SDK bundles Keel's workflow code with, when a worker bundles at start. */
export function keelBundlerOptions(): { preloadModules: string[] } {
  return { preloadModules: [...PRELOAD_MODULES] };
}

type Logger = Parameters<typeof bundleWorkflowCode>[0]['logger'];

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
