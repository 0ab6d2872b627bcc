/**
 * Model prices and what a call costs. Pure (zod only, no Node imports), so a
 * workflow may import it to reserve a step's worst-case cost before the step
 * runs and settle the real cost after.
 */
import { z } from 'zod';
import { once } from '../shared/once';

/** The price of one model in US dollars per million tokens. */
export const modelPriceSchema = once('models/prices#modelPriceSchema', () =>
  z.object({
    input: z.number().nonnegative(),
    output: z.number().nonnegative(),
  }),
);

export type ModelPrice = z.infer<typeof modelPriceSchema>;

/** Model name → price, as `KEEL_PRICES` gives it (`{"my-model":{"input":1,"output":2}}`). */
export const priceTableSchema = once('models/prices#priceTableSchema', () =>
  z.record(z.string().min(1), modelPriceSchema),
);

export type PriceTable = z.infer<typeof priceTableSchema>;

/** Prices of the default models (USD per 1M tokens); `KEEL_PRICES` adds to and overrides them. */
export const DEFAULT_PRICES: Readonly<PriceTable> = Object.freeze({
  'gpt-4o-mini': { input: 0.15, output: 0.6 },
  'gpt-4o': { input: 2.5, output: 10 },
});

/** The default table with `overrides` on top (an override replaces a model's whole entry). */
export function resolvePrices(overrides: PriceTable = {}): PriceTable {
  return { ...DEFAULT_PRICES, ...overrides };
}

/**
 * A model's price: by its exact name, else by the name without a dated
 * snapshot suffix (`gpt-4o-2024-08-06` → `gpt-4o`), which is how endpoints
 * often name the model that answered. Undefined when the table has neither.
 */
export function priceOf(model: string, prices: PriceTable = DEFAULT_PRICES): ModelPrice | undefined {
  if (Object.prototype.hasOwnProperty.call(prices, model)) return prices[model];
  const undated = model.replace(/-\d{4}-\d{2}-\d{2}$/, '');
  if (undated !== model && Object.prototype.hasOwnProperty.call(prices, undated)) return prices[undated];
  return undefined;
}

/** What a call cost; `priced: false` when the model is not in the table (its cost then counts as 0). */
export interface CallCost {
  costUsd: number;
  priced: boolean;
}

/** The cost of `inputTokens` in and `outputTokens` out on `model`. */
export function costOf(opts: {
  model: string;
  inputTokens: number;
  outputTokens: number;
  prices?: PriceTable;
}): CallCost {
  const price = priceOf(opts.model, opts.prices);
  if (!price) return { costUsd: 0, priced: false };
  return { costUsd: dollars(opts.inputTokens, price.input) + dollars(opts.outputTokens, price.output), priced: true };
}

/**
 * The most a call can cost: its prompt (`inputTokens`, counted before the
 * call) plus `maxTokens` of output, at the model's price. For reserving
 * budget before a model step runs; a model missing from the table costs 0,
 * as in {@link costOf}.
 */
export function worstCaseCostUsd(opts: {
  model: string;
  maxTokens: number;
  inputTokens: number;
  prices?: PriceTable;
}): number {
  return costOf({ model: opts.model, inputTokens: opts.inputTokens, outputTokens: opts.maxTokens, prices: opts.prices })
    .costUsd;
}

/** Tokens × price per million, rounded to a billionth of a dollar so sums do not drift in float noise. */
function dollars(tokens: number, perMillion: number): number {
  return Math.round(tokens * perMillion * 1000) / 1e9;
}
