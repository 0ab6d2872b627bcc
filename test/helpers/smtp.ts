/**
 * An in-process SMTP server for tests: plain SMTP on 127.0.0.1, no TLS, no
 * auth, recording every message it accepts.
 */
import type { AddressInfo } from 'node:net';
import { SMTPServer, type SMTPServerDataStream, type SMTPServerSession } from 'smtp-server';

/** One message the server accepted (answered 250 to its DATA). */
export interface ReceivedMessage {
  /** Message-ID header, angle brackets included, '' if absent. */
  messageId: string;
  /** Envelope recipients (RCPT TO). */
  to: string[];
  /** Envelope sender (MAIL FROM). */
  from: string;
  /** Subject header, with RFC 2047 encoded words decoded. */
  subject: string;
  /** The full message as received (headers and body). */
  raw: string;
  /** All headers, lower-cased names, unfolded; repeated headers keep the first value. */
  headers: Record<string, string>;
}

/** Options for {@link startSmtpServer}. */
export interface SmtpServerOptions {
  /** Wait this long after the message data arrives before answering it. */
  delayAcceptMs?: number;
  /** Answer every message with this error instead of accepting it. */
  rejectWith?: { code: number; message: string };
  /** Listen on this port (default 0: any free port). Lets a test bring a server up where a client already points. */
  port?: number;
}

/** A running test SMTP server. */
export interface TestSmtpServer {
  url: string;
  port: number;
  /** Accepted messages, in acceptance order. */
  messages: ReceivedMessage[];
  /** Number of messages answered with `rejectWith`. */
  readonly rejectedCount: number;
  /** Resolves once at least `n` messages were accepted; rejects after `timeoutMs` (default 5000). */
  waitFor(n: number, timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

/** Splits a raw message into its unfolded headers. */
export function parseHeaders(raw: string): Record<string, string> {
  const end = raw.search(/\r?\n\r?\n/);
  const head = end === -1 ? raw : raw.slice(0, end);
  const unfolded = head.replace(/\r?\n[ \t]+/g, ' ');
  const headers: Record<string, string> = {};
  for (const line of unfolded.split(/\r?\n/)) {
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    const name = line.slice(0, colon).trim().toLowerCase();
    if (!(name in headers)) headers[name] = line.slice(colon + 1).trim();
  }
  return headers;
}

/** Decodes RFC 2047 encoded words (=?charset?B|Q?...?=) as nodemailer emits them for non-ASCII subjects. */
export function decodeEncodedWords(value: string): string {
  // Whitespace between two adjacent encoded words is not part of the text.
  const joined = value.replace(/(\?=)\s+(=\?)/g, '$1$2');
  return joined.replace(/=\?([^?]+)\?([BbQq])\?([^?]*)\?=/g, (_m, charset: string, enc: string, text: string) => {
    const bytes =
      enc.toUpperCase() === 'B'
        ? Buffer.from(text, 'base64')
        : Buffer.from(
            text
              .replace(/_/g, ' ')
              .replace(/=([0-9A-Fa-f]{2})/g, (_x, h: string) => String.fromCharCode(parseInt(h, 16))),
            'latin1',
          );
    const label = charset.toLowerCase().split('*')[0];
    return label === 'utf-8' || label === 'utf8' ? bytes.toString('utf8') : bytes.toString('latin1');
  });
}

/**
 * Starts an SMTP server on 127.0.0.1 (`smtp-server`, authOptional, STARTTLS
 * disabled). A message is added to `messages` only at the moment the server
 * accepts it, so `messages` never contains something the client could still
 * see fail.
 */
export async function startSmtpServer(opts: SmtpServerOptions = {}): Promise<TestSmtpServer> {
  const messages: ReceivedMessage[] = [];
  const waiters = new Set<() => void>();
  let rejectedCount = 0;
  const timers = new Set<NodeJS.Timeout>();

  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS'],
    secure: false,
    logger: false,
    // Clients close after each message; a short grace keeps close() quick.
    closeTimeout: 500,
    // Auth is optional; a client that authenticates anyway is let in with any credentials.
    onAuth(auth, _session, callback) {
      callback(null, { user: auth.username ?? 'anonymous' });
    },
    onData(stream: SMTPServerDataStream, session: SMTPServerSession, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('error', (err: Error) => callback(err));
      stream.on('end', () => {
        const finish = () => {
          if (opts.rejectWith) {
            rejectedCount++;
            const err = Object.assign(new Error(opts.rejectWith.message), { responseCode: opts.rejectWith.code });
            callback(err);
            return;
          }
          const raw = Buffer.concat(chunks).toString('utf8');
          const headers = parseHeaders(raw);
          messages.push({
            messageId: headers['message-id'] ?? '',
            to: session.envelope.rcptTo.map((a) => a.address),
            from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
            subject: decodeEncodedWords(headers['subject'] ?? ''),
            raw,
            headers,
          });
          // Recorded and acknowledged together: the 250 reply goes out in this callback.
          callback(null, 'Message accepted');
          for (const wake of [...waiters]) wake();
        };
        if (opts.delayAcceptMs && opts.delayAcceptMs > 0) {
          const t = setTimeout(() => {
            timers.delete(t);
            finish();
          }, opts.delayAcceptMs);
          timers.add(t);
        } else {
          finish();
        }
      });
    },
  });
  // Client disconnects (e.g. a test aborting mid-session) surface as errors; they are not test failures.
  server.on('error', () => undefined);

  await new Promise<void>((resolve, reject) => {
    server.server.once('error', reject);
    server.listen(opts.port ?? 0, '127.0.0.1', () => {
      server.server.off('error', reject);
      resolve();
    });
  });
  const port = (server.server.address() as AddressInfo).port;

  return {
    url: `smtp://127.0.0.1:${port}`,
    port,
    messages,
    get rejectedCount() {
      return rejectedCount;
    },
    waitFor(n: number, timeoutMs = 5000): Promise<void> {
      if (messages.length >= n) return Promise.resolve();
      return new Promise<void>((resolve, reject) => {
        const wake = () => {
          if (messages.length < n) return;
          clearTimeout(timer);
          waiters.delete(wake);
          resolve();
        };
        const timer = setTimeout(() => {
          waiters.delete(wake);
          reject(new Error(`SMTP server received ${messages.length} message(s), expected ${n} within ${timeoutMs} ms`));
        }, timeoutMs);
        waiters.add(wake);
      });
    },
    close(): Promise<void> {
      for (const t of timers) clearTimeout(t);
      timers.clear();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
