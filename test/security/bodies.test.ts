/**
 * Bad bodies (issue 10, item 2), on every route the app serves (read from
 * its router stack; a route without a case here fails): oversized bodies get
 * 413, malformed ones 400, type-confused ones 400 naming the field, and
 * after each the canonical tables and Temporal's workflow list are what they
 * were. Then a property-based fuzzer (fast-check) sends random and
 * adversarial JSON, form fields, queries and route ids to every route and
 * checks that no answer is a 5xx and that no refused request changed
 * anything.
 */
import fc from 'fast-check';
import type { ServedApi, TestEngine } from '../helpers/engine';
import {
  encodePart,
  fillPath,
  inboxSession,
  raw,
  routeName,
  snapshot,
  startStillEngine,
  tableSnapshot,
  until,
  workflowList,
  type AppRoute,
} from './support';

let engine: TestEngine;
let api: ServedApi;
let routes: AppRoute[];
let goalId: string;
let approvalId: string;

beforeAll(async () => {
  // No worker from here on: nothing changes the tables except the requests under test.
  let approval: { approvalId: string };
  ({ engine, api, routes, goalId, approval } = await startStillEngine('bodies', { bodyLimit: '64kb' }));
  ({ approvalId } = approval);
});
afterAll(async () => {
  await api?.close();
  await engine?.close();
});

const auth = () => ({ authorization: `Bearer ${engine.apiKey}` });
const JSON_TYPE = { 'content-type': 'application/json' };

/**
 * For each route that reads a body or a query: a valid one (never sent as is
 * by these tests) whose fields the type-confusion test swaps for other
 * types. Routes that read neither are listed with `{}`.
 */
const shapes = (): Record<string, { body?: Record<string, unknown>; query?: Record<string, string> }> => ({
  'POST /v1/goals': {
    body: { title: 'T', description: 'd', kind: 'note', input: { a: 1 }, budgetUsd: 1, requestId: 'r' },
  },
  'GET /v1/goals': { query: { status: 'running', limit: '5' } },
  'GET /v1/goals/:goalId': {},
  'POST /v1/goals/:goalId/cancel': { body: { reason: 'r' } },
  'GET /v1/goals/:goalId/events': {},
  'GET /v1/goals/:goalId/explain': {},
  'GET /v1/goals/:goalId/plans': {},
  'GET /v1/approvals': { query: { status: 'pending', goalId: 'g', limit: '5', groupBy: 'kind' } },
  'POST /v1/approvals/:approvalId/decision': {
    body: { decision: 'approve', edits: { body: 'x' }, comment: 'c', shownHash: 'a'.repeat(64) },
  },
  'POST /v1/approvals/decisions': { body: { decisions: [{ approvalId: 'a', decision: 'approve' }] } },
  'POST /v1/events': { body: { source: 's', type: 't', externalId: 'e', payload: { a: 1 } } },
  'POST /v1/memory': {
    body: {
      text: 't',
      kind: 'semantic',
      subject: 'contact:a@b.example',
      attribute: 'role',
      importance: 0.5,
      occurredAt: '2025-01-01T00:00:00Z',
      validUntil: '2026-01-01T00:00:00Z',
    },
  },
  'GET /v1/memory/search': {
    query: { q: 'x', k: '3', subject: 's', kind: 'semantic', from: '2025-01-01T00:00:00Z', tier: 'hot' },
  },
  'GET /v1/memory/subjects/:subject': {},
  'POST /v1/triggers': {
    body: { name: 'n', eventType: 'email.received', source: 'gmail', match: {}, goal: { title: 'Answer' } },
  },
  'GET /v1/triggers': {},
  'DELETE /v1/triggers/:id': {},
  'GET /v1/trust-rules': { query: { status: 'suggested' } },
  'POST /v1/trust-rules/:ruleId/accept': {},
  'POST /v1/trust-rules/:ruleId/dismiss': {},
  'POST /v1/trust-rules/:ruleId/revoke': {},
  'GET /v1/metrics': {},
  'GET /metrics': {},
  'GET /healthz': {},
  'GET /inbox': { query: { notice: 'approved', n: '2' } },
  'GET /inbox/login': {},
  'POST /inbox/login': { body: { apiKey: 'k' } },
  'POST /inbox/logout': {},
  'GET /inbox/pending.json': {},
  'GET /inbox/cards': {},
  'GET /inbox/goals/:goalId': {},
  'POST /inbox/approvals/:approvalId/decision': {
    body: { action: 'approve', submission: 'submission-1', shownHash: 'a'.repeat(64), reason: 'r' },
  },
  'POST /inbox/trust/:ruleId': { body: { action: 'accept' } },
  'POST /inbox/groups/decision': { body: { submission: 'submission-1', ids: 'a' } },
  'POST /slack/interactions': {},
  // The codec endpoint (payload encryption; off in this engine, so an authenticated request is a 404 naming
  // KEEL_CODEC_KEY, never a 5xx).
  'GET /codec/ui-endpoint': {},
  'POST /codec/encode': { body: { payloads: [] } },
  'POST /codec/decode': { body: { payloads: [] } },
  'POST /codec/ui/:token/encode': { body: { payloads: [] } },
  'POST /codec/ui/:token/decode': { body: { payloads: [] } },
});

const v1 = () => routes.filter((r) => r.path.startsWith('/v1/'));
const withBody = () => v1().filter((r) => r.method !== 'GET');
const realParams = () => ({
  goalId,
  approvalId,
  ruleId: 'no-such-rule',
  id: 'no-such-trigger',
  subject: 'contact:a@b.example',
  token: 'not-the-codec-token',
});

/** Expects a refusal with `status` and the API's error shape, and nothing else changed. */
function refused(res: { status: number; body: any }, status: number, route: string, what: string) {
  expect({ route, what, status: res.status, shape: typeof res.body?.error?.message }).toEqual({
    route,
    what,
    status,
    shape: 'string',
  });
}

test('every route the app serves has a case here', () => {
  const known = shapes();
  expect(routes.length).toBeGreaterThan(25);
  expect(routes.map(routeName).filter((n) => !(n in known))).toEqual([]);
});

test('an oversized body is a 413 on every route that takes one, and nothing changes', async () => {
  const before = await snapshot(engine.db.prisma, engine.temporal.client);
  const big = JSON.stringify({ title: 'x', text: 'x', padding: 'x'.repeat(100 * 1024) });
  for (const r of withBody()) {
    const res = await raw(api.url, r.method, fillPath(r.path, realParams()), {
      headers: { ...auth(), ...JSON_TYPE },
      body: big,
    });
    refused(res, 413, routeName(r), 'oversized');
    expect(res.body.error).toMatchObject({ code: 'payload_too_large', message: expect.stringMatching(/larger than/) });
  }
  // The inbox's forms have the same limit.
  const { cookie, csrf } = inboxSession(engine.apiKey);
  const form = await raw(api.url, 'POST', `/inbox/approvals/${approvalId}/decision`, {
    headers: { cookie, 'content-type': 'application/x-www-form-urlencoded' },
    body: `csrf=${csrf}&action=reject&reason=${'x'.repeat(100 * 1024)}`,
  });
  expect(form.status).toBe(413);
  expect(await snapshot(engine.db.prisma, engine.temporal.client)).toEqual(before);
});

test('a malformed body is a 400 saying the JSON is not valid, on every route that takes one, and nothing changes', async () => {
  const before = await snapshot(engine.db.prisma, engine.temporal.client);
  const bodies: [string, string | Buffer][] = [
    ['cut short', '{"title": "half'],
    ['unquoted keys', '{title: 1}'],
    ['single quotes', "{'title': 'x'}"],
    ['a trailing comma', '{"title": "x",}'],
    ['not JSON at all', 'title=x'],
    ['a bare string', '"just a string"'],
    ['a bare number', '42'],
    ['null', 'null'],
    ['invalid UTF-8', Buffer.from([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x3a, 0x31, 0x7d])],
    ['NaN', '{"title": NaN}'],
  ];
  for (const r of withBody()) {
    for (const [what, body] of bodies) {
      const res = await raw(api.url, r.method, fillPath(r.path, realParams()), {
        headers: { ...auth(), ...JSON_TYPE },
        body,
      });
      refused(res, 400, routeName(r), what);
      expect(res.body.error.code).toBe('bad_request');
    }
  }
  expect(await snapshot(engine.db.prisma, engine.temporal.client)).toEqual(before);
});

/** Values of other JSON types than `v`'s. */
function otherTypes(v: unknown): unknown[] {
  const all: unknown[] = ['text', 7, -1.5, true, null, [], ['a'], {}, { a: 'b' }];
  const kind = (x: unknown) => (x === null ? 'null' : Array.isArray(x) ? 'array' : typeof x);
  return all.filter((x) => kind(x) !== kind(v));
}

test('a type-confused field is a 400 naming that field, on every route with a body, and nothing changes', async () => {
  const before = await snapshot(engine.db.prisma, engine.temporal.client);
  let cases = 0;
  for (const r of withBody()) {
    const shape = shapes()[routeName(r)].body;
    if (!shape) continue;
    for (const [field, valid] of Object.entries(shape)) {
      for (const wrong of otherTypes(valid)) {
        const body = JSON.stringify({ ...shape, [field]: wrong });
        const res = await raw(api.url, r.method, fillPath(r.path, realParams()), {
          headers: { ...auth(), ...JSON_TYPE },
          body,
        });
        refused(res, 400, routeName(r), `${field}: ${JSON.stringify(wrong)}`);
        expect([routeName(r), field, res.body.error.message]).toEqual([
          routeName(r),
          field,
          expect.stringContaining(field),
        ]);
        cases++;
      }
    }
    // A top-level array or an unknown field is refused too.
    refused(
      await raw(api.url, r.method, fillPath(r.path, realParams()), {
        headers: { ...auth(), ...JSON_TYPE },
        body: JSON.stringify([shape]),
      }),
      400,
      routeName(r),
      'an array',
    );
    refused(
      await raw(api.url, r.method, fillPath(r.path, realParams()), {
        headers: { ...auth(), ...JSON_TYPE },
        body: JSON.stringify({ ...shape, surprise: 1 }),
      }),
      400,
      routeName(r),
      'an unknown field',
    );
  }
  expect(cases).toBeGreaterThan(100);
  expect(await snapshot(engine.db.prisma, engine.temporal.client)).toEqual(before);
  expect(await engine.db.prisma.approval.findUniqueOrThrow({ where: { id: approvalId } })).toMatchObject({
    status: 'pending',
  });
});

test('a type-confused query is a 400 naming the parameter, and nothing changes', async () => {
  const before = await snapshot(engine.db.prisma, engine.temporal.client);
  const cases: [string, string][] = [
    ['/v1/goals?limit=abc', 'limit'],
    ['/v1/goals?limit=-1', 'limit'],
    ['/v1/goals?limit=1e999', 'limit'],
    ['/v1/goals?limit=2.5', 'limit'],
    ['/v1/goals?status=nope', 'status'],
    ['/v1/goals?status=running&status=failed', 'status'],
    ['/v1/approvals?limit=0', 'limit'],
    ['/v1/approvals?groupBy=tool', 'groupBy'],
    ['/v1/approvals?goalId=a&goalId=b', 'goalId'],
    ['/v1/memory/search?q=x&k=1000', 'k'],
    ['/v1/memory/search?q=x&from=yesterday', 'from'],
    ['/v1/memory/search?q=x&kind=semantic,nope', 'kind'],
    ['/v1/memory/search?q=x&includeSuperseded=yes', 'includeSuperseded'],
    ['/v1/memory/search?q=', 'q'],
    ['/v1/memory/search?q=a&q=b', 'q'],
    ['/v1/trust-rules?status=all', 'status'],
  ];
  for (const [path, field] of cases) {
    const res = await raw(api.url, 'GET', path, { headers: auth() });
    refused(res, 400, path, field);
    expect([path, res.body.error.message]).toEqual([path, expect.stringContaining(field)]);
  }
  expect(await snapshot(engine.db.prisma, engine.temporal.client)).toEqual(before);
});

test('names of Object.prototype in any query parameter or form field are plain text: never a 5xx, nothing changes', async () => {
  // `?notice=__proto__` on /inbox was a 500 (a lookup in a plain object found Object.prototype).
  const before = await snapshot(engine.db.prisma, engine.temporal.client);
  const session = inboxSession(engine.apiKey);
  const names = ['__proto__', 'constructor', 'prototype', 'valueOf', 'toString', 'hasOwnProperty', '__defineGetter__'];
  for (const r of routes.filter((x) => x.method === 'GET')) {
    const params = [...Object.keys(shapes()[routeName(r)].query ?? {}), 'q', 'status'];
    for (const param of params) {
      for (const value of names) {
        const path = `${fillPath(r.path, { goalId }, value)}?${param}=${value}&${value}=${value}`;
        const res = await raw(api.url, 'GET', path, { headers: { ...auth(), cookie: session.cookie } });
        expect([path, res.status < 500]).toEqual([path, true]);
        if (r.path === '/inbox' && param === 'notice') {
          // No notice is shown for a name that is not one of the page's own.
          expect([value, res.text.includes('class="notice"')]).toEqual([value, false]);
        }
      }
    }
  }
  for (const r of routes.filter(
    (x) => x.method === 'POST' && x.path.startsWith('/inbox/') && x.path !== '/inbox/logout',
  )) {
    for (const value of names) {
      const fields = new URLSearchParams({
        csrf: session.csrf,
        action: value,
        submission: value,
        ids: value,
        [value]: value,
      });
      const res = await raw(api.url, 'POST', fillPath(r.path, {}, value), {
        headers: { cookie: session.cookie, 'content-type': 'application/x-www-form-urlencoded' },
        body: fields.toString(),
      });
      expect([routeName(r), value, res.status < 500]).toEqual([routeName(r), value, true]);
    }
  }
  expect(await snapshot(engine.db.prisma, engine.temporal.client)).toEqual(before);
});

// ---- The fuzzer ----

/** Strings that have broken parsers, templates, SQL and HTML before. */
const NASTY = [
  "'; DROP TABLE goals; --",
  '" OR 1=1 --',
  '<script>alert(1)</script>',
  '{{payload.from}}',
  '{{constructor.constructor("return process")()}}',
  '${process.env.KEEL_API_KEY}',
  '__proto__',
  'constructor',
  'prototype',
  '../../etc/passwd',
  '%00',
  '\u202e\u0000',
  '\ud800',
  '\ud83d\ude00',
  'ﾠ',
  '9'.repeat(400),
  '-0',
  '1e309',
  'NaN',
  'true',
  'null',
  '',
  ' ',
  'x'.repeat(5000),
  '2025-02-30T00:00:00Z',
  '0000-01-01T00:00:00Z',
  '275760-09-13T00:00:00.000Z',
  '+275760-09-13T00:00:00.000Z',
  '2025-01-01T00:00:00+99:99',
  'contact:',
  'approve',
  'reject',
  'pending',
  'a'.repeat(64),
];

const nastyString = fc.oneof(
  fc.constantFrom(...NASTY),
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.string({ maxLength: 20 }),
);
const numbers = fc.oneof(fc.double(), fc.integer(), fc.constantFrom(0, -0, 1e308, -1e308, 5e-324, 2 ** 53 + 1, 10_001));
const leaf = fc.oneof(nastyString, numbers, fc.boolean(), fc.constant(null));
const json = fc.letrec((tie) => ({
  value: fc.oneof({ depthSize: 'small', withCrossShrink: true }, leaf, tie('array'), tie('object')),
  array: fc.array(tie('value'), { maxLength: 4 }),
  object: fc.dictionary(fc.oneof(nastyString, fc.constantFrom('__proto__', 'constructor', 'title')), tie('value'), {
    maxKeys: 4,
  }),
})).value;

/** A body shaped like the route's own (its field names, any values), or any JSON, or not JSON at all. */
function bodyArb(shape: Record<string, unknown> | undefined): fc.Arbitrary<string> {
  const shaped = shape
    ? fc
        .record(
          Object.fromEntries(
            Object.entries(shape).map(([k, v]) => [k, fc.oneof(fc.constant(v), json, nastyString, numbers)]),
          ),
          { requiredKeys: [] },
        )
        .map((o) => JSON.stringify(o))
    : fc.constant('{}');
  return fc.oneof(
    { weight: 3, arbitrary: shaped },
    { weight: 2, arbitrary: json.map((v) => JSON.stringify(v) ?? 'null') },
    { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 60 }) },
  );
}

/** A query from the route's own parameter names (and others), with any values. */
function queryArb(shape: Record<string, string> | undefined): fc.Arbitrary<string> {
  const names = [...Object.keys(shape ?? {}), 'limit', 'status', 'q', '__proto__'];
  return fc
    .array(fc.tuple(fc.oneof(fc.constantFrom(...names), nastyString), fc.oneof(nastyString, numbers.map(String))), {
      maxLength: 4,
    })
    .map((pairs) => pairs.map(([k, v]) => `${encodePart(k)}=${encodePart(v)}`).join('&'));
}

/** A route id: not one that exists (so a valid body is a 404, never a real decision), or a hostile one. */
const idArb = fc.oneof(
  fc.uuid(),
  nastyString.filter((s) => s !== '' && s !== '.' && s !== '..'),
  fc.constantFrom('no-such-id', '%2e%2e', '..%2F..%2Fhealthz'),
);

/** Headers the API reads (and a Content-Type that may lie), with values a header can carry. */
const headerText = nastyString.filter((v) => /^[\x20-\x7e]*$/.test(v));
const headersArb = fc.record(
  {
    'idempotency-key': fc.oneof(headerText, fc.constant('k'.repeat(300))),
    'x-keel-channel': fc.oneof(headerText, fc.constantFrom('api', 'cli', 'slack', 'inbox', 'policy')),
    'content-type': fc.constantFrom(
      'application/json',
      'application/json; charset=utf-8',
      'application/json; charset=latin1',
      'application/json; charset=utf-16',
      'text/plain',
      'application/x-www-form-urlencoded',
      'application/merge-patch+json',
    ),
  },
  { requiredKeys: [] },
);

type Sent = { route: string; status: number; path: string; body?: string };

/** Fuzzes one route; every answer must be below 500, and a refused request must leave the tables as they were. */
async function fuzz(r: AppRoute, numRuns: number, log: Sent[]) {
  const shape = shapes()[routeName(r)];
  const session = inboxSession(engine.apiKey);
  const isInbox = r.path.startsWith('/inbox');
  const isGet = r.method === 'GET';
  await fc.assert(
    fc.asyncProperty(
      fc.array(idArb, { minLength: 3, maxLength: 3 }),
      queryArb(shape.query),
      bodyArb(shape.body),
      headersArb,
      async (ids, query, body, extraHeaders) => {
        // GET routes may read the real goal: reading changes nothing. Writes only ever name ids that do not exist.
        const params: Record<string, string> = isGet
          ? { goalId, approvalId: ids[1], ruleId: ids[2], id: ids[2], subject: ids[0] }
          : {};
        const path = fillPath(r.path, params, ids[0]) + (query ? `?${query}` : '');
        const before = await tableSnapshot(engine.db.prisma);
        let headers: Record<string, string>;
        let sent: string | undefined;
        if (isInbox) {
          headers = { cookie: session.cookie };
          if (!isGet) {
            // Form fields named like the route's own, with the session's real CSRF token: past the guard, into the handler.
            const parsed = (() => {
              try {
                return JSON.parse(body) as unknown;
              } catch {
                return body;
              }
            })();
            const fields = new URLSearchParams({ csrf: session.csrf });
            if (parsed && typeof parsed === 'object' && !Array.isArray(parsed)) {
              for (const [k, v] of Object.entries(parsed))
                fields.append(k, typeof v === 'string' ? v : JSON.stringify(v));
            } else fields.append('ids', String(parsed));
            sent = fields.toString();
            headers['content-type'] = 'application/x-www-form-urlencoded';
          }
        } else {
          headers = { ...auth(), ...(isGet ? {} : JSON_TYPE), ...extraHeaders };
          sent = isGet ? undefined : body;
        }
        if (r.path === '/inbox/login') sent = sent?.replace(/(^|&)apiKey=[^&]*/g, '');
        const res = await raw(api.url, r.method, path, { headers, body: sent });
        log.push({ route: routeName(r), status: res.status, path, body: sent?.slice(0, 300) });
        if (res.status >= 500) throw new Error(`${routeName(r)} answered ${res.status}: ${res.text.slice(0, 500)}`);
        if (res.status >= 400 || isGet) {
          const after = await tableSnapshot(engine.db.prisma);
          if (JSON.stringify(after) !== JSON.stringify(before))
            throw new Error(`${routeName(r)} answered ${res.status} and changed the tables`);
        }
      },
    ),
    { numRuns, seed: Number(process.env.KEEL_FUZZ_SEED ?? 20261202), endOnFailure: true },
  );
}

test('the fuzzer: random and adversarial input to every route never gets a 5xx, and a refusal changes nothing', async () => {
  const runs = Number(process.env.KEEL_FUZZ_RUNS ?? 40);
  const log: Sent[] = [];
  const targets = routes.filter((r) => r.path !== '/slack/interactions' && r.path !== '/inbox/logout');
  for (const r of targets) await fuzz(r, runs, log);
  const statuses = new Map<string, number>();
  for (const s of log) statuses.set(String(s.status), (statuses.get(String(s.status)) ?? 0) + 1);
  console.log(
    `[security] fuzzer: ${log.length} requests over ${targets.length} routes; answers by status: ${[...statuses]
      .sort()
      .map(([k, v]) => `${k}×${v}`)
      .join(', ')}`,
  );
  expect(log.length).toBe(targets.length * runs);
  expect(log.some((s) => s.status >= 500)).toBe(false);
  // Goals a fuzzed request did create each have their workflow, and no workflow exists without its goal.
  const goals = (await engine.db.prisma.goal.findMany({ select: { id: true } })).map((g) => `goal-${g.id}`);
  const workflows = await until('the workflow list to catch up', async () => {
    const list = (await workflowList(engine.temporal.client)).map((w) => w.split(' ')[0]);
    return list.length === goals.length ? list : undefined;
  });
  expect(workflows.sort()).toEqual(goals.sort());
});
