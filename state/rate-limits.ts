/**
 * Per-connector rate limits that hold across worker restarts and across
 * workers: each action takes one slot from every configured window
 * (minute, hour, day) of its connector, counted in PostgreSQL
 * (`rate_limit_windows`). When a window is full, nothing is taken from any
 * window and the caller learns how long until the fullest one opens.
 */
import { Prisma } from '../generated/prisma/client';
import type { Db } from '../db/prisma';
import type { RateLimit } from '../policy/settings';

const WINDOWS = [
  ['perMinute', 'minute', 60_000],
  ['perHour', 'hour', 3_600_000],
  ['perDay', 'day', 86_400_000],
] as const;

export type RateLimitDecision =
  | { ok: true }
  | {
      ok: false;
      /** The full window: its size and limit. */
      window: 'minute' | 'hour' | 'day';
      limit: number;
      /** How long until it opens again. */
      retryAfterMs: number;
    };

class WindowFull extends Error {
  constructor(readonly decision: Extract<RateLimitDecision, { ok: false }>) {
    super('rate-limit window full');
  }
}

/**
 * Takes one slot for `connector` from each of `limits`' windows at `now`, all
 * or none (one transaction; a full window rolls back the others).
 */
export async function takeRateLimit(
  prisma: Db,
  connector: string,
  limits: RateLimit,
  now: Date = new Date(),
): Promise<RateLimitDecision> {
  const windows = WINDOWS.flatMap(([key, size, ms]) => {
    const limit = limits[key];
    return limit === undefined ? [] : [{ size, ms, limit, start: new Date(Math.floor(now.getTime() / ms) * ms) }];
  });
  if (windows.length === 0) return { ok: true };
  try {
    await prisma.$transaction(async (tx) => {
      for (const w of windows) {
        // Counts up only while below the limit: a full window returns no row.
        const rows = await tx.$queryRaw<{ count: number }[]>(Prisma.sql`
          INSERT INTO rate_limit_windows (connector, size, window_start, count)
          VALUES (${connector}, ${w.size}, ${w.start}, 1)
          ON CONFLICT (connector, size, window_start) DO UPDATE SET count = rate_limit_windows.count + 1
            WHERE rate_limit_windows.count < ${w.limit}
          RETURNING count`);
        if (rows.length === 0) {
          throw new WindowFull({
            ok: false,
            window: w.size,
            limit: w.limit,
            retryAfterMs: w.start.getTime() + w.ms - now.getTime(),
          });
        }
        if (rows[0].count === 1) {
          // A new window: drop this connector's windows that ended more than a day ago.
          await tx.$executeRaw`DELETE FROM rate_limit_windows WHERE connector = ${connector} AND window_start < ${new Date(now.getTime() - 2 * 86_400_000)}`;
        }
      }
    });
    return { ok: true };
  } catch (err) {
    if (err instanceof WindowFull) return err.decision;
    throw err;
  }
}
