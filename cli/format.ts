/** Text for people: money, times, one-line excerpts, aligned columns. */

/** Where the CLI writes; stdout for answers, stderr for errors and hints. */
export function print(line = ''): void {
  process.stdout.write(`${line}\n`);
}
export function printErr(line: string): void {
  process.stderr.write(`${line}\n`);
}
export function printJson(value: unknown): void {
  print(JSON.stringify(value, null, 2));
}

export function money(usd: number | undefined | null): string {
  if (usd === undefined || usd === null) return '$0';
  return usd === 0 ? '$0' : usd < 0.01 ? `$${usd.toFixed(4)}` : `$${usd.toFixed(2)}`;
}

const pad = (n: number) => String(n).padStart(2, '0');

/** Local time, to the second: `2026-12-02 14:08:57`. */
export function when(iso: string | undefined | null): string {
  if (!iso) return '-';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return String(iso);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

/** `12 s`, `3 min`, `2 h`, `4 d`: how far `iso` is from now, without a sign. */
export function span(iso: string, now = Date.now()): string {
  const s = Math.abs(now - new Date(iso).getTime()) / 1000;
  if (s < 90) return `${Math.round(s)} s`;
  if (s < 90 * 60) return `${Math.round(s / 60)} min`;
  if (s < 36 * 3600) return `${Math.round(s / 3600)} h`;
  return `${Math.round(s / 86400)} d`;
}

/** The text on one line, cut to `max` characters (by code point, so nothing is split in half). */
export function oneLine(text: unknown, max = 100): string {
  const s = (typeof text === 'string' ? text : (JSON.stringify(text) ?? '')).replace(/\s+/g, ' ').trim();
  const chars = [...s];
  return chars.length > max ? `${chars.slice(0, max - 1).join('')}…` : s;
}

export function indent(text: string, prefix: string): string {
  return text
    .split('\n')
    .map((l) => (l ? prefix + l : l))
    .join('\n');
}

/** Rows as aligned columns; the last column is never padded. */
export function table(head: string[], rows: string[][]): string[] {
  const all = [head, ...rows];
  const widths = head.map((_, i) => Math.max(...all.map((r) => [...(r[i] ?? '')].length)));
  return all.map((r) =>
    r
      .map((cell, i) => (i === r.length - 1 ? cell : cell + ' '.repeat(widths[i] - [...cell].length)))
      .join('  ')
      .trimEnd(),
  );
}

/** `a=1, b="two"`: inputs as a person reads them, long values cut. */
export function fields(obj: Record<string, unknown> | null | undefined, max = 60): string {
  if (!obj) return '';
  return Object.entries(obj)
    .filter(([, v]) => v !== undefined && v !== null && v !== '')
    .map(([k, v]) => `${k}=${typeof v === 'string' ? oneLine(v, max) : oneLine(JSON.stringify(v), max)}`)
    .join(', ');
}
