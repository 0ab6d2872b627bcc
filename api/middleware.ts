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

const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * JSON bodies up to `limit` (body-parser's errors become 400 and 413 in the error handler).
 * Bytes that are not UTF-8 are a 400: left to the parser they would become U+FFFD and be
 * stored as text the client never sent.
 */
export const jsonBody = (limit: string): RequestHandler =>
  express.json({
    limit,
    verify: (req, _res, buf) => {
      // body-parser also takes utf-16 and utf-32 when the Content-Type names them; those are decoded as named.
      if (/charset\s*=\s*"?utf-?(16|32)/i.test(req.headers['content-type'] ?? '')) return;
      try {
        utf8.decode(buf);
      } catch {
        throw Object.assign(new Error('body is not valid UTF-8'), { status: 400, type: 'entity.verify.failed' });
      }
    },
  });

/**
 * A 400 naming the field for a NUL character, an unpaired surrogate or
 * nesting deeper than MAX_JSON_DEPTH anywhere in the body or the query.
 * Route parameters are only known once a route matches: `route()` checks them.
 */
export const rejectHostileInput: RequestHandler = (req, _res, next) => {
  const problem = findHostileInput(req.body, 'body') ?? findHostileInput(req.query, 'query');
  next(problem ? badRequest(problem) : undefined);
};
