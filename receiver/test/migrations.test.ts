/**
 * Upgrades: a database made by the previous release (v0.1.0's schema, frozen in
 * fixtures/v0.1.0-schema.sql, with rows as v0.1.0 wrote them) is migrated in place at open and by
 * `ccflux-receiver migrate`, keeps its data and tokens, and takes new reports; the same for
 * PostgreSQL from its migration 1. And `migrate --from sqlite: --to postgres://` moves a SQLite
 * receiver into PostgreSQL with every row and working tokens.
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import { afterEach, describe, expect, it } from 'vitest';
import { freshSchema, PG_MISSING, testPgAdminUrl } from '../../test/helpers/postgres';
import { RECEIVER_BUNDLE } from '../../test/helpers/receiver';
import { openDatabase } from '../src/db/open';
import { MIGRATIONS, SCHEMA_VERSION } from '../src/db/schema';
import { PG_MIGRATIONS, PG_SCHEMA_VERSION } from '../src/db/schema-postgres';
import { PostgresStore, SqliteStore } from '../src/store';
import { hashToken } from '../src/tokens';
import { Clock, makeReport, tempDir } from './support';

const V010_SQL = readFileSync(new URL('./fixtures/v0.1.0-schema.sql', import.meta.url), 'utf8');
const TOKEN = `ccf_rt_${'A'.repeat(43)}`;
const HAS_PG = testPgAdminUrl() !== undefined;

/** The rows a v0.1.0 receiver held: one user with a token, a device key, two usage rows. */
const V010_ROWS = [
  "INSERT INTO users (id, email, division, created_at) VALUES (1, 'ana@example.org', 'Research', '2026-04-01T09:00:00.000Z')",
  `INSERT INTO refresh_tokens (id, user_id, token_hash, token_ref, created_at, expires_at) VALUES (1, 1, '${hashToken(TOKEN)}', 'ref_0123456789abcdef', '2026-04-01T09:00:00.000Z', '2027-01-01T00:00:00.000Z')`,
  "INSERT INTO device_keys (id, user_id, public_key, device_id, registered_at) VALUES (1, 1, 'AAAA', 'ana-laptop', '2026-04-01T09:01:00.000Z')",
  `INSERT INTO usage_events (user_email, user_token, device_id, session_id, turn_index, timestamp_utc, session_start_utc, model,
     input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, plugin_version, schema_version, received_at, user_id, reported_email, signed)
   VALUES ('ana@example.org', 'ref_0123456789abcdef', 'ana-laptop', 's-1', 0, '2026-05-10T10:00:00Z', '', 'claude-sonnet-4-6',
     100, 20, 3000, 40, '0.1.0', 1, '2026-05-10T10:00:02.123Z', 1, 'ana@example.org', 1)`,
  `INSERT INTO usage_events (user_email, user_token, device_id, session_id, turn_index, timestamp_utc, session_start_utc, model,
     input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, plugin_version, schema_version, received_at, user_id, reported_email, signed)
   VALUES ('ana@example.org', 'ref_0123456789abcdef', 'ana-laptop', 's-1', 1, '2026-05-10T10:05:00Z', '2026-05-10T09:55:00Z', 'claude-opus-4-6',
     7, 8, 9, 10, '0.1.0', 1, '2026-05-10T10:05:01.000Z', 1, 'ana@example.org', 1)`,
];

function makeV010Sqlite(path: string): void {
  const db = new Database(path);
  db.exec(V010_SQL);
  for (const sql of V010_ROWS) db.exec(sql);
  db.pragma('user_version = 1');
  db.close();
}

function cli(args: string[], env: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [RECEIVER_BUNDLE, ...args], { env: { PATH: process.env.PATH ?? '', ...env } }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

/** What every upgraded store must still do with v0.1.0's data. */
async function expectUpgraded(store: SqliteStore | PostgresStore): Promise<void> {
  const auth = await store.authenticateRefreshToken(TOKEN);
  expect(auth?.email).toBe('ana@example.org');
  expect((await store.listUsers()).map((u) => [u.email, u.division])).toEqual([['ana@example.org', 'Research']]);
  expect((await store.listKeys()).map((k) => k.device_id)).toEqual(['ana-laptop']);
  // The users page's last report: migration 10's backfill from the raw rows (the index it replaced is gone).
  const table = { q: '', sort: null, dir: 'desc' as const, page: 1, pageSize: 10 };
  const page = await store.dashboard(new Date('2026-05-11T03:00:00Z'), { sections: ['users'], usersTable: table });
  expect(page.users.map((u) => u.lastReportAt)).toEqual(['2026-05-10 10:05:01']);
  const index = store instanceof SqliteStore
    ? store.db.prepare("SELECT name FROM sqlite_master WHERE name = 'usage_events_user_received'").all()
    : (await store.pool.query("SELECT indexname FROM pg_indexes WHERE indexname = 'usage_events_user_received' AND schemaname = current_schema()")).rows;
  expect(index).toEqual([]);
  // A new report next to the old rows; the old ones count once, the replay not at all.
  const report = makeReport({ session_id: 's-1', turn_index: 2, timestamp_utc: '2026-05-11T02:00:00Z' });
  expect(await store.insertReport(auth!, report, { deviceId: 'ana-laptop', signed: false })).toEqual({ inserted: 1 });
  expect(await store.insertReport(auth!, report, { deviceId: 'ana-laptop', signed: false })).toEqual({ inserted: 0 });
  const data = await store.dashboard(new Date('2026-05-11T03:00:00Z'));
  expect(data.summary.turns).toBe(3);
  expect(data.summary.input).toBe(100 + 7 + 14200);
}

describe('upgrading a v0.1.0 SQLite database', () => {
  const dirs: ReturnType<typeof tempDir>[] = [];
  afterEach(() => {
    for (const d of dirs.splice(0)) d.cleanup();
  });

  it('keeps shipped migration 1 exactly as v0.1.0 shipped it', () => {
    const norm = (s: string) => s.replace(/--[^\n]*\n/g, '').replace(/\s+/g, ' ').trim();
    expect(norm(MIGRATIONS[0]!)).toBe(norm(V010_SQL));
  });

  it('migrates at open: data, tokens and new reports all work, received_at in the Rust form', async () => {
    const dir = tempDir();
    dirs.push(dir);
    const path = join(dir.dir, 'old.db');
    makeV010Sqlite(path);
    const db = openDatabase(path, { notice: () => {} });
    expect(db.pragma('user_version', { simple: true })).toBe(SCHEMA_VERSION);
    const store = new SqliteStore(db, new Clock().now);
    const rows = db.prepare('SELECT received_at, session_start_utc FROM usage_events ORDER BY id').all();
    expect(rows).toEqual([
      { received_at: '2026-05-10 10:00:02', session_start_utc: null },
      { received_at: '2026-05-10 10:05:01', session_start_utc: '2026-05-10T09:55:00Z' },
    ]);
    await expectUpgraded(store);
    await store.close();
  });

  it('ccflux-receiver migrate says what it applied, then that there is nothing to do', async () => {
    const dir = tempDir();
    dirs.push(dir);
    const path = join(dir.dir, 'old.db');
    makeV010Sqlite(path);
    const first = await cli(['migrate'], { DATABASE_PATH: path });
    expect(first.code, first.stderr).toBe(0);
    expect(first.stderr).toContain(`applied migrations ${Array.from({ length: SCHEMA_VERSION - 1 }, (_, i) => i + 2).join(', ')}`);
    const again = await cli(['migrate'], { DATABASE_PATH: path });
    expect(again.stderr).toContain('nothing to do');
  });
});

describe.skipIf(!HAS_PG)('PostgreSQL migrations', () => {
  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0)) await c();
  });

  it('has one PostgreSQL migration for every SQLite migration', () => {
    expect(PG_SCHEMA_VERSION).toBe(SCHEMA_VERSION);
  });

  it('upgrades a database at version 1 with v0.1.0 rows in it', async () => {
    const schema = await freshSchema();
    cleanups.push(schema.drop);
    const client = new pg.Client({ connectionString: schema.url });
    await client.connect();
    await client.query('CREATE TABLE ccflux_schema (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)');
    await client.query(PG_MIGRATIONS[0]!);
    await client.query("INSERT INTO ccflux_schema VALUES (1, '2026-04-01T00:00:00Z')");
    for (const sql of V010_ROWS) await client.query(sql);
    await client.query("SELECT setval(pg_get_serial_sequence('users', 'id'), 1)");
    await client.end();
    const store = await PostgresStore.open(schema.url, new Clock().now);
    cleanups.unshift(() => store.close());
    const received = await store.pool.query('SELECT received_at FROM usage_events ORDER BY id');
    expect(received.rows.map((r) => r.received_at)).toEqual(['2026-05-10 10:00:02', '2026-05-10 10:05:01']);
    await expectUpgraded(store);
  });

  it('two instances starting at once migrate once (advisory lock)', async () => {
    const schema = await freshSchema();
    cleanups.push(schema.drop);
    const stores = await Promise.all([0, 1, 2].map(() => PostgresStore.open(schema.url, new Clock().now)));
    cleanups.unshift(async () => {
      for (const s of stores) await s.close();
    });
    const versions = await stores[0]!.pool.query('SELECT version FROM ccflux_schema ORDER BY version');
    expect(versions.rows.map((r) => r.version)).toEqual(Array.from({ length: PG_SCHEMA_VERSION }, (_, i) => i + 1));
  });

  it('migrate --from sqlite: --to postgres:// copies every row; the tokens work there', async () => {
    if (!HAS_PG) throw new Error(PG_MISSING);
    const dir = tempDir();
    cleanups.push(async () => dir.cleanup());
    const path = join(dir.dir, 'old.db');
    makeV010Sqlite(path);
    const schema = await freshSchema();
    cleanups.push(schema.drop);
    const copied = await cli(['migrate', '--from', `sqlite:${path}`, '--to', schema.url], {});
    expect(copied.code, copied.stderr).toBe(0);
    expect(copied.stdout).toContain('usage_events\t2');
    expect(copied.stderr).not.toContain(new URL(schema.url).password);
    const store = await PostgresStore.open(schema.url, new Clock().now);
    cleanups.unshift(() => store.close());
    await expectUpgraded(store);
    // Ids continue after the copied ones.
    await store.createUser('bob@example.org');
    expect((await store.listUsers()).length).toBe(2);
    const again = await cli(['migrate', '--from', `sqlite:${path}`, '--to', schema.url], {});
    expect(again.code).not.toBe(0);
    expect(again.stderr).toContain('already has users');
  });
});
