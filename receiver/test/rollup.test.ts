import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import type { ReportBody } from '../../src/protocol/wire';
import { parseFilter } from '../src/admin/filters';
import { type GroupRow, hourPeriods, priceGroup, rollupSpan, sameHours } from '../src/admin/queries';
import { type HourBucket, windowsFromHours } from '../src/admin/windows';
import { openDatabase } from '../src/db/open';
import { emptyTotal, PriceBook } from '../src/prices/cost';
import { SHIPPED_PRICES } from '../src/prices/table';
import { MIGRATIONS, ORG_COLUMNS, ORG_SHARDS, ROLLUP_COLUMNS } from '../src/db/schema';
import { CUM_COLUMNS } from '../src/store/rollup';
import { SqliteStore, type Store } from '../src/store';
import type { AuthContext } from '../src/store/types';
import { BACKEND, Clock, freshStore, makeReport, ON_POSTGRES, sqlRows, tempDir } from './support';

/*
 * The rollup contract (store/rollup.ts), on SQLite and (project receiver-pg) PostgreSQL: after any
 * mix of reports — duplicates, turns over several models, a turn re-sent with another model,
 * sessions over midnight, several users — every rollup equals the aggregate of the raw rows.
 */

const MODELS = ['claude-opus-4-6', 'claude-sonnet-4-6', 'claude-haiku-4-5'];

/** A small deterministic PRNG, so a failure replays. */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

function randomReports(seed: number, count: number): { userIndex: number; report: ReportBody }[] {
  const r = rng(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
  const out: { userIndex: number; report: ReportBody }[] = [];
  const turns = new Map<string, number>();
  const start = Date.parse('2026-05-09T20:00:00Z');
  for (let i = 0; i < count; i++) {
    if (out.length > 0 && r() < 0.15) {
      // A replay of an earlier report (the device retried): adds nothing.
      out.push(pick(out));
      continue;
    }
    const userIndex = Math.floor(r() * 3);
    const session = `s-${userIndex}-${Math.floor(r() * 4)}`;
    let turn = turns.get(session) ?? 0;
    if (r() < 0.1 && turn > 0) turn -= 1; // the same turn again, maybe with other models
    else turns.set(session, turn + 1);
    // Spread over three days and across midnight, whole hours and minutes.
    const at = new Date(start + Math.floor(r() * 60) * 3600_000 + Math.floor(r() * 60) * 60_000);
    const v2 = r() < 0.5;
    const models: ReportBody['models'] = {};
    const n = 1 + Math.floor(r() * 3);
    for (let m = 0; m < n; m++) {
      const split = v2 && r() < 0.7;
      const cw = Math.floor(r() * 500);
      models[pick(MODELS)] = {
        input_tokens: Math.floor(r() * 5000),
        output_tokens: Math.floor(r() * 900),
        cache_read_tokens: Math.floor(r() * 90_000),
        cache_write_tokens: cw,
        ...(split ? { cache_write_5m_tokens: Math.floor(cw / 3), cache_write_1h_tokens: cw - Math.floor(cw / 3), web_search_requests: Math.floor(r() * 3) } : {}),
      };
    }
    out.push({
      userIndex,
      report: makeReport({
        schema_version: v2 ? 2 : 1,
        session_id: session,
        turn_index: turn,
        timestamp_utc: at.toISOString().replace(/\.\d{3}Z$/, 'Z'),
        models,
      }),
    });
  }
  return out;
}

/** What each rollup must hold, computed from the raw rows alone ("first" = smallest id). */
const EXPECTED = (bucket: string) => `
  WITH f AS (
    SELECT e.*,
      CASE WHEN e.id = (SELECT MIN(x.id) FROM usage_events x WHERE x.user_id = e.user_id AND x.session_id = e.session_id AND x.turn_index = e.turn_index) THEN 1 ELSE 0 END AS nt,
      CASE WHEN e.id = (SELECT MIN(x.id) FROM usage_events x WHERE x.user_id = e.user_id AND x.session_id = e.session_id) THEN 1 ELSE 0 END AS ns,
      CASE WHEN e.id = (SELECT MIN(x.id) FROM usage_events x WHERE x.user_id = e.user_id AND x.session_id = e.session_id AND x.model = e.model) THEN 1 ELSE 0 END AS nm
    FROM usage_events e
  )
  SELECT user_id, ${bucket} AS bucket, model,
    SUM(input_tokens) AS input, SUM(output_tokens) AS output, SUM(cache_read_tokens) AS cache_read, SUM(cache_write_tokens) AS cache_write,
    SUM(COALESCE(cache_write_5m_tokens, 0)) AS cw5m, SUM(COALESCE(cache_write_1h_tokens, 0)) AS cw1h,
    SUM(CASE WHEN cache_write_5m_tokens IS NULL OR cache_write_1h_tokens IS NULL THEN cache_write_tokens ELSE 0 END) AS unsplit,
    SUM(COALESCE(web_search_requests, 0)) AS web_search, COUNT(*) AS model_turns, SUM(nt) AS turns, SUM(ns) AS sessions,
    SUM(nm) AS model_sessions, MAX(timestamp_utc) AS last_at
  FROM f GROUP BY user_id, ${bucket}, model ORDER BY user_id, bucket, model`;

const ACTUAL = (table: string, key: string) => `
  SELECT user_id, ${key} AS bucket, model, input, output, cache_read, cache_write, cw5m, cw1h, unsplit, web_search,
    model_turns, turns, sessions, model_sessions, last_at
  FROM ${table} ORDER BY user_id, bucket, model`;

const LATEST_RECEIVED = `
  SELECT c.user_id, c.model, c.last_received FROM usage_cum c
  WHERE c.hour = (SELECT MAX(x.hour) FROM usage_cum x WHERE x.user_id = c.user_id AND x.model = c.model)
  ORDER BY c.user_id, c.model`;

/** Rows as plain numbers/strings (PostgreSQL returns bigint and numeric as strings). */
function plain(rows: Record<string, unknown>[]): Record<string, unknown>[] {
  return rows.map((row) =>
    Object.fromEntries(Object.entries(row).map(([k, v]) => [k, typeof v === 'string' && /^-?\d+(\.\d+)?$/.test(v) ? Number(v) : v])),
  );
}

async function expectRollupsMatchRaw(store: Store): Promise<void> {
  const daily = plain(await sqlRows(store, ACTUAL('usage_daily', 'day')));
  expect(daily.length).toBeGreaterThan(0);
  expect(daily).toEqual(plain(await sqlRows(store, EXPECTED('substr(timestamp_utc, 1, 10)'))));
  expect(plain(await sqlRows(store, ACTUAL('usage_hourly', 'hour')))).toEqual(plain(await sqlRows(store, EXPECTED('substr(timestamp_utc, 1, 13)'))));
  // The running sums: each hour's row is every hour up to it, per user × model.
  const hourly = plain(await sqlRows(store, ACTUAL('usage_hourly', 'hour')));
  hourly.sort((a, b) => Number(a.user_id) - Number(b.user_id) || String(a.model).localeCompare(String(b.model)) || String(a.bucket).localeCompare(String(b.bucket)));
  const running = new Map<string, Record<string, unknown>>();
  const cum = hourly.map((h) => {
    const key = `${h.user_id}/${h.model}`;
    const prev = running.get(key);
    const row: Record<string, unknown> = { ...h };
    for (const c of CUM_COLUMNS) row[c] = Number(h[c]) + Number(prev?.[c] ?? 0);
    running.set(key, row);
    return row;
  });
  const actualCum = plain(await sqlRows(store, `SELECT user_id, hour AS bucket, model, ${ROLLUP_COLUMNS} FROM usage_cum`));
  actualCum.sort((a, b) => Number(a.user_id) - Number(b.user_id) || String(a.model).localeCompare(String(b.model)) || String(a.bucket).localeCompare(String(b.bucket)));
  expect(actualCum).toEqual(cum);
  expect(plain(await sqlRows(store, 'SELECT user_id, model FROM usage_user_models ORDER BY user_id, model'))).toEqual(
    plain(await sqlRows(store, 'SELECT DISTINCT user_id, model FROM usage_events ORDER BY user_id, model')),
  );
  // The org shards: everyone's daily sums, by user id mod ORG_SHARDS.
  const orgCols = ORG_COLUMNS.split(', ');
  expect(plain(await sqlRows(store, `SELECT day, model, shard, ${ORG_COLUMNS} FROM usage_org_daily ORDER BY day, model, shard`))).toEqual(
    plain(
      await sqlRows(
        store,
        `SELECT day, model, user_id % ${ORG_SHARDS} AS shard, ${orgCols.map((c) => `SUM(${c}) AS ${c}`).join(', ')}
         FROM usage_daily GROUP BY day, model, user_id % ${ORG_SHARDS} ORDER BY day, model, shard`,
      ),
    ),
  );
  // Each user × model's latest running-sum row holds the pair's latest received_at (the users page's last report).
  expect(plain(await sqlRows(store, LATEST_RECEIVED))).toEqual(
    plain(await sqlRows(store, 'SELECT user_id, model, MAX(received_at) AS last_received FROM usage_events GROUP BY user_id, model ORDER BY user_id, model')),
  );
  // The lookup sets hold exactly the sessions and session × model pairs of the raw rows.
  expect(plain(await sqlRows(store, 'SELECT user_id, session_id, first_day FROM usage_sessions ORDER BY user_id, session_id'))).toEqual(
    plain(
      await sqlRows(
        store,
        `SELECT e.user_id, e.session_id, substr(e.timestamp_utc, 1, 10) AS first_day FROM usage_events e
         WHERE e.id = (SELECT MIN(x.id) FROM usage_events x WHERE x.user_id = e.user_id AND x.session_id = e.session_id)
         ORDER BY e.user_id, e.session_id`,
      ),
    ),
  );
  expect(plain(await sqlRows(store, 'SELECT user_id, session_id, model FROM usage_session_models ORDER BY user_id, session_id, model'))).toEqual(
    plain(await sqlRows(store, 'SELECT DISTINCT user_id, session_id, model FROM usage_events ORDER BY user_id, session_id, model')),
  );
}

async function users(store: Store): Promise<AuthContext[]> {
  const out: AuthContext[] = [];
  for (const email of ['ana@example.org', 'ben@example.org', 'cy@example.org']) {
    const { refreshToken } = await store.createUser(email, { division: email.startsWith('cy') ? 'Ops' : 'Research' });
    out.push((await store.authenticateRefreshToken(refreshToken))!);
  }
  return out;
}

describe(`usage rollups (${BACKEND})`, () => {
  const disposers: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const d of disposers.splice(0)) await d();
  });

  it('equal the aggregate of the raw rows after random reports with duplicates', async () => {
    const clock = new Clock();
    const fresh = await freshStore(BACKEND, clock.now);
    disposers.push(() => fresh.dispose());
    const auths = await users(fresh.store);
    let inserted = 0;
    for (const { userIndex, report } of randomReports(7, 400)) {
      inserted += (await fresh.store.insertReport(auths[userIndex]!, report, { deviceId: 'd', signed: false })).inserted;
    }
    const raw = plain(await sqlRows(fresh.store, 'SELECT COUNT(*) AS n FROM usage_events'))[0]!.n;
    expect(inserted).toBe(raw);
    await expectRollupsMatchRaw(fresh.store);
  });

  it("give the users page each user's last report: the latest received time, after late reports and replays", async () => {
    const clock = new Clock(Date.parse('2026-05-11T12:00:00.000Z'));
    const fresh = await freshStore(BACKEND, clock.now);
    disposers.push(() => fresh.dispose());
    const [ana, ben] = await users(fresh.store);
    const opts = { deviceId: 'd', signed: false };
    const first = makeReport({ session_id: 's-a', turn_index: 0, timestamp_utc: '2026-05-11T11:30:00Z', models: { 'claude-opus-4-6': { input_tokens: 1, output_tokens: 1, cache_read_tokens: 0, cache_write_tokens: 0 } } });
    expect((await fresh.store.insertReport(ana!, first, opts)).inserted).toBe(1);
    clock.advance(3600_000);
    // A late turn (an hour before the pair's latest), with a second model: the opus pair's latest row is a later hour's.
    const late = makeReport({ session_id: 's-a', turn_index: 1, timestamp_utc: '2026-05-11T08:10:00Z', models: {
      'claude-opus-4-6': { input_tokens: 2, output_tokens: 1, cache_read_tokens: 0, cache_write_tokens: 0 },
      'claude-haiku-4-5': { input_tokens: 3, output_tokens: 1, cache_read_tokens: 0, cache_write_tokens: 0 },
    } });
    expect((await fresh.store.insertReport(ana!, late, opts)).inserted).toBe(2);
    clock.advance(3600_000);
    // A replay stores nothing and is no report of anything new.
    expect((await fresh.store.insertReport(ana!, first, opts)).inserted).toBe(0);
    expect((await fresh.store.insertReport(ben!, makeReport({ session_id: 's-b', timestamp_utc: '2026-05-11T13:00:00Z' }), opts)).inserted).toBe(1);
    const page = await fresh.store.dashboard(clock.now(), { sections: ['users'], usersTable: { q: '', sort: 'report', dir: 'desc', page: 1, pageSize: 10 } });
    expect(page.users.map((u) => [u.email, u.lastReportAt])).toEqual([
      ['ben@example.org', '2026-05-11 14:00:00'],
      ['ana@example.org', '2026-05-11 13:00:00'],
      ['cy@example.org', null],
    ]);
    await expectRollupsMatchRaw(fresh.store);
  });

  it('stay exact when one user reports from several connections at once', async () => {
    const clock = new Clock();
    const fresh = await freshStore(BACKEND, clock.now);
    disposers.push(() => fresh.dispose());
    const auths = await users(fresh.store);
    const reports = randomReports(11, 240);
    // Eight writers at a time; on PostgreSQL they run on separate pooled connections.
    for (let i = 0; i < reports.length; i += 8) {
      await Promise.all(
        reports.slice(i, i + 8).map(({ userIndex, report }) => fresh.store.insertReport(auths[userIndex]!, report, { deviceId: 'd', signed: false })),
      );
    }
    await expectRollupsMatchRaw(fresh.store);
  });

  it('sum hostile counters in floating point instead of failing the insert', async () => {
    const clock = new Clock();
    const fresh = await freshStore(BACKEND, clock.now);
    disposers.push(() => fresh.dispose());
    const [ana] = await users(fresh.store);
    const big = { input_tokens: 2 ** 53 - 1, output_tokens: 0, cache_read_tokens: 0, cache_write_tokens: 0 };
    for (let turn = 0; turn < 3; turn++) {
      const report = makeReport({ turn_index: turn, models: { 'claude-opus-4-6': big } });
      expect((await fresh.store.insertReport(ana!, report, { deviceId: 'd', signed: false })).inserted).toBe(1);
    }
    const [row] = plain(await sqlRows(fresh.store, 'SELECT input, model_turns, turns, sessions FROM usage_daily'));
    expect(row).toEqual({ input: 3 * (2 ** 53 - 1), model_turns: 3, turns: 3, sessions: 1 });
  });

  it.skipIf(ON_POSTGRES)('are backfilled by migration 9 from a database of the previous release', async () => {
    const { dir, cleanup } = tempDir();
    disposers.push(async () => cleanup());
    // The same reports into a current store (rollups kept at ingest) and into a version-8 file.
    const clock = new Clock();
    const live = await freshStore('sqlite', clock.now, {}, { dbPath: `${dir}/live.db` });
    disposers.push(() => live.dispose());
    const old = new Database(`${dir}/old.db`);
    for (const sql of MIGRATIONS.slice(0, 8)) old.exec(sql);
    old.pragma('user_version = 8');
    const liveAuths = await users(live.store);
    const addUser = old.prepare("INSERT INTO users (id, email, division, created_at) VALUES (?, ?, ?, '2026-05-01T00:00:00.000Z')");
    for (const a of liveAuths) addUser.run(a.userId, a.email, a.email.startsWith('cy') ? 'Ops' : 'Research');
    const insert = old.prepare(`INSERT OR IGNORE INTO usage_events (user_email, user_token, device_id, session_id, turn_index,
      timestamp_utc, session_start_utc, model, input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, plugin_version,
      schema_version, received_at, user_id, reported_email, signed, cache_write_5m_tokens, cache_write_1h_tokens, web_search_requests)
      VALUES (?, 'ref', 'd', ?, ?, ?, NULL, ?, ?, ?, ?, ?, '0.1.0', ?, '2026-05-11 03:00:00', ?, ?, 0, ?, ?, ?)`);
    for (const { userIndex, report } of randomReports(5, 300)) {
      const a = liveAuths[userIndex]!;
      await live.store.insertReport(a, report, { deviceId: 'd', signed: false });
      for (const model of Object.keys(report.models).sort()) {
        const u = report.models[model]!;
        const v2 = report.schema_version >= 2;
        insert.run(a.email, report.session_id, report.turn_index, report.timestamp_utc, model, u.input_tokens, u.output_tokens,
          u.cache_read_tokens, u.cache_write_tokens, report.schema_version, a.userId, a.email,
          v2 ? (u.cache_write_5m_tokens ?? 0) : null, v2 ? (u.cache_write_1h_tokens ?? 0) : null, v2 ? (u.web_search_requests ?? 0) : null);
      }
    }
    old.close();
    const upgraded = openDatabase(`${dir}/old.db`, { notice: () => {}, now: clock.now });
    const store = new SqliteStore(upgraded, clock.now);
    disposers.push(() => store.close());
    await expectRollupsMatchRaw(store);
    // Migration 10 replaced the (user_id, received_at) index by the rollups' last_received.
    expect(upgraded.prepare("SELECT name FROM sqlite_master WHERE name = 'usage_events_user_received'").all()).toEqual([]);
    for (const [table, key] of [['usage_daily', 'day'], ['usage_hourly', 'hour']] as const) {
      expect(plain(await sqlRows(store, ACTUAL(table, key)))).toEqual(plain(await sqlRows(live.store, ACTUAL(table, key))));
    }
    // And the views read the same figures from both (user ids match: both made them in order).
    const now = new Date('2026-05-12T23:00:00Z');
    const a = await store.dashboard(now);
    const b = await live.store.dashboard(now);
    expect(a.summary).toEqual(b.summary);
    expect(a.byUser).toEqual(b.byUser);
  });
});

describe('rollupSpan and pricePeriods', () => {
  it('read whole days from the daily rollup and the partial first and last day by the hour', () => {
    expect(rollupSpan('2026-05-10T13:27:05Z', '2026-05-12T07:42:00Z')).toEqual({
      dayFrom: '2026-05-11',
      dayTo: '2026-05-12',
      headFrom: '2026-05-10T13',
      headTo: '2026-05-11T00',
      tailFrom: '2026-05-12T00',
      tailTo: '2026-05-12T08',
    });
    expect(rollupSpan('2026-05-10T00:00:00Z', '2026-05-12T00:00:00Z')).toMatchObject({ dayFrom: '2026-05-10', dayTo: '2026-05-12', headFrom: '2026-05-10T00', headTo: '2026-05-10T00' });
    expect(rollupSpan('2026-05-10T03:10:00Z', '2026-05-10T09:00:00Z')).toEqual({ dayFrom: '', dayTo: '', headFrom: '2026-05-10T03', headTo: '2026-05-10T09', tailFrom: '', tailTo: '' });
  });

  it('cut a range at each price change inside it, and nowhere else', () => {
    expect(hourPeriods('2026-05-10T13:27:00Z', '2026-05-12T07:42:00Z', CHANGING_BOOK)).toEqual([
      { day: '2026-05-10', from: '2026-05-10T13', to: '2026-05-11T00' },
      { day: '2026-05-11', from: '2026-05-11T00', to: '2026-05-12T08' },
    ]);
    expect(hourPeriods('2026-06-01T00:00:00Z', '2026-06-03T00:00:00Z', CHANGING_BOOK)).toHaveLength(1);
    // A family's first row applies before its date as well: its date is no change.
    const shipped = new PriceBook(SHIPPED_PRICES);
    const firstDates = SHIPPED_PRICES.families.map((f) => f.prices[0]!.from).filter((d) => d > '2026-08-01' && d < '2026-11-01');
    expect(firstDates.length).toBeGreaterThan(0);
    expect(hourPeriods('2026-08-01T00:00:00Z', '2026-11-01T00:00:00Z', shipped)).toEqual([{ day: '2026-08-01', from: '2026-08-01T00', to: '2026-11-01T00' }]);
  });

  it('tell when two filters read the same hours, so a request reads them once', () => {
    const f = { from: '2026-05-01T00:00:00Z', to: '2026-05-12T07:27:01Z', user: null, model: null, division: null };
    expect(sameHours(f, { ...f, to: '2026-05-12T07:42:00Z' }, CHANGING_BOOK)).toBe(true);
    expect(sameHours(f, { ...f, to: '2026-05-12T08:00:01Z' }, CHANGING_BOOK)).toBe(false);
    expect(sameHours(f, { ...f, model: 'claude-opus-4-6' }, CHANGING_BOOK)).toBe(false);
  });
});

/** The shipped prices, with Sonnet 4.6 at twice the price from 2026-05-11 (a change mid-range). */
const CHANGING_BOOK = new PriceBook({
  source: 'test',
  families: SHIPPED_PRICES.families.map((f) =>
    f.ids.includes('claude-sonnet-4-6')
      ? {
          ...f,
          prices: [
            ...f.prices,
            {
              ...f.prices[f.prices.length - 1]!,
              from: '2026-05-11',
              input: 2 * f.prices[f.prices.length - 1]!.input,
              output: 2 * f.prices[f.prices.length - 1]!.output,
              cacheRead: 2 * f.prices[f.prices.length - 1]!.cacheRead,
            },
          ],
        }
      : f,
  ),
});

describe(`views from the rollups (${BACKEND})`, () => {
  const disposers: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const d of disposers.splice(0)) await d();
  });

  it('show what the raw rows give, to the hour, across a price change', async () => {
    const clock = new Clock();
    const fresh = await freshStore(BACKEND, clock.now);
    disposers.push(() => fresh.dispose());
    const auths = await users(fresh.store);
    for (const { userIndex, report } of randomReports(23, 400)) {
      await fresh.store.insertReport(auths[userIndex]!, report, { deviceId: 'd', signed: false });
    }
    const raw = plain(await sqlRows(fresh.store, 'SELECT * FROM usage_events ORDER BY id')) as unknown as RawRow[];
    const firstOf = (key: (r: RawRow) => string) => {
      const seen = new Set<string>();
      return new Set(raw.filter((r) => !seen.has(key(r)) && seen.add(key(r)) !== undefined).map((r) => r.id));
    };
    const firstTurn = firstOf((r) => `${r.user_id}/${r.session_id}/${r.turn_index}`);
    const firstSession = firstOf((r) => `${r.user_id}/${r.session_id}`);
    const now = new Date('2026-05-12T07:27:00Z');
    const cases = [
      parseFilter(new URLSearchParams('range=custom&from=2026-05-10&to=2026-05-11'), now.getTime()),
      parseFilter(new URLSearchParams('range=24h'), now.getTime()),
      parseFilter(new URLSearchParams('range=7d'), now.getTime()),
      parseFilter(new URLSearchParams('range=24h&model=claude-sonnet-4-6'), now.getTime()),
      // Periods longer than 8 days are read as the difference of two running sums, shorter
      // ones from their hours: 30 d cut by the price change has one of each, 10 days one long.
      parseFilter(new URLSearchParams('range=30d'), now.getTime()),
      parseFilter(new URLSearchParams('range=custom&from=2026-05-01&to=2026-05-10'), now.getTime()),
      parseFilter(new URLSearchParams('range=90d&model=claude-sonnet-4-6'), now.getTime()),
    ];
    for (const filter of cases) {
      const data = await fresh.store.dashboard(now, { filter, prices: CHANGING_BOOK });
      // The range read to whole hours, as documented.
      const from = `${filter.fromIso.slice(0, 13)}:00:00Z`;
      const to = new Date(Math.ceil(Date.parse(filter.toIso) / 3600_000) * 3600_000).toISOString().replace('.000', '');
      const rows = raw.filter((r) => r.timestamp_utc >= from && r.timestamp_utc < to && (filter.model === null || r.model === filter.model));
      expect(rows.length).toBeGreaterThan(0);
      for (const a of auths) {
        const mine = rows.filter((r) => r.user_id === a.userId);
        const groups = new Map<string, GroupRow>();
        for (const r of mine) {
          const key = `${r.model}/${r.timestamp_utc.slice(0, 10)}`;
          const g = groups.get(key) ?? { user: a.email, division: '', model: r.model, day: r.timestamp_utc.slice(0, 10), input: 0, output: 0, cacheRead: 0, cacheWrite: 0, cw5m: 0, cw1h: 0, unsplit: 0, webSearch: 0, turns: 0 };
          g.input += r.input_tokens;
          g.output += r.output_tokens;
          g.cacheRead += r.cache_read_tokens;
          g.cacheWrite += r.cache_write_tokens;
          const split = r.cache_write_5m_tokens !== null && r.cache_write_1h_tokens !== null;
          g.cw5m += r.cache_write_5m_tokens ?? 0;
          g.cw1h += r.cache_write_1h_tokens ?? 0;
          g.unsplit += split ? 0 : r.cache_write_tokens;
          g.webSearch += r.web_search_requests ?? 0;
          groups.set(key, g);
        }
        const cost = emptyTotal();
        for (const g of groups.values()) priceGroup(CHANGING_BOOK, g, cost);
        const row = data.byUser.find((u) => u.key === a.email);
        if (mine.length === 0) {
          expect(row).toBeUndefined();
          continue;
        }
        expect(row, `${filter.range} ${a.email}`).toBeDefined();
        expect(row!.input).toBe(mine.reduce((n, r) => n + r.input_tokens, 0));
        expect(row!.cacheRead).toBe(mine.reduce((n, r) => n + r.cache_read_tokens, 0));
        expect(row!.cost.usd).toBeCloseTo(cost.usd, 9);
        expect(row!.cost.estimated).toBe(cost.estimated);
        if (filter.model === null) {
          expect(row!.turns).toBe(mine.filter((r) => firstTurn.has(r.id)).length);
          expect(row!.sessions).toBe(mine.filter((r) => firstSession.has(r.id)).length);
        } else {
          expect(row!.turns).toBe(mine.length);
        }
        expect(row!.lastSeen).toBe(mine.map((r) => r.timestamp_utc).sort().at(-1));
      }
      expect(data.summary.input).toBe(rows.reduce((n, r) => n + r.input_tokens, 0));
      expect(data.days.reduce((n, d) => n + d.input, 0)).toBe(data.summary.input);
      // The 5-hour windows (one statement for all users shown) from the raw rows' hours; a
      // user's page reads the same statement for one user.
      for (const user of [null, auths[1]!.email]) {
        const view = user === null ? data : await fresh.store.dashboard(now, { filter: { ...filter, user }, prices: CHANGING_BOOK });
        const byHour = new Map<string, HourBucket>();
        for (const r of rows.filter((x) => x.timestamp_utc >= view.windowsFromIso)) {
          const email = auths.find((a) => a.userId === r.user_id)!.email;
          if (user !== null && email !== user) continue;
          const key = `${email}/${r.timestamp_utc.slice(0, 13)}`;
          const b = byHour.get(key) ?? { user: email, hourMillis: Date.parse(`${r.timestamp_utc.slice(0, 13)}:00:00Z`), tokens: 0, turns: 0 };
          b.tokens += r.input_tokens + r.output_tokens + r.cache_read_tokens + r.cache_write_tokens;
          b.turns += filter.model !== null || firstTurn.has(r.id) ? 1 : 0;
          byHour.set(key, b);
        }
        expect(byHour.size).toBeGreaterThan(0);
        expect(view.windows, `${filter.range} windows ${user}`).toEqual(windowsFromHours([...byHour.values()], now.getTime()));
      }
      // The seat value's month, to the hour after now: what budgets reuse when their hours match.
      const month = raw.filter((r) => r.timestamp_utc >= '2026-05-01T00:00:00Z' && r.timestamp_utc < '2026-05-12T08:00:00Z');
      const monthTokens = month.reduce((n, r) => n + r.input_tokens + r.output_tokens + r.cache_read_tokens + r.cache_write_tokens, 0);
      expect(data.seatValue!.spend.org.tokens).toBe(monthTokens);
      expect([...data.seatValue!.spend.user.values()].reduce((n, p) => n + p.tokens, 0)).toBe(monthTokens);
      expect([...data.seatValue!.spend.division.values()].reduce((n, p) => n + p.usd, 0)).toBeCloseTo(data.seatValue!.cost.usd, 9);
      expect(data.days.reduce((n, d) => n + (d.cost?.usd ?? 0), 0)).toBeCloseTo(data.summary.cost.usd, 9);
    }
  });
});

interface RawRow {
  id: number;
  user_id: number;
  session_id: string;
  turn_index: number;
  model: string;
  timestamp_utc: string;
  input_tokens: number;
  output_tokens: number;
  cache_read_tokens: number;
  cache_write_tokens: number;
  cache_write_5m_tokens: number | null;
  cache_write_1h_tokens: number | null;
  web_search_requests: number | null;
}
