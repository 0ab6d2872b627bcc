/**
 * A local HTTP server that speaks the OpenAI REST protocol for the two
 * endpoints Keel calls, so tests run the real `openai` client (request
 * building, auth header, retries, response parsing) without the internet.
 *
 * - `POST /v1/embeddings`: vectors computed deterministically from each input
 *   text by the offline hashing embedder, honouring `dimensions` and
 *   `encoding_format` (`float` or `base64`).
 * - `POST /v1/chat/completions`: the reply text comes from `opts.chat`
 *   (default: echo the last user message); plain JSON, or server-sent events
 *   when `stream: true`. Tests can script the next answers one by one
 *   (`scriptChat`: a text, an error status with headers, a delay, a body
 *   that is not JSON, no usage), and make the server refuse a
 *   `response_format` type with OpenAI's 400.
 *
 * Errors use OpenAI's shape `{ error: { message, type, param, code } }`.
 */
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createHashingEmbedder } from '../../memory/embedders';
import { countTokens } from '../../models/tokenizer';

/** One request the stand-in received, failed or not, in arrival order. */
export interface StandinRequest {
  method: string;
  /** Path without the query string, e.g. `/v1/embeddings`. */
  path: string;
  /** Parsed JSON body (undefined when the body was empty or not JSON). */
  body: any;
  /** Lower-cased header names, as Node gives them. */
  headers: IncomingHttpHeaders;
  /** When the request's body had arrived (ms since the epoch): rate-limit tests count requests per window. */
  at: number;
}

/** The JSON body of a chat completion request, as the client sent it. */
export type ChatRequestBody = {
  model: string;
  messages: Array<{ role: string; content: unknown }>;
  [key: string]: unknown;
};

/** Options for {@link startOpenAIStandin}. */
export interface OpenAIStandinOptions {
  /** When set, requests must carry `Authorization: Bearer <apiKey>` or get OpenAI's 401. */
  apiKey?: string;
  /** Produces the assistant's reply; default: the text of the last user message. */
  chat?: (body: ChatRequestBody) => string | Promise<string>;
  /**
   * Replaces the vector for one input (before `encoding_format`), e.g. to
   * return the wrong size or non-unit vectors. Default: the hashing
   * embedder's vector for `text` at `dims`.
   */
  embedding?: (text: string, dims: number) => number[];
  /**
   * Lists `data` in reverse order (each item keeps its `index`). The API
   * does not promise order, so clients must place vectors by `index`.
   */
  reverseData?: boolean;
  /** Vector size when the request has no `dimensions` and the model is not one of OpenAI's (default 1536). */
  defaultDims?: number;
  /**
   * `response_format` types the server does not support: a chat request
   * asking for one gets a 400 naming `response_format`, as OpenAI answers
   * for a model without structured outputs.
   */
  refuseResponseFormat?: Array<'json_schema' | 'json_object' | 'tools'>;
  /** Chat answers carry no `usage` (some compatible servers send none). */
  omitUsage?: boolean;
}

/**
 * One scripted chat answer (see {@link OpenAIStandin.scriptChat}): a string is
 * the assistant's text; an object may instead fail, delay or break the answer.
 */
export type ScriptedChatReply =
  | string
  | {
      /** The assistant's text (default: what `opts.chat` gives). */
      content?: string;
      /** Answer with this HTTP error status and OpenAI's error body instead. */
      status?: number;
      /** The error's message (with `status`). */
      message?: string;
      /** The error's `param` (with `status`). */
      param?: string;
      /** Extra response headers, e.g. `{ 'retry-after': '2' }`. */
      headers?: Record<string, string>;
      /** Waits this long before answering (to outlast a client timeout). */
      delayMs?: number;
      /** Sends this text as a 200 body instead of a completion (e.g. malformed JSON). */
      rawBody?: string;
      /** Leaves `usage` out of this answer. */
      omitUsage?: boolean;
      /** The choice's `finish_reason` (default `stop`). */
      finishReason?: string;
      /** Answers with the text as a function call's arguments (content null), as some models do unasked. */
      asToolCall?: string;
    };

/** A running stand-in. */
export interface OpenAIStandin {
  /** e.g. `http://127.0.0.1:41234/v1`: pass as the client's baseURL. */
  baseURL: string;
  /** Every request received, including those answered with an error. */
  requests: StandinRequest[];
  /**
   * The next `n` requests (any endpoint) fail with `status` and an OpenAI
   * error body. `retryAfterMs` adds a `retry-after-ms` header, which the
   * openai client honours, so retry tests need not wait for its backoff.
   */
  failNext(status: number, n: number, opts?: { retryAfterMs?: number; retryAfter?: string }): void;
  /**
   * Queues answers for the next chat completion requests, one per request in
   * order (after `failNext` failures and the key check); when the queue is
   * empty, `opts.chat` answers again.
   */
  scriptChat(...replies: ScriptedChatReply[]): void;
  /**
   * Bad weather until called again with `undefined`: every request answers
   * `status` (with `retry-after-ms` when given), or waits `slowMs` first.
   * The fault suite's 429/500 storms and slow answers.
   */
  weather(w: { status?: number; retryAfterMs?: number; slowMs?: number } | undefined): void;
  /** Chat completion requests received (any outcome), in order. */
  chatRequests(): StandinRequest[];
  close(): Promise<void>;
}

/** Native sizes of OpenAI's embedding models, as the real API returns without `dimensions`. */
const MODEL_DIMS: Record<string, number> = {
  'text-embedding-3-small': 1536,
  'text-embedding-3-large': 3072,
  'text-embedding-ada-002': 1536,
};

/** OpenAI's error `type`/`code` for the statuses tests provoke. */
function errorFor(status: number): { type: string; code: string | null; message: string } {
  switch (status) {
    case 400:
      return { type: 'invalid_request_error', code: null, message: 'Bad request' };
    case 401:
      return { type: 'invalid_request_error', code: 'invalid_api_key', message: 'Incorrect API key provided.' };
    case 404:
      return { type: 'invalid_request_error', code: 'unknown_url', message: 'Not found' };
    case 429:
      return {
        type: 'requests',
        code: 'rate_limit_exceeded',
        message: 'Rate limit reached for requests. Please try again shortly.',
      };
    default:
      return {
        type: status >= 500 ? 'server_error' : 'invalid_request_error',
        code: null,
        message: status >= 500 ? 'The server had an error while processing your request.' : `Error ${status}`,
      };
  }
}

/** Starts the stand-in on 127.0.0.1 on a free port. */
export async function startOpenAIStandin(opts: OpenAIStandinOptions = {}): Promise<OpenAIStandin> {
  const requests: StandinRequest[] = [];
  const failures: Array<{ status: number; retryAfterMs?: number; retryAfter?: string }> = [];
  let weather: { status?: number; retryAfterMs?: number; slowMs?: number } | undefined;
  const script: Array<Exclude<ScriptedChatReply, string>> = [];
  const embedders = new Map<number, ReturnType<typeof createHashingEmbedder>>();

  const sendJson = (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) => {
    const text = JSON.stringify(body);
    res.writeHead(status, {
      'content-type': 'application/json',
      'content-length': Buffer.byteLength(text),
      'x-request-id': `req_${randomBytes(8).toString('hex')}`,
      ...headers,
    });
    res.end(text);
  };

  const sendError = (
    res: ServerResponse,
    status: number,
    override: { message?: string; param?: string | null } = {},
    headers: Record<string, string> = {},
  ) => {
    const { type, code, message } = errorFor(status);
    sendJson(
      res,
      status,
      { error: { message: override.message ?? message, type, param: override.param ?? null, code } },
      headers,
    );
  };

  async function vectorFor(text: string, dims: number): Promise<number[]> {
    if (opts.embedding) return opts.embedding(text, dims);
    let embedder = embedders.get(dims);
    if (!embedder) {
      embedder = createHashingEmbedder({ dims });
      embedders.set(dims, embedder);
    }
    const [v] = await embedder.embed([text]);
    return Array.from(v);
  }

  async function handleEmbeddings(body: any, res: ServerResponse): Promise<void> {
    const input: unknown = body?.input;
    const texts = typeof input === 'string' ? [input] : input;
    if (!Array.isArray(texts) || texts.length === 0 || !texts.every((t) => typeof t === 'string')) {
      sendError(res, 400, {
        message: "'$.input' is invalid: expected a string or an array of strings.",
        param: 'input',
      });
      return;
    }
    if (typeof body.model !== 'string') {
      sendError(res, 400, { message: 'you must provide a model parameter', param: 'model' });
      return;
    }
    const dims: number = body.dimensions ?? MODEL_DIMS[body.model] ?? opts.defaultDims ?? 1536;
    const base64 = body.encoding_format === 'base64';
    const data = [];
    for (let index = 0; index < texts.length; index++) {
      const vector = await vectorFor(texts[index], dims);
      const embedding = base64 ? Buffer.from(new Float32Array(vector).buffer).toString('base64') : vector;
      data.push({ object: 'embedding', index, embedding });
    }
    if (opts.reverseData) data.reverse();
    const tokens = texts.reduce((sum: number, t: string) => sum + countTokens(t), 0);
    sendJson(res, 200, {
      object: 'list',
      data,
      model: body.model,
      usage: { prompt_tokens: tokens, total_tokens: tokens },
    });
  }

  async function handleChat(body: any, res: ServerResponse): Promise<void> {
    const formatType = (body?.response_format as { type?: unknown } | undefined)?.type;
    if (
      (formatType === 'json_schema' || formatType === 'json_object') &&
      opts.refuseResponseFormat?.includes(formatType)
    ) {
      // What the server cannot do, not a scripted answer: the script waits for the next request.
      sendError(res, 400, {
        message: `Invalid parameter: 'response_format' of type '${formatType}' is not supported with this model.`,
        param: 'response_format',
      });
      return;
    }
    if (Array.isArray(body?.tools) && opts.refuseResponseFormat?.includes('tools')) {
      sendError(res, 400, { message: 'This model does not support tools.', param: 'tools' });
      return;
    }
    const scripted = script.shift() ?? {};
    if (scripted.delayMs) {
      let closed = false;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, scripted.delayMs);
        res.once('close', () => {
          closed = true;
          clearTimeout(timer);
          resolve();
        });
      });
      // The client gave up (its timeout) or the server closed: nothing to answer.
      if (closed) return;
    }
    if (scripted.status !== undefined) {
      sendError(res, scripted.status, { message: scripted.message, param: scripted.param }, scripted.headers);
      return;
    }
    if (scripted.rawBody !== undefined) {
      res.writeHead(200, { 'content-type': 'application/json', ...scripted.headers });
      res.end(scripted.rawBody);
      return;
    }
    if (!Array.isArray(body?.messages) || body.messages.length === 0) {
      sendError(res, 400, { message: "'messages' must be a non-empty array", param: 'messages' });
      return;
    }
    const content =
      scripted.content ?? (opts.chat ? await opts.chat(body as ChatRequestBody) : lastUserText(body.messages));
    const omitUsage = scripted.omitUsage ?? opts.omitUsage ?? false;
    const finishReason = scripted.finishReason ?? 'stop';
    const promptTokens = body.messages.reduce(
      (sum: number, m: { content: unknown }) => sum + countTokens(messageText(m.content)) + 4,
      3,
    );
    const completionTokens = countTokens(content);
    const usage = {
      prompt_tokens: promptTokens,
      completion_tokens: completionTokens,
      total_tokens: promptTokens + completionTokens,
    };
    // A forced function call (tool_choice naming one) is answered as that call, like OpenAI does.
    const forced = (body.tool_choice as { function?: { name?: string } } | undefined)?.function?.name;
    const toolName = scripted.asToolCall ?? forced;
    const id = `chatcmpl-${randomBytes(12).toString('hex')}`;
    const created = Math.floor(Date.now() / 1000);
    const model = String(body.model);

    if (body.stream === true) {
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
      const chunk = (choices: unknown[], extra: Record<string, unknown> = {}) =>
        res.write(
          `data: ${JSON.stringify({ id, object: 'chat.completion.chunk', created, model, choices, ...extra })}\n\n`,
        );
      chunk([{ index: 0, delta: { role: 'assistant', content: '' }, logprobs: null, finish_reason: null }]);
      chunk([{ index: 0, delta: { content }, logprobs: null, finish_reason: null }]);
      chunk([{ index: 0, delta: {}, logprobs: null, finish_reason: finishReason }]);
      if ((body.stream_options as { include_usage?: boolean } | undefined)?.include_usage && !omitUsage) {
        chunk([], { usage });
      }
      res.end('data: [DONE]\n\n');
      return;
    }

    sendJson(res, 200, {
      id,
      object: 'chat.completion',
      created,
      model,
      choices: [
        {
          index: 0,
          message: toolName
            ? {
                role: 'assistant',
                content: null,
                refusal: null,
                tool_calls: [
                  {
                    id: `call_${randomBytes(8).toString('hex')}`,
                    type: 'function',
                    function: { name: toolName, arguments: content },
                  },
                ],
              }
            : { role: 'assistant', content, refusal: null },
          logprobs: null,
          finish_reason: toolName && finishReason === 'stop' ? 'tool_calls' : finishReason,
        },
      ],
      ...(omitUsage ? {} : { usage }),
      system_fingerprint: 'fp_keel_standin',
    });
  }

  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks).toString('utf8');
      let body: any;
      try {
        body = raw ? JSON.parse(raw) : undefined;
      } catch {
        body = undefined;
      }
      const path = (req.url ?? '/').split('?')[0];
      requests.push({ method: req.method ?? 'GET', path, body, headers: req.headers, at: Date.now() });

      const failure = failures.shift() ?? (weather?.status ? weather : undefined);
      if (failure?.status) {
        const headers: Record<string, string> = {};
        if (failure.retryAfterMs !== undefined) headers['retry-after-ms'] = String(failure.retryAfterMs);
        if ('retryAfter' in failure && failure.retryAfter !== undefined) headers['retry-after'] = failure.retryAfter;
        sendError(res, failure.status, {}, headers);
        return;
      }
      if (opts.apiKey !== undefined && req.headers.authorization !== `Bearer ${opts.apiKey}`) {
        sendError(res, 401, {
          message: `Incorrect API key provided: ${maskKey(req.headers.authorization)}. You can find your API key at https://platform.openai.com/account/api-keys.`,
        });
        return;
      }
      if (raw && body === undefined) {
        sendError(res, 400, { message: 'We could not parse the JSON body of your request.' });
        return;
      }

      let handled: Promise<void>;
      const slow = weather?.slowMs ? new Promise<void>((r) => setTimeout(r, weather!.slowMs)) : Promise.resolve();
      if (req.method === 'POST' && path === '/v1/embeddings') handled = slow.then(() => handleEmbeddings(body, res));
      else if (req.method === 'POST' && path === '/v1/chat/completions')
        handled = slow.then(() => (res.destroyed ? undefined : handleChat(body, res)));
      else {
        sendError(res, 404, { message: `Invalid URL (${req.method} ${path})` });
        return;
      }
      handled.catch((err: unknown) => {
        // A throwing `opts.chat` or `opts.embedding` is a test bug; answer 500 so the client surfaces it.
        if (res.headersSent) res.destroy();
        else sendError(res, 500, { message: `Stand-in error: ${err instanceof Error ? err.message : String(err)}` });
      });
    });
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;

  return {
    baseURL: `http://127.0.0.1:${port}/v1`,
    requests,
    failNext(status: number, n: number, failOpts: { retryAfterMs?: number; retryAfter?: string } = {}) {
      for (let i = 0; i < n; i++) {
        failures.push({ status, retryAfterMs: failOpts.retryAfterMs, retryAfter: failOpts.retryAfter });
      }
    },
    weather(w) {
      weather = w;
    },
    scriptChat(...replies: ScriptedChatReply[]) {
      for (const reply of replies) script.push(typeof reply === 'string' ? { content: reply } : reply);
    },
    chatRequests() {
      return requests.filter((r) => r.path === '/v1/chat/completions');
    },
    async close() {
      // The openai client keeps connections alive; without this close() would wait for them to idle out.
      server.closeAllConnections();
      await new Promise<void>((resolve, reject) => server.close((err) => (err ? reject(err) : resolve())));
    },
  };
}

/** Text of a message's content: a string, or the text parts of a content array. */
function messageText(content: unknown): string {
  if (typeof content === 'string') return content;
  if (Array.isArray(content)) {
    return content
      .filter((p): p is { type: 'text'; text: string } => p?.type === 'text' && typeof p.text === 'string')
      .map((p) => p.text)
      .join('');
  }
  return '';
}

function lastUserText(messages: Array<{ role: string; content: unknown }>): string {
  for (let i = messages.length - 1; i >= 0; i--) {
    if (messages[i].role === 'user') return messageText(messages[i].content);
  }
  return '';
}

/** Masks a bearer key the way OpenAI's 401 message does (first and last characters only). */
function maskKey(authorization: string | undefined): string {
  const key = authorization?.replace(/^Bearer\s+/i, '') ?? '';
  if (key.length <= 8) return '***';
  return `${key.slice(0, 3)}${'*'.repeat(key.length - 7)}${key.slice(-4)}`;
}
