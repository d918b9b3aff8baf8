/** Formatting helpers for the views. Each returns escaped HTML text. */
import { esc } from '../esc';

const GROUPED = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });

export function num(n: number | null | undefined): string {
  return esc(GROUPED.format(n ?? 0));
}

/** 1234567 → "1.2M": axis labels and tight cells. */
export function compact(n: number): string {
  const abs = Math.abs(n);
  const [div, unit] = abs >= 1e9 ? [1e9, 'B'] : abs >= 1e6 ? [1e6, 'M'] : abs >= 1e3 ? [1e3, 'k'] : [1, ''];
  const value = n / div;
  const digits = div === 1 || value >= 100 ? 0 : 1;
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
