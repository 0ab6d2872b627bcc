/** Every workflow the worker registers; the bundle's entry point. */
export { goalWorkflow } from './goal';
export { compactMemoryWorkflow } from './compaction';
