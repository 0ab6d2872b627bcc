/** Prompt pieces every model call shares, and fitting a prompt to its tier's context window. */
import { ApplicationFailure } from '@temporalio/common';
import type { PromptFit } from '../shared/plan';
import type { ChatMessage } from './gateway';
import { countTokens } from './tokenizer';

/**
 * Wraps outside text (emails, documents, memories, a goal's input) so the
 * model can tell it from instructions, and so the text cannot close the
 * wrapper itself. The instructions of every prompt say what the wrapper means.
 */
export const untrusted = (text: string): string =>
  `<untrusted>\n${text.replace(/<\/?untrusted>/gi, '[tag removed]')}\n</untrusted>`;

/** Prompt tokens as OpenAI counts chat messages: each content, 4 per message, 3 to prime the answer. */
export function promptTokens(messages: readonly ChatMessage[]): number {
  return messages.reduce((sum, m) => sum + countTokens(m.content) + 4, 3);
}

/** One working-set item a prompt may carry, e.g. a memory or a canonical fact. */
export interface PromptItem {
  id: string;
  text: string;
}

/** The line an item takes in a prompt: one line, whatever newlines its text had. */
export const itemLine = (item: PromptItem): string => `- ${item.text.replace(/\s*\n\s*/g, ' ')}`;

/**
 * Fits a prompt to the tier's context window less the answer's tokens, by
 * leaving out working-set items, least useful first (`items` is ordered most
 * useful first, as memory/working-set.ts assembles it). `build` gets the
 * kept items' lines and lays out the messages; the instructions and the
 * `<untrusted>` delimiters are `build`'s own text and are never cut. When the
 * prompt does not fit even with no items, the call fails with a
 * non-retryable `PromptTooLarge` that gives the sizes.
 */
export function fitPrompt(opts: {
  items: readonly PromptItem[];
  build: (lines: string) => ChatMessage[];
  contextTokens: number;
  maxTokens: number;
}): { messages: ChatMessage[]; fit: PromptFit } {
  const limit = opts.contextTokens - opts.maxTokens;
  const lines = opts.items.map(itemLine);
  const render = (n: number) => opts.build(lines.slice(0, n).join('\n'));
  let n = lines.length;
  let messages = render(n);
  let tokens = promptTokens(messages);
  if (tokens > limit) {
    // Estimate from each line's own cost, then confirm by counting the real prompt (BPE merges across lines).
    const costs = lines.map((l) => countTokens(`${l}\n`));
    let over = tokens - limit;
    while (n > 0 && over > 0) over -= costs[--n];
    messages = render(n);
    tokens = promptTokens(messages);
    while (tokens > limit && n > 0) {
      messages = render(--n);
      tokens = promptTokens(messages);
    }
    if (tokens > limit) {
      throw ApplicationFailure.create({
        type: 'PromptTooLarge',
        nonRetryable: true,
        message:
          `the prompt takes ${tokens} tokens without any working-set item, but the context window is ` +
          `${opts.contextTokens} tokens with ${opts.maxTokens} kept for the answer: shorten the goal, or raise the tier's context setting`,
      });
    }
  }
  return {
    messages,
    fit: {
      contextTokens: opts.contextTokens,
      answerTokens: opts.maxTokens,
      promptTokens: tokens,
      kept: opts.items.slice(0, n).map((i) => i.id),
      dropped: opts.items
        .slice(n)
        .reverse()
        .map((i) => ({ id: i.id, tokens: countTokens(`${itemLine(i)}\n`) })),
    },
  };
}
