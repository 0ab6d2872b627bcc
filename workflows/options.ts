/** Named activity-option presets. Every preset bounds its retries and names what not to retry. */
import type { ActivityOptions, LocalActivityOptions } from '@temporalio/workflow';
import { ActivityCancellationType } from '@temporalio/workflow';
import { TOOL_ERRORS } from '../tools/registry';

/** Failures that retrying cannot fix: bad input, policy, a person's no, and what each tool's spec declares. */
export const NON_RETRYABLE = [
  'InvalidInput',
  'InvalidOutput',
  'InvalidPlan',
  'PolicyViolation',
  'NotFound',
  'ApprovalRejected',
  'ApprovalExpired',
  ...TOOL_ERRORS,
];

/**
 * Model calls: slow, rate-limited, malformed output is worth another try. Ten attempts ride out a provider's
 * storm of 429s or 5xx of about three minutes (1 + 2 + 4 + 8 + 16 + 30 × 4 s between them).
 */
export const modelPreset: ActivityOptions = {
  startToCloseTimeout: '2 minutes',
  // Every activity heartbeats while it runs (workers/heartbeat.ts): a call whose worker died is retried
  // after this, not after the two minutes above.
  heartbeatTimeout: '20s',
  retry: {
    initialInterval: '1s',
    backoffCoefficient: 2,
    maximumInterval: '30s',
    maximumAttempts: 10,
    nonRetryableErrorTypes: NON_RETRYABLE,
  },
};

/** Canonical-store writes: quick, idempotent, retried through brief database outages. */
export const dbPreset: ActivityOptions = {
  startToCloseTimeout: '30s',
  retry: {
    initialInterval: '200ms',
    backoffCoefficient: 2,
    maximumInterval: '10s',
    maximumAttempts: 10,
    nonRetryableErrorTypes: NON_RETRYABLE,
  },
};

/**
 * Connectors to the outside: they heartbeat, so a dead worker is noticed after
 * one heartbeat timeout rather than the whole start-to-close timeout, and a
 * cancelled send is waited for so the workflow never forgets a side effect in flight.
 */
export function connectorPreset(heartbeatMs: number): ActivityOptions {
  return {
    startToCloseTimeout: '5 minutes',
    heartbeatTimeout: heartbeatMs,
    cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
    retry: {
      initialInterval: '1s',
      backoffCoefficient: 2,
      maximumInterval: '30s',
      maximumAttempts: 20,
      nonRetryableErrorTypes: NON_RETRYABLE,
    },
  };
}

/** Bookkeeping in the canonical store, run as local activities to keep goal latency low; the same limits as dbPreset. */
export const bookkeepingPreset: LocalActivityOptions = {
  startToCloseTimeout: dbPreset.startToCloseTimeout,
  retry: dbPreset.retry,
};

/**
 * The planner as a local activity (goals without a model: the offline planner's rules and one query):
 * the model preset's limits, so a planner that fails is retried as the activity was.
 */
export const localPlannerPreset: LocalActivityOptions = {
  startToCloseTimeout: modelPreset.startToCloseTimeout,
  retry: modelPreset.retry,
};
