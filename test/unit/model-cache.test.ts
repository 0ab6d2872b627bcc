/**
 * models/cache.ts: the model output cache over the real gateway and the real
 * `openai` client against the protocol stand-in, with PostgreSQL holding the
 * entries, the versions they were built from and the counters.
 */
import { z } from 'zod';
import { defaultConfig } from '../../config/index';
import { contactSubject } from '../../state/entities';
import {
  cacheStats,
  contextDependencies,
  withCache,
  workingSetDependencies,
  type ModelCacheOptions,
} from '../../models/cache';
import { createModelGateway, type ChatMessage, type ModelGateway } from '../../models/gateway';
import { createTestDatabase, type TestDatabase } from '../helpers/db';
import { createTestMemory } from '../helpers/engine';
import { startOpenAIStandin, type OpenAIStandin } from '../helpers/openai-standin';
import type { MemoryService } from '../../memory/service';

jest.setTimeout(60_000);

const Answer = z.object({ answer: z.string(), n: z.number().int() });
const FRESH = 60_000;

let db: TestDatabase;
let standin: OpenAIStandin;
let memory: MemoryService;
let gateway: ModelGateway;
let calls = 0;
let clock = new Date('2026-12-01T10:00:00Z');

beforeAll(async () => {
  db = await createTestDatabase();
  memory = createTestMemory(db.prisma);
  standin = await startOpenAIStandin({
    // A different answer every time, so a served answer is recognisably the stored one.
    chat: () => JSON.stringify({ answer: 'the model answered', n: ++calls }),
  });
  gateway = createModelGateway({ ...defaultConfig(), OPENAI_BASE_URL: standin.baseURL, OPENAI_API_KEY: 'sk-cache' });
});

afterAll(async () => {
  await standin?.close();
  await memory?.store.close();
  await db?.drop();
});

function cached(opts: ModelCacheOptions = {}): ModelGateway {
  return withCache(gateway, db.prisma, { now: () => clock, onError: () => undefined, ...opts });
}

let question = 0;
/** A request nobody asked before (each test its own, so entries do not leak between tests). */
function messages(text = `question ${++question}`): ChatMessage[] {
  return [
    { role: 'system', content: 'Answer as JSON {"answer", "n"}.' },
    { role: 'user', content: text },
  ];
}

function ask(g: ModelGateway, msgs: ChatMessage[], cache: Parameters<ModelGateway['json']>[0]['cache']) {
  return g.json({ tier: 'small', schema: Answer, schemaName: 'keel_test', messages: msgs, maxTokens: 50, cache });
}

const chats = () => standin.chatRequests().length;

test('the same request is answered from the cache: no call, no cost, and the savings are counted', async () => {
  const g = cached();
  const msgs = messages();
  const before = chats();
  const statsBefore = await cacheStats(db.prisma);
  const first = await ask(g, msgs, { key: 'test.same', freshForMs: FRESH });
  const second = await ask(g, msgs, { key: 'test.same', freshForMs: FRESH });

  expect(chats() - before).toBe(1);
  expect(first.cache).toMatchObject({ hit: false, reason: 'absent' });
  expect(first.costUsd).toBeGreaterThan(0);
  expect(second.value).toEqual(first.value);
  expect(second.cache).toMatchObject({ hit: true, purpose: 'test.same' });
  expect(second.cache?.saved).toEqual({
    inputTokens: first.inputTokens,
    outputTokens: first.outputTokens,
    usd: first.costUsd,
  });
  expect(second).toMatchObject({ costUsd: 0, inputTokens: 0, outputTokens: 0, requests: 0, model: first.model });
  // The cache's idea of "the same request" is the gateway's own prompt hash.
  expect(second.promptHash).toBe(first.promptHash);

  const stats = await cacheStats(db.prisma);
  const purpose = stats.byPurpose['test.same'];
  expect(purpose).toMatchObject({ hits: 1, misses: 1, hitRate: 0.5 });
  expect(purpose.tokensSaved).toBe(first.inputTokens + first.outputTokens);
  expect(purpose.usdSaved).toBeCloseTo(first.costUsd, 9);
  expect(stats.hits - statsBefore.hits).toBe(1);
});

test('a different message, parameter or tier is a different request', async () => {
  const g = cached();
  const msgs = messages();
  const spec = { key: 'test.diff', freshForMs: FRESH };
  await ask(g, msgs, spec);
  const before = chats();
  const other = await ask(g, messages(), spec);
  const hotter = await g.json({
    tier: 'small',
    schema: Answer,
    schemaName: 'keel_test',
    messages: msgs,
    maxTokens: 50,
    temperature: 0.9,
    cache: spec,
  });
  const longer = await g.json({
    tier: 'small',
    schema: Answer,
    schemaName: 'keel_test',
    messages: msgs,
    maxTokens: 60,
    cache: spec,
  });
  const large = await g.json({
    tier: 'large',
    schema: Answer,
    schemaName: 'keel_test',
    messages: msgs,
    maxTokens: 50,
    cache: spec,
  });
  expect(chats() - before).toBe(4);
  for (const r of [other, hotter, longer, large]) expect(r.cache?.hit).toBe(false);
});

test('an answer is served only within its freshness window', async () => {
  const g = cached();
  const msgs = messages();
  const spec = { key: 'test.fresh', freshForMs: FRESH };
  await ask(g, msgs, spec);
  clock = new Date(clock.getTime() + FRESH - 1);
  expect((await ask(g, msgs, spec)).cache?.hit).toBe(true);
  clock = new Date(clock.getTime() + 2);
  const before = chats();
  const stale = await ask(g, msgs, spec);
  expect(chats() - before).toBe(1);
  expect(stale.cache).toMatchObject({ hit: false, reason: 'expired' });
  // The fresh answer replaced the stale one.
  expect((await ask(g, msgs, spec)).value).toEqual(stale.value);
  expect((await cacheStats(db.prisma)).byPurpose['test.fresh']).toMatchObject({ hits: 2, misses: 2, expired: 1 });
});

test('a per-purpose freshness of 0 turns caching off for that purpose', async () => {
  const g = cached({ freshForMs: { 'test.off': 0 } });
  const msgs = messages();
  const before = chats();
  await ask(g, msgs, { key: 'test.off', freshForMs: FRESH });
  const again = await ask(g, msgs, { key: 'test.off', freshForMs: FRESH });
  expect(chats() - before).toBe(2);
  expect(again.cache).toBeUndefined();
  expect((await cacheStats(db.prisma)).byPurpose['test.off']).toBeUndefined();
});

test('a superseded memory invalidates the answers built from it, and only those', async () => {
  const g = cached();
  const subject = contactSubject('ana@acme.test');
  const old = await memory.remember({
    text: 'Acme pays invoices within 30 days',
    kind: 'semantic',
    subject,
    attribute: 'payment_terms',
    source: 'human',
  });
  const other = await memory.remember({ text: 'Acme likes short emails', kind: 'semantic', source: 'human' });
  const msgs = messages();
  const unrelated = messages();
  const built = { key: 'test.memory', freshForMs: FRESH, dependsOn: workingSetDependencies([old.id]) };
  const elsewhere = { key: 'test.memory', freshForMs: FRESH, dependsOn: workingSetDependencies([other.id]) };
  await ask(g, msgs, built);
  await ask(g, unrelated, elsewhere);
  expect((await ask(g, msgs, built)).cache?.hit).toBe(true);

  // The operator corrects the fact: the new memory supersedes the old one (its row changes).
  const newer = await memory.remember({
    text: 'Acme pays invoices within 45 days',
    kind: 'semantic',
    subject,
    attribute: 'payment_terms',
    source: 'human',
  });
  expect(newer.superseded).toEqual([old.id]);

  const before = chats();
  const after = await ask(g, msgs, built);
  expect(after.cache).toMatchObject({ hit: false, reason: 'invalidated' });
  expect(chats() - before).toBe(1);
  expect((await ask(g, unrelated, elsewhere)).cache?.hit).toBe(true);
  // Rebuilt from the current version, the entry serves again.
  expect((await ask(g, msgs, built)).cache?.hit).toBe(true);
  expect((await cacheStats(db.prisma)).byPurpose['test.memory'].invalidated).toBe(1);
});

test('a changed contact, or a vanished one, invalidates; the dependency order does not matter', async () => {
  const g = cached();
  await db.prisma.contact.create({ data: { id: 'c-ana', email: 'ana@acme.test', updatedAt: clock } });
  const msgs = messages();
  await ask(g, msgs, {
    key: 'test.contact',
    freshForMs: FRESH,
    dependsOn: [
      { kind: 'contact', id: 'c-ana' },
      { kind: 'memory', id: 'no-such-memory' },
    ],
  });
  const reordered = {
    key: 'test.contact',
    freshForMs: FRESH,
    dependsOn: [
      { kind: 'memory' as const, id: 'no-such-memory' },
      { kind: 'contact' as const, id: 'c-ana' },
    ],
  };
  expect((await ask(g, msgs, reordered)).cache?.hit).toBe(true);
  await db.prisma.contact.update({
    where: { id: 'c-ana' },
    data: { name: 'Ana', updatedAt: new Date(clock.getTime() + 1000) },
  });
  expect((await ask(g, msgs, reordered)).cache).toMatchObject({ hit: false, reason: 'invalidated' });
  expect((await ask(g, msgs, reordered)).cache?.hit).toBe(true);
  await db.prisma.contact.delete({ where: { id: 'c-ana' } });
  expect((await ask(g, msgs, reordered)).cache).toMatchObject({ hit: false, reason: 'invalidated' });
});

test("a context artifact's dependencies are the artifact and every memory it used", async () => {
  const m = await memory.remember({ text: 'Ana prefers mornings', kind: 'semantic', source: 'human' });
  await db.prisma.artifact.create({
    data: {
      id: 'ctx-1',
      kind: 'context',
      title: 'context',
      content: '- Ana prefers mornings',
      metadata: { memoryIds: [m.id, 'contact:c-bob', 'goal:g-7'] },
    },
  });
  expect(await contextDependencies(db.prisma, 'ctx-1')).toEqual([
    { kind: 'artifact', id: 'ctx-1' },
    { kind: 'memory', id: m.id },
    { kind: 'contact', id: 'c-bob' },
    { kind: 'goal', id: 'g-7' },
  ]);
  const g = cached();
  const msgs = messages();
  const spec = { key: 'test.artifact', freshForMs: FRESH, dependsOn: await contextDependencies(db.prisma, 'ctx-1') };
  await ask(g, msgs, spec);
  expect((await ask(g, msgs, spec)).cache?.hit).toBe(true);
  // Voiding or re-versioning the artifact changes its version text.
  await db.prisma.artifact.update({ where: { id: 'ctx-1' }, data: { status: 'void' } });
  expect((await ask(g, msgs, spec)).cache).toMatchObject({ hit: false, reason: 'invalidated' });
});

test('another process on the same database is served the same entry', async () => {
  const msgs = messages();
  const spec = { key: 'test.shared', freshForMs: FRESH };
  const first = await ask(cached(), msgs, spec);
  // A second gateway and cache, as another worker process would build them.
  const elsewhere = withCache(
    createModelGateway({ ...defaultConfig(), OPENAI_BASE_URL: standin.baseURL, OPENAI_API_KEY: 'sk-cache' }),
    db.prisma,
    { now: () => clock },
  );
  const before = chats();
  const served = await ask(elsewhere, msgs, spec);
  expect(chats()).toBe(before);
  expect(served.value).toEqual(first.value);
});

test("a stored answer that no longer matches today's schema is not served", async () => {
  const g = cached();
  const msgs = messages();
  const spec = { key: 'test.schema', freshForMs: FRESH };
  await ask(g, msgs, spec);
  // Same request hash, but the stored answer is broken (as if written by an older release).
  await db.prisma
    .$executeRaw`UPDATE model_cache SET result = jsonb_set(result, '{value,n}', '"not a number"') WHERE purpose = 'test.schema'`;
  const before = chats();
  const r = await ask(g, msgs, spec);
  expect(r.cache).toMatchObject({ hit: false, reason: 'unusable' });
  expect(chats() - before).toBe(1);
  expect(typeof r.value.n).toBe('number');
});

test('a text cut off at max tokens is not stored', async () => {
  const g = cached();
  const msgs = messages();
  const spec = { key: 'test.length', freshForMs: FRESH };
  standin.scriptChat({ content: 'a truncated dra', finishReason: 'length' });
  const cut = await g.text({ tier: 'small', messages: msgs, maxTokens: 5, cache: spec });
  expect(cut.finishReason).toBe('length');
  const before = chats();
  const again = await g.text({ tier: 'small', messages: msgs, maxTokens: 5, cache: spec });
  expect(chats() - before).toBe(1);
  expect(again.cache).toMatchObject({ hit: false, reason: 'absent' });
  expect((await g.text({ tier: 'small', messages: msgs, maxTokens: 5, cache: spec })).cache?.hit).toBe(true);
});

test('calls without `cache` go straight to the model, and wrapping twice is wrapping once', async () => {
  const g = cached();
  expect(withCache(g, db.prisma)).toBe(g);
  const msgs = messages();
  const before = chats();
  await g.json({ tier: 'small', schema: Answer, schemaName: 'keel_test', messages: msgs, maxTokens: 50 });
  const r = await g.json({ tier: 'small', schema: Answer, schemaName: 'keel_test', messages: msgs, maxTokens: 50 });
  expect(chats() - before).toBe(2);
  expect(r.cache).toBeUndefined();
});

test('when the cache cannot be read the call goes on to the model and says why', async () => {
  const bare = await createTestDatabase({ migrate: false });
  const errors: string[] = [];
  try {
    const g = withCache(gateway, bare.prisma, { onError: (_err, during) => errors.push(during) });
    const before = chats();
    const r = await ask(g, messages(), { key: 'test.down', freshForMs: FRESH });
    expect(chats() - before).toBe(1);
    expect(r.value.answer).toBe('the model answered');
    expect(r.cache).toMatchObject({ hit: false, reason: 'unavailable' });
    expect(errors).toEqual(['lookup']);
  } finally {
    await bare.drop();
  }
});
