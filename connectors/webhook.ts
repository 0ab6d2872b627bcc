/**
 * Webhook connector: one signed HTTP POST of a JSON body per idempotency key.
 *
 * Every request carries `Idempotency-Key` (the same on every retry of a step)
 * and `X-Keel-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`,
 * so a receiver can check that Keel sent it, refuse stale replays by `t`, and
 * drop a repeat by its key. Per call of `call`:
 *   1. record an `intent` row in side_effects (attempts + 1);
 *   2. if the row is `committed`, return the recorded answer without calling;
 *   3. POST, with KEEL_WEBHOOK_TIMEOUT_MS as the deadline;
 *   4. 2xx: mark the row `committed` with the status.
 * A crash between 3 and 4 makes the retry send the request again, with the
 * same key: receivers deduplicate on it (that is what the header is for).
 * 408, 429, 5xx, timeouts and network errors are retryable (after Retry-After
 * when the receiver gives one); any other status is a refusal retrying cannot fix.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { ApplicationFailure } from '@temporalio/common';
import type { Db } from '../db/prisma';
import { noFaults, type FaultHooks } from '../lib/faults';
import { markCommitted, markFailed, noteError, recordIntent } from '../state/side-effects';

/** `kind` of the side_effects rows this connector writes. */
export const WEBHOOK_SIDE_EFFECT_KIND = 'webhook.call';
/** The signature header. */
export const WEBHOOK_SIGNATURE_HEADER = 'X-Keel-Signature';
/** Fault point hit after the receiver answered 2xx and before the commit is written. */
export const WEBHOOK_FAULT_AFTER_CALL = 'webhook.call.afterCall';

/** How much of a receiver's answer is kept (in the ledger and in failures). */
const RESPONSE_KEEP = 2000;
/** The longest Retry-After honoured; beyond it Temporal's own backoff is as good. */
const MAX_RETRY_AFTER_MS = 60 * 60 * 1000;

export interface WebhookConnectorOptions {
  /** KEEL_WEBHOOK_SECRET; without it every call fails with `WebhookNotConfigured`. */
  secret?: string;
  /** KEEL_WEBHOOK_TIMEOUT_MS, the deadline of each request. */
  timeoutMs: number;
  prisma: Db;
  faults?: FaultHooks;
  /** The clock the signature's `t` comes from (tests pin it). */
  now?: () => number;
}

export interface WebhookCallRequest {
  idempotencyKey: string;
  goalId?: string;
  stepId?: string;
  /** http or https. */
  url: string;
  /** Any JSON value; sent as its JSON text. */
  body: unknown;
  /** Cancels the request (the receiver deduplicates a repeat by its key, so a cut request is safe to send again). */
  signal?: AbortSignal;
}

/** `called` now, `already-called` by an earlier attempt that committed. */
export type WebhookDelivery = 'called' | 'already-called';

export interface WebhookCallResult {
  status: number;
  delivery: WebhookDelivery;
  /** The start of the receiver's answer. */
  response: string;
}

export interface WebhookConnector {
  call(req: WebhookCallRequest): Promise<WebhookCallResult>;
}

/** `t=<t>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`: the value of the signature header. */
export function signWebhook(secret: string, timestamp: number, body: string): string {
  const mac = createHmac('sha256', secret).update(`${timestamp}.${body}`, 'utf8').digest('hex');
  return `t=${timestamp},v1=${mac}`;
}

/**
 * For receivers (and the tests): true when `header` signs `body` with
 * `secret` and its `t` is within `toleranceS` of `nowS`.
 */
export function verifyWebhookSignature(
  secret: string,
  header: string,
  body: string,
  opts: { nowS?: number; toleranceS?: number } = {},
): boolean {
  const parts = Object.fromEntries(
    header.split(',').map((p) => {
      const i = p.indexOf('=');
      return [p.slice(0, i).trim(), p.slice(i + 1).trim()];
    }),
  );
  const t = Number(parts.t);
  if (!Number.isInteger(t) || typeof parts.v1 !== 'string') return false;
  const nowS = opts.nowS ?? Math.floor(Date.now() / 1000);
  if (Math.abs(nowS - t) > (opts.toleranceS ?? 300)) return false;
  const expected = Buffer.from(signWebhook(secret, t, body).split('v1=')[1], 'hex');
  const given = Buffer.from(parts.v1, 'hex');
  return given.length === expected.length && timingSafeEqual(given, expected);
}

/** Retry-After as milliseconds: delta-seconds or an HTTP date; undefined when absent or unreadable. */
export function retryAfterMs(value: string | null, nowMs: number = Date.now()): number | undefined {
  if (!value) return undefined;
  const trimmed = value.trim();
  const ms = /^\d+$/.test(trimmed) ? Number(trimmed) * 1000 : Date.parse(trimmed) - nowMs;
  if (!Number.isFinite(ms)) return undefined;
  return Math.min(Math.max(ms, 0), MAX_RETRY_AFTER_MS);
}

/** The failure for a worker without KEEL_WEBHOOK_SECRET: a setting, not something a retry can fix. */
export function webhookNotConfigured(): ApplicationFailure {
  return ApplicationFailure.nonRetryable(
    'webhook.call needs KEEL_WEBHOOK_SECRET (the key that signs each request), which is not set on this worker',
    'WebhookNotConfigured',
  );
}

const isRetryableStatus = (status: number) => status === 408 || status === 429 || status >= 500;

function describeNetworkError(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const cause = (err as Error & { cause?: { code?: string; message?: string } }).cause;
  return cause?.code
    ? `${err.message} (${cause.code})`
    : cause?.message
      ? `${err.message}: ${cause.message}`
      : err.message;
}

export function createWebhookConnector(opts: WebhookConnectorOptions): WebhookConnector {
  const { prisma } = opts;
  const faults = opts.faults ?? noFaults;
  const now = opts.now ?? Date.now;
  const secret = opts.secret ? opts.secret : undefined;

  return {
    async call(req) {
      if (!secret) throw webhookNotConfigured();
      const key = req.idempotencyKey;
      const body = JSON.stringify(req.body);
      if (req.signal?.aborted) throw req.signal.reason instanceof Error ? req.signal.reason : new Error('aborted');

      // (1) intent
      const row = await recordIntent(
        prisma,
        { idempotencyKey: key, goalId: req.goalId, stepId: req.stepId, kind: WEBHOOK_SIDE_EFFECT_KIND },
        { url: req.url, body: req.body },
      );
      // (2) committed: the receiver has it; never call again.
      if (row.status === 'committed') {
        const r = (row.result ?? {}) as { status?: unknown; response?: unknown };
        return {
          status: typeof r.status === 'number' ? r.status : 200,
          delivery: 'already-called',
          response: typeof r.response === 'string' ? r.response : '',
        };
      }

      // (3) the call. Signed at this attempt's time: receivers refuse stale timestamps.
      const timestamp = Math.floor(now() / 1000);
      const timeout = AbortSignal.timeout(opts.timeoutMs);
      const signal = req.signal ? AbortSignal.any([req.signal, timeout]) : timeout;
      let res: Response;
      let text: string;
      try {
        res = await fetch(req.url, {
          method: 'POST',
          headers: {
            'content-type': 'application/json',
            'user-agent': 'Keel webhook.call',
            'idempotency-key': key,
            [WEBHOOK_SIGNATURE_HEADER.toLowerCase()]: signWebhook(secret, timestamp, body),
            ...(req.goalId ? { 'x-keel-goal-id': req.goalId } : {}),
          },
          body,
          // A redirect would resend the signed body somewhere the step did not name.
          redirect: 'manual',
          signal,
        });
        text = (await res.text()).slice(0, RESPONSE_KEEP);
      } catch (err) {
        // The activity was cancelled: report that, not a network error.
        if (req.signal?.aborted) throw req.signal.reason instanceof Error ? req.signal.reason : err;
        const detail = timeout.aborted
          ? `no answer within ${opts.timeoutMs} ms (KEEL_WEBHOOK_TIMEOUT_MS)`
          : describeNetworkError(err);
        await noteError(prisma, key, detail);
        throw ApplicationFailure.create({
          message: `webhook ${req.url} failed, will retry: ${detail}`,
          type: 'WebhookUnavailable',
          nonRetryable: false,
          cause: err instanceof Error ? err : undefined,
        });
      }

      if (res.status < 200 || res.status >= 300) {
        const what = `webhook ${req.url} answered ${res.status}${res.statusText ? ` ${res.statusText}` : ''}${text ? `: ${text.slice(0, 200)}` : ''}`;
        if (isRetryableStatus(res.status)) {
          const delay = retryAfterMs(res.headers.get('retry-after'), now());
          await noteError(prisma, key, what);
          throw ApplicationFailure.create({
            message: `${what}; will retry${delay !== undefined ? ` after ${delay} ms (Retry-After)` : ''}`,
            type: 'WebhookUnavailable',
            nonRetryable: false,
            nextRetryDelay: delay,
            details: [{ status: res.status }],
          });
        }
        await markFailed(prisma, key, what);
        throw ApplicationFailure.create({
          message: what,
          type: 'WebhookRejected',
          nonRetryable: true,
          details: [{ status: res.status }],
        });
      }
      await faults.hit(WEBHOOK_FAULT_AFTER_CALL);

      // (4) commit.
      await markCommitted(prisma, key, { status: res.status, response: text, url: req.url });
      return { status: res.status, delivery: 'called', response: text };
    },
  };
}
