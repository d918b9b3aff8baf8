/**
 * Issue 17, break 1 and the smaller refusals: the receiver takes what the Rust receiver takes from
 * devices (SPEC "Compatibility both ways"), and the field limits of the security guide still hold
 * for every field present. Also the schema side of break 3: `received_at` in the Rust text form and
 * the `refresh_tokens` view, on a new database and on one migrated from schema version 1.
 */
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { openDatabase } from '../src/db/open';
import { MIGRATIONS } from '../src/db/schema';
import {
  bearer,
  makeDevice,
  makeReport,
  postReport,
  provision,
  registerKey,
  send,
  startInProcess,
  type TestReceiver,
  tempDir,
  usageRows, ON_POSTGRES } from './support';

let t: TestReceiver | undefined;
afterEach(async () => {
  await t?.close();
  t = undefined;
});

/** A report body with the key order and omissions of the Rust device's serde output. */
function rustBody(fields: Record<string, unknown> = {}): string {
  const body: Record<string, unknown> = {
    schema_version: 1,
    session_id: '0f5a2b8c-1d3e-4f60-8a9b-0c1d2e3f4a5b',
    user_email: 'ana@example.org',
    turn_index: 0,
    timestamp_utc: '2026-05-11T02:59:00.123Z',
    // session_start_utc left out: the Rust device skips it when it found no session start
    models: { 'claude-sonnet-4-6': { input_tokens: 3, output_tokens: 200, cache_read_tokens: 9000, cache_write_tokens: 40 } },
    plugin_version: '0.4.2',
    ...fields,
  };
  for (const [k, v] of Object.entries(body)) if (v === undefined) delete body[k];
  return JSON.stringify(body);
}

async function ready(): Promise<{ rx: TestReceiver; access: string }> {
  const rx = await startInProcess({ env: { RATE_LIMIT_PER_MINUTE: '1000' } });
  t = rx;
  return { rx, access: (await provision(rx, 'ana@example.org')).accessToken };
}

describe('reports the Rust receiver accepts', () => {
  it('a signed Rust report without session_start_utc is stored, with NULL', async () => {
    const { rx, access } = await ready();
    const device = makeDevice();
    expect((await registerKey(rx, access, device)).status).toBe(200);
    const answer = await postReport(rx, access, rustBody(), device);
    expect(answer.status).toBe(200);
    const [row] = (await (await usageRows(rx)));
    expect(row).toMatchObject({ session_start_utc: null, output_tokens: 200, signed: 1, plugin_version: '0.4.2' });
  });

  it.each([
    ['session_start_utc null', { session_start_utc: null }, { session_start_utc: null }],
    ['plugin_version missing', { plugin_version: undefined }, { plugin_version: null }],
    ['plugin_version null', { plugin_version: null }, { plugin_version: null }],
    ['schema_version 2 with its additions', { schema_version: 2 }, { schema_version: 2 }],
    ['schema_version 7', { schema_version: 7 }, { schema_version: 7 }],
    ['an unknown top-level key', { device_flavour: 'newer', nested: { a: [1, 2] } }, { session_start_utc: null }],
  ])('%s → 200', async (_label, fields, expected) => {
    const { rx, access } = await ready();
    expect((await postReport(rx, access, rustBody(fields))).status).toBe(200);
    expect((await (await usageRows(rx)))[0]).toMatchObject(expected);
  });

  it('a Rust report with an empty timestamp_utc is stored at its arrival time, signed', async () => {
    const { rx, access } = await ready();
    const device = makeDevice();
    expect((await registerKey(rx, access, device)).status).toBe(200);
    expect((await postReport(rx, access, rustBody({ timestamp_utc: '' }), device)).status).toBe(200);
    const [row] = await usageRows(rx);
    expect(row).toMatchObject({ signed: 1, output_tokens: 200, timestamp_utc: '2026-05-11T03:00:00Z' });
    rx.clock.advance(60_000);
    // Resent unchanged (as the Rust device does), it is the same turn: stored once.
    expect((await postReport(rx, access, rustBody({ timestamp_utc: '' }), device)).status).toBe(200);
    expect(await usageRows(rx)).toHaveLength(1);
  });

  it('a timestamp_utc that is not a time is still refused', async () => {
    const { rx, access } = await ready();
    expect((await postReport(rx, access, rustBody({ timestamp_utc: 'yesterday' }))).status).toBe(400);
  });

  it('unknown keys inside a model are ignored, and never stored', async () => {
    const { rx, access } = await ready();
    const models = {
      m: { input_tokens: 1, output_tokens: 2, cache_read_tokens: 3, cache_write_tokens: 4, reasoning_tokens: 99, note: 'x' },
    };
    expect((await postReport(rx, access, rustBody({ models, secret_marker: 'S3CRET' }))).status).toBe(200);
    const row = (await (await usageRows(rx)))[0]!;
    expect(row).toMatchObject({ model: 'm', input_tokens: 1, output_tokens: 2, cache_read_tokens: 3, cache_write_tokens: 4 });
    expect(JSON.stringify((await (await usageRows(rx))))).not.toContain('S3CRET');
  });

  it('limits still apply to every field present, and to the body', async () => {
    const { rx, access } = await ready();
    const bad: Record<string, unknown>[] = [
      { session_start_utc: 't'.repeat(65) },
      { session_start_utc: 5 },
      { plugin_version: 'v'.repeat(65) },
      { plugin_version: false },
      { schema_version: 0 },
      { schema_version: '1' },
      { schema_version: 1.5 },
      { session_id: undefined },
      { models: { m: { input_tokens: 1, output_tokens: 2, cache_read_tokens: 3 } } },
      { models: { m: { input_tokens: -1, output_tokens: 2, cache_read_tokens: 3, cache_write_tokens: 0 } } },
      { models: { ['x'.repeat(129)]: { input_tokens: 1, output_tokens: 2, cache_read_tokens: 3, cache_write_tokens: 0 } } },
    ];
    for (const fields of bad) {
      const answer = await postReport(rx, access, rustBody(fields));
      expect({ fields, status: answer.status }).toEqual({ fields, status: 400 });
    }
    // Unknown keys do not lift the body size limit.
    const huge = await postReport(rx, access, rustBody({ padding: 'p'.repeat(70_000) }));
    expect(huge.status).toBe(413);
    expect((await (await usageRows(rx)))).toHaveLength(0);
  });

  it('/register-key for a key already registered answers 200, as the Rust receiver does', async () => {
    const { rx, access } = await ready();
    const device = makeDevice();
    expect((await registerKey(rx, access, device)).status).toBe(200);
    const again = await registerKey(rx, access, device, 'renamed-host');
    expect(again.status).toBe(200);
    expect(await rx.store.listKeys()).toHaveLength(1);
  });

  it('a retried Rust report (unsigned, then again) stores its rows once', async () => {
    const { rx, access } = await ready();
    const body = rustBody();
    expect((await send(`${rx.url}/report`, { headers: { ...bearer(access), 'content-type': 'application/json' }, body })).status).toBe(200);
    expect((await postReport(rx, access, body)).status).toBe(200);
    expect((await (await usageRows(rx)))).toHaveLength(1);
  });
});

describe('the Rust device, request by request', () => {
  it('its /token (POST, no body, no Content-Type), /register-key and signed /report are answered as it expects', async () => {
    const rx = await startInProcess({ env: { RATE_LIMIT_PER_MINUTE: '1000', REQUIRE_SIGNATURES: '1' } });
    t = rx;
    const { refreshToken } = await rx.store.createUser('ana@example.org', {});
    // ureq's .call() on a POST: no body, no Content-Type.
    const token = await send(`${rx.url}/token`, { headers: { authorization: `Bearer ${refreshToken}` } });
    expect(token.status).toBe(200);
    const access = (token.json as { access_token: string; expires_at: string; token_type: string }).access_token;
    const device = makeDevice();
    const register = await send(`${rx.url}/register-key`, {
      headers: { authorization: `Bearer ${access}`, 'content-type': 'application/json' },
      body: JSON.stringify({ public_key: device.publicKey, device_id: 'ana-laptop' }),
    });
    expect(register.status).toBe(200);
    // X-CCFLUX-Timestamp as chrono's to_rfc3339_opts(Secs, true): `…Z`, whole seconds.
    const answer = await postReport(rx, access, rustBody(), device);
    expect(answer.status).toBe(200);
    expect((await usageRows(rx))[0]).toMatchObject({ signed: 1, device_id: 'ana-laptop', session_start_utc: null });
  });
});

describe('schema: Rust SQL shapes', () => {
  // SQLite SQL (datetime(), the Rust version's queries) against the file: SQLite only.
  it.skipIf(ON_POSTGRES)('stores received_at as YYYY-MM-DD HH:MM:SS (UTC), the Rust text form', async () => {
    const { rx, access } = await ready();
    await postReport(rx, access, makeReport());
    expect((await (await usageRows(rx)))[0]!.received_at).toBe('2026-05-11 03:00:00');
    const n = rx.db.prepare(`SELECT count(*) AS n FROM usage_events WHERE received_at >= datetime('2026-05-11 03:00:00', '-1 hour')`).get() as { n: number };
    expect(n.n).toBe(1);
  });

  it.skipIf(ON_POSTGRES)('refresh_tokens is a view: token = usage_events.user_token, with email, division, revoked, created_at', async () => {
    const { rx, access } = await ready();
    await rx.store.createUser('bo@example.org', { division: 'research' });
    await postReport(rx, access, makeReport());
    const rows = rx.db
      .prepare(`SELECT rt.email, rt.division, rt.revoked, rt.created_at, rt.expires_at, SUM(ue.output_tokens) AS out
                FROM refresh_tokens rt LEFT JOIN usage_events ue ON ue.user_token = rt.token
                GROUP BY rt.token ORDER BY rt.email`)
      .all();
    expect(rows).toEqual([
      { email: 'ana@example.org', division: null, revoked: 0, created_at: '2026-05-11 03:00:00', expires_at: '2026-08-09 03:00:00', out: 1800 },
      { email: 'bo@example.org', division: 'research', revoked: 0, created_at: '2026-05-11 03:00:00', expires_at: '2026-08-09 03:00:00', out: null },
    ]);
    await rx.store.revokeUser('bo@example.org');
    expect(rx.db.prepare(`SELECT revoked FROM refresh_tokens WHERE email = 'bo@example.org'`).get()).toEqual({ revoked: 1 });
    // The token column holds the non-secret id, never a token.
    for (const { token } of rx.db.prepare('SELECT token FROM refresh_tokens').all() as { token: string }[]) {
      expect(token).toMatch(/^ref_[0-9a-f]{16}$/);
    }
  });

  it.skipIf(ON_POSTGRES)("the Rust revocation SQL still works: UPDATE refresh_tokens SET revoked = 1 WHERE email = …", async () => {
    const { rx, access } = await ready();
    expect((await postReport(rx, access, makeReport())).status).toBe(200);
    rx.db.prepare("UPDATE refresh_tokens SET revoked = 1 WHERE email = 'ana@example.org'").run();
    expect(rx.db.prepare("SELECT revoked FROM refresh_tokens WHERE email = 'ana@example.org'").get()).toEqual({ revoked: 1 });
    expect(rx.db.prepare('SELECT revoked_at FROM user_tokens').get()).toEqual({ revoked_at: expect.stringMatching(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/) });
    // Its access token stops at once; nothing else about the user changes.
    expect((await postReport(rx, access, makeReport({ turn_index: 1 }))).status).toBe(401);
    expect((await usageRows(rx))).toHaveLength(1);
  });

  it('migrates a schema version 1 database: ISO received_at converted, rows and ids kept, NULLs allowed', () => {
    const dir = tempDir();
    try {
      const path = join(dir.dir, 'v1.db');
      const v1 = new Database(path);
      v1.exec(MIGRATIONS[0]!);
      v1.pragma('user_version = 1');
      v1.prepare(`INSERT INTO users (id, email, division, created_at) VALUES (1, 'a@example.org', 'ops', '2026-05-01T00:00:00.000Z')`).run();
      v1.prepare(
        `INSERT INTO refresh_tokens (user_id, token_hash, token_ref, created_at, expires_at) VALUES (1, 'h', 'ref_0011223344556677', '2026-05-01T00:00:00.000Z', '2026-08-01T00:00:00.000Z')`,
      ).run();
      const insert = v1.prepare(
        `INSERT INTO usage_events (id, user_email, user_token, session_id, turn_index, timestamp_utc, session_start_utc, model,
           input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, plugin_version, schema_version, received_at, user_id)
         VALUES (?, 'a@example.org', 'ref_0011223344556677', 's', ?, '2026-05-11T02:59:00Z', ?, 'm', 1, 2, 3, 4, '0.1.0', 1, ?, 1)`,
      );
      insert.run(7, 0, '2026-05-11T02:00:00Z', '2026-05-11T03:00:00.872Z');
      insert.run(9, 1, '', '2026-05-11T03:05:10.001Z');
      v1.close();

      const db = openDatabase(path);
      expect(db.prepare('SELECT id, received_at, session_start_utc FROM usage_events ORDER BY id').all()).toEqual([
        { id: 7, received_at: '2026-05-11 03:00:00', session_start_utc: '2026-05-11T02:00:00Z' },
        { id: 9, received_at: '2026-05-11 03:05:10', session_start_utc: null },
      ]);
      expect(db.prepare('SELECT token, email, division, revoked FROM refresh_tokens').all()).toEqual([
        { token: 'ref_0011223344556677', email: 'a@example.org', division: 'ops', revoked: 0 },
      ]);
      expect(db.prepare('SELECT count(*) AS n FROM user_tokens').get()).toEqual({ n: 1 });
      db.close();
    } finally {
      dir.cleanup();
    }
  });
});
