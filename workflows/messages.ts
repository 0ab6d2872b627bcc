/** Names callers and the workflow share: task queue, signals, query, update, search attributes. */
import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';
import type { Decision, GoalState } from './types';

export const goalWorkflowId = (goalId: string): string => `goal-${goalId}`;

/** A decision on a pending approval. Durable even while no worker runs. */
export const decideSignal = defineSignal<[Decision]>('decide');
/** The same decision, for callers that want the answer; the validator refuses unknown or decided approvals. */
export const decideUpdate = defineUpdate<{ approvalId: string; status: string }, [Decision]>('decide');
export const cancelSignal = defineSignal<[{ reason?: string; actor?: string }]>('cancel');
export const stateQuery = defineQuery<GoalState>('state');

export const KeelStatus = defineSearchAttributeKey('KeelStatus', SearchAttributeType.KEYWORD);
export const KeelPendingApprovals = defineSearchAttributeKey('KeelPendingApprovals', SearchAttributeType.INT);
