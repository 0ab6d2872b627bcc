/**
 * Slack connector: posts one message per idempotency key through the real
 * `@slack/web-api` WebClient, and deletes it again for compensation.
 *
 * The protocol, per call of `post`:
 *   1. record an `intent` row in side_effects for the key (attempts + 1);
 *   2. if the row is `committed`, return its recorded `ts` without calling Slack;
 *   3. if an earlier attempt recorded an intent (attempts > 1), it may have
 *      posted before it died: look for a message carrying the key in its
 *      metadata (conversations.history) and commit that one if found;
 *   4. chat.postMessage with metadata `{event_type: keel_side_effect,
 *      event_payload: {key}}`;
 *   5. mark the row `committed` with Slack's `ts` and channel id.
 *
 * Why look before re-posting rather than settle for at-most-once: Slack has
 * no idempotency key, so after a crash between 4 and 5 only Slack knows
 * whether the message went out. At-most-once would have to give up on every
 * retry after a crash anywhere in the window (it cannot tell "died before
 * posting" from "died after"), dropping posts the operator approved; the
 * look-up tells the two apart, so an approved post appears exactly once.
 * The request timeout (SLACK_TIMEOUT_MS) is shorter than the connector's
 * heartbeat timeout, so by the time Temporal retries a dead attempt its
 * request has ended and its message, if any, is in the history. If the
 * look-up itself is refused (a token without the history scope), the post
 * fails non-retryably as `SlackPostUnverified` instead of risking a second copy.
 */
import { ErrorCode, LogLevel, WebClient } from '@slack/web-api';
import { ApplicationFailure } from '@temporalio/common';
import type { Db } from '../db/prisma';
import { noFaults, type FaultHooks } from '../lib/faults';
import { markCommitted, markFailed, noteError, recordIntent } from '../state/side-effects';

/** `kind` of the side_effects rows this connector writes. */
export const SLACK_SIDE_EFFECT_KIND = 'slack.post';
/** The metadata event type that marks a message as one side effect of Keel's. */
export const SLACK_METADATA_EVENT = 'keel_side_effect';
/** Fault point hit after Slack accepted the message and before the commit is written. */
export const SLACK_FAULT_AFTER_POST = 'slack.post.afterPost';

/** How far before the intent the history look-up starts, for clock skew between this host and Slack. */
const LOOKBACK_SKEW_S = 300;
/** Pages of history (200 messages each) searched for an earlier post before giving up the search. */
const MAX_HISTORY_PAGES = 10;

/** Platform error codes that say "try again later" rather than "no". */
const TRANSIENT_PLATFORM_ERRORS = new Set([
  'internal_error',
  'fatal_error',
  'service_unavailable',
  'request_timeout',
  'ratelimited',
  'team_added_to_org',
]);

export interface SlackConnectorOptions {
  /** SLACK_BOT_TOKEN; without it every call fails with `SlackNotConfigured`. */
  token?: string;
  /** SLACK_API_URL, the Web API base URL. */
  apiUrl: string;
  /** SLACK_CHANNEL, used when a post names no channel. */
  defaultChannel?: string;
  /** SLACK_TIMEOUT_MS, the deadline of each request. */
  timeoutMs: number;
  prisma: Db;
  faults?: FaultHooks;
}

export interface SlackPostRequest {
  idempotencyKey: string;
  goalId?: string;
  stepId?: string;
  /** A channel id (C…) or name (#general); without it the default channel. */
  channel?: string;
  text: string;
  /** Stops a post that has not been sent yet; once sent, the answer is awaited. */
  signal?: AbortSignal;
}

/** `posted` now, `already-posted` by an attempt that committed, `found-earlier-post` by one that died before committing. */
export type SlackDelivery = 'posted' | 'already-posted' | 'found-earlier-post';

export interface SlackPostResult {
  /** The channel id Slack posted to. */
  channel: string;
  ts: string;
  delivery: SlackDelivery;
}

export interface SlackConnector {
  post(req: SlackPostRequest): Promise<SlackPostResult>;
  /** Deletes a posted message; one that is already gone counts as deleted. */
  delete(req: { channel: string; ts: string }): Promise<'deleted' | 'already-gone'>;
}

/** What side_effects.result holds for a committed post. */
interface SlackCommit {
  channel: string;
  ts: string;
}

const isCommit = (v: unknown): v is SlackCommit =>
  typeof v === 'object' &&
  v !== null &&
  typeof (v as SlackCommit).channel === 'string' &&
  typeof (v as SlackCommit).ts === 'string';

/** Fields of the WebClient's errors that classification reads (its classes carry a stable `code`). */
interface SlackErrorLike {
  code?: string;
  message?: string;
  data?: { error?: string };
  statusCode?: number;
  retryAfter?: number;
  original?: { message?: string };
}

/**
 * A Temporal failure for an error of the WebClient: rate limits retry after
 * Slack's Retry-After, server trouble and network errors retry, and a refusal
 * (`channel_not_found`, `invalid_auth`, `msg_too_long`, a 4xx) does not.
 */
export function slackFailure(err: unknown, method: string): ApplicationFailure {
  if (err instanceof ApplicationFailure) return err;
  const e = (err ?? {}) as SlackErrorLike;
  const cause = err instanceof Error ? err : undefined;
  if (e.code === ErrorCode.RateLimitedError) {
    return ApplicationFailure.create({
      message: `Slack rate-limited ${method}; retrying after ${e.retryAfter ?? '?'} s`,
      type: 'SlackRateLimited',
      nonRetryable: false,
      nextRetryDelay: typeof e.retryAfter === 'number' ? e.retryAfter * 1000 : undefined,
      cause,
    });
  }
  if (e.code === ErrorCode.PlatformError) {
    const code = e.data?.error ?? 'unknown_error';
    const transient = TRANSIENT_PLATFORM_ERRORS.has(code);
    return ApplicationFailure.create({
      message: `Slack ${transient ? 'could not complete' : 'refused'} ${method}: ${code}`,
      type: transient ? 'SlackUnavailable' : 'SlackRejected',
      nonRetryable: !transient,
      details: [{ error: code }],
      cause,
    });
  }
  if (e.code === ErrorCode.HTTPError && typeof e.statusCode === 'number') {
    const transient = e.statusCode >= 500 || e.statusCode === 408;
    return ApplicationFailure.create({
      message: `Slack answered ${method} with HTTP ${e.statusCode}`,
      type: transient ? 'SlackUnavailable' : 'SlackRejected',
      nonRetryable: !transient,
      details: [{ status: e.statusCode }],
      cause,
    });
  }
  // Request errors (connection refused, reset, the request timeout) and anything unforeseen.
  return ApplicationFailure.create({
    message: `Slack ${method} failed, will retry: ${e.original?.message ?? e.message ?? String(err)}`,
    type: 'SlackUnavailable',
    nonRetryable: false,
    cause,
  });
}

/** The failure for a worker without SLACK_BOT_TOKEN: a setting, not something a retry can fix. */
export function slackNotConfigured(what: string): ApplicationFailure {
  return ApplicationFailure.nonRetryable(
    `${what} needs SLACK_BOT_TOKEN, which is not set on this worker`,
    'SlackNotConfigured',
  );
}

/** Slack's own channel ids: C (public), G (private), D (direct message). */
const CHANNEL_ID = /^[CGD][A-Z0-9]{2,}$/;

function abortError(signal: AbortSignal): Error {
  // Temporal's cancellation signal carries a CancelledFailure: rethrowing it reports "cancelled".
  if (signal.reason instanceof Error) return signal.reason;
  const err = new Error('Slack post aborted before it was sent');
  err.name = 'AbortError';
  return err;
}

/**
 * Creates the connector. The client's own retries are off (Temporal's retry
 * policy is the only one) and rate limits are reported rather than slept
 * through, so Temporal waits out Slack's Retry-After.
 */
export function createSlackConnector(opts: SlackConnectorOptions): SlackConnector {
  const { prisma } = opts;
  const faults = opts.faults ?? noFaults;
  const token = opts.token?.trim() ? opts.token.trim() : undefined;
  const client = token
    ? new WebClient(token, {
        slackApiUrl: opts.apiUrl,
        timeout: opts.timeoutMs,
        retryConfig: { retries: 0 },
        rejectRateLimitedCalls: true,
        logLevel: LogLevel.ERROR,
      })
    : undefined;

  async function call<T>(method: string, fn: (c: WebClient) => Promise<T>): Promise<T> {
    if (!client) throw slackNotConfigured(method);
    try {
      return await fn(client);
    } catch (err) {
      throw slackFailure(err, method);
    }
  }

  /** A channel id for a name, for conversations.history (which takes ids only); undefined if none matches. */
  async function channelId(channel: string): Promise<string | undefined> {
    if (CHANNEL_ID.test(channel)) return channel;
    const name = channel.replace(/^#/, '');
    let cursor: string | undefined;
    do {
      const page = await call('conversations.list', (c) =>
        c.conversations.list({ types: 'public_channel,private_channel', limit: 1000, cursor }),
      );
      const found = page.channels?.find((ch) => ch.name === name);
      if (found?.id) return found.id;
      cursor = page.response_metadata?.next_cursor || undefined;
    } while (cursor);
    return undefined;
  }

  /** An earlier attempt's message carrying this key, if it reached the channel. */
  async function findEarlierPost(channel: string, key: string, since: Date): Promise<SlackCommit | undefined> {
    const id = await channelId(channel);
    if (!id) return undefined;
    const oldest = String(Math.floor(since.getTime() / 1000) - LOOKBACK_SKEW_S);
    let cursor: string | undefined;
    for (let page = 0; page < MAX_HISTORY_PAGES; page++) {
      const res = await call('conversations.history', (c) =>
        c.conversations.history({ channel: id, oldest, include_all_metadata: true, limit: 200, cursor }),
      );
      for (const m of res.messages ?? []) {
        const meta = m.metadata as { event_type?: string; event_payload?: { key?: unknown } } | undefined;
        if (meta?.event_type === SLACK_METADATA_EVENT && meta.event_payload?.key === key && m.ts) {
          return { channel: id, ts: m.ts };
        }
      }
      cursor = res.response_metadata?.next_cursor || undefined;
      if (!res.has_more || !cursor) return undefined;
    }
    return undefined;
  }

  return {
    async post(req) {
      if (!client) throw slackNotConfigured('slack.post');
      const channel = req.channel?.trim() || opts.defaultChannel?.trim();
      if (!channel) {
        throw ApplicationFailure.nonRetryable(
          'slack.post has no channel: the step names none and SLACK_CHANNEL is not set',
          'SlackChannelMissing',
        );
      }
      if (req.signal?.aborted) throw abortError(req.signal);
      const key = req.idempotencyKey;

      // (1) intent
      const row = await recordIntent(
        prisma,
        { idempotencyKey: key, goalId: req.goalId, stepId: req.stepId, kind: SLACK_SIDE_EFFECT_KIND },
        { channel, text: req.text },
      );
      // (2) committed: report what was recorded, never post again.
      if (row.status === 'committed' && isCommit(row.result)) return { ...row.result, delivery: 'already-posted' };

      // (3) an earlier attempt may have posted and died before its commit.
      if (row.attempts > 1) {
        let earlier: SlackCommit | undefined;
        try {
          earlier = await findEarlierPost(channel, key, row.createdAt);
        } catch (err) {
          const f = err as ApplicationFailure;
          if (!f.nonRetryable) throw err;
          throw ApplicationFailure.create({
            message: `an earlier attempt to post to ${channel} may have reached Slack, and checking for it failed (${f.message}); not posting again without knowing. Grant the bot channels:history (groups:history for private channels), or check the channel and retry the goal.`,
            type: 'SlackPostUnverified',
            nonRetryable: true,
            cause: f,
          });
        }
        if (earlier) {
          await markCommitted(prisma, key, { ...earlier });
          return { ...earlier, delivery: 'found-earlier-post' };
        }
      }
      if (req.signal?.aborted) throw abortError(req.signal);

      // (4) post. The signal is not passed on: once the request is out, an
      // abort could not tell whether Slack kept the message.
      let posted: SlackCommit;
      try {
        const res = await call('chat.postMessage', (c) =>
          c.chat.postMessage({
            channel,
            text: req.text,
            metadata: { event_type: SLACK_METADATA_EVENT, event_payload: { key } },
          }),
        );
        if (!res.ts || !res.channel) throw new Error('chat.postMessage answered ok without ts or channel');
        posted = { channel: res.channel, ts: res.ts };
      } catch (err) {
        const failure = slackFailure(err, 'chat.postMessage');
        if (failure.nonRetryable) await markFailed(prisma, key, failure.message);
        else await noteError(prisma, key, failure.message);
        throw failure;
      }
      await faults.hit(SLACK_FAULT_AFTER_POST);

      // (5) commit.
      await markCommitted(prisma, key, { ...posted });
      return { ...posted, delivery: 'posted' };
    },

    async delete({ channel, ts }) {
      try {
        await call('chat.delete', (c) => c.chat.delete({ channel, ts }));
        return 'deleted';
      } catch (err) {
        const code = (err as ApplicationFailure).details?.[0] as { error?: string } | undefined;
        if (code?.error === 'message_not_found') return 'already-gone';
        throw err;
      }
    },
  };
}
