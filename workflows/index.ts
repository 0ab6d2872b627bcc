/** Every workflow the worker registers; the bundle's entry point. */
export { goalWorkflow } from './goal';
export { bareGoalWorkflow } from './bare';
export { compactMemoryWorkflow } from './compaction';
