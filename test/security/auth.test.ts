/**
 * Who may call what (issue 10, item 2): every route the app serves, read
 * from its own router stack, is classified by what guards it, and a route
 * without a case fails the suite. Every /v1 route and /metrics refuse a
 * missing or wrong key with 401; every inbox page and action refuses a
 * missing, forged, foreign or expired session; every inbox POST refuses a
 * missing, wrong or foreign CSRF token and a cross-site origin. After every
 * refusal the canonical tables and Temporal's workflow list are unchanged.
 */
import { randomBytes } from 'node:crypto';
import { LogLevel } from '@slack/bolt';
import { createSlackWebClient } from '../../slack/client';
import { SESSION_COOKIE, sessionKeys } from '../../inbox/session';
import type { ServedApi, TestEngine } from '../helpers/engine';
import { fillPath, inboxSession, raw, routeName, snapshot, startStillEngine, type AppRoute } from './support';

let engine: TestEngine;
let api: ServedApi;
let routes: AppRoute[];
let goalId: string;
let approvalId: string;
let shownHash: string;

beforeAll(async () => {
  const web = createSlackWebClient({ token: 'xoxb-unused', apiUrl: 'http://127.0.0.1:9/', timeoutMs: 500 });
  // Nothing moves by itself from here on: every change to the tables would be a request's.
  let approval: { approvalId: string; shownHash: string };
  ({ engine, api, routes, goalId, approval } = await startStillEngine('auth', {
    slack: { signingSecret: 'auth-test-signing-secret', approvers: ['U0APPROVER'], web, logLevel: LogLevel.ERROR },
  }));
  ({ approvalId, shownHash } = approval);
});
afterAll(async () => {
  await api?.close();
  await engine?.close();
});

const uniq = () => randomBytes(4).toString('hex');

/** What guards a route. A route this does not classify fails the first test. */
type Guard = 'key' | 'public' | 'slack' | 'inbox-page' | 'inbox-data' | 'inbox-post';
function guardOf(r: AppRoute): Guard | undefined {
  // The codec endpoint: the bearer key, or (for a Web UI that cannot send it) a token derived from it in the path.
  if (r.path.startsWith('/v1/') || r.path === '/metrics' || r.path.startsWith('/codec/')) return 'key';
  if (r.path === '/healthz' || r.path === '/inbox/login') return 'public';
  if (r.path === '/slack/interactions' && r.method === 'POST') return 'slack';
  if (r.path.startsWith('/inbox') && r.method === 'POST') return 'inbox-post';
  if (r.path === '/inbox/pending.json' || r.path === '/inbox/cards') return 'inbox-data';
  if ((r.path === '/inbox' || r.path.startsWith('/inbox/')) && r.method === 'GET') return 'inbox-page';
  return undefined;
}

const params = () => ({
  goalId,
  approvalId,
  ruleId: 'no-such-rule',
  id: 'no-such-trigger',
  subject: 'contact:a@b.example',
  token: 'not-the-codec-token',
});
const pathOf = (r: AppRoute) => fillPath(r.path, params());
const keyRoutes = () => routes.filter((r) => guardOf(r) === 'key');

test('the app serves the routes this suite knows how to guard, and every one has a case', () => {
  const names = routes.map(routeName);
  // The walk found the app's routes (a broken walk would find none and pass vacuously).
  expect(names).toEqual(
    expect.arrayContaining([
      'POST /v1/goals',
      'GET /v1/goals/:goalId',
      'POST /v1/approvals/:approvalId/decision',
      'POST /v1/approvals/decisions',
      'POST /v1/events',
      'POST /v1/memory',
      'DELETE /v1/triggers/:id',
      'GET /metrics',
      'GET /healthz',
      'GET /inbox',
      'POST /inbox/login',
      'POST /inbox/approvals/:approvalId/decision',
      'POST /slack/interactions',
    ]),
  );
  expect(names.length).toBeGreaterThan(25);
  expect(routes.filter((r) => !guardOf(r)).map(routeName)).toEqual([]);
});

describe('the API key', () => {
  const wrongs = (key: string): [string, Record<string, string>][] => [
    ['no Authorization header', {}],
    ['an empty bearer', { authorization: 'Bearer ' }],
    ['a wrong key', { authorization: `Bearer ${randomBytes(16).toString('hex')}` }],
    [
      'the key with a character changed',
      { authorization: `Bearer ${key.slice(0, -1)}${key.endsWith('0') ? '1' : '0'}` },
    ],
    ['the key and more', { authorization: `Bearer ${key}x` }],
    ['a prefix of the key', { authorization: `Bearer ${key.slice(0, 8)}` }],
    ['the key as Basic credentials', { authorization: `Basic ${Buffer.from(`keel:${key}`).toString('base64')}` }],
    ['the key without the scheme', { authorization: key }],
    ['the key in another header', { 'x-api-key': key }],
    ['the inbox session cookie instead of the key', { cookie: inboxSession(key).cookie }],
  ];

  test('every /v1 route, /metrics and the codec endpoint refuse a missing or wrong key with 401, and nothing changes', async () => {
    const before = await snapshot(engine.db.prisma, engine.temporal.client);
    let refused = 0;
    for (const r of keyRoutes()) {
      for (const [why, headers] of wrongs(engine.apiKey)) {
        const body =
          r.method === 'GET' || r.method === 'HEAD' ? undefined : JSON.stringify({ title: 'x', decision: 'approve' });
        const res = await raw(api.url, r.method, pathOf(r), {
          headers: { ...(body ? { 'content-type': 'application/json' } : {}), ...headers },
          body,
        });
        expect({ route: routeName(r), why, status: res.status, code: res.body?.error?.code }).toEqual({
          route: routeName(r),
          why,
          status: 401,
          code: 'unauthorized',
        });
        refused++;
      }
      // The key in the query string is not a key either.
      const q = await raw(api.url, r.method, `${pathOf(r)}?apiKey=${engine.apiKey}&key=${engine.apiKey}`);
      expect([routeName(r), q.status]).toEqual([routeName(r), 401]);
    }
    expect(refused).toBeGreaterThan(200);
    expect(await snapshot(engine.db.prisma, engine.temporal.client)).toEqual(before);
  });

  test('with the key, each of those routes answers something other than 401 (the refusals were about the key)', async () => {
    for (const r of keyRoutes().filter((x) => x.method === 'GET')) {
      const res = await raw(api.url, 'GET', `${pathOf(r)}${r.path.endsWith('search') ? '?q=hello' : ''}`, {
        headers: { authorization: `Bearer ${engine.apiKey}` },
      });
      // The codec endpoint is off in this engine (no KEEL_CODEC_KEY): past the key it says so with a 404.
      const expected = r.path.startsWith('/codec/') ? 404 : 200;
      expect([routeName(r), res.status]).toEqual([routeName(r), expected]);
    }
  });
});

describe('the inbox session', () => {
  const other = () => sessionKeys('a-different-api-key').issue().token;
  const expired = () => sessionKeys(engine.apiKey, 1000).issue(Date.now() - 60_000).token;
  const tampered = () => {
    // A valid token with its expiry pushed out: the signature no longer matches.
    const token = sessionKeys(engine.apiKey, 1000).issue().token;
    return token.replace(/\.(\d+)\./, (_m, exp: string) => `.${Number(exp) + 86_400_000}.`);
  };
  const cookies = (): [string, Record<string, string>][] => [
    ['no cookie', {}],
    ['a garbage cookie', { cookie: `${SESSION_COOKIE}=garbage` }],
    ['a session signed with another key', { cookie: `${SESSION_COOKIE}=${other()}` }],
    ['an expired session', { cookie: `${SESSION_COOKIE}=${expired()}` }],
    ['a session with its expiry changed', { cookie: `${SESSION_COOKIE}=${tampered()}` }],
    ['the API key as the cookie', { cookie: `${SESSION_COOKIE}=${engine.apiKey}` }],
    ['the API key as a bearer', { authorization: `Bearer ${engine.apiKey}` }],
  ];

  test('every inbox page, data endpoint and action refuses a missing or bad session, and nothing changes', async () => {
    const before = await snapshot(engine.db.prisma, engine.temporal.client);
    const inbox = routes.filter((r) => guardOf(r)?.startsWith('inbox-'));
    expect(inbox.length).toBeGreaterThanOrEqual(7);
    for (const r of inbox) {
      for (const [why, headers] of cookies()) {
        const body =
          r.method === 'POST'
            ? new URLSearchParams({
                action: 'approve',
                submission: `forged-${uniq()}`,
                shownHash,
                csrf: 'anything',
                ids: approvalId,
              }).toString()
            : undefined;
        const res = await raw(api.url, r.method, pathOf(r), {
          headers: { ...(body ? { 'content-type': 'application/x-www-form-urlencoded' } : {}), ...headers },
          body,
        });
        const expected =
          guardOf(r) === 'inbox-page' ? { status: 303, location: '/inbox/login' } : { status: 401, location: null };
        expect({ route: routeName(r), why, status: res.status, location: res.headers.get('location') }).toEqual({
          route: routeName(r),
          why,
          ...expected,
        });
      }
    }
    expect(await snapshot(engine.db.prisma, engine.temporal.client)).toEqual(before);
  });

  test('signing in needs the API key itself', async () => {
    const before = await snapshot(engine.db.prisma, engine.temporal.client);
    for (const apiKey of ['', 'wrong', engine.apiKey.slice(1), `${engine.apiKey} `, engine.apiKey.toUpperCase()]) {
      const res = await raw(api.url, 'POST', '/inbox/login', {
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ apiKey }).toString(),
      });
      expect([apiKey, res.status, res.headers.get('set-cookie')]).toEqual([apiKey, 401, null]);
    }
    // The key twice (an array) is not the key.
    const twice = await raw(api.url, 'POST', '/inbox/login', {
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: `apiKey=${engine.apiKey}&apiKey=${engine.apiKey}`,
    });
    expect(twice.status).toBe(401);
    const ok = await raw(api.url, 'POST', '/inbox/login', {
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ apiKey: engine.apiKey }).toString(),
    });
    expect(ok.status).toBe(303);
    expect(ok.headers.get('set-cookie')).toMatch(/^keel_inbox=v1\..*; Path=\/inbox; HttpOnly; SameSite=Strict/);
    expect(await snapshot(engine.db.prisma, engine.temporal.client)).toEqual(before);
  });
});

describe('cross-site requests to the inbox (CSRF)', () => {
  const form = (fields: Record<string, string>) => new URLSearchParams(fields).toString();

  test('every inbox action refuses a signed-in request without this session’s CSRF token, and nothing changes', async () => {
    const mine = inboxSession(engine.apiKey);
    const theirs = inboxSession(engine.apiKey);
    const before = await snapshot(engine.db.prisma, engine.temporal.client);
    const actions = routes.filter((r) => guardOf(r) === 'inbox-post');
    for (const r of actions) {
      for (const [why, csrf] of [
        ['no token', undefined],
        ['an empty token', ''],
        ['a guessed token', 'guessed'],
        ['another session’s token', theirs.csrf],
        ['the session cookie as the token', mine.cookie.split('=')[1]],
      ] as const) {
        const fields: Record<string, string> = {
          action: 'approve',
          submission: `forged-${uniq()}`,
          shownHash,
          ids: approvalId,
          ...(csrf !== undefined ? { csrf } : {}),
        };
        const res = await raw(api.url, 'POST', pathOf(r), {
          headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: mine.cookie },
          body: form(fields),
        });
        expect({ route: routeName(r), why, status: res.status }).toEqual({ route: routeName(r), why, status: 403 });
      }
      // The token in the query string or a header, rather than the form, does not count.
      const res = await raw(api.url, 'POST', `${pathOf(r)}?csrf=${encodeURIComponent(mine.csrf)}`, {
        headers: {
          'content-type': 'application/x-www-form-urlencoded',
          cookie: mine.cookie,
          'x-csrf-token': mine.csrf,
        },
        body: form({ action: 'approve', submission: `forged-${uniq()}`, shownHash, ids: approvalId }),
      });
      expect([routeName(r), res.status]).toEqual([routeName(r), 403]);
    }
    expect(await snapshot(engine.db.prisma, engine.temporal.client)).toEqual(before);
    expect(await engine.db.prisma.approval.findUniqueOrThrow({ where: { id: approvalId } })).toMatchObject({
      status: 'pending',
    });
  });

  test('a request a browser marks as coming from another site is refused even with a valid token', async () => {
    const mine = inboxSession(engine.apiKey);
    const before = await snapshot(engine.db.prisma, engine.temporal.client);
    for (const headers of [
      { origin: 'https://evil.example' } as Record<string, string>,
      { 'sec-fetch-site': 'cross-site' },
      { 'sec-fetch-site': 'same-site', origin: 'null' },
    ]) {
      const res = await raw(api.url, 'POST', `/inbox/approvals/${approvalId}/decision`, {
        headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: mine.cookie, ...headers },
        body: form({ action: 'approve', submission: `cross-${uniq()}`, shownHash, csrf: mine.csrf }),
      });
      expect([headers, res.status]).toEqual([headers, 403]);
    }
    expect(await snapshot(engine.db.prisma, engine.temporal.client)).toEqual(before);
  });
});

test('the Slack endpoint refuses an unsigned request, and /healthz is the only route open to anyone', async () => {
  const res = await raw(api.url, 'POST', '/slack/interactions', {
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: 'payload=%7B%7D',
  });
  expect(res.status).toBe(401);
  const health = await raw(api.url, 'GET', '/healthz');
  expect(health.status).toBe(200);
  // It says what is up, and nothing about keys or configuration.
  expect(Object.keys(health.body).sort()).toEqual(['postgres', 'status', 'temporal']);
});
