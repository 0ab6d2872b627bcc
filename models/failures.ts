/**
 * The `ApplicationFailure` types a model call fails with. Pure, so workflow
 * code (activity option presets, replanning rules) can name them without
 * importing the gateway.
 */

/** Failures a later attempt may get past: Temporal's retry policy retries them. */
export const RETRYABLE_MODEL_FAILURES = {
  /** 429: the endpoint asked us to slow down; the failure carries its `Retry-After` as `nextRetryDelay`. */
  rateLimited: 'ModelRateLimited',
  /** 5xx (and 408/409): the endpoint failed. */
  serverError: 'ModelServerError',
  /** No answer within `KEEL_MODEL_TIMEOUT_MS`. */
  timeout: 'ModelTimeout',
  /** The endpoint could not be reached, or answered with something that is not the protocol. */
  unavailable: 'ModelUnavailable',
} as const;

/** Failures that retrying cannot fix: they are thrown non-retryable. */
export const NON_RETRYABLE_MODEL_FAILURES = {
  /** 400/422: the request itself is wrong (unknown parameter, bad schema, prompt too long). */
  badRequest: 'ModelBadRequest',
  /** 401: the key is missing or wrong. */
  unauthorized: 'ModelUnauthorized',
  /** 403: the key may not use this model or endpoint. */
  forbidden: 'ModelForbidden',
  /** 404: no such model (or path) at the endpoint. */
  notFound: 'ModelNotFound',
  /** Any other 4xx. */
  requestRefused: 'ModelRequestRefused',
  /** The answer was not valid JSON for the schema, twice (the second time with the error in the prompt). */
  outputInvalid: 'ModelOutputInvalid',
} as const;

export type ModelFailureType =
  | (typeof RETRYABLE_MODEL_FAILURES)[keyof typeof RETRYABLE_MODEL_FAILURES]
  | (typeof NON_RETRYABLE_MODEL_FAILURES)[keyof typeof NON_RETRYABLE_MODEL_FAILURES];

/** Every non-retryable model failure type, e.g. for an activity preset's `nonRetryableErrorTypes`. */
export const MODEL_NON_RETRYABLE_TYPES: readonly string[] = Object.values(NON_RETRYABLE_MODEL_FAILURES);

/**
 * What a failed call had already spent (the failure's first detail), so the
 * caller can settle the cost of requests that were answered but not usable.
 */
export interface ModelFailureDetails {
  tier: string;
  model: string;
  inputTokens: number;
  outputTokens: number;
  costUsd: number;
}
