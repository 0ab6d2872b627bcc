/**
 * What every /v1 request passes before a route, in this order: the bearer
 * key (before the body is even read, so a request without a valid key gets
 * 401 and never a parse error or 413), the JSON body, then the hostile-input
 * check of body and query.
 */
import { timingSafeEqual } from 'node:crypto';
import express, { type RequestHandler } from 'express';
import { HttpError, badRequest } from './errors';
import { findHostileInput } from './hostile';

/** 401 unless `Authorization: Bearer <apiKey>`; compared in constant time. */
export function bearerAuth(apiKey: string): RequestHandler {
  const expected = Buffer.from(apiKey);
  return (req, _res, next) => {
    const header = req.get('authorization') ?? '';
    const match = /^Bearer\s+(.+)$/i.exec(header);
    const given = Buffer.from(match?.[1] ?? '');
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
      next(
        new HttpError(
          401,
          'unauthorized',
          match ? 'the API key is not valid' : 'send Authorization: Bearer <KEEL_API_KEY>',
        ),
      );
      return;
    }
    next();
  };
}

/** JSON bodies up to `limit` (body-parser's errors become 400 and 413 in the error handler). */
export const jsonBody = (limit: string): RequestHandler => express.json({ limit });

/**
 * A 400 naming the field for a NUL character, an unpaired surrogate or
 * nesting deeper than MAX_JSON_DEPTH anywhere in the body or the query.
 * Route parameters are only known once a route matches: `route()` checks them.
 */
export const rejectHostileInput: RequestHandler = (req, _res, next) => {
  const problem = findHostileInput(req.body, 'body') ?? findHostileInput(req.query, 'query');
  next(problem ? badRequest(problem) : undefined);
};
