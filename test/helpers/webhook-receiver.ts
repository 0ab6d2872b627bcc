/**
 * A local HTTP receiver for webhook tests: it records every request (method,
 * path, headers, raw body) and answers 200 `{"received":true}` unless told to
 * answer otherwise for the next requests (a status with headers, or a pause
 * longer than the caller's timeout).
 */
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ReceivedRequest {
  method: string;
  path: string;
  /** Lower-cased header names, as Node gives them. */
  headers: IncomingHttpHeaders;
  /** The body exactly as it arrived. */
  body: string;
}

/** A scripted answer: a status (with headers and body), optionally after a pause. */
export interface ReceiverAnswer {
  status?: number;
  headers?: Record<string, string>;
  body?: string;
  delayMs?: number;
}

export interface WebhookReceiver {
  /** The receiver's base URL (`http://127.0.0.1:<port>`); any path is accepted. */
  url: string;
  requests: ReceivedRequest[];
  /** Requests that carried `key` as their Idempotency-Key. */
  withKey(key: string): ReceivedRequest[];
  /** Answers the next requests as scripted, one answer per request, then 200 again. */
  answer(...answers: ReceiverAnswer[]): void;
  /** Resolves once `n` requests arrived; rejects after `timeoutMs` (default 5000). */
  waitFor(n: number, timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

export async function startWebhookReceiver(): Promise<WebhookReceiver> {
  const requests: ReceivedRequest[] = [];
  const queue: ReceiverAnswer[] = [];
  const waiters = new Set<() => void>();
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      requests.push({
        method: req.method ?? '',
        path: req.url ?? '',
        headers: req.headers,
        body: Buffer.concat(chunks).toString('utf8'),
      });
      for (const wake of [...waiters]) wake();
      const a = queue.shift() ?? {};
      const reply = () => {
        if (res.destroyed) return;
        res.writeHead(a.status ?? 200, { 'content-type': 'application/json', ...a.headers });
        res.end(a.body ?? JSON.stringify({ received: true }));
      };
      if (a.delayMs) setTimeout(reply, a.delayMs).unref();
      else reply();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    withKey: (key) => requests.filter((r) => r.headers['idempotency-key'] === key),
    answer: (...answers) => void queue.push(...answers),
    waitFor(n, timeoutMs = 5000) {
      if (requests.length >= n) return Promise.resolve();
      return new Promise<void>((resolve, reject) => {
        const wake = () => {
          if (requests.length < n) return;
          clearTimeout(timer);
          waiters.delete(wake);
          resolve();
        };
        const timer = setTimeout(() => {
          waiters.delete(wake);
          reject(new Error(`receiver got ${requests.length} request(s), expected ${n} within ${timeoutMs} ms`));
        }, timeoutMs);
        waiters.add(wake);
      });
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
