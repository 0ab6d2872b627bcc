/** The benchmark's workflow bundle: Keel's own workflows plus the bare baseline, which stays out of production. */
export * from '../../workflows';
export { bareGoalWorkflow } from './bare';
