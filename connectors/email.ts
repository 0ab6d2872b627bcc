/**
 * Email connector: sends one message per idempotency key, at most once as far
 * as Keel's own records can tell.
 *
 * The protocol, per call of `send`:
 *   1. upsert an `intent` row in side_effects for the key (attempts + 1);
 *   2. if the row is already `committed`, return its recorded result
 *      (`already-sent`) without touching SMTP;
 *   3. `faults.hit('email.send.beforeSmtp')` - the crash/pause window tests
 *      use to prove that a crash here leads to exactly one delivery;
 *   4. hand the message to SMTP (or write it to the outbox directory);
 *   5. mark the row `committed` with the result and committed_at.
 *
 * A crash between 4 and 5 is the one window that can deliver twice. Three
 * things keep that tolerable: the Message-ID is derived from the idempotency
 * key, so every copy is the same message to any receiver that deduplicates
 * on it; the commit write is retried in-process for as long as a PostgreSQL
 * restart may take (`commitRetryMs`, heartbeating), so a database outage
 * after a successful send does not throw the send away; and when even that
 * gives up, the process remembers what it sent, so the activity's retry on
 * this worker records the commit instead of sending again. (The fault suite
 * found the second: a 3 s retry budget lost to a PostgreSQL restart.)
 */
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { mkdir, open, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import nodemailer from 'nodemailer';
import addressparser from 'nodemailer/lib/addressparser';
import { ApplicationFailure } from '@temporalio/common';
import type { Db } from '../db/prisma';
import { noFaults, type FaultHooks } from '../lib/faults';

/** Fault point hit after the intent row is written and before the message leaves. */
export const EMAIL_FAULT_BEFORE_SMTP = 'email.send.beforeSmtp';

/** `kind` recorded on side_effects rows written by this connector. */
export const EMAIL_SIDE_EFFECT_KIND = 'email.send';

/** Header carrying the idempotency key, so a delivered copy can be traced back to its side effect. */
export const IDEMPOTENCY_HEADER = 'X-Keel-Idempotency-Key';

/** What to send. `idempotencyKey` identifies the message across retries and processes. */
export interface EmailSendRequest {
  idempotencyKey: string;
  goalId?: string;
  stepId?: string;
  /** One address or a comma-separated list, optionally with display names. */
  to: string;
  subject: string;
  body: string;
  /** The Message-ID this email answers (`<id@host>`): sent as In-Reply-To, so mail clients thread it. */
  inReplyTo?: string;
  /** The thread's Message-IDs, oldest first, ending with `inReplyTo`: sent as References. */
  references?: string[];
  /** Called while the send is in progress; activities pass their heartbeat here. */
  onProgress?: () => void;
  /** Aborts the send if it fires before the message is handed to SMTP. */
  signal?: AbortSignal;
}

/** Outcome of `send`; `already-sent` means an earlier call committed this key. */
export interface EmailSendResult {
  messageId: string;
  status: 'sent' | 'already-sent';
  transport: 'smtp' | 'outbox';
  accepted: string[];
}

/** Construction options for {@link createEmailConnector}. */
export interface EmailConnectorOptions {
  /** e.g. smtp://127.0.0.1:2525; without it messages go to `outboxDir` as .eml files. */
  smtpUrl?: string;
  /** Sender, e.g. `Keel <keel@localhost>`. */
  from: string;
  outboxDir: string;
  prisma: Db;
  faults?: FaultHooks;
  /** How often `onProgress` is called while a send is in flight (default 1000 ms). */
  progressIntervalMs?: number;
  /**
   * How long a sent message's commit is retried while PostgreSQL does not answer (default 120 s, inside the
   * connector preset's five-minute start-to-close; the activity heartbeats meanwhile). The message is out:
   * giving up early would make the activity's retry send it again.
   */
  commitRetryMs?: number;
}

/** The connector returned by {@link createEmailConnector}. */
export interface EmailConnector {
  send(req: EmailSendRequest): Promise<EmailSendResult>;
  /** Releases the SMTP transport; safe to call more than once. */
  close(): Promise<void>;
}

/** Shape of side_effects.result for a committed email. */
interface EmailCommitResult {
  messageId: string;
  accepted: string[];
  rejected: string[];
  response: string;
  transport: 'smtp' | 'outbox';
  path?: string;
}

/** Failure shape nodemailer attaches to SMTP and socket errors (the fields we read). */
interface SmtpErrorLike {
  message?: string;
  code?: string;
  responseCode?: number;
  response?: string;
  originalCode?: string;
}

/**
 * The Message-ID for an idempotency key: `<first 32 hex of sha256(key)@keel.local>`.
 * Deterministic so every retry, on any worker, produces the same message identity.
 */
export function deriveMessageId(idempotencyKey: string): string {
  return `<${messageIdToken(idempotencyKey)}@keel.local>`;
}

function messageIdToken(idempotencyKey: string): string {
  return createHash('sha256').update(idempotencyKey, 'utf8').digest('hex').slice(0, 32);
}

// Deliberately pragmatic: rejects what would make SMTP choke or smuggle
// headers (spaces, angle brackets, missing domain) while still accepting
// single-label domains such as keel@localhost used in local setups.
const ADDR_SPEC_RE =
  /^[^\s@<>()",;:\\[\]]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*$/;

/**
 * Parses and validates an address field ("a@b.c", "Name <a@b.c>", or a
 * comma-separated list). Returns the bare addresses, or throws a
 * non-retryable ApplicationFailure of type `InvalidEmailAddress` naming the
 * field: retrying cannot fix a bad address, so Temporal must not try.
 */
export function validateEmailAddresses(field: string, value: unknown): string[] {
  const invalid = (why: string): never => {
    throw ApplicationFailure.nonRetryable(
      `Invalid email address in "${field}": ${why} (got ${JSON.stringify(value)})`,
      'InvalidEmailAddress',
    );
  };
  if (typeof value !== 'string' || value.trim() === '') return invalid('it is empty');
  if (/[\r\n]/.test(value)) return invalid('it contains a line break');
  const parsed = addressparser(value, { flatten: true });
  if (parsed.length === 0) return invalid('no address found');
  return parsed.map((entry) => {
    const address = entry.address.trim();
    if (!ADDR_SPEC_RE.test(address)) invalid(`"${address || entry.name}" is not a valid address`);
    return address;
  });
}

const MESSAGE_ID_RE = /^<[^\s<>@]+@[^\s<>@]+>$/;

function invalidRequest(field: string, why: string): ApplicationFailure {
  return ApplicationFailure.nonRetryable(`Invalid email request: "${field}" ${why}`, 'InvalidEmailRequest');
}

function validateRequest(req: EmailSendRequest): string[] {
  const key: unknown = req.idempotencyKey;
  if (typeof key !== 'string' || key.trim() === '')
    throw invalidRequest('idempotencyKey', 'must be a non-empty string');
  // The key is written verbatim into a header, so control characters would corrupt the message.
  if (/[\x00-\x1f\x7f]/.test(key)) throw invalidRequest('idempotencyKey', 'must not contain control characters');
  if (key.length > 500) throw invalidRequest('idempotencyKey', 'must be at most 500 characters');
  const to = validateEmailAddresses('to', req.to);
  if (typeof req.subject !== 'string' || req.subject.trim() === '') {
    throw invalidRequest('subject', 'must be a non-empty string');
  }
  if (typeof req.body !== 'string') throw invalidRequest('body', 'must be a string');
  // Written verbatim into headers: anything but a plain <id@host> could break or add a header.
  if (req.inReplyTo !== undefined && !MESSAGE_ID_RE.test(req.inReplyTo))
    throw invalidRequest('inReplyTo', 'must be a Message-ID such as <id@example.com>');
  for (const ref of req.references ?? []) {
    if (!MESSAGE_ID_RE.test(ref)) throw invalidRequest('references', 'must hold Message-IDs such as <id@example.com>');
  }
  return to;
}

function abortError(signal: AbortSignal): Error {
  // Temporal's activity cancellation signal carries a CancelledFailure as its
  // reason; rethrowing that exact object is how an activity reports "cancelled".
  if (signal.reason instanceof Error) return signal.reason;
  const err = new Error('Email send aborted before it reached SMTP');
  err.name = 'AbortError';
  return err;
}

function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw abortError(signal);
}

/** Resolves/rejects with `work`, or rejects as soon as `signal` aborts. */
function raceAbort<T>(work: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return work;
  throwIfAborted(signal);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(abortError(signal));
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(e);
      },
    );
  });
}

/** RFC 5321: 5yz is a permanent rejection, except 503 (bad command sequence, a session problem). */
function isPermanentSmtpFailure(err: SmtpErrorLike): boolean {
  const code = err.responseCode;
  if (typeof code === 'number') return code >= 500 && code < 600 && code !== 503;
  // An envelope error without a server reply is nodemailer refusing the
  // envelope locally; sending it again would be refused again.
  return err.code === 'EENVELOPE';
}

function describeError(err: unknown): string {
  if (err instanceof Error) {
    const e = err as Error & SmtpErrorLike;
    const parts = [e.message];
    if (e.originalCode && !e.message.includes(e.originalCode)) parts.push(`(${e.originalCode})`);
    return parts.join(' ');
  }
  return String(err);
}

function toStringList(list: unknown): string[] {
  if (!Array.isArray(list)) return [];
  return list
    .map((a: unknown) =>
      typeof a === 'string' ? a : a && typeof a === 'object' && 'address' in a ? String(a.address) : '',
    )
    .filter((a) => a !== '');
}

function isEmailCommitResult(v: unknown): v is EmailCommitResult {
  if (!v || typeof v !== 'object') return false;
  const r = v as Record<string, unknown>;
  return (
    typeof r.messageId === 'string' && Array.isArray(r.accepted) && (r.transport === 'smtp' || r.transport === 'outbox')
  );
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Writes `data` to `path` so that readers only ever see a complete file (temp + fsync + rename). */
async function writeFileAtomic(path: string, data: Buffer): Promise<void> {
  const tmp = `${path}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
  try {
    const fh = await open(tmp, 'w', 0o644);
    try {
      await fh.writeFile(data);
      await fh.sync(); // durable before it becomes visible under the final name
    } finally {
      await fh.close();
    }
    // rename() replaces an existing file in one step, so a re-send of the same
    // key overwrites its earlier copy instead of creating a second one.
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true }).catch(() => undefined);
    throw err;
  }
}

/**
 * Creates the email connector. With `smtpUrl` messages go over SMTP; without
 * it each message is written as `<outboxDir>/<message-id-token>.eml`.
 * See the module comment for the exactly-once protocol `send` follows.
 */
export function createEmailConnector(opts: EmailConnectorOptions): EmailConnector {
  const { prisma, outboxDir } = opts;
  const faults = opts.faults ?? noFaults;
  const progressIntervalMs = opts.progressIntervalMs ?? 1000;
  const commitRetryMs = opts.commitRetryMs ?? 120_000;
  // A bad sender is a configuration error: fail at start-up, not per message.
  validateEmailAddresses('from', opts.from);

  const transportKind: 'smtp' | 'outbox' = opts.smtpUrl ? 'smtp' : 'outbox';
  const transport = opts.smtpUrl
    ? nodemailer.createTransport({
        url: opts.smtpUrl,
        // Defaults are minutes long; a stuck server should surface as a
        // retryable failure well inside the activity's timeouts instead.
        connectionTimeout: 10_000,
        greetingTimeout: 10_000,
        socketTimeout: 60_000,
      })
    : nodemailer.createTransport({ streamTransport: true, buffer: true, newline: 'windows' });

  // Calls for the same key in this process run one after another: a Temporal
  // retry can start while a timed-out earlier attempt is still sending, and the
  // second must see the first one's commit rather than race it to SMTP.
  const inFlight = new Map<string, Promise<unknown>>();
  // Messages this process sent whose commit it could not record (PostgreSQL down for longer than the commit's
  // retries): a retry of the same key here records the commit instead of sending again.
  const sentUnrecorded = new Map<string, EmailCommitResult>();
  let closed = false;

  function progress(req: EmailSendRequest): void {
    try {
      req.onProgress?.();
    } catch {
      // Progress reporting is advisory; it must never fail or duplicate a send.
    }
  }

  async function recordIntent(req: EmailSendRequest, to: string[], messageId: string) {
    const request = {
      to,
      from: opts.from,
      subject: req.subject,
      // The body lives in an artifact; the hash is enough to tell which text was sent.
      bodySha256: createHash('sha256').update(req.body, 'utf8').digest('hex'),
      bodyLength: req.body.length,
      messageId,
      transport: transportKind,
      ...(req.inReplyTo ? { inReplyTo: req.inReplyTo } : {}),
    };
    const upsert = () =>
      prisma.sideEffect.upsert({
        where: { idempotencyKey: req.idempotencyKey },
        create: {
          id: `se_${randomUUID()}`,
          idempotencyKey: req.idempotencyKey,
          goalId: req.goalId ?? null,
          stepId: req.stepId ?? null,
          kind: EMAIL_SIDE_EFFECT_KIND,
          status: 'intent',
          attempts: 1,
          request,
        },
        update: { attempts: { increment: 1 } },
      });
    try {
      // Prisma runs this as INSERT ... ON CONFLICT DO UPDATE on PostgreSQL.
      return await upsert();
    } catch (err) {
      // Should Prisma ever fall back to select-then-insert, two workers can
      // both try the insert; the loser sees a unique violation and simply
      // goes again, now taking the update branch.
      if ((err as { code?: unknown }).code === 'P2002') return await upsert();
      throw err;
    }
  }

  async function markCommitted(req: EmailSendRequest, result: EmailCommitResult): Promise<void> {
    // The message is already out: losing this write would make a retry send it again, so it is retried (backing
    // off to 5 s, heartbeating) for as long as a PostgreSQL restart or failover may take.
    const key = req.idempotencyKey;
    const deadline = Date.now() + commitRetryMs;
    let lastErr: unknown;
    for (let attempt = 0; ; attempt++) {
      try {
        await prisma.sideEffect.update({
          where: { idempotencyKey: key },
          data: { status: 'committed', result: { ...result }, error: null, committedAt: new Date() },
        });
        sentUnrecorded.delete(key);
        return;
      } catch (err) {
        lastErr = err;
      }
      progress(req);
      const wait = Math.min(5_000, 200 * 2 ** attempt);
      if (Date.now() + wait > deadline) break;
      await sleep(wait);
    }
    sentUnrecorded.set(key, result);
    throw ApplicationFailure.create({
      message: `Email ${result.messageId} was sent but recording the commit failed: ${describeError(lastErr)}`,
      type: 'EmailCommitFailed',
      nonRetryable: false,
      cause: lastErr instanceof Error ? lastErr : undefined,
    });
  }

  async function deliver(
    req: EmailSendRequest,
    messageId: string,
    date: Date,
  ): Promise<{ accepted: string[]; rejected: string[]; response: string; path?: string }> {
    const headers: Record<string, string> = { [IDEMPOTENCY_HEADER]: req.idempotencyKey };
    if (req.goalId) headers['X-Keel-Goal-Id'] = req.goalId;
    if (req.stepId) headers['X-Keel-Step-Id'] = req.stepId;
    const mail = {
      from: opts.from,
      to: req.to,
      subject: req.subject,
      text: req.body,
      messageId,
      // Dating the message at its intent (not at this attempt) keeps every
      // re-send of the key byte-for-byte the same message.
      date,
      headers,
      ...(req.inReplyTo ? { inReplyTo: req.inReplyTo } : {}),
      ...(req.references?.length ? { references: req.references } : {}),
    };
    // The signal is intentionally not passed to nodemailer: once the DATA
    // phase has started, aborting cannot tell us whether the server kept the
    // message, and an unknown outcome is worse than finishing the send.
    const info: unknown = await transport.sendMail(mail);
    const sent = info as {
      accepted?: unknown;
      rejected?: unknown;
      response?: unknown;
      message?: unknown;
      envelope?: { to?: unknown };
    };
    if (transportKind === 'smtp') {
      return {
        accepted: toStringList(sent.accepted),
        rejected: toStringList(sent.rejected),
        response: typeof sent.response === 'string' ? sent.response : '',
      };
    }
    if (!Buffer.isBuffer(sent.message)) throw new Error('Outbox transport did not return the message bytes');
    await mkdir(outboxDir, { recursive: true });
    const path = join(outboxDir, `${messageIdToken(req.idempotencyKey)}.eml`);
    await writeFileAtomic(path, sent.message);
    return { accepted: toStringList(sent.envelope?.to), rejected: [], response: `written to ${path}`, path };
  }

  async function sendOnce(req: EmailSendRequest, to: string[]): Promise<EmailSendResult> {
    const messageId = deriveMessageId(req.idempotencyKey);
    throwIfAborted(req.signal);

    // (1) intent
    let row = await recordIntent(req, to, messageId);
    progress(req);

    // (2) sent by this process, its commit not yet recorded: record it now, never send again.
    const unrecorded = sentUnrecorded.get(req.idempotencyKey);
    if (unrecorded && row.status !== 'committed') {
      await markCommitted(req, unrecorded);
      return { messageId, status: 'already-sent', transport: transportKind, accepted: unrecorded.accepted };
    }

    // (2) already committed: report the recorded result, never send again.
    if (row.status === 'committed') {
      sentUnrecorded.delete(req.idempotencyKey);
      const recorded = isEmailCommitResult(row.result) ? row.result : undefined;
      return {
        messageId: recorded?.messageId ?? messageId,
        status: 'already-sent',
        transport: recorded?.transport ?? transportKind,
        accepted: recorded ? toStringList(recorded.accepted) : to,
      };
    }
    if (row.status === 'failed') {
      // A permanent rejection means the server did not take the message, so
      // sending again cannot duplicate it; an explicit new call with the same
      // key (after someone fixed the cause) gets a fresh attempt.
      await prisma.sideEffect.updateMany({
        where: { idempotencyKey: req.idempotencyKey, status: 'failed' },
        data: { status: 'intent', error: null },
      });
      row = { ...row, status: 'intent' };
    }

    // (3) fault window between intent and the external call.
    await raceAbort(faults.hit(EMAIL_FAULT_BEFORE_SMTP), req.signal);
    throwIfAborted(req.signal);

    // (4) send, heartbeating while the server takes its time.
    const ticker = setInterval(() => progress(req), progressIntervalMs);
    ticker.unref();
    let delivered: Awaited<ReturnType<typeof deliver>>;
    try {
      delivered = await deliver(req, messageId, row.createdAt);
    } catch (err) {
      const e = (err ?? {}) as SmtpErrorLike;
      const detail = describeError(err);
      if (isPermanentSmtpFailure(e)) {
        await prisma.sideEffect.update({
          where: { idempotencyKey: req.idempotencyKey },
          data: { status: 'failed', error: detail },
        });
        throw ApplicationFailure.create({
          message: `Email to ${to.join(', ')} was rejected by the SMTP server: ${detail}`,
          type: 'EmailRejected',
          nonRetryable: true,
          details: [{ responseCode: e.responseCode ?? null, response: e.response ?? null }],
          cause: err instanceof Error ? err : undefined,
        });
      }
      // Transient: the row stays `intent` (nothing was delivered), with the
      // reason kept for whoever looks at a stuck side effect.
      await prisma.sideEffect
        .update({ where: { idempotencyKey: req.idempotencyKey }, data: { error: detail } })
        .catch(() => undefined);
      throw ApplicationFailure.create({
        message: `Email send failed, will retry: ${detail}`,
        type: 'EmailTransient',
        nonRetryable: false,
        details: [{ code: e.code ?? null, responseCode: e.responseCode ?? null }],
        cause: err instanceof Error ? err : undefined,
      });
    } finally {
      clearInterval(ticker);
    }
    progress(req);

    // (5) commit.
    await markCommitted(req, { messageId, ...delivered, transport: transportKind });
    return { messageId, status: 'sent', transport: transportKind, accepted: delivered.accepted };
  }

  return {
    async send(req: EmailSendRequest): Promise<EmailSendResult> {
      if (closed) throw new Error('Email connector is closed');
      const to = validateRequest(req);
      const key = req.idempotencyKey;
      const previous = inFlight.get(key) ?? Promise.resolve();
      const current = previous.catch(() => undefined).then(() => sendOnce(req, to));
      inFlight.set(key, current);
      try {
        return await current;
      } finally {
        // Only the last caller in the chain removes the entry.
        if (inFlight.get(key) === current) inFlight.delete(key);
      }
    },
    async close(): Promise<void> {
      if (closed) return;
      closed = true;
      transport.close();
    },
  };
}
