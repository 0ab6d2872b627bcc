/**
 * The model output cache: a wrapper around the gateway that answers a request
 * it has seen before from PostgreSQL instead of calling the model.
 *
 * Caching is asked for per call, by its caller, with `cache: { key, freshForMs,
 * dependsOn }`: `key` names the purpose (`plan`, `email.draft`) for counting
 * and freshness, `freshForMs` is how long an answer may be served again, and
 * `dependsOn` lists the entities and memories the prompt was built from. A
 * stored answer is served when the request is the same (model, messages,
 * parameters and output schema: the gateway's `promptHash`, on the same tier
 * endpoint), it is still fresh, and every one of its dependencies still has
 * the version it had when the answer was stored; a change to one of them (a
 * memory superseded or archived, a contact updated, an artifact's status)
 * invalidates every entry built from it, in every process, because versions
 * are read from the canonical tables at lookup (`keel_model_cache_version`,
 * migration 0005). Calls without `cache` go straight to the gateway.
 *
 * A hit costs nothing: it returns zero tokens, zero cost and zero requests,
 * and the tokens and dollars the stored answer cost are counted as saved.
 * Hits, misses and savings are counted per purpose in `model_cache_stats`, so
 * every process adds to the same figures ({@link cacheStats}).
 *
 * The cache is an optimisation, never a reason to fail: a lookup that fails
 * falls through to the model, and a failed write is reported, not thrown.
 */
import { createHash } from 'node:crypto';
import { log } from '@temporalio/activity';
import { z } from 'zod';
import type { Db } from '../db/prisma';
import {
  jsonOutput,
  requestHash,
  type JsonCallOptions,
  type JsonCallResult,
  type ModelCallOptions,
  type ModelCallResult,
  type ModelGateway,
  type OutputMode,
} from './gateway';

/** What a prompt can be built from: a memory (`memory_items`), a contact, a goal or an artifact. */
export type CacheDependencyKind = 'memory' | 'contact' | 'goal' | 'artifact';

/**
 * One thing a prompt was built from. Without `version` the cache reads the
 * current one when it looks the request up; with it (formatted as
 * {@link memoryVersion} and its siblings do), that is the version recorded.
 */
export interface CacheDependency {
  kind: CacheDependencyKind;
  id: string;
  version?: string | null;
}

/** The `cache` option of a gateway call. */
export interface ModelCacheSpec {
  /** The purpose or tool, e.g. `plan`, `email.draft`: counted and given its freshness under this name. */
  key: string;
  /** How long a stored answer may be served again (0 or less: not cached). */
  freshForMs: number;
  /** What the prompt was built from; a change to any of them invalidates the answer. */
  dependsOn?: CacheDependency[];
}

/** What the cache did with a call (on its result as `cache`). */
export interface CacheOutcome {
  hit: boolean;
  /** The spec's `key`. */
  purpose: string;
  /** The entry's key (sha256 of purpose, endpoint, request hash and dependency ids). */
  entry: string;
  /** A miss: why nothing was served. */
  reason?: 'absent' | 'expired' | 'invalidated' | 'unusable' | 'unavailable';
  /** A hit: the stored answer's age. */
  ageMs?: number;
  /** A hit: what the stored answer cost when it was made. */
  saved?: { inputTokens: number; outputTokens: number; usd: number };
}

declare module './gateway' {
  interface ModelCallOptions {
    /** Serve this request from the output cache when it can (models/cache.ts); ignored by an unwrapped gateway. */
    cache?: ModelCacheSpec;
  }
  // eslint-disable-next-line @typescript-eslint/no-unused-vars -- an augmentation repeats the type parameter
  interface ModelCallResult<T> {
    /** Set by the output cache when the call asked for it. */
    cache?: CacheOutcome;
  }
}

/** Options of {@link withCache}. */
export interface ModelCacheOptions {
  /** The clock (tests move it to step past a freshness window). */
  now?: () => Date;
  /** Freshness per purpose, overriding what callers ask for (0: that purpose is not cached). */
  freshForMs?: Record<string, number>;
  /** Where cache failures are reported (default: the activity logger, when in an activity). */
  onError?: (err: unknown, during: 'lookup' | 'count' | 'store') => void;
}

/** The version text of a memory, as the database formats it: its `rev`. */
export function memoryVersion(rev: bigint | number): string {
  return String(rev);
}

/** The version text of a contact or goal: its `updated_at` in epoch milliseconds. */
export function updatedAtVersion(updatedAt: Date): string {
  return String(updatedAt.getTime());
}

/** The version text of an artifact: its version and status (voiding an outcome changes it). */
export function artifactVersion(a: { version: number; status: string }): string {
  return `${a.version}:${a.status}`;
}

/**
 * The dependencies of working-set item ids (memory/working-set.ts): memory
 * ids as memories, `contact:<id>` and `goal:<id>` facts as their entities.
 */
export function workingSetDependencies(ids: readonly string[]): CacheDependency[] {
  return ids.map((id): CacheDependency => {
    if (id.startsWith('contact:')) return { kind: 'contact', id: id.slice('contact:'.length) };
    if (id.startsWith('goal:')) return { kind: 'goal', id: id.slice('goal:'.length) };
    return { kind: 'memory', id };
  });
}

/**
 * The dependencies of a context artifact (memory.recall's output): the
 * artifact itself and every memory and fact its working set used, as
 * recorded in its `metadata.memoryIds`.
 */
export async function contextDependencies(prisma: Db, ref: string): Promise<CacheDependency[]> {
  const artifact = await prisma.artifact.findUnique({ where: { id: ref }, select: { metadata: true } });
  const ids = (artifact?.metadata as { memoryIds?: unknown } | null)?.memoryIds;
  const used = Array.isArray(ids) ? ids.filter((i): i is string => typeof i === 'string') : [];
  return [{ kind: 'artifact', id: ref }, ...workingSetDependencies(used)];
}

const WRAPPED = Symbol('keel.modelCache');

/** What an entry keeps of a result besides its accounting. */
interface StoredResult {
  value: unknown;
  finishReason: string | null;
  priced: boolean;
  mode?: OutputMode;
}

interface LookupRow {
  versions: Array<string | null>;
  found: boolean;
  fresh: boolean;
  valid: boolean;
  result: StoredResult | null;
  model: string | null;
  input_tokens: number | null;
  output_tokens: number | null;
  cost_usd: number | null;
  created_at: Date | null;
}

/**
 * Wraps `gateway` so calls that pass `cache` are answered from the cache
 * when they can. Wrapping a wrapped gateway returns it as it is.
 */
export function withCache(gateway: ModelGateway, prisma: Db, opts: ModelCacheOptions = {}): ModelGateway {
  if ((gateway as unknown as Record<symbol, unknown>)[WRAPPED]) return gateway;
  const now = opts.now ?? (() => new Date());
  const report = opts.onError ?? reportInActivity;

  async function through<R extends ModelCallResult<unknown>>(
    call: ModelCallOptions,
    /** The output part of the request hash, computed only when the call is cached. */
    output: () => unknown,
    run: () => Promise<R>,
    revive: (stored: StoredResult) => { ok: true; value: unknown } | { ok: false },
    hitResult: (base: ModelCallResult<unknown>, stored: StoredResult) => R,
  ): Promise<R> {
    const spec = call.cache;
    const freshForMs = spec ? (opts.freshForMs?.[spec.key] ?? spec.freshForMs) : 0;
    if (!spec || !(freshForMs > 0)) return run();

    const endpoint = gateway.endpoint(call.tier);
    const model = call.model || endpoint.model;
    const promptHash = requestHash(model, call, output());
    const deps = normaliseDependencies(spec.dependsOn ?? []);
    const entry = sha256(
      JSON.stringify({
        purpose: spec.key,
        tier: call.tier,
        endpoint: endpoint.baseURL,
        promptHash,
        dependsOn: deps.map((d) => `${d.kind}:${d.id}`),
      }),
    );
    const at = now();

    let row: LookupRow | undefined;
    try {
      [row] = await prisma.$queryRaw<LookupRow[]>`
        SELECT
          (SELECT coalesce(array_agg(keel_model_cache_version(d.kind, d.id) ORDER BY d.ord), '{}')
             FROM unnest(${deps.map((d) => d.kind)}::text[], ${deps.map((d) => d.id)}::text[])
                  WITH ORDINALITY AS d(kind, id, ord)) AS versions,
          e.key IS NOT NULL AS found,
          coalesce(e.expires_at > ${at}, false) AS fresh,
          NOT EXISTS (
            SELECT 1 FROM jsonb_to_recordset(coalesce(e.depends_on, '[]'::jsonb)) AS s(kind text, id text, version text)
             WHERE s.version IS DISTINCT FROM keel_model_cache_version(s.kind, s.id)) AS valid,
          e.result, e.model, e.input_tokens, e.output_tokens, e.cost_usd, e.created_at
        FROM (SELECT 1) AS one LEFT JOIN model_cache e ON e.key = ${entry}`;
    } catch (err) {
      report(err, 'lookup');
    }
    if (!row) {
      const result = await run();
      return { ...result, cache: { hit: false, purpose: spec.key, entry, reason: 'unavailable' } };
    }

    if (row.found && row.fresh && row.valid && row.result) {
      const revived = revive(row.result);
      if (revived.ok) {
        const saved = {
          inputTokens: row.input_tokens ?? 0,
          outputTokens: row.output_tokens ?? 0,
          usd: row.cost_usd ?? 0,
        };
        try {
          await prisma.$executeRaw`
            WITH touched AS (UPDATE model_cache SET hits = hits + 1 WHERE key = ${entry} RETURNING key)
            INSERT INTO model_cache_stats (purpose, hits, input_tokens_saved, output_tokens_saved, usd_saved, updated_at)
            VALUES (${spec.key}, 1, ${saved.inputTokens}, ${saved.outputTokens}, ${saved.usd}, ${at})
            ON CONFLICT (purpose) DO UPDATE SET
              hits = model_cache_stats.hits + 1,
              input_tokens_saved = model_cache_stats.input_tokens_saved + EXCLUDED.input_tokens_saved,
              output_tokens_saved = model_cache_stats.output_tokens_saved + EXCLUDED.output_tokens_saved,
              usd_saved = model_cache_stats.usd_saved + EXCLUDED.usd_saved,
              updated_at = EXCLUDED.updated_at`;
        } catch (err) {
          report(err, 'count');
        }
        const base: ModelCallResult<unknown> = {
          value: revived.value,
          model: row.model ?? model,
          tier: call.tier,
          inputTokens: 0,
          outputTokens: 0,
          costUsd: 0,
          priced: row.result.priced,
          tokensCounted: false,
          promptHash,
          requests: 0,
          finishReason: row.result.finishReason,
        };
        return {
          ...hitResult(base, { ...row.result, value: revived.value }),
          cache: {
            hit: true,
            purpose: spec.key,
            entry,
            ageMs: row.created_at ? at.getTime() - row.created_at.getTime() : 0,
            saved,
          },
        };
      }
    }

    const reason: CacheOutcome['reason'] = !row.found
      ? 'absent'
      : !row.valid
        ? 'invalidated'
        : !row.fresh
          ? 'expired'
          : 'unusable';
    // The miss is counted (and a stale entry dropped) while the model answers.
    const stale = row.found ? row.created_at : null;
    const counted = prisma.$executeRaw`
        WITH gone AS (DELETE FROM model_cache WHERE key = ${entry} AND created_at = ${stale} RETURNING key)
        INSERT INTO model_cache_stats (purpose, misses, invalidated, expired, updated_at)
        VALUES (${spec.key}, 1, ${reason === 'invalidated' ? 1 : 0}, ${reason === 'expired' ? 1 : 0}, ${at})
        ON CONFLICT (purpose) DO UPDATE SET
          misses = model_cache_stats.misses + 1,
          invalidated = model_cache_stats.invalidated + EXCLUDED.invalidated,
          expired = model_cache_stats.expired + EXCLUDED.expired,
          updated_at = EXCLUDED.updated_at`.then(
      () => undefined,
      (err: unknown) => report(err, 'count'),
    );
    let result: R;
    try {
      result = await run();
    } finally {
      await counted;
    }

    // A text cut off at maxTokens is not worth serving again.
    if (result.finishReason !== 'length') {
      const versions = deps.map((d, i) => ({ kind: d.kind, id: d.id, version: d.version ?? row.versions[i] ?? null }));
      const stored: StoredResult = {
        value: result.value,
        finishReason: result.finishReason,
        priced: result.priced,
        ...('mode' in result ? { mode: (result as unknown as { mode: OutputMode }).mode } : {}),
      };
      const storedAt = now();
      try {
        await prisma.$executeRaw`
          WITH pruned AS (DELETE FROM model_cache WHERE expires_at <= ${storedAt} AND key <> ${entry} RETURNING key)
          INSERT INTO model_cache (key, purpose, prompt_hash, model, tier, result, depends_on,
                                   input_tokens, output_tokens, cost_usd, hits, created_at, expires_at)
          VALUES (${entry}, ${spec.key}, ${result.promptHash}, ${result.model}, ${result.tier},
                  ${JSON.stringify(stored)}::jsonb, ${JSON.stringify(versions)}::jsonb,
                  ${result.inputTokens}, ${result.outputTokens}, ${result.costUsd}, 0,
                  ${storedAt}, ${new Date(storedAt.getTime() + freshForMs)})
          ON CONFLICT (key) DO UPDATE SET
            prompt_hash = EXCLUDED.prompt_hash, model = EXCLUDED.model, tier = EXCLUDED.tier,
            result = EXCLUDED.result, depends_on = EXCLUDED.depends_on,
            input_tokens = EXCLUDED.input_tokens, output_tokens = EXCLUDED.output_tokens,
            cost_usd = EXCLUDED.cost_usd, hits = 0,
            created_at = EXCLUDED.created_at, expires_at = EXCLUDED.expires_at`;
      } catch (err) {
        report(err, 'store');
      }
    }
    return { ...result, cache: { hit: false, purpose: spec.key, entry, reason } };
  }

  const wrapped: ModelGateway = {
    json<S extends z.ZodType>(call: JsonCallOptions<S>): Promise<JsonCallResult<z.output<S>>> {
      return through(
        call,
        () => jsonOutput(call),
        () => gateway.json(call),
        (stored) => {
          // zod holds a stored answer to today's schema too; one that no longer parses is not served.
          const parsed = call.schema.safeParse(stored.value);
          return parsed.success ? { ok: true, value: parsed.data } : { ok: false };
        },
        (base, stored) => ({ ...base, value: base.value as z.output<S>, mode: stored.mode ?? 'json_schema' }),
      );
    },
    text(call: ModelCallOptions): Promise<ModelCallResult<string>> {
      return through(
        call,
        () => 'text',
        () => gateway.text(call),
        (stored) => (typeof stored.value === 'string' ? { ok: true, value: stored.value } : { ok: false }),
        (base) => ({ ...base, value: base.value as string }),
      );
    },
    endpoint: (tier) => gateway.endpoint(tier),
  };
  Object.defineProperty(wrapped, WRAPPED, { value: true });
  return wrapped;
}

/** The cache's counters, summed over every process and purpose, and per purpose. */
export interface ModelCacheStats {
  hits: number;
  misses: number;
  /** hits / (hits + misses); 0 before any lookup. */
  hitRate: number;
  /** Input plus output tokens that hits did not spend. */
  tokensSaved: number;
  inputTokensSaved: number;
  outputTokensSaved: number;
  usdSaved: number;
  /** Misses whose entry was there but built from something that has changed since. */
  invalidated: number;
  /** Misses whose entry was there but past its freshness window. */
  expired: number;
  byPurpose: Record<string, Omit<ModelCacheStats, 'byPurpose'>>;
}

/** Reads the cache's persisted counters (GET /v1/metrics shows them). */
export async function cacheStats(prisma: Db): Promise<ModelCacheStats> {
  const rows = await prisma.modelCacheStat.findMany({ orderBy: { purpose: 'asc' } });
  const figures = (r: {
    hits: bigint;
    misses: bigint;
    invalidated: bigint;
    expired: bigint;
    inputTokensSaved: bigint;
    outputTokensSaved: bigint;
    usdSaved: number;
  }): Omit<ModelCacheStats, 'byPurpose'> => {
    const hits = Number(r.hits);
    const misses = Number(r.misses);
    return {
      hits,
      misses,
      hitRate: hits + misses > 0 ? hits / (hits + misses) : 0,
      tokensSaved: Number(r.inputTokensSaved + r.outputTokensSaved),
      inputTokensSaved: Number(r.inputTokensSaved),
      outputTokensSaved: Number(r.outputTokensSaved),
      usdSaved: roundUsd(r.usdSaved),
      invalidated: Number(r.invalidated),
      expired: Number(r.expired),
    };
  };
  const total = figures(
    rows.reduce(
      (sum, r) => ({
        hits: sum.hits + r.hits,
        misses: sum.misses + r.misses,
        invalidated: sum.invalidated + r.invalidated,
        expired: sum.expired + r.expired,
        inputTokensSaved: sum.inputTokensSaved + r.inputTokensSaved,
        outputTokensSaved: sum.outputTokensSaved + r.outputTokensSaved,
        usdSaved: sum.usdSaved + r.usdSaved,
      }),
      { hits: 0n, misses: 0n, invalidated: 0n, expired: 0n, inputTokensSaved: 0n, outputTokensSaved: 0n, usdSaved: 0 },
    ),
  );
  return { ...total, byPurpose: Object.fromEntries(rows.map((r) => [r.purpose, figures(r)])) };
}

/** One entry per thing, in a stable order, so the same inputs give the same entry key. */
function normaliseDependencies(deps: readonly CacheDependency[]): CacheDependency[] {
  const byRef = new Map<string, CacheDependency>();
  for (const d of deps) byRef.set(`${d.kind}:${d.id}`, d);
  return [...byRef.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, d]) => d);
}

function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

function roundUsd(usd: number): number {
  return Math.round(usd * 1e9) / 1e9;
}

/** Outside an activity there is no logger to report to; the cache then stays quiet, as a cache may. */
function reportInActivity(err: unknown, during: string): void {
  try {
    log.warn(`model cache ${during} failed; the call went on without it`, {
      error: err instanceof Error ? err.message : String(err),
    });
  } catch {
    // not in an activity
  }
}
