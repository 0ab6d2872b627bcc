/**
 * Hostile input over real HTTP (issue 7, D2, D3, D8): a NUL character or an
 * unpaired UTF-16 surrogate in any string of a body, a query or a route id,
 * and JSON nested far too deep, each answer 400 naming the field on every
 * route, never 500; a request without a valid key answers 401 before its body
 * is even read. After every refusal the database holds exactly what it held.
 */
import { randomBytes } from 'node:crypto';
import { startEngine, type TestEngine } from '../helpers/engine';

let engine: TestEngine;
/** A real pending approval, so decision routes are refused for their input and not for a missing row. */
let approvalId: string;
let goalId: string;

beforeAll(async () => {
  engine = await startEngine();
  await engine.startWorker();
  const { body } = await engine.http('POST', '/v1/goals', { title: `Email hostile-${uniq()}@example.com a hello` });
  goalId = body.goalId;
  const goal = await engine.waitForGoal(goalId, (g) => g.status === 'awaiting_approval');
  approvalId = goal.approvals[0].approvalId;
});
afterAll(async () => {
  await engine?.close();
});

const uniq = () => randomBytes(4).toString('hex');
const NUL = 'a\u0000b';
const LONE = 'x\ud800y'; // a high surrogate with no low one after it
const PAIR = 'ok \ud83d\ude00'; // a well-formed pair (an emoji): must be accepted

/** Rows any route could have written. */
async function counts() {
  const p = engine.db.prisma;
  const [goals, events, inbound, approvals, pending, memories, contacts] = await Promise.all([
    p.goal.count(),
    p.event.count(),
    p.inboundEvent.count(),
    p.approval.count(),
    p.approval.count({ where: { status: 'pending' } }),
    p.memoryItem.count(),
    p.contact.count(),
  ]);
  return { goals, events, inbound, approvals, pending, memories, contacts };
}

/** HTTP with exactly the headers given. */
async function raw(method: string, route: string, opts: { headers?: Record<string, string>; body?: string } = {}) {
  const res = await fetch(`${engine.apiUrl}${route}`, { method, headers: opts.headers, body: opts.body });
  const text = await res.text();
  let body: any;
  try {
    body = text ? JSON.parse(text) : undefined;
  } catch {
    body = text;
  }
  return { status: res.status, body };
}

function expect400(res: { status: number; body: any }, message: RegExp) {
  expect({ status: res.status, body: res.body }).toEqual({
    status: 400,
    body: { error: expect.objectContaining({ code: 'bad_request', message: expect.stringMatching(message) }) },
  });
}

/** `{"a":{"a":...1...}}` with `levels` objects, as JSON text (JSON.stringify of such a value would itself overflow). */
const nested = (levels: number) => `${'{"a":'.repeat(levels)}1${'}'.repeat(levels)}`;

describe('D2: NUL characters and unpaired surrogates', () => {
  // [method, route, body, the field the message must name]; each body is otherwise valid for its route.
  const bodyCases = (): [string, string, unknown, string][] => [
    ['POST', '/v1/goals', { title: `T ${NUL}` }, 'title'],
    ['POST', '/v1/goals', { title: 'Fine', description: LONE }, 'description'],
    ['POST', '/v1/goals', { title: 'Fine', requestId: NUL }, 'requestId'],
    ['POST', '/v1/goals', { title: 'Fine', kind: 'note', input: { note: NUL } }, 'input.note'],
    ['POST', '/v1/goals', { title: 'Fine', kind: 'note', input: { list: ['ok', LONE] } }, 'input.list.1'],
    ['POST', '/v1/goals', { title: 'Fine', kind: 'note', input: { [NUL]: 'key' } }, 'input'],
    ['POST', `/v1/goals/${'GOAL'}/cancel`, { reason: NUL }, 'reason'],
    ['POST', `/v1/approvals/${'APPROVAL'}/decision`, { decision: 'approve', comment: NUL }, 'comment'],
    ['POST', `/v1/approvals/${'APPROVAL'}/decision`, { decision: 'approve', edits: { body: LONE } }, 'edits.body'],
    ['POST', `/v1/approvals/${'APPROVAL'}/decision`, { decision: 'approve', edits: { subject: NUL } }, 'edits.subject'],
    [
      'POST',
      '/v1/approvals/decisions',
      { decisions: [{ approvalId: NUL, decision: 'approve' }] },
      'decisions.0.approvalId',
    ],
    [
      'POST',
      '/v1/approvals/decisions',
      { decisions: [{ approvalId: 'APPROVAL', decision: 'reject', comment: LONE }] },
      'decisions.0.comment',
    ],
    ['POST', '/v1/events', { source: NUL, type: 't', externalId: 'e1', payload: {} }, 'source'],
    ['POST', '/v1/events', { source: 's', type: LONE, externalId: 'e2', payload: {} }, 'type'],
    ['POST', '/v1/events', { source: 's', type: 't', externalId: NUL, payload: {} }, 'externalId'],
    [
      'POST',
      '/v1/events',
      { source: 's', type: 't', externalId: 'e3', payload: { from: 'ada@example.com', text: NUL } },
      'payload.text',
    ],
    [
      'POST',
      '/v1/events',
      { source: 's', type: 't', externalId: 'e4', payload: { deep: { er: [LONE] } } },
      'payload.deep.er.0',
    ],
    ['POST', '/v1/memory', { text: NUL }, 'text'],
    ['POST', '/v1/memory', { text: 'fine', subject: LONE }, 'subject'],
    ['POST', '/v1/memory', { text: 'fine', subject: 'contact:a@b.example', attribute: NUL }, 'attribute'],
  ];

  test('in any string field of any body: 400 naming the field, nothing written', async () => {
    const before = await counts();
    for (const [method, route, body, field] of bodyCases()) {
      const path = route.replace('GOAL', goalId).replace('APPROVAL', approvalId);
      const patched = JSON.parse(JSON.stringify(body).replace('"APPROVAL"', JSON.stringify(approvalId)));
      const res = await engine.http(method, path, patched);
      const problem = JSON.stringify(body).includes('\\u0000') ? 'NUL character' : 'unpaired UTF-16 surrogate';
      expect400(res, new RegExp(`^${field.replace(/\./g, '\\.')}: (a key )?contains an? ${problem}`));
    }
    expect(await counts()).toEqual(before);
  });

  test('in a query parameter: 400 naming the parameter, on every route that reads one', async () => {
    const before = await counts();
    for (const [route, field] of [
      ['/v1/goals?status=%00', 'status'],
      ['/v1/goals?limit=5%00', 'limit'],
      ['/v1/approvals?goalId=abc%00', 'goalId'],
      ['/v1/approvals?status=pending&goalId=%00', 'goalId'],
      ['/v1/memory/search?q=hello%00', 'q'],
      ['/v1/memory/search?q=hello&subject=%00', 'subject'],
      ['/v1/metrics?anything=%00', 'anything'], // even a parameter the route ignores
    ]) {
      expect400(await engine.http('GET', route), new RegExp(`^${field}: contains a NUL character`));
    }
    expect(await counts()).toEqual(before);
  });

  test('in a route id: 400 naming the parameter on every route with an id', async () => {
    const before = await counts();
    const cases: [string, string, unknown, string][] = [
      ['GET', '/v1/goals/%00', undefined, 'goalId'],
      ['GET', `/v1/goals/${goalId}%00/explain`, undefined, 'goalId'],
      ['GET', '/v1/goals/x%00y/events', undefined, 'goalId'],
      ['POST', '/v1/goals/%00/cancel', {}, 'goalId'],
      ['POST', `/v1/approvals/${approvalId}%00/decision`, { decision: 'approve' }, 'approvalId'],
      ['GET', '/v1/memory/subjects/contact%3Aa%00%40b.example', undefined, 'subject'],
    ];
    for (const [method, route, body, field] of cases) {
      expect400(await engine.http(method, route, body), new RegExp(`^${field}: contains a NUL character`));
    }
    // An escaped lone surrogate is not valid UTF-8, so it never becomes a string: still a 400, not a 500.
    expect(await engine.http('GET', '/v1/goals/%ED%A0%80')).toMatchObject({
      status: 400,
      body: { error: { code: 'bad_request' } },
    });
    expect(await counts()).toEqual(before);
    // The approval the refused decision named is still waiting.
    expect(await engine.db.prisma.approval.findUniqueOrThrow({ where: { id: approvalId } })).toMatchObject({
      status: 'pending',
    });
  });

  test('a well-formed surrogate pair (emoji) is not refused', async () => {
    const ext = `emoji-${uniq()}`;
    const res = await engine.http('POST', '/v1/events', {
      source: 'test',
      type: PAIR,
      externalId: ext,
      payload: { note: PAIR },
    });
    expect(res.status).toBe(201);
    const stored = await engine.db.prisma.inboundEvent.findFirstOrThrow({ where: { externalId: ext } });
    expect(stored.payload).toEqual({ note: PAIR });
    const memory = await engine.http('POST', '/v1/memory', {
      text: `Ada likes ${PAIR}`,
      subject: 'contact:emoji@x.example',
    });
    expect(memory.status).toBe(201);
  });
});

describe('D3: JSON nested too deep', () => {
  const json = { 'content-type': 'application/json' };

  test('10,000 levels in a goal input or an event payload: 400 naming the field, nothing written', async () => {
    const headers = { ...json, authorization: `Bearer ${engine.apiKey}` };
    const before = await counts();
    const cases: [string, string, RegExp][] = [
      [
        '/v1/goals',
        `{"title":"deep","kind":"note","input":${nested(10_000)}}`,
        /^input(\.a)*…?: nested deeper than 32 levels/,
      ],
      [
        '/v1/events',
        `{"source":"s","type":"t","externalId":"deep-${uniq()}","payload":${nested(10_000)}}`,
        /^payload(\.a)*…?: nested deeper than 32 levels/,
      ],
      ['/v1/memory', `{"text":"deep","extra":${nested(10_000)}}`, /^extra(\.a)*…?: nested deeper than 32 levels/],
      [
        `/v1/approvals/${approvalId}/decision`,
        `{"decision":"approve","edits":${nested(10_000)}}`,
        /^edits(\.a)*…?: nested deeper than 32 levels/,
      ],
      ['/v1/approvals/decisions', `{"decisions":[${nested(5_000)}]}`, /^decisions\.0(\.a)*…?: nested deeper than 32/],
    ];
    for (const [route, body, message] of cases) {
      const started = Date.now();
      expect400(await raw('POST', route, { headers, body }), message);
      expect(Date.now() - started).toBeLessThan(2_000);
    }
    expect(await counts()).toEqual(before);
  });

  test('the limit is 32 levels: 32 are stored, 33 are refused', async () => {
    // The body is level 1 and payload level 2, so 31 nested objects in the payload reach level 32.
    const event = (levels: number, ext: string) => ({
      source: 'depth',
      type: 'probe',
      externalId: ext,
      payload: JSON.parse(nested(levels)),
    });
    const fits = `fits-${uniq()}`;
    expect((await engine.http('POST', '/v1/events', event(31, fits))).status).toBe(201);
    const before = await counts();
    expect400(await engine.http('POST', '/v1/events', event(32, `too-deep-${uniq()}`)), /deeper than 32 levels/);
    expect(await counts()).toEqual(before);
    // What was stored at the limit is the whole structure.
    const stored = await engine.db.prisma.inboundEvent.findFirstOrThrow({ where: { externalId: fits } });
    expect(JSON.stringify(stored.payload)).toBe(nested(31));
  });
});

describe('D8: authentication comes before the body', () => {
  test('without a valid key, a malformed, oversized or hostile body is a 401, never a 400 or 413', async () => {
    const before = await counts();
    const bodies = [
      '{"title": "half a goal",', // malformed JSON
      JSON.stringify({ title: 'Huge', input: { text: 'x'.repeat(400 * 1024) } }), // over the 256kb limit
      `{"title":"deep","input":${nested(10_000)}}`, // too deep
      JSON.stringify({ title: NUL }), // NUL
    ];
    for (const authorization of [undefined, 'Bearer wrong-key']) {
      for (const body of bodies) {
        for (const route of ['/v1/goals', '/v1/events', `/v1/approvals/${approvalId}/decision`]) {
          const headers: Record<string, string> = { 'content-type': 'application/json' };
          if (authorization) headers.authorization = authorization;
          const res = await raw('POST', route, { headers, body });
          expect({ route, status: res.status, code: res.body?.error?.code }).toEqual({
            route,
            status: 401,
            code: 'unauthorized',
          });
        }
      }
    }
    // A NUL route id without a key is a 401 too: the key is checked first everywhere.
    expect((await raw('GET', '/v1/goals/%00')).status).toBe(401);
    expect(await counts()).toEqual(before);
  });

  test('with the key, the same bodies get their own answers (so the 401s above were about the key)', async () => {
    const headers = { 'content-type': 'application/json', authorization: `Bearer ${engine.apiKey}` };
    expect((await raw('POST', '/v1/goals', { headers, body: '{"title": "half a goal",' })).status).toBe(400);
    const huge = JSON.stringify({ title: 'Huge', input: { text: 'x'.repeat(400 * 1024) } });
    expect((await raw('POST', '/v1/goals', { headers, body: huge })).status).toBe(413);
  });
});
