/**
 * The approval inbox at /inbox: sign in with the API key (a session cookie,
 * ./session.ts), the pending approvals grouped by kind with their drafts
 * editable in place, decisions through commands/decisions.ts (channel
 * `inbox`, one idempotency key per form submission, the shownHash the page
 * showed), each goal's explanation and timeline in words, and a small JSON
 * endpoint the page polls for live updates. Every POST needs the session's
 * CSRF token (403 without it); the cookie is the only credential here.
 */
import { randomBytes } from 'node:crypto';
import express, { Router, type ErrorRequestHandler, type Request, type RequestHandler, type Response } from 'express';
import { z } from 'zod';
import { CommandError } from '../commands/errors';
import { databaseUnavailable } from '../db/unavailable';
import { decide, decideMany, type DecisionRequest } from '../commands/decisions';
import { HttpError, httpErrorOf } from '../api/errors';
import { findHostileInput } from '../api/hostile';
import { commandDeps, type AppDeps } from '../api/types';
import { approvalView } from '../api/views';
import { changeRule, listRules } from '../trust/store';
import { goalBody } from './goal';
import { groups, inboxPage, kindOf, loginPage, messagePage, page, type PendingApproval } from './html';
import {
  DEFAULT_SESSION_TTL_MS,
  SESSION_COOKIE,
  cookieValue,
  sameSecret,
  sessionCookie,
  sessionKeys,
  type Session,
} from './session';

export interface InboxOptions {
  /** How long a sign-in lasts (default 12 h). */
  sessionTtlMs?: number;
  /** How often the page asks whether the pending approvals changed (default 3 s). */
  pollMs?: number;
}

export const INBOX_ACTOR = 'inbox:operator';
const PENDING_LIMIT = 200;

const submission = z.string().trim().min(8).max(100);
const shownHash = z.string().regex(/^[0-9a-f]{64}$/, 'the page did not carry the version it showed; reload it');
const decisionForm = z.object({
  action: z.enum(['approve', 'approve_edits', 'reject']),
  submission,
  shownHash,
  reason: z.string().max(5_000).optional(),
});

type Locals = { session?: Session; nonce: string };

/**
 * Whether the browser marked a request as sent by another site: `Sec-Fetch-Site` other than
 * `same-origin` or `none` (typed or bookmarked), or an `Origin` whose host is not this request's
 * host. `Origin: null` says nothing (the pages' `Referrer-Policy: no-referrer` makes browsers send
 * it with the inbox's own forms); requests without either header (curl) are left to the token.
 */
export function crossSite(req: Request): boolean {
  const site = req.get('sec-fetch-site');
  if (site !== undefined && site !== 'same-origin' && site !== 'none') return true;
  const origin = req.get('origin');
  if (origin === undefined || origin === 'null') return false;
  try {
    return new URL(origin).host !== req.get('host');
  } catch {
    return true;
  }
}
const locals = (res: Response) => res.locals as Locals;

export function inboxRoutes(deps: AppDeps, opts: InboxOptions = {}): Router {
  const ttl = opts.sessionTtlMs ?? DEFAULT_SESSION_TTL_MS;
  const pollMs = opts.pollMs ?? 3000;
  const keys = sessionKeys(deps.apiKey, ttl);
  const commands = { ...commandDeps(deps), actor: INBOX_ACTOR };
  const r = Router();

  // Headers of every inbox answer: one nonce for the inline style and script, nothing else runs or loads.
  r.use((req, res, next) => {
    const nonce = randomBytes(16).toString('base64');
    locals(res).nonce = nonce;
    res.set({
      'Content-Security-Policy': `default-src 'none'; script-src 'nonce-${nonce}'; style-src 'nonce-${nonce}'; connect-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'`,
      'Cache-Control': 'no-store',
      'Referrer-Policy': 'no-referrer',
      'X-Content-Type-Options': 'nosniff',
    });
    locals(res).session = keys.verify(cookieValue(req.get('cookie'), SESSION_COOKIE));
    next();
  });
  r.use(express.urlencoded({ extended: false, limit: deps.bodyLimit ?? '1mb', parameterLimit: 2000 }));
  r.use((req, _res, next) => {
    const problem = findHostileInput(req.body, 'body') ?? findHostileInput(req.query, 'query');
    next(problem ? new HttpError(400, 'bad_request', problem) : undefined);
  });

  const html = (res: Response, status: number, body: string) => res.status(status).type('html').send(body);

  /** Pages without a session go to the sign-in form; data endpoints answer 401. */
  const signedIn =
    (kind: 'page' | 'data'): RequestHandler =>
    (_req, res, next) => {
      if (locals(res).session) return next();
      if (kind === 'page') return res.redirect(303, '/inbox/login');
      res.status(401).json({ error: { code: 'unauthorized', message: 'sign in at /inbox/login' } });
    };

  /**
   * Every state-changing request: a session, and that session's CSRF token in the form (403 otherwise).
   * A request the browser says came from another site (Origin, Sec-Fetch-Site) is refused even with a
   * token: the token is the defence, this is a second one that costs nothing.
   */
  const csrf: RequestHandler = (req, res, next) => {
    const session = locals(res).session;
    if (!session) return html(res, 401, messagePage(locals(res).nonce, 'Signed out', 'Sign in again to decide.'));
    if (crossSite(req) || !keys.checkCsrf(session, (req.body as Record<string, unknown> | undefined)?.csrf)) {
      return html(
        res,
        403,
        messagePage(
          locals(res).nonce,
          'Refused',
          'This form did not carry this session’s token (it is out of date, or it came from another site). Nothing was decided.',
        ),
      );
    }
    next();
  };

  const pending = async (): Promise<PendingApproval[]> =>
    (
      await deps.prisma.approval.findMany({
        where: { status: 'pending' },
        orderBy: { createdAt: 'asc' },
        take: PENDING_LIMIT,
      })
    ).map(approvalView);

  const tokenOf = (res: Response) => keys.csrfOf(locals(res).session!);

  /** GET /inbox/login — the sign-in form. */
  r.get('/login', (_req, res) => {
    if (locals(res).session) return res.redirect(303, '/inbox');
    html(res, 200, loginPage(locals(res).nonce));
  });

  /** POST /inbox/login — the API key, compared in constant time, becomes a session cookie. */
  r.post('/login', (req, res) => {
    if (crossSite(req)) return html(res, 403, loginPage(locals(res).nonce, 'Sign in from this page.'));
    const given = (req.body as { apiKey?: unknown } | undefined)?.apiKey;
    if (typeof given !== 'string' || !sameSecret(given, deps.apiKey)) {
      return html(res, 401, loginPage(locals(res).nonce, 'That is not the API key.'));
    }
    const { token } = keys.issue();
    res.set('Set-Cookie', sessionCookie(token, ttl, req.secure));
    res.redirect(303, '/inbox');
  });

  /** POST /inbox/logout — drops the cookie. */
  r.post('/logout', csrf, (req, res) => {
    res.set('Set-Cookie', sessionCookie('', 0, req.secure));
    res.redirect(303, '/inbox/login');
  });

  /** GET /inbox — the pending approvals, grouped by kind. */
  r.get('/', signedIn('page'), async (req, res, next) => {
    try {
      const notice = typeof req.query.notice === 'string' ? req.query.notice : undefined;
      const n = Number(req.query.n) || 0;
      html(
        res,
        200,
        inboxPage({
          nonce: locals(res).nonce,
          csrf: tokenOf(res),
          approvals: await pending(),
          suggested: await listRules(deps.prisma, 'suggested'),
          notice,
          n,
          pollMs,
        }),
      );
    } catch (err) {
      next(err);
    }
  });

  /** GET /inbox/pending.json — what is pending, by id and shown version: the page polls it. */
  r.get('/pending.json', signedIn('data'), async (_req, res, next) => {
    try {
      const items = await pending();
      res.json({
        pending: items.map((a) => ({ approvalId: a.approvalId, shownHash: a.shownHash ?? '', kind: kindOf(a) })),
      });
    } catch (err) {
      next(err);
    }
  });

  /** GET /inbox/cards — the groups alone, server-rendered, for the page to merge in. */
  r.get('/cards', signedIn('data'), async (_req, res, next) => {
    try {
      html(res, 200, groups(await pending(), tokenOf(res)));
    } catch (err) {
      next(err);
    }
  });

  /** GET /inbox/goals/:goalId — the goal's explanation and timeline in words. */
  r.get('/goals/:goalId', signedIn('page'), async (req, res, next) => {
    try {
      const goalId = String(req.params.goalId);
      const found = findHostileInput({ goalId }, 'params') ? undefined : await goalBody(deps.prisma, goalId);
      if (!found) return html(res, 404, messagePage(locals(res).nonce, 'No such goal', `There is no goal ${goalId}.`));
      html(res, 200, page({ title: found.title, nonce: locals(res).nonce, csrf: tokenOf(res), body: found.html }));
    } catch (err) {
      next(err);
    }
  });

  /** POST /inbox/approvals/:approvalId/decision — approve (as shown or with the edited fields) or reject with a reason. */
  r.post('/approvals/:approvalId/decision', csrf, async (req, res, next) => {
    try {
      const body = req.body as Record<string, unknown>;
      const form = decisionForm.safeParse(body);
      if (!form.success) throw new HttpError(400, 'bad_request', form.error.issues.map((i) => i.message).join('; '));
      const { action, reason } = form.data;
      if (action === 'reject' && !reason?.trim()) throw new HttpError(400, 'bad_request', 'say why you reject it');
      const edits: Record<string, string> = {};
      if (action === 'approve_edits') {
        for (const [k, v] of Object.entries(body)) {
          if (!k.startsWith('field.') || typeof v !== 'string') continue;
          const name = k.slice('field.'.length);
          // Browsers send textareas with CRLF line ends: compare and store what the operator typed, as LF.
          const typed = v.replace(/\r\n/g, '\n');
          if (typed !== String(body[`original.${name}`] ?? '').replace(/\r\n/g, '\n')) edits[name] = typed;
        }
      }
      const edited = Object.keys(edits).length > 0;
      await decide(commands, {
        approvalId: String(req.params.approvalId),
        decision: action === 'reject' ? 'reject' : 'approve',
        ...(edited ? { edits } : {}),
        ...(action === 'reject' ? { comment: reason!.trim() } : {}),
        actor: INBOX_ACTOR,
        channel: 'inbox',
        idempotencyKey: form.data.submission,
        shownHash: form.data.shownHash,
      });
      res.redirect(303, `/inbox?notice=${action === 'reject' ? 'rejected' : edited ? 'edited' : 'approved'}`);
    } catch (err) {
      next(err);
    }
  });

  /** POST /inbox/trust/:ruleId — accept or dismiss a suggested trust rule. */
  r.post('/trust/:ruleId', csrf, async (req, res, next) => {
    try {
      const action = (req.body as Record<string, unknown>).action;
      if (action !== 'accept' && action !== 'dismiss') throw new HttpError(400, 'bad_request', 'accept or dismiss');
      const changed = await changeRule(deps.prisma, String(req.params.ruleId), action, INBOX_ACTOR);
      if (!changed.ok) throw new HttpError(changed.reason === 'not_found' ? 404 : 409, changed.reason, changed.message);
      res.redirect(303, `/inbox?notice=${action === 'accept' ? 'accepted' : 'dismissed'}`);
    } catch (err) {
      next(err);
    }
  });

  /** POST /inbox/groups/decision — approve the selected approvals of one group, each as shown. */
  r.post('/groups/decision', csrf, async (req, res, next) => {
    try {
      const body = req.body as Record<string, unknown>;
      const key = submission.safeParse(body.submission);
      if (!key.success) throw new HttpError(400, 'bad_request', 'the form carried no submission id; reload the page');
      const ids = ([] as unknown[]).concat(body.ids ?? []).filter((x): x is string => typeof x === 'string');
      if (ids.length === 0) throw new HttpError(400, 'bad_request', 'select at least one approval of the group');
      const requests: DecisionRequest[] = ids.slice(0, PENDING_LIMIT).map((approvalId) => {
        const hash = body[`hash.${approvalId}`];
        return {
          approvalId,
          decision: 'approve',
          actor: INBOX_ACTOR,
          channel: 'inbox',
          idempotencyKey: `${key.data}:${approvalId}`,
          ...(typeof hash === 'string' && /^[0-9a-f]{64}$/.test(hash) ? { shownHash: hash } : {}),
        };
      });
      const outcomes = await decideMany(commands, requests);
      const problems = outcomes.flatMap((o) => (o.ok ? [] : [`${o.approvalId}: ${o.error.message}`]));
      if (problems.length === 0) return res.redirect(303, `/inbox?notice=batch&n=${outcomes.length}`);
      const done = outcomes.length - problems.length;
      html(
        res,
        409,
        inboxPage({
          nonce: locals(res).nonce,
          csrf: tokenOf(res),
          approvals: await pending(),
          problems: [...(done ? [`(${done} of ${outcomes.length} were approved.)`] : []), ...problems],
          pollMs,
        }),
      );
    } catch (err) {
      next(err);
    }
  });

  // Errors as a page a person reads, with the status the API would answer.
  const onError: ErrorRequestHandler = (err, _req, res, _next) => {
    const down = databaseUnavailable(err);
    const e =
      err instanceof CommandError
        ? httpErrorOf(err)
        : down
          ? new HttpError(
              503,
              'unavailable',
              `PostgreSQL is unavailable (${down}); nothing was decided. Try again shortly.`,
            )
          : err;
    const status =
      e instanceof HttpError ? e.status : typeof e?.status === 'number' && e.status < 500 ? (e.status as number) : 500;
    if (status === 500) console.error('[inbox] unhandled error', err);
    const message =
      status === 500 ? 'Something went wrong; nothing may have been decided. Reload and look.' : String(e.message);
    const session = locals(res).session;
    html(
      res,
      status,
      messagePage(
        locals(res).nonce,
        status === 409 ? 'Not decided' : 'Could not do that',
        message,
        session && keys.csrfOf(session),
      ),
    );
  };
  r.use(onError);
  return r;
}
