/**
 * The dashboard's totals per user, model and division are priced and summed by SQL
 * (`usageSql` in admin/queries.ts) when a range has one price period. They must be what summing
 * the user × model pairs on the receiver gives (`aggregate`, still the path for a range across a
 * price change): every price column, split and unsplit cache writes, web searches, an unpriced
 * model, the model filter's sessions and turns, on both backends (read as several statements for
 * disjoint shares of the users, merged: on PostgreSQL always, on SQLite one per reader thread).
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { ReportBody } from '../../src/protocol/wire';
import { parseFilter } from '../src/admin/filters';
import { aggregate, createQueries, filterParams, type SqlReader, type TotalRow, USAGE_SHARDS, type UsageRow } from '../src/admin/queries';
import { PriceBook } from '../src/prices/cost';
import { SHIPPED_PRICES } from '../src/prices/table';
import { PostgresStore, type SqliteStore } from '../src/store';
import { pgReader } from '../src/store/pg-dialect';
import { inlineReader } from '../src/store/sqlite-reader';
import { BACKEND, Clock, freshStore, makeReport } from './support';

const BOOK = new PriceBook(SHIPPED_PRICES);
const UNPRICED = 'claude-haiku-5-5';
const MODELS = ['claude-sonnet-4-6', 'claude-opus-4-6', 'claude-haiku-4-5-20251001', UNPRICED];

/** A small deterministic generator (no Math.random: a failure must be reproducible). */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

function usageOf(r: () => number, v2: boolean): ReportBody['models'][string] {
  const cw = Math.floor(r() * 900);
  const base = { input_tokens: Math.floor(r() * 6000), output_tokens: Math.floor(r() * 1500), cache_read_tokens: Math.floor(r() * 80_000), cache_write_tokens: cw };
  if (!v2) return base;
  // Sometimes the split does not explain the whole write (priced as 5-minute writes, estimated).
  const h1 = Math.floor(cw / 2);
  const m5 = r() < 0.3 ? Math.floor(cw / 5) : cw - h1;
  return { ...base, cache_write_5m_tokens: m5, cache_write_1h_tokens: h1, web_search_requests: Math.floor(r() * 4) };
}

/** Costs to 12 significant digits: SQL and JavaScript add the same products in another order. */
function rounded(rows: readonly UsageRow[]): UsageRow[] {
  return rows.map((row) => ({ ...row, cost: { ...row.cost, usd: Number(row.cost.usd.toPrecision(12)) } }));
}

describe(`usage summed by SQL (${BACKEND})`, () => {
  const disposers: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const d of disposers.splice(0)) await d();
  });

  it('equals the user × model pairs summed on the receiver, for every filter', async () => {
    expect(BOOK.family(UNPRICED)).toBeNull();
    const clock = new Clock(Date.parse('2026-05-20T12:00:00Z'));
    const fresh = await freshStore(BACKEND, clock.now);
    disposers.push(() => fresh.dispose());
    const store = fresh.store;
    const r = rng(7);
    const emails = ['ana@example.org', 'ben@example.org', 'cy@example.org', 'dee@example.org', 'eve@example.org'];
    for (const [u, email] of emails.entries()) {
      const { refreshToken } = await store.createUser(email, { division: ['Research', 'Ops', '', 'Research', 'Ops'][u]! });
      const auth = (await store.authenticateRefreshToken(refreshToken))!;
      for (let turn = 0; turn < 30; turn++) {
        // Forty days back from now, so 24 h and 7 d read hours and 30 d and 90 d running sums.
        const at = new Date(Date.parse('2026-04-10T08:00:00Z') + Math.floor(r() * 40 * 24) * 3600_000).toISOString().replace('.000', '');
        const v2 = r() < 0.6;
        const models = Object.fromEntries(MODELS.filter(() => r() < 0.5).map((m) => [m, usageOf(r, v2)]));
        if (Object.keys(models).length === 0) models[MODELS[turn % MODELS.length]!] = usageOf(r, v2);
        const body = makeReport({ schema_version: v2 ? 2 : 1, session_id: `s-${u}-${Math.floor(turn / 6)}`, turn_index: turn, timestamp_utc: at, models });
        await store.insertReport(auth, body, { deviceId: 'd', signed: false });
      }
    }
    const reader: SqlReader = store instanceof PostgresStore ? pgReader(store.pool) : inlineReader((store as SqliteStore).db);
    let summedInSql = 0;
    // SQLite: one statement per reader thread (`parallel`), each for a share of the users, as with
    // two threads; and one statement for all of them with one.
    const counting = (parallel: number): SqlReader => ({
      ...(reader.dialect === undefined ? { parallel } : { dialect: reader.dialect }),
      all(sql, params) {
        if (sql.includes('pc AS MATERIALIZED')) summedInSql++;
        return reader.all(sql, params);
      },
    });
    const now = clock.now();
    const cases = ['range=24h', 'range=7d', '', 'range=90d', 'range=90d&model=claude-opus-4-6', `range=90d&model=${UNPRICED}`, 'range=30d&division=Ops', 'range=90d&user=cy@example.org', 'range=7d&model=claude-sonnet-4-6'];
    for (const [qs, parallel] of cases.flatMap((c) => [1, 2, 3].map((n) => [c, n] as const))) {
      const q = createQueries(counting(parallel));
      const filter = parseFilter(new URLSearchParams(qs), now.getTime());
      const before = summedInSql;
      const data = await q.load(now, filter, { prices: BOOK, sections: ['totals'] });
      // PostgreSQL: one statement per share of the users, merged (USAGE_SHARDS).
      expect(summedInSql, qs).toBe(before + (reader.dialect === 'postgres' ? USAGE_SHARDS : parallel));
      const pairs = (await q.groups(filterParams(filter), { prices: BOOK })) as TotalRow[];
      const expected = await aggregate(pairs, BOOK, filter.model !== null);
      expect(data.summary.turns, qs).toBeGreaterThan(0);
      const { users: _u, activeUsers: _a, activeDevices: _d, ...summary } = data.summary;
      expect({ ...summary, cost: { ...summary.cost, usd: Number(summary.cost.usd.toPrecision(12)) } }, qs).toEqual({
        ...expected.summary,
        cost: { ...expected.summary.cost, usd: Number(expected.summary.cost.usd.toPrecision(12)) },
      });
      expect(rounded(data.byUser), qs).toEqual(rounded(expected.byUser));
      expect(rounded(data.byModel), qs).toEqual(rounded(expected.byModel));
      expect(rounded(data.byDivision), qs).toEqual(rounded(expected.byDivision));
    }
    // What the cases must have covered for the comparison to mean something.
    const all = await createQueries(counting(1)).load(now, parseFilter(new URLSearchParams('range=90d'), now.getTime()), { prices: BOOK, sections: ['totals'] });
    expect(all.byModel.find((m) => m.key === UNPRICED)?.cost).toMatchObject({ usd: 0, unpricedTokens: expect.any(Number) });
    expect(all.byModel.find((m) => m.key === UNPRICED)!.cost.unpricedTokens).toBeGreaterThan(0);
    expect(all.byModel.some((m) => m.cost.estimated)).toBe(true);
    expect(all.byDivision.map((d) => d.key).sort()).toEqual(['', 'Ops', 'Research']);
  });
});
