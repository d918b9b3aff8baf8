/** Formatting helpers for the views. Each returns escaped HTML text. */
import { esc } from '../esc';
import { formatInZone, parseStamp } from '../filters';

const GROUPED = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });

export function num(n: number | null | undefined): string {
  return esc(GROUPED.format(n ?? 0));
}

/** 1234567 → "1.2M": axis labels and tight cells. */
export function compact(n: number): string {
  const abs = Math.abs(n);
  const [div, unit] = abs >= 1e9 ? [1e9, 'B'] : abs >= 1e6 ? [1e6, 'M'] : abs >= 1e3 ? [1e3, 'k'] : [1, ''];
  const value = n / div;
  const digits = Number.isInteger(value) || Math.abs(value) >= 100 ? 0 : 1;
  return esc(`${value.toFixed(digits).replace(/\.0$/, '')}${unit}`);
}

export function percent(part: number, whole: number): string {
  return esc(whole > 0 ? `${((part / whole) * 100).toFixed(1)}%` : '—');
}

/** Share of prompt tokens served from the cache. */
export function cacheHitRate(t: { input: number; cacheRead: number; cacheWrite: number }): string {
  return percent(t.cacheRead, t.input + t.cacheRead + t.cacheWrite);
}

/** A stored timestamp, shown as stored (it may be anything a device sent), a little tidier. */
export function when(value: string | null | undefined): string {
  if (value === null || value === undefined || value === '') return esc('—');
  // ISO (`…T…Z`) or SQLite's `YYYY-MM-DD HH:MM:SS` (UTC), the form `received_at` keeps.
  const m = /^(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2})(?::\d{2}(?:\.\d+)?)?Z?$/.exec(value);
  return esc(m ? `${m[1]} ${m[2]}Z` : value);
}

export function whenMillis(ms: number): string {
  return when(new Date(ms).toISOString());
}

export function total(t: { input: number; output: number; cacheRead: number; cacheWrite: number }): number {
  return t.input + t.output + t.cacheRead + t.cacheWrite;
}

const USD = new Intl.NumberFormat('en-US', { style: 'currency', currency: 'USD', minimumFractionDigits: 2, maximumFractionDigits: 2 });

/** A plain dollar amount. */
export function dollars(usd: number): string {
  return esc(USD.format(usd));
}

/**
 * A cost total: `$12.34`; `~$12.34` when part is an estimate (cache writes without the 5m/1h
 * split); `+ unpriced` when some tokens belong to models without a price; `unpriced` when all do.
 */
export function money(c: { usd: number; unpricedTokens: number; estimated: boolean }): string {
  if (c.usd === 0 && c.unpricedTokens > 0) return `<span class="unpriced" title="no price for this model">unpriced</span>`;
  const base = `${c.estimated ? '~' : ''}${USD.format(c.usd)}`;
  const rest = c.unpricedTokens > 0 ? ` <span class="unpriced" title="${esc(`${GROUPED.format(c.unpricedTokens)} tokens of models without a price`)}">+ unpriced</span>` : '';
  return `${esc(base)}${rest}`;
}

/** A stored timestamp in the display time zone (see filters.formatInZone). */
export function whenIn(value: string | null | undefined, tz: string): string {
  if (tz === 'UTC') return when(value);
  if (value === null || value === undefined || value === '') return esc('—');
  if (Number.isNaN(parseStamp(value))) return esc(value);
  return esc(formatInZone(value, tz));
}

/** Tile values: exact below 100 million, compact from there (the exact figure is the tile's
 * tooltip), so they fit the tile. */
export function tileNum(n: number): string {
  return Math.abs(n) >= 1e8 ? compact(n) : num(n);
}
