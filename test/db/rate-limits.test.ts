/**
 * state/rate-limits.ts on PostgreSQL: per-connector windows shared by every
 * process, so a limit holds across restarts and across workers.
 */
import { createPrisma } from '../../db/prisma';
import { takeRateLimit } from '../../state/rate-limits';
import { createTestDatabase, type TestDatabase } from '../helpers/db';

jest.setTimeout(60_000);

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(async () => {
  await db?.drop();
});

const at = (iso: string) => new Date(iso);

test('a minute window lets `perMinute` actions through, then says how long until it opens', async () => {
  const results = [];
  for (let i = 0; i < 4; i++)
    results.push(await takeRateLimit(db.prisma, 'email', { perMinute: 3 }, at('2026-12-01T10:00:15Z')));
  expect(results.map((r) => r.ok)).toEqual([true, true, true, false]);
  expect(results[3]).toEqual({ ok: false, window: 'minute', limit: 3, retryAfterMs: 45_000 });
  // The next minute is a new window.
  expect(await takeRateLimit(db.prisma, 'email', { perMinute: 3 }, at('2026-12-01T10:01:00Z'))).toEqual({ ok: true });
  // Another connector has its own windows.
  expect(await takeRateLimit(db.prisma, 'slack', { perMinute: 3 }, at('2026-12-01T10:00:20Z'))).toEqual({ ok: true });
});

test('all windows or none: a full hour takes nothing from the minute', async () => {
  const limits = { perMinute: 5, perHour: 2 };
  const t = at('2026-12-01T11:00:00Z');
  expect((await takeRateLimit(db.prisma, 'webhook', limits, t)).ok).toBe(true);
  expect((await takeRateLimit(db.prisma, 'webhook', limits, at('2026-12-01T11:00:01Z'))).ok).toBe(true);
  const full = await takeRateLimit(db.prisma, 'webhook', limits, at('2026-12-01T11:00:02Z'));
  expect(full).toEqual({ ok: false, window: 'hour', limit: 2, retryAfterMs: 3_600_000 - 2_000 });
  const minute = await db.prisma.rateLimitWindow.findUniqueOrThrow({
    where: { connector_size_windowStart: { connector: 'webhook', size: 'minute', windowStart: t } },
  });
  expect(minute.count).toBe(2);
});

test('the count survives a restart and is shared by concurrent workers', async () => {
  const limits = { perDay: 5 };
  const t = at('2026-12-02T09:00:00Z');
  expect((await takeRateLimit(db.prisma, 'email-shared', limits, t)).ok).toBe(true);
  // Two more "workers", each with its own connection pool, racing for what is left.
  const a = createPrisma(db.url);
  const b = createPrisma(db.url);
  try {
    const raced = await Promise.all(
      Array.from({ length: 12 }, (_, i) => takeRateLimit(i % 2 ? a : b, 'email-shared', limits, t)),
    );
    expect(raced.filter((r) => r.ok)).toHaveLength(4);
    const denied = raced.find((r) => !r.ok);
    expect(denied).toMatchObject({ ok: false, window: 'day', limit: 5, retryAfterMs: 15 * 3_600_000 });
  } finally {
    await Promise.all([a.$disconnect(), b.$disconnect()]);
  }
});

test('old windows are dropped when a new one opens', async () => {
  await takeRateLimit(db.prisma, 'old', { perMinute: 1 }, at('2026-11-20T10:00:00Z'));
  await takeRateLimit(db.prisma, 'old', { perMinute: 1 }, at('2026-12-01T10:00:00Z'));
  const rows = await db.prisma.rateLimitWindow.findMany({ where: { connector: 'old' } });
  expect(rows.map((r) => r.windowStart.toISOString())).toEqual(['2026-12-01T10:00:00.000Z']);
});

test('no limits configured: always through, nothing stored', async () => {
  expect(await takeRateLimit(db.prisma, 'free', {})).toEqual({ ok: true });
  expect(await db.prisma.rateLimitWindow.count({ where: { connector: 'free' } })).toBe(0);
});
