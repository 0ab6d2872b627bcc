/**
 * The outside world's receivers for the fault suite, each able to fail on
 * command and each counting what it took, so duplicates are counted where a
 * customer would see them: an SMTP server that can go down and come back on
 * the same port, and an idempotent webhook receiver that can answer 503s.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { startSmtpServer, type ReceivedMessage, type TestSmtpServer } from '../helpers/smtp';

export interface FlakySmtp {
  url: string;
  /** Every message any life of the server accepted. */
  messages(): ReceivedMessage[];
  down(): Promise<void>;
  up(): Promise<void>;
  close(): Promise<void>;
}

export async function startFlakySmtp(): Promise<FlakySmtp> {
  let current: TestSmtpServer | undefined = await startSmtpServer();
  const port = current.port;
  const url = current.url;
  // Every life of the server, whose message lists stay live: one accepted while the server is closing still
  // counts (copying the list before close() lost such a message and made a sent email look missing).
  const lives: TestSmtpServer[] = [current];
  return {
    url,
    messages: () => lives.flatMap((l) => l.messages),
    async down() {
      if (!current) return;
      const c = current;
      current = undefined;
      await c.close();
    },
    async up() {
      if (current) return;
      current = await startSmtpServer({ port });
      lives.push(current);
    },
    async close() {
      if (current) await current.close();
    },
  };
}

export interface Delivery {
  key: string;
  path: string;
  body: string;
  /** What the receiver answered. */
  status: number;
  /** True when the key had been applied before: answered from the stored result, not applied again. */
  replay: boolean;
}

export interface FlakyWebhookReceiver {
  url: string;
  deliveries: Delivery[];
  /** Keys applied (first 2xx), in order. */
  applied: Map<string, Delivery>;
  /** While true, every request is answered 503 and nothing is applied. */
  failing: boolean;
  close(): Promise<void>;
}

/** A receiver that behaves like a careful real one: it applies each Idempotency-Key once. */
export async function startFlakyWebhookReceiver(): Promise<FlakyWebhookReceiver> {
  const deliveries: Delivery[] = [];
  const applied = new Map<string, Delivery>();
  const receiver: FlakyWebhookReceiver = {
    url: '',
    deliveries,
    applied,
    failing: false,
    close: async () => undefined,
  };
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const key = String(req.headers['idempotency-key'] ?? '');
      const body = Buffer.concat(chunks).toString('utf8');
      const status = receiver.failing ? 503 : 200;
      const replay = status === 200 && applied.has(key);
      const d: Delivery = { key, path: req.url ?? '', body, status, replay };
      deliveries.push(d);
      if (status === 200 && !replay) applied.set(key, d);
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(status === 200 ? { received: true, key } : { error: 'temporarily unavailable' }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  receiver.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  receiver.close = () => new Promise<void>((resolve) => server.close(() => resolve()));
  return receiver;
}
