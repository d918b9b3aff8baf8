/**
 * The price table shipped with the receiver: list prices in USD per million tokens (web search per
 * 1,000 requests), one row per model family and effective date. Every column is written out: no
 * price is derived from another by a multiplier, because some models break the usual ratios
 * (Opus 5.5 reads its cache at 0.05x input, Fable 5.1 at 0.025x). A price change is a new row with
 * a later `from`, so usage before the change keeps the old price.
 *
 * Sources: Anthropic's model overview pages (platform.claude.com/docs/models), checked 2026-12-01.
 * Claude Haiku 5.5 is left out on purpose: it is listed "from $0.10 / $0.50" (tiered), so no
 * single list price is right; price it with PRICES_FILE if your plan has one (docs/admin.md).
 */
import type { PriceTable } from './types';

const WEB_SEARCH_PER_1K = 10;

export const SHIPPED_PRICES: PriceTable = {
  source: 'shipped',
  families: [
    {
      family: 'Claude Fable 5.1',
      ids: ['claude-fable-5-1'],
      prices: [{ from: '2026-09-01', input: 10, output: 50, cacheWrite5m: 12.5, cacheWrite1h: 20, cacheRead: 0.25, webSearchPer1k: WEB_SEARCH_PER_1K }],
    },
    {
      family: 'Claude Fable 5',
      ids: ['claude-fable-5', 'claude-mythos-5'],
      prices: [{ from: '2026-06-09', input: 10, output: 50, cacheWrite5m: 12.5, cacheWrite1h: 20, cacheRead: 1, webSearchPer1k: WEB_SEARCH_PER_1K }],
    },
    {
      family: 'Claude Opus 5.5',
      ids: ['claude-opus-5-5'],
      prices: [{ from: '2026-09-22', input: 4, output: 20, cacheWrite5m: 5, cacheWrite1h: 8, cacheRead: 0.2, webSearchPer1k: WEB_SEARCH_PER_1K }],
    },
    {
      family: 'Claude Opus 4.5 to 5',
      ids: ['claude-opus-5', 'claude-opus-4-8', 'claude-opus-4-7', 'claude-opus-4-6', 'claude-opus-4-5'],
      prices: [{ from: '2025-11-24', input: 5, output: 25, cacheWrite5m: 6.25, cacheWrite1h: 10, cacheRead: 0.5, webSearchPer1k: WEB_SEARCH_PER_1K }],
    },
    {
      family: 'Claude Opus 4 and 4.1',
      ids: ['claude-opus-4-1', 'claude-opus-4'],
      prices: [{ from: '2025-05-22', input: 15, output: 75, cacheWrite5m: 18.75, cacheWrite1h: 30, cacheRead: 1.5, webSearchPer1k: WEB_SEARCH_PER_1K }],
    },
    {
      family: 'Claude Sonnet 5 and 5.5',
      ids: ['claude-sonnet-5-5', 'claude-sonnet-5'],
      prices: [{ from: '2026-01-01', input: 2, output: 10, cacheWrite5m: 2.5, cacheWrite1h: 4, cacheRead: 0.2, webSearchPer1k: WEB_SEARCH_PER_1K }],
    },
    {
      family: 'Claude Sonnet 4 to 4.6',
      ids: ['claude-sonnet-4-6', 'claude-sonnet-4-5', 'claude-sonnet-4', 'claude-3-7-sonnet'],
      prices: [{ from: '2025-02-24', input: 3, output: 15, cacheWrite5m: 3.75, cacheWrite1h: 6, cacheRead: 0.3, webSearchPer1k: WEB_SEARCH_PER_1K }],
    },
    {
      family: 'Claude Haiku 4.5',
      ids: ['claude-haiku-4-5'],
      prices: [{ from: '2025-10-15', input: 1, output: 5, cacheWrite5m: 1.25, cacheWrite1h: 2, cacheRead: 0.1, webSearchPer1k: WEB_SEARCH_PER_1K }],
    },
    {
      family: 'Claude Haiku 3.5',
      ids: ['claude-3-5-haiku'],
      prices: [{ from: '2024-11-04', input: 0.8, output: 4, cacheWrite5m: 1, cacheWrite1h: 1.6, cacheRead: 0.08, webSearchPer1k: WEB_SEARCH_PER_1K }],
    },
  ],
};
