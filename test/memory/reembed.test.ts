/**
 * Embedding sizes and models over real parts: scratch PostgreSQL databases,
 * the real `openai` client against the OpenAI stand-in (which, like Ollama,
 * answers a model it does not know with vectors of its own size: 768 here),
 * and the real Qdrant client against the Qdrant stand-in. Covers: the size
 * learned from the endpoint with no setting; a database or collection of
 * another model or size refused with a typed, non-retryable failure and
 * nothing written; `memory:reembed` converting 384-dimension memories and
 * resuming after an interruption; the npm script's entry point.
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { QdrantClient } from '@qdrant/js-client-rest';
import { ApplicationFailure } from '@temporalio/common';
import { defaultConfig, type Config } from '../../config';
import { memoryFromConfig, type MemoryService } from '../../memory';
import { createEmbeddedStore } from '../../memory/embedded-store';
import { createHashingEmbedder, createOpenAIEmbedder } from '../../memory/embedders';
import { EMBEDDING_MISMATCH, isEmbeddingMismatch } from '../../memory/embedding-check';
import { createQdrantStore } from '../../memory/qdrant-store';
import { reembedMemories } from '../../memory/reembed';
import { createMemoryService } from '../../memory/service';
import type { VectorStore } from '../../memory/types';
import { createTestDatabase, type TestDatabase } from '../helpers/db';
import { startOpenAIStandin, type OpenAIStandin } from '../helpers/openai-standin';
import { startQdrantStandin, type QdrantStandin } from '../helpers/qdrant-standin';

const ROOT = path.resolve(__dirname, '..', '..');
const MODEL = 'nomic-embed-text';
const LEARNED = 768;
const OFFLINE = 'offline-hash-384-v1';

let db: TestDatabase;
let openai: OpenAIStandin;
let qdrant: QdrantStandin;
const toClose: Array<{ store: VectorStore }> = [];

beforeEach(async () => {
  [db, openai, qdrant] = await Promise.all([
    createTestDatabase(),
    startOpenAIStandin({ defaultDims: LEARNED }),
    startQdrantStandin(),
  ]);
});
afterEach(async () => {
  await Promise.all(toClose.splice(0).map((m) => m.store.close()));
  await Promise.all([db.drop(), openai.close(), qdrant.close()]);
});

/** The configuration of a process talking to the stand-in's embeddings, with no size set. */
function online(extra: Partial<Config> = {}): Config {
  return { ...defaultConfig(), OPENAI_BASE_URL: openai.baseURL, KEEL_EMBED_MODEL: MODEL, ...extra };
}

function track<T extends { store: VectorStore }>(m: T): T {
  toClose.push(m);
  return m;
}

/** Memory as an offline process wrote it: 384-dimension hashing vectors, embedded or in Qdrant. */
function offlineMemory(store?: 'qdrant'): MemoryService {
  const embedder = createHashingEmbedder();
  return track(
    createMemoryService({
      prisma: db.prisma,
      embedder,
      store:
        store === 'qdrant'
          ? createQdrantStore({ url: qdrant.url, collection: 'keel_memory', dims: embedder.dims, exact: true })
          : createEmbeddedStore({ prisma: db.prisma, dims: embedder.dims, verifyIntervalMs: 0 }),
    }),
  );
}

const TOPICS = ['invoice', 'hiking', 'tax return', 'garden', 'contract', 'piano', 'server outage', 'wedding'];

/** `n` distinct memories, each about one topic and one person. */
function notes(n: number) {
  return Array.from({ length: n }, (_, i) => ({
    text: `note ${i}: ${TOPICS[i % TOPICS.length]} for customer number ${i * 13}`,
    kind: 'episodic' as const,
    subject: `contact:c${i}@example.test`,
    source: 'agent' as const,
  }));
}

async function vectorShapes(): Promise<string[]> {
  const rows = await db.prisma.$queryRaw<Array<{ shape: string }>>`
    SELECT DISTINCT embedding_model || ':' || (octet_length(embedding) / 4) AS shape FROM memory_items ORDER BY 1`;
  return rows.map((r) => r.shape);
}

/** Texts the stand-in was asked to embed since request `from`. */
function embeddedTexts(from = 0): string[] {
  return openai.requests
    .slice(from)
    .filter((r) => r.path === '/v1/embeddings')
    .flatMap((r) => r.body.input as string[]);
}

async function failureOf(p: Promise<unknown>): Promise<ApplicationFailure> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(isEmbeddingMismatch(err)).toBe(true);
  return err as ApplicationFailure;
}

describe('embedding size learned from the endpoint', () => {
  it('needs no setting: the first answer fixes the size of the embedder, the rows and the index', async () => {
    const memory = track(memoryFromConfig(online(), db.prisma));
    expect(memory.embedder.dims).toBeUndefined();
    expect(memory.store.dims).toBeUndefined();

    const { id } = await memory.remember({ ...notes(1)[0]!, text: 'Ada prefers invoices by post' });
    expect(memory.embedder.dims).toBe(LEARNED);
    expect(memory.store.dims).toBe(LEARNED);
    expect(await vectorShapes()).toEqual([`${MODEL}:${LEARNED}`]);
    const sent = openai.requests.filter((r) => r.path === '/v1/embeddings');
    expect(sent.length).toBeGreaterThan(0);
    for (const r of sent) expect(r.body).not.toHaveProperty('dimensions');

    await memory.remember({ ...notes(2)[1]!, text: 'The hiking trip is in May' });
    const found = await memory.search({ query: 'how does Ada want invoices', k: 1 });
    expect(found.results.map((r) => r.id)).toEqual([id]);
    expect(found.embeddingModel).toBe(MODEL);
  });

  it('a fresh process learns the size from its first search, and a Qdrant collection is created with it', async () => {
    const writer = track(memoryFromConfig(online({ QDRANT_URL: qdrant.url }), db.prisma));
    await writer.rememberMany(notes(8));
    const info = await new QdrantClient({ url: qdrant.url, checkCompatibility: false }).getCollection('keel_memory');
    expect(info.config.params.vectors).toEqual({ size: LEARNED, distance: 'Cosine' });

    const reader = track(memoryFromConfig(online({ QDRANT_URL: qdrant.url }), db.prisma));
    const found = await reader.search({ query: 'piano for customer number 65', k: 1 });
    expect(reader.embedder.dims).toBe(LEARNED);
    expect(found.results[0]?.text).toBe(notes(8)[5]!.text);
  });

  it('an explicit KEEL_EMBED_DIMS wins and is sent as `dimensions`', async () => {
    const memory = track(memoryFromConfig(online({ KEEL_EMBED_DIMS: 256 }), db.prisma));
    expect(memory.embedder.dims).toBe(256);
    await memory.remember(notes(1)[0]!);
    expect(await vectorShapes()).toEqual([`${MODEL}@256:256`]);
    const sent = openai.requests.filter((r) => r.path === '/v1/embeddings');
    expect(sent.map((r) => r.body.dimensions)).toEqual(sent.map(() => 256));
  });
});

describe('stored vectors of another size or model', () => {
  it('remember and search fail with a typed, non-retryable failure naming both sizes and models; nothing is written', async () => {
    await offlineMemory().rememberMany(notes(5));
    const memory = track(memoryFromConfig(online(), db.prisma));

    const failure = await failureOf(memory.remember({ ...notes(6)[5]!, text: 'a new memory that must not land' }));
    expect(failure.type).toBe(EMBEDDING_MISMATCH);
    expect(failure.nonRetryable).toBe(true);
    expect(failure.message).toContain(`memory_items holds 5 vectors of 384 dimensions from model ${OFFLINE}`);
    expect(failure.message).toContain(`the configured embedding model ${MODEL} gives ${LEARNED} dimensions`);
    expect(failure.message).toContain('Run `npm run memory:reembed`');
    expect(await db.prisma.memoryItem.count()).toBe(5);
    expect(await vectorShapes()).toEqual([`${OFFLINE}:384`]);

    const again = await failureOf(memory.search({ query: 'invoice' }));
    expect(again.message).toBe(failure.message);
  });

  it('vectors of another model are refused even when the size is the same', async () => {
    // Another model that also answers 768 values: same size, unrelated space.
    const other = track(memoryFromConfig(online({ KEEL_EMBED_MODEL: 'other-embed' }), db.prisma));
    await other.rememberMany(notes(3));
    expect(await vectorShapes()).toEqual([`other-embed:${LEARNED}`]);

    const memory = track(memoryFromConfig(online(), db.prisma));
    const failure = await failureOf(memory.rememberMany(notes(4)));
    expect(failure.message).toContain(`3 vectors of ${LEARNED} dimensions from model other-embed`);
    expect(failure.message).toContain(`${MODEL} gives ${LEARNED} dimensions`);
    expect(await db.prisma.memoryItem.count()).toBe(3);
  });

  it('a Qdrant collection of another size is refused the same way, before any row is written', async () => {
    await new QdrantClient({ url: qdrant.url, checkCompatibility: false }).createCollection('keel_memory', {
      vectors: { size: 384, distance: 'Cosine' },
    });
    const memory = track(memoryFromConfig(online({ QDRANT_URL: qdrant.url }), db.prisma));
    const failure = await failureOf(memory.remember(notes(1)[0]!));
    expect(failure.nonRetryable).toBe(true);
    expect(failure.message).toContain(`"keel_memory" has vectors of size 384`);
    expect(failure.message).toContain(`size ${LEARNED} with Cosine distance, the size of embedding model ${MODEL}`);
    expect(failure.message).toContain('npm run memory:reembed');
    expect(await db.prisma.memoryItem.count()).toBe(0);
  });
});

describe('npm run memory:reembed', () => {
  it('converts a database of 384-dimension memories to the endpoint’s size; search works after', async () => {
    const before = offlineMemory();
    await before.rememberMany(notes(50));
    await before.archive([(await before.search({ query: 'garden', k: 1 })).results[0]!.id]);

    const seen: number[] = [];
    const result = await reembedMemories({
      prisma: db.prisma,
      embedder: memoryFromConfig(online(), db.prisma).embedder,
      batchSize: 16,
      onProgress: (p) => {
        seen.push(p.done);
        expect(p.pending).toBe(50);
      },
    });
    expect(result).toMatchObject({ model: MODEL, dims: LEARNED, reembedded: 50, total: 50, indexed: 50 });
    expect(seen).toEqual([0, 16, 32, 48, 50]);
    expect(await vectorShapes()).toEqual([`${MODEL}:${LEARNED}`]);

    const memory = track(memoryFromConfig(online(), db.prisma));
    const found = await memory.search({ query: 'server outage for customer number 78', k: 1 });
    expect(found.results[0]?.text).toBe(notes(50)[6]!.text);
    expect(found.lexical).toBe(false);
    expect(await memory.stats()).toMatchObject({ hot: 49, archived: 1 });
    // Nothing left to do: a second run converts nothing and still indexes everything.
    const rerun = await reembedMemories({ prisma: db.prisma, embedder: memory.embedder });
    expect(rerun).toMatchObject({ reembedded: 0, indexed: 50 });
  });

  it('recreates a Qdrant collection with the new size and fills it', async () => {
    await offlineMemory('qdrant').rememberMany(notes(30));
    const client = new QdrantClient({ url: qdrant.url, checkCompatibility: false });
    expect((await client.getCollection('keel_memory')).config.params.vectors).toMatchObject({ size: 384 });

    const config = online({ QDRANT_URL: qdrant.url });
    const result = await reembedMemories({
      prisma: db.prisma,
      embedder: memoryFromConfig(config, db.prisma).embedder,
      qdrant: { url: qdrant.url, collection: 'keel_memory' },
      batchSize: 7,
    });
    expect(result).toMatchObject({ store: 'qdrant', reembedded: 30, indexed: 30, recreatedCollection: true });
    const info = await client.getCollection('keel_memory');
    expect(info.config.params.vectors).toEqual({ size: LEARNED, distance: 'Cosine' });
    expect(info.points_count).toBe(30);

    const memory = track(memoryFromConfig(config, db.prisma));
    const found = await memory.search({ query: 'wedding for customer number 91', k: 1 });
    expect(found.results[0]?.text).toBe(notes(30)[7]!.text);
  });

  it('resumes after an interruption without redoing converted rows', async () => {
    const all = notes(40);
    await offlineMemory().rememberMany(all);
    // Uncached, so every text converted shows as a request to the endpoint.
    const embedder = () => createOpenAIEmbedder({ baseURL: openai.baseURL, model: MODEL });

    const first = openai.requests.length;
    await expect(
      reembedMemories({
        prisma: db.prisma,
        embedder: embedder(),
        batchSize: 16,
        onProgress: ({ done }) => {
          if (done >= 16) throw new Error('simulated crash');
        },
      }),
    ).rejects.toThrow('simulated crash');
    const firstRun = embeddedTexts(first).filter((t) => t.startsWith('note '));
    expect(firstRun).toHaveLength(16);
    expect(await vectorShapes()).toEqual([`${MODEL}:${LEARNED}`, `${OFFLINE}:384`]);
    // Meanwhile the engine refuses the half-converted database instead of mixing spaces.
    await failureOf(track(memoryFromConfig(online(), db.prisma)).search({ query: 'invoice' }));

    const second = openai.requests.length;
    const result = await reembedMemories({ prisma: db.prisma, embedder: embedder(), batchSize: 16 });
    expect(result).toMatchObject({ reembedded: 24, total: 40, indexed: 40 });
    const secondRun = embeddedTexts(second).filter((t) => t.startsWith('note '));
    expect(secondRun).toHaveLength(24);
    expect(new Set([...firstRun, ...secondRun])).toEqual(new Set(all.map((n) => n.text)));
    expect(await vectorShapes()).toEqual([`${MODEL}:${LEARNED}`]);

    const memory = track(memoryFromConfig(online(), db.prisma));
    const found = await memory.search({ query: 'tax return for customer number 26', k: 1 });
    expect(found.results[0]?.text).toBe(all[2]!.text);
  });

  it('the script prints progress and a final count and exits 0', async () => {
    await offlineMemory().rememberMany(notes(12));
    const child = spawn(
      process.execPath,
      ['-r', 'ts-node/register/transpile-only', path.join('scripts', 'memory-reembed.ts')],
      {
        cwd: ROOT,
        env: { ...process.env, DATABASE_URL: db.url, OPENAI_BASE_URL: openai.baseURL, KEEL_EMBED_MODEL: MODEL },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let out = '';
    let err = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (err += c.toString()));
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    expect({ code, err }).toEqual({ code: 0, err: '' });
    expect(out).toContain(`12 of 12 memories to re-embed with ${MODEL}`);
    expect(out).toContain('re-embedded 12/12');
    expect(out).toContain(
      `done: re-embedded 12 memories with ${MODEL} (${LEARNED} dimensions); 12 of 12 indexed in the embedded store`,
    );
    expect(await vectorShapes()).toEqual([`${MODEL}:${LEARNED}`]);
  });
});
