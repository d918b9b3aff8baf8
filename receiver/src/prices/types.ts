/** Shapes of the price table (shipped or from PRICES_FILE) and of priced usage. */

/** One price list, effective from `from` (a UTC date, inclusive) until the next row's `from`. */
export interface PriceRow {
  from: string;
  /** USD per million tokens. */
  input: number;
  output: number;
  cacheWrite5m: number;
  cacheWrite1h: number;
  cacheRead: number;
  /** USD per 1,000 web search requests. */
  webSearchPer1k: number;
}

export interface PriceFamily {
  family: string;
  /** Normalised model ids (see `normalizeModelId`) this family's prices apply to. */
  ids: string[];
  /** Sorted by `from`, oldest first. */
  prices: PriceRow[];
}

export interface PriceTable {
  /** `shipped` or the PRICES_FILE path, shown on the dashboard. */
  source: string;
  families: PriceFamily[];
}

/** Token counters of one model on one day (or any group of rows of one model and one price). */
export interface PricedUsage {
  model: string;
  /** `YYYY-MM-DD` (UTC) the usage happened on; picks the price row. */
  day: string;
  input: number;
  output: number;
  cacheRead: number;
  /** All cache writes; the split below is a part of it when a device sent it (schema v2). */
  cacheWrite: number;
  cacheWrite5m: number | null;
  cacheWrite1h: number | null;
  webSearchRequests: number | null;
}

/** Cost of one usage row: `usd` null when the model has no price. */
export interface Cost {
  usd: number | null;
  /** True when part of the figure is an estimate (cache writes without the 5m/1h split). */
  estimated: boolean;
}

/** A sum of costs that may mix priced and unpriced models. */
export interface CostTotal {
  usd: number;
  /** Tokens of models without a price: they are not in `usd`, and the view says so. */
  unpricedTokens: number;
  estimated: boolean;
}
