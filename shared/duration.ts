/** Durations as plans write them (`90s`, `30m`, `12h`, `3d`); pure, so workflows read them too. */

const UNIT_MS = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;

/** The pattern a duration matches. */
export const DURATION_PATTERN = /^(\d{1,9})(ms|s|m|h|d)$/;

/** A duration's milliseconds; throws naming the text when it is not one. */
export function durationMs(text: string): number {
  const m = DURATION_PATTERN.exec(text.trim());
  if (!m) throw new Error(`"${text}" is not a duration like 90s, 30m, 12h or 3d`);
  return Number(m[1]) * UNIT_MS[m[2] as keyof typeof UNIT_MS];
}
