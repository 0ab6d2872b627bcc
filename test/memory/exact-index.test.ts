/**
 * The in-memory exact index returns what brute force returns: checked after
 * random sequences of upserts, in-place replacements, payload changes and
 * swap-removing deletes, across growth of its WebAssembly memory.
 */
import { ExactIndex, paddedDims } from '../../memory/exact-index';
import { MEMORY_KINDS, type VectorFilter, type VectorPoint } from '../../memory/types';
import { bruteForce, expectSameHits, passes, prng, randomPoints, unitVector, uuidFrom } from './vector-store.contract';

const FILTERS: (VectorFilter | undefined)[] = [
  undefined,
  { tier: 'any', includeSuperseded: true },
  { tier: 'archive' },
  { subject: 'contact:ada' },
  { kinds: ['semantic', 'artifact'], includeSuperseded: true },
  { occurredFrom: Date.UTC(2025, 0, 15), occurredTo: Date.UTC(2025, 1, 1), tier: 'any' },
];

function expectIndexMatches(index: ExactIndex, model: Map<string, VectorPoint>, queries: Float32Array[], k: number) {
  for (const filter of FILTERS) {
    let expectedCount = 0;
    for (const p of model.values()) if (passes(p.payload, filter)) expectedCount++;
    expect(index.count(filter)).toBe(expectedCount);
    for (const q of queries) expectSameHits(index.search(q, k, filter), bruteForce(model.values(), q, k, filter));
  }
}

describe('ExactIndex', () => {
  it.each([16, 37, 384])(
    'equals brute force through random upserts, replacements, payload changes and deletes (%i dims)',
    (dims) => {
      const rand = prng(dims);
      // Starts small so the matrix grows (and is re-viewed) several times.
      const index = new ExactIndex(dims, { initialCapacity: 1 });
      const model = new Map<string, VectorPoint>();
      const queries = Array.from({ length: 3 }, () => unitVector(rand, dims));
      for (let round = 0; round < 6; round++) {
        for (const p of randomPoints(rand, 150, dims)) {
          index.upsert(p.id, p.vector, p.payload);
          model.set(p.id, p);
        }
        const ids = [...model.keys()];
        // Replace some vectors in place.
        for (let i = 0; i < 20; i++) {
          const id = ids[Math.floor(rand() * ids.length)]!;
          const p = { ...model.get(id)!, vector: unitVector(rand, dims) };
          index.upsert(id, p.vector, p.payload);
          model.set(id, p);
        }
        // Archive and supersede some.
        for (let i = 0; i < 25; i++) {
          const id = ids[Math.floor(rand() * ids.length)]!;
          const change = rand() < 0.5 ? { tier: 'archive' as const } : { superseded: true };
          expect(index.setPayload(id, change)).toBe(true);
          model.set(id, { ...model.get(id)!, payload: { ...model.get(id)!.payload, ...change } });
        }
        // Delete some, including the last row and rows in the middle.
        for (let i = 0; i < 40; i++) {
          const live = index.ids();
          const id = i === 0 ? live[live.length - 1]! : live[Math.floor(rand() * live.length)]!;
          expect(index.delete(id)).toBe(true);
          model.delete(id);
        }
        expect(index.size).toBe(model.size);
        expectIndexMatches(index, model, queries, 10);
      }
      for (const [id, p] of model) expect(index.getPayload(id)).toEqual(p.payload);
      expect(index.stride).toBe(paddedDims(dims));
    },
  );

  it('orders equal scores by id and keeps the k smallest ids at the boundary', () => {
    const rand = prng(5);
    const index = new ExactIndex(24);
    const v = unitVector(rand, 24);
    const ids = Array.from({ length: 9 }, () => uuidFrom(rand));
    const payload = {
      kind: 'semantic' as const,
      subject: null,
      occurredAt: 0,
      tier: 'hot' as const,
      superseded: false,
    };
    for (const id of [...ids].reverse()) index.upsert(id, v, payload);
    const sorted = [...ids].sort();
    expect(index.search(v, 4).map((h) => h.id)).toEqual(sorted.slice(0, 4));
    expect(index.search(v, 20).map((h) => h.id)).toEqual(sorted);
  });

  it('normalises vectors, scores zero vectors 0, and clamps similarity to [-1, 1]', () => {
    const index = new ExactIndex(3);
    const payload = {
      kind: 'semantic' as const,
      subject: null,
      occurredAt: 0,
      tier: 'hot' as const,
      superseded: false,
    };
    index.upsert('long', Float32Array.from([10, 0, 0]), payload);
    index.upsert('opposite', Float32Array.from([-1, 0, 0]), payload);
    index.upsert('zero', new Float32Array(3), payload);
    const hits = index.search(Float32Array.from([3, 0, 0]), 3);
    expect(hits).toEqual([
      { id: 'long', similarity: 1 },
      { id: 'zero', similarity: 0 },
      { id: 'opposite', similarity: -1 },
    ]);
  });

  it('returns nothing for k = 0, an empty index or a filter value no row has', () => {
    const index = new ExactIndex(16);
    const q = unitVector(prng(3), 16);
    expect(index.search(q, 5)).toEqual([]);
    const [p] = randomPoints(prng(4), 1, 16);
    index.upsert(p!.id, p!.vector, p!.payload);
    expect(index.search(q, 0)).toEqual([]);
    expect(index.search(q, 5, { subject: 'never-seen' })).toEqual([]);
    const otherKinds = MEMORY_KINDS.filter((k) => k !== p!.payload.kind);
    expect(index.search(q, 5, { kinds: otherKinds })).toEqual([]);
    expect(index.search(q, 5, { kinds: [p!.payload.kind] })).toHaveLength(1);
    expect(index.count({ tier: 'archive' })).toBe(0);
    expect(index.search(q, 5)).toHaveLength(1);
  });

  it('rejects wrong dimensions, NaN components and a bad k', () => {
    const index = new ExactIndex(16);
    const payload = {
      kind: 'semantic' as const,
      subject: null,
      occurredAt: 0,
      tier: 'hot' as const,
      superseded: false,
    };
    expect(() => index.upsert('a', new Float32Array(15), payload)).toThrow(/15 dimensions, the index has 16/);
    expect(() => index.upsert('a', new Float32Array(16).fill(Number.NaN), payload)).toThrow(/NaN/);
    expect(index.size).toBe(0);
    expect(() => index.search(new Float32Array(16), -1)).toThrow(/k must be/);
    expect(() => index.search(new Float32Array(17), 1)).toThrow(/dimensions/);
    expect(index.setPayload('missing', { tier: 'archive' })).toBe(false);
    expect(index.delete('missing')).toBe(false);
  });
});
