/**
 * Policy and safety, pure and sandbox-safe: the operator's settings, which
 * steps wait for a person and why, and whether a plan may run. The workflow,
 * the planner and the API all read it from here.
 */
export * from './approvals';
export * from './plans';
export * from './settings';
