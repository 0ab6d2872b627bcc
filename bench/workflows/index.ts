/** The benchmark's workflow bundle: Keel's own workflows plus the bare baselines, which stay out of production. */
export * from '../../workflows';
export { bareApprovalWorkflow, bareGoalWorkflow, bareRecordedEmailWorkflow, bareRecordedNoteWorkflow } from './bare';
