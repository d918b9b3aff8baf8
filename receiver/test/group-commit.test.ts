/**
 * Group commit on SQLite (store/group-commit.ts): concurrent writes share one transaction, each in
 * its own savepoint; a caller hears back only after the COMMIT that holds its write. All on real
 * SQLite files: the failures are the database's own (a foreign key, a held write lock, a full disk).
 */
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import type { ReportBody } from '../../src/protocol/wire';
import { openDatabase } from '../src/db/open';
import { GroupCommit } from '../src/store/group-commit';
import type { SqliteStore } from '../src/store';
import type { AuthContext } from '../src/store/types';
import { Clock, freshStore, makeReport, ON_POSTGRES, tempDir } from './support';

const disposers: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const d of disposers.splice(0).reverse()) await d();
});

async function sqliteStore(clock = new Clock()) {
  const fresh = await freshStore('sqlite', clock.now);
  disposers.push(() => fresh.dispose());
  const store = fresh.store as SqliteStore;
  const users: AuthContext[] = [];
  for (let i = 0; i < 6; i++) {
    const { refreshToken } = await store.createUser(`u${i}@example.org`);
    users.push((await store.authenticateRefreshToken(refreshToken))!);
  }
  return { store, users, dbPath: fresh.dbPath };
}

/** A bare database file of the test's own (closed and removed after it), for GroupCommit alone. */
function scratchDb() {
  const { dir, cleanup } = tempDir();
  disposers.push(cleanup);
  const db = openDatabase(`${dir}/g.db`, { notice: () => {} });
  disposers.push(() => {
    db.close();
  });
  return db;
}

const report = (i: number): ReportBody =>
  makeReport({
    session_id: `s-${i % 3}`,
    turn_index: i,
    models: {
      'claude-sonnet-4-6': { input_tokens: 100 + i, output_tokens: 10, cache_read_tokens: 0, cache_write_tokens: 0 },
      'claude-haiku-4-5': { input_tokens: 1, output_tokens: 1, cache_read_tokens: 0, cache_write_tokens: 0 },
    },
  });

function count(dbPath: string, sql: string): number {
  const db = new Database(dbPath, { readonly: true });
  try {
    return (db.prepare(sql).get() as { n: number }).n;
  } finally {
    db.close();
  }
}

describe.skipIf(ON_POSTGRES)('GroupCommit (SQLite)', () => {
  it('runs writes queued in one turn in one transaction; a write that throws is rolled back alone', async () => {
    const db = scratchDb();
    db.exec('CREATE TABLE t (v INTEGER NOT NULL)');
    const insert = db.prepare('INSERT INTO t (v) VALUES (?)');
    const commits = new GroupCommit(db);
    const inTransaction: boolean[] = [];
    const results = await Promise.allSettled(
      [1, 2, 3, 4].map((v) =>
        commits.run(() => {
          inTransaction.push(db.inTransaction);
          insert.run(v);
          // Its own insert happened; the savepoint must take it back.
          if (v === 3) throw new Error('report 3 is bad');
          return v;
        }),
      ),
    );
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'fulfilled', 'rejected', 'fulfilled']);
    expect((results[2] as PromiseRejectedResult).reason.message).toBe('report 3 is bad');
    expect(inTransaction).toEqual([true, true, true, true]);
    expect(db.prepare('SELECT v FROM t ORDER BY v').pluck().all()).toEqual([1, 2, 4]);
  });

  it('a one-statement write (no savepoint of its own) that fails leaves nothing and fails alone', async () => {
    const db = scratchDb();
    db.exec('CREATE TABLE t (v INTEGER NOT NULL CHECK (v < 10))');
    // Several rows in one statement: the fourth breaks the CHECK after three were written.
    const insert = db.prepare('INSERT INTO t (v) SELECT value FROM json_each(?)');
    const commits = new GroupCommit(db);
    const results = await Promise.allSettled([
      commits.run(() => insert.run('[1]').changes, true),
      commits.run(() => insert.run('[2, 3, 4, 99]').changes, true),
      commits.run(() => insert.run('[5]').changes, true),
    ]);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect(db.prepare('SELECT v FROM t ORDER BY v').pluck().all()).toEqual([1, 5]);
  });

  it('answers only after the COMMIT: another connection sees every write the moment its promise settles', async () => {
    const { store, users, dbPath } = await sqliteStore();
    const seen: number[] = [];
    await Promise.all(
      Array.from({ length: 40 }, (_, i) =>
        store.insertReport(users[i % users.length]!, report(i), { deviceId: 'd', signed: false }).then(() => {
          seen.push(count(dbPath, `SELECT count(*) AS n FROM usage_events WHERE turn_index = ${i}`));
        }),
      ),
    );
    expect(seen).toEqual(Array.from({ length: 40 }, () => 2));
  });

  it('a report that fails in a batch fails alone; the others of the same transaction are stored', async () => {
    const { store, users, dbPath } = await sqliteStore();
    // No such user: the raw row's foreign key fails inside the batch.
    const ghost: AuthContext = { ...users[0]!, userId: 999_999 };
    const outcomes = await Promise.allSettled(
      Array.from({ length: 12 }, (_, i) => store.insertReport(i === 5 ? ghost : users[i % users.length]!, report(i), { deviceId: 'd', signed: false })),
    );
    expect(outcomes.map((o) => o.status)).toEqual(Array.from({ length: 12 }, (_, i) => (i === 5 ? 'rejected' : 'fulfilled')));
    expect((outcomes[5] as PromiseRejectedResult).reason.code).toBe('SQLITE_CONSTRAINT_FOREIGNKEY');
    expect(count(dbPath, 'SELECT count(*) AS n FROM usage_events')).toBe(22);
    expect(count(dbPath, 'SELECT count(*) AS n FROM usage_events WHERE turn_index = 5')).toBe(0);
    // And its rollup rows never happened either.
    expect(count(dbPath, 'SELECT count(*) AS n FROM usage_daily WHERE user_id = 999999')).toBe(0);
    expect(count(dbPath, 'SELECT CAST(sum(model_turns) AS INTEGER) AS n FROM usage_daily')).toBe(22);
  });

  it('a batch that cannot commit fails as a whole (503 for every caller) and stores nothing of it', async () => {
    const { store, users, dbPath } = await sqliteStore();
    store.db.pragma('busy_timeout = 50');
    const other = new Database(dbPath);
    disposers.push(() => {
      other.close();
    });
    other.exec('BEGIN IMMEDIATE');
    const outcomes = await Promise.allSettled(Array.from({ length: 8 }, (_, i) => store.insertReport(users[i % 6]!, report(i), { deviceId: 'd', signed: false })));
    expect(outcomes.every((o) => o.status === 'rejected' && (o.reason as { code?: string }).code === 'SQLITE_BUSY')).toBe(true);
    other.exec('ROLLBACK');
    expect(count(dbPath, 'SELECT count(*) AS n FROM usage_events')).toBe(0);
    // The device resends: now they are stored, once.
    const again = await Promise.all(Array.from({ length: 8 }, (_, i) => store.insertReport(users[i % 6]!, report(i), { deviceId: 'd', signed: false })));
    expect(again.map((r) => r.inserted)).toEqual(Array.from({ length: 8 }, () => 2));
  });

  it('on a full disk every write that resolved is stored and every one that rejected left nothing', async () => {
    const { store, users, dbPath } = await sqliteStore();
    const pages = store.db.pragma('page_count', { simple: true }) as number;
    store.db.pragma(`max_page_count = ${pages + 12}`);
    const outcomes = await Promise.allSettled(
      Array.from({ length: 300 }, (_, i) => store.insertReport(users[i % 6]!, { ...report(i), session_id: `full-${i}` }, { deviceId: 'd', signed: false })),
    );
    const stored = outcomes.filter((o) => o.status === 'fulfilled').length;
    expect(stored).toBeLessThan(300);
    expect(outcomes.some((o) => o.status === 'rejected' && (o.reason as { code?: string }).code === 'SQLITE_FULL')).toBe(true);
    const present = new Set(store.db.prepare('SELECT turn_index FROM usage_events').pluck().all() as number[]);
    expect(outcomes.map((o, i) => present.has(i) === (o.status === 'fulfilled'))).toEqual(outcomes.map(() => true));
    expect(count(dbPath, 'SELECT count(*) AS n FROM usage_events')).toBe(2 * stored);
    expect(count(dbPath, 'SELECT CAST(coalesce(sum(model_turns), 0) AS INTEGER) AS n FROM usage_daily')).toBe(2 * stored);
  });

  it('a write rolled back with its batch leaves no session known: resent, its sessions are counted once', async () => {
    const { store, users, dbPath } = await sqliteStore();
    // A session each user has already reported in (committed: its rows are known from now on).
    await Promise.all(users.map((u, i) => store.insertReport(u, { ...report(100 + i), session_id: 'old' }, { deviceId: 'd', signed: false })));
    const pages = store.db.pragma('page_count', { simple: true }) as number;
    store.db.pragma(`max_page_count = ${pages + 12}`);
    // New sessions and old ones; the disk fills mid-batch, so whole transactions roll back after
    // their reports' session rows were written.
    const sent = Array.from({ length: 300 }, (_, i) => ({ user: users[i % 6]!, body: { ...report(i), session_id: i % 4 === 0 ? 'old' : `new-${i % 40}` } }));
    const outcomes = await Promise.allSettled(sent.map((r) => store.insertReport(r.user, r.body, { deviceId: 'd', signed: false })));
    expect(outcomes.some((o) => o.status === 'rejected' && (o.reason as { code?: string }).code === 'SQLITE_FULL')).toBe(true);
    // Room again: the devices resend what was refused.
    store.db.pragma('max_page_count = 1073741823');
    const resent = await Promise.all(sent.filter((_, i) => outcomes[i]!.status === 'rejected').map((r) => store.insertReport(r.user, r.body, { deviceId: 'd', signed: false })));
    expect(resent.every((r) => r.inserted === 2)).toBe(true);
    // Every session and session × model of the raw rows is in the sets and counted exactly once.
    expect(count(dbPath, 'SELECT count(*) AS n FROM usage_sessions')).toBe(count(dbPath, 'SELECT count(DISTINCT user_id || \'/\' || session_id) AS n FROM usage_events'));
    expect(count(dbPath, 'SELECT CAST(sum(sessions) AS INTEGER) AS n FROM usage_daily')).toBe(count(dbPath, 'SELECT count(*) AS n FROM usage_sessions'));
    expect(count(dbPath, 'SELECT count(*) AS n FROM usage_session_models')).toBe(
      count(dbPath, "SELECT count(DISTINCT user_id || '/' || session_id || '/' || model) AS n FROM usage_events"),
    );
    expect(count(dbPath, 'SELECT CAST(sum(model_sessions) AS INTEGER) AS n FROM usage_daily')).toBe(count(dbPath, 'SELECT count(*) AS n FROM usage_session_models'));
  });

  it('close() commits the writes still queued before the database closes', async () => {
    const { store, users, dbPath } = await sqliteStore();
    const pending = Array.from({ length: 10 }, (_, i) => store.insertReport(users[i % 6]!, report(i), { deviceId: 'd', signed: false }));
    await store.close();
    expect((await Promise.all(pending)).map((r) => r.inserted)).toEqual(Array.from({ length: 10 }, () => 2));
    expect(count(dbPath, 'SELECT count(*) AS n FROM usage_events')).toBe(20);
  });

  it('rate-limit counts share the batch and stay exact: one budget however many arrive at once', async () => {
    const { store } = await sqliteStore();
    const decisions = await Promise.all(Array.from({ length: 30 }, () => store.limitHit('rt:1', 12, 60)));
    expect(decisions.filter((d) => d.allowed)).toHaveLength(12);
    expect(store.db.prepare("SELECT count AS n FROM limit_windows WHERE key = 'rt:1'").pluck().get()).toBe(12);
  });
});
