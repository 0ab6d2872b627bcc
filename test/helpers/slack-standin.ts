/**
 * A local stand-in for Slack's Web API, so the real `@slack/web-api`
 * WebClient runs against it (point it at `apiUrl`). It speaks the protocol
 * the client speaks: POST /api/<method> with form-encoded (or JSON) arguments
 * and a bearer token, answering HTTP 200 `{ok: true, ...}` or
 * `{ok: false, error}`, and 429 with Retry-After for rate limits. It records
 * every call and keeps each channel's messages (with their metadata and
 * blocks), for chat.postMessage, chat.update, chat.delete,
 * conversations.history and conversations.list; it keeps the modals opened
 * with views.open and the ephemeral messages sent with chat.postEphemeral.
 */
import { createHmac } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** One call as the stand-in received it. */
export interface SlackCall {
  method: string;
  /** The arguments, JSON-encoded ones (metadata, blocks) parsed. */
  args: Record<string, unknown>;
  headers: Record<string, string | string[] | undefined>;
}

export interface SlackMessage {
  ts: string;
  text: string;
  /** Block Kit blocks, as last posted or updated. */
  blocks?: any[];
  metadata?: { event_type: string; event_payload: Record<string, unknown> };
  deleted: boolean;
  /** How many times chat.update changed it. */
  updates: number;
}

/** A modal opened with views.open. */
export interface SlackView {
  id: string;
  triggerId: string;
  view: any;
}

/** A message shown to one user with chat.postEphemeral. */
export interface SlackEphemeral {
  channel: string;
  user: string;
  text: string;
  blocks?: any[];
}

export interface SlackChannel {
  id: string;
  name: string;
  messages: SlackMessage[];
}

/** A scripted answer for the next call of a method: a platform error, an HTTP status, or a pause first. */
export type SlackScript =
  { error: string } | { status: number; headers?: Record<string, string>; body?: string } | { delayMs: number };

export interface SlackStandinOptions {
  /** The bot token the stand-in accepts (default `xoxb-test`). */
  token?: string;
  /** Channels that exist (default one: C0GENERAL, named general). */
  channels?: { id: string; name: string }[];
  /** Methods the token lacks the scope for: they answer `missing_scope`. */
  missingScopes?: string[];
}

export interface SlackStandin {
  /** The Web API base URL, for WebClient's slackApiUrl / SLACK_API_URL. */
  apiUrl: string;
  token: string;
  calls: SlackCall[];
  channels: SlackChannel[];
  /** Modals opened with views.open, oldest first. */
  views: SlackView[];
  /** Ephemeral messages, oldest first. */
  ephemerals: SlackEphemeral[];
  /** Calls of one method. */
  callsOf(method: string): SlackCall[];
  /** Messages that are in a channel now (not deleted), oldest first. */
  messagesIn(channelId: string): SlackMessage[];
  /** Answers the next call(s) of `method` as scripted, one script per call, before answering normally again. */
  script(method: string, ...answers: SlackScript[]): void;
  /** Sets which methods answer `missing_scope`. */
  setMissingScopes(methods: string[]): void;
  close(): Promise<void>;
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/** Form or JSON arguments; values the client JSON-encoded (objects) are parsed back. */
function parseArgs(contentType: string, raw: string): Record<string, unknown> {
  if (contentType.includes('application/json')) return raw ? (JSON.parse(raw) as Record<string, unknown>) : {};
  const args: Record<string, unknown> = {};
  for (const [k, v] of new URLSearchParams(raw)) {
    args[k] = /^[[{]/.test(v)
      ? (() => {
          try {
            return JSON.parse(v) as unknown;
          } catch {
            return v;
          }
        })()
      : v;
  }
  return args;
}

export async function startSlackStandin(opts: SlackStandinOptions = {}): Promise<SlackStandin> {
  const token = opts.token ?? 'xoxb-test';
  const channels: SlackChannel[] = (opts.channels ?? [{ id: 'C0GENERAL', name: 'general' }]).map((c) => ({
    ...c,
    messages: [],
  }));
  const calls: SlackCall[] = [];
  const views: SlackView[] = [];
  const ephemerals: SlackEphemeral[] = [];
  let viewSeq = 0;
  const scripts = new Map<string, SlackScript[]>();
  let missingScopes = new Set(opts.missingScopes ?? []);
  let lastTs = 0;

  /** Slack's ts: seconds.microseconds, unique and increasing per workspace. */
  const nextTs = () => {
    lastTs = Math.max(lastTs + 1, Date.now() * 1000);
    return `${Math.floor(lastTs / 1_000_000)}.${String(lastTs % 1_000_000).padStart(6, '0')}`;
  };
  const byIdOrName = (channel: unknown) =>
    typeof channel === 'string'
      ? channels.find((c) => c.id === channel || `#${c.name}` === channel || c.name === channel)
      : undefined;

  const methods: Record<string, (args: Record<string, unknown>) => Record<string, unknown>> = {
    'chat.postMessage'(args) {
      const channel = byIdOrName(args.channel);
      if (!channel) return { ok: false, error: 'channel_not_found' };
      if (typeof args.text !== 'string' || args.text === '') return { ok: false, error: 'no_text' };
      if (args.blocks !== undefined && !Array.isArray(args.blocks)) return { ok: false, error: 'invalid_blocks' };
      if (Array.isArray(args.blocks) && args.blocks.length > 50) return { ok: false, error: 'invalid_blocks' };
      const message: SlackMessage = {
        ts: nextTs(),
        text: args.text,
        blocks: args.blocks as any[] | undefined,
        metadata: args.metadata as SlackMessage['metadata'],
        deleted: false,
        updates: 0,
      };
      channel.messages.push(message);
      return {
        ok: true,
        channel: channel.id,
        ts: message.ts,
        message: { type: 'message', text: message.text, ts: message.ts, bot_id: 'B0KEEL', blocks: message.blocks },
      };
    },
    'chat.update'(args) {
      // Like Slack: the channel must be the id the message was posted to, and the ts one of its messages.
      const channel = channels.find((c) => c.id === args.channel);
      if (!channel) return { ok: false, error: 'channel_not_found' };
      const message = channel.messages.find((m) => m.ts === args.ts && !m.deleted);
      if (!message) return { ok: false, error: 'message_not_found' };
      if (args.blocks !== undefined && !Array.isArray(args.blocks)) return { ok: false, error: 'invalid_blocks' };
      if (Array.isArray(args.blocks) && args.blocks.length > 50) return { ok: false, error: 'invalid_blocks' };
      if (typeof args.text === 'string') message.text = args.text;
      if (args.blocks !== undefined) message.blocks = args.blocks as any[];
      message.updates++;
      return { ok: true, channel: channel.id, ts: message.ts, text: message.text };
    },
    'chat.postEphemeral'(args) {
      const channel = byIdOrName(args.channel);
      if (!channel) return { ok: false, error: 'channel_not_found' };
      if (typeof args.user !== 'string' || args.user === '') return { ok: false, error: 'user_not_in_channel' };
      if ((typeof args.text !== 'string' || args.text === '') && !Array.isArray(args.blocks))
        return { ok: false, error: 'no_text' };
      ephemerals.push({
        channel: channel.id,
        user: args.user,
        text: String(args.text ?? ''),
        blocks: args.blocks as any[] | undefined,
      });
      return { ok: true, message_ts: nextTs() };
    },
    'views.open'(args) {
      if (typeof args.trigger_id !== 'string' || args.trigger_id === '')
        return { ok: false, error: 'invalid_trigger_id' };
      const view = args.view as any;
      if (!view || typeof view !== 'object' || view.type !== 'modal') return { ok: false, error: 'invalid_arguments' };
      if (typeof view.title?.text !== 'string' || view.title.text.length > 24)
        return { ok: false, error: 'invalid_arguments' };
      if (!Array.isArray(view.blocks) || view.blocks.length > 100) return { ok: false, error: 'invalid_arguments' };
      const id = `V${String(++viewSeq).padStart(8, '0')}`;
      views.push({ id, triggerId: args.trigger_id, view });
      return { ok: true, view: { id, hash: `${id}-hash`, ...view, state: { values: {} } } };
    },
    'chat.delete'(args) {
      const channel = byIdOrName(args.channel);
      if (!channel) return { ok: false, error: 'channel_not_found' };
      const message = channel.messages.find((m) => m.ts === args.ts && !m.deleted);
      if (!message) return { ok: false, error: 'message_not_found' };
      message.deleted = true;
      return { ok: true, channel: channel.id, ts: message.ts };
    },
    'conversations.history'(args) {
      // Like Slack: ids only, newest first, `oldest` exclusive, metadata only when asked for.
      const channel = channels.find((c) => c.id === args.channel);
      if (!channel) return { ok: false, error: 'channel_not_found' };
      const oldest = Number(args.oldest ?? 0);
      const limit = Math.min(Number(args.limit ?? 100), 999);
      const start = Number(args.cursor ?? 0);
      const all = channel.messages.filter((m) => !m.deleted && Number(m.ts) > oldest).reverse();
      const page = all.slice(start, start + limit);
      const more = start + limit < all.length;
      return {
        ok: true,
        messages: page.map((m) => ({
          type: 'message',
          ts: m.ts,
          text: m.text,
          bot_id: 'B0KEEL',
          ...(args.include_all_metadata === 'true' || args.include_all_metadata === true
            ? m.metadata
              ? { metadata: m.metadata }
              : {}
            : {}),
        })),
        has_more: more,
        response_metadata: { next_cursor: more ? String(start + limit) : '' },
      };
    },
    'conversations.list'() {
      return {
        ok: true,
        channels: channels.map((c) => ({ id: c.id, name: c.name, is_channel: true })),
        response_metadata: { next_cursor: '' },
      };
    },
  };

  const send = (res: ServerResponse, status: number, body: string, headers: Record<string, string> = {}) => {
    res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', ...headers });
    res.end(body);
  };

  const server = createServer((req, res) => {
    void (async () => {
      const raw = await readBody(req);
      const method = (req.url ?? '').replace(/^\/api\//, '').split('?')[0];
      const args = parseArgs(String(req.headers['content-type'] ?? ''), raw);
      calls.push({ method, args, headers: req.headers });
      let script = scripts.get(method)?.shift();
      while (script && 'delayMs' in script) {
        await new Promise((r) => setTimeout(r, (script as { delayMs: number }).delayMs));
        script = scripts.get(method)?.shift();
      }
      if (script && 'status' in script) return send(res, script.status, script.body ?? '', script.headers);
      if (script && 'error' in script) return send(res, 200, JSON.stringify({ ok: false, error: script.error }));
      if (req.headers.authorization !== `Bearer ${token}`)
        return send(res, 200, JSON.stringify({ ok: false, error: 'invalid_auth' }));
      if (missingScopes.has(method))
        return send(res, 200, JSON.stringify({ ok: false, error: 'missing_scope', needed: 'channels:history' }));
      const handler = methods[method];
      if (!handler) return send(res, 200, JSON.stringify({ ok: false, error: 'unknown_method' }));
      send(res, 200, JSON.stringify(handler(args)));
    })().catch((err: unknown) => send(res, 500, JSON.stringify({ ok: false, error: String(err) })));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;

  return {
    apiUrl: `http://127.0.0.1:${port}/api/`,
    token,
    calls,
    channels,
    views,
    ephemerals,
    callsOf: (method) => calls.filter((c) => c.method === method),
    messagesIn: (channelId) => channels.find((c) => c.id === channelId)?.messages.filter((m) => !m.deleted) ?? [],
    script(method, ...answers) {
      scripts.set(method, [...(scripts.get(method) ?? []), ...answers]);
    },
    setMissingScopes(list) {
      missingScopes = new Set(list);
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** Slack's v0 request signature: HMAC-SHA256 with the signing secret over `v0:<timestamp>:<body>`. */
export function slackSignature(secret: string, ts: number | string, body: string): string {
  return `v0=${createHmac('sha256', secret).update(`v0:${ts}:${body}`).digest('hex')}`;
}

/** An interaction as Slack POSTs it to the app: `payload` form-encoded, timestamped now (or at `ts`) and signed. */
export function slackInteraction(
  payload: unknown,
  opts: { secret: string; ts?: number },
): { body: string; ts: number; headers: Record<string, string> } {
  const body = new URLSearchParams({ payload: JSON.stringify(payload) }).toString();
  const ts = opts.ts ?? Math.floor(Date.now() / 1000);
  return {
    body,
    ts,
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      'x-slack-request-timestamp': String(ts),
      'x-slack-signature': slackSignature(opts.secret, ts, body),
    },
  };
}
