/**
 * The ways a command can refuse, as typed errors the API maps to HTTP
 * (404, 409, 400, 503) and other callers can match on. Each message names the
 * cause, so whoever reads it knows what to do next.
 */

export type CommandErrorKind = 'not_found' | 'conflict' | 'invalid' | 'unavailable';

export class CommandError extends Error {
  constructor(
    readonly kind: CommandErrorKind,
    message: string,
    readonly details?: Record<string, unknown>,
  ) {
    super(message);
    this.name = 'CommandError';
  }
}

/** What the command was asked about does not exist. */
export class NotFoundError extends CommandError {
  constructor(message: string, details?: Record<string, unknown>) {
    super('not_found', message, details);
    this.name = 'NotFoundError';
  }
}

/** The request is valid but the state it meets refuses it (already decided, no longer running). */
export class ConflictError extends CommandError {
  constructor(message: string, details?: Record<string, unknown>) {
    super('conflict', message, details);
    this.name = 'ConflictError';
  }
}

/** The request itself is wrong. */
export class InvalidError extends CommandError {
  constructor(message: string, details?: Record<string, unknown>) {
    super('invalid', message, details);
    this.name = 'InvalidError';
  }
}

/** A dependency (Temporal) did not answer or refused for reasons of its own; retrying later may work. */
export class UnavailableError extends CommandError {
  constructor(
    message: string,
    details?: Record<string, unknown>,
    /** True when the transport failed (no connection), not merely slow: other calls will fail the same way. */
    readonly unreachable = false,
  ) {
    super('unavailable', message, details);
    this.name = 'UnavailableError';
  }
}
