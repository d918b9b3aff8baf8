/**
 * Pure pricing: model id → family, day → price row, counters → dollars. No I/O, no clock.
 *
 * Model matching (docs/admin.md "Prices"): the id is lower-cased; a context suffix (`[1m]`), a
 * cloud prefix (`anthropic.`, `us.anthropic.`), a Vertex `@version` or Bedrock `-v1:0` tail, a
 * `-latest` tail and a `-YYYYMMDD` date tail are dropped; what remains must equal one of a
 * family's ids exactly. Anything else is unpriced (never $0).
 *
 * Cache writes: when a report carries the 5-minute/1-hour split, each part gets its own price and
 * any remainder is priced as 5-minute; without the split every cache write is priced as a
 * 5-minute write (the Claude Code default) and the cost is flagged as an estimate.
 */
import type { Cost, CostTotal, PriceFamily, PriceRow, PriceTable, PricedUsage } from './types';

const PER_MILLION = 1_000_000;
const PER_THOUSAND = 1_000;

export function normalizeModelId(model: string): string {
  let id = model.trim().toLowerCase();
  id = id.replace(/\[[^\]]*\]$/, '');
  id = id.replace(/^(?:[a-z]{2,4}\.)?anthropic\./, '');
  id = id.replace(/@.*$/, '');
  id = id.replace(/-v\d+(?::\d+)?$/, '');
  id = id.replace(/-latest$/, '');
  id = id.replace(/-\d{8}$/, '');
  return id;
}

/** Lookup by normalised id, built once per table. */
export class PriceBook {
  private readonly byId = new Map<string, PriceFamily>();
  private readonly memo = new Map<string, PriceFamily | null>();

  constructor(readonly table: PriceTable) {
    for (const family of table.families) for (const id of family.ids) this.byId.set(id, family);
  }

  family(model: string): PriceFamily | null {
    let hit = this.memo.get(model);
    if (hit === undefined) {
      hit = this.byId.get(normalizeModelId(model)) ?? null;
      if (this.memo.size < 10_000) this.memo.set(model, hit);
    }
    return hit;
  }

  /** The row in force on `day`; before the first row's date the first row applies. */
  priceOn(model: string, day: string): PriceRow | null {
    const family = this.family(model);
    if (family === null || family.prices.length === 0) return null;
    let row = family.prices[0]!;
    for (const p of family.prices) if (p.from <= day) row = p;
    return row;
  }

  cost(u: PricedUsage): Cost {
    const p = this.priceOn(u.model, u.day);
    if (p === null) return { usd: null, estimated: false };
    return priceUsage(p, u);
  }
}

export function priceUsage(p: PriceRow, u: PricedUsage): Cost {
  let write5m = u.cacheWrite;
  let write1h = 0;
  let estimated = true;
  if (u.cacheWrite5m !== null && u.cacheWrite1h !== null) {
    write1h = u.cacheWrite1h;
    // Whatever the split does not explain is priced as a 5-minute write.
    write5m = Math.max(u.cacheWrite5m, u.cacheWrite - u.cacheWrite1h);
    estimated = u.cacheWrite5m + u.cacheWrite1h !== u.cacheWrite;
  } else if (u.cacheWrite === 0) {
    estimated = false;
  }
  const tokensUsd =
    (u.input * p.input + u.output * p.output + u.cacheRead * p.cacheRead + write5m * p.cacheWrite5m + write1h * p.cacheWrite1h) /
    PER_MILLION;
  const searchUsd = ((u.webSearchRequests ?? 0) * p.webSearchPer1k) / PER_THOUSAND;
  return { usd: tokensUsd + searchUsd, estimated };
}

export function emptyTotal(): CostTotal {
  return { usd: 0, unpricedTokens: 0, estimated: false };
}

/** Adds one row's cost into `total` (mutates and returns it). */
export function addCost(total: CostTotal, cost: Cost, u: Pick<PricedUsage, 'input' | 'output' | 'cacheRead' | 'cacheWrite'>): CostTotal {
  if (cost.usd === null) total.unpricedTokens += u.input + u.output + u.cacheRead + u.cacheWrite;
  else total.usd += cost.usd;
  if (cost.estimated) total.estimated = true;
  return total;
}
