/**
 * models/gateway.ts with the real `openai` client against local servers that
 * speak the chat-completions protocol (test/helpers/openai-standin.ts).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ApplicationFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { APIUserAbortError } from 'openai';
import { z } from 'zod';
import { defaultConfig, loadConfig } from '../../config/index';
import { MODEL_NON_RETRYABLE_TYPES } from '../../models/failures';
import {
  createModelGateway,
  modelsConfigured,
  tierEndpoint,
  type ChatMessage,
  type ModelGatewayConfig,
} from '../../models/gateway';
import { costOf, DEFAULT_PRICES, priceOf, resolvePrices, worstCaseCostUsd } from '../../models/prices';
import { countTokens } from '../../models/tokenizer';
import { startOpenAIStandin, type OpenAIStandin, type OpenAIStandinOptions } from '../helpers/openai-standin';

const KEY = 'sk-test-gateway-key-wxyz';
const MESSAGES: ChatMessage[] = [
  { role: 'system', content: 'You count things.' },
  { role: 'user', content: 'How many apples are in "apple, apple, pear"?' },
];
const Count = z.object({ fruit: z.string(), count: z.number().int() });

const standins: OpenAIStandin[] = [];
afterEach(async () => {
  await Promise.all(standins.splice(0).map((s) => s.close()));
});

async function standin(opts: OpenAIStandinOptions = {}): Promise<OpenAIStandin> {
  const s = await startOpenAIStandin({ apiKey: KEY, ...opts });
  standins.push(s);
  return s;
}

function configFor(s: OpenAIStandin, overrides: Partial<ModelGatewayConfig> = {}): ModelGatewayConfig {
  return { ...defaultConfig(), OPENAI_BASE_URL: s.baseURL, OPENAI_API_KEY: KEY, ...overrides };
}

/** The ApplicationFailure a call fails with (and fails the test if it succeeds or throws something else). */
async function failureOf(p: Promise<unknown>): Promise<ApplicationFailure> {
  let thrown: unknown;
  try {
    await p;
  } catch (err) {
    thrown = err;
  }
  expect(thrown).toBeInstanceOf(ApplicationFailure);
  return thrown as ApplicationFailure;
}

/** What the stand-in reports as prompt tokens (OpenAI's chat count) for these messages. */
function standinPromptTokens(messages: Array<{ content: unknown }>): number {
  return messages.reduce((sum, m) => sum + countTokens(String(m.content)) + 4, 3);
}

function expectNoKey(failure: ApplicationFailure) {
  const everything = `${failure.message} ${JSON.stringify(failure.details ?? [])} ${failure.stack ?? ''}`;
  expect(everything).not.toContain(KEY);
  expect(everything).not.toContain(KEY.slice(-4));
  expect(everything).not.toContain(KEY.slice(0, 8));
}

const countCall = {
  tier: 'small' as const,
  schema: Count,
  schemaName: 'fruit_count',
  messages: MESSAGES,
  maxTokens: 200,
};

describe('model gateway: structured output', () => {
  it('asks for json_schema with the name and zod’s schema, and returns the parsed answer', async () => {
    const s = await standin();
    s.scriptChat(JSON.stringify({ fruit: 'apple', count: 2 }));
    const gateway = createModelGateway(configFor(s));

    const result = await gateway.json(countCall);

    expect(result.value).toEqual({ fruit: 'apple', count: 2 });
    expect(result.mode).toBe('json_schema');
    expect(result.requests).toBe(1);
    const [req] = s.chatRequests();
    expect(req.headers.authorization).toBe(`Bearer ${KEY}`);
    expect(req.body.model).toBe('gpt-4o-mini');
    expect(req.body.max_tokens).toBe(200);
    expect(req.body.messages).toEqual(MESSAGES);
    expect(req.body.response_format).toEqual({
      type: 'json_schema',
      json_schema: {
        name: 'fruit_count',
        strict: false,
        schema: expect.objectContaining({
          type: 'object',
          properties: { fruit: { type: 'string' }, count: expect.objectContaining({ type: 'integer' }) },
          required: ['fruit', 'count'],
        }),
      },
    });
    // What the endpoint receives is zod's own JSON Schema for the input side.
    const { $schema: _ignored, ...zodSchema } = z.toJSONSchema(Count, { io: 'input' }) as Record<string, unknown>;
    expect(req.body.response_format.json_schema.schema).toEqual(zodSchema);
  });

  it('passes strict: true when asked', async () => {
    const s = await standin();
    s.scriptChat(JSON.stringify({ fruit: 'pear', count: 1 }));
    await createModelGateway(configFor(s)).json({ ...countCall, schema: z.strictObject(Count.shape), strict: true });
    const format = s.chatRequests()[0].body.response_format;
    expect(format.json_schema.strict).toBe(true);
    expect(format.json_schema.schema.additionalProperties).toBe(false);
  });

  it('asks again once with the validation error in the prompt, and takes a valid second answer', async () => {
    const s = await standin();
    s.scriptChat('{"fruit": "apple", "count": ', JSON.stringify({ fruit: 'apple', count: 2 }));
    const result = await createModelGateway(configFor(s)).json(countCall);

    expect(result.value).toEqual({ fruit: 'apple', count: 2 });
    expect(result.requests).toBe(2);
    const [first, second] = s.chatRequests();
    expect(second.body.messages.slice(0, 2)).toEqual(MESSAGES);
    expect(second.body.messages[2]).toEqual({ role: 'assistant', content: '{"fruit": "apple", "count": ' });
    expect(second.body.messages[3].role).toBe('user');
    expect(second.body.messages[3].content).toMatch(/not valid JSON/);
    expect(second.body.messages[3].content).toContain('fruit_count');
    // Tokens and cost add up both requests.
    const expectedIn = standinPromptTokens(first.body.messages) + standinPromptTokens(second.body.messages);
    expect(result.inputTokens).toBe(expectedIn);
    expect(result.outputTokens).toBe(
      countTokens('{"fruit": "apple", "count": ') + countTokens(JSON.stringify({ fruit: 'apple', count: 2 })),
    );
  });

  it('fails non-retryable ModelOutputInvalid after a second invalid answer, naming what was wrong', async () => {
    const s = await standin();
    s.scriptChat(JSON.stringify({ fruit: 'apple', count: 'two' }), JSON.stringify({ fruit: 'apple', count: 2.5 }));
    const failure = await failureOf(createModelGateway(configFor(s)).json(countCall));

    expect(failure.type).toBe('ModelOutputInvalid');
    expect(failure.nonRetryable).toBe(true);
    expect(MODEL_NON_RETRYABLE_TYPES).toContain('ModelOutputInvalid');
    expect(failure.message).toContain('fruit_count');
    expect(failure.message).toMatch(/count: .*int/i);
    expect(failure.message).toContain('small');
    expect(failure.message).toContain('gpt-4o-mini');
    expect(s.chatRequests()).toHaveLength(2);
    expect(s.chatRequests()[1].body.messages[3].content).toMatch(/count: .*expected number/i);
    // The failure carries what the two answered requests cost.
    expect(failure.details?.[0]).toMatchObject({ tier: 'small', model: 'gpt-4o-mini' });
    expect((failure.details?.[0] as { inputTokens: number }).inputTokens).toBeGreaterThan(0);
  });

  it('falls back to a forced function call when json_schema is refused, reads its arguments, and remembers it', async () => {
    const s = await standin({ refuseResponseFormat: ['json_schema'] });
    s.scriptChat(JSON.stringify({ fruit: 'apple', count: 2 }), JSON.stringify({ fruit: 'pear', count: 1 }));
    const gateway = createModelGateway(configFor(s));

    const first = await gateway.json(countCall);
    expect(first.value).toEqual({ fruit: 'apple', count: 2 });
    expect(first.mode).toBe('tool');
    expect(first.requests).toBe(2);
    const [refused, called] = s.chatRequests();
    expect(refused.body.response_format.type).toBe('json_schema');
    expect(called.body.response_format).toBeUndefined();
    expect(called.body.tool_choice).toEqual({ type: 'function', function: { name: 'fruit_count' } });
    expect(called.body.tools[0].function).toMatchObject({
      name: 'fruit_count',
      parameters: { type: 'object', required: ['fruit', 'count'] },
    });
    const second = await gateway.json(countCall);
    expect(second.value).toEqual({ fruit: 'pear', count: 1 });
    expect(second.requests).toBe(1);
    expect(s.chatRequests()[2].body.tool_choice.function.name).toBe('fruit_count');
  });

  it('reads an answer a model gave as a function call unasked, and asks again when its arguments are invalid', async () => {
    const s = await standin();
    s.scriptChat(
      { asToolCall: 'fruit_count', content: '{"fruit":"apple"}' },
      { asToolCall: 'fruit_count', content: '{"fruit":"apple","count":3}' },
    );
    const result = await createModelGateway(configFor(s)).json(countCall);
    expect(result.value).toEqual({ fruit: 'apple', count: 3 });
    expect(result.mode).toBe('json_schema');
    expect(result.requests).toBe(2);
    expect(s.chatRequests()[1].body.messages.at(-1).content).toContain('count');
  });

  it('falls back to JSON mode with the schema in the prompt when json_schema and tools are refused, and remembers it', async () => {
    const s = await standin({ refuseResponseFormat: ['json_schema', 'tools'] });
    s.scriptChat(JSON.stringify({ fruit: 'apple', count: 2 }), JSON.stringify({ fruit: 'pear', count: 1 }));
    const gateway = createModelGateway(configFor(s));

    const first = await gateway.json(countCall);
    expect(first.value).toEqual({ fruit: 'apple', count: 2 });
    expect(first.mode).toBe('json_object');
    expect(first.requests).toBe(3);
    const [refused, noTools, fallback] = s.chatRequests();
    expect(refused.body.response_format.type).toBe('json_schema');
    expect(noTools.body.tools).toHaveLength(1);
    expect(fallback.body.response_format).toEqual({ type: 'json_object' });
    const instruction = fallback.body.messages.at(-1);
    expect(instruction.role).toBe('system');
    expect(instruction.content).toContain('fruit_count');
    expect(instruction.content).toContain('"required":["fruit","count"]');

    // The endpoint is known not to take json_schema: the next call asks for JSON mode straight away.
    const second = await gateway.json(countCall);
    expect(second.value).toEqual({ fruit: 'pear', count: 1 });
    expect(second.requests).toBe(1);
    expect(s.chatRequests()).toHaveLength(4);
    expect(s.chatRequests()[3].body.response_format).toEqual({ type: 'json_object' });
  });

  it('falls back to the schema in the prompt alone when tools and JSON mode are refused too, and reads fenced JSON', async () => {
    const s = await standin({ refuseResponseFormat: ['json_schema', 'tools', 'json_object'] });
    s.scriptChat('```json\n{"fruit":"apple","count":2}\n```');
    const result = await createModelGateway(configFor(s)).json(countCall);
    expect(result.value).toEqual({ fruit: 'apple', count: 2 });
    expect(result.mode).toBe('prompt');
    const bodies = s.chatRequests().map((r) => r.body);
    expect(bodies.map((b) => b.response_format?.type ?? (b.tools ? 'tools' : undefined))).toEqual([
      'json_schema',
      'tools',
      'json_object',
      undefined,
    ]);
    expect(bodies[3].messages.at(-1).content).toContain('JSON Schema');
  });

  it('does not fall back on a 400 about an invalid schema: that is a bad request', async () => {
    const s = await standin();
    s.scriptChat({
      status: 400,
      param: 'response_format',
      message: "Invalid schema for response_format 'fruit_count': 'additionalProperties' is required to be false.",
    });
    const failure = await failureOf(createModelGateway(configFor(s)).json({ ...countCall, strict: true }));
    expect(failure.type).toBe('ModelBadRequest');
    expect(failure.nonRetryable).toBe(true);
    expect(failure.message).toContain('Invalid schema');
    expect(s.chatRequests()).toHaveLength(1);
  });

  it('gives free text from text()', async () => {
    const s = await standin();
    s.scriptChat('Dear Ada, thank you.');
    const result = await createModelGateway(configFor(s)).text({ tier: 'large', messages: MESSAGES, maxTokens: 50 });
    expect(result.value).toBe('Dear Ada, thank you.');
    expect(result).toMatchObject({ tier: 'large', model: 'gpt-4o', requests: 1, finishReason: 'stop' });
    expect(s.chatRequests()[0].body.response_format).toBeUndefined();
  });
});

describe('model gateway: failures fit Temporal, one HTTP request per attempt', () => {
  const textCall = { tier: 'large' as const, messages: MESSAGES, maxTokens: 50 };

  it('429 is retryable with nextRetryDelay from Retry-After (seconds) or retry-after-ms', async () => {
    const s = await standin();
    const gateway = createModelGateway(configFor(s));

    s.failNext(429, 1, { retryAfter: '7' });
    let failure = await failureOf(gateway.text(textCall));
    expect(failure.type).toBe('ModelRateLimited');
    expect(failure.nonRetryable).toBe(false);
    expect(failure.nextRetryDelay).toBe(7000);
    expect(s.requests).toHaveLength(1);

    s.failNext(429, 1, { retryAfterMs: 1250 });
    failure = await failureOf(gateway.text(textCall));
    expect(failure.nextRetryDelay).toBe(1250);
    expect(s.requests).toHaveLength(2);

    s.failNext(429, 1);
    failure = await failureOf(gateway.text(textCall));
    expect(failure.type).toBe('ModelRateLimited');
    expect(failure.nextRetryDelay).toBeUndefined();
    expect(s.requests).toHaveLength(3);
  });

  it('a short Retry-After late in a storm waits at least the activity backoff, so a storm cannot use up every attempt', async () => {
    const s = await standin();
    const gateway = createModelGateway(configFor(s));
    const delayAt = async (attempt: number) => {
      s.failNext(429, 1, { retryAfterMs: 500 });
      const env = new MockActivityEnvironment({ attempt });
      const failure = await failureOf(env.run(() => gateway.text(textCall)));
      expect(failure.type).toBe('ModelRateLimited');
      return failure.nextRetryDelay;
    };
    expect(await delayAt(1)).toBe(1000);
    expect(await delayAt(4)).toBe(8000);
    expect(await delayAt(9)).toBe(30_000);
  });

  it('500 and 503 are retryable server errors, after exactly one request', async () => {
    const s = await standin();
    const gateway = createModelGateway(configFor(s));
    for (const status of [500, 503]) {
      const before = s.requests.length;
      s.failNext(status, 1);
      const failure = await failureOf(gateway.json(countCall));
      expect(failure.type).toBe('ModelServerError');
      expect(failure.nonRetryable).toBe(false);
      expect(failure.message).toContain(`HTTP ${status}`);
      expect(s.requests.length - before).toBe(1);
    }
  });

  it('401 is non-retryable ModelUnauthorized and no message carries the key', async () => {
    const s = await standin({ apiKey: 'sk-the-right-key-1234' });
    const failure = await failureOf(createModelGateway(configFor(s)).text(textCall));
    expect(failure.type).toBe('ModelUnauthorized');
    expect(failure.nonRetryable).toBe(true);
    expect(failure.message).toMatch(/large.*gpt-4o.*HTTP 401/);
    // The server echoed a masked key; it is redacted too.
    expect(failure.message).toContain('[redacted]');
    expectNoKey(failure);
    expect(s.requests).toHaveLength(1);
  });

  it.each([
    [400, 'ModelBadRequest', "Invalid value for 'max_tokens'."],
    [403, 'ModelForbidden', 'You are not allowed to use this model.'],
    [404, 'ModelNotFound', 'The model `gpt-4o` does not exist or you do not have access to it.'],
  ])('%i is non-retryable %s naming model, tier and status, never the key', async (status, type, message) => {
    const s = await standin();
    s.scriptChat({ status, message: `${message} (key ${KEY})` });
    const failure = await failureOf(createModelGateway(configFor(s)).text(textCall));
    expect(failure.type).toBe(type);
    expect(failure.nonRetryable).toBe(true);
    expect(failure.message).toContain(`HTTP ${status}`);
    expect(failure.message).toContain('"gpt-4o"');
    expect(failure.message).toContain('large');
    expect(failure.message).toContain(message);
    expectNoKey(failure);
    expect(s.requests).toHaveLength(1);
  });

  it('a slow answer past the timeout is a retryable ModelTimeout, after one request', async () => {
    const s = await standin();
    s.scriptChat({ delayMs: 3000, content: 'too late' });
    const gateway = createModelGateway(configFor(s, { KEEL_MODEL_TIMEOUT_MS: 300 }));
    const started = Date.now();
    const failure = await failureOf(gateway.text(textCall));
    expect(Date.now() - started).toBeLessThan(2500);
    expect(failure.type).toBe('ModelTimeout');
    expect(failure.nonRetryable).toBe(false);
    expect(s.requests).toHaveLength(1);
  });

  it('a response body that is not JSON is retryable, after one request', async () => {
    const s = await standin();
    s.scriptChat({ rawBody: '{"id": "chatcmpl-1", "choices": [' });
    const failure = await failureOf(createModelGateway(configFor(s)).json(countCall));
    expect(failure.type).toBe('ModelUnavailable');
    expect(failure.nonRetryable).toBe(false);
    expect(s.requests).toHaveLength(1);
  });

  it('an unreachable endpoint is retryable, after one attempt', async () => {
    const s = await standin();
    const url = s.baseURL;
    await s.close();
    standins.splice(standins.indexOf(s), 1);
    const failure = await failureOf(
      createModelGateway({ ...defaultConfig(), OPENAI_BASE_URL: url, OPENAI_API_KEY: KEY }).text(textCall),
    );
    expect(failure.type).toBe('ModelUnavailable');
    expect(failure.nonRetryable).toBe(false);
    expect(failure.message).toMatch(/connection error \(.*ECONNREFUSED/);
    expectNoKey(failure);
  });

  it('passes a caller’s abort through as is (an activity’s cancellation stays a cancellation)', async () => {
    const s = await standin();
    s.scriptChat({ delayMs: 2000, content: 'late' });
    const controller = new AbortController();
    const call = createModelGateway(configFor(s)).text({ ...textCall, signal: controller.signal });
    setTimeout(() => controller.abort(), 100);
    const err = await call.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(Error);
    expect(err).not.toBeInstanceOf(ApplicationFailure);
    expect(err).toBeInstanceOf(APIUserAbortError);
    expect(s.requests).toHaveLength(1);
  });
});

describe('model gateway: accounting', () => {
  it('takes tokens from usage and prices them from the table', async () => {
    const s = await standin();
    const answer = JSON.stringify({ fruit: 'apple', count: 2 });
    s.scriptChat(answer);
    const result = await createModelGateway(configFor(s)).json(countCall);
    const inputTokens = standinPromptTokens(MESSAGES);
    const outputTokens = countTokens(answer);
    expect(result).toMatchObject({ model: 'gpt-4o-mini', tier: 'small', inputTokens, outputTokens, priced: true });
    expect(result.tokensCounted).toBe(false);
    expect(result.costUsd).toBeCloseTo((inputTokens * 0.15 + outputTokens * 0.6) / 1e6, 12);
  });

  it('counts tokens with the tokenizer when the endpoint reports no usage', async () => {
    const s = await standin({ omitUsage: true });
    s.scriptChat('A short draft.');
    const result = await createModelGateway(configFor(s)).text({ tier: 'large', messages: MESSAGES, maxTokens: 50 });
    expect(result.tokensCounted).toBe(true);
    expect(result.inputTokens).toBe(MESSAGES.reduce((n, m) => n + countTokens(m.content) + 4, 3));
    expect(result.outputTokens).toBe(countTokens('A short draft.'));
    expect(result.costUsd).toBeCloseTo((result.inputTokens * 2.5 + result.outputTokens * 10) / 1e6, 12);
  });

  it('uses the model named per call on the tier’s endpoint, priced by KEEL_PRICES; unknown models cost 0, unpriced', async () => {
    const s = await standin();
    const config = configFor(s, {
      KEEL_PRICES: loadConfig({ KEEL_PRICES: '{"my-model":{"input":1,"output":2}}' }).KEEL_PRICES,
    });
    const gateway = createModelGateway(config);
    s.scriptChat('pinned', 'unknown');

    const pinned = await gateway.text({ tier: 'large', model: 'my-model', messages: MESSAGES, maxTokens: 20 });
    expect(s.chatRequests()[0].body.model).toBe('my-model');
    expect(pinned.model).toBe('my-model');
    expect(pinned.priced).toBe(true);
    expect(pinned.costUsd).toBeCloseTo((pinned.inputTokens * 1 + pinned.outputTokens * 2) / 1e6, 12);

    const unknown = await gateway.text({ tier: 'small', model: 'mystery-7b', messages: MESSAGES, maxTokens: 20 });
    expect(s.chatRequests()[1].body.model).toBe('mystery-7b');
    expect(unknown.inputTokens).toBeGreaterThan(0);
    expect(unknown).toMatchObject({ costUsd: 0, priced: false });
  });

  it('hashes the request: the same request gives the same hash, any change another', async () => {
    const s = await standin({ chat: () => JSON.stringify({ fruit: 'apple', count: 2 }) });
    const gateway = createModelGateway(configFor(s));
    const a = await gateway.json(countCall);
    const b = await gateway.json(countCall);
    const otherModel = await gateway.json({ ...countCall, model: 'gpt-4o' });
    const otherMessages = await gateway.json({ ...countCall, messages: [...MESSAGES, { role: 'user', content: '!' }] });
    const otherTokens = await gateway.json({ ...countCall, maxTokens: 201 });
    expect(a.promptHash).toMatch(/^[0-9a-f]{64}$/);
    expect(b.promptHash).toBe(a.promptHash);
    const hashes = new Set([a, otherModel, otherMessages, otherTokens].map((r) => r.promptHash));
    expect(hashes.size).toBe(4);
  });

  it('prices: defaults, overrides, dated snapshots and the worst case', () => {
    expect(priceOf('gpt-4o-mini')).toEqual({ input: 0.15, output: 0.6 });
    expect(priceOf('gpt-4o-2024-08-06')).toEqual(DEFAULT_PRICES['gpt-4o']);
    expect(priceOf('gpt-4o-audio')).toBeUndefined();
    const prices = resolvePrices({ 'gpt-4o': { input: 5, output: 20 } });
    expect(priceOf('gpt-4o', prices)).toEqual({ input: 5, output: 20 });
    expect(priceOf('gpt-4o-mini', prices)).toEqual({ input: 0.15, output: 0.6 });
    expect(costOf({ model: 'gpt-4o-mini', inputTokens: 1_000_000, outputTokens: 1_000_000 })).toEqual({
      costUsd: 0.75,
      priced: true,
    });
    // Worst case: the prompt plus maxTokens of output, at the model's price.
    expect(worstCaseCostUsd({ model: 'gpt-4o', maxTokens: 1000, inputTokens: 2000 })).toBeCloseTo(0.015, 12);
    expect(worstCaseCostUsd({ model: 'gpt-4o', maxTokens: 1000, inputTokens: 2000, prices })).toBeCloseTo(0.03, 12);
    expect(worstCaseCostUsd({ model: 'nobody-knows', maxTokens: 1000, inputTokens: 2000 })).toBe(0);
  });

  it('keeps prices and failure types workflow-safe: they import nothing but zod and the shared store', () => {
    for (const file of ['prices.ts', 'failures.ts']) {
      const source = readFileSync(join(__dirname, '../../models', file), 'utf8');
      const imports = [...source.matchAll(/^import\s[^;]*?from\s+'([^']+)'/gm)].map((m) => m[1]);
      // zod, and the store that shares their schemas across workflows (shared/once.ts: pure, imports nothing).
      expect(imports.every((name) => name === 'zod' || name === '../shared/once')).toBe(true);
      expect(source).not.toMatch(/\brequire\(|Date\.now|Math\.random/);
    }
  });

  it('KEEL_PRICES is validated at config load', () => {
    expect(loadConfig({}).KEEL_PRICES).toEqual({});
    expect(() => loadConfig({ KEEL_PRICES: '{not json' })).toThrow(/KEEL_PRICES: not valid JSON/);
    expect(() => loadConfig({ KEEL_PRICES: '{"m":{"input":-1,"output":2}}' })).toThrow(/KEEL_PRICES\.m\.input/);
    expect(() => loadConfig({ KEEL_PRICES: '{"m":{"input":1}}' })).toThrow(/KEEL_PRICES\.m\.output/);
  });
});

describe('model gateway: tiers and endpoints', () => {
  it('sends each tier to its own base URL with its own key', async () => {
    const small = await standin({ apiKey: 'small-key-1111', chat: () => 'from small' });
    const large = await standin({ apiKey: 'large-key-2222', chat: () => 'from large' });
    const gateway = createModelGateway({
      ...defaultConfig(),
      OPENAI_API_KEY: 'shared-key-3333',
      KEEL_MODEL_SMALL: 'llama3.2',
      KEEL_MODEL_SMALL_URL: small.baseURL,
      KEEL_MODEL_SMALL_KEY: 'small-key-1111',
      KEEL_MODEL_LARGE_URL: large.baseURL,
      KEEL_MODEL_LARGE_KEY: 'large-key-2222',
    });

    const a = await gateway.text({ tier: 'small', messages: MESSAGES, maxTokens: 10 });
    const b = await gateway.text({ tier: 'large', messages: MESSAGES, maxTokens: 10 });
    expect([a.value, b.value]).toEqual(['from small', 'from large']);
    expect(small.chatRequests()).toHaveLength(1);
    expect(large.chatRequests()).toHaveLength(1);
    expect(small.chatRequests()[0].body.model).toBe('llama3.2');
    expect(large.chatRequests()[0].body.model).toBe('gpt-4o');
    expect(gateway.endpoint('small')).toEqual({ model: 'llama3.2', baseURL: small.baseURL, contextTokens: 128_000 });
  });

  it('a tier with its own URL and no key of its own never gets the shared key', async () => {
    const shared = await standin({ apiKey: 'shared-key-3333', chat: () => 'shared' });
    const local = await standin({ apiKey: undefined, chat: () => 'local' });
    const gateway = createModelGateway({
      ...defaultConfig(),
      OPENAI_BASE_URL: shared.baseURL,
      OPENAI_API_KEY: 'shared-key-3333',
      KEEL_MODEL_SMALL_URL: local.baseURL,
    });
    expect((await gateway.text({ tier: 'small', messages: MESSAGES, maxTokens: 10 })).value).toBe('local');
    expect((await gateway.text({ tier: 'large', messages: MESSAGES, maxTokens: 10 })).value).toBe('shared');
    expect(local.chatRequests()[0].headers.authorization).not.toContain('shared-key-3333');
    expect(shared.chatRequests()[0].headers.authorization).toBe('Bearer shared-key-3333');
  });

  it('a tier key without a tier URL uses the shared URL', async () => {
    const s = await standin({ apiKey: undefined, chat: () => 'ok' });
    const gateway = createModelGateway({
      ...defaultConfig(),
      OPENAI_BASE_URL: s.baseURL,
      OPENAI_API_KEY: 'shared-key-3333',
      KEEL_MODEL_LARGE_KEY: 'large-key-2222',
    });
    await gateway.text({ tier: 'large', messages: MESSAGES, maxTokens: 10 });
    await gateway.text({ tier: 'small', messages: MESSAGES, maxTokens: 10 });
    expect(s.chatRequests().map((r) => r.headers.authorization)).toEqual([
      'Bearer large-key-2222',
      'Bearer shared-key-3333',
    ]);
  });

  it('is offline without an endpoint for every tier', () => {
    const none = defaultConfig();
    expect(modelsConfigured(none)).toBe(false);
    expect(tierEndpoint(none, 'small')).toBeUndefined();
    expect(() => createModelGateway(none)).toThrow(/small model tier has no endpoint/);
    expect(modelsConfigured({ ...none, OPENAI_BASE_URL: 'http://127.0.0.1:11434/v1' })).toBe(true);
    expect(modelsConfigured({ ...none, OPENAI_API_KEY: 'k' })).toBe(true);
    expect(modelsConfigured({ ...none, KEEL_MODEL_LARGE_URL: 'http://127.0.0.1:11434/v1' })).toBe(false);
    expect(
      modelsConfigured({ ...none, KEEL_MODEL_LARGE_URL: 'http://a/v1', KEEL_MODEL_SMALL_URL: 'http://b/v1' }),
    ).toBe(true);
    expect(defaultConfig().KEEL_MODEL_TIMEOUT_MS).toBe(60_000);
  });
});
