/**
 * Issue 16 row 2 (and row 9 on the receiver side): counters, the report total and `timestamp_utc`
 * have sane bounds; a hostile row already in the database never makes a dashboard view fail.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { MAX_REPORT_TOKENS, MAX_TOKEN_COUNT, type ModelUsage } from '../../../src/protocol/wire';
import { bearer, makeReport, postReport, provision, send, startInProcess, type TestReceiver, usageRows, ON_POSTGRES } from '../support';

const ADMIN_TOKEN = 'c'.repeat(32);
const HOUR_MS = 3600 * 1000;
let t: TestReceiver | undefined;
afterEach(async () => {
  await t?.close();
  t = undefined;
});

function usage(n: number): ModelUsage {
  return { input_tokens: n, output_tokens: 0, cache_read_tokens: 0, cache_write_tokens: 0 };
}

describe('counter and report bounds', () => {
  it('documents 10^10 per counter and 10^11 per report', () => {
    expect(MAX_TOKEN_COUNT).toBe(10 ** 10);
    expect(MAX_REPORT_TOKENS).toBe(10 ** 11);
  });

  it.each([
    ['a counter at the cap', { m: usage(MAX_TOKEN_COUNT) }, 200],
    ['a counter one past the cap', { m: usage(MAX_TOKEN_COUNT + 1) }, 400],
    ['a counter of 2^53-1', { m: usage(Number.MAX_SAFE_INTEGER) }, 400],
    ['20 models at the cap (2 x 10^11 in one report)', Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`m${i}`, usage(MAX_TOKEN_COUNT)])), 400],
    ['10 models at the cap (10^11 in one report)', Object.fromEntries(Array.from({ length: 10 }, (_, i) => [`m${i}`, usage(MAX_TOKEN_COUNT)])), 200],
    ['a schema-v2 detail counter at the cap', { m: { ...usage(1), cache_write_1h_tokens: MAX_TOKEN_COUNT } }, 200],
    ['a schema-v2 detail counter of 2^53-1', { m: { ...usage(1), web_search_requests: Number.MAX_SAFE_INTEGER } }, 400],
  ])('%s → %i', async (_label, models, status) => {
    t = await startInProcess();
    const { accessToken } = await provision(t, 'ana@example.org');
    const answer = await postReport(t, accessToken, makeReport({ models }));
    expect(answer.status, answer.text).toBe(status);
    if (status === 400) expect((await usageRows(t))).toEqual([]);
  });
});

describe('timestamp_utc bounds', () => {
  it.each([
    ['year 9999', '9999-12-31T23:59:59Z', 400],
    ['two days ahead of the receiver clock', 'AHEAD_48H', 400],
    ['an hour ahead (device clock skew)', 'AHEAD_1H', 200],
    ['a month old (queued on an offline laptop)', 'BEHIND_30D', 200],
    ['six years old', 'BEHIND_6Y', 400],
    ['year 0001', '0001-01-01T00:00:00Z', 400],
    ['not a time', 'yesterday', 400],
    ['an impossible date', '2026-02-30T00:00:00Z', 400],
  ])('%s → %i', async (_label, value, status) => {
    t = await startInProcess();
    const now = t.clock.ms;
    const iso = (ms: number) => `${new Date(ms).toISOString().slice(0, 19)}Z`;
    const resolved =
      value === 'AHEAD_48H'
        ? iso(now + 48 * HOUR_MS)
        : value === 'AHEAD_1H'
          ? iso(now + HOUR_MS)
          : value === 'BEHIND_30D'
            ? iso(now - 30 * 24 * HOUR_MS)
            : value === 'BEHIND_6Y'
              ? iso(now - 6 * 366 * 24 * HOUR_MS)
              : value;
    const { accessToken } = await provision(t, 'ana@example.org');
    const answer = await postReport(t, accessToken, makeReport({ timestamp_utc: resolved }));
    expect(answer.status, answer.text).toBe(status);
  });
});

describe('model names on the receiver', () => {
  it('stores an odd model name cleaned instead of refusing the turn', async () => {
    t = await startInProcess();
    const { accessToken } = await provision(t, 'ana@example.org');
    const body = JSON.stringify(makeReport()).replace('"claude-sonnet-4-6"', '"\\udfffx <b>free text</b>"');
    const answer = await postReport(t, accessToken, body);
    expect(answer.status, answer.text).toBe(200);
    expect((await usageRows(t)).map((r) => r.model)).toEqual(['_x__b_free_text_/b_']);
  });

  it('adds up names that are equal once cleaned', async () => {
    t = await startInProcess();
    const { accessToken } = await provision(t, 'ana@example.org');
    const answer = await postReport(t, accessToken, makeReport({ models: { 'a b': usage(1), 'a\tb': usage(2) } }));
    expect(answer.status).toBe(200);
    expect((await usageRows(t)).map((r) => [r.model, r.input_tokens])).toEqual([['a_b', 3]]);
  });
});

describe('a hostile row never makes a view fail', () => {
  // Writes rows with SQLite SQL through the file handle: SQLite only (PostgreSQL's BIGINT refuses such rows at insert).
  it.skipIf(ON_POSTGRES)('dashboard and export answer 200 with rows whose sums overflow 64-bit integers', async () => {
    t = await startInProcess({ env: { ADMIN_TOKEN } });
    const { accessToken } = await provision(t, 'ana@example.org');
    expect((await postReport(t, accessToken, makeReport())).status).toBe(200);
    // Rows written by an older receiver (or straight into the database): maximal counters, far-future times.
    const insert = t.db.prepare(`INSERT INTO usage_events (user_email, user_token, session_id, turn_index, timestamp_utc,
        session_start_utc, model, input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, plugin_version,
        schema_version, received_at, user_id)
      SELECT user_email, user_token, session_id, turn_index + ?, ?, session_start_utc, ?, ?, ?, ?, ?, plugin_version,
        schema_version, received_at, user_id FROM usage_events LIMIT 1`);
    const big = 2n ** 62n;
    for (let i = 1; i <= 13; i++) {
      for (const model of ['claude-a', 'claude-b']) {
        insert.run(i, i % 2 === 0 ? '9999-12-31T23:59:59Z' : '2026-05-11T02:00:00Z', model, big, big, big, big);
      }
    }
    const admin = { ...bearer(ADMIN_TOKEN) };
    const view = await send(`${t.url}/admin/`, { method: 'GET', headers: admin });
    expect(view.status, view.text.slice(0, 200)).toBe(200);
    const exported = await send(`${t.url}/admin/?export=html`, { method: 'GET', headers: admin });
    expect(exported.status, exported.text.slice(0, 200)).toBe(200);
    expect((await send(`${t.url}/health`, { method: 'GET' })).status).toBe(200);
  });
});
