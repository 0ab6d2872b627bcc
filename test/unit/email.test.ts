/**
 * Email connector against a real in-process SMTP server and a real,
 * freshly migrated PostgreSQL database; plus the KEEL_FAULTS parser.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { ApplicationFailure } from '@temporalio/common';
import {
  createEmailConnector,
  deriveMessageId,
  validateEmailAddresses,
  type EmailConnector,
  type EmailConnectorOptions,
} from '../../connectors/email';
import { FAULT_HIT_MARKER, noFaults, parseFaults, type FaultHooks } from '../../lib/faults';
import { createTestDatabase, type TestDatabase } from '../helpers/db';
import { startSmtpServer, type TestSmtpServer } from '../helpers/smtp';

const FROM = 'Keel <keel@localhost>';
const ROOT = resolve(__dirname, '..', '..');

let db: TestDatabase;
const cleanups: Array<() => Promise<unknown>> = [];

beforeAll(async () => {
  db = await createTestDatabase();
});

afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!().catch(() => undefined);
});

afterAll(async () => {
  await db?.drop();
});

async function smtp(opts?: Parameters<typeof startSmtpServer>[0]): Promise<TestSmtpServer> {
  const server = await startSmtpServer(opts);
  cleanups.push(() => server.close());
  return server;
}

function connector(opts: Partial<EmailConnectorOptions>): EmailConnector {
  const c = createEmailConnector({
    from: FROM,
    outboxDir: join(tmpdir(), 'keel-unused-outbox'),
    prisma: db.prisma,
    ...opts,
  });
  cleanups.push(() => c.close());
  return c;
}

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'keel-outbox-'));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

let keySeq = 0;
/** Unique per test run so tests sharing the database never collide. */
const newKey = (label: string) => `test:${label}:${process.pid}:${Date.now()}:${keySeq++}`;

const row = (key: string) => db.prisma.sideEffect.findUnique({ where: { idempotencyKey: key } });

/** A port nothing listens on (bound, then released). */
async function closedPort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  const { port } = srv.address() as AddressInfo;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

/** Runs `fn` and returns what it threw (failing the test if it did not throw). */
async function caught(fn: () => Promise<unknown>): Promise<unknown> {
  try {
    await fn();
  } catch (err) {
    return err;
  }
  throw new Error('expected the call to throw');
}

describe('email connector over SMTP', () => {
  test('sends one message with the derived Message-ID and commits the side effect', async () => {
    const server = await smtp();
    const email = connector({ smtpUrl: server.url });
    const key = newKey('one');
    const progress = jest.fn();

    const res = await email.send({
      idempotencyKey: key,
      goalId: 'g1',
      stepId: 's1',
      to: 'Ada <ada@example.com>',
      subject: 'Hello — Keel',
      body: 'First message',
      onProgress: progress,
    });

    expect(res).toEqual({
      messageId: deriveMessageId(key),
      status: 'sent',
      transport: 'smtp',
      accepted: ['ada@example.com'],
    });
    expect(deriveMessageId(key)).toMatch(/^<[0-9a-f]{32}@keel\.local>$/);
    expect(server.messages).toHaveLength(1);
    const [msg] = server.messages;
    expect(msg.messageId).toBe(deriveMessageId(key));
    expect(msg.to).toEqual(['ada@example.com']);
    expect(msg.from).toBe('keel@localhost');
    expect(msg.subject).toBe('Hello — Keel');
    expect(msg.headers['x-keel-idempotency-key']).toBe(key);
    expect(msg.raw).toContain('First message');
    expect(progress).toHaveBeenCalled();

    const r = await row(key);
    expect(r).toMatchObject({
      status: 'committed',
      attempts: 1,
      kind: 'email.send',
      goalId: 'g1',
      stepId: 's1',
      error: null,
    });
    expect(r!.committedAt).toBeInstanceOf(Date);
    expect(r!.result).toMatchObject({
      messageId: deriveMessageId(key),
      accepted: ['ada@example.com'],
      transport: 'smtp',
    });
    expect((r!.result as { response: string }).response).toMatch(/^250/);
  });

  test('the same key twice delivers once; the second call reports already-sent', async () => {
    const server = await smtp();
    const email = connector({ smtpUrl: server.url });
    const key = newKey('twice');
    const req = { idempotencyKey: key, to: 'bob@example.com', subject: 'Once', body: 'only once' };

    const first = await email.send(req);
    const second = await email.send(req);

    expect(first.status).toBe('sent');
    expect(second).toEqual({ ...first, status: 'already-sent' });
    expect(server.messages).toHaveLength(1);
    expect(await row(key)).toMatchObject({ status: 'committed', attempts: 2 });
  });

  test('a second connector (another worker) also sees the commit and does not resend', async () => {
    const server = await smtp();
    const key = newKey('other-worker');
    const req = { idempotencyKey: key, to: 'bob@example.com', subject: 'Once', body: 'only once' };
    await connector({ smtpUrl: server.url }).send(req);
    const again = await connector({ smtpUrl: server.url }).send(req);
    expect(again.status).toBe('already-sent');
    expect(server.messages).toHaveLength(1);
  });

  /** The database as the connector sees it, with the commit write failing while `down()` says so. */
  function withCommitOutage(down: () => boolean, failures: { n: number }): EmailConnectorOptions['prisma'] {
    const sideEffect = new Proxy(db.prisma.sideEffect, {
      get(target, prop, receiver) {
        if (prop !== 'update') return Reflect.get(target, prop, receiver);
        return (args: { data?: { status?: string } }) => {
          if (args.data?.status === 'committed' && down()) {
            failures.n++;
            return Promise.reject(new Error("Can't reach database server (planted)"));
          }
          return target.update(args as never);
        };
      },
    });
    return new Proxy(db.prisma, {
      get: (target, prop, receiver) => (prop === 'sideEffect' ? sideEffect : Reflect.get(target, prop, receiver)),
    });
  }

  test('a commit write that fails while PostgreSQL restarts is retried until it lands: one delivery', async () => {
    const server = await smtp();
    const failures = { n: 0 };
    const upAt = Date.now() + 4_000; // longer than the old budget (four tries over 3 s) and a PostgreSQL restart here
    const email = connector({ smtpUrl: server.url, prisma: withCommitOutage(() => Date.now() < upAt, failures) });
    const key = newKey('commit-outage');
    const sent = await email.send({ idempotencyKey: key, to: 'bob@example.com', subject: 'Once', body: 'x' });
    expect(sent.status).toBe('sent');
    expect(failures.n).toBeGreaterThan(2);
    expect(server.messages).toHaveLength(1);
    expect(await row(key)).toMatchObject({ status: 'committed' });
  });

  test('when the commit cannot be recorded in time, the retry on this worker records it instead of resending', async () => {
    const server = await smtp();
    const failures = { n: 0 };
    let down = true;
    const email = connector({
      smtpUrl: server.url,
      prisma: withCommitOutage(() => down, failures),
      commitRetryMs: 500,
    });
    const key = newKey('commit-given-up');
    const req = { idempotencyKey: key, to: 'bob@example.com', subject: 'Once', body: 'x' };
    const err = await caught(() => email.send(req));
    expect(err).toMatchObject({ type: 'EmailCommitFailed', nonRetryable: false });
    expect(server.messages).toHaveLength(1);
    expect(await row(key)).toMatchObject({ status: 'intent' });

    down = false; // PostgreSQL is back; Temporal retries the activity here
    const again = await email.send(req);
    expect(again.status).toBe('already-sent');
    expect(server.messages).toHaveLength(1);
    expect(await row(key)).toMatchObject({ status: 'committed' });
  });

  test('concurrent calls with one key in one process deliver once', async () => {
    const server = await smtp({ delayAcceptMs: 200 });
    const email = connector({ smtpUrl: server.url });
    const key = newKey('concurrent');
    const req = { idempotencyKey: key, to: 'c@example.com', subject: 'Race', body: 'x' };
    const results = await Promise.all([email.send(req), email.send(req), email.send(req)]);
    expect(results.map((r) => r.status).sort()).toEqual(['already-sent', 'already-sent', 'sent']);
    expect(server.messages).toHaveLength(1);
  });

  test('two different keys deliver two messages', async () => {
    const server = await smtp();
    const email = connector({ smtpUrl: server.url });
    const k1 = newKey('a');
    const k2 = newKey('b');
    await email.send({ idempotencyKey: k1, to: 'a@example.com', subject: 'A', body: 'a' });
    await email.send({ idempotencyKey: k2, to: 'b@example.com', subject: 'B', body: 'b' });
    await server.waitFor(2);
    expect(server.messages.map((m) => m.messageId)).toEqual([deriveMessageId(k1), deriveMessageId(k2)]);
    expect(deriveMessageId(k1)).not.toBe(deriveMessageId(k2));
  });

  test('the fault point is hit after the intent is recorded and before anything is sent', async () => {
    const server = await smtp();
    const key = newKey('fault-point');
    const seen: Array<{ point: string; status: string | undefined; delivered: number }> = [];
    const faults: FaultHooks = {
      async hit(point) {
        seen.push({ point, status: (await row(key))?.status, delivered: server.messages.length });
      },
    };
    await connector({ smtpUrl: server.url, faults }).send({
      idempotencyKey: key,
      to: 'f@example.com',
      subject: 'F',
      body: 'f',
    });
    expect(seen).toEqual([{ point: 'email.send.beforeSmtp', status: 'intent', delivered: 0 }]);
    expect(server.messages).toHaveLength(1);
  });

  test('an invalid address is rejected non-retryably, naming the field, before any row is written', async () => {
    const server = await smtp();
    const email = connector({ smtpUrl: server.url });
    for (const to of ['not-an-address', '', 'a@b.com, oops', 'x@y.com\r\nBcc: evil@example.com']) {
      const key = newKey('bad-address');
      const err = await caught(() => email.send({ idempotencyKey: key, to, subject: 'S', body: 'b' }));
      expect(err).toBeInstanceOf(ApplicationFailure);
      expect(err).toMatchObject({ type: 'InvalidEmailAddress', nonRetryable: true });
      expect((err as Error).message).toContain('"to"');
      expect(await row(key)).toBeNull();
    }
    expect(server.messages).toHaveLength(0);
    expect(() => validateEmailAddresses('from', 'nobody')).toThrow(/"from"/);
    expect(() => connector({ from: 'nope' })).toThrow(/"from"/);
  });

  test('a 550 rejection is non-retryable and marks the side effect failed', async () => {
    const server = await smtp({ rejectWith: { code: 550, message: 'Mailbox unavailable' } });
    const email = connector({ smtpUrl: server.url });
    const key = newKey('550');

    const err = await caught(() =>
      email.send({ idempotencyKey: key, to: 'gone@example.com', subject: 'S', body: 'b' }),
    );

    expect(err).toBeInstanceOf(ApplicationFailure);
    expect(err).toMatchObject({ type: 'EmailRejected', nonRetryable: true });
    expect((err as Error).message).toMatch(/550/);
    expect(server.rejectedCount).toBe(1);
    expect(server.messages).toHaveLength(0);
    const r = await row(key);
    expect(r).toMatchObject({ status: 'failed', committedAt: null });
    expect(r!.error).toMatch(/550.*Mailbox unavailable/);

    // The server never took the message, so an explicit new call for the key
    // (say, after the mailbox was fixed) may send it; it is delivered once.
    const fixed = await smtp();
    const res = await connector({ smtpUrl: fixed.url }).send({
      idempotencyKey: key,
      to: 'gone@example.com',
      subject: 'S',
      body: 'b',
    });
    expect(res.status).toBe('sent');
    expect(fixed.messages).toHaveLength(1);
    expect(await row(key)).toMatchObject({ status: 'committed', attempts: 2, error: null });
  });

  test('a 4xx reply is retryable and leaves the side effect as intent', async () => {
    const server = await smtp({ rejectWith: { code: 451, message: 'Try again later' } });
    const key = newKey('451');
    const err = await caught(() =>
      connector({ smtpUrl: server.url }).send({ idempotencyKey: key, to: 't@example.com', subject: 'S', body: 'b' }),
    );
    expect(err).toMatchObject({ type: 'EmailTransient', nonRetryable: false });
    expect(await row(key)).toMatchObject({ status: 'intent', committedAt: null });
  });

  test('connection refused is retryable, the row stays intent, and a later retry sends exactly once', async () => {
    const port = await closedPort();
    const email = connector({ smtpUrl: `smtp://127.0.0.1:${port}` });
    const key = newKey('refused');
    const req = { idempotencyKey: key, to: 'later@example.com', subject: 'Later', body: 'eventually' };

    const err = await caught(() => email.send(req));
    expect(err).toBeInstanceOf(ApplicationFailure);
    expect(err).toMatchObject({ type: 'EmailTransient', nonRetryable: false });
    expect((err as Error).message).toMatch(/ECONNREFUSED/);
    const pending = await row(key);
    expect(pending).toMatchObject({ status: 'intent', attempts: 1, committedAt: null });
    expect(pending!.error).toMatch(/ECONNREFUSED/);

    // The server comes back where the connector already points; the retry goes through once.
    const server = await smtp({ port });
    const res = await email.send(req);
    expect(res.status).toBe('sent');
    expect(server.messages).toHaveLength(1);
    expect(server.messages[0].messageId).toBe(deriveMessageId(key));
    expect(await row(key)).toMatchObject({ status: 'committed', attempts: 2, error: null });

    expect((await email.send(req)).status).toBe('already-sent');
    expect(server.messages).toHaveLength(1);
  });

  test('an aborted signal stops the send before SMTP, including while paused at the fault point', async () => {
    const server = await smtp();
    const email = connector({
      smtpUrl: server.url,
      faults: parseFaults('email.send.beforeSmtp=pause:10000', {
        write: async () => undefined,
        // The abandoned pause must not keep Jest alive for 10 s after the suite.
        sleep: (ms) =>
          new Promise<void>((resolve) => {
            const timer = setTimeout(resolve, ms);
            cleanups.push(async () => clearTimeout(timer));
          }),
      }),
    });

    const already = new AbortController();
    already.abort(new Error('cancelled up front'));
    const k1 = newKey('abort-before');
    await expect(
      email.send({ idempotencyKey: k1, to: 'a@example.com', subject: 'S', body: 'b', signal: already.signal }),
    ).rejects.toThrow('cancelled up front');
    expect(await row(k1)).toBeNull();

    const during = new AbortController();
    const k2 = newKey('abort-during');
    const started = Date.now();
    const pending = email.send({
      idempotencyKey: k2,
      to: 'a@example.com',
      subject: 'S',
      body: 'b',
      signal: during.signal,
    });
    setTimeout(() => during.abort(new Error('cancelled while paused')), 200);
    await expect(pending).rejects.toThrow('cancelled while paused');
    expect(Date.now() - started).toBeLessThan(5000);
    expect(await row(k2)).toMatchObject({ status: 'intent' });
    expect(server.messages).toHaveLength(0);
  });

  test('a worker SIGKILLed at the fault point leaves an intent, and the retry delivers exactly once', async () => {
    const server = await smtp();
    const key = newKey('crash');
    const child = `
      const { createEmailConnector } = require(${JSON.stringify(join(ROOT, 'connectors/email.ts'))});
      const { parseFaults } = require(${JSON.stringify(join(ROOT, 'lib/faults.ts'))});
      const { createPrisma } = require(${JSON.stringify(join(ROOT, 'db/prisma.ts'))});
      const email = createEmailConnector({
        smtpUrl: ${JSON.stringify(server.url)}, from: ${JSON.stringify(FROM)}, outboxDir: '/nonexistent',
        prisma: createPrisma(${JSON.stringify(db.url)}), faults: parseFaults(process.env.KEEL_FAULTS),
      });
      email.send({ idempotencyKey: ${JSON.stringify(key)}, to: 'crash@example.com', subject: 'S', body: 'b' })
        .then(() => process.exit(0), (e) => { console.error(e); process.exit(1); });
    `;
    const proc = spawn(process.execPath, ['-r', 'ts-node/register', '-e', child], {
      cwd: ROOT,
      env: { ...process.env, KEEL_FAULTS: 'email.send.beforeSmtp=crash' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    proc.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    proc.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((r) =>
      proc.on('exit', (c, s) => r([c, s])),
    );

    expect({ signal, stderr }).toEqual({ signal: 'SIGKILL', stderr: '' });
    expect(code).toBeNull();
    expect(stdout).toContain(`${FAULT_HIT_MARKER} email.send.beforeSmtp\n`);
    expect(server.messages).toHaveLength(0);
    expect(await row(key)).toMatchObject({ status: 'intent', attempts: 1 });

    const res = await connector({ smtpUrl: server.url }).send({
      idempotencyKey: key,
      to: 'crash@example.com',
      subject: 'S',
      body: 'b',
    });
    expect(res.status).toBe('sent');
    expect(server.messages).toHaveLength(1);
    expect(await row(key)).toMatchObject({ status: 'committed', attempts: 2 });
  });
});

describe('email connector outbox (no SMTP)', () => {
  test('writes one .eml named after the Message-ID; re-sends never add a second file', async () => {
    const dir = await tempDir();
    const email = connector({ outboxDir: join(dir, 'nested') });
    const key = newKey('outbox');
    const req = { idempotencyKey: key, to: 'ops@example.com', subject: 'Outbox', body: 'stored locally' };

    const res = await email.send(req);
    expect(res).toEqual({
      messageId: deriveMessageId(key),
      status: 'sent',
      transport: 'outbox',
      accepted: ['ops@example.com'],
    });

    const token = deriveMessageId(key).slice(1, 33);
    const files = await readdir(join(dir, 'nested'));
    expect(files).toEqual([`${token}.eml`]);
    const eml = await readFile(join(dir, 'nested', files[0]), 'utf8');
    expect(eml).toContain(`Message-ID: ${deriveMessageId(key)}\r\n`);
    expect(eml).toContain(`X-Keel-Idempotency-Key: ${key}\r\n`);
    expect(eml).toContain('Subject: Outbox\r\n');
    expect(eml).toMatch(/\r\n\r\nstored locally/);

    expect((await email.send(req)).status).toBe('already-sent');
    expect(await readdir(join(dir, 'nested'))).toEqual([`${token}.eml`]);

    // A crash after writing but before the commit leaves the row at intent;
    // the retry rewrites the very same file (same name, same bytes).
    await db.prisma.sideEffect.update({
      where: { idempotencyKey: key },
      data: { status: 'intent', committedAt: null },
    });
    expect((await email.send(req)).status).toBe('sent');
    expect(await readdir(join(dir, 'nested'))).toEqual([`${token}.eml`]);
    expect(await readFile(join(dir, 'nested', files[0]), 'utf8')).toBe(eml);
    expect(await row(key)).toMatchObject({ status: 'committed', attempts: 3 });
  });
});

describe('parseFaults', () => {
  function recorder() {
    const lines: string[] = [];
    const sleeps: number[] = [];
    const kills: number[] = [];
    const io = {
      write: async (line: string) => void lines.push(line),
      sleep: async (ms: number) => void sleeps.push(ms),
      kill: () => void kills.push(1),
    };
    return { lines, sleeps, kills, io };
  }

  test('no spec is a no-op', async () => {
    expect(parseFaults()).toBe(noFaults);
    expect(parseFaults('  ')).toBe(noFaults);
    await expect(parseFaults(undefined).hit('email.send.beforeSmtp')).resolves.toBeUndefined();
  });

  test('pause writes the marker line and waits; other points are untouched', async () => {
    const { lines, sleeps, io } = recorder();
    const hooks = parseFaults(' t.pause.a=pause:4000 , t.pause.b=pause:5 ', io);
    await hooks.hit('t.pause.a');
    await hooks.hit('t.pause.a');
    await hooks.hit('something.else');
    await hooks.hit('t.pause.b');
    expect(lines).toEqual(['KEEL_FAULT_HIT t.pause.a\n', 'KEEL_FAULT_HIT t.pause.a\n', 'KEEL_FAULT_HIT t.pause.b\n']);
    expect(sleeps).toEqual([4000, 4000, 5]);
  });

  test('pause really waits with the default sleep', async () => {
    const hooks = parseFaults('t.pause.real=pause:150', { write: async () => undefined });
    const started = Date.now();
    await hooks.hit('t.pause.real');
    expect(Date.now() - started).toBeGreaterThanOrEqual(140);
  });

  test('once triggers only the first time in the process, even across parses', async () => {
    const first = recorder();
    const hooks = parseFaults('t.once.point=pause:10:once', first.io);
    await hooks.hit('t.once.point');
    await hooks.hit('t.once.point');
    expect(first.lines).toEqual(['KEEL_FAULT_HIT t.once.point\n']);
    expect(first.sleeps).toEqual([10]);

    const second = recorder();
    await parseFaults('t.once.point=pause:10:once', second.io).hit('t.once.point');
    expect(second.lines).toEqual([]);
  });

  test('crash writes the marker and kills the process', async () => {
    const { lines, kills, io } = recorder();
    const hooks = parseFaults('t.crash.point=crash', io);
    void hooks.hit('t.crash.point'); // never resolves: a crashed process does not carry on
    await new Promise((r) => setImmediate(r));
    expect(lines).toEqual(['KEEL_FAULT_HIT t.crash.point\n']);
    expect(kills).toEqual([1]);
  });

  test('bad entries throw an error naming the entry', () => {
    for (const bad of [
      'email.send.beforeSmtp',
      'x=explode',
      'x=pause',
      'x=pause:abc',
      'x=pause:-5',
      'x=crash:4000',
      '=crash',
      'x=pause:1:twice',
      'a b=crash',
    ]) {
      expect(() => parseFaults(`ok.point=crash,${bad}`)).toThrow(`"${bad}"`);
    }
    expect(() => parseFaults('p=crash,p=pause:1')).toThrow(/"p=pause:1".*more than once/);
  });
});
