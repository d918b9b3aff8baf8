import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { PriceBook, addCost, emptyTotal, normalizeModelId } from '../../src/prices/cost';
import { loadPrices, mergePriceTables, parsePriceTable } from '../../src/prices/load';
import { SHIPPED_PRICES } from '../../src/prices/table';
import type { PriceTable, PricedUsage } from '../../src/prices/types';
import { tempDir } from '../support';

const M = 1_000_000;

function usage(over: Partial<PricedUsage>): PricedUsage {
  return {
    model: 'claude-opus-5-5',
    day: '2026-10-01',
    input: 0,
    output: 0,
    cacheRead: 0,
    cacheWrite: 0,
    cacheWrite5m: null,
    cacheWrite1h: null,
    webSearchRequests: null,
    ...over,
  };
}

const book = new PriceBook(SHIPPED_PRICES);

describe('each price column (shipped Opus 5.5: 4 / 20 / 5 / 8 / 0.20 per MTok, search 10 per 1k)', () => {
  it.each([
    ['input', { input: 2 * M }, 8],
    ['output', { output: 3 * M }, 60],
    ['cache read (0.05x input, not 0.1x)', { cacheRead: 10 * M }, 2],
    ['cache write 5m', { cacheWrite: M, cacheWrite5m: M, cacheWrite1h: 0 }, 5],
    ['cache write 1h', { cacheWrite: M, cacheWrite5m: 0, cacheWrite1h: M }, 8],
    ['web search', { webSearchRequests: 250 }, 2.5],
  ] as const)('%s', (_name, over, usd) => {
    expect(book.cost(usage(over)).usd).toBeCloseTo(usd, 10);
  });

  it('adds the columns of one row: 1,000 in, 500 out, 200,000 read, 3,000 5m + 1,000 1h, 2 searches', () => {
    // 1000*4 + 500*20 + 200000*0.2 + 3000*5 + 1000*8 = 4000 + 10000 + 40000 + 15000 + 8000 = 77,000 µ$ = $0.077; + 2*10/1000 = $0.02
    const c = book.cost(usage({ input: 1000, output: 500, cacheRead: 200_000, cacheWrite: 4000, cacheWrite5m: 3000, cacheWrite1h: 1000, webSearchRequests: 2 }));
    expect(c.usd).toBeCloseTo(0.097, 12);
    expect(c.estimated).toBe(false);
  });

  it('Fable 5.1 reads its cache at 0.025x input: 4M reads = $1', () => {
    expect(book.cost(usage({ model: 'claude-fable-5-1', cacheRead: 4 * M })).usd).toBeCloseTo(1, 12);
    expect(book.cost(usage({ model: 'claude-fable-5', cacheRead: 4 * M })).usd).toBeCloseTo(4, 12);
  });
});

describe('estimates without the 5m/1h split', () => {
  it('prices every cache write as 5-minute and flags the cost as estimated', () => {
    const c = book.cost(usage({ cacheWrite: 2 * M }));
    expect(c).toEqual({ usd: 10, estimated: true });
  });

  it('prices a remainder the split does not explain as 5-minute', () => {
    // 1h 1M ($8) + the other 1M as 5m ($5)
    const c = book.cost(usage({ cacheWrite: 2 * M, cacheWrite5m: 0, cacheWrite1h: M }));
    expect(c.usd).toBeCloseTo(13, 12);
    expect(c.estimated).toBe(true);
  });

  it('is exact when there are no cache writes at all', () => {
    expect(book.cost(usage({ input: M })).estimated).toBe(false);
  });
});

describe('a price change mid-range', () => {
  const table: PriceTable = {
    source: 'test',
    families: [
      {
        family: 'Test',
        ids: ['claude-test-1'],
        prices: [
          { from: '2026-01-01', input: 3, output: 15, cacheWrite5m: 3.75, cacheWrite1h: 6, cacheRead: 0.3, webSearchPer1k: 10 },
          { from: '2026-03-15', input: 1.5, output: 7.5, cacheWrite5m: 2, cacheWrite1h: 3, cacheRead: 0.1, webSearchPer1k: 5 },
        ],
      },
    ],
  };
  const b = new PriceBook(table);
  const day = (d: string) => usage({ model: 'claude-test-1', day: d, input: M, output: M, cacheRead: M, cacheWrite: 2 * M, cacheWrite5m: M, cacheWrite1h: M, webSearchRequests: 1000 });

  it('prices each day at the row in force that day, so history is not rewritten', () => {
    // before: 3 + 15 + 0.3 + 3.75 + 6 + 10 = 38.05; from 03-15: 1.5 + 7.5 + 0.1 + 2 + 3 + 5 = 19.1
    expect(b.cost(day('2026-03-14')).usd).toBeCloseTo(38.05, 10);
    expect(b.cost(day('2026-03-15')).usd).toBeCloseTo(19.1, 10);
    const total = emptyTotal();
    for (const d of ['2026-03-13', '2026-03-14', '2026-03-15', '2026-03-16']) addCost(total, b.cost(day(d)), day(d));
    expect(total.usd).toBeCloseTo(2 * 38.05 + 2 * 19.1, 10);
  });

  it('uses the first row before its date', () => {
    expect(b.cost(day('2025-12-31')).usd).toBeCloseTo(38.05, 10);
  });
});

describe('model matching', () => {
  it('drops context, date, cloud and version decorations', () => {
    expect(normalizeModelId('claude-sonnet-5[1m]')).toBe('claude-sonnet-5');
    expect(normalizeModelId('claude-haiku-4-5-20251001')).toBe('claude-haiku-4-5');
    expect(normalizeModelId('us.anthropic.claude-opus-4-5-20251101-v1:0')).toBe('claude-opus-4-5');
    expect(normalizeModelId('claude-opus-4-5@20251101')).toBe('claude-opus-4-5');
    expect(normalizeModelId('Claude-Opus-5-5')).toBe('claude-opus-5-5');
  });

  it('matches ids exactly after that: claude-opus-5 is not claude-opus-5-5', () => {
    expect(book.family('claude-opus-5')?.family).toBe('Claude Opus 4.5 to 5');
    expect(book.family('claude-opus-5-5')?.family).toBe('Claude Opus 5.5');
    expect(book.family('claude-sonnet-5[1m]')?.family).toBe('Claude Sonnet 5 and 5.5');
  });

  it('leaves unknown models unpriced, never $0, and totals count their tokens apart', () => {
    const unknown = usage({ model: 'gpt-9', input: 1000 });
    expect(book.cost(unknown)).toEqual({ usd: null, estimated: false });
    expect(book.cost(usage({ model: 'claude-haiku-5-5', input: 1 })).usd).toBeNull();
    const total = addCost(emptyTotal(), book.cost(unknown), unknown);
    expect(total).toEqual({ usd: 0, unpricedTokens: 1000, estimated: false });
  });

  it('ships every column for every row, dates sorted', () => {
    for (const f of SHIPPED_PRICES.families) {
      for (const p of f.prices) {
        for (const v of [p.input, p.output, p.cacheWrite5m, p.cacheWrite1h, p.cacheRead, p.webSearchPer1k]) expect(v).toBeGreaterThan(0);
      }
      expect([...f.prices].sort((a, b) => a.from.localeCompare(b.from))).toEqual(f.prices);
    }
  });
});

describe('PRICES_FILE', () => {
  const row = { from: '2026-01-01', input: 1, output: 2, cache_write_5m: 3, cache_write_1h: 4, cache_read: 0.5, web_search_per_1k: 6 };

  it('overrides shipped prices by id and keeps the rest', () => {
    const tmp = tempDir('ccflux-prices-');
    try {
      const file = join(tmp.dir, 'prices.json');
      writeFileSync(file, JSON.stringify({ families: [{ family: 'Negotiated Opus', ids: ['claude-opus-5-5'], prices: [row] }, { family: 'Haiku 5.5', ids: ['claude-haiku-5-5'], prices: [row] }] }));
      const b = new PriceBook(loadPrices(file));
      expect(b.family('claude-opus-5-5')?.family).toBe('Negotiated Opus');
      expect(b.cost(usage({ input: M })).usd).toBe(1);
      expect(b.cost(usage({ model: 'claude-haiku-5-5', cacheRead: M })).usd).toBe(0.5);
      expect(b.family('claude-fable-5-1')?.family).toBe('Claude Fable 5.1');
    } finally {
      tmp.cleanup();
    }
  });

  it('refuses a row with a missing column, naming where, and an unreadable file', () => {
    const { cache_read: _, ...missing } = row;
    const parsed = parsePriceTable({ families: [{ family: 'x', ids: ['m'], prices: [missing] }] }, 'f');
    expect(parsed.ok).toBe(false);
    expect(parsed.ok ? [] : parsed.errors).toEqual([expect.stringContaining('families[0].prices[0].cache_read')]);
    expect(() => loadPrices('/nonexistent/ccflux-prices.json')).toThrow(/cannot read PRICES_FILE/);
  });

  it('merges without duplicating an id', () => {
    const merged = mergePriceTables(SHIPPED_PRICES, { source: 'f', families: [{ family: 'x', ids: ['claude-opus-5'], prices: [] }] });
    expect(merged.families.filter((f) => f.ids.includes('claude-opus-5'))).toHaveLength(1);
    expect(merged.families.find((f) => f.family === 'Claude Opus 4.5 to 5')?.ids).not.toContain('claude-opus-5');
  });
});
