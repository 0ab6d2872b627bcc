/**
 * Embedders: text → unit-length vectors.
 *
 * - {@link createHashingEmbedder}: offline, deterministic, lexical (feature
 *   hashing). The default when no OpenAI-compatible endpoint is configured,
 *   so memory works on a laptop with no network; it says it is lexical.
 * - {@link createOpenAIEmbedder}: the OpenAI embeddings API (or any
 *   OpenAI-compatible server) through the official `openai` client.
 * - {@link createCachedEmbedder}: a PostgreSQL cache (embedding_cache) in
 *   front of either, so the same text is never embedded twice for a model.
 */
import { createHash } from 'node:crypto';
import OpenAI from 'openai';
import type { Config } from '../config/index';
import type { Db } from '../db/prisma';
import type { Embedder, SizedEmbedder } from './types';
import { decodeFloat32LE, encodeFloat32LE } from './vectors';

// ---------------------------------------------------------------------------
// Hashing embedder
// ---------------------------------------------------------------------------

/** Options for {@link createHashingEmbedder}. */
export interface HashingEmbedderOptions {
  /** Vector size (default 384). Part of the model name, so changing it never mixes vector spaces. */
  dims?: number;
}

/** Version of the feature scheme below; bump it when features, weights or hashing change, so caches miss. */
const HASHING_VERSION = 'v1';

/**
 * Relative weights of the three feature families. Words carry the meaning;
 * bigrams reward shared phrases; character n-grams give credit for shared
 * stems ("overdue"/"overdues", "pay"/"payment") without letting long words,
 * which have many n-grams, drown out the words themselves.
 */
const WEIGHT_WORD = 1;
const WEIGHT_BIGRAM = 0.5;
const WEIGHT_CHARGRAM = 0.25;
/** Stopwords still count a little, so a text made only of them is not empty. */
const WEIGHT_STOPWORD = 0.1;
const CHARGRAM_MIN = 3;
const CHARGRAM_MAX = 5;

/**
 * Function words that every English text shares: giving them full weight
 * would make unrelated sentences look similar.
 */
const STOPWORDS = new Set(
  (
    'a an and are as at be been but by can could did do does for from had has have he her him his how i if in into ' +
    'is it its me my no not of on or our out over s she so t than that the their them then there these they this ' +
    'those to too up us was we were what when where which while who whom why will with would you your'
  ).split(' '),
);

/**
 * Lower-cases, folds compatibility forms and strips diacritics, then splits
 * into runs of letters and digits (so "Café-Bar's" → ["cafe", "bar", "s"]).
 */
function words(text: string): string[] {
  const folded = text
    .normalize('NFKD')
    .replace(/\p{M}+/gu, '')
    .toLowerCase();
  return folded.match(/[\p{L}\p{N}]+/gu) ?? [];
}

/**
 * Harman's "S" stemmer: undoes regular English plurals only. Conservative on
 * purpose (it never merges unrelated words); character n-grams cover the
 * rest of morphology.
 */
function sStem(word: string): string {
  if (word.length <= 3) return word;
  if (word.endsWith('ies') && !word.endsWith('eies') && !word.endsWith('aies')) return word.slice(0, -3) + 'y';
  if (word.endsWith('es') && !word.endsWith('aes') && !word.endsWith('ees') && !word.endsWith('oes')) {
    return word.slice(0, -1);
  }
  if (word.endsWith('s') && !word.endsWith('us') && !word.endsWith('ss')) return word.slice(0, -1);
  return word;
}

/**
 * FNV-1a (32-bit) over the string's UTF-16 code units, each fed as two
 * bytes, followed by murmur3's fmix32 finaliser so every output bit depends
 * on every input bit (plain FNV's low bits, which `% dims` uses, are weak).
 * Written out rather than imported: the vectors must never change because a
 * dependency did.
 */
function hash32(s: string, seed: number): number {
  let h = (0x811c9dc5 ^ seed) >>> 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    h = Math.imul(h ^ (c & 0xff), 0x01000193);
    h = Math.imul(h ^ (c >>> 8), 0x01000193);
  }
  return fmix32(h);
}

function fmix32(x: number): number {
  let h = x;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

const SEED_INDEX = 0;
const SEED_SIGN = 0x5bd1e995;

/**
 * Text with no letters or digits (including '') embeds as the one-hot vector
 * of this reserved feature: unit-length as stores require, the same for every
 * such text, and (like any unrelated text) near-orthogonal to real content.
 */
const EMPTY_FEATURE = '\u0000empty';

/** Feature → accumulated term frequency (before sublinear scaling) and family weight. */
type Features = Map<string, { tf: number; weight: number }>;

function addFeature(features: Features, key: string, weight: number): void {
  const f = features.get(key);
  if (f) f.tf += 1;
  else features.set(key, { tf: 1, weight });
}

function extractFeatures(text: string): Features {
  const features: Features = new Map();
  const content: string[] = [];
  for (const word of words(text)) {
    if (STOPWORDS.has(word)) {
      addFeature(features, `w|${word}`, WEIGHT_STOPWORD);
      continue;
    }
    const stem = sStem(word);
    content.push(stem);
    addFeature(features, `w|${stem}`, WEIGHT_WORD);
    // Boundary markers make "<pay" (a word start) differ from "pay" inside "repay".
    const marked = `<${word}>`;
    for (let n = CHARGRAM_MIN; n <= CHARGRAM_MAX; n++) {
      for (let i = 0; i + n <= marked.length; i++) addFeature(features, `c|${marked.slice(i, i + n)}`, WEIGHT_CHARGRAM);
    }
  }
  // Bigrams over content words: "invoice is overdue" and "overdue invoice"
  // differ, but "invoice overdue" matches "the invoice is overdue".
  for (let i = 0; i + 1 < content.length; i++) addFeature(features, `b|${content[i]} ${content[i + 1]}`, WEIGHT_BIGRAM);
  if (features.size === 0) addFeature(features, EMPTY_FEATURE, 1);
  return features;
}

function hashingVector(text: string, dims: number): Float32Array {
  // Accumulate in float64, round once at the end.
  const acc = new Float64Array(dims);
  for (const [key, { tf, weight }] of extractFeatures(text)) {
    const index = hash32(key, SEED_INDEX) % dims;
    const sign = hash32(key, SEED_SIGN) >>> 31 === 0 ? 1 : -1;
    // Sublinear tf: a word repeated ten times is stronger evidence, not ten times stronger.
    acc[index] += sign * weight * (1 + Math.log(tf));
  }
  return normalise(acc, () => {
    // Reachable only if colliding features cancel exactly; fall back to the
    // reserved feature so the result is still a unit vector.
    return hashingVector('', dims);
  });
}

/**
 * An offline embedder by feature hashing: normalised word unigrams (lightly
 * stemmed) and bigrams, plus character 3- to 5-grams within words (with
 * boundary markers), each hashed with FNV-1a+fmix32 to an index and, with a
 * second hash, a sign; weighted 1 + log(tf) per feature; L2-normalised.
 *
 * Deterministic across processes and platforms. It is lexical, and says so
 * (`lexical: true`): texts sharing words or stems score high cosine
 * similarity, unrelated texts near 0, but synonyms ("bill"/"invoice") do not
 * match. Text without letters or digits maps to one fixed unit vector.
 */
export function createHashingEmbedder(opts: HashingEmbedderOptions = {}): SizedEmbedder {
  const dims = opts.dims ?? 384;
  if (!Number.isInteger(dims) || dims < 8)
    throw new Error(`Hashing embedder dims must be an integer >= 8, got ${dims}`);
  return {
    model: `offline-hash-${dims}-${HASHING_VERSION}`,
    dims,
    lexical: true,
    async embed(texts: string[]): Promise<Float32Array[]> {
      return texts.map((t) => hashingVector(t, dims));
    },
  };
}

// ---------------------------------------------------------------------------
// OpenAI embedder
// ---------------------------------------------------------------------------

/** Native output sizes of OpenAI's embedding models: known before the first call when no `dims` is given. */
const NATIVE_DIMS: Record<string, number> = {
  'text-embedding-3-small': 1536,
  'text-embedding-3-large': 3072,
  'text-embedding-ada-002': 1536,
};

/** Options for {@link createOpenAIEmbedder}. */
export interface OpenAIEmbedderOptions {
  /** Bearer key. Optional because local OpenAI-compatible servers often need none. */
  apiKey?: string;
  /** e.g. `http://127.0.0.1:11434/v1`; default the client's (api.openai.com). */
  baseURL?: string;
  /** e.g. `text-embedding-3-small`. */
  model: string;
  /**
   * Output size. Omitted: the model's native size, known in advance for
   * OpenAI's models and otherwise learned from the endpoint (the length of
   * the first vector it returns; every later vector must match it). Given
   * and different from the native size (or the model is unknown): sent as
   * `dimensions`, and the embedder's `model` becomes `<model>@<dims>` so
   * caches never mix the two spaces.
   */
  dims?: number;
  /** Texts per request (default 96; OpenAI accepts up to 2048). */
  batchSize?: number;
  /** Retries of 408/409/429/5xx and connection errors, by the client (default 2, the client's own). */
  maxRetries?: number;
  /** Per-request timeout in ms (default the client's, 10 minutes). */
  timeoutMs?: number;
}

/**
 * An embedder over the OpenAI embeddings API via the official client:
 * batches of `batchSize` texts sent one after another (gentle on rate
 * limits), results put back in input order by each item's `index`, checked
 * for size and finiteness, and L2-normalised (OpenAI's are already
 * unit-length; compatible servers' often are not).
 */
export function createOpenAIEmbedder(opts: OpenAIEmbedderOptions): Embedder {
  const native = NATIVE_DIMS[opts.model];
  if (opts.dims !== undefined && (!Number.isInteger(opts.dims) || opts.dims <= 0)) {
    throw new Error(`Embedding dims must be a positive integer, got ${opts.dims}`);
  }
  // Undefined until the endpoint's first answer when neither configured nor known.
  let dims: number | undefined = opts.dims ?? native;
  const sendDimensions = opts.dims !== undefined && opts.dims !== native;
  const batchSize = opts.batchSize ?? 96;
  if (!Number.isInteger(batchSize) || batchSize <= 0) {
    throw new Error(`Embedding batchSize must be a positive integer, got ${batchSize}`);
  }

  const client = new OpenAI({
    // The client refuses to start without a key (and would otherwise read
    // OPENAI_API_KEY behind the config's back); keyless local servers ignore it.
    apiKey: opts.apiKey ?? 'no-api-key',
    baseURL: opts.baseURL,
    maxRetries: opts.maxRetries,
    timeout: opts.timeoutMs,
  });
  const where = `model "${opts.model}" at ${client.baseURL}`;

  async function embedBatch(batch: string[]): Promise<Float32Array[]> {
    let response: OpenAI.CreateEmbeddingResponse;
    try {
      response = await client.embeddings.create({
        model: opts.model,
        input: batch,
        encoding_format: 'float',
        ...(sendDimensions ? { dimensions: opts.dims } : {}),
      });
    } catch (err) {
      const detail = err instanceof Error ? err.message : String(err);
      throw new Error(`Embedding request failed for ${where}: ${detail}`, { cause: err });
    }

    if (!Array.isArray(response.data) || response.data.length !== batch.length) {
      throw new Error(
        `Embedding ${where} returned ${Array.isArray(response.data) ? response.data.length : 'no'} vectors for ${batch.length} inputs`,
      );
    }
    const out = new Array<Float32Array | undefined>(batch.length);
    // Before the size is known, every vector of this answer must have the first one's length.
    const first = response.data[0]?.embedding;
    const expected = dims ?? (Array.isArray(first) && first.length > 0 ? first.length : undefined);
    for (const item of response.data) {
      const { index, embedding } = item;
      if (!Number.isInteger(index) || index < 0 || index >= batch.length || out[index]) {
        throw new Error(`Embedding ${where} returned a missing or repeated index ${index}`);
      }
      if (!Array.isArray(embedding) || expected === undefined || embedding.length !== expected) {
        const got = Array.isArray(embedding) ? `${embedding.length} dimensions` : typeof embedding;
        throw new Error(
          `Embedding ${where} returned a vector of ${got}, expected ${expected ?? 'at least 1'} dimensions`,
        );
      }
      out[index] = normalise(Float64Array.from(embedding), () => {
        throw new Error(`Embedding ${where} returned a zero or non-finite vector (input ${index})`);
      });
    }
    // Two first calls in flight may both learn; the loser must agree with the winner.
    if (dims === undefined) dims = expected;
    else if (dims !== expected) {
      throw new Error(`Embedding ${where} returned vectors of ${expected} dimensions, earlier ${dims} dimensions`);
    }
    return out as Float32Array[];
  }

  return {
    model: sendDimensions ? `${opts.model}@${opts.dims}` : opts.model,
    get dims() {
      return dims;
    },
    lexical: false,
    async embed(texts: string[]): Promise<Float32Array[]> {
      const result: Float32Array[] = [];
      for (let i = 0; i < texts.length; i += batchSize) {
        result.push(...(await embedBatch(texts.slice(i, i + batchSize))));
      }
      return result;
    },
  };
}

// ---------------------------------------------------------------------------
// Cache
// ---------------------------------------------------------------------------

/** Options for {@link createCachedEmbedder}. */
export interface CachedEmbedderOptions {
  prisma: Db;
}

/** The cache key of a text: sha256 of its exact UTF-8 bytes, hex. No normalisation: a different text may embed differently. */
export function contentHash(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex');
}

/**
 * Wraps an embedder with the embedding_cache table, keyed by
 * (sha256 of the exact text, `inner.model`). Per call: one SELECT for all
 * the texts, one `inner.embed` of the distinct misses (a text repeated in
 * the batch is embedded once), one INSERT … ON CONFLICT DO NOTHING (so
 * concurrent writers of the same text do not fail). Vectors come back in
 * input order, each position its own array. Rows whose size does not match
 * `inner.dims` are treated as misses, and replaced when embedded again.
 *
 * While `inner` has not learned its size (see {@link OpenAIEmbedderOptions.dims}),
 * the first text is embedded by `inner` before the cache is read: a cached
 * row of the same model name may come from another endpoint or size.
 */
export function createCachedEmbedder(inner: SizedEmbedder, opts: CachedEmbedderOptions): SizedEmbedder;
export function createCachedEmbedder(inner: Embedder, opts: CachedEmbedderOptions): Embedder;
export function createCachedEmbedder(inner: Embedder, opts: CachedEmbedderOptions): Embedder {
  const { prisma } = opts;
  return {
    model: inner.model,
    get dims() {
      return inner.dims;
    },
    lexical: inner.lexical,
    async embed(texts: string[]): Promise<Float32Array[]> {
      if (texts.length === 0) return [];
      const hashes = texts.map(contentHash);
      const distinct = [...new Set(hashes)];
      const probe = inner.dims === undefined ? (await inner.embed([texts[0]]))[0] : undefined;
      const dims = inner.dims ?? probe?.length;
      if (dims === undefined) throw new Error(`Embedder ${inner.model} returned no vector for one text`);

      // ANY($array): one statement with one parameter however many texts.
      const rows = await prisma.$queryRaw<Array<{ content_hash: string; vector: Uint8Array }>>`
        SELECT content_hash, vector FROM embedding_cache
        WHERE model = ${inner.model} AND dims = ${dims} AND content_hash = ANY(${distinct}::text[])`;
      const found = new Map<string, Float32Array>();
      for (const row of rows) {
        const v = decodeFloat32LE(row.vector, dims);
        if (v) found.set(row.content_hash, v);
      }
      // The probe's text is stored with the misses (its row, if any, may be of another size).
      if (probe) found.delete(hashes[0]);

      const missing = new Map<string, string>(); // hash → text, first occurrence wins
      hashes.forEach((h, i) => {
        if (!found.has(h) && !missing.has(h)) missing.set(h, texts[i]);
      });
      const missHashes = [...missing.keys()];
      const missTexts = [...missing.values()];

      if (missTexts.length > 0) {
        const fresh = probe
          ? [probe, ...(missTexts.length > 1 ? await inner.embed(missTexts.slice(1)) : [])]
          : await inner.embed(missTexts);
        if (fresh.length !== missTexts.length) {
          throw new Error(`Embedder ${inner.model} returned ${fresh.length} vectors for ${missTexts.length} texts`);
        }
        fresh.forEach((v, i) => {
          if (v.length !== dims) {
            throw new Error(`Embedder ${inner.model} returned a vector of ${v.length} dimensions, expected ${dims}`);
          }
          found.set(missHashes[i], v);
        });
        // Vectors travel as base64 text and are decoded by PostgreSQL: a
        // text[] parameter is portable across drivers where bytea[] is not.
        const encoded = fresh.map((v) => Buffer.from(encodeFloat32LE(v).buffer).toString('base64'));
        await prisma.$executeRaw`
          INSERT INTO embedding_cache (content_hash, model, dims, vector)
          SELECT h, ${inner.model}, ${dims}, decode(v, 'base64')
          FROM unnest(${missHashes}::text[], ${encoded}::text[]) AS t(h, v)
          ON CONFLICT (content_hash, model) DO UPDATE SET dims = EXCLUDED.dims, vector = EXCLUDED.vector
            WHERE embedding_cache.dims <> EXCLUDED.dims`;
      }

      return hashes.map((h) => (found.get(h) as Float32Array).slice());
    },
  };
}

// ---------------------------------------------------------------------------
// From configuration
// ---------------------------------------------------------------------------

/** Options for {@link embedderFromConfig} that the environment does not carry. */
export interface EmbedderFromConfigOptions {
  /** Vector size for the OpenAI embedder (see {@link OpenAIEmbedderOptions.dims}). */
  dims?: number;
}

/**
 * The embedder Keel uses: OpenAI (model KEEL_EMBED_MODEL) when
 * OPENAI_API_KEY or OPENAI_BASE_URL is set, behind the PostgreSQL cache;
 * else the offline hashing embedder, uncached, because computing a hashed
 * vector costs less than the database round trip that would look it up.
 */
export function embedderFromConfig(
  config: Pick<Config, 'OPENAI_API_KEY' | 'OPENAI_BASE_URL' | 'KEEL_EMBED_MODEL'>,
  prisma: Db,
  opts: EmbedderFromConfigOptions = {},
): Embedder {
  if (!config.OPENAI_API_KEY && !config.OPENAI_BASE_URL) return createHashingEmbedder();
  return createCachedEmbedder(
    createOpenAIEmbedder({
      apiKey: config.OPENAI_API_KEY || undefined,
      baseURL: config.OPENAI_BASE_URL || undefined,
      model: config.KEEL_EMBED_MODEL,
      dims: opts.dims,
    }),
    { prisma },
  );
}

/** A sentence embedded only to learn an endpoint's vector size. */
const SIZE_PROBE = 'Keel embedding size probe';

/**
 * The embedder's vector size, asking the endpoint (one short text, through
 * any cache) when it is not known yet, as before a store is opened for
 * anything but a remember or search, which learn it from their own texts.
 */
export async function embedderDims(embedder: Embedder): Promise<number> {
  if (embedder.dims !== undefined) return embedder.dims;
  const [v] = await embedder.embed([SIZE_PROBE]);
  const dims = embedder.dims ?? v?.length;
  if (!dims) throw new Error(`Embedder ${embedder.model} returned no vector for its size probe`);
  return dims;
}

// ---------------------------------------------------------------------------

/** L2-normalises into a Float32Array; calls `onDegenerate` for a zero or non-finite vector. */
function normalise(v: ArrayLike<number>, onDegenerate: () => Float32Array): Float32Array {
  let sum = 0;
  for (let i = 0; i < v.length; i++) sum += v[i] * v[i];
  const norm = Math.sqrt(sum);
  if (!(norm > 0) || !Number.isFinite(norm)) return onDegenerate();
  const out = new Float32Array(v.length);
  for (let i = 0; i < v.length; i++) out[i] = v[i] / norm;
  return out;
}
