/**
 * The model gateway: every chat-model call Keel makes goes through here, on
 * the `openai` package, so any OpenAI-compatible server works (OpenAI, Azure
 * OpenAI, Ollama, vLLM, LM Studio).
 *
 * It is built for Temporal activities:
 * - The client's own retries are off and every request has a timeout, so
 *   Temporal's retry policy is the only one and one attempt is one request.
 * - Errors become `ApplicationFailure`s (see ./failures.ts): 429, 5xx,
 *   timeouts and connection errors are retryable (a 429's `Retry-After`
 *   becomes `nextRetryDelay`); 400/401/403/404 are not. Messages name the
 *   tier, model, endpoint and status, never the key.
 * - `json` asks for structured output (json_schema, else JSON mode with the
 *   schema in the prompt), parses it with zod, and asks once more with the
 *   validation error before failing with `ModelOutputInvalid`.
 * - Every result carries its tokens and cost (./prices.ts) and a hash of
 *   the request, for accounting and caching.
 */
import { createHash } from 'node:crypto';
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import OpenAI, { APIConnectionError, APIConnectionTimeoutError, APIError, APIUserAbortError } from 'openai';
import { z } from 'zod';
import type { Config } from '../config/index';
import { NON_RETRYABLE_MODEL_FAILURES, RETRYABLE_MODEL_FAILURES, type ModelFailureDetails } from './failures';
import { costOf, resolvePrices, type PriceTable } from './prices';
import { promptTokens } from './prompt';
import { countTokens } from './tokenizer';

/** The chat tiers: `small` for routing, parsing and classification; `large` for planning and synthesis. */
export type ModelTier = 'small' | 'large';

export const MODEL_TIERS: readonly ModelTier[] = ['small', 'large'];

/** The settings the gateway reads (a `Config` has them all). */
export type ModelGatewayConfig = Pick<
  Config,
  | 'OPENAI_API_KEY'
  | 'OPENAI_BASE_URL'
  | 'KEEL_MODEL_SMALL'
  | 'KEEL_MODEL_LARGE'
  | 'KEEL_MODEL_SMALL_URL'
  | 'KEEL_MODEL_SMALL_KEY'
  | 'KEEL_MODEL_LARGE_URL'
  | 'KEEL_MODEL_LARGE_KEY'
  | 'KEEL_MODEL_TIMEOUT_MS'
  | 'KEEL_PRICES'
  | 'KEEL_MODEL_SMALL_CONTEXT'
  | 'KEEL_MODEL_LARGE_CONTEXT'
>;

/** Where a tier's calls go. */
export interface TierEndpoint {
  tier: ModelTier;
  /** The configured model name (a call may pass another, e.g. the one pinned for its goal). */
  model: string;
  /** Undefined: OpenAI's own API. */
  baseURL: string | undefined;
  apiKey: string | undefined;
  /** The tier's context window in tokens (`KEEL_MODEL_SMALL_CONTEXT`, ...): prompt plus answer must fit. */
  contextTokens: number;
}

const OPENAI_DEFAULT_BASE_URL = 'https://api.openai.com/v1';

/**
 * The endpoint of one tier, or undefined when it has none (neither a base URL
 * nor a key). A tier with its own URL (`KEEL_MODEL_SMALL_URL`) uses only its
 * own key (`KEEL_MODEL_SMALL_KEY`), never the shared `OPENAI_API_KEY`, so a
 * cloud key is not sent to a local server; a tier without its own URL uses
 * `OPENAI_BASE_URL` with its own key if it has one, else the shared key.
 */
export function tierEndpoint(config: ModelGatewayConfig, tier: ModelTier): TierEndpoint | undefined {
  const own =
    tier === 'small'
      ? {
          model: config.KEEL_MODEL_SMALL,
          url: config.KEEL_MODEL_SMALL_URL,
          key: config.KEEL_MODEL_SMALL_KEY,
          context: config.KEEL_MODEL_SMALL_CONTEXT,
        }
      : {
          model: config.KEEL_MODEL_LARGE,
          url: config.KEEL_MODEL_LARGE_URL,
          key: config.KEEL_MODEL_LARGE_KEY,
          context: config.KEEL_MODEL_LARGE_CONTEXT,
        };
  const baseURL = own.url || config.OPENAI_BASE_URL || undefined;
  const apiKey = own.url ? own.key || undefined : own.key || config.OPENAI_API_KEY || undefined;
  if (!baseURL && !apiKey) return undefined;
  return { tier, model: own.model, baseURL, apiKey, contextTokens: own.context };
}

/**
 * Whether models can be used: every chat tier has an endpoint (a base URL or
 * a key, shared or its own). When false the engine runs offline (the offline
 * planner and templates), as it does with no model settings at all.
 */
export function modelsConfigured(config: ModelGatewayConfig): boolean {
  return MODEL_TIERS.every((tier) => tierEndpoint(config, tier) !== undefined);
}

/** One chat message. Plain JSON, so it can travel in activity inputs and be hashed. */
export interface ChatMessage {
  role: 'system' | 'user' | 'assistant';
  content: string;
}

/** What every call takes. */
export interface ModelCallOptions {
  tier: ModelTier;
  /** Overrides the tier's configured model name (the name pinned for a goal); the tier's endpoint stays. */
  model?: string;
  messages: ChatMessage[];
  /** Most output tokens (`max_tokens`); also what a budget reserves for the call. */
  maxTokens: number;
  temperature?: number;
  /** Overrides `KEEL_MODEL_TIMEOUT_MS` for this call (each request of the call gets it). */
  timeoutMs?: number;
  /** Aborts the request, e.g. an activity's `cancellationSignal()`; the abort error is rethrown as is. */
  signal?: AbortSignal;
}

/** Options of {@link ModelGateway.json}. */
export interface JsonCallOptions<S extends z.ZodType> extends ModelCallOptions {
  /** What the answer must be. Its JSON Schema (zod's, input side) is sent; zod then holds the answer to it. */
  schema: S;
  /** The json_schema's `name` (letters, digits, `_` and `-`), e.g. `keel_plan`. */
  schemaName: string;
  /**
   * OpenAI's strict structured outputs (default false). Strict needs a schema
   * in OpenAI's subset (every property required, `z.strictObject`, no open
   * records); zod validates the answer either way.
   */
  strict?: boolean;
}

/** How a structured answer was asked for: json_schema, JSON mode with the schema in the prompt, or the prompt alone. */
export type OutputMode = 'json_schema' | 'tool' | 'json_object' | 'prompt';

/** Where a server refuses an output mode, the next one to try: json_schema, a forced function call, JSON mode, the prompt alone. */
const NEXT_MODE: Record<Exclude<OutputMode, 'prompt'>, OutputMode> = {
  json_schema: 'tool',
  tool: 'json_object',
  json_object: 'prompt',
};

/** What every call returns. Token counts and cost add up every request the call made. */
export interface ModelCallResult<T> {
  value: T;
  /** The model asked for (the pinned or configured name): the one priced and recorded. */
  model: string;
  tier: ModelTier;
  inputTokens: number;
  outputTokens: number;
  costUsd: number;
  /** False when the model is not in the price table: `costUsd` is then 0, not a real cost. */
  priced: boolean;
  /** True when the endpoint reported no usage and the tokens were counted with models/tokenizer.ts. */
  tokensCounted: boolean;
  /** sha256 (hex) of the request: model, messages, parameters and output schema. The same request, the same hash. */
  promptHash: string;
  /** HTTP requests the call made (more than one after an invalid answer or a refused response_format). */
  requests: number;
  /** Why the model stopped the last answer (`stop`, `length`, ...). */
  finishReason: string | null;
}

/** Structured output for {@link ModelGateway.json}; `mode` says how it was requested in the end. */
export interface JsonCallResult<T> extends ModelCallResult<T> {
  mode: OutputMode;
}

/** The gateway. Build one per worker with {@link createModelGateway}. */
export interface ModelGateway {
  /**
   * Asks for an answer matching `schema` and returns it parsed. An answer
   * that is not JSON or does not match is asked for once more, with the
   * error appended to the conversation; a second bad answer fails with a
   * non-retryable `ModelOutputInvalid` that says what was wrong.
   */
  json<S extends z.ZodType>(opts: JsonCallOptions<S>): Promise<JsonCallResult<z.output<S>>>;
  /** Asks for free text (drafting). */
  text(opts: ModelCallOptions): Promise<ModelCallResult<string>>;
  /** The tier's endpoint as configured (model, base URL and context window; no key). */
  endpoint(tier: ModelTier): { model: string; baseURL: string; contextTokens: number };
}

/** Test and wiring hooks that the environment does not carry. */
export interface ModelGatewayDeps {
  /** Passed to the `openai` client (tests use it to observe requests). */
  fetch?: typeof fetch;
}

/**
 * Builds the gateway from the model settings. Throws when a tier has no
 * endpoint: check {@link modelsConfigured} first and stay offline without one.
 */
export function createModelGateway(config: ModelGatewayConfig, deps: ModelGatewayDeps = {}): ModelGateway {
  const prices: PriceTable = resolvePrices(config.KEEL_PRICES);
  const timeoutMs = config.KEEL_MODEL_TIMEOUT_MS;
  /** Endpoint+model → the output mode it accepted after refusing a better one. */
  const modes = new Map<string, OutputMode>();

  const tiers = {} as Record<ModelTier, { endpoint: TierEndpoint; client: OpenAI; where: string }>;
  for (const tier of MODEL_TIERS) {
    const endpoint = tierEndpoint(config, tier);
    if (!endpoint) {
      throw new Error(
        `The ${tier} model tier has no endpoint: set OPENAI_BASE_URL or OPENAI_API_KEY (or KEEL_MODEL_${tier.toUpperCase()}_URL)`,
      );
    }
    const client = new OpenAI({
      // Both given explicitly: the client would otherwise read OPENAI_API_KEY /
      // OPENAI_BASE_URL from the environment behind the config's back (and a
      // tier with its own URL must not get the shared key). Keyless local
      // servers ignore the placeholder.
      apiKey: endpoint.apiKey ?? 'no-api-key',
      baseURL: endpoint.baseURL ?? OPENAI_DEFAULT_BASE_URL,
      maxRetries: 0,
      timeout: timeoutMs,
      fetch: deps.fetch,
    });
    tiers[tier] = { endpoint, client, where: displayUrl(client.baseURL) };
  }

  interface Call {
    tier: ModelTier;
    model: string;
    where: string;
    client: OpenAI;
    secrets: string[];
    inputTokens: number;
    outputTokens: number;
    costUsd: number;
    priced: boolean;
    tokensCounted: boolean;
    requests: number;
  }

  function begin(opts: ModelCallOptions): Call {
    const t = tiers[opts.tier];
    if (!t) throw new Error(`Unknown model tier "${String(opts.tier)}" (expected ${MODEL_TIERS.join(' or ')})`);
    if (!Number.isInteger(opts.maxTokens) || opts.maxTokens <= 0) {
      throw new Error(`maxTokens must be a positive integer, got ${opts.maxTokens}`);
    }
    const model = opts.model || t.endpoint.model;
    return {
      tier: opts.tier,
      model,
      where: t.where,
      client: t.client,
      secrets: [t.endpoint.apiKey ?? ''].filter((s) => s.length >= 4),
      inputTokens: 0,
      outputTokens: 0,
      costUsd: 0,
      priced: priceKnown(model),
      tokensCounted: false,
      requests: 0,
    };
  }

  function priceKnown(model: string): boolean {
    return costOf({ model, inputTokens: 0, outputTokens: 0, prices }).priced;
  }

  /** One HTTP request; accounts for its usage. Errors come back as they are (see {@link toFailure}). */
  async function send(
    call: Call,
    opts: ModelCallOptions,
    messages: ChatMessage[],
    responseFormat: OpenAI.ChatCompletionCreateParams['response_format'],
    tool?: { name: string; parameters: Record<string, unknown>; strict: boolean },
  ): Promise<{ content: string | null; refusal: string | null; finishReason: string | null }> {
    call.requests += 1;
    const timeout = opts.timeoutMs ?? timeoutMs;
    const started = Date.now();
    let completion: OpenAI.ChatCompletion;
    try {
      completion = await call.client.chat.completions.create(
        {
          model: call.model,
          messages,
          max_tokens: opts.maxTokens,
          ...(opts.temperature === undefined ? {} : { temperature: opts.temperature }),
          ...(responseFormat ? { response_format: responseFormat } : {}),
          // Function calling for servers without structured outputs: the answer is the forced call's arguments.
          ...(tool
            ? {
                tools: [
                  {
                    type: 'function' as const,
                    function: {
                      name: tool.name,
                      description: 'Give the answer',
                      parameters: tool.parameters,
                      strict: tool.strict,
                    },
                  },
                ],
                tool_choice: { type: 'function' as const, function: { name: tool.name } },
              }
            : {}),
        },
        { maxRetries: 0, timeout, signal: opts.signal },
      );
    } catch (err) {
      // The client recognises its own timeout only when fetch's AbortError is
      // an Error of the client's realm; in a VM context (Jest) it is not, and
      // the timeout is reported as a connection error. The clock tells.
      if (
        err instanceof APIConnectionError &&
        !(err instanceof APIConnectionTimeoutError) &&
        Date.now() - started >= timeout
      ) {
        throw new APIConnectionTimeoutError();
      }
      throw err;
    }
    if (!completion || !Array.isArray(completion.choices)) {
      throw new BadAnswer('an answer without choices');
    }
    const choice = completion.choices[0];
    // An answer given as a function call (asked for, or a model's own habit) is the call's arguments.
    const called = choice?.message?.tool_calls?.find((t) => t.type === 'function');
    const text = typeof choice?.message?.content === 'string' ? choice.message.content : null;
    const content =
      (text === null || text.trim() === '') && called && called.type === 'function' ? called.function.arguments : text;
    const usage = completion.usage;
    let inputTokens = usage?.prompt_tokens;
    let outputTokens = usage?.completion_tokens;
    if (typeof inputTokens !== 'number' || typeof outputTokens !== 'number') {
      inputTokens = promptTokens(messages);
      outputTokens = countTokens(content ?? '');
      call.tokensCounted = true;
    }
    call.inputTokens += inputTokens;
    call.outputTokens += outputTokens;
    call.costUsd += costOf({ model: call.model, inputTokens, outputTokens, prices }).costUsd;
    return { content, refusal: choice?.message?.refusal ?? null, finishReason: choice?.finish_reason ?? null };
  }

  function result<T>(call: Call, value: T, promptHash: string, finishReason: string | null): ModelCallResult<T> {
    return {
      value,
      model: call.model,
      tier: call.tier,
      inputTokens: call.inputTokens,
      outputTokens: call.outputTokens,
      costUsd: roundUsd(call.costUsd),
      priced: call.priced,
      tokensCounted: call.tokensCounted,
      promptHash,
      requests: call.requests,
      finishReason,
    };
  }

  return {
    async json<S extends z.ZodType>(opts: JsonCallOptions<S>): Promise<JsonCallResult<z.output<S>>> {
      const call = begin(opts);
      const strict = opts.strict ?? false;
      const schemaJson = jsonSchemaOf(opts.schema);
      const promptHash = requestHash(call.model, opts, jsonOutput(opts));
      const modeKey = `${call.where} ${call.model}`;
      let mode: OutputMode = modes.get(modeKey) ?? 'json_schema';
      let conversation = opts.messages;
      let firstProblem: string | undefined;

      for (let attempt = 1; ;) {
        const messages =
          mode === 'json_schema' || mode === 'tool'
            ? conversation
            : [...conversation, schemaInstruction(opts.schemaName, schemaJson)];
        let answer: Awaited<ReturnType<typeof send>>;
        try {
          answer = await send(
            call,
            opts,
            messages,
            responseFormatFor(mode, opts.schemaName, schemaJson, strict),
            mode === 'tool' ? { name: opts.schemaName, parameters: schemaJson, strict } : undefined,
          );
        } catch (err) {
          if (mode !== 'prompt' && refusesResponseFormat(err)) {
            mode = NEXT_MODE[mode];
            modes.set(modeKey, mode);
            continue;
          }
          throw toFailure(err, call);
        }

        const checked = checkAnswer(opts.schema, answer);
        if (checked.ok) {
          return { ...result(call, checked.value as z.output<S>, promptHash, answer.finishReason), mode };
        }
        if (attempt >= 2) {
          throw ApplicationFailure.create({
            type: NON_RETRYABLE_MODEL_FAILURES.outputInvalid,
            nonRetryable: true,
            message: redact(
              `${describe(call)} gave an invalid "${opts.schemaName}" answer twice: ${checked.problem}` +
                (firstProblem && firstProblem !== checked.problem ? ` (first answer: ${firstProblem})` : ''),
              call.secrets,
            ),
            details: [spent(call)],
          });
        }
        firstProblem = checked.problem;
        attempt += 1;
        conversation = [
          ...conversation,
          { role: 'assistant', content: answer.content ?? '' },
          {
            role: 'user',
            content:
              `That answer is not valid: ${checked.problem}. ` +
              `Answer again with only the JSON object for "${opts.schemaName}", matching its schema exactly.`,
          },
        ];
      }
    },

    async text(opts: ModelCallOptions): Promise<ModelCallResult<string>> {
      const call = begin(opts);
      const promptHash = requestHash(call.model, opts, 'text');
      let answer: Awaited<ReturnType<typeof send>>;
      try {
        answer = await send(call, opts, opts.messages, undefined);
      } catch (err) {
        throw toFailure(err, call);
      }
      if (answer.content === null) {
        throw ApplicationFailure.create({
          type: NON_RETRYABLE_MODEL_FAILURES.outputInvalid,
          nonRetryable: true,
          message: redact(
            `${describe(call)} answered with no text` +
              (answer.refusal ? ` (refusal: ${cut(answer.refusal)})` : ` (finish_reason ${answer.finishReason})`),
            call.secrets,
          ),
          details: [spent(call)],
        });
      }
      return result(call, answer.content, promptHash, answer.finishReason);
    },

    endpoint(tier: ModelTier) {
      const t = tiers[tier];
      return { model: t.endpoint.model, baseURL: t.where, contextTokens: t.endpoint.contextTokens };
    },
  };

  function spent(call: Call): ModelFailureDetails {
    return {
      tier: call.tier,
      model: call.model,
      inputTokens: call.inputTokens,
      outputTokens: call.outputTokens,
      costUsd: roundUsd(call.costUsd),
    };
  }

  function describe(call: Call): string {
    return `The ${call.tier} model tier (model "${call.model}" at ${call.where})`;
  }

  /** Any error of a request as an ApplicationFailure; an abort by the caller's signal passes as is. */
  function toFailure(err: unknown, call: Call): unknown {
    if (err instanceof ApplicationFailure || err instanceof APIUserAbortError) return err;
    const who = describe(call);
    const make = (type: string, nonRetryable: boolean, what: string, nextRetryDelay?: number) =>
      ApplicationFailure.create({
        type,
        nonRetryable,
        message: redact(`${who} failed: ${what}`, call.secrets),
        details: [spent(call)],
        ...(nextRetryDelay === undefined ? {} : { nextRetryDelay }),
      });

    if (err instanceof APIConnectionTimeoutError) {
      return make(RETRYABLE_MODEL_FAILURES.timeout, false, 'no answer within the timeout');
    }
    if (err instanceof APIConnectionError) {
      return make(RETRYABLE_MODEL_FAILURES.unavailable, false, `connection error (${cut(causeOf(err))})`);
    }
    if (err instanceof APIError && typeof err.status === 'number') {
      const status = err.status;
      const what = `HTTP ${status}: ${cut(serverMessage(err))}`;
      if (status === 429) {
        return make(RETRYABLE_MODEL_FAILURES.rateLimited, false, what, rateLimitDelayMs(err.headers));
      }
      if (status >= 500 || status === 408 || status === 409) {
        return make(RETRYABLE_MODEL_FAILURES.serverError, false, what);
      }
      const types: Record<number, string> = {
        400: NON_RETRYABLE_MODEL_FAILURES.badRequest,
        422: NON_RETRYABLE_MODEL_FAILURES.badRequest,
        401: NON_RETRYABLE_MODEL_FAILURES.unauthorized,
        403: NON_RETRYABLE_MODEL_FAILURES.forbidden,
        404: NON_RETRYABLE_MODEL_FAILURES.notFound,
      };
      return make(types[status] ?? NON_RETRYABLE_MODEL_FAILURES.requestRefused, true, what);
    }
    // Not the protocol: a body that is not JSON, an answer without choices. Another attempt may get a proper one.
    const name = err instanceof Error ? err.name : typeof err;
    const detail = err instanceof BadAnswer ? err.message : `${name}: ${err instanceof Error ? err.message : ''}`;
    return make(RETRYABLE_MODEL_FAILURES.unavailable, false, `the endpoint answered ${cut(detail)}`);
  }
}

/** An answer that is not a chat completion. */
class BadAnswer extends Error {}

/** The JSON Schema sent for `schema`: zod's, for the input side (what the model writes), without `$schema`. */
/** JSON Schemas by zod schema: converting one costs ~0.2 ms, and every call of a tool sends the same one. */
const JSON_SCHEMAS = new WeakMap<z.ZodType, Record<string, unknown>>();

function jsonSchemaOf(schema: z.ZodType): Record<string, unknown> {
  let json = JSON_SCHEMAS.get(schema);
  if (!json) {
    json = z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' }) as Record<string, unknown>;
    delete json.$schema;
    JSON_SCHEMAS.set(schema, json);
  }
  return json;
}

function responseFormatFor(
  mode: OutputMode,
  name: string,
  schema: Record<string, unknown>,
  strict: boolean,
): OpenAI.ChatCompletionCreateParams['response_format'] {
  if (mode === 'json_schema') return { type: 'json_schema', json_schema: { name, schema, strict } };
  if (mode === 'json_object') return { type: 'json_object' };
  return undefined;
}

/** Where the endpoint cannot take json_schema, the schema goes into the prompt. */
function schemaInstruction(name: string, schema: Record<string, unknown>): ChatMessage {
  return {
    role: 'system',
    content:
      `Answer with a single JSON object and nothing else (no prose, no code fences). ` +
      `It must match this JSON Schema, named "${name}":\n${JSON.stringify(schema)}`,
  };
}

/**
 * A 400 that says the endpoint does not take this `response_format` or
 * function calling (an old model, a server without structured outputs). A 400 about an invalid schema
 * is our bug, not a missing feature: it fails as ModelBadRequest instead.
 */
function refusesResponseFormat(err: unknown): boolean {
  if (!(err instanceof APIError) || err.status !== 400) return false;
  const body = (err.error ?? {}) as { param?: unknown };
  const text = `${serverMessage(err)} ${typeof body.param === 'string' ? body.param : ''}`;
  return /response_format|json_schema|json_object|tool_choice|\btools\b/i.test(text) && !/invalid schema/i.test(text);
}

function checkAnswer(
  schema: z.ZodType,
  answer: { content: string | null; refusal: string | null; finishReason: string | null },
): { ok: true; value: unknown } | { ok: false; problem: string } {
  if (answer.content === null || answer.content.trim() === '') {
    const why = answer.refusal ? `the model refused: ${cut(answer.refusal)}` : 'the answer was empty';
    return { ok: false, problem: why };
  }
  const truncated = answer.finishReason === 'length' ? ' (the answer was cut off at maxTokens)' : '';
  let data: unknown;
  try {
    data = JSON.parse(stripFences(answer.content));
  } catch (err) {
    return { ok: false, problem: `not valid JSON: ${err instanceof Error ? err.message : String(err)}${truncated}` };
  }
  const parsed = schema.safeParse(data);
  if (parsed.success) return { ok: true, value: parsed.data };
  const issues = parsed.error.issues
    .slice(0, 10)
    .map((i) => `${i.path.length ? i.path.join('.') : '(root)'}: ${i.message}`)
    .join('; ');
  return { ok: false, problem: `does not match the schema: ${issues}${truncated}` };
}

/** Models without JSON mode often wrap their JSON in a Markdown code fence. */
function stripFences(text: string): string {
  const m = /^\s*```(?:json)?\s*\n([\s\S]*?)\n?```\s*$/i.exec(text);
  return m ? m[1] : text;
}

/**
 * The hash of a request: model, messages, parameters and the output asked for
 * (`'text'` or {@link jsonOutput}). Recorded as a call's `promptHash`, and the
 * output cache's notion of "the same request".
 */
export function requestHash(model: string, opts: ModelCallOptions, output: unknown): string {
  const request = {
    model,
    messages: opts.messages,
    maxTokens: opts.maxTokens,
    temperature: opts.temperature ?? null,
    output,
  };
  return createHash('sha256').update(JSON.stringify(request)).digest('hex');
}

/** The output part of a structured request's hash: the json_schema's name, JSON Schema and strictness. */
export function jsonOutput(opts: Pick<JsonCallOptions<z.ZodType>, 'schema' | 'schemaName' | 'strict'>) {
  return { name: opts.schemaName, schema: jsonSchemaOf(opts.schema), strict: opts.strict ?? false };
}

/** The delay a 429 asks for: `retry-after-ms`, else `retry-after` (seconds or an HTTP date); undefined if neither. */
/**
 * How long to wait after a 429: the provider's Retry-After, but never less than the activity's own
 * exponential backoff (1 s doubling to 30 s by attempt). A provider that keeps saying "retry in 0.5 s"
 * through a storm would otherwise use up every attempt in seconds (issue 10's fault suite: a goal failed
 * on an 8 s storm). No Retry-After: Temporal's backoff as it is.
 */
function rateLimitDelayMs(headers: Headers | undefined): number | undefined {
  const after = retryAfterMs(headers);
  if (after === undefined) return undefined;
  return Math.max(after, Math.min(30_000, 1000 * 2 ** (currentAttempt() - 1)));
}

/** The activity attempt this call belongs to (1 outside an activity, e.g. the API's event classification). */
function currentAttempt(): number {
  try {
    return Context.current().info.attempt;
  } catch {
    return 1;
  }
}

function retryAfterMs(headers: Headers | undefined): number | undefined {
  const ms = Number(headers?.get('retry-after-ms') ?? NaN);
  if (Number.isFinite(ms) && ms >= 0) return Math.ceil(ms);
  const raw = headers?.get('retry-after');
  if (!raw) return undefined;
  const seconds = Number(raw);
  if (Number.isFinite(seconds) && seconds >= 0) return Math.ceil(seconds * 1000);
  const date = Date.parse(raw);
  return Number.isFinite(date) ? Math.max(0, date - Date.now()) : undefined;
}

function serverMessage(err: APIError): string {
  const body = err.error as { message?: unknown } | undefined;
  return typeof body?.message === 'string' ? body.message : err.message;
}

/** The underlying reason of a connection error (fetch's `cause`, e.g. `ECONNREFUSED`), by shape: it may come from another realm. */
function causeOf(err: Error): string {
  let reason: unknown = (err as { cause?: unknown }).cause;
  for (let depth = 0; depth < 3 && typeof reason === 'object' && reason !== null; depth++) {
    const { code, message, cause } = reason as { code?: unknown; message?: unknown; cause?: unknown };
    if (typeof code === 'string') return typeof message === 'string' ? `${code}: ${message}` : code;
    if (cause === undefined) return typeof message === 'string' && message ? message : err.message;
    reason = cause;
  }
  return err.message;
}

/** A base URL fit to show: no user info, query or fragment. */
function displayUrl(url: string): string {
  try {
    const u = new URL(url);
    u.username = '';
    u.password = '';
    u.search = '';
    u.hash = '';
    return u.toString().replace(/\/$/, '');
  } catch {
    return '(invalid base URL)';
  }
}

/** Removes the key and anything that looks like one (OpenAI echoes a masked key in its 401). */
function redact(text: string, secrets: string[]): string {
  let out = text;
  for (const s of secrets) out = out.split(s).join('[redacted]');
  return out
    .replace(/(api key provided:\s*)[^\s.,;]+/gi, '$1[redacted]')
    .replace(/\b(sk-|xox[abp]-)[A-Za-z0-9_*-]{4,}/g, '[redacted]')
    .replace(/(Bearer\s+)[^\s"']+/gi, '$1[redacted]');
}

function cut(text: string, max = 400): string {
  return text.length > max ? `${text.slice(0, max)}…` : text;
}

function roundUsd(usd: number): number {
  return Math.round(usd * 1e9) / 1e9;
}
