/** uiSummary and uiDetails: one line, clamped by the size Temporal counts (the JSON-encoded payload). */
import { uiDetails, uiSummary } from '../../shared/summary';

const bytes = (s: string) => Buffer.byteLength(JSON.stringify(s));

test('a short title is kept as it is, on one line', () => {
  expect(uiSummary('Email ada@example.com a thank-you note')).toBe('Email ada@example.com a thank-you note');
  expect(uiSummary('  Draft\n\tthe\r\n email\u0000 ')).toBe('Draft the email');
});

test('every kind of character is counted as it is encoded, and the cut fits', () => {
  for (const unit of ['a', 'é', '標', '😀', '"', '\\', '\u0007x', '\ud800']) {
    const text = unit.repeat(500);
    const out = uiSummary(text, 100);
    expect(bytes(out)).toBeLessThanOrEqual(100);
    expect(out.endsWith('…')).toBe(true);
    // As much as fits: within one character (at most 6 bytes encoded) and the ellipsis of the limit.
    expect(bytes(out)).toBeGreaterThan(100 - 6 - 3);
  }
});

test('a cut never splits an emoji or leaves a joiner at the end', () => {
  const family = '👩\u200d👩\u200d👧'.repeat(40);
  const out = uiSummary(family, 60);
  expect(out).not.toMatch(/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/);
  expect(out.endsWith('\u200d…')).toBe(false);
  expect(bytes(out)).toBeLessThanOrEqual(60);
});

test('details keep their lines, drop empty ones and are clamped as a whole', () => {
  expect(uiDetails(['Keel goal g1', undefined, '  ', 'from\nthe operator'])).toBe('Keel goal g1\nfrom the operator');
  const long = uiDetails(['x'.repeat(5000), 'y'], 200);
  expect(bytes(long)).toBeLessThanOrEqual(200);
  expect(long.endsWith('…')).toBe(true);
});
