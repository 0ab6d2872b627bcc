/**
 * Retrieval as the README documents it: decay, boosts and feedback change the
 * order the way the config says; decay is visible; a newer fact supersedes
 * an older one; filters; the working set respects its token budget.
 * Real PostgreSQL, the embedded exact index and the offline embedder.
 */
import { createEmbeddedStore } from '../../memory/embedded-store';
import { createCachedEmbedder, createHashingEmbedder } from '../../memory/embedders';
import { DEFAULT_RETRIEVAL, type RetrievalConfig, type DeepPartial } from '../../memory/retrieval';
import { createMemoryService, type MemoryService } from '../../memory/service';
import { assembleWorkingSet } from '../../memory/working-set';
import { countTokens } from '../../models/tokenizer';
import { createTestDatabase, type TestDatabase } from '../helpers/db';

const NOW = new Date('2026-06-01T12:00:00Z');
const daysAgo = (d: number) => new Date(NOW.getTime() - d * 24 * 60 * 60 * 1000);

let db: TestDatabase;
const opened: MemoryService[] = [];

beforeEach(async () => {
  db = await createTestDatabase();
});
afterEach(async () => {
  // Stores first: their background checks must not outlive the database.
  await Promise.all(opened.splice(0).map((m) => m.store.close()));
  await db.drop();
});

function service(config: DeepPartial<RetrievalConfig> = {}): MemoryService {
  const embedder = createCachedEmbedder(createHashingEmbedder(), { prisma: db.prisma });
  const m = createMemoryService({
    prisma: db.prisma,
    embedder,
    store: createEmbeddedStore({ prisma: db.prisma, dims: embedder.dims, verifyIntervalMs: 0 }),
    config,
    now: () => NOW,
  });
  opened.push(m);
  return m;
}

const texts = async (m: MemoryService, query: string, k = 10, extra = {}) =>
  (await m.search({ query, k, ...extra })).results.map((r) => r.text);

test('recency decay ranks a fresh episode above an old one of equal similarity, and says what it pushed down', async () => {
  const m = service();
  await m.remember({
    text: 'Acme asked about the invoice delay',
    kind: 'episodic',
    source: 'agent',
    occurredAt: daysAgo(200),
  });
  await m.remember({
    text: 'Acme asked about the invoice delay again',
    kind: 'episodic',
    source: 'agent',
    occurredAt: daysAgo(1),
  });
  const found = await m.search({ query: 'Acme invoice delay', k: 1 });
  expect(found.results.map((r) => r.text)).toEqual(['Acme asked about the invoice delay again']);
  // The old one was the better match: decay moved it below the cut, and the search says so.
  expect(found.buried).toHaveLength(1);
  expect(found.buried[0].text).toBe('Acme asked about the invoice delay');
  expect(found.buried[0].reason).toMatch(/^recency decay: episodic memory is 200 days old \(half-life 30 days\)/);
  expect(found.buried[0].similarity).toBeGreaterThan(found.results[0].similarity);
  expect(found.lexical).toBe(true);

  // Without decay for episodes, similarity decides again and nothing is buried.
  const noDecay = service({ halfLifeDays: { episodic: null } });
  const plain = await noDecay.search({ query: 'Acme invoice delay', k: 1 });
  expect(plain.results.map((r) => r.text)).toEqual(['Acme asked about the invoice delay']);
  expect(plain.buried).toEqual([]);
});

test('a stated preference (semantic) does not fade; an episode does', async () => {
  const m = service();
  const old = daysAgo(400);
  await m.remember({ text: 'Ada prefers short emails', kind: 'semantic', source: 'agent', occurredAt: old });
  await m.remember({
    text: 'Ada prefers short emails, said on a call',
    kind: 'episodic',
    source: 'agent',
    occurredAt: old,
  });
  const [semantic, episodic] = (await m.search({ query: 'Ada prefers short emails', k: 2 })).results;
  expect(semantic.kind).toBe('semantic');
  expect(semantic.recency).toBe(1);
  expect(episodic.recency).toBeLessThan(0.001);
});

test('human-written memories and important ones are boosted by their configured weights', async () => {
  const m = service();
  await m.remember({
    text: 'Newsletter goes out on Fridays',
    kind: 'semantic',
    subject: 'project:newsletter',
    source: 'agent',
    occurredAt: daysAgo(5),
  });
  await m.remember({
    text: 'Newsletter goes out on Fridays',
    kind: 'semantic',
    subject: 'project:news',
    source: 'human',
    occurredAt: daysAgo(5),
  });
  const [first, second] = (await m.search({ query: 'when does the newsletter go out', k: 2 })).results;
  expect(first.source).toBe('human');
  expect(first.score - second.score).toBeCloseTo(DEFAULT_RETRIEVAL.weights.human, 6);

  const noHumanBoost = service({ weights: { human: 0, importance: 0.2 } });
  await noHumanBoost.remember({
    text: 'Newsletter goes out on Fridays',
    kind: 'semantic',
    subject: 'project:x',
    source: 'agent',
    importance: 1,
    occurredAt: daysAgo(5),
  });
  const top = (await noHumanBoost.search({ query: 'when does the newsletter go out', k: 3 })).results[0];
  expect(top.subject).toBe('project:x');
});

test('approval feedback moves cited memories up or down', async () => {
  const m = service();
  const a = await m.remember({
    text: 'Acme pays invoices within 30 days',
    kind: 'semantic',
    subject: 'org:acme',
    source: 'agent',
  });
  const b = await m.remember({
    text: 'Acme pays invoices within 30 days',
    kind: 'semantic',
    subject: 'org:acme-old',
    source: 'agent',
  });
  const order = async () => (await m.search({ query: 'Acme invoices', k: 2 })).results.map((r) => r.id);
  const before = await order();
  const loser = before[0];
  const winner = before[1];
  expect(await m.applyFeedback(db.prisma, [loser, 'contact:not-a-memory'], 'rejected')).toBe(1);
  expect(await m.applyFeedback(db.prisma, [winner], 'approved')).toBe(1);
  expect(await order()).toEqual([winner, loser]);
  const rows = await db.prisma.memoryItem.findMany({ where: { id: { in: [a.id, b.id] } } });
  expect(rows.find((r) => r.id === winner)?.feedback).toBeCloseTo(DEFAULT_RETRIEVAL.feedback.approved);
  expect(rows.find((r) => r.id === loser)?.feedback).toBeCloseTo(DEFAULT_RETRIEVAL.feedback.rejected);
});

test('a newer fact about the same subject and attribute supersedes the older one, which is kept', async () => {
  const m = service();
  const older = await m.remember({
    text: 'Ada prefers email',
    kind: 'semantic',
    subject: 'contact:ada@x.example',
    attribute: 'channel',
    source: 'human',
    occurredAt: daysAgo(30),
  });
  const newer = await m.remember({
    text: 'Ada prefers phone calls',
    kind: 'semantic',
    subject: 'contact:ada@x.example',
    attribute: 'channel',
    source: 'human',
    occurredAt: daysAgo(1),
  });
  expect(newer.superseded).toEqual([older.id]);
  expect(await texts(m, 'how does Ada prefer to be contacted')).toEqual(['Ada prefers phone calls']);
  const all = await m.search({ query: 'how does Ada prefer to be contacted', includeSuperseded: true });
  expect(all.results.map((r) => [r.text, r.superseded]).sort()).toEqual([
    ['Ada prefers email', true],
    ['Ada prefers phone calls', false],
  ]);
  const subject = await m.forSubject('contact:ada@x.example');
  expect(subject.map((s) => [s.text, s.supersededBy])).toEqual([
    ['Ada prefers phone calls', null],
    ['Ada prefers email', newer.id],
  ]);
});

test('remembering the same memory twice stores it once', async () => {
  const m = service();
  const first = await m.remember({ text: 'Office closed on Monday', kind: 'semantic', source: 'human' });
  const second = await m.remember({ text: 'Office closed on Monday', kind: 'semantic', source: 'human' });
  expect(second).toEqual({ id: first.id, created: false, superseded: [] });
  expect(await db.prisma.memoryItem.count()).toBe(1);
  expect(await m.store.count()).toBe(1);
});

test('filters: subject, kind and time window', async () => {
  const m = service();
  await m.remember({
    text: 'invoice sent to Acme',
    kind: 'episodic',
    subject: 'org:acme',
    source: 'agent',
    occurredAt: daysAgo(10),
  });
  await m.remember({
    text: 'invoice sent to Initech',
    kind: 'episodic',
    subject: 'org:initech',
    source: 'agent',
    occurredAt: daysAgo(3),
  });
  await m.remember({
    text: 'invoice policy: net 30',
    kind: 'semantic',
    subject: 'org:acme',
    source: 'human',
    occurredAt: daysAgo(100),
  });
  expect((await texts(m, 'invoice', 10, { subject: 'org:acme' })).sort()).toEqual([
    'invoice policy: net 30',
    'invoice sent to Acme',
  ]);
  expect(await texts(m, 'invoice', 10, { kinds: ['semantic'] })).toEqual(['invoice policy: net 30']);
  expect(await texts(m, 'invoice', 10, { occurredFrom: daysAgo(20), occurredTo: daysAgo(5) })).toEqual([
    'invoice sent to Acme',
  ]);
});

test('the working set puts canonical facts first, fits the token budget and records what it used', async () => {
  const m = service();
  await db.prisma.contact.create({
    data: { id: 'c1', email: 'ada@acme.example', name: 'Ada Lovelace', attributes: { tone: 'formal' } },
  });
  const ids: string[] = [];
  for (let i = 0; i < 30; i++) {
    ids.push(
      (
        await m.remember({
          text: `Ada asked about invoice ${i} and the payment schedule for the quarter`,
          kind: 'episodic',
          subject: 'contact:ada@acme.example',
          source: 'adapter',
          occurredAt: daysAgo(i),
        })
      ).id,
    );
  }
  const ws = await assembleWorkingSet(
    { prisma: db.prisma, memory: m },
    { query: 'invoice payment', subject: 'contact:ada@acme.example', tokenBudget: 120, k: 30 },
  );
  expect(ws.items[0]).toMatchObject({ id: 'contact:c1', source: 'canonical' });
  expect(ws.items[0].text).toContain('Ada Lovelace');
  expect(ws.tokens).toBeLessThanOrEqual(120);
  expect(countTokens(ws.items.map((i) => `- ${i.text}\n`).join(''))).toBe(ws.tokens);
  expect(ws.dropped).toBeGreaterThan(0);
  expect(ws.memoryIds.slice(1).every((id) => ids.includes(id))).toBe(true);
  const roomy = await assembleWorkingSet(
    { prisma: db.prisma, memory: m },
    { query: 'invoice payment', subject: 'contact:ada@acme.example', tokenBudget: 5000, k: 30 },
  );
  expect(roomy.dropped).toBe(0);
  expect(roomy.items.length).toBe(31);
});

test('archived memories leave the hot index but stay on record', async () => {
  const m = service();
  const a = await m.remember({ text: 'met Acme at the fair', kind: 'episodic', source: 'agent' });
  expect(await m.archive([a.id])).toBe(1);
  expect(await texts(m, 'Acme fair')).toEqual([]);
  expect(await texts(m, 'Acme fair', 10, { tier: 'any' })).toEqual(['met Acme at the fair']);
  expect(await m.stats()).toEqual({ hot: 0, archived: 1, superseded: 0 });
});

test('reads and feedback do not make indexes re-read a memory; changes to indexed fields do', async () => {
  const m = service();
  const { id } = await m.remember({ text: 'Acme renews in March', kind: 'semantic', source: 'human' });
  const rev = async () => (await db.prisma.memoryItem.findUniqueOrThrow({ where: { id } })).rev;
  const start = await rev();
  await m.search({ query: 'Acme renewal' });
  expect((await db.prisma.memoryItem.findUniqueOrThrow({ where: { id } })).lastAccessedAt).toEqual(NOW);
  await m.applyFeedback(db.prisma, [id], 'approved');
  expect(await rev()).toBe(start);
  await m.archive([id]);
  expect(await rev()).toBeGreaterThan(start);
});
