/**
 * The tokenizer's bounded encoder against js-tiktoken's own (the reference:
 * same ranks, quadratic merge). D1: a long run without whitespace used to
 * take tens of seconds; the known-string cases live in
 * test/memory/embedders.test.ts.
 */
import { Tiktoken, type TiktokenBPE } from 'js-tiktoken/lite';
import { prng } from '../../lib/prng';
import { countTokens, encodeTokens, truncateToTokens } from '../../models/tokenizer';

let reference: Tiktoken;
const exact = (text: string) => reference.encode(text, [], []);

beforeAll(() => {
  // Both parse the 2 MB rank table once (a couple of seconds): outside the
  // timed tests. The long run also gets the merge compiled, as it is in a
  // worker that has counted anything long before.
  countTokens(`warm up ${'y'.repeat(20_000)}`);
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  reference = new Tiktoken(require('js-tiktoken/ranks/o200k_base') as TiktokenBPE);
});

const rand = prng(7);
const pick = (alphabet: string[], n: number) =>
  Array.from({ length: n }, () => alphabet[Math.floor(rand() * alphabet.length)]);
const lower = [...'abcdefghijklmnopqrstuvwxyz'];

/** Runs with no whitespace, each one pre-token (or a few), of the kinds hostile input is made of. */
const runs = (n: number): Record<string, string> => ({
  'one letter': 'x'.repeat(n),
  'random letters': pick(lower, n).join(''),
  'upper case': pick([...'ABCDEFGHIJKLMNOPQRSTUVWXYZ'], n).join(''),
  // Three UTF-8 bytes each: a third as many characters is as much work, and
  // 100,000 of them would not fit in an API request (KEEL_BODY_LIMIT 256kb).
  CJK: pick([...'漢字仮名交じり文東京都'], Math.ceil(n / 3)).join(''),
  emoji: pick(['😀', '🚀', '👩‍💻', '🇫🇷'], n).join('').slice(0, n),
  punctuation: pick([...'!@#$%^&*()[]{}<>?~'], n).join(''),
  base64: Buffer.from(pick([...Array(256).keys()].map(String), Math.ceil((n * 3) / 4)).map(Number))
    .toString('base64')
    .slice(0, n),
  spaces: ' '.repeat(n),
});

/**
 * A quadratic tokenizer took 41 s for 20,000 letters and would take many minutes for 100,000; the current one
 * takes tens of milliseconds. The per-test timeout below is a hang guard with a wide margin on a busy machine,
 * not a speed target (speed is measured on demand: the note of issue 7 gives the figures).
 */
const HANG_GUARD_MS = 10_000;

describe('counting is bounded (D1)', () => {
  it(
    'counts 100,000 characters without spaces, exactly, without stalling',
    () => {
      // Eight x's are one token, so the count is exact, not an estimate.
      expect(countTokens('x'.repeat(100_000))).toBe(12_500);
    },
    HANG_GUARD_MS,
  );

  it.each(Object.entries(runs(100_000)))(
    'counts 100,000 characters (bytes for CJK) of %s without stalling',
    (_kind, text) => {
      expect(countTokens(text)).toBeGreaterThan(0);
    },
    HANG_GUARD_MS,
  );

  it.each(['random letters', 'CJK', 'emoji'])(
    'truncates 100,000 characters (bytes for CJK) of %s to a prefix within budget without stalling',
    (kind) => {
      const text = runs(100_000)[kind];
      const cut = truncateToTokens(text, 500);
      expect(text.startsWith(cut)).toBe(true);
      const n = countTokens(cut);
      expect(n).toBeLessThanOrEqual(500);
      // Backing off a broken character costs at most a few tokens (an emoji is up to 7).
      expect(n).toBeGreaterThanOrEqual(490);
    },
    HANG_GUARD_MS,
  );
});

describe('counts are exact', () => {
  const ordinary = [
    'Hi Ada,\n\nThank you so much for the referral! It meant a lot.\n\nBest,\nThe Keel operator',
    "It's what WE'LL do: they've said I'd go, you're sure?  Tabs\tand  double  spaces \n\n\n end.",
    'Invoice #4411 for $1,234,567.89 is 30 days overdue (due 2024-03-01T12:00:00Z).',
    'const x = { "a": [1, 2, 3], b: null }; // why: see https://example.com/a/b?c=d&e=f#g',
    'Grüße aus München — das Café ist geöffnet. Ça va? Ñandú, Ærø, Łódź.',
    '今日は東京で会議があります。明日は大阪に行きます！请在周五之前回复。',
    'Москва — столица России. Αθήνα είναι η πρωτεύουσα. مرحبا بالعالم',
    'Launch 🚀 went well 👍🏽 — family 👨‍👩‍👧 and flags 🇫🇷🇯🇵 too.',
    '<|endoftext|> and <|fim_prefix|> are plain text here',
    '   leading and trailing whitespace   \r\n\r\n',
    'The quick brown fox jumps over the lazy dog. '.repeat(200),
  ];

  it.each(ordinary.map((t) => [t.slice(0, 30), t]))('matches js-tiktoken on ordinary text: %s', (_label, text) => {
    expect(encodeTokens(text)).toEqual(exact(text));
    expect(countTokens(text)).toBe(exact(text).length);
  });

  // The reference is quadratic: keep these long enough to need many merges, short enough to finish.
  it.each(Object.entries(runs(600)))('matches js-tiktoken on a long run of %s', (_kind, text) => {
    expect(encodeTokens(text)).toEqual(exact(text));
  });

  it('matches js-tiktoken on random mixed text (seeded)', () => {
    // Ties between equal ranks are where a heap merge could diverge from the
    // reference's leftmost-first scan: small alphabets make many of them.
    const alphabets = [[...'ab'], [...'aab '], [...'xX1!'], [...'é漢😀 a'], [...'lo l']];
    for (let i = 0; i < 300; i++) {
      const text = pick(alphabets[i % alphabets.length], 1 + Math.floor(rand() * 200)).join('');
      expect(encodeTokens(text)).toEqual(exact(text));
    }
  });
});
