/**
 * Text for the Temporal Web UI's user metadata: a workflow's static summary
 * and details, and an activity's summary. Pure and sandbox-safe: the workflow
 * (activity summaries) and commands/ (workflow summaries) both use it.
 *
 * Temporal servers that enforce `limit.userMetadataSummarySize` refuse a
 * summary payload over it (400 bytes by default, counted on the serialized
 * payload: JSON quotes and escapes included). A refused workflow start would be
 * a failed request; a refused activity command would fail the workflow task
 * and stall the goal. Titles come from people and models (up to 500
 * characters, any script), so every summary is clamped by its encoded size
 * here, well below that limit; a long summary is also unreadable in a list.
 */

/** UTF-8 bytes of the JSON-encoded summary, quotes included; the payload's metadata takes ~25 bytes more. */
export const SUMMARY_MAX_BYTES = 300;

/** UTF-8 bytes of the JSON-encoded details (the server's default limit is 20,000 bytes). */
export const DETAILS_MAX_BYTES = 2000;

const ELLIPSIS = '…';
const ELLIPSIS_BYTES = 3;

/** What one code point costs inside a JSON string, in UTF-8 bytes. */
function jsonBytes(cp: number): number {
  if (cp === 0x22 || cp === 0x5c) return 2; // \" and \\
  if (cp === 0x0a || cp === 0x09 || cp === 0x0d) return 2; // \n \t \r
  if (cp < 0x20) return 6; // \u00XX
  if (cp >= 0xd800 && cp <= 0xdfff) return 6; // a lone surrogate: JSON.stringify writes \udXXX
  if (cp < 0x80) return 1;
  if (cp < 0x800) return 2;
  if (cp < 0x10000) return 3;
  return 4;
}

/**
 * `text` on one line (every run of whitespace and control characters becomes
 * one space), cut on a code-point boundary so that its JSON encoding fits in
 * `maxBytes` UTF-8 bytes, ending in "…" when anything was cut.
 */
export function uiSummary(text: string, maxBytes = SUMMARY_MAX_BYTES): string {
  const line = text.replace(/[\s\p{Cc}]+/gu, ' ').trim();
  return clamp(line, maxBytes);
}

/** Several lines (each folded like {@link uiSummary}, empty ones dropped), clamped the same way as a whole. */
export function uiDetails(lines: (string | undefined)[], maxBytes = DETAILS_MAX_BYTES): string {
  const kept = lines.map((l) => (l ?? '').replace(/[\s\p{Cc}]+/gu, ' ').trim()).filter((l) => l.length > 0);
  return clamp(kept.join('\n'), maxBytes);
}

function clamp(text: string, maxBytes: number): string {
  const budget = maxBytes - 2; // the quotes
  let used = 0;
  let keepEnd = 0; // where the text ends if it has to be cut (room left for the ellipsis)
  for (let i = 0; i < text.length;) {
    const cp = text.codePointAt(i)!;
    const width = cp > 0xffff ? 2 : 1;
    used += jsonBytes(cp);
    if (used > budget) {
      let kept = text.slice(0, keepEnd).trimEnd();
      while (kept.endsWith('\u200d')) kept = kept.slice(0, -1);
      return `${kept}${ELLIPSIS}`;
    }
    i += width;
    if (used <= budget - ELLIPSIS_BYTES) keepEnd = i;
  }
  return text;
}
