/**
 * PRICES_FILE: a JSON price table that overrides the shipped one by model id (docs/admin.md).
 * Pure parsing plus one read; every problem is reported with where it is, never half-applied.
 *
 *   { "families": [ { "family": "Claude Opus 5.5", "ids": ["claude-opus-5-5"],
 *       "prices": [ { "from": "2026-09-22", "input": 4, "output": 20, "cache_write_5m": 5,
 *                     "cache_write_1h": 8, "cache_read": 0.2, "web_search_per_1k": 10 } ] } ] }
 */
import { readFileSync } from 'node:fs';
import { ReceiverError } from '../errors';
import { normalizeModelId } from './cost';
import { SHIPPED_PRICES } from './table';
import type { PriceFamily, PriceRow, PriceTable } from './types';

const MAX_FILE_BYTES = 1024 * 1024;
const COLUMNS = [
  ['input', 'input'],
  ['output', 'output'],
  ['cache_write_5m', 'cacheWrite5m'],
  ['cache_write_1h', 'cacheWrite1h'],
  ['cache_read', 'cacheRead'],
  ['web_search_per_1k', 'webSearchPer1k'],
] as const;

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function parseRow(raw: unknown, where: string, errors: string[]): PriceRow | null {
  if (!isRecord(raw)) {
    errors.push(`${where}: expected an object`);
    return null;
  }
  const from = raw.from;
  if (typeof from !== 'string' || !/^\d{4}-\d{2}-\d{2}$/.test(from) || Number.isNaN(Date.parse(from))) {
    errors.push(`${where}.from: expected a date YYYY-MM-DD`);
    return null;
  }
  const row: Record<string, number | string> = { from };
  for (const [key, field] of COLUMNS) {
    const value = raw[key];
    if (typeof value !== 'number' || !Number.isFinite(value) || value < 0 || value > 1_000_000) {
      errors.push(`${where}.${key}: expected a price in USD (a number, 0 or more); every column is required`);
      return null;
    }
    row[field] = value;
  }
  return row as unknown as PriceRow;
}

/** Validates a parsed PRICES_FILE; `source` names it in errors and on the dashboard. */
export function parsePriceTable(json: unknown, source: string): { ok: true; table: PriceTable } | { ok: false; errors: string[] } {
  const errors: string[] = [];
  if (!isRecord(json) || !Array.isArray(json.families)) return { ok: false, errors: ['expected {"families": [...]}'] };
  const families: PriceFamily[] = [];
  json.families.forEach((raw: unknown, i: number) => {
    const where = `families[${i}]`;
    if (!isRecord(raw) || typeof raw.family !== 'string' || !Array.isArray(raw.ids) || !Array.isArray(raw.prices)) {
      errors.push(`${where}: expected {"family": "...", "ids": [...], "prices": [...]}`);
      return;
    }
    const ids = raw.ids.filter((id): id is string => typeof id === 'string' && id.trim() !== '').map(normalizeModelId);
    if (ids.length === 0) errors.push(`${where}.ids: expected at least one model id`);
    const prices = raw.prices.map((p: unknown, j: number) => parseRow(p, `${where}.prices[${j}]`, errors));
    if (prices.length === 0) errors.push(`${where}.prices: expected at least one price row`);
    const rows = prices.filter((p): p is PriceRow => p !== null).sort((a, b) => a.from.localeCompare(b.from));
    for (let k = 1; k < rows.length; k++) {
      if (rows[k]!.from === rows[k - 1]!.from) errors.push(`${where}.prices: two rows from ${rows[k]!.from}`);
    }
    families.push({ family: raw.family, ids, prices: rows });
  });
  if (errors.length > 0) return { ok: false, errors };
  return { ok: true, table: { source, families } };
}

/** The file's families replace the shipped prices of every id they list; other ids keep theirs. */
export function mergePriceTables(base: PriceTable, override: PriceTable): PriceTable {
  const overridden = new Set(override.families.flatMap((f) => f.ids));
  const kept = base.families
    .map((f) => ({ ...f, ids: f.ids.filter((id) => !overridden.has(id)) }))
    .filter((f) => f.ids.length > 0);
  return { source: override.source, families: [...override.families, ...kept] };
}

/** The table in force: shipped, or shipped overridden by PRICES_FILE. Throws `config` on a bad file. */
export function loadPrices(pricesFile: string | undefined): PriceTable {
  if (pricesFile === undefined) return SHIPPED_PRICES;
  let text: string;
  try {
    const buf = readFileSync(pricesFile);
    if (buf.length > MAX_FILE_BYTES) throw new Error(`larger than ${MAX_FILE_BYTES} bytes`);
    text = buf.toString('utf8');
  } catch (err) {
    throw new ReceiverError('config', `cannot read PRICES_FILE ${pricesFile}: ${(err as Error).message}`, { cause: err });
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new ReceiverError('config', `PRICES_FILE ${pricesFile} is not JSON: ${(err as Error).message}`, { cause: err });
  }
  const parsed = parsePriceTable(json, pricesFile);
  if (!parsed.ok) throw new ReceiverError('config', `PRICES_FILE ${pricesFile}:\n  ${parsed.errors.join('\n  ')}`);
  return mergePriceTables(SHIPPED_PRICES, parsed.table);
}
