/**
 * With payload encryption on, the worker's log must not carry what the history
 * keeps encrypted: the SDK logs an activity's failure with its message ("Email
 * to ada@example.com was rejected…"), and log fields can quote goal text. This
 * logger keeps each line's message (constant text in the SDK and in Keel) and
 * the fields that cannot hold goal text — numbers, booleans, identifiers — and
 * writes every other field, and every error's message, as withheld. The
 * failure itself is in the history, encrypted, and readable through the codec
 * endpoint.
 */
import type { LogLevel, LogMetadata, Logger } from '@temporalio/common';

export const WITHHELD = '[withheld: payload encryption is on]';

/** Fields whose strings are identifiers or names Keel or the SDK chose, never goal text. */
const SAFE_STRING_FIELDS = new Set([
  'sdkComponent',
  'namespace',
  'taskQueue',
  'workflowId',
  'runId',
  'workflowType',
  'activityId',
  'activityType',
  'taskToken',
  'buildId',
  'identity',
  'goalId',
  'approvalId',
  'stepId',
  'tool',
  'errorName',
  'errorCode',
  // The SDK's lifecycle lines: "Worker state changed" {state}, "Workflow bundle created" {size}.
  'state',
  'size',
]);

/** An error's class and Temporal failure type, without its message. */
function errorShape(err: Error): string {
  const type = (err as { type?: unknown }).type;
  return `${err.name}${typeof type === 'string' && type ? ` (${type})` : ''}: ${WITHHELD}`;
}

function withhold(key: string, value: unknown): unknown {
  if (value === null || value === undefined || typeof value === 'number' || typeof value === 'boolean') return value;
  if (typeof value === 'bigint') return value;
  if (value instanceof Error) return errorShape(value);
  if (typeof value === 'string' && SAFE_STRING_FIELDS.has(key)) return value;
  return WITHHELD;
}

/** Wraps `inner` so that log fields that may quote goal text are withheld (see the module comment). */
export function withholdingLogger(inner: Logger): Logger {
  const log = (level: LogLevel, message: string, meta?: LogMetadata) => {
    if (!meta) return inner.log(level, message);
    const out: LogMetadata = {};
    for (const key of Reflect.ownKeys(meta)) {
      // Symbol keys are the SDK's own (the timestamp): kept as they are.
      out[key] = typeof key === 'symbol' ? meta[key] : withhold(key, meta[key]);
    }
    return inner.log(level, message, out);
  };
  return {
    log,
    trace: (message, meta) => log('TRACE', message, meta),
    debug: (message, meta) => log('DEBUG', message, meta),
    info: (message, meta) => log('INFO', message, meta),
    warn: (message, meta) => log('WARN', message, meta),
    error: (message, meta) => log('ERROR', message, meta),
  };
}
