/**
 * Token counting and truncation with OpenAI's real BPE (`o200k_base`, the
 * encoding of the gpt-4o / gpt-4.1 / o-series models Keel defaults to).
 *
 * The ranks ship inside the js-tiktoken package (`js-tiktoken/ranks/*`), so
 * nothing is downloaded at run time. Parsing them takes a couple of seconds
 * and ~100 MB, so the encoder is built on first use and then reused, and
 * processes that never count tokens never pay for it.
 *
 * Why not just `Tiktoken.encode`: its byte-pair merge rescans every pair of a
 * pre-token after each merge, building a string key per pair, so it is
 * quadratic in the length of one pre-token. Text without whitespace is one
 * pre-token (a run of letters, of CJK, of punctuation), and 20,000 such
 * characters took tens of seconds on the event loop. Here the pre-tokens
 * are split with the encoding's own pattern and merged with a heap (the same
 * merge order: lowest rank first, leftmost on ties), so encoding is
 * O(n log n) and gives exactly the library's tokens.
 */
import { Tiktoken, type TiktokenBPE } from 'js-tiktoken/lite';

/** The BPE encoding used by {@link countTokens} and {@link truncateToTokens}. */
export const TOKENIZER_ENCODING = 'o200k_base';

/**
 * Without the rank table (see {@link loadEncoder}), long pre-tokens are
 * encoded by the library in chunks of this many code points: bounded work,
 * at the price of a count that can differ by a token per chunk boundary.
 */
const FALLBACK_CHUNK = 16;

/** The rank table, as js-tiktoken parsed it, and what {@link mergePiece} derives from it. */
interface Tables {
  /** Byte sequence (as `b1,b2,…`) → rank. */
  ranks: Map<string, number>;
  /** The rank of each single byte. */
  byteRanks: Int32Array;
  /** The longest token's length in bytes (128 for o200k_base): no longer pair can merge. */
  maxTokenBytes: number;
}

interface Encoder {
  tiktoken: Tiktoken;
  /** The pre-tokenizer: the encoding's own `pat_str`, with the flags js-tiktoken uses. */
  pattern: RegExp;
  /** Undefined if js-tiktoken's internals changed (see {@link loadEncoder}). */
  tables: Tables | undefined;
}

let encoder: Encoder | undefined;

function loadTables(tiktoken: Tiktoken): Tables | undefined {
  // The encoder's parsed rank table is not part of its typed API; parsing
  // the ranks a second time would cost seconds and another 100 MB. Use it
  // only if it still looks as expected ("hello" is one token, every byte is
  // one); otherwise long pre-tokens go through the public API in chunks.
  const internal = (tiktoken as unknown as { rankMap?: unknown }).rankMap;
  if (!(internal instanceof Map) || typeof internal.get('104,101,108,108,111') !== 'number') return undefined;
  const ranks = internal as Map<string, number>;
  const byteRanks = new Int32Array(256);
  for (let b = 0; b < 256; b++) {
    const rank = ranks.get(String(b));
    if (rank === undefined) return undefined;
    byteRanks[b] = rank;
  }
  let maxTokenBytes = 1;
  for (const key of ranks.keys()) {
    let commas = 0;
    for (let i = key.indexOf(','); i >= 0; i = key.indexOf(',', i + 1)) commas++;
    if (commas + 1 > maxTokenBytes) maxTokenBytes = commas + 1;
  }
  return { ranks, byteRanks, maxTokenBytes };
}

function loadEncoder(): Encoder {
  if (!encoder) {
    // A deferred require keeps the 2 MB rank table out of start-up. It is a
    // subpath export, which `moduleResolution: node` cannot type, hence the cast.
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const bpe = require('js-tiktoken/ranks/o200k_base') as TiktokenBPE;
    const tiktoken = new Tiktoken(bpe);
    encoder = { tiktoken, pattern: new RegExp(bpe.pat_str, 'gu'), tables: loadTables(tiktoken) };
  }
  return encoder;
}

/**
 * Ranks of merged pairs, keyed by the two parts' ranks (every part is a
 * token, so it has one): long runs repeat the same few pairs, and looking a
 * pair up by two numbers avoids building and hashing a byte-string key per
 * candidate. An open-addressing table in typed arrays (1.5 MB), because a
 * `Map` keyed by a number beyond 31 bits allocates on every lookup. A stored
 * -1 records that the pair is not a token. Bounded: cleared when 3/4 full.
 */
const PAIR_SLOTS = 1 << 17;
// Bound once: a global looked up in a hot loop is slow inside a vm context
// (Jest runs every test file in one), three times slower end to end here.
const imul = Math.imul;
const pairLeft = new Int32Array(PAIR_SLOTS).fill(-1);
const pairRight = new Int32Array(PAIR_SLOTS);
const pairMerged = new Int32Array(PAIR_SLOTS);
let pairsStored = 0;

/** The cached rank of the merge of tokens `a` and `b`; -1 if not a token, -2 if not cached. */
function cachedPair(a: number, b: number, store?: number): number {
  let slot = (imul(a, 0x9e3779b1) ^ imul(b, 0x85ebca6b)) >>> 15; // 17 bits
  while (pairLeft[slot] !== -1) {
    if (pairLeft[slot] === a && pairRight[slot] === b) return pairMerged[slot];
    slot = (slot + 1) & (PAIR_SLOTS - 1);
  }
  if (store === undefined) return -2;
  if (pairsStored >= (PAIR_SLOTS * 3) / 4) {
    pairLeft.fill(-1);
    pairsStored = 0;
    return cachedPair(a, b, store);
  }
  pairLeft[slot] = a;
  pairRight[slot] = b;
  pairMerged[slot] = store;
  pairsStored++;
  return store;
}

/**
 * Working arrays for {@link mergePiece}, reused across calls (encoding runs
 * one piece at a time on one thread) so that a text of many pieces does not
 * allocate seven arrays per piece. Grown to the longest piece seen.
 */
let scratch: ReturnType<typeof allocScratch> | undefined;

function allocScratch(n: number) {
  return {
    n,
    rankOf: new Int32Array(n), // the rank of the part that starts here (every part is a token)
    next: new Int32Array(n),
    prev: new Int32Array(n),
    end: new Int32Array(n), // one past the last byte of the part that starts here
    alive: new Uint8Array(n),
    hOrder: new Float64Array(3 * n),
    hEnd: new Int32Array(3 * n),
  };
}

function scratchFor(n: number) {
  // Long-lived but bounded: a 100,000-byte piece keeps ~4 MB until a longer one comes.
  if (!scratch || scratch.n < n) scratch = allocScratch(Math.max(n, 256));
  return scratch;
}

/**
 * Byte-pair merge of one pre-token, equal to the library's
 * `bytePairMerge` (merge the adjacent pair with the lowest rank, the leftmost
 * on ties, until no pair has a rank) but with a binary heap of candidate
 * pairs and a linked list of parts: O(n log n) instead of quadratic.
 */
function mergePiece(bytes: Uint8Array, enc: Tables, out: number[]): void {
  const { ranks, byteRanks, maxTokenBytes } = enc;
  const n = bytes.length;
  const { rankOf, next, prev, end, alive, hOrder, hEnd } = scratchFor(n);
  for (let i = 0; i < n; i++) {
    rankOf[i] = byteRanks[bytes[i]];
    alive[i] = 1;
    next[i] = i + 1 < n ? i + 1 : -1;
    prev[i] = i - 1;
    end[i] = i + 1;
  }
  const pairRank = (left: number, right: number): number => {
    // Parts are contiguous, so the pair is bytes[left, end[right]).
    if (end[right] - left > maxTokenBytes || rankOf[left] < 0 || rankOf[right] < 0) return -1;
    const rank = cachedPair(rankOf[left], rankOf[right]);
    if (rank !== -2) return rank;
    return cachedPair(rankOf[left], rankOf[right], ranks.get(bytes.subarray(left, end[right]).join(',')) ?? -1);
  };

  // A binary heap of candidate pairs. Its order key packs (rank, left part)
  // into one number, so the leftmost pair wins ties; `hEnd` holds the end of
  // the right part when pushed. An entry whose parts have merged since is
  // stale and skipped on pop. At most n - 1 entries up front and two per
  // merge: 3n bounds the heap.
  let size = 0;
  const add = (left: number): boolean => {
    const right = left < 0 ? -1 : next[left];
    if (right < 0) return false;
    const rank = pairRank(left, right);
    if (rank < 0) return false;
    hOrder[size] = rank * 2 ** 31 + left;
    hEnd[size++] = end[right];
    return true;
  };
  // Sifts move a hole rather than swapping, halving the writes.
  const push = (left: number) => {
    if (!add(left)) return;
    let i = size - 1;
    const order = hOrder[i];
    const pairEnd = hEnd[i];
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (hOrder[parent] <= order) break;
      hOrder[i] = hOrder[parent];
      hEnd[i] = hEnd[parent];
      i = parent;
    }
    hOrder[i] = order;
    hEnd[i] = pairEnd;
  };
  const siftDown = (from: number) => {
    let i = from;
    const order = hOrder[i];
    const pairEnd = hEnd[i];
    for (;;) {
      let child = 2 * i + 1;
      if (child >= size) break;
      if (child + 1 < size && hOrder[child + 1] < hOrder[child]) child++;
      if (hOrder[child] >= order) break;
      hOrder[i] = hOrder[child];
      hEnd[i] = hEnd[child];
      i = child;
    }
    hOrder[i] = order;
    hEnd[i] = pairEnd;
  };

  for (let i = 0; i + 1 < n; i++) add(i);
  for (let i = (size >> 1) - 1; i >= 0; i--) siftDown(i);
  while (size > 0) {
    const left = hOrder[0] % 2 ** 31;
    const rank = (hOrder[0] - left) / 2 ** 31;
    const pairEnd = hEnd[0];
    hOrder[0] = hOrder[--size];
    hEnd[0] = hEnd[size];
    siftDown(0);
    const right = next[left];
    if (!alive[left] || right < 0 || end[right] !== pairEnd) continue;
    rankOf[left] = rank;
    end[left] = end[right];
    next[left] = next[right];
    if (next[left] >= 0) prev[next[left]] = left;
    alive[right] = 0;
    push(prev[left]);
    push(left);
  }
  for (let i = 0; i >= 0; i = next[i]) if (rankOf[i] >= 0) out.push(rankOf[i]);
}

/**
 * The `o200k_base` token ids of `text`, exactly as js-tiktoken's `encode`
 * gives them, in O(n log n). Encodes text as plain text: strings that look
 * like special tokens (`<|endoftext|>`) are tokenised as ordinary characters
 * rather than rejected, since the text comes from users, emails and documents.
 */
export function encodeTokens(text: string): number[] {
  const enc = loadEncoder();
  return enc.tables ? encodeWithTables(text, enc.pattern, enc.tables) : encodeInChunks(text, enc);
}

/** The rank-table key (`b1,b2,…`) of an ASCII string; undefined if it has other characters. */
function asciiKey(piece: string): string | undefined {
  let key = '';
  for (let i = 0; i < piece.length; i++) {
    const c = piece.charCodeAt(i);
    if (c >= 0x80) return undefined;
    key = i === 0 ? `${c}` : `${key},${c}`;
  }
  return key;
}

function encodeWithTables(text: string, pattern: RegExp, tables: Tables): number[] {
  const utf8 = new TextEncoder();
  const out: number[] = [];
  for (const match of text.matchAll(pattern)) {
    const piece = match[0];
    // Most pieces are short ASCII words and one token: look them up without
    // allocating their UTF-8 bytes.
    const key = piece.length <= tables.maxTokenBytes ? asciiKey(piece) : undefined;
    const whole = key === undefined ? undefined : tables.ranks.get(key);
    if (whole !== undefined) {
      out.push(whole);
      continue;
    }
    const bytes = utf8.encode(piece);
    const found =
      key === undefined && bytes.length <= tables.maxTokenBytes ? tables.ranks.get(bytes.join(',')) : undefined;
    if (found !== undefined) out.push(found);
    else mergePiece(bytes, tables, out);
  }
  return out;
}

/**
 * Without the rank table: the library's own encoder, in one call for runs of
 * short pre-tokens (its per-call set-up costs more than their merge) and in
 * chunks of {@link FALLBACK_CHUNK} code points for long ones.
 */
function encodeInChunks(text: string, { tiktoken, pattern }: Encoder): number[] {
  const out: number[] = [];
  let shortFrom = 0;
  const flushShort = (to: number) => {
    if (to > shortFrom) for (const t of tiktoken.encode(text.slice(shortFrom, to), [], [])) out.push(t);
  };
  for (const match of text.matchAll(pattern)) {
    const points = Array.from(match[0]);
    if (points.length <= FALLBACK_CHUNK) continue;
    flushShort(match.index);
    shortFrom = match.index + match[0].length;
    for (let i = 0; i < points.length; i += FALLBACK_CHUNK)
      for (const t of tiktoken.encode(points.slice(i, i + FALLBACK_CHUNK).join(''), [], [])) out.push(t);
  }
  flushShort(text.length);
  return out;
}

/** The number of `o200k_base` tokens in `text` (0 for the empty string). */
export function countTokens(text: string): number {
  return text.length === 0 ? 0 : encodeTokens(text).length;
}

/**
 * The longest prefix of `text` that fits in `maxTokens` tokens (cut on a
 * token boundary); `text` itself when it already fits, '' when `maxTokens <= 0`.
 * The result is always a prefix of `text` (never a broken character) and
 * `countTokens(result) <= maxTokens`.
 */
export function truncateToTokens(text: string, maxTokens: number): string {
  if (maxTokens <= 0 || text.length === 0) return '';
  const tokens = encodeTokens(text);
  if (tokens.length <= maxTokens) return text;

  const { tiktoken } = loadEncoder();
  for (let k = Math.floor(maxTokens); k > 0; k--) {
    const candidate = tiktoken.decode(tokens.slice(0, k));
    // A token may end in the middle of a multi-byte character; the decoder
    // then yields U+FFFD, which is not a prefix of the input: cut one token
    // earlier. Re-encoding a cut chunk can, rarely, take more tokens than
    // the slice it came from, so the budget is checked again too.
    if (text.startsWith(candidate) && encodeTokens(candidate).length <= maxTokens) return candidate;
  }
  return '';
}
