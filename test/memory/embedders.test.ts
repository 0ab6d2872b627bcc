/**
 * Embedders and the tokenizer, with real parts: the offline hashing
 * embedder; the real `openai` client talking HTTP to a local stand-in that
 * speaks OpenAI's protocol; the PostgreSQL embedding cache on a scratch
 * database; js-tiktoken's bundled o200k_base ranks.
 */
import { createHash } from 'node:crypto';
import OpenAI from 'openai';
import {
  contentHash,
  createCachedEmbedder,
  createHashingEmbedder,
  createOpenAIEmbedder,
  embedderFromConfig,
} from '../../memory/embedders';
import type { Embedder } from '../../memory/types';
import { countTokens, truncateToTokens } from '../../models/tokenizer';
import { createTestDatabase, type TestDatabase } from '../helpers/db';
import { startOpenAIStandin, type OpenAIStandin } from '../helpers/openai-standin';

const API_KEY = 'sk-test-keel-0123456789abcdef';

function cosine(a: Float32Array, b: Float32Array): number {
  expect(a.length).toBe(b.length);
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
}

function norm(v: Float32Array): number {
  return Math.sqrt(cosine(v, v));
}

/** Bytes of a vector, for exact (bitwise) equality. */
function bytes(v: Float32Array): Buffer {
  return Buffer.from(v.buffer, v.byteOffset, v.byteLength);
}

/** A unit-ish vector of `size` values from `text` (ignoring the size asked for), for endpoints that decide the size. */
function createHashVector(text: string, _asked: number, size: number): number[] {
  return Array.from({ length: size }, (_, i) => ((text.charCodeAt(i % text.length) * (i + 1)) % 17) - 8);
}

/** Inputs the stand-in received on /v1/embeddings since request `from`. */
function embeddingInputs(standin: OpenAIStandin, from = 0): string[][] {
  return standin.requests.slice(from).map((r) => {
    expect(r.path).toBe('/v1/embeddings');
    return r.body.input as string[];
  });
}

describe('hashing embedder', () => {
  const embedder = createHashingEmbedder();

  it('names itself as lexical and offline, with its size in the model name', () => {
    expect(embedder.lexical).toBe(true);
    expect(embedder.dims).toBe(384);
    expect(embedder.model).toBe('offline-hash-384-v1');
    const small = createHashingEmbedder({ dims: 64 });
    expect(small.model).toBe('offline-hash-64-v1');
    expect(small.dims).toBe(64);
  });

  it('is deterministic across instances and calls', async () => {
    const texts = ['Invoice #4411 is overdue', 'Grüße aus München', 'hiking in the alps'];
    const a = await embedder.embed(texts);
    const b = await createHashingEmbedder({ dims: 384 }).embed(texts);
    const c = await embedder.embed([texts[1]]);
    for (let i = 0; i < texts.length; i++) expect(bytes(a[i]).equals(bytes(b[i]))).toBe(true);
    expect(bytes(c[0]).equals(bytes(a[1]))).toBe(true);
    // Different texts, different vectors.
    expect(bytes(a[0]).equals(bytes(a[2]))).toBe(false);
  });

  it('returns unit vectors of the configured size', async () => {
    const texts = ['one', 'word word word word', 'a much longer text about payments, invoices and clients '.repeat(50)];
    for (const dims of [64, 384, 1024]) {
      const vectors = await createHashingEmbedder({ dims }).embed(texts);
      expect(vectors).toHaveLength(texts.length);
      for (const v of vectors) {
        expect(v).toBeInstanceOf(Float32Array);
        expect(v.length).toBe(dims);
        expect(norm(v)).toBeCloseTo(1, 5);
      }
    }
  });

  it('scores texts that share words high and unrelated texts near zero', async () => {
    const [a, b, c] = await embedder.embed([
      'invoice payment overdue',
      'the invoice is overdue for payment',
      'hiking in the alps',
    ]);
    expect(cosine(a, b)).toBeGreaterThan(0.6);
    expect(Math.abs(cosine(a, c))).toBeLessThan(0.2);
    expect(Math.abs(cosine(b, c))).toBeLessThan(0.2);

    const [refund, refund2, logo] = await embedder.embed([
      'The customer wants a refund for the broken laptop',
      'refund requested: laptop arrived broken',
      'Our new logo design uses blue and orange',
    ]);
    expect(cosine(refund, refund2)).toBeGreaterThan(0.3);
    expect(cosine(refund, refund2)).toBeGreaterThan(Math.abs(cosine(refund, logo)) + 0.25);
  });

  it('has no bias between unrelated texts (signed hashing cancels collisions on average)', async () => {
    // Texts of made-up words from a fixed LCG: no shared words, so any similarity is hash collisions.
    let seed = 12345;
    const rand = () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32;
    const word = () =>
      Array.from({ length: 4 + Math.floor(rand() * 6) }, () => 'bcdfghjklmnpqrstvwxz'[Math.floor(rand() * 20)]).join(
        '',
      );
    const text = () => Array.from({ length: 8 }, word).join(' ');
    const pairs = Array.from({ length: 200 }, () => [text(), text()]);
    const vectors = await embedder.embed(pairs.flat());
    let sum = 0;
    for (let i = 0; i < pairs.length; i++) sum += cosine(vectors[2 * i], vectors[2 * i + 1]);
    expect(Math.abs(sum / pairs.length)).toBeLessThan(0.02);
  });

  it('matches shared stems, case and accents', async () => {
    const [payments, payment, cafe, Cafe, unrelated] = await embedder.embed([
      'overdue payments',
      'Overdue payment',
      'meeting at the café',
      'MEETING AT THE CAFE',
      'quarterly tax return',
    ]);
    expect(cosine(payments, payment)).toBeGreaterThan(0.9);
    expect(cosine(cafe, Cafe)).toBeCloseTo(1, 5);
    expect(Math.abs(cosine(payments, unrelated))).toBeLessThan(0.2);

    // Character n-grams give partial credit to words that share a stem only.
    const [scheduling, schedule, weather] = await embedder.embed(['scheduling', 'schedule', 'weather']);
    expect(cosine(scheduling, schedule)).toBeGreaterThan(0.3);
    expect(cosine(scheduling, schedule)).toBeGreaterThan(Math.abs(cosine(scheduling, weather)) + 0.2);
  });

  it('embeds text without letters or digits as one fixed unit vector', async () => {
    const [empty, punct, spaces, real] = await embedder.embed(['', '!!! ... ???', '   \n\t', 'invoice overdue']);
    expect(norm(empty)).toBeCloseTo(1, 5);
    expect(bytes(empty).equals(bytes(punct))).toBe(true);
    expect(bytes(empty).equals(bytes(spaces))).toBe(true);
    expect(Math.abs(cosine(empty, real))).toBeLessThan(0.2);
  });
});

describe('OpenAI embedder over the real client', () => {
  let standin: OpenAIStandin;
  beforeAll(async () => {
    standin = await startOpenAIStandin({ apiKey: API_KEY });
  });
  afterAll(async () => {
    await standin?.close();
  });

  it('batches, keeps input order and sends what the API expects', async () => {
    const embedder = createOpenAIEmbedder({
      apiKey: API_KEY,
      baseURL: standin.baseURL,
      model: 'text-embedding-3-small',
      batchSize: 96,
    });
    expect(embedder.model).toBe('text-embedding-3-small');
    expect(embedder.dims).toBe(1536);
    expect(embedder.lexical).toBe(false);

    const texts = Array.from({ length: 250 }, (_, i) => `note ${i}: ${i % 2 ? 'invoice' : 'meeting'} number ${i * 7}`);
    const from = standin.requests.length;
    const vectors = await embedder.embed(texts);

    expect(embeddingInputs(standin, from).map((input) => input.length)).toEqual([96, 96, 58]);
    expect(embeddingInputs(standin, from).flat()).toEqual(texts);
    const first = standin.requests[from];
    expect(first.headers.authorization).toBe(`Bearer ${API_KEY}`);
    expect(first.body).toMatchObject({ model: 'text-embedding-3-small', encoding_format: 'float' });
    expect(first.body).not.toHaveProperty('dimensions');

    // The stand-in computes each vector from its text: the i-th output must be text i's.
    const expected = await createHashingEmbedder({ dims: 1536 }).embed(texts);
    expect(vectors).toHaveLength(250);
    vectors.forEach((v, i) => {
      expect(v.length).toBe(1536);
      expect(norm(v)).toBeCloseTo(1, 5);
      expect(cosine(v, expected[i])).toBeGreaterThan(0.99999);
    });
  });

  it('places vectors by index, not by position in the response', async () => {
    const reversed = await startOpenAIStandin({ reverseData: true });
    try {
      const texts = ['first text about invoices', 'second text about hiking', 'third text about taxes'];
      const embedder = createOpenAIEmbedder({ baseURL: reversed.baseURL, model: 'text-embedding-3-small' });
      const vectors = await embedder.embed(texts);
      const expected = await createHashingEmbedder({ dims: 1536 }).embed(texts);
      vectors.forEach((v, i) => expect(cosine(v, expected[i])).toBeGreaterThan(0.99999));
    } finally {
      await reversed.close();
    }
  });

  it('makes no request for no texts', async () => {
    const embedder = createOpenAIEmbedder({
      apiKey: API_KEY,
      baseURL: standin.baseURL,
      model: 'text-embedding-3-small',
    });
    const from = standin.requests.length;
    await expect(embedder.embed([])).resolves.toEqual([]);
    expect(standin.requests.length).toBe(from);
  });

  it('requests and checks a chosen size, and keys the model name by it', async () => {
    const embedder = createOpenAIEmbedder({
      apiKey: API_KEY,
      baseURL: standin.baseURL,
      model: 'text-embedding-3-small',
      dims: 256,
    });
    expect(embedder.model).toBe('text-embedding-3-small@256');
    expect(embedder.dims).toBe(256);
    const from = standin.requests.length;
    const [v] = await embedder.embed(['quarterly report']);
    expect(standin.requests[from].body.dimensions).toBe(256);
    expect(standin.requests[from].body.model).toBe('text-embedding-3-small');
    expect(v.length).toBe(256);
    expect(norm(v)).toBeCloseTo(1, 5);
  });

  it('normalises vectors that are not unit length', async () => {
    const raw = await startOpenAIStandin({
      embedding: (text, dims) => {
        const v = new Array<number>(dims).fill(0);
        v[0] = 3 * text.length;
        v[1] = 4 * text.length;
        return v;
      },
    });
    try {
      const embedder = createOpenAIEmbedder({ baseURL: raw.baseURL, model: 'local-embed', dims: 8 });
      const [a, b] = await embedder.embed(['abc', 'abcdefgh']);
      for (const v of [a, b]) {
        expect(v[0]).toBeCloseTo(0.6, 6);
        expect(v[1]).toBeCloseTo(0.8, 6);
        expect(norm(v)).toBeCloseTo(1, 6);
      }
      // dims differs from any native size, so it is requested.
      expect(raw.requests[0].body.dimensions).toBe(8);
    } finally {
      await raw.close();
    }
  });

  it('retries a 429 and succeeds', async () => {
    const embedder = createOpenAIEmbedder({
      apiKey: API_KEY,
      baseURL: standin.baseURL,
      model: 'text-embedding-3-small',
      maxRetries: 2,
    });
    const from = standin.requests.length;
    standin.failNext(429, 1, { retryAfterMs: 10 });
    const [v] = await embedder.embed(['retry me']);
    expect(norm(v)).toBeCloseTo(1, 5);
    expect(standin.requests.length - from).toBe(2);
    // The client marks its retry; both attempts carried the same input.
    expect(standin.requests[from + 1].headers['x-stainless-retry-count']).toBe('1');
    expect(embeddingInputs(standin, from)).toEqual([['retry me'], ['retry me']]);
  });

  it('gives up after maxRetries with an error naming the model and endpoint', async () => {
    const embedder = createOpenAIEmbedder({
      apiKey: API_KEY,
      baseURL: standin.baseURL,
      model: 'text-embedding-3-small',
      maxRetries: 1,
    });
    const from = standin.requests.length;
    standin.failNext(503, 2, { retryAfterMs: 5 });
    const error = await embedder.embed(['doomed']).then(
      () => undefined,
      (e: unknown) => e as Error,
    );
    expect(error).toBeInstanceOf(Error);
    expect(error!.message).toContain('"text-embedding-3-small"');
    expect(error!.message).toContain(standin.baseURL);
    expect(error!.message).toContain('503');
    expect(standin.requests.length - from).toBe(2);
  });

  it('reports a wrong API key clearly, without retrying', async () => {
    const embedder = createOpenAIEmbedder({
      apiKey: 'sk-wrong-key-000000000000',
      baseURL: standin.baseURL,
      model: 'text-embedding-3-small',
    });
    const from = standin.requests.length;
    await expect(embedder.embed(['secret plans'])).rejects.toThrow(
      new RegExp(`text-embedding-3-small.*${standin.baseURL.replace(/[.]/g, '\\.')}.*401.*Incorrect API key`),
    );
    expect(standin.requests.length - from).toBe(1);
  });

  it('rejects vectors of the wrong size, naming model, endpoint and sizes', async () => {
    const wrong = await startOpenAIStandin({ embedding: (_text, dims) => new Array<number>(dims - 1).fill(0.5) });
    try {
      const embedder = createOpenAIEmbedder({ baseURL: wrong.baseURL, model: 'text-embedding-3-small' });
      await expect(embedder.embed(['x'])).rejects.toThrow(
        `Embedding model "text-embedding-3-small" at ${wrong.baseURL} returned a vector of 1535 dimensions, expected 1536 dimensions`,
      );
    } finally {
      await wrong.close();
    }
  });

  it('learns an unknown model’s size from its first answer, then holds every answer to it', async () => {
    let size = 768;
    const local = await startOpenAIStandin({ embedding: (text, dims) => createHashVector(text, dims, size) });
    try {
      const embedder = createOpenAIEmbedder({ baseURL: local.baseURL, model: 'nomic-embed-text' });
      expect(embedder.dims).toBeUndefined();
      const [v] = await embedder.embed(['first words']);
      expect(v.length).toBe(768);
      expect(embedder.dims).toBe(768);
      expect(embedder.model).toBe('nomic-embed-text');
      expect(local.requests[0].body).not.toHaveProperty('dimensions');
      size = 512;
      await expect(embedder.embed(['later words'])).rejects.toThrow(
        /returned a vector of 512 dimensions, expected 768 dimensions/,
      );
    } finally {
      await local.close();
    }
  });
});

describe('embedding cache', () => {
  let db: TestDatabase;
  let standin: OpenAIStandin;
  let inner: Embedder;
  let cached: Embedder;

  beforeAll(async () => {
    db = await createTestDatabase();
    standin = await startOpenAIStandin({ apiKey: API_KEY });
    inner = createOpenAIEmbedder({ apiKey: API_KEY, baseURL: standin.baseURL, model: 'text-embedding-3-small' });
    cached = createCachedEmbedder(inner, { prisma: db.prisma });
  });
  afterAll(async () => {
    await standin?.close();
    await db?.drop();
  });

  it('passes through the inner embedder’s identity', () => {
    expect(cached.model).toBe(inner.model);
    expect(cached.dims).toBe(inner.dims);
    expect(cached.lexical).toBe(inner.lexical);
  });

  it('serves a repeated batch from PostgreSQL without a request, with identical vectors', async () => {
    const texts = ['alpha invoice', 'beta meeting', 'gamma contract'];
    const from = standin.requests.length;
    const first = await cached.embed(texts);
    expect(embeddingInputs(standin, from)).toEqual([texts]);

    const second = await cached.embed(texts);
    expect(standin.requests.length - from).toBe(1);
    second.forEach((v, i) => expect(bytes(v).equals(bytes(first[i]))).toBe(true));

    // The cache lives in the database, not in the wrapper: a new wrapper hits too.
    const third = await createCachedEmbedder(inner, { prisma: db.prisma }).embed([texts[2], texts[0]]);
    expect(standin.requests.length - from).toBe(1);
    expect(bytes(third[0]).equals(bytes(first[2]))).toBe(true);
    expect(bytes(third[1]).equals(bytes(first[0]))).toBe(true);
  });

  it('embeds only the misses and returns everything in input order', async () => {
    const [hitA, hitB] = await cached.embed(['partial hit one', 'partial hit two']);
    const from = standin.requests.length;
    const texts = ['partial hit one', 'new miss one', 'partial hit two', 'new miss two'];
    const out = await cached.embed(texts);
    expect(embeddingInputs(standin, from)).toEqual([['new miss one', 'new miss two']]);

    const direct = await inner.embed(texts);
    expect(bytes(out[0]).equals(bytes(hitA))).toBe(true);
    expect(bytes(out[2]).equals(bytes(hitB))).toBe(true);
    out.forEach((v, i) => expect(bytes(v).equals(bytes(direct[i]))).toBe(true));
  });

  it('embeds a text repeated within one batch once', async () => {
    const from = standin.requests.length;
    const out = await cached.embed(['dup text', 'other text', 'dup text', 'dup text']);
    expect(embeddingInputs(standin, from)).toEqual([['dup text', 'other text']]);
    expect(bytes(out[0]).equals(bytes(out[2]))).toBe(true);
    expect(bytes(out[0]).equals(bytes(out[3]))).toBe(true);
    expect(bytes(out[0]).equals(bytes(out[1]))).toBe(false);
    // Each position is its own array: changing one does not change another.
    out[0][0] = 42;
    expect(out[2][0]).not.toBe(42);
  });

  it('stores rows keyed by sha256 and model, as float32 little-endian', async () => {
    const text = 'stored row check: ünïcödé ✓';
    const [v] = await cached.embed([text]);
    const hash = createHash('sha256').update(Buffer.from(text, 'utf8')).digest('hex');
    expect(contentHash(text)).toBe(hash);

    const rows = await db.prisma.embeddingCache.findMany({ where: { contentHash: hash } });
    expect(rows).toHaveLength(1);
    expect(rows[0].model).toBe('text-embedding-3-small');
    expect(rows[0].dims).toBe(1536);
    const stored = Buffer.from(rows[0].vector);
    expect(stored.length).toBe(1536 * 4);
    for (let i = 0; i < 1536; i++) expect(stored.readFloatLE(i * 4)).toBe(v[i]);
  });

  it('keeps models apart: the same text under another model or size misses', async () => {
    const text = 'shared text across models';
    await cached.embed([text]);
    const hashing = createCachedEmbedder(createHashingEmbedder(), { prisma: db.prisma });
    const [h] = await hashing.embed([text]);
    expect(h.length).toBe(384);
    const [expected] = await createHashingEmbedder().embed([text]);
    expect(bytes(h).equals(bytes(expected))).toBe(true);

    const small = createCachedEmbedder(
      createOpenAIEmbedder({ apiKey: API_KEY, baseURL: standin.baseURL, model: 'text-embedding-3-small', dims: 256 }),
      { prisma: db.prisma },
    );
    const from = standin.requests.length;
    const [s] = await small.embed([text]);
    expect(s.length).toBe(256);
    expect(standin.requests.length - from).toBe(1);

    const rows = await db.prisma.embeddingCache.findMany({ where: { contentHash: contentHash(text) } });
    expect(rows.map((r) => `${r.model}:${r.dims}`).sort()).toEqual([
      'offline-hash-384-v1:384',
      'text-embedding-3-small:1536',
      'text-embedding-3-small@256:256',
    ]);
  });

  it('lets concurrent writers of the same new text both succeed', async () => {
    const text = 'raced text';
    const [a, b] = await Promise.all([cached.embed([text]), cached.embed([text, 'raced other'])]);
    expect(bytes(a[0]).equals(bytes(b[0]))).toBe(true);
    const n = await db.prisma.embeddingCache.count({ where: { contentHash: contentHash(text) } });
    expect(n).toBe(1);
  });

  it('returns [] for no texts without touching anything', async () => {
    const from = standin.requests.length;
    await expect(cached.embed([])).resolves.toEqual([]);
    expect(standin.requests.length).toBe(from);
  });

  it('embedderFromConfig picks hashing offline (uncached: computing is cheaper) and OpenAI when configured (cached)', async () => {
    const offline = embedderFromConfig({ KEEL_EMBED_MODEL: 'text-embedding-3-small' }, db.prisma);
    expect(offline.model).toBe('offline-hash-384-v1');
    expect(offline.lexical).toBe(true);
    await offline.embed(['config offline text']);
    const offlineRows = await db.prisma.embeddingCache.count({
      where: { contentHash: contentHash('config offline text'), model: 'offline-hash-384-v1' },
    });
    expect(offlineRows).toBe(0);

    const online = embedderFromConfig(
      { OPENAI_API_KEY: API_KEY, OPENAI_BASE_URL: standin.baseURL, KEEL_EMBED_MODEL: 'text-embedding-3-large' },
      db.prisma,
    );
    expect(online.model).toBe('text-embedding-3-large');
    expect(online.dims).toBe(3072);
    expect(online.lexical).toBe(false);
    const from = standin.requests.length;
    await online.embed(['config online text']);
    await online.embed(['config online text']);
    expect(embeddingInputs(standin, from)).toEqual([['config online text']]);
    expect(standin.requests[from].body.model).toBe('text-embedding-3-large');
  });
});

describe('tokenizer (o200k_base)', () => {
  it('counts known strings', () => {
    // "hello" and " world" are each one token (the pre-tokenizer keeps the leading space with the word).
    expect(countTokens('hello world')).toBe(2);
    // Digits are pre-split into runs of at most three, each run one token: 123 | 456 | 7.
    expect(countTokens('1234567')).toBe(3);
    expect(countTokens('')).toBe(0);
    // Special-token syntax in user text is ordinary text: counted, not rejected.
    expect(countTokens('<|endoftext|>')).toBeGreaterThan(1);
  });

  it('truncates to a prefix within the budget', () => {
    const text = 'word '.repeat(1000).trim();
    expect(countTokens(text)).toBe(1000);
    const cut = truncateToTokens(text, 10);
    expect(text.startsWith(cut)).toBe(true);
    expect(cut).toBe('word '.repeat(10).trim());
    expect(countTokens(cut)).toBe(10);

    const prose = 'The invoice for March is overdue; please remind the client politely. '.repeat(20);
    for (const budget of [1, 7, 33, 100]) {
      const p = truncateToTokens(prose, budget);
      expect(prose.startsWith(p)).toBe(true);
      expect(countTokens(p)).toBeLessThanOrEqual(budget);
      expect(countTokens(p)).toBeGreaterThanOrEqual(budget - 1);
    }
  });

  it('returns text that fits unchanged, and "" for no budget', () => {
    expect(truncateToTokens('hello world', 2)).toBe('hello world');
    expect(truncateToTokens('hello world', 50)).toBe('hello world');
    expect(truncateToTokens('hello world', 1)).toBe('hello');
    expect(truncateToTokens('hello world', 0)).toBe('');
  });

  it('never cuts inside a character', () => {
    // U+13000 is four byte-level tokens in o200k_base; a cut mid-character must back off.
    const glyphs = '\u{13000}\u{13000}\u{13000}';
    expect(countTokens(glyphs)).toBe(12);
    expect(truncateToTokens(glyphs, 3)).toBe('');
    expect(truncateToTokens(glyphs, 4)).toBe('\u{13000}');
    expect(truncateToTokens(glyphs, 7)).toBe('\u{13000}');
    expect(truncateToTokens(glyphs, 8)).toBe('\u{13000}\u{13000}');
    expect(truncateToTokens(glyphs, 11)).not.toContain('\uFFFD');
  });
});

describe('OpenAI stand-in: chat completions through the real client', () => {
  let standin: OpenAIStandin;
  beforeAll(async () => {
    standin = await startOpenAIStandin({
      apiKey: API_KEY,
      chat: (body) =>
        body.model === 'upper' ? messagesText(body).toUpperCase() : `replied to ${body.messages.length}`,
    });
  });
  afterAll(async () => {
    await standin?.close();
  });

  function messagesText(body: { messages: Array<{ content: unknown }> }): string {
    return body.messages.map((m) => String(m.content)).join(' ');
  }

  it('answers with the reply function and real usage counts', async () => {
    const client = new OpenAI({ apiKey: API_KEY, baseURL: standin.baseURL });
    const res = await client.chat.completions.create({
      model: 'upper',
      messages: [
        { role: 'system', content: 'be loud' },
        { role: 'user', content: 'hello world' },
      ],
    });
    expect(res.object).toBe('chat.completion');
    expect(res.choices[0].message.content).toBe('BE LOUD HELLO WORLD');
    expect(res.choices[0].finish_reason).toBe('stop');
    expect(res.usage?.completion_tokens).toBe(countTokens('BE LOUD HELLO WORLD'));
    expect(res.usage?.total_tokens).toBe(res.usage!.prompt_tokens + res.usage!.completion_tokens);
  });

  it('echoes the last user message by default and streams when asked', async () => {
    const echo = await startOpenAIStandin();
    try {
      const client = new OpenAI({ apiKey: 'anything', baseURL: echo.baseURL });
      const res = await client.chat.completions.create({
        model: 'gpt-4o-mini',
        messages: [
          { role: 'user', content: 'first' },
          { role: 'assistant', content: 'ok' },
          { role: 'user', content: [{ type: 'text', text: 'second message' }] },
        ],
      });
      expect(res.choices[0].message.content).toBe('second message');

      const stream = await client.chat.completions.create({
        model: 'gpt-4o-mini',
        messages: [{ role: 'user', content: 'streamed reply' }],
        stream: true,
        stream_options: { include_usage: true },
      });
      let text = '';
      let usage: OpenAI.CompletionUsage | undefined;
      for await (const chunk of stream) {
        text += chunk.choices[0]?.delta.content ?? '';
        usage = chunk.usage ?? usage;
      }
      expect(text).toBe('streamed reply');
      expect(usage?.completion_tokens).toBe(countTokens('streamed reply'));
    } finally {
      await echo.close();
    }
  });

  it('rejects a wrong key with a 401 AuthenticationError', async () => {
    const client = new OpenAI({ apiKey: 'sk-nope-0000000000', baseURL: standin.baseURL, maxRetries: 0 });
    const err = await client.chat.completions
      .create({ model: 'x', messages: [{ role: 'user', content: 'hi' }] })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.AuthenticationError);
    expect((err as InstanceType<typeof OpenAI.AuthenticationError>).status).toBe(401);
    expect((err as InstanceType<typeof OpenAI.AuthenticationError>).code).toBe('invalid_api_key');
  });
});
