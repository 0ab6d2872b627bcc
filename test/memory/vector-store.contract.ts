/**
 * The VectorStore contract (memory/types.ts) as a Jest suite that
 * every adapter runs: `runVectorStoreContract(name, makeStore)`.
 *
 * Each case keeps its own model of what was written and compares the store
 * with a brute-force answer computed here, independently of any adapter code
 * (float64 cosine similarity, filter semantics written out again).
 *
 * Writes follow the protocol the memory service uses: the canonical change
 * first (`backing`, e.g. memory_items rows for the embedded store, which
 * reads them from there), then the same change told to the store.
 */
import { prng } from '../../lib/prng';
import type { MemoryKind, PointPayload, VectorFilter, VectorHit, VectorPoint, VectorStore } from '../../memory/types';

/** Re-exported for the other memory tests. */
export { prng };

/** Vector length the contract uses: not a multiple of 16, so padding in the embedded kernel is exercised. */
export const CONTRACT_DIMS = 40;

/** The canonical side of a change, made before the store is told about it. */
export interface ContractBacking {
  upsert(points: VectorPoint[]): Promise<void>;
  setPayload(ids: string[], payload: Partial<PointPayload>): Promise<void>;
  delete(ids: string[]): Promise<void>;
}

/** What makeStore gives the contract: a store (not yet initialised) of CONTRACT_DIMS over fresh, empty backing. */
export interface ContractSubject {
  store: VectorStore;
  /** Absent when the store is its own backing (Qdrant). */
  backing?: ContractBacking;
  /** A second, independent instance over the same backing (same database or collection), not yet initialised. */
  reopen(): Promise<VectorStore>;
  /** Closes the stores (also reopened ones) and drops the backing. */
  cleanup(): Promise<void>;
}

/** A lower-case version-4 UUID drawn from `rand`. */
export function uuidFrom(rand: () => number): string {
  let hex = '';
  for (let i = 0; i < 32; i++) hex += Math.floor(rand() * 16).toString(16);
  hex = `${hex.slice(0, 12)}4${hex.slice(13, 16)}${'89ab'[Math.floor(rand() * 4)]}${hex.slice(17)}`;
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** A random unit vector (normal components via Box-Muller, so directions are uniform). */
export function unitVector(rand: () => number, dims: number): Float32Array {
  const v = new Float32Array(dims);
  let norm = 0;
  for (let i = 0; i < dims; i++) {
    const g = Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());
    v[i] = g;
    norm += g * g;
  }
  const s = 1 / Math.sqrt(norm);
  for (let i = 0; i < dims; i++) v[i]! *= s;
  return v;
}

const KINDS: MemoryKind[] = ['episodic', 'semantic', 'summary', 'artifact'];
const SUBJECTS = ['contact:ada', 'contact:bob', 'project:keel', null];
const T0 = Date.UTC(2025, 0, 1);
const DAY = 86_400_000;

/** `n` points with random vectors and payloads spread over kinds, subjects and 60 days, all hot. */
export function randomPoints(rand: () => number, n: number, dims = CONTRACT_DIMS): VectorPoint[] {
  const points: VectorPoint[] = [];
  for (let i = 0; i < n; i++) {
    points.push({
      id: uuidFrom(rand),
      vector: unitVector(rand, dims),
      payload: {
        kind: KINDS[Math.floor(rand() * KINDS.length)]!,
        subject: SUBJECTS[Math.floor(rand() * SUBJECTS.length)]!,
        occurredAt: T0 + Math.floor(rand() * 60) * DAY,
        tier: 'hot',
        superseded: false,
      },
    });
  }
  return points;
}

/** The filter semantics of types.ts, written out independently of the adapters. */
export function passes(p: PointPayload, f: VectorFilter = {}): boolean {
  if (f.kinds && f.kinds.length > 0 && !f.kinds.includes(p.kind)) return false;
  if (f.subject !== undefined && p.subject !== f.subject) return false;
  if (f.occurredFrom !== undefined && p.occurredAt < f.occurredFrom) return false;
  if (f.occurredTo !== undefined && p.occurredAt > f.occurredTo) return false;
  const tier = f.tier ?? 'hot';
  if (tier !== 'any' && p.tier !== tier) return false;
  if (!f.includeSuperseded && p.superseded) return false;
  return true;
}

function cosine(a: Float32Array, b: Float32Array): number {
  let dot = 0;
  let na = 0;
  let nb = 0;
  for (let i = 0; i < a.length; i++) {
    dot += a[i]! * b[i]!;
    na += a[i]! * a[i]!;
    nb += b[i]! * b[i]!;
  }
  return na === 0 || nb === 0 ? 0 : dot / Math.sqrt(na * nb);
}

/** Brute force over `points`: the k most similar passing `filter`, ties by ascending id. */
export function bruteForce(
  points: Iterable<VectorPoint>,
  vector: Float32Array,
  k: number,
  filter?: VectorFilter,
): VectorHit[] {
  const hits: VectorHit[] = [];
  for (const p of points) if (passes(p.payload, filter)) hits.push({ id: p.id, similarity: cosine(p.vector, vector) });
  hits.sort((a, b) => b.similarity - a.similarity || (a.id < b.id ? -1 : 1));
  return hits.slice(0, k);
}

/** Same ids in the same order, similarities equal up to float32 rounding. */
export function expectSameHits(actual: VectorHit[], expected: VectorHit[]): void {
  expect(actual.map((h) => h.id)).toEqual(expected.map((h) => h.id));
  actual.forEach((h, i) => expect(h.similarity).toBeCloseTo(expected[i]!.similarity, 5));
}

/** What a store should hold, kept beside it by each case. */
class Model {
  readonly points = new Map<string, VectorPoint>();

  upsert(points: VectorPoint[]): void {
    for (const p of points) this.points.set(p.id, { id: p.id, vector: p.vector, payload: { ...p.payload } });
  }

  setPayload(ids: string[], payload: Partial<PointPayload>): void {
    for (const id of ids) {
      const p = this.points.get(id);
      if (p) p.payload = { ...p.payload, ...payload };
    }
  }

  delete(ids: string[]): void {
    for (const id of ids) this.points.delete(id);
  }

  count(filter?: VectorFilter): number {
    let n = 0;
    for (const p of this.points.values()) if (passes(p.payload, filter)) n++;
    return n;
  }
}

/** Defines `describe(name)` with the contract's cases; each case gets a fresh subject from makeStore. */
export function runVectorStoreContract(name: string, makeStore: () => Promise<ContractSubject>): void {
  describe(name, () => {
    let subject: ContractSubject;
    let store: VectorStore;
    let model: Model;

    beforeEach(async () => {
      subject = await makeStore();
      store = subject.store;
      model = new Model();
      await store.init();
      // init() is documented as idempotent.
      await store.init();
    });

    afterEach(async () => {
      await subject.cleanup();
    });

    async function upsert(points: VectorPoint[]): Promise<void> {
      await subject.backing?.upsert(points);
      await store.upsert(points);
      model.upsert(points);
    }

    async function setPayload(ids: string[], payload: Partial<PointPayload>): Promise<void> {
      await subject.backing?.setPayload(ids, payload);
      await store.setPayload(ids, payload);
      model.setPayload(ids, payload);
    }

    async function remove(ids: string[]): Promise<void> {
      await subject.backing?.delete(ids);
      await store.delete(ids);
      model.delete(ids);
    }

    async function expectMatchesModel(s: VectorStore, queries: Float32Array[], k: number, filter?: VectorFilter) {
      for (const q of queries)
        expectSameHits(await s.search({ vector: q, k, filter }), bruteForce(model.points.values(), q, k, filter));
      expect(await s.count(filter)).toBe(model.count(filter));
    }

    it('starts empty and reports its name and dims', async () => {
      expect(['embedded', 'qdrant']).toContain(store.name);
      expect(store.dims).toBe(CONTRACT_DIMS);
      expect(await store.count()).toBe(0);
      expect(await store.search({ vector: unitVector(prng(1), CONTRACT_DIMS), k: 5 })).toEqual([]);
    });

    it('returns the exact top-k, most similar first, with brute-force similarities', async () => {
      const rand = prng(11);
      await upsert(randomPoints(rand, 300));
      const queries = Array.from({ length: 8 }, () => unitVector(rand, CONTRACT_DIMS));
      for (const q of queries) {
        const hits = await store.search({ vector: q, k: 10 });
        expect(hits).toHaveLength(10);
        expectSameHits(hits, bruteForce(model.points.values(), q, 10));
        for (const h of hits) expect(Math.abs(h.similarity)).toBeLessThanOrEqual(1);
      }
      // A stored vector is its own nearest neighbour at similarity 1.
      const [first] = model.points.values();
      const self = await store.search({ vector: first!.vector, k: 1 });
      expect(self[0]!.id).toBe(first!.id);
      expect(self[0]!.similarity).toBeCloseTo(1, 5);
      expect(await store.count()).toBe(300);
    });

    it('treats similarity as cosine: query length does not matter', async () => {
      const rand = prng(12);
      await upsert(randomPoints(rand, 100));
      const q = unitVector(rand, CONTRACT_DIMS);
      const scaled = q.map((x) => x * 7.5);
      expectSameHits(await store.search({ vector: scaled, k: 5 }), bruteForce(model.points.values(), q, 5));
    });

    it('returns every match when k exceeds them, and nothing for k = 0', async () => {
      const rand = prng(13);
      await upsert(randomPoints(rand, 12));
      const q = unitVector(rand, CONTRACT_DIMS);
      const all = await store.search({ vector: q, k: 50 });
      expect(all).toHaveLength(12);
      expectSameHits(all, bruteForce(model.points.values(), q, 50));
      expect(await store.search({ vector: q, k: 0 })).toEqual([]);
    });

    it('breaks ties by id, also across the k-th place', async () => {
      const rand = prng(14);
      const shared = unitVector(rand, CONTRACT_DIMS);
      const ids = Array.from({ length: 6 }, () => uuidFrom(rand)).sort();
      // Stored in descending id order, so storage order is the opposite of the contract's.
      const twins = [...ids].reverse().map((id) => ({
        id,
        vector: shared,
        payload: { kind: 'semantic' as const, subject: null, occurredAt: T0, tier: 'hot' as const, superseded: false },
      }));
      await upsert([...twins, ...randomPoints(rand, 30)]);
      const top3 = await store.search({ vector: shared, k: 3 });
      expect(top3.map((h) => h.id)).toEqual(ids.slice(0, 3));
      const top8 = await store.search({ vector: shared, k: 8 });
      expect(top8.slice(0, 6).map((h) => h.id)).toEqual(ids);
      expect(new Set(top8.slice(0, 6).map((h) => h.similarity)).size).toBe(1);
    });

    it('replaces a re-upserted id in place: same count, new vector and payload', async () => {
      const rand = prng(15);
      const points = randomPoints(rand, 50);
      await upsert(points);
      expect(await store.count()).toBe(50);

      const target = points[17]!;
      const oldVector = target.vector;
      const newVector = unitVector(rand, CONTRACT_DIMS);
      const replaced: VectorPoint = {
        id: target.id,
        vector: newVector,
        payload: { ...target.payload, subject: 'contact:zed' },
      };
      await upsert([replaced]);
      await upsert([replaced]);
      expect(await store.count()).toBe(50);
      expect(await store.count({ tier: 'any', includeSuperseded: true })).toBe(50);

      const hit = await store.search({ vector: newVector, k: 1 });
      expect(hit[0]!.id).toBe(target.id);
      expect(hit[0]!.similarity).toBeCloseTo(1, 5);
      // The old vector no longer finds it at similarity 1.
      const old = await store.search({ vector: oldVector, k: 50 });
      const stillThere = old.find((h) => h.id === target.id)!;
      expect(stillThere.similarity).toBeCloseTo(bruteForce([replaced], oldVector, 1)[0]!.similarity, 5);
      expect(stillThere.similarity).toBeLessThan(0.99);
      expect(await store.search({ vector: newVector, k: 5, filter: { subject: 'contact:zed' } })).toEqual([
        expect.objectContaining({ id: target.id }),
      ]);
      await expectMatchesModel(store, [newVector, oldVector], 10);
    });

    it('filters by subject, kinds and an inclusive time window', async () => {
      const rand = prng(16);
      const points = randomPoints(rand, 400);
      await upsert(points);
      const queries = Array.from({ length: 3 }, () => unitVector(rand, CONTRACT_DIMS));
      const edge = points[5]!.payload.occurredAt;
      const filters: VectorFilter[] = [
        { subject: 'contact:ada' },
        { subject: 'project:keel', kinds: ['semantic', 'summary'] },
        { kinds: ['episodic'] },
        { kinds: [] },
        { occurredFrom: T0 + 10 * DAY, occurredTo: T0 + 20 * DAY },
        // Both bounds equal to one point's time: inclusive on both sides.
        { occurredFrom: edge, occurredTo: edge },
        { occurredFrom: T0 + 50 * DAY },
        { occurredTo: T0 + 3 * DAY, kinds: ['artifact', 'episodic'], subject: 'contact:bob' },
      ];
      for (const filter of filters) {
        const expected = model.count(filter);
        expect(expected).toBeGreaterThan(0);
        await expectMatchesModel(store, queries, 7, filter);
      }
      expect(model.count({ occurredFrom: edge, occurredTo: edge })).toBe(
        points.filter((p) => p.payload.occurredAt === edge).length,
      );
      // Conditions nothing matches.
      expect(await store.search({ vector: queries[0]!, k: 5, filter: { subject: 'contact:nobody' } })).toEqual([]);
      expect(await store.count({ subject: 'contact:nobody' })).toBe(0);
      expect(await store.count({ occurredFrom: T0 + 100 * DAY })).toBe(0);
    });

    it('excludes superseded points unless asked, and setPayload ignores unknown ids', async () => {
      const rand = prng(17);
      const points = randomPoints(rand, 120);
      await upsert(points);
      const superseded = points.slice(0, 30).map((p) => p.id);
      await setPayload([...superseded, uuidFrom(rand)], { superseded: true });
      expect(await store.count()).toBe(90);
      expect(await store.count({ includeSuperseded: true })).toBe(120);

      // Query with a superseded point's own vector: it must not come back by default.
      const q = points[0]!.vector;
      const hits = await store.search({ vector: q, k: 20 });
      expect(hits.some((h) => superseded.includes(h.id))).toBe(false);
      expectSameHits(hits, bruteForce(model.points.values(), q, 20));
      const withSuperseded = await store.search({ vector: q, k: 20, filter: { includeSuperseded: true } });
      expect(withSuperseded[0]!.id).toBe(points[0]!.id);
      expectSameHits(withSuperseded, bruteForce(model.points.values(), q, 20, { includeSuperseded: true }));

      // And back.
      await setPayload(superseded.slice(0, 10), { superseded: false });
      await expectMatchesModel(store, [q], 20);
      expect(await store.count()).toBe(100);
    });

    it('excludes the archive tier by default; tier archive and any select it', async () => {
      const rand = prng(18);
      const points = randomPoints(rand, 120);
      await upsert(points);
      const archived = points.slice(40, 80).map((p) => p.id);
      await setPayload(archived, { tier: 'archive' });
      const q = points[40]!.vector;
      expect(await store.count()).toBe(80);
      expect(await store.count({ tier: 'archive' })).toBe(40);
      expect(await store.count({ tier: 'any' })).toBe(120);
      const hot = await store.search({ vector: q, k: 10 });
      expect(hot.some((h) => archived.includes(h.id))).toBe(false);
      await expectMatchesModel(store, [q], 10);
      await expectMatchesModel(store, [q], 10, { tier: 'archive' });
      await expectMatchesModel(store, [q], 10, { tier: 'any' });
      // Combined with superseded.
      await setPayload([archived[0]!], { superseded: true });
      await expectMatchesModel(store, [q], 10, { tier: 'archive' });
      await expectMatchesModel(store, [q], 10, { tier: 'any', includeSuperseded: true });
    });

    it('deletes points; unknown ids are ignored', async () => {
      const rand = prng(19);
      const points = randomPoints(rand, 80);
      await upsert(points);
      const gone = points.slice(0, 25).map((p) => p.id);
      await remove([...gone, uuidFrom(rand)]);
      expect(await store.count({ tier: 'any', includeSuperseded: true })).toBe(55);
      for (const p of points.slice(0, 5)) {
        const hits = await store.search({ vector: p.vector, k: 10 });
        expect(hits.some((h) => gone.includes(h.id))).toBe(false);
      }
      await expectMatchesModel(store, [points[0]!.vector, points[60]!.vector], 10);
      await remove([]);
      expect(await store.count()).toBe(55);
    });

    it('upserts 1000+ points in one call, in batches, and searches them exactly', async () => {
      const rand = prng(20);
      const points = randomPoints(rand, 1300);
      await upsert(points);
      expect(await store.count()).toBe(1300);
      const queries = Array.from({ length: 5 }, () => unitVector(rand, CONTRACT_DIMS));
      await expectMatchesModel(store, queries, 25);
      await expectMatchesModel(store, queries, 5, { kinds: ['summary'], occurredFrom: T0 + 30 * DAY });
    });

    it('rejects vectors of another dimension', async () => {
      const rand = prng(21);
      const [p] = randomPoints(rand, 1, CONTRACT_DIMS + 1);
      await expect(store.upsert([p!])).rejects.toThrow(/dimension/);
      await expect(store.search({ vector: new Float32Array(3), k: 1 })).rejects.toThrow(/dimension/);
    });

    it('keeps its points: a second instance over the same backing finds the same results', async () => {
      const rand = prng(22);
      const points = randomPoints(rand, 200);
      await upsert(points);
      await setPayload(
        points.slice(0, 20).map((p) => p.id),
        { tier: 'archive' },
      );
      await setPayload(
        points.slice(20, 30).map((p) => p.id),
        { superseded: true },
      );
      await remove(points.slice(30, 40).map((p) => p.id));
      const queries = Array.from({ length: 4 }, () => unitVector(rand, CONTRACT_DIMS));

      const second = await subject.reopen();
      await second.init();
      for (const filter of [undefined, { tier: 'any' as const, includeSuperseded: true }, { subject: 'contact:ada' }]) {
        for (const q of queries) {
          const a = await store.search({ vector: q, k: 10, filter });
          const b = await second.search({ vector: q, k: 10, filter });
          expect(b).toEqual(a);
          expectSameHits(b, bruteForce(model.points.values(), q, 10, filter));
        }
        expect(await second.count(filter)).toBe(model.count(filter));
      }
    });
  });
}
