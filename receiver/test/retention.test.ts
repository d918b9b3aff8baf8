/**
 * RETENTION_DAYS (issue 11): raw usage rows past the horizon are purged in batches, the rollups
 * stay, and a report whose turn is older than the horizon is acknowledged without being counted
 * (its raw rows may be gone, so it could no longer be recognised as a duplicate). Both backends.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { parseConfig } from '../src/config';
import { openDatabase } from '../src/db/open';
import { isExpiredTurn, purgeCutoff, purgeRawRows, RETENTION_MARGIN_DAYS } from '../src/retention';
import { createReceiver } from '../src/server';
import { DAY_MS, PostgresStore, SqliteStore, type Store } from '../src/store';
import { bearer, makeReport, ON_POSTGRES, provision, send, sqlRows, startInProcess, type TestReceiver, usageRows } from './support';

let t: TestReceiver | undefined;
const extra: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const close of extra.splice(0)) await close();
  await t?.close();
  t = undefined;
});

/** Another store on the same database: a second instance. */
async function secondStore(rx: TestReceiver): Promise<Store> {
  const store: Store = ON_POSTGRES
    ? await PostgresStore.open(rx.dbPath, rx.clock.now, { poolMax: 2 })
    : new SqliteStore(openDatabase(rx.dbPath, { notice: () => {} }), rx.clock.now);
  extra.push(() => store.close());
  return store;
}

const post = (rx: TestReceiver, access: string, turn: number, at: Date) =>
  send(`${rx.url}/report`, { headers: bearer(access), body: JSON.stringify(makeReport({ turn_index: turn, timestamp_utc: at.toISOString() })) });

/** A fresh access token for a refresh token (the first one expired while the clock moved on). */
async function exchange(rx: TestReceiver, refreshToken: string): Promise<string> {
  return ((await send(`${rx.url}/token`, { headers: bearer(refreshToken) })).json as { access_token: string }).access_token;
}

async function rollupTurns(store: Store): Promise<number> {
  return Number((await sqlRows(store, 'SELECT COALESCE(SUM(turns), 0) AS n FROM usage_daily'))[0]!.n);
}

describe('RETENTION_DAYS configuration', () => {
  it('keeps everything by default and refuses fewer than 30 days with the fix in the message', () => {
    const none = parseConfig({});
    expect(none.ok && none.config.retentionDays).toBeNull();
    const set = parseConfig({ RETENTION_DAYS: '400' });
    expect(set.ok && set.config.retentionDays).toBe(400);
    for (const bad of ['29', '0', '-5', '30.5', 'forever']) {
      const r = parseConfig({ RETENTION_DAYS: bad });
      expect(r.ok).toBe(false);
      if (!r.ok) expect(r.errors.join('\n')).toMatch(/RETENTION_DAYS must be a whole number of days from 30 .*unset it to keep every raw row/);
    }
  });

  it('decides expiry by the turn time and purges by receive time, a margin later', () => {
    const now = new Date('2026-05-11T03:00:00Z');
    expect(isExpiredTurn('2026-04-11T02:59:59Z', now, 30)).toBe(true);
    expect(isExpiredTurn('2026-04-11T03:00:01Z', now, 30)).toBe(false);
    expect(isExpiredTurn('2020-01-01T00:00:00Z', now, null)).toBe(false);
    expect(purgeCutoff(now, 30)).toBe(new Date(now.getTime() - (30 + RETENTION_MARGIN_DAYS) * DAY_MS).toISOString().slice(0, 19).replace('T', ' '));
  });
});

describe('retention purge', () => {
  it('deletes old raw rows in batches, keeps recent ones and the rollups, and an old resent report is not counted again', async () => {
    t = await startInProcess({ env: { RETENTION_DAYS: '30' } });
    const { accessToken, refreshToken } = await provision(t, 'old@example.org');
    const start = t.clock.now();
    for (let turn = 0; turn < 5; turn++) expect((await post(t, accessToken, turn, start)).status).toBe(200);
    const turnsBefore = await rollupTurns(t.store);
    expect(turnsBefore).toBe(5);

    t.clock.advance(40 * DAY_MS);
    const { accessToken: fresh } = await provision(t, 'new@example.org');
    expect((await post(t, fresh, 0, t.clock.now())).status).toBe(200);

    // Two instances purging at once share the work: every old row deleted exactly once, no error.
    const other = await secondStore(t);
    const [a, b] = await Promise.all([purgeRawRows(t.store, t.clock.now(), 30, 2), purgeRawRows(other, t.clock.now(), 30, 2)]);
    expect(a + b).toBe(5);
    const rows = await usageRows(t);
    expect(rows.map((r) => r.user_email)).toEqual(['new@example.org']);
    expect(await rollupTurns(t.store)).toBe(turnsBefore + 1);

    // The device resends an old turn (say it never saw the answer): acknowledged, not stored again.
    const access = await exchange(t, refreshToken);
    const again = await post(t, access, 0, start);
    expect(again.status).toBe(200);
    expect(again.json).toEqual({ status: 'ok', stored: 0, expired: true });
    const batch = await send(`${t.url}/reports`, { headers: bearer(access), body: JSON.stringify({ reports: [{ body: JSON.stringify(makeReport({ turn_index: 1, timestamp_utc: start.toISOString() })) }] }) });
    expect(batch.json).toMatchObject({ results: [{ status: 200, stored: 0 }] });
    expect((await usageRows(t)).length).toBe(1);
    expect(await rollupTurns(t.store)).toBe(turnsBefore + 1);
    expect(t.receiver.metrics.get('ccflux_reports_expired_total')).toBe(2);
    expect((await send(`${t.url}/metrics`, { method: 'GET' })).text).toContain('ccflux_reports_expired_total 2');
  });

  it('keeps rows inside the horizon plus its margin, and purges nothing without RETENTION_DAYS', async () => {
    t = await startInProcess();
    const { accessToken, refreshToken } = await provision(t, 'kept@example.org');
    expect((await post(t, accessToken, 0, t.clock.now())).status).toBe(200);
    t.clock.advance((30 + RETENTION_MARGIN_DAYS) * DAY_MS - 1000);
    expect(await purgeRawRows(t.store, t.clock.now(), 30)).toBe(0);
    // Without RETENTION_DAYS an old turn is counted as always.
    expect((await post(t, await exchange(t, refreshToken), 1, new Date(t.clock.now().getTime() - 400 * DAY_MS))).json).toEqual({ status: 'ok', stored: 1 });
    expect((await usageRows(t)).length).toBe(2);
  });

  it('a starting instance with RETENTION_DAYS purges on its own', async () => {
    t = await startInProcess();
    const { accessToken } = await provision(t, 'timer@example.org');
    for (let turn = 0; turn < 3; turn++) expect((await post(t, accessToken, turn, t.clock.now())).status).toBe(200);
    t.clock.advance(100 * DAY_MS);
    const parsed = parseConfig({ DATABASE_PATH: t.dbPath, LISTEN_ADDR: '127.0.0.1:0', RETENTION_DAYS: '60' });
    if (!parsed.ok) throw new Error(parsed.errors.join('; '));
    const store = await secondStore(t);
    const instance = createReceiver({ config: parsed.config, store, now: t.clock.now });
    extra.unshift(() => instance.close());
    // The first purge runs at start; wait for its effect (bounded), no timing assumed.
    for (let i = 0; i < 200 && (await usageRows(t)).length > 0; i++) await new Promise((r) => setTimeout(r, 25));
    expect(await usageRows(t)).toEqual([]);
  });
});
