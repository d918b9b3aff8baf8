import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openDatabase, type Db } from '../src/db/open';
import { SCHEMA_VERSION } from '../src/db/schema';
import { isReceiverError, type ReceiverError } from '../src/errors';
import { MAX_ACCESS_TOKENS_PER_REFRESH_TOKEN, SqliteStore, type Store } from '../src/store';
import { BACKEND, Clock, freshStore, makeReport, ON_POSTGRES, sqlRows } from './support';

/*
 * The store contract: every test here runs on the SQLite backend (project `main`) and on
 * PostgreSQL (project `receiver-pg`), except the few about SQLite's file, marked skipIf.
 */

const DAY_MS = 24 * 3600 * 1000;

async function expectCode(fn: () => unknown, code: string): Promise<void> {
  try {
    await fn();
  } catch (err) {
    expect(isReceiverError(err)).toBe(true);
    expect((err as ReceiverError).code).toBe(code);
    return;
  }
  throw new Error(`expected ReceiverError ${code}`);
}

describe(`Store (${BACKEND})`, () => {
  let fresh: Awaited<ReturnType<typeof freshStore>>;
  let db: Db;
  let dbPath: string;
  let clock: Clock;
  let store: Store;

  beforeEach(async () => {
    clock = new Clock();
    fresh = await freshStore(BACKEND, clock.now, { refreshTokenRollingDays: 90, accessTokenExpirySecs: 3600 });
    store = fresh.store;
    db = fresh.db as Db;
    dbPath = fresh.dbPath;
  });
  afterEach(async () => {
    await fresh.dispose();
  });

  it.skipIf(ON_POSTGRES)('creates the schema at the newest version, in WAL mode', async () => {
    expect(db.pragma('user_version', { simple: true })).toBe(SCHEMA_VERSION);
    expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
  });

  it.skipIf(ON_POSTGRES)('refuses a database newer than itself', async () => {
    db.pragma(`user_version = ${SCHEMA_VERSION + 1}`);
    db.close();
    await expectCode(() => openDatabase(dbPath), 'database');
  });

  it.skipIf(ON_POSTGRES)('reopens an existing database without re-running migrations', async () => {
    await store.createUser('a@example.org');
    db.close();
    db = openDatabase(dbPath);
    expect((await new SqliteStore(db, clock.now).listUsers()).map((u) => u.email)).toEqual(['a@example.org']);
    db.close();
  });

  it('createUser returns a ccf_rt_ token and normalises the email', async () => {
    const { refreshToken } = await store.createUser('  Ana@Example.ORG ', { division: 'Research' });
    expect(refreshToken).toMatch(/^ccf_rt_[A-Za-z0-9_-]{43}$/);
    const [user] = await store.listUsers();
    expect(user).toMatchObject({ email: 'ana@example.org', division: 'Research', revoked_at: null, active_keys: 0 });
    expect(user!.token_ref).toMatch(/^ref_[0-9a-f]{16}$/);
    expect(user!.token_expires_at).toBe(new Date(clock.ms + 90 * DAY_MS).toISOString());
    expect((await store.authenticateRefreshToken(refreshToken))?.email).toBe('ana@example.org');
  });

  it('createUser honours --days, and refuses existing or invalid input', async () => {
    await store.createUser('a@example.org', { days: 7 });
    expect((await store.listUsers())[0]!.token_expires_at).toBe(new Date(clock.ms + 7 * DAY_MS).toISOString());
    await expectCode(() => store.createUser('A@example.org'), 'exists');
    await expectCode(() => store.createUser('not-an-email'), 'invalid');
    await expectCode(() => store.createUser(`${'x'.repeat(250)}@example.org`), 'invalid');
    await expectCode(() => store.createUser('b@example.org', { days: 0 }), 'invalid');
    await expectCode(() => store.createUser('b@example.org', { division: 'x\u0007' }), 'invalid');
  });

  it('stores hostile strings as plain values (parameterised SQL)', async () => {
    const email = "o'brien+x@example.org";
    await store.createUser(email, { division: "'); DROP TABLE users; --" });
    expect((await store.listUsers())[0]).toMatchObject({ email, division: "'); DROP TABLE users; --" });
  });

  it('authenticateAccessToken with a public key reads that user\'s registration of it in the same query', async () => {
    const key = (n: number) => Buffer.alloc(32, n).toString('base64');
    const ana = (await store.authenticateRefreshToken((await store.createUser('ana@example.org')).refreshToken))!;
    const ben = (await store.authenticateRefreshToken((await store.createUser('ben@example.org')).refreshToken))!;
    await store.registerKey(ana, key(1), 'ana-laptop');
    await store.registerKey(ana, key(2), 'ana-old');
    await store.revokeKey(key(2));
    await store.registerKey(ben, key(3), 'ben-laptop');
    const { accessToken } = await store.issueAccessToken(ana);
    expect((await store.authenticateAccessToken(accessToken))?.deviceKey).toBeUndefined();
    const live = await store.authenticateAccessToken(accessToken, key(1));
    expect(live?.deviceKey).toEqual({ publicKey: key(1), key: { id: (await store.findDeviceKey(ana.userId, key(1)))!.id, device_id: 'ana-laptop', revoked_at: null } });
    expect(live?.deviceKey?.key).toEqual(await store.findDeviceKey(ana.userId, key(1)));
    expect((await store.authenticateAccessToken(accessToken, key(2)))?.deviceKey?.key?.revoked_at).toBe(clock.now().toISOString());
    // Another user's registration of a key is none of this user's; an unknown key neither.
    expect((await store.authenticateAccessToken(accessToken, key(3)))?.deviceKey).toEqual({ publicKey: key(3), key: null });
    expect((await store.authenticateAccessToken(accessToken, key(9)))?.deviceKey).toEqual({ publicKey: key(9), key: null });
    // Revocation is read each time: revoked now, refused now.
    await store.revokeKey(key(1));
    expect((await store.authenticateAccessToken(accessToken, key(1)))?.deviceKey?.key?.revoked_at).toBe(clock.now().toISOString());
    await store.revokeUser('ana@example.org');
    expect(await store.authenticateAccessToken(accessToken, key(1))).toBeNull();
  });

  it('revokeUser stops refresh and access tokens; unknown users are not-found', async () => {
    const { refreshToken } = await store.createUser('a@example.org');
    const auth = (await store.authenticateRefreshToken(refreshToken))!;
    const { accessToken } = await store.issueAccessToken(auth);
    expect((await store.authenticateAccessToken(accessToken))).not.toBeNull();
    await store.revokeUser('a@example.org');
    expect((await store.authenticateRefreshToken(refreshToken))).toBeNull();
    expect((await store.authenticateAccessToken(accessToken))).toBeNull();
    expect((await store.listUsers())[0]!.revoked_at).toBe(clock.now().toISOString());
    expect((await store.listUsers())[0]!.token_ref).toBeNull();
    await expectCode(() => store.revokeUser('nobody@example.org'), 'not-found');
    await expectCode(() => store.reissueToken('a@example.org'), 'revoked');
    // Adding a revoked user again enables it with a new token.
    const again = await store.createUser('a@example.org');
    expect((await store.authenticateRefreshToken(again.refreshToken))).not.toBeNull();
    expect((await store.authenticateRefreshToken(refreshToken))).toBeNull();
  });

  it('reissueToken revokes the old refresh and access tokens', async () => {
    const old = await store.createUser('a@example.org');
    const { accessToken } = await store.issueAccessToken((await store.authenticateRefreshToken(old.refreshToken))!);
    const fresh = await store.reissueToken('a@example.org', { days: 10 });
    expect(fresh.refreshToken).not.toBe(old.refreshToken);
    expect((await store.authenticateRefreshToken(old.refreshToken))).toBeNull();
    expect((await store.authenticateAccessToken(accessToken))).toBeNull();
    expect((await store.authenticateRefreshToken(fresh.refreshToken))).not.toBeNull();
    expect((await store.listUsers())[0]!.token_expires_at).toBe(new Date(clock.ms + 10 * DAY_MS).toISOString());
    await expectCode(() => store.reissueToken('nobody@example.org'), 'not-found');
  });

  it('rolls the refresh token expiry forward on exchange, never backward', async () => {
    const { refreshToken } = await store.createUser('a@example.org', { days: 365 });
    clock.advance(10 * DAY_MS);
    await store.issueAccessToken((await store.authenticateRefreshToken(refreshToken))!);
    // 365 days from creation is later than now + 90.
    expect((await store.listUsers())[0]!.token_expires_at).toBe(new Date(clock.ms - 10 * DAY_MS + 365 * DAY_MS).toISOString());

    const short = await store.createUser('b@example.org', { days: 1 });
    clock.advance(12 * 3600 * 1000);
    await store.issueAccessToken((await store.authenticateRefreshToken(short.refreshToken))!);
    const b = (await store.listUsers()).find((u) => u.email === 'b@example.org')!;
    expect(b.token_expires_at).toBe(new Date(clock.ms + 90 * DAY_MS).toISOString());
    expect(b.token_last_used_at).toBe(clock.now().toISOString());
  });

  it('expires refresh and access tokens, and purges expired access tokens', async () => {
    const { refreshToken } = await store.createUser('a@example.org', { days: 1 });
    const { accessToken, expiresAt } = await store.issueAccessToken((await store.authenticateRefreshToken(refreshToken))!);
    expect(expiresAt.getTime()).toBe(clock.ms + 3600 * 1000);
    expect((await store.countActiveAccessTokens())).toBe(1);
    clock.advance(3600 * 1000);
    expect((await store.authenticateAccessToken(accessToken))).toBeNull();
    expect((await store.countActiveAccessTokens())).toBe(0);
    expect((await store.purgeExpiredAccessTokens())).toBe(1);
    clock.advance(91 * DAY_MS);
    expect((await store.authenticateRefreshToken(refreshToken))).toBeNull();
  });

  it('keeps a bounded number of access tokens per refresh token', async () => {
    const { refreshToken } = await store.createUser('a@example.org');
    const auth = (await store.authenticateRefreshToken(refreshToken))!;
    const first = (await store.issueAccessToken(auth)).accessToken;
    for (let i = 0; i < MAX_ACCESS_TOKENS_PER_REFRESH_TOKEN + 5; i++) (await store.issueAccessToken(auth));
    expect((await store.countActiveAccessTokens())).toBe(MAX_ACCESS_TOKENS_PER_REFRESH_TOKEN);
    expect((await store.authenticateAccessToken(first))).toBeNull();
  });

  it('rejects malformed and cross-kind tokens without a lookup', async () => {
    const { refreshToken } = await store.createUser('a@example.org');
    expect((await store.authenticateAccessToken(refreshToken))).toBeNull();
    expect((await store.authenticateRefreshToken(`${refreshToken}x`))).toBeNull();
    expect((await store.authenticateRefreshToken(''))).toBeNull();
    expect((await store.authenticateRefreshToken(refreshToken.replace('ccf_rt_', 'ccf_at_')))).toBeNull();
  });

  it('registers, lists and revokes device keys per user', async () => {
    const a = (await store.authenticateRefreshToken((await store.createUser('a@example.org')).refreshToken))!;
    const b = (await store.authenticateRefreshToken((await store.createUser('b@example.org')).refreshToken))!;
    const key = Buffer.alloc(32, 7).toString('base64');
    expect((await store.registerKey(a, key, 'laptop'))).toBe('registered');
    expect((await store.registerKey(a, key, 'laptop'))).toBe('exists');
    expect((await store.registerKey(b, key, 'desk'))).toBe('registered');
    expect((await store.listKeys()).map((k) => [k.user_email, k.device_id, k.public_key, k.revoked_at])).toEqual([
      ['a@example.org', 'laptop', key, null],
      ['b@example.org', 'desk', key, null],
    ]);
    expect((await store.listUsers()).map((u) => u.active_keys)).toEqual([1, 1]);
    await expectCode(() => store.revokeKey(key), 'ambiguous');
    expect((await store.revokeKey(key, 'A@example.org'))).toBe(1);
    expect((await store.revokeKey(key, 'a@example.org'))).toBe(0);
    expect((await store.registerKey(a, key, 'laptop'))).toBe('revoked');
    expect((await store.registerKey(b, key, 'desk'))).toBe('exists');
    expect((await store.revokeKey(key, 'b@example.org'))).toBe(1);
    expect((await store.listKeys()).every((k) => k.revoked_at === clock.now().toISOString())).toBe(true);
    await expectCode(() => store.revokeKey(Buffer.alloc(32, 8).toString('base64')), 'not-found');
  });

  it('stores one row per model, idempotent on (user, session_id, turn_index, model)', async () => {
    const auth = (await store.authenticateRefreshToken((await store.createUser('a@example.org')).refreshToken))!;
    const report = makeReport({
      models: {
        m1: { input_tokens: 1, output_tokens: 2, cache_read_tokens: 3, cache_write_tokens: 4 },
        m2: { input_tokens: 5, output_tokens: 6, cache_read_tokens: 7, cache_write_tokens: 8 },
      },
    });
    expect((await store.insertReport(auth, report, { deviceId: 'laptop', signed: true }))).toEqual({ inserted: 2 });
    expect((await store.insertReport(auth, report, { deviceId: 'laptop', signed: true }))).toEqual({ inserted: 0 });
    expect((await store.insertReport(auth, { ...report, turn_index: 1 }, { deviceId: '', signed: false }))).toEqual({ inserted: 2 });
    const rows = await sqlRows(store, 'SELECT * FROM usage_events ORDER BY id');
    expect(rows).toHaveLength(4);
    expect(rows[0]).toMatchObject({
      user_email: 'a@example.org',
      user_token: auth.tokenRef,
      device_id: 'laptop',
      session_id: report.session_id,
      turn_index: 0,
      model: 'm1',
      input_tokens: 1,
      output_tokens: 2,
      cache_read_tokens: 3,
      cache_write_tokens: 4,
      plugin_version: '0.1.0',
      schema_version: 1,
      received_at: '2026-05-11 03:00:00',
      reported_email: 'laptop-user@example.org',
      signed: 1,
    });
  });

  it('keeps the Rust version columns of usage_events', async () => {
    const columns = ON_POSTGRES
      ? (await sqlRows(store, "SELECT column_name AS name FROM information_schema.columns WHERE table_name = 'usage_events' AND table_schema = current_schema()")).map((c) => c.name)
      : (db.prepare('PRAGMA table_info(usage_events)').all() as { name: string }[]).map((c) => c.name);
    for (const name of [
      'user_email', 'user_token', 'device_id', 'session_id', 'turn_index', 'timestamp_utc', 'session_start_utc',
      'model', 'input_tokens', 'output_tokens', 'cache_read_tokens', 'cache_write_tokens', 'plugin_version',
      'schema_version', 'received_at',
    ]) {
      expect(columns).toContain(name);
    }
  });

  it('dashboard reads only the sections asked for, and pages, sorts and searches users and keys in SQL', async () => {
    for (let i = 0; i < 12; i++) {
      const email = `u${String(i).padStart(2, '0')}@example.org`;
      const auth = (await store.authenticateRefreshToken((await store.createUser(email, { division: i % 3 === 0 ? 'Ops_%' : 'Dev' })).refreshToken))!;
      await store.registerKey(auth, Buffer.alloc(32, i + 1).toString('base64'), `dev-${i}`);
    }
    await store.revokeUser('u01@example.org');
    await store.revokeKey(Buffer.alloc(32, 3).toString('base64'));
    const table = { q: '', sort: null, dir: 'desc' as const, page: 1, pageSize: 5 };
    const only = await store.dashboard(clock.now(), { sections: ['users'], usersTable: { ...table, page: 2 } });
    // Page 2 of 12 in the default order (active first, then by email); nothing else was read.
    expect(only.users.map((u) => u.email)).toEqual(['u06@example.org', 'u07@example.org', 'u08@example.org', 'u09@example.org', 'u10@example.org']);
    expect(only.usersPage).toEqual({ page: 2, total: 12, pageSize: 5 });
    expect([only.keys, only.inactive, only.events, only.byUser, only.days, only.seatValue]).toEqual([[], [], [], [], [], null]);
    // A page past the end shows the last; a sort; a search whose LIKE characters are literal.
    const last = await store.dashboard(clock.now(), { sections: ['users'], usersTable: { ...table, page: 99, sort: 'email', dir: 'asc' } });
    expect(last.usersPage.page).toBe(3);
    expect(last.users.map((u) => u.email)).toEqual(['u10@example.org', 'u11@example.org']);
    const search = await store.dashboard(clock.now(), { sections: ['users'], usersTable: { ...table, q: 'ops_%' } });
    expect(search.users.map((u) => u.email)).toEqual(['u00@example.org', 'u03@example.org', 'u06@example.org', 'u09@example.org']);
    expect((await store.dashboard(clock.now(), { sections: ['users'], usersTable: { ...table, q: 'o%s' } })).usersPage.total).toBe(0);
    const byDevices = await store.dashboard(clock.now(), { sections: ['users'], usersTable: { ...table, sort: 'devices', dir: 'asc' } });
    expect(byDevices.users.slice(0, 2).map((u) => [u.email, u.devices])).toEqual([['u01@example.org', 0], ['u02@example.org', 0]]);
    // Keys: revoked (by key or by user) last; counts of every key; search by device; sort by status.
    const keys = await store.dashboard(clock.now(), { sections: ['keys'], keysTable: { ...table, pageSize: 20 } });
    expect(keys.keyCounts).toEqual({ total: 12, active: 10 });
    expect(keys.keys.slice(-2).map((k) => k.deviceId)).toEqual(['dev-1', 'dev-2']);
    const dev1 = await store.dashboard(clock.now(), { sections: ['keys'], keysTable: { ...table, q: 'DEV-1' } });
    expect(dev1.keys.map((k) => k.deviceId).sort()).toEqual(['dev-1', 'dev-10', 'dev-11']);
    const status = await store.dashboard(clock.now(), { sections: ['keys'], keysTable: { ...table, sort: 'status', dir: 'desc' } });
    expect(status.keys.slice(0, 2).map((k) => [k.deviceId, k.revokedAt !== null, k.userRevokedAt !== null])).toEqual([['dev-1', false, true], ['dev-2', true, false]]);
    // One user's rows (a user's page), and the division filter applies to the tables too.
    const one = await store.dashboard(clock.now(), { sections: ['users', 'keys'], usersTable: { ...table, email: 'u04@example.org' }, keysTable: { ...table, email: 'u04@example.org' } });
    expect([one.users.map((u) => u.email), one.keys.map((k) => k.deviceId)]).toEqual([['u04@example.org'], ['dev-4']]);
    // Inactive seats: active users without a turn since `before` (nobody reported: all 11).
    const idle = await store.dashboard(clock.now(), { sections: ['inactive'], inactiveTable: { ...table, before: clock.now().toISOString() } });
    expect(idle.inactivePage.total).toBe(11);
    expect(idle.inactive.map((u) => u.email)).not.toContain('u01@example.org');
  });

  it('ping throws once the database is gone', async () => {
    await store.ping();
    await store.close();
    await expect(store.ping()).rejects.toThrow();
  });

  it.skipIf(ON_POSTGRES)('is usable read-only by another connection while open (WAL)', async () => {
    await store.createUser('a@example.org');
    const reader = new Database(dbPath, { readonly: true });
    expect(reader.prepare('SELECT count(*) AS n FROM users').get()).toEqual({ n: 1 });
    reader.close();
  });
});
