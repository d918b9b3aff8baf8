/**
 * Issue 17, item 4: ours opens a Rust receiver database (built here from the Rust schema) and
 * migrates it in place after writing a backup beside it. Users, tokens (hashed, plaintext gone from
 * the file), device keys and every usage row are kept; devices keep working with the tokens and
 * keys they have; the Rust version's SQL still runs.
 */
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { openDatabase } from '../src/db/open';
import { isoFromRust, isRustDatabase } from '../src/db/rust-import';
import { SCHEMA_VERSION } from '../src/db/schema';
import { buildRustDatabase, type RustUsageRow } from '../../test/helpers/rust-db';
import { bearer, Clock, makeDevice, makeReport, postReport, registerKey, send, startInProcess, type TestReceiver, tempDir } from './support';

const ANA_RT = 'rtok_5f1e0c3a9b7d4e2f8a6c1b0d3e5f7a9c';
const BO_RT = 'a3f9c0de11b24c5d8e6f70819a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d';
const CY_RT = 'rtok_revoked_cy_000000000000000001';
const ANA_AT = '9c2b7e1f4a6d48b0a3e5c7d9f1b3a5c7';
const ANA_DEVICE = makeDevice();
const BO_DEVICE = makeDevice();

function isoMinutesAgo(minutes: number): string {
  return new Date(Date.now() - minutes * 60_000).toISOString().replace(/\.\d+Z$/, 'Z');
}

function usage(): RustUsageRow[] {
  const rows: RustUsageRow[] = [];
  const add = (email: string, rt: string, deviceId: string, sessionId: string, turn: number, minutesAgo: number, model: string, u: RustUsageRow['usage'], receivedAtSql?: string) =>
    rows.push({ email, refreshToken: rt, deviceId, sessionId, turnIndex: turn, timestampUtc: isoMinutesAgo(minutesAgo), sessionStartUtc: isoMinutesAgo(minutesAgo + 5), model, usage: u, ...(receivedAtSql ? { receivedAtSql } : {}) });
  add('ana@example.org', ANA_RT, 'ana-laptop', 's-ana-1', 0, 300, 'claude-sonnet-4-6', [10, 100, 1000, 50], "datetime('now', '-5 hours')");
  add('ana@example.org', ANA_RT, 'ana-laptop', 's-ana-1', 1, 20, 'claude-sonnet-4-6', [20, 200, 2000, 0]);
  add('ana@example.org', ANA_RT, 'ana-laptop', 's-ana-1', 1, 20, 'claude-haiku-4-5', [1, 2, 3, 4]);
  add('Bo@Example.org', BO_RT, '', 's-bo-1', 0, 10, 'claude-opus-4-7', [5, 500, 0, 0]);
  // A row whose token IT deleted later (the Rust re-provision recipe): still kept, token replaced.
  add('cy@example.org', 'rtok_deleted_long_ago_00000000000', 'cy-box', 's-cy-1', 0, 60 * 24 * 3, 'claude-sonnet-4-6', [7, 70, 0, 0], "datetime('now', '-3 days')");
  rows.push({ email: 'cy@example.org', refreshToken: CY_RT, sessionId: 's-cy-2', turnIndex: 0, timestampUtc: isoMinutesAgo(90), sessionStartUtc: null, model: 'claude-sonnet-4-6', usage: [1, 1, 1, 1], receivedAtSql: "datetime('now', '-90 minutes')" });
  return rows;
}

function build(path: string): void {
  buildRustDatabase(path, {
    users: [
      { email: 'ana@example.org', division: 'engineering', refreshToken: ANA_RT, accessToken: ANA_AT },
      { email: 'Bo@Example.org', division: 'research', refreshToken: BO_RT },
      { email: 'cy@example.org', refreshToken: CY_RT, revoked: true },
    ],
    keys: [
      { email: 'ana@example.org', publicKey: ANA_DEVICE.publicKey, deviceId: 'ana-laptop' },
      { email: 'Bo@Example.org', publicKey: BO_DEVICE.publicKey, deviceId: 'bo-desk', revoked: true },
    ],
    usage: usage(),
  });
}

const sha256 = (s: string) => createHash('sha256').update(s, 'utf8').digest('hex');

let t: TestReceiver | undefined;
afterEach(async () => {
  await t?.close();
  t = undefined;
});

describe('taking over a Rust receiver database', () => {
  it('writes a 0600 backup with the original rows, then migrates in place: everything kept, tokens hashed', () => {
    const dir = tempDir();
    try {
      const path = join(dir.dir, 'ccflux.db');
      build(path);
      const before = new Database(path, { readonly: true });
      const rustRows = before.prepare('SELECT id, received_at, user_email, session_id, turn_index, model, input_tokens, output_tokens, cache_read_tokens, cache_write_tokens FROM usage_events ORDER BY id').all();
      before.close();
      expect(isRustDatabase(new Database(path))).toBe(true);

      const notices: string[] = [];
      const db = openDatabase(path, { notice: (m) => notices.push(m) });
      expect(db.pragma('user_version', { simple: true })).toBe(SCHEMA_VERSION);
      expect(notices).toEqual([expect.stringMatching(/took over a Rust ccflux receiver database: 3 user\(s\), 3 refresh token\(s\) \(now hashed\), 2 device key\(s\), 6 usage row\(s\); backup at .*ccflux\.db\.rust-backup-\d{8}T\d{6}Z$/)]);

      const backups = readdirSync(dirname(path)).filter((n) => n.startsWith('ccflux.db.rust-backup-') && !n.endsWith('-wal') && !n.endsWith('-shm'));
      expect(backups).toHaveLength(1);
      const backupPath = join(dirname(path), backups[0]!);
      expect(statSync(backupPath).mode & 0o777).toBe(0o600);
      const backup = new Database(backupPath, { readonly: true });
      expect(backup.prepare('SELECT count(*) AS n FROM usage_events').get()).toEqual({ n: 6 });
      expect(backup.prepare('SELECT token FROM refresh_tokens ORDER BY token').all()).toHaveLength(3);
      backup.close();

      // Every usage row, same ids, counts and received_at (already the Rust text form).
      const rows = db.prepare('SELECT id, received_at, user_email, session_id, turn_index, model, input_tokens, output_tokens, cache_read_tokens, cache_write_tokens FROM usage_events ORDER BY id').all();
      expect(rows).toEqual(rustRows);
      // Users, one per email; revoked where every token was; divisions kept.
      expect(db.prepare('SELECT email, division, revoked_at IS NOT NULL AS revoked FROM users ORDER BY email').all()).toEqual([
        { email: 'ana@example.org', division: 'engineering', revoked: 0 },
        { email: 'bo@example.org', division: 'research', revoked: 0 },
        { email: 'cy@example.org', division: '', revoked: 1 },
      ]);
      // Tokens as digests only; usage_events.user_token now the token's non-secret ref.
      const tokens = db.prepare('SELECT t.token_hash, t.token_ref, u.email FROM user_tokens t JOIN users u ON u.id = t.user_id ORDER BY u.email').all() as { token_hash: string; token_ref: string; email: string }[];
      expect(tokens.map((x) => x.token_hash)).toEqual([sha256(ANA_RT), sha256(BO_RT), sha256(CY_RT)]);
      const anaRef = tokens[0]!.token_ref;
      expect(db.prepare("SELECT DISTINCT user_token FROM usage_events WHERE session_id = 's-ana-1'").all()).toEqual([{ user_token: anaRef }]);
      expect((db.prepare('SELECT user_token FROM usage_events').all() as { user_token: string }[]).every((r) => /^ref_[0-9a-f]{16}$/.test(r.user_token))).toBe(true);
      expect(db.prepare('SELECT token_hash FROM access_tokens').all()).toEqual([{ token_hash: sha256(ANA_AT) }]);
      expect(db.prepare('SELECT u.email, k.device_id, k.revoked_at IS NOT NULL AS revoked FROM device_keys k JOIN users u ON u.id = k.user_id ORDER BY u.email').all()).toEqual([
        { email: 'ana@example.org', device_id: 'ana-laptop', revoked: 0 },
        { email: 'bo@example.org', device_id: 'bo-desk', revoked: 1 },
      ]);
      expect(db.prepare('SELECT signed FROM usage_events ORDER BY id').all().map((r) => (r as { signed: number }).signed)).toEqual([1, 1, 1, 0, 1, 0]);
      expect(db.prepare('SELECT tier_label FROM tier_hints').all()).toEqual([{ tier_label: 'max-5x' }]);
      // The rollups the views read hold the imported rows (built after the copy, not before it).
      expect(db.prepare('SELECT CAST(sum(model_turns) AS INTEGER) AS n, CAST(sum(input) AS INTEGER) AS input FROM usage_daily').get()).toEqual(
        db.prepare('SELECT count(*) AS n, sum(input_tokens) AS input FROM usage_events WHERE user_id IS NOT NULL').get(),
      );
      expect(db.prepare(`SELECT u.email, MAX(c.last_received) AS last FROM usage_cum c JOIN users u ON u.id = c.user_id GROUP BY u.email ORDER BY u.email`).all()).toEqual(
        db.prepare('SELECT u.email, MAX(e.received_at) AS last FROM usage_events e JOIN users u ON u.id = e.user_id GROUP BY u.email ORDER BY u.email').all(),
      );
      db.close();

      // No plaintext token is left anywhere in the file (nor in a WAL).
      for (const file of [path, `${path}-wal`].filter(existsSync)) {
        const bytes = readFileSync(file);
        for (const secret of [ANA_RT, BO_RT, CY_RT, ANA_AT, 'rtok_deleted_long_ago_00000000000', 'legacy-static-token-0001']) {
          expect(bytes.includes(Buffer.from(secret)), `${secret} in ${file}`).toBe(false);
        }
      }

      // Opened again: nothing imported twice, no second backup.
      const again = openDatabase(path, { notice: (m) => notices.push(m) });
      expect(notices).toHaveLength(1);
      expect(again.prepare('SELECT count(*) AS n FROM usage_events').get()).toEqual({ n: 6 });
      again.close();
      expect(readdirSync(dirname(path)).filter((n) => /rust-backup-\d{8}T\d{6}Z$/.test(n))).toHaveLength(1);
    } finally {
      dir.cleanup();
    }
  });

  it("the Rust version's documented and dashboard SQL still runs, with the same answers", async () => {
    t = await startInProcess({ prepare: build, clock: new Clock(Date.now()) });
    const q = (sql: string) => t!.db.prepare(sql).all();
    // dashboard/usage_by_user.sql (last 30 days)
    expect(
      q(`SELECT user_email, SUM(input_tokens + output_tokens) AS total_tokens, COUNT(DISTINCT session_id) AS sessions, COUNT(*) AS turns
         FROM usage_events WHERE timestamp_utc >= datetime('now', '-30 days') GROUP BY user_email ORDER BY total_tokens DESC`),
    ).toEqual([
      { user_email: 'Bo@Example.org', total_tokens: 505, sessions: 1, turns: 1 },
      { user_email: 'ana@example.org', total_tokens: 333, sessions: 1, turns: 3 },
      { user_email: 'cy@example.org', total_tokens: 79, sessions: 2, turns: 2 },
    ]);
    // dashboard/model_breakdown.sql
    expect(q('SELECT model, COUNT(DISTINCT user_email) AS unique_users, SUM(output_tokens) AS total_output FROM usage_events GROUP BY model ORDER BY total_output DESC')).toEqual([
      { model: 'claude-opus-4-7', unique_users: 1, total_output: 500 },
      { model: 'claude-sonnet-4-6', unique_users: 2, total_output: 371 },
      { model: 'claude-haiku-4-5', unique_users: 1, total_output: 2 },
    ]);
    // Per division through refresh_tokens (the view): the join on user_token still finds its user.
    expect(
      q(`SELECT rt.division, SUM(ue.output_tokens) AS output FROM usage_events ue JOIN refresh_tokens rt ON rt.token = ue.user_token
         GROUP BY rt.division ORDER BY output DESC`),
    ).toEqual([
      { division: 'research', output: 500 },
      { division: 'engineering', output: 302 },
      { division: null, output: 1 },
    ]);
    // Last hour by received_at; revoked users; dashboard/five_hour_windows.sql skips NULL starts.
    expect(q(`SELECT count(*) AS n FROM usage_events WHERE received_at >= datetime('now', '-1 hour')`)).toEqual([{ n: 3 }]);
    expect(q('SELECT email FROM refresh_tokens WHERE revoked = 1')).toEqual([{ email: 'cy@example.org' }]);
    expect(q('SELECT count(*) AS n FROM usage_events WHERE session_start_utc IS NOT NULL')).toEqual([{ n: 5 }]);
  });

  it('devices carry on: the Rust refresh token exchanges, the cached access token and the registered key still work', async () => {
    t = await startInProcess({ prepare: build, clock: new Clock(Date.now()) });
    // The device's cached Rust access token, and its key registered with the Rust receiver.
    const report = makeReport({ session_id: 's-ana-1', turn_index: 2, timestamp_utc: isoMinutesAgo(1) });
    const signed = await postReport(t, ANA_AT, report, ANA_DEVICE);
    expect(signed.status).toBe(200);
    const row = t.db.prepare("SELECT user_email, device_id, signed, user_token FROM usage_events WHERE session_id = 's-ana-1' AND turn_index = 2").get();
    expect(row).toMatchObject({ user_email: 'ana@example.org', device_id: 'ana-laptop', signed: 1 });
    expect((row as { user_token: string }).user_token).toBe((t.db.prepare("SELECT token FROM refresh_tokens WHERE email = 'ana@example.org'").get() as { token: string }).token);
    // The configured Rust refresh token exchanges for one of ours; registering the key again is fine.
    const exchanged = await send(`${t.url}/token`, { headers: bearer(BO_RT) });
    expect(exchanged.status).toBe(200);
    const boAccess = (exchanged.json as { access_token: string }).access_token;
    expect((await registerKey(t, boAccess, BO_DEVICE)).status).toBe(403); // revoked by IT on the Rust side: stays revoked
    expect((await registerKey(t, (await exchangeFor(t, ANA_RT)), ANA_DEVICE)).status).toBe(200);
    // Revoked and deleted tokens stay refused.
    expect((await send(`${t.url}/token`, { headers: bearer(CY_RT) })).status).toBe(401);
    expect((await send(`${t.url}/token`, { headers: bearer('rtok_deleted_long_ago_00000000000') })).status).toBe(401);
    expect((await postReport(t, '0'.repeat(32), makeReport())).status).toBe(401); // expired access token
  });

  it('a database of our own never accepts Rust-shaped tokens', async () => {
    t = await startInProcess();
    expect((await send(`${t.url}/token`, { headers: bearer(ANA_RT) })).status).toBe(401);
    expect((await postReport(t, ANA_AT, makeReport())).status).toBe(401);
  });

  it('reads Rust times: SQLite text as UTC, RFC 3339 with offsets', () => {
    expect(isoFromRust('2026-05-11 03:00:00', 'x')).toBe('2026-05-11T03:00:00.000Z');
    expect(isoFromRust('2026-05-11T05:00:00.123456789+02:00', 'x')).toBe('2026-05-11T03:00:00.123Z');
    expect(isoFromRust(null, 'fallback')).toBe('fallback');
    expect(isoFromRust('soon', 'fallback')).toBe('fallback');
  });
});

async function exchangeFor(rx: TestReceiver, refreshToken: string): Promise<string> {
  const answer = await send(`${rx.url}/token`, { headers: bearer(refreshToken) });
  if (answer.status !== 200) throw new Error(`exchange: ${answer.status}`);
  return (answer.json as { access_token: string }).access_token;
}
