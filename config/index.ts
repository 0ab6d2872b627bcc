import { z } from 'zod';
import { priceTableSchema } from '../models/prices';
import { policySchema } from '../policy/settings';
import { parseCodecKeys, type CodecKeys } from '../codec/keys';
import { resolveTemporalConfig, type TemporalSettings } from './temporal';

const durationMs = (def: number) => z.coerce.number().int().positive().default(def);

/**
 * Everything Keel reads from the environment, parsed once at start-up, except where Temporal is: that is
 * `@temporalio/envconfig`'s (TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, TEMPORAL_CONFIG_FILE, TEMPORAL_PROFILE,
 * TEMPORAL_API_KEY, TEMPORAL_TLS_*; config/temporal.ts), resolved by {@link loadConfig} into `temporal`.
 */
export const configSchema = z.object({
  DATABASE_URL: z.string().url().default('postgresql://postgres@127.0.0.1:5432/keel'),
  /** `auto` (default): DATABASE_URL if set, else the server at KEEL_DEFAULT_DATABASE_URL if it answers, else embedded. */
  KEEL_DATABASE: z.enum(['auto', 'server', 'embedded']).default('auto'),
  /** The server PostgreSQL tried when DATABASE_URL is unset. */
  KEEL_DEFAULT_DATABASE_URL: z.string().url().default('postgresql://postgres@127.0.0.1:5432/keel'),
  /** The embedded database's data folder (PGlite). */
  KEEL_PGLITE_DIR: z.string().min(1).default('.keel/pglite'),
  /** The embedded database's local port (0: any free port). */
  KEEL_PGLITE_PORT: z.coerce.number().int().min(0).max(65535).default(0),
  KEEL_TASK_QUEUE: z.string().min(1).default('keel'),
  /**
   * A task queue of its own for the activities that call a model (planning, drafting, summarizing, classifying,
   * extracting): the API pins it in each goal it starts, and workers poll it with KEEL_MODEL_RATE_PER_SECOND.
   * Unset or empty: model calls run on KEEL_TASK_QUEUE with everything else.
   */
  KEEL_MODEL_TASK_QUEUE: z
    .string()
    .optional()
    .transform((q) => (q?.trim() ? q.trim() : undefined)),
  /**
   * Model-call activities the model task queue hands out per second, across every worker polling it (Temporal's
   * server-side limit, `maxTaskQueueActivitiesPerSecond`). Unset: no limit.
   */
  KEEL_MODEL_RATE_PER_SECOND: z.coerce.number().positive().optional(),
  /**
   * What `npm run worker` runs: `all` (goals on KEEL_TASK_QUEUE, plus the model calls on KEEL_MODEL_TASK_QUEUE
   * when it is set), `goals` (only KEEL_TASK_QUEUE), or `model` (only KEEL_MODEL_TASK_QUEUE).
   */
  KEEL_WORKER_ROLE: z.enum(['all', 'goals', 'model']).default('all'),
  PORT: z.coerce.number().int().min(0).max(65535).default(3000),
  KEEL_API_KEY: z.string().optional(),
  KEEL_BODY_LIMIT: z.string().default('256kb'),
  KEEL_TEMPORAL_TIMEOUT_MS: durationMs(5000),
  SMTP_URL: z.string().optional(),
  KEEL_SMTP_FROM: z.string().default('Keel <keel@localhost>'),
  KEEL_OUTBOX_DIR: z.string().default('.keel/outbox'),
  KEEL_APPROVAL_TIMEOUT_MS: durationMs(24 * 60 * 60 * 1000),
  /** Unedited approvals of one tool to one audience before Keel suggests a trust rule for them (0: never). */
  KEEL_TRUST_SUGGEST_AFTER: z.coerce.number().int().min(0).max(1000).default(3),
  KEEL_ESCALATION_TIMEOUT_MS: durationMs(24 * 60 * 60 * 1000),
  KEEL_CONNECTOR_HEARTBEAT_MS: durationMs(30_000),
  KEEL_MAX_REPLANS: z.coerce.number().int().min(0).max(10).default(2),
  KEEL_DEFAULT_BUDGET_USD: z.coerce.number().positive().default(5),
  KEEL_FAULTS: z.string().optional(),
  KEEL_OPERATOR_NAME: z.string().default('The Keel operator'),
  KEEL_WORKFLOW_BUNDLE: z.string().optional(),
  QDRANT_URL: z.string().url().optional(),
  QDRANT_API_KEY: z.string().optional(),
  KEEL_QDRANT_COLLECTION: z.string().min(1).default('keel_memory'),
  KEEL_EMBED_DIMS: z.coerce.number().int().positive().optional(),
  KEEL_WORKING_SET_TOKENS: z.coerce.number().int().min(50).max(100_000).default(1500),
  KEEL_COMPACTION_INTERVAL: z.string().default('6h'),
  KEEL_COMPACTION_AGE_DAYS: z.coerce.number().positive().default(30),
  KEEL_COMPACTION_MIN_ITEMS: z.coerce.number().int().min(2).default(5),
  OPENAI_API_KEY: z.string().optional(),
  OPENAI_BASE_URL: z.string().optional(),
  KEEL_MODEL_SMALL: z.string().default('gpt-4o-mini'),
  KEEL_MODEL_LARGE: z.string().default('gpt-4o'),
  KEEL_MODEL_SMALL_URL: z.string().optional(),
  KEEL_MODEL_SMALL_KEY: z.string().optional(),
  KEEL_MODEL_LARGE_URL: z.string().optional(),
  KEEL_MODEL_LARGE_KEY: z.string().optional(),
  KEEL_MODEL_TIMEOUT_MS: durationMs(60_000),
  /** Context window of each tier in tokens: prompts are fitted to it (models/prompt.ts fitPrompt). */
  KEEL_MODEL_SMALL_CONTEXT: z.coerce.number().int().min(512).default(128_000),
  KEEL_MODEL_LARGE_CONTEXT: z.coerce.number().int().min(512).default(128_000),
  KEEL_PRICES: z.string().default('{}').transform(parseJson).pipe(priceTableSchema),
  KEEL_EMBED_MODEL: z.string().default('text-embedding-3-small'),
  /** The operator's policy (policy/settings.ts): extra approval rules, tool allow-lists per goal kind, connector rate limits. */
  KEEL_POLICY: z.string().default('{}').transform(parseJson).pipe(policySchema),
  /** The model output cache (models/cache.ts): `on` (default) or `off`. */
  KEEL_MODEL_CACHE: z.enum(['on', 'off']).default('on'),
  /** Freshness per purpose in ms, overriding the specs' (`{"plan": 0, "email.draft": 3600000}`; 0: not cached). */
  KEEL_MODEL_CACHE_FRESH: z
    .string()
    .default('{}')
    .transform(parseJson)
    .pipe(z.record(z.string(), z.number().int().min(0))),
  SLACK_BOT_TOKEN: z.string().optional(),
  SLACK_SIGNING_SECRET: z.string().optional(),
  SLACK_CHANNEL: z.string().optional(),
  SLACK_APPROVERS: z.string().optional(),
  /** Slack's Web API base URL; tests point the real client at a local stand-in. */
  SLACK_API_URL: z.string().url().default('https://slack.com/api/'),
  /** Deadline of each Slack Web API request; the client never retries, Temporal does. */
  SLACK_TIMEOUT_MS: durationMs(10_000),
  /** How often the API looks for approvals to post to Slack and decided ones whose message to update (slack/notify.ts). */
  SLACK_POLL_INTERVAL_MS: durationMs(3000),
  /** HMAC-SHA256 key of the `X-Keel-Signature` header on every webhook.call request (unset or empty: webhook.call fails naming it). */
  KEEL_WEBHOOK_SECRET: z.string().optional(),
  /** Deadline of each webhook.call request; a timeout is retried. */
  KEEL_WEBHOOK_TIMEOUT_MS: durationMs(10_000),
  /** On SIGTERM/SIGINT a worker stops polling and lets running activities finish for this long, then cancels them. */
  KEEL_WORKER_SHUTDOWN_GRACE_MS: durationMs(10_000),
  /** ...and gives up on activities that ignore the cancellation this long after that: the process exits regardless. */
  KEEL_WORKER_SHUTDOWN_FORCE_MS: durationMs(10_000),
  /**
   * Payload encryption (codec/): `id:base64key[,id:base64key...]`, 32-byte AES-256 keys; the first encrypts,
   * all decrypt. Unset or empty: payloads are not encrypted.
   */
  KEEL_CODEC_KEY: z.string().optional().transform(codecKeys),
  /** Origins (comma-separated) of the Temporal Web UI allowed to call the codec endpoint from a browser (CORS). */
  KEEL_CODEC_UI_ORIGINS: z.string().default('http://localhost:8233,http://127.0.0.1:8233').transform(origins),
});

/** KEEL_CODEC_KEY's keys; a malformed list is a config issue saying what is wrong, never quoting a key. */
function codecKeys(text: string | undefined, ctx: z.RefinementCtx): CodecKeys | undefined {
  if (text === undefined || text.trim() === '') return undefined;
  try {
    return parseCodecKeys(text);
  } catch (err) {
    ctx.addIssue({ code: 'custom', message: err instanceof Error ? err.message : String(err) });
    return z.NEVER;
  }
}

/** A comma-separated list of origins (`scheme://host[:port]`, no path), each checked. */
function origins(text: string, ctx: z.RefinementCtx): string[] {
  const list = text
    .split(',')
    .map((o) => o.trim())
    .filter(Boolean);
  for (const origin of list) {
    let parsed: URL | undefined;
    try {
      parsed = new URL(origin);
    } catch {
      parsed = undefined;
    }
    if (!parsed || parsed.origin !== origin.replace(/\/$/, '')) {
      ctx.addIssue({ code: 'custom', message: `"${origin}" is not an origin like http://localhost:8233` });
      return z.NEVER;
    }
  }
  return list.map((o) => o.replace(/\/$/, ''));
}

/** A JSON setting's text as a value; invalid JSON is a config issue naming the parser's complaint. */
function parseJson(text: string, ctx: z.RefinementCtx): unknown {
  try {
    return JSON.parse(text);
  } catch (err) {
    ctx.addIssue({ code: 'custom', message: `not valid JSON (${err instanceof Error ? err.message : String(err)})` });
    return z.NEVER;
  }
}

export type Config = z.infer<typeof configSchema> & {
  /** Where Temporal is and how to reach it (config/temporal.ts): the one source of Temporal's settings. */
  temporal: TemporalSettings;
};

/** Parses the environment; throws one error naming every bad variable (and a bad Temporal profile). */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const parsed = configSchema.safeParse(env);
  const problems = parsed.success ? [] : parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
  let temporal: TemporalSettings | undefined;
  try {
    temporal = resolveTemporalConfig(env);
  } catch (err) {
    problems.push(err instanceof Error ? err.message : String(err));
  }
  if (!parsed.success || !temporal) throw new Error(`Invalid configuration: ${problems.join('; ')}`);
  return { ...parsed.data, temporal };
}

/**
 * Every setting at its default, as an empty environment gives them, for
 * tests and library callers that build parts without a process environment
 * (`defaultConfig().KEEL_BODY_LIMIT`). The schema above is the one place a
 * default is written; callers take it from here instead of repeating it.
 */
export function defaultConfig(): Config {
  return loadConfig({});
}

/**
 * DATABASE_URL alone, parsed by the same schema: for the migration and
 * rebuild scripts, which must not fail because an unrelated setting is invalid.
 */
export function databaseUrl(env: NodeJS.ProcessEnv = process.env): string {
  return configSchema.shape.DATABASE_URL.parse(env.DATABASE_URL);
}
