/**
 * Token counting and truncation with OpenAI's real BPE (`o200k_base`, the
 * encoding of the gpt-4o / gpt-4.1 / o-series models Keel defaults to).
 *
 * The ranks ship inside the js-tiktoken package (`js-tiktoken/ranks/*`), so
 * nothing is downloaded at run time. Parsing them takes a couple of seconds
 * and ~100 MB, so the encoder is built on first use and then reused, and
 * processes that never count tokens never pay for it.
 */
import { Tiktoken, type TiktokenBPE } from 'js-tiktoken/lite';

/** The BPE encoding used by {@link countTokens} and {@link truncateToTokens}. */
export const TOKENIZER_ENCODING = 'o200k_base';

let encoder: Tiktoken | undefined;

function getEncoder(): Tiktoken {
  if (!encoder) {
    // A deferred require keeps the 2 MB rank table out of start-up. It is a
    // subpath export, which `moduleResolution: node` cannot type, hence the cast.
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const ranks = require('js-tiktoken/ranks/o200k_base') as TiktokenBPE;
    encoder = new Tiktoken(ranks);
  }
  return encoder;
}

/**
 * Encodes text as plain text: strings that look like special tokens
 * (`<|endoftext|>`) are tokenised as ordinary characters rather than
 * rejected, since the text comes from users, emails and documents.
 */
function encode(text: string): number[] {
  return getEncoder().encode(text, [], []);
}

/** The number of `o200k_base` tokens in `text` (0 for the empty string). */
export function countTokens(text: string): number {
  return text.length === 0 ? 0 : encode(text).length;
}

/**
 * The longest prefix of `text` that fits in `maxTokens` tokens (cut on a
 * token boundary); `text` itself when it already fits, '' when `maxTokens <= 0`.
 * The result is always a prefix of `text` (never a broken character) and
 * `countTokens(result) <= maxTokens`.
 */
export function truncateToTokens(text: string, maxTokens: number): string {
  if (maxTokens <= 0 || text.length === 0) return '';
  const tokens = encode(text);
  if (tokens.length <= maxTokens) return text;

  const enc = getEncoder();
  for (let k = Math.floor(maxTokens); k > 0; k--) {
    const candidate = enc.decode(tokens.slice(0, k));
    // A token may end in the middle of a multi-byte character; the decoder
    // then yields U+FFFD, which is not a prefix of the input: cut one token
    // earlier. Re-encoding a cut chunk can, rarely, take more tokens than
    // the slice it came from, so the budget is checked again too.
    if (text.startsWith(candidate) && encode(candidate).length <= maxTokens) return candidate;
  }
  return '';
}
