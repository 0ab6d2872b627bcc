/**
 * The CLI's HTTP client: JSON over fetch with the bearer key, and every way a
 * request can fail turned into a {@link CliError} that says what to do about
 * it. The CLI knows the engine only through the HTTP API (shared/API.md).
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';

/** Exit codes, so scripts can tell a refusal from an unreachable API or a bad key. */
export const EXIT = {
  ok: 0,
  /** The API answered with an error (400, 404, 409, 5xx), a followed goal failed, or an edit was aborted. */
  failed: 1,
  /** Bad usage: unknown command, missing argument, an option that does not parse. */
  usage: 2,
  /** Nothing answered at KEEL_URL. */
  unreachable: 3,
  /** The API refused the key (401). */
  unauthorized: 4,
} as const;

export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: number = EXIT.failed,
  ) {
    super(message);
  }
}

/** An error answer of the API: `{error: {code, message}}` with its status. */
export class ApiError extends CliError {
  constructor(
    readonly status: number,
    readonly code: string,
    readonly apiMessage: string,
  ) {
    super(
      status === 401 ? 'the API refused the key (KEEL_API_KEY)' : apiMessage,
      status === 401 ? EXIT.unauthorized : EXIT.failed,
    );
  }
}

export const DEFAULT_URL = 'http://localhost:3000';
export const DEFAULT_TIMEOUT_MS = 30_000;

export interface ClientOptions {
  url: string;
  apiKey?: string;
  /** Per request; a decision waits for the workflow to store it, a few seconds at most. */
  timeoutMs?: number;
}

export type Query = Record<string, string | number | boolean | undefined>;

export interface KeelClient {
  readonly url: string;
  get<T>(route: string, query?: Query): Promise<T>;
  post<T>(route: string, body: unknown, headers?: Record<string, string>): Promise<T>;
}

/**
 * Where the CLI connects: `--url`, else KEEL_URL, else localhost:3000; the key
 * from KEEL_API_KEY, else (for an API on this machine only) the `.keel/api-key`
 * file `npm start` writes in the directory it runs from.
 */
export function clientOptionsFromEnv(
  env: NodeJS.ProcessEnv,
  over: { url?: string } = {},
  cwd = process.cwd(),
): ClientOptions {
  const url = (over.url ?? env.KEEL_URL ?? DEFAULT_URL).replace(/\/+$/, '');
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new CliError(`KEEL_URL is not a URL: ${JSON.stringify(url)} (e.g. ${DEFAULT_URL})`, EXIT.usage);
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    throw new CliError(`KEEL_URL must be http:// or https://, not ${parsed.protocol}`, EXIT.usage);
  }
  const timeout = env.KEEL_TIMEOUT_MS ? Number(env.KEEL_TIMEOUT_MS) : DEFAULT_TIMEOUT_MS;
  if (!Number.isFinite(timeout) || timeout <= 0) {
    throw new CliError(`KEEL_TIMEOUT_MS must be a positive number of milliseconds`, EXIT.usage);
  }
  return { url, apiKey: env.KEEL_API_KEY || localKey(parsed, cwd), timeoutMs: timeout };
}

/** The key `npm start` keeps in .keel/api-key, offered only to an API on this machine. */
function localKey(url: URL, cwd: string): string | undefined {
  if (!['localhost', '127.0.0.1', '[::1]'].includes(url.hostname)) return undefined;
  const file = path.join(cwd, '.keel', 'api-key');
  return existsSync(file) ? readFileSync(file, 'utf8').trim() || undefined : undefined;
}

/** What went wrong underneath a failed fetch: `connect ECONNREFUSED 127.0.0.1:3000`, not "fetch failed". */
function causeOf(err: unknown): string {
  let e = err as { message?: string; cause?: unknown; code?: string; errors?: unknown[] } | undefined;
  // undici wraps the socket error; a refused dual-stack connect is an AggregateError of both attempts.
  while (e?.cause) e = e.cause as typeof e;
  if (e?.errors?.length) e = e.errors[0] as typeof e;
  return e?.message || e?.code || String(err);
}

export function createClient(opts: ClientOptions): KeelClient {
  const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;

  async function request<T>(method: string, route: string, body?: unknown, headers: Record<string, string> = {}) {
    let res: Response;
    try {
      res = await fetch(`${opts.url}${route}`, {
        method,
        headers: {
          accept: 'application/json',
          ...(opts.apiKey ? { authorization: `Bearer ${opts.apiKey}` } : {}),
          ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
          ...headers,
        },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(timeoutMs),
      });
    } catch (err) {
      if ((err as Error).name === 'TimeoutError') {
        throw new CliError(`the Keel API at ${opts.url} did not answer within ${timeoutMs} ms (KEEL_TIMEOUT_MS)`);
      }
      throw new CliError(
        `cannot reach the Keel API at ${opts.url}: ${causeOf(err)}; is \`npm start\` running?`,
        EXIT.unreachable,
      );
    }
    const text = await res.text();
    let json: unknown;
    try {
      json = text ? JSON.parse(text) : undefined;
    } catch {
      throw new CliError(
        `${opts.url} answered ${method} ${route} with HTTP ${res.status} and no JSON; is KEEL_URL the Keel API? ` +
          `(it said: ${JSON.stringify(text.slice(0, 120))})`,
      );
    }
    if (res.ok) return json as T;
    const error = (json as { error?: { code?: string; message?: string } } | undefined)?.error;
    if (res.status === 401 && !opts.apiKey) {
      throw new CliError('the API refused the request: KEEL_API_KEY is not set', EXIT.unauthorized);
    }
    throw new ApiError(res.status, error?.code ?? `http_${res.status}`, error?.message ?? `HTTP ${res.status}`);
  }

  return {
    url: opts.url,
    get: (route, query) => request('GET', route + queryString(query)),
    post: (route, body, headers) => request('POST', route, body, headers),
  };
}

function queryString(query: Query = {}): string {
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) if (v !== undefined) params.set(k, String(v));
  const s = params.toString();
  return s ? `?${s}` : '';
}

/** A route segment from something the user typed. */
export const seg = (id: string) => encodeURIComponent(id);
