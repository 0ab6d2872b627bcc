/** JSON errors with the right status: `{error: {code, message}}`; commands' typed errors map to 404, 409, 400, 503. */
import type { ErrorRequestHandler, RequestHandler } from 'express';
import type { z } from 'zod';
import { CommandError, type CommandErrorKind } from '../commands/errors';
import { databaseUnavailable } from '../db/unavailable';
import { findHostileInput } from './hostile';

export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details?: unknown,
  ) {
    super(message);
  }
}

export const badRequest = (message: string, details?: unknown) => new HttpError(400, 'bad_request', message, details);
export const notFound = (what: string) => new HttpError(404, 'not_found', `${what} does not exist`);
// Conflicts and unavailability come from commands/ as typed errors (see httpErrorOf below).

/** Parses a body or query with zod; a 400 names every bad field. */
export function parse<T extends z.ZodTypeAny>(
  schema: T,
  value: unknown,
  where: 'body' | 'query' | 'headers' = 'body',
): z.infer<T> {
  const result = schema.safeParse(value ?? {});
  if (result.success) return result.data;
  const fields = result.error.issues.map((i) => ({
    field: i.path.length ? i.path.join('.') : where,
    message: i.message,
  }));
  throw new HttpError(400, 'bad_request', fields.map((f) => `${f.field}: ${f.message}`).join('; '), { fields });
}

/**
 * Wraps a route handler: refuses hostile route parameters (`/v1/goals/%00`) with
 * a 400 naming the parameter, the same check ./middleware.ts makes of the body and
 * query (parameters exist only once a route matched), and forwards a rejected
 * promise to the error handler.
 */
export const route =
  (fn: (...args: Parameters<RequestHandler>) => Promise<unknown>): RequestHandler =>
  (req, res, next) => {
    const problem = findHostileInput(req.params, 'params');
    if (problem) {
      next(badRequest(problem));
      return;
    }
    fn(req, res, next).catch(next);
  };

/** The HTTP status and code of each way a command refuses. */
const COMMAND_ERRORS: Record<CommandErrorKind, { status: number; code: string }> = {
  not_found: { status: 404, code: 'not_found' },
  conflict: { status: 409, code: 'conflict' },
  invalid: { status: 400, code: 'bad_request' },
  unavailable: { status: 503, code: 'unavailable' },
};

/** A command's typed error as the HTTP error it means. */
export function httpErrorOf(err: CommandError): HttpError {
  const { status, code } = COMMAND_ERRORS[err.kind];
  return new HttpError(status, code, err.message, err.details);
}

export const errorHandler: ErrorRequestHandler = (err, _req, res, _next) => {
  if (err instanceof CommandError) err = httpErrorOf(err);
  if (err instanceof HttpError) {
    res
      .status(err.status)
      .json({ error: { code: err.code, message: err.message, ...(err.details ? { details: err.details } : {}) } });
    return;
  }
  const down = databaseUnavailable(err);
  if (down) {
    // Nothing was accepted: the client retries (with the same requestId / Idempotency-Key) once it is back.
    res
      .status(503)
      .set('Retry-After', '2')
      .json({ error: { code: 'unavailable', message: `PostgreSQL is unavailable (${down}); retry shortly` } });
    return;
  }
  const e = err as { type?: string; status?: number; message?: string; limit?: number };
  // body-parser's own errors carry a type and a status.
  if (e.type === 'entity.too.large') {
    res
      .status(413)
      .json({ error: { code: 'payload_too_large', message: `request body is larger than the ${e.limit} byte limit` } });
    return;
  }
  if (e.type === 'entity.parse.failed') {
    res.status(400).json({ error: { code: 'bad_request', message: `body is not valid JSON: ${e.message}` } });
    return;
  }
  if (e.status && e.status >= 400 && e.status < 500) {
    res.status(e.status).json({ error: { code: 'bad_request', message: e.message ?? 'bad request' } });
    return;
  }
  console.error('[api] unhandled error', err);
  res.status(500).json({ error: { code: 'internal', message: 'internal error' } });
};
