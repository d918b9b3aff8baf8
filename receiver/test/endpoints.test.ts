import { readFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { bearer, makeDevice, makeReport, postReport, provision, registerKey, send, startInProcess, type TestReceiver, ON_POSTGRES, sqlRows } from './support';

const DAY_MS = 24 * 3600 * 1000;
let t: TestReceiver;
afterEach(async () => {
  await t?.close();
});

describe('POST /token', () => {
  it('exchanges a refresh token for an access token', async () => {
    t = await startInProcess({ env: { ACCESS_TOKEN_EXPIRY_SECS: '3600' } });
    const { refreshToken } = await t.store.createUser('ana@example.org');
    const answer = await send(`${t.url}/token`, { headers: bearer(refreshToken) });
    expect(answer.status).toBe(200);
    expect(answer.headers['content-type']).toBe('application/json');
    const body = answer.json as Record<string, string>;
    expect(Object.keys(body).sort()).toEqual(['access_token', 'expires_at', 'token_type']);
    expect(body.token_type).toBe('Bearer');
    expect(body.access_token).toMatch(/^ccf_at_[A-Za-z0-9_-]{43}$/);
    expect(body.expires_at).toBe('2026-05-11T04:00:00Z');
    expect(t.receiver.metrics.get('ccflux_token_exchanges_total')).toBe(1);
  });

  it('rolls the refresh token forward on each exchange', async () => {
    t = await startInProcess({ env: { REFRESH_TOKEN_ROLLING_DAYS: '10' } });
    const { refreshToken } = await t.store.createUser('ana@example.org');
    for (let day = 0; day < 30; day += 5) {
      t.clock.advance(5 * DAY_MS);
      expect((await send(`${t.url}/token`, { headers: bearer(refreshToken) })).status).toBe(200);
    }
    expect((await t.store.listUsers())[0]!.token_expires_at).toBe(new Date(t.clock.ms + 10 * DAY_MS).toISOString());
    // Unused for longer than the rolling window: expired.
    t.clock.advance(11 * DAY_MS);
    expect((await send(`${t.url}/token`, { headers: bearer(refreshToken) })).status).toBe(401);
  });

  it('answers 401 for unknown, revoked, reissued and wrong-kind tokens', async () => {
    t = await startInProcess();
    const unknown = await send(`${t.url}/token`, { headers: bearer(`ccf_rt_${'A'.repeat(43)}`) });
    expect(unknown.status).toBe(401);
    expect((await send(`${t.url}/token`, {})).status).toBe(401);

    const ana = await provision(t, 'ana@example.org');
    expect((await send(`${t.url}/token`, { headers: bearer(ana.accessToken) })).status).toBe(401);
    await t.store.revokeUser('ana@example.org');
    expect((await send(`${t.url}/token`, { headers: bearer(ana.refreshToken) })).status).toBe(401);

    const bob = await t.store.createUser('bob@example.org');
    const reissued = await t.store.reissueToken('bob@example.org');
    expect((await send(`${t.url}/token`, { headers: bearer(bob.refreshToken) })).status).toBe(401);
    expect((await send(`${t.url}/token`, { headers: bearer(reissued.refreshToken) })).status).toBe(200);
    expect(t.receiver.metrics.get('ccflux_token_exchanges_rejected_total')).toBe(5);
  });

  it('is rate limited per token with the injected clock', async () => {
    t = await startInProcess({ env: { RATE_LIMIT_PER_MINUTE: '3' } });
    const ana = await t.store.createUser('ana@example.org');
    const bob = await t.store.createUser('bob@example.org');
    const statuses: number[] = [];
    for (let i = 0; i < 5; i++) statuses.push((await send(`${t.url}/token`, { headers: bearer(ana.refreshToken) })).status);
    expect(statuses).toEqual([200, 200, 200, 429, 429]);
    // Bob is unaffected.
    expect((await send(`${t.url}/token`, { headers: bearer(bob.refreshToken) })).status).toBe(200);
    t.clock.advance(2 * 60_000);
    expect((await send(`${t.url}/token`, { headers: bearer(ana.refreshToken) })).status).toBe(200);
  });

  it('answers 413 for a body over the limit', async () => {
    t = await startInProcess({ env: { BODY_LIMIT_KB: '1' } });
    const { refreshToken } = await t.store.createUser('ana@example.org');
    expect((await send(`${t.url}/token`, { headers: bearer(refreshToken), body: 'x'.repeat(1025) })).status).toBe(413);
  });
});

describe('POST /register-key', () => {
  it('registers (200), then 200 again for the same user (as the Rust receiver), 403 key-revoked after revocation', async () => {
    t = await startInProcess();
    const ana = await provision(t, 'ana@example.org');
    const device = makeDevice();
    const first = await registerKey(t, ana.accessToken, device, 'ana-laptop');
    expect(first.status).toBe(200);
    expect(t.receiver.metrics.get('ccflux_key_registrations_total')).toBe(1);
    expect((await registerKey(t, ana.accessToken, device)).status).toBe(200);
    expect(t.receiver.metrics.get('ccflux_key_registrations_total')).toBe(1);

    // Another user may register the same public key: it is theirs only.
    const bob = await provision(t, 'bob@example.org');
    expect((await registerKey(t, bob.accessToken, device)).status).toBe(200);

    await t.store.revokeKey(device.publicKey, 'ana@example.org');
    const revoked = await registerKey(t, ana.accessToken, device);
    expect(revoked.status).toBe(403);
    expect(revoked.headers['x-ccflux-error']).toBe('key-revoked');
    // Revocation applies to ana's registration only.
    expect((await registerKey(t, bob.accessToken, device)).status).toBe(200);
    expect((await t.store.listKeys()).map((k) => [k.user_email, k.device_id])).toEqual([
      ['ana@example.org', 'ana-laptop'],
      ['bob@example.org', 'laptop-1'],
    ]);
  });

  it('answers 401 without an access token or with a refresh token', async () => {
    t = await startInProcess();
    const ana = await provision(t, 'ana@example.org');
    const body = JSON.stringify({ public_key: makeDevice().publicKey, device_id: 'x' });
    expect((await send(`${t.url}/register-key`, { body })).status).toBe(401);
    expect((await send(`${t.url}/register-key`, { headers: bearer(ana.refreshToken), body })).status).toBe(401);
  });

  it('enforces the field limits: device_id ≤ 255, public_key ≤ 64 and base64 of 32 bytes', async () => {
    t = await startInProcess();
    const ana = await provision(t, 'ana@example.org');
    const post = (body: unknown) =>
      send(`${t.url}/register-key`, { headers: bearer(ana.accessToken), body: JSON.stringify(body) });
    const key = () => makeDevice().publicKey;

    expect((await post({ public_key: key(), device_id: 'd'.repeat(255) })).status).toBe(200);
    expect((await post({ public_key: key(), device_id: 'd'.repeat(254) })).status).toBe(200);
    expect((await post({ public_key: key(), device_id: '' })).status).toBe(200);
    const longDevice = await post({ public_key: key(), device_id: 'd'.repeat(256) });
    expect(longDevice.status).toBe(400);
    expect(longDevice.json).toEqual({ error: 'device_id too long' });

    // 64 characters passes the length check (and then fails as not a 32-byte key); 65 does not.
    const at64 = await post({ public_key: 'A'.repeat(64), device_id: 'd' });
    expect(at64.status).toBe(400);
    expect(at64.json).toEqual({ error: 'public_key must be base64 of 32 bytes' });
    const at65 = await post({ public_key: 'A'.repeat(65), device_id: 'd' });
    expect(at65.status).toBe(400);
    expect(at65.json).toEqual({ error: 'public_key too long' });

    for (const body of [{}, { public_key: key() }, { device_id: 'x' }, [], 'x', { public_key: 1, device_id: 'x' }]) {
      expect((await post(body)).status).toBe(400);
    }
    expect((await send(`${t.url}/register-key`, { headers: bearer(ana.accessToken), body: '{' })).status).toBe(400);
    const surrogate = `{"public_key":"${key()}","device_id":"host\\ud800"}`;
    expect((await send(`${t.url}/register-key`, { headers: bearer(ana.accessToken), body: surrogate })).status).toBe(400);
  });
});

describe('GET /health', () => {
  it('answers 200 with the database up and 503 when it fails', async () => {
    t = await startInProcess();
    const up = await send(`${t.url}/health`, { method: 'GET' });
    expect(up.status).toBe(200);
    expect(up.json).toEqual({ status: 'ok', db: 'ok' });
    await t.store.close();
    const down = await send(`${t.url}/health`, { method: 'GET' });
    expect(down.status).toBe(503);
    expect(down.json).toEqual({ status: 'error', db: 'error' });
  });
});

describe('GET /metrics', () => {
  it('exposes every SPEC metric in Prometheus text format', async () => {
    t = await startInProcess({ env: { RATE_LIMIT_PER_MINUTE: '100' } });
    const ana = await provision(t, 'ana@example.org');
    await registerKey(t, ana.accessToken, makeDevice());
    await postReport(t, ana.accessToken, makeReport());
    await postReport(t, 'nope', makeReport());
    await postReport(t, ana.accessToken, makeReport(), makeDevice());
    const answer = await send(`${t.url}/metrics`, { method: 'GET' });
    expect(answer.status).toBe(200);
    expect(answer.headers['content-type']).toContain('text/plain');
    const values = Object.fromEntries(
      answer.text
        .split('\n')
        .filter((l) => l && !l.startsWith('#'))
        .map((l) => l.split(' ') as [string, string]),
    );
    expect(values).toMatchObject({
      ccflux_reports_accepted_total: '1',
      ccflux_reports_auth_rejected_total: '1',
      ccflux_reports_sig_rejected_total: '1',
      ccflux_reports_rate_limited_total: '0',
      ccflux_token_exchanges_total: '1',
      ccflux_key_registrations_total: '1',
      ccflux_active_access_tokens: '1',
    });
    expect(answer.text).toContain('# TYPE ccflux_reports_accepted_total counter');
    expect(answer.text).toContain('# TYPE ccflux_active_access_tokens gauge');
  });
});

describe('routing', () => {
  it('answers 404 for unknown paths and 405 (with Allow) for wrong methods', async () => {
    t = await startInProcess();
    expect((await send(`${t.url}/nope`, { method: 'GET' })).status).toBe(404);
    expect((await send(`${t.url}/report/`, {})).status).toBe(404);
    expect((await send(`${t.url}/`, { method: 'GET' })).status).toBe(404);
    const wrong = await send(`${t.url}/report`, { method: 'GET' });
    expect(wrong.status).toBe(405);
    expect(wrong.headers.allow).toBe('POST');
    expect((await send(`${t.url}/token`, { method: 'PUT' })).status).toBe(405);
    expect((await send(`${t.url}/register-key`, { method: 'DELETE' })).status).toBe(405);
    expect((await send(`${t.url}/metrics`, { method: 'POST' })).status).toBe(405);
    expect((await send(`${t.url}/health?x=1`, { method: 'GET' })).status).toBe(200);
  });

  it('keeps /admin disabled (404) without ADMIN_TOKEN', async () => {
    t = await startInProcess();
    for (const path of ['/admin', '/admin/', '/admin/users', '/admin/login']) {
      const answer = await send(`${t.url}${path}`, { method: 'GET' });
      expect(answer.status).toBe(404);
      expect(answer.json).toEqual({ error: 'not found' });
    }
  });

  it('hands every /admin path to the dashboard when ADMIN_TOKEN is set', async () => {
    t = await startInProcess({ env: { ADMIN_TOKEN: 'a'.repeat(40) } });
    for (const path of ['/admin', '/admin/', '/admin/anything']) {
      const answer = await send(`${t.url}${path}`, { method: 'GET' });
      // Whatever the dashboard answers, it is not the router's 404.
      expect(answer.text).not.toBe('{"error":"not found"}');
      expect(answer.status).toBeLessThan(500);
    }
    expect((await send(`${t.url}/administrator`, { method: 'GET' })).json).toEqual({ error: 'not found' });
  });

  it('never answers 5xx to malformed requests', async () => {
    t = await startInProcess();
    const ana = await provision(t, 'ana@example.org');
    const odd: [string, Parameters<typeof send>[1]][] = [
      ['/report', { headers: { authorization: 'Bearer' } }],
      ['/report', { headers: { authorization: `Bearer ${ana.accessToken} extra` } }],
      ['/report', { headers: { ...bearer(ana.accessToken), 'x-ccflux-signature': 'ed25519 ' + 'A'.repeat(150) }, body: '{}' }],
      ['/token', { headers: { authorization: 'Bearer \u00ff' } }],
      ['/register-key', { headers: bearer(ana.accessToken), body: 'null' }],
      ['//report', {}],
      ['/%zz', { method: 'GET' }],
    ];
    for (const [path, options] of odd) {
      const answer = await send(`${t.url}${path}`, options);
      expect(answer.status, path).toBeGreaterThanOrEqual(400);
      expect(answer.status, path).toBeLessThan(500);
    }
  });
});

describe('secrets at rest', () => {
  it('never writes a refresh or access token into the database file', async () => {
    t = await startInProcess({ env: { RATE_LIMIT_PER_MINUTE: '100' } });
    const tokens: string[] = [];
    for (const email of ['ana@example.org', 'bob@example.org']) {
      const { refreshToken, accessToken } = await provision(t, email);
      tokens.push(refreshToken, accessToken);
      const device = makeDevice();
      await registerKey(t, accessToken, device);
      expect((await postReport(t, accessToken, makeReport({ session_id: email }), device)).status).toBe(200);
    }
    tokens.push((await t.store.reissueToken('bob@example.org')).refreshToken);
    if (ON_POSTGRES) {
      // Every row of every table, as text: no token or token secret in any of them.
      const tables = await sqlRows(t.store, "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()");
      let text = '';
      for (const { tablename } of tables) {
        const rows = await sqlRows(t.store, `SELECT row_to_json(x)::text AS j FROM ${String(tablename)} x`);
        text += rows.map((r) => r.j).join('\n');
      }
      for (const token of tokens) expect(text).not.toContain(token.slice('ccf_xx_'.length));
      expect(text).not.toMatch(/ccf_(rt|at)_/);
      return;
    }
    const before = readFileSync(t.dbPath).length;
    await t.receiver.close();
    t.db.close();
    const bytes = Buffer.concat([readFileSync(t.dbPath), ...walIfAny(t.dbPath)]);
    expect(bytes.length).toBeGreaterThanOrEqual(before);
    for (const token of tokens) {
      const secret = token.slice('ccf_xx_'.length);
      expect(bytes.includes(Buffer.from(token))).toBe(false);
      expect(bytes.includes(Buffer.from(secret))).toBe(false);
      expect(bytes.includes(Buffer.from(secret, 'base64url'))).toBe(false);
    }
    expect(bytes.includes(Buffer.from('ccf_rt_'))).toBe(false);
    expect(bytes.includes(Buffer.from('ccf_at_'))).toBe(false);
  });
});

function walIfAny(path: string): Buffer[] {
  try {
    return [readFileSync(`${path}-wal`)];
  } catch {
    return [];
  }
}
