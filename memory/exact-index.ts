import type { MemoryKind, MemoryTier, PointPayload, VectorFilter, VectorHit } from './types';
import { DOT_WASM_BASE64 } from './wasm/dot-wasm';

/*
 * An exact (brute-force) nearest-neighbour index held in one process.
 *
 * Every row's vector lives in a growable WebAssembly.Memory, row-major, so
 * the SIMD kernel of wasm/dot.wat can score all rows in one call (~5 ms for
 * 100k × 384 on one core). Filtering and top-k selection then run in plain
 * JS over per-row typed-array columns. There is no approximation anywhere:
 * the result is the brute-force answer (float32 arithmetic), which is what
 * makes the embedded store a drop-in for Qdrant without recall caveats.
 *
 * Memory layout (byte offsets into the wasm memory):
 *   [0, matrixOffset)                    the query, zero-padded to `stride`
 *   [matrixOffset, + capacity·stride·4)  the matrix, one row per point
 *   [scoresOffset, + capacity·4)         scratch: the kernel's output
 * The scratch region sits after the matrix so growing the matrix only moves
 * scratch (whose contents need not survive), never a row.
 */

const WASM_PAGE = 65_536;
// wasm32 addresses at most 4 GiB; V8 refuses to grow past this many pages.
const MAX_PAGES = 65_536;
const MIN_CAPACITY = 64;

type ScoresFn = (matrix: number, rows: number, dims: number, query: number, out: number) => void;

/** The part of a WebAssembly.Memory the index uses. */
export interface WasmMemory {
  readonly buffer: ArrayBuffer;
  grow(deltaPages: number): number;
}

// tsconfig's lib (ES2022, no DOM) does not declare WebAssembly, although
// Node has it; this is the slice of its API used here.
interface WasmApi {
  Memory: new (descriptor: { initial: number; maximum?: number }) => WasmMemory;
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: object) => { exports: Record<string, unknown> };
}
const wasm = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;

let kernelModule: object | undefined;

/** The compiled kernel, compiled once per process; instantiation per index is cheap. */
function dotKernelModule(): object {
  kernelModule ??= new wasm.Module(Buffer.from(DOT_WASM_BASE64, 'base64'));
  return kernelModule;
}

/** A new WebAssembly.Memory of `initialPages` 64 KiB pages, growable up to the 4 GiB wasm32 limit. */
export function createWasmMemory(initialPages: number): WasmMemory {
  return new wasm.Memory({ initial: initialPages });
}

/** The row length the kernel works on: `dims` rounded up to a multiple of 16 (the padding is zeros). */
export function paddedDims(dims: number): number {
  return Math.ceil(dims / 16) * 16;
}

/**
 * Instantiates the dot kernel over `memory` and returns `scores(matrix, rows, dims, query, out)`
 * (byte offsets; `dims` a positive multiple of 16). Exported for the kernel's own tests.
 */
export function instantiateDotKernel(memory: WasmMemory): ScoresFn {
  const instance = new wasm.Instance(dotKernelModule(), { env: { memory } });
  return instance.exports.scores as ScoresFn;
}

/** Small string ↔ code table, so filter columns are integers. Codes are never reused or freed. */
class Interner {
  private readonly codes = new Map<string, number>();
  private readonly values: string[] = [];

  constructor(private readonly limit: number) {}

  intern(value: string): number {
    let code = this.codes.get(value);
    if (code === undefined) {
      if (this.values.length >= this.limit) throw new RangeError(`more than ${this.limit} distinct values interned`);
      code = this.values.length;
      this.values.push(value);
      this.codes.set(value, code);
    }
    return code;
  }

  /** The code of `value`, or -1 when no row ever had it (so a filter on it matches nothing). */
  lookup(value: string): number {
    return this.codes.get(value) ?? -1;
  }

  value(code: number): string {
    const v = this.values[code];
    if (v === undefined) throw new RangeError(`unknown code ${code}`);
    return v;
  }

  get size(): number {
    return this.values.length;
  }
}

/** A VectorFilter resolved to column codes; `null` from compileFilter means "matches nothing". */
interface CompiledFilter {
  /** Indexed by kind code: 1 = allowed. Null = any kind. */
  kinds: Uint8Array | null;
  /** Subject code, or -1 for no subject condition. */
  subject: number;
  from: number;
  to: number;
  /** Tier code, or -1 for any tier. */
  tier: number;
  includeSuperseded: boolean;
}

/**
 * In-memory exact vector index with payload columns for VectorFilter.
 * Vectors are normalised on the way in (and so is every query), so a score
 * is the cosine similarity, as in a Qdrant collection with Cosine distance.
 * Not thread-safe by design: one index per process, used from one event loop.
 */
export class ExactIndex {
  /** Vector length callers use. */
  readonly dims: number;
  /** Row length in the matrix (dims padded to a multiple of 16). */
  readonly stride: number;

  private readonly memory: WasmMemory;
  private readonly scoresFn: ScoresFn;
  private readonly matrixOffset: number;
  private capacity = 0;
  private rows = 0;
  private f32!: Float32Array;

  private rowIds: string[] = [];
  private readonly rowOf = new Map<string, number>();
  private kindCol = new Uint16Array(0);
  private subjectCol = new Int32Array(0);
  private occurredCol = new Float64Array(0);
  private tierCol = new Uint8Array(0);
  private supersededCol = new Uint8Array(0);
  private readonly kinds = new Interner(0xffff);
  private readonly subjects = new Interner(0x7fffffff);
  private readonly tiers = new Interner(0xff);

  constructor(dims: number, opts: { initialCapacity?: number } = {}) {
    if (!Number.isInteger(dims) || dims <= 0) throw new RangeError(`dims must be a positive integer, got ${dims}`);
    this.dims = dims;
    this.stride = paddedDims(dims);
    // 64-byte aligned rows: the kernel reads 64 bytes per step.
    this.matrixOffset = Math.ceil((this.stride * 4) / 64) * 64;
    this.memory = createWasmMemory(1);
    this.scoresFn = instantiateDotKernel(this.memory);
    this.refreshViews();
    this.ensureCapacity(Math.max(MIN_CAPACITY, opts.initialCapacity ?? 0));
  }

  /** Number of points. */
  get size(): number {
    return this.rows;
  }

  /** Bytes of WebAssembly memory in use (matrix, query and scratch). */
  get memoryBytes(): number {
    return this.memory.buffer.byteLength;
  }

  has(id: string): boolean {
    return this.rowOf.has(id);
  }

  /** Every id in the index, in row order (which changes on delete). */
  ids(): string[] {
    return this.rowIds.slice();
  }

  /** The payload of `id` as stored (for inspection and tests), or undefined. */
  getPayload(id: string): PointPayload | undefined {
    const r = this.rowOf.get(id);
    if (r === undefined) return undefined;
    const subject = this.subjectCol[r];
    return {
      kind: this.kinds.value(this.kindCol[r]) as MemoryKind,
      subject: subject < 0 ? null : this.subjects.value(subject),
      occurredAt: this.occurredCol[r],
      tier: this.tiers.value(this.tierCol[r]) as MemoryTier,
      superseded: this.supersededCol[r] === 1,
    };
  }

  /** Inserts `id` or replaces its vector and payload in place (no duplicate rows). */
  upsert(id: string, vector: Float32Array, payload: PointPayload): void {
    this.checkVector(vector, `vector of ${id}`);
    // Everything that can throw runs before anything changes, so a rejected point leaves no half-made row.
    const scale = this.inverseNorm(vector);
    const kind = this.kinds.intern(payload.kind);
    const subject = payload.subject === null ? -1 : this.subjects.intern(payload.subject);
    const tier = this.tiers.intern(payload.tier);
    let r = this.rowOf.get(id);
    if (r === undefined) {
      this.ensureCapacity(this.rows + 1);
      r = this.rows++;
      this.rowIds.push(id);
      this.rowOf.set(id, r);
    }
    this.writeScaled(this.matrixOffset / 4 + r * this.stride, vector, scale);
    this.kindCol[r] = kind;
    this.subjectCol[r] = subject;
    this.occurredCol[r] = payload.occurredAt;
    this.tierCol[r] = tier;
    this.supersededCol[r] = payload.superseded ? 1 : 0;
  }

  /** Changes the given payload fields of `id`; false if `id` is not in the index. */
  setPayload(id: string, payload: Partial<PointPayload>): boolean {
    const r = this.rowOf.get(id);
    if (r === undefined) return false;
    if (payload.kind !== undefined) this.kindCol[r] = this.kinds.intern(payload.kind);
    if (payload.subject !== undefined) {
      this.subjectCol[r] = payload.subject === null ? -1 : this.subjects.intern(payload.subject);
    }
    if (payload.occurredAt !== undefined) this.occurredCol[r] = payload.occurredAt;
    if (payload.tier !== undefined) this.tierCol[r] = this.tiers.intern(payload.tier);
    if (payload.superseded !== undefined) this.supersededCol[r] = payload.superseded ? 1 : 0;
    return true;
  }

  /** Removes `id` by moving the last row into its slot (O(dims)); false if absent. */
  delete(id: string): boolean {
    const r = this.rowOf.get(id);
    if (r === undefined) return false;
    const last = this.rows - 1;
    if (r !== last) {
      const base = this.matrixOffset / 4;
      this.f32.copyWithin(base + r * this.stride, base + last * this.stride, base + (last + 1) * this.stride);
      this.kindCol[r] = this.kindCol[last];
      this.subjectCol[r] = this.subjectCol[last];
      this.occurredCol[r] = this.occurredCol[last];
      this.tierCol[r] = this.tierCol[last];
      this.supersededCol[r] = this.supersededCol[last];
      const moved = this.rowIds[last];
      this.rowIds[r] = moved;
      this.rowOf.set(moved, r);
    }
    this.rowIds.pop();
    this.rowOf.delete(id);
    this.rows = last;
    return true;
  }

  /** Drops every point (keeps the memory for reuse). */
  clear(): void {
    this.rows = 0;
    this.rowIds = [];
    this.rowOf.clear();
  }

  /**
   * The `k` rows most similar to `vector` that pass `filter` (defaults: hot
   * tier only, superseded excluded), most similar first, ties by ascending id.
   */
  search(vector: Float32Array, k: number, filter?: VectorFilter): VectorHit[] {
    if (!Number.isInteger(k) || k < 0) throw new RangeError(`k must be a non-negative integer, got ${k}`);
    this.checkVector(vector, 'query vector');
    const f = this.compileFilter(filter);
    const n = this.rows;
    if (f === null || k === 0 || n === 0) return [];

    this.writeScaled(0, vector, this.inverseNorm(vector));
    const scoresOffset = this.scoresOffset();
    this.scoresFn(this.matrixOffset, n, this.stride, 0, scoresOffset);
    const scores = this.f32.subarray(scoresOffset / 4, scoresOffset / 4 + n);

    // Bounded min-heap of the best rows seen so far; its root is the worst
    // of them, so most rows are rejected by a single comparison before the
    // (slower) filter is even evaluated.
    const cap = Math.min(k, n);
    const heapRow = new Int32Array(cap);
    const heapScore = new Float64Array(cap);
    const ids = this.rowIds;
    let size = 0;
    // a ranks below b: lower score, or equal score and larger id.
    const worse = (sa: number, ra: number, sb: number, rb: number): boolean =>
      sa < sb || (sa === sb && ids[ra] > ids[rb]);

    const siftDown = (i: number): void => {
      const s = heapScore[i];
      const row = heapRow[i];
      for (;;) {
        const l = 2 * i + 1;
        if (l >= size) break;
        const rr = l + 1;
        let c = l;
        if (rr < size && worse(heapScore[rr], heapRow[rr], heapScore[l], heapRow[l])) c = rr;
        if (!worse(heapScore[c], heapRow[c], s, row)) break;
        heapScore[i] = heapScore[c];
        heapRow[i] = heapRow[c];
        i = c;
      }
      heapScore[i] = s;
      heapRow[i] = row;
    };

    for (let r = 0; r < n; r++) {
      const s = scores[r];
      if (size === cap) {
        const rootScore = heapScore[0];
        if (s < rootScore || (s === rootScore && ids[r] > ids[heapRow[0]])) continue;
      }
      if (!this.passes(r, f)) continue;
      if (size < cap) {
        // Sift up.
        let i = size++;
        while (i > 0) {
          const p = (i - 1) >> 1;
          if (!worse(s, r, heapScore[p], heapRow[p])) break;
          heapScore[i] = heapScore[p];
          heapRow[i] = heapRow[p];
          i = p;
        }
        heapScore[i] = s;
        heapRow[i] = r;
      } else {
        heapScore[0] = s;
        heapRow[0] = r;
        siftDown(0);
      }
    }

    const hits: { row: number; score: number }[] = [];
    for (let i = 0; i < size; i++) hits.push({ row: heapRow[i], score: heapScore[i] });
    hits.sort((a, b) => b.score - a.score || (ids[a.row] < ids[b.row] ? -1 : ids[a.row] > ids[b.row] ? 1 : 0));
    // Float32 rounding can overshoot ±1 by an ulp for (near-)identical vectors.
    return hits.map((h) => ({ id: ids[h.row], similarity: Math.max(-1, Math.min(1, h.score)) }));
  }

  /** Number of points passing `filter` (same defaults as search). */
  count(filter?: VectorFilter): number {
    const f = this.compileFilter(filter);
    if (f === null) return 0;
    let c = 0;
    for (let r = 0; r < this.rows; r++) if (this.passes(r, f)) c++;
    return c;
  }

  private passes(r: number, f: CompiledFilter): boolean {
    if (f.kinds !== null && f.kinds[this.kindCol[r]] !== 1) return false;
    if (f.subject >= 0 && this.subjectCol[r] !== f.subject) return false;
    const t = this.occurredCol[r];
    if (t < f.from || t > f.to) return false;
    if (f.tier >= 0 && this.tierCol[r] !== f.tier) return false;
    if (!f.includeSuperseded && this.supersededCol[r] === 1) return false;
    return true;
  }

  /** Resolves strings to codes once per query; null when no row can match. */
  private compileFilter(filter: VectorFilter = {}): CompiledFilter | null {
    let kinds: Uint8Array | null = null;
    // An empty `kinds` list means "no kind condition", as in the Qdrant adapter.
    if (filter.kinds !== undefined && filter.kinds.length > 0) {
      kinds = new Uint8Array(Math.max(1, this.kinds.size));
      let any = false;
      for (const k of filter.kinds) {
        const code = this.kinds.lookup(k);
        if (code >= 0) {
          kinds[code] = 1;
          any = true;
        }
      }
      if (!any) return null;
    }
    let subject = -1;
    if (filter.subject !== undefined) {
      subject = this.subjects.lookup(filter.subject);
      if (subject < 0) return null;
    }
    let tier = -1;
    const wantTier = filter.tier ?? 'hot';
    if (wantTier !== 'any') {
      tier = this.tiers.lookup(wantTier);
      if (tier < 0) return null;
    }
    return {
      kinds,
      subject,
      from: filter.occurredFrom ?? -Infinity,
      to: filter.occurredTo ?? Infinity,
      tier,
      includeSuperseded: filter.includeSuperseded ?? false,
    };
  }

  private checkVector(vector: Float32Array, what: string): void {
    if (vector.length !== this.dims) {
      throw new RangeError(`${what} has ${vector.length} dimensions, the index has ${this.dims}`);
    }
  }

  /** 1/‖vector‖ (0 for a zero vector, which then scores 0 against everything, as in Qdrant); rejects NaN/Infinity. */
  private inverseNorm(vector: Float32Array): number {
    let norm = 0;
    for (let d = 0; d < this.dims; d++) norm += vector[d] * vector[d];
    if (!Number.isFinite(norm)) throw new RangeError('vector has a NaN or infinite component');
    return norm > 0 ? 1 / Math.sqrt(norm) : 0;
  }

  /** Writes vector·scale at float index `at`, zero-padded to the stride. */
  private writeScaled(at: number, vector: Float32Array, scale: number): void {
    const f = this.f32;
    for (let d = 0; d < this.dims; d++) f[at + d] = vector[d] * scale;
    f.fill(0, at + this.dims, at + this.stride);
  }

  private scoresOffset(): number {
    return this.matrixOffset + this.capacity * this.stride * 4;
  }

  private refreshViews(): void {
    // Growing a WebAssembly.Memory detaches the old ArrayBuffer.
    this.f32 = new Float32Array(this.memory.buffer);
  }

  private ensureCapacity(min: number): void {
    if (min <= this.capacity) return;
    const capacity = Math.max(min, this.capacity * 2, MIN_CAPACITY);
    const bytes = this.matrixOffset + capacity * this.stride * 4 + capacity * 4;
    const pages = Math.ceil(bytes / WASM_PAGE);
    if (pages > MAX_PAGES) {
      throw new RangeError(`index of ${capacity} × ${this.dims} vectors exceeds the 4 GiB WebAssembly memory limit`);
    }
    const have = this.memory.buffer.byteLength / WASM_PAGE;
    if (pages > have) this.memory.grow(pages - have);
    this.refreshViews();

    const n = this.rows;
    const kindCol = new Uint16Array(capacity);
    kindCol.set(this.kindCol.subarray(0, n));
    this.kindCol = kindCol;
    const subjectCol = new Int32Array(capacity);
    subjectCol.set(this.subjectCol.subarray(0, n));
    this.subjectCol = subjectCol;
    const occurredCol = new Float64Array(capacity);
    occurredCol.set(this.occurredCol.subarray(0, n));
    this.occurredCol = occurredCol;
    const tierCol = new Uint8Array(capacity);
    tierCol.set(this.tierCol.subarray(0, n));
    this.tierCol = tierCol;
    const supersededCol = new Uint8Array(capacity);
    supersededCol.set(this.supersededCol.subarray(0, n));
    this.supersededCol = supersededCol;
    this.capacity = capacity;
  }
}
