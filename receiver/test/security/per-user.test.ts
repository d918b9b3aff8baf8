/**
 * Issue 16 rows 3 and 4: idempotency and revocation are per user. Another user who knows a
 * session id cannot claim its rows first; revoking one user's registration of a public key never
 * silences another user who registered the same key.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { openDatabase } from '../../src/db/open';
import { MIGRATIONS } from '../../src/db/schema';
import { ReceiverError } from '../../src/errors';
import { makeDevice, makeReport, postReport, provision, registerKey, send, startInProcess, tempDir, type TestReceiver, usageRows } from '../support';

const ADMIN_TOKEN = 'd'.repeat(32);
let t: TestReceiver | undefined;
afterEach(async () => {
  await t?.close();
  t = undefined;
});

describe('idempotency per user (row 3)', () => {
  it("stores the victim's report even when another user sent the same session, turn and model first", async () => {
    t = await startInProcess();
    const attacker = await provision(t, 'mallory@example.org');
    const victim = await provision(t, 'victim@example.org');
    const report = makeReport();
    const claimed = await postReport(t, attacker.accessToken, makeReport({ models: { 'claude-sonnet-4-6': { input_tokens: 1, output_tokens: 0, cache_read_tokens: 0, cache_write_tokens: 0 } } }));
    expect(claimed.json).toEqual({ status: 'ok', stored: 1 });
    const real = await postReport(t, victim.accessToken, report);
    expect(real.json).toEqual({ status: 'ok', stored: 1 });
    // Still idempotent within one user.
    expect((await postReport(t, victim.accessToken, report)).json).toEqual({ status: 'ok', stored: 0 });
    const rows = (await usageRows(t)).map((r) => [r.user_email, r.input_tokens]);
    expect(rows).toEqual([
      ['mallory@example.org', 1],
      ['victim@example.org', 14200],
    ]);
  });

  it('migration 4 keeps every row and id of a version-3 database', () => {
    const { dir, cleanup } = tempDir();
    try {
      const path = join(dir, 'v3.db');
      const v3 = new Database(path);
      for (const sql of MIGRATIONS.slice(0, 3)) v3.exec(sql);
      v3.pragma('user_version = 3');
      v3.exec("INSERT INTO users (id, email, created_at) VALUES (1, 'a@example.org', 'x'), (2, 'b@example.org', 'x')");
      v3.exec(`INSERT INTO usage_events (id, user_email, user_token, session_id, turn_index, timestamp_utc, model,
        input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, schema_version, received_at, user_id)
        VALUES (7, 'a@example.org', 'ref_1', 's', 0, '2026-05-11T00:00:00Z', 'm', 5, 0, 0, 0, 1, '2026-05-11 00:00:01', 1)`);
      v3.close();
      const db = openDatabase(path);
      expect(db.prepare('SELECT id, input_tokens FROM usage_events').all()).toEqual([{ id: 7, input_tokens: 5 }]);
      // The same (session, turn, model) for another user is a new row now.
      db.exec(`INSERT INTO usage_events (user_email, user_token, session_id, turn_index, timestamp_utc, model,
        input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, schema_version, user_id)
        VALUES ('b@example.org', 'ref_2', 's', 0, '2026-05-11T00:00:00Z', 'm', 9, 0, 0, 0, 1, 2)`);
      expect((db.prepare('SELECT count(*) AS n FROM usage_events').get() as { n: number }).n).toBe(2);
      db.close();
    } finally {
      cleanup();
    }
  });
});

describe('revocation per (user, key) (row 4)', () => {
  async function twoUsersOneKey(receiver: TestReceiver) {
    const victim = await provision(receiver, 'victim@example.org');
    const attacker = await provision(receiver, 'mallory@example.org');
    const device = makeDevice();
    expect((await registerKey(receiver, victim.accessToken, device, 'victim-laptop')).status).toBe(200);
    // The attacker registers the victim's public key (it travels in every signature header).
    expect((await registerKey(receiver, attacker.accessToken, device, 'copied')).status).toBe(200);
    return { victim, attacker, device };
  }

  it("revoking the attacker's registration leaves the victim's device reporting", async () => {
    t = await startInProcess();
    const { victim, device } = await twoUsersOneKey(t);
    expect(await t.store.revokeKey(device.publicKey, 'mallory@example.org')).toBe(1);
    const answer = await postReport(t, victim.accessToken, makeReport(), device);
    expect(answer.status).toBe(200);
    const keys = await t.store.listKeys();
    expect(keys.map((k) => [k.user_email, k.revoked_at !== null])).toEqual([
      ['victim@example.org', false],
      ['mallory@example.org', true],
    ]);
  });

  it('refuses to guess: a key registered by several users needs the user named', async () => {
    t = await startInProcess();
    const { device } = await twoUsersOneKey(t);
    await expect(t.store.revokeKey(device.publicKey)).rejects.toMatchObject({ code: 'ambiguous' });
    await expect(t.store.revokeKey(device.publicKey, 'nobody@example.org')).rejects.toBeInstanceOf(ReceiverError);
    expect((await t.store.listKeys()).every((k) => k.revoked_at === null)).toBe(true);
  });

  it('a key registered once is revoked without naming the user', async () => {
    t = await startInProcess();
    const ana = await provision(t, 'ana@example.org');
    const device = makeDevice();
    await registerKey(t, ana.accessToken, device);
    expect(await t.store.revokeKey(device.publicKey)).toBe(1);
    expect(await t.store.revokeKey(device.publicKey)).toBe(0);
  });

  it("the dashboard's revoke button revokes only that row's registration", async () => {
    t = await startInProcess({ env: { ADMIN_TOKEN } });
    const { victim, device } = await twoUsersOneKey(t);
    const login = await send(`${t.url}/admin/login`, {
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: `token=${ADMIN_TOKEN}`,
    });
    const cookie = String(login.headers['set-cookie']).split(';')[0]!;
    // The device keys have their own page since the dashboard was split into pages.
    const page = await send(`${t.url}/admin/?view=keys`, { method: 'GET', headers: { cookie } });
    const csrf = /name="csrf_token" value="([^"]+)"/.exec(page.text)?.[1];
    expect(csrf).toBeDefined();
    // The form the page renders for mallory's row.
    const forms = [...page.text.matchAll(/<form[^>]*action="\/admin\/keys\/revoke"[^>]*>([\s\S]*?)<\/form>/g)].map((m) => m[1]!);
    const mallorys = forms.find((f) => f.includes('mallory@example.org'));
    expect(mallorys).toBeDefined();
    const fields = new URLSearchParams();
    for (const m of mallorys!.matchAll(/name="([^"]+)" value="([^"]*)"/g)) fields.set(m[1]!, m[2]!.replaceAll('&#43;', '+').replaceAll('&#x2F;', '/').replaceAll('&#61;', '='));
    fields.set('confirm', 'yes');
    const revoked = await send(`${t.url}/admin/keys/revoke`, {
      headers: { cookie, 'content-type': 'application/x-www-form-urlencoded', origin: t.url },
      body: fields.toString(),
    });
    expect(revoked.status).toBeLessThan(400);
    const keys = await t.store.listKeys();
    expect(keys.map((k) => [k.user_email, k.revoked_at !== null])).toEqual([
      ['victim@example.org', false],
      ['mallory@example.org', true],
    ]);
    expect((await postReport(t, victim.accessToken, makeReport(), device)).status).toBe(200);
  });
});
