import { codePointLength, cut, ELLIPSIS } from '../../shared/text';

/** True when `s` has no unpaired surrogate: what PostgreSQL's jsonb accepts. */
const wellFormed = (s: string) => !/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/.test(s);

describe('cut', () => {
  it('never splits a surrogate pair, at any limit', () => {
    const emoji = '😀'.repeat(45);
    for (let max = 0; max <= 50; max++) {
      const out = cut(emoji, max);
      expect(wellFormed(out)).toBe(true);
      expect(codePointLength(out)).toBeLessThanOrEqual(max);
    }
    // The case that failed goals: a preview of 80 UTF-16 units kept half of the 40th emoji.
    expect(cut(emoji, 80)).toBe(emoji);
    expect(cut(emoji, 40)).toBe(`${'😀'.repeat(39)}${ELLIPSIS}`);
  });

  it('keeps text that fits, and bounds the result including the ellipsis', () => {
    expect(cut('hello', 5)).toBe('hello');
    expect(cut('hello!', 5)).toBe(`hell${ELLIPSIS}`);
    expect(cut('hello', 1)).toBe(ELLIPSIS);
    expect(cut('hello', 0)).toBe('');
    expect(cut('hello', -3)).toBe('');
    expect(cut('hello', Number.NaN)).toBe('');
    expect(cut('', 10)).toBe('');
  });

  it('counts mixed BMP and astral text in code points', () => {
    const mixed = 'a😀b𝄞c€d';
    expect(codePointLength(mixed)).toBe(7);
    expect(cut(mixed, 7)).toBe(mixed);
    expect(cut(mixed, 6)).toBe(`a😀b𝄞c${ELLIPSIS}`);
    expect(cut(mixed, 3)).toBe(`a😀${ELLIPSIS}`);
  });

  it('does not end in whitespace or a dangling zero-width joiner before the ellipsis', () => {
    expect(cut('one two three', 5)).toBe(`one${ELLIPSIS}`);
    // 👩‍💻 is woman + ZWJ + laptop: cutting after the joiner would leave the glue alone.
    expect(cut('👩\u200d💻 coding', 3)).toBe(`👩${ELLIPSIS}`);
  });

  it('does work bounded by the limit, not by the input', () => {
    const huge = 'x'.repeat(5_000_000);
    const started = performance.now();
    for (let i = 0; i < 1000; i++) cut(huge, 200);
    expect(performance.now() - started).toBeLessThan(200);
    expect(cut(huge, 200)).toHaveLength(200);
  });
});
