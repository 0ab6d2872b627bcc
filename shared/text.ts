/**
 * Shortening text safely. Pure and sandbox-safe: workflows, activities and the
 * API all use it.
 *
 * Cutting a JavaScript string with `slice` counts UTF-16 units, so it can keep
 * the first half of a surrogate pair (every emoji outside the BMP). A string
 * with a lone surrogate is not valid Unicode: PostgreSQL's jsonb refuses it
 * and the goal that wrote it fails. Everything here counts code points.
 */

/** Appended to text that was shortened. One code point. */
export const ELLIPSIS = '…';

const isHigh = (c: number) => c >= 0xd800 && c <= 0xdbff;
const isLow = (c: number) => c >= 0xdc00 && c <= 0xdfff;

/** The UTF-16 width (1 or 2) of the code point that starts at `i`. */
function width(text: string, i: number): number {
  return isHigh(text.charCodeAt(i)) && isLow(text.charCodeAt(i + 1)) ? 2 : 1;
}

/** The number of code points in `text` (a lone surrogate counts as one). */
export function codePointLength(text: string): number {
  let n = 0;
  for (let i = 0; i < text.length; i += width(text, i)) n++;
  return n;
}

/**
 * `text` shortened to at most `max` code points, ending in {@link ELLIPSIS}
 * when anything was cut; `text` itself when it fits, '' when `max < 1`.
 *
 * Never splits a surrogate pair, so a well-formed input gives a well-formed
 * result. The work is bounded by `max`, not by the length of `text`. Cutting
 * is by code point rather than grapheme: grapheme boundaries depend on the ICU
 * data of the running Node version, and workflow code must cut the same way
 * on every worker to replay. A trailing zero-width joiner is dropped so the
 * result never ends in half of a joined emoji sequence's glue.
 */
export function cut(text: string, max: number): string {
  const limit = Math.floor(max);
  if (!(limit >= 1)) return '';
  // Walk at most `limit` code points: `keep` is where the first limit - 1 end
  // (room for the ellipsis), `i` where the first `limit` end.
  let i = 0;
  let keep = 0;
  for (let n = 0; n < limit && i < text.length; n++) {
    if (n === limit - 1) keep = i;
    i += width(text, i);
  }
  if (i >= text.length) return text;
  let kept = text.slice(0, keep);
  while (kept.endsWith('\u200d')) kept = kept.slice(0, -1);
  return `${kept.trimEnd()}${ELLIPSIS}`;
}
