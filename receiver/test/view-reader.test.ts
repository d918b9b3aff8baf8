/**
 * SQLite view reads run on a worker thread (store/sqlite-reader.ts): while a dashboard query is
 * held inside the worker (the `hold` test hook keeps it there until the test lets go, so nothing
 * here depends on timing), the main thread keeps answering /health and storing reports. With the
 * SQL on the event loop the held query would block the whole process and /health never answer.
 */
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { parseConfig } from '../src/config';
import { openDatabase } from '../src/db/open';
import { createReceiver, type Receiver } from '../src/server';
import { SqliteStore } from '../src/store';
import { openSqlReader } from '../src/store/sqlite-reader';
import { startReceiver } from '../../test/helpers/receiver';
import { bearer, Clock, makeReport, ON_POSTGRES, send, tempDir } from './support';

const ADMIN_TOKEN = 'b7e2c4f19a0d3e6b8c5f2a1d0e9c8b7a6f5e4d3c2b1a0f9e8d7c6b5a4f3e2d1c';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** An empty receiver database in a temp dir, closed (then removed) after the test. */
function emptyDatabase(): ReturnType<typeof openDatabase> {
  const { dir, cleanup } = tempDir();
  cleanups.push(cleanup);
  const db = openDatabase(join(dir, 'ccflux.db'), { notice: () => {} });
  cleanups.push(() => {
    db.close();
  });
  return db;
}

/** A receiver over a SQLite file whose view reader waits on `gate` before every query. */
async function heldReceiver(): Promise<{ url: string; store: SqliteStore; clock: Clock; open(): void }> {
  const { dir, cleanup } = tempDir();
  const parsed = parseConfig({ DATABASE_PATH: join(dir, 'ccflux.db'), LISTEN_ADDR: '127.0.0.1:0', ADMIN_TOKEN });
  if (!parsed.ok) throw new Error(parsed.errors.join('; '));
  const clock = new Clock();
  const gate = new SharedArrayBuffer(4);
  const store = new SqliteStore(openDatabase(parsed.config.databasePath, { notice: () => {} }), clock.now, { reader: { hold: gate } });
  const receiver: Receiver = createReceiver({ config: parsed.config, store, now: clock.now });
  const { port } = await receiver.listen();
  const open = (): void => {
    const flag = new Int32Array(gate);
    Atomics.store(flag, 0, 1);
    Atomics.notify(flag, 0);
  };
  cleanups.push(async () => {
    open();
    await receiver.close();
    await store.close();
    cleanup();
  });
  return { url: `http://127.0.0.1:${port}`, store, clock, open };
}

describe.skipIf(ON_POSTGRES)('SQLite views off the event loop', () => {
  it('answers /health and stores a report while a dashboard query is running in the worker', async () => {
    const r = await heldReceiver();
    const { refreshToken } = await r.store.createUser('dev@example.org');
    const token = await send(`${r.url}/token`, { headers: bearer(refreshToken) });
    const accessToken = (token.json as { access_token: string }).access_token;

    let viewDone = false;
    const view = send(`${r.url}/admin/`, { method: 'GET', headers: bearer(ADMIN_TOKEN) }).finally(() => {
      viewDone = true;
    });
    // The view is in the worker, held there until open(): everything below runs meanwhile.
    const health = await send(`${r.url}/health`, { method: 'GET' });
    expect(health.status).toBe(200);
    const report = await send(`${r.url}/report`, { headers: bearer(accessToken), body: JSON.stringify(makeReport()) });
    expect(report.status).toBe(200);
    expect(viewDone).toBe(false);

    r.open();
    const page = await view;
    expect(page.status).toBe(200);
    // The worker's own connection sees what the main connection committed while it waited.
    expect(page.text).toContain('dev@example.org');
  });

  it('gives the same dashboard as the inline reader', async () => {
    const { dir, cleanup } = tempDir();
    cleanups.push(cleanup);
    const clock = new Clock();
    const path = join(dir, 'ccflux.db');
    const viaWorker = new SqliteStore(openDatabase(path, { notice: () => {} }), clock.now);
    const inline = new SqliteStore(openDatabase(path, { notice: () => {} }), clock.now, { reader: { mode: 'inline' } });
    cleanups.push(() => viaWorker.close(), () => inline.close());
    for (const [i, email] of ['a@example.org', 'b@example.org'].entries()) {
      await viaWorker.createUser(email);
      const auth = { userId: i + 1, email, refreshTokenId: i + 1, tokenRef: `ref${i}` };
      await viaWorker.insertReport(auth, makeReport({ turn_index: i }), { deviceId: 'd', signed: true });
    }
    const a = await viaWorker.dashboard(clock.now());
    const b = await inline.dashboard(clock.now());
    expect(a).toEqual(b);
    expect(a.summary.turns).toBe(2);
  });

  it('rejects a failing query, refuses past its queue bound, and ends pending queries on close', async () => {
    const db = emptyDatabase();
    const failing = openSqlReader(db);
    expect(failing.kind).toBe('worker');
    await expect(failing.all('SELECT nope FROM nowhere')).rejects.toThrow(/no such table/);
    expect(await failing.all('SELECT count(*) AS n FROM users')).toEqual([{ n: 0 }]);
    await failing.close();
    await expect(failing.all('SELECT 1')).rejects.toMatchObject({ code: 'database' });

    // A big answer (a view's totals are ~5,000 rows) comes over whole and in order, with another
    // query's answer beside it.
    const big = openSqlReader(db);
    const count = 5_007;
    const [rows, small] = await Promise.all([
      big.all('WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < @count) SELECT i FROM n', { count }),
      big.all('SELECT 42 AS answer'),
    ]);
    expect(rows.map((r) => r.i)).toEqual(Array.from({ length: count }, (_, k) => k + 1));
    expect(small).toEqual([{ answer: 42 }]);
    await big.close();

    const gate = new SharedArrayBuffer(4);
    const held = openSqlReader(db, { hold: gate, maxQueued: 2 });
    const first = held.all('SELECT 1 AS one');
    const second = held.all('SELECT 2 AS two');
    await expect(held.all('SELECT 3')).rejects.toMatchObject({ code: 'SQLITE_BUSY', message: expect.stringMatching(/too many view queries waiting/) });
    const ended = Promise.all([
      expect(first).rejects.toMatchObject({ code: 'database' }),
      expect(second).rejects.toMatchObject({ code: 'database' }),
    ]);
    await held.close();
    await ended;
  });

  it('runs queries on all its threads at once, answers each its own rows, and closes them all', async () => {
    const db = emptyDatabase();
    // [0]: the gate (closed); [1]: how many queries have reached it, i.e. are inside a thread.
    const gate = new SharedArrayBuffer(8);
    const flag = new Int32Array(gate);
    const pool = openSqlReader(db, { hold: gate, threads: 2 });
    expect(pool.parallel).toBe(2);
    const count = 3_001;
    const answers: Promise<Record<string, unknown>[]>[] = [
      pool.all('WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < @count) SELECT i FROM n', { count }),
      pool.all('SELECT @v AS v', { v: 'second' }),
      pool.all('SELECT @v AS v', { v: 'third' }),
      pool.all('SELECT count(*) AS n FROM users'),
    ];
    // One thread would hold the first query and keep the rest queued: two reach the gate only
    // when both threads run one.
    await expect.poll(() => Atomics.load(flag, 1), { timeout: 20_000 }).toBe(2);
    Atomics.store(flag, 0, 1);
    Atomics.notify(flag, 0);
    const [rows, second, third, users] = await Promise.all(answers);
    expect(rows!.map((r) => r.i)).toEqual(Array.from({ length: count }, (_, k) => k + 1));
    expect([second, third, users]).toEqual([[{ v: 'second' }], [{ v: 'third' }], [{ n: 0 }]]);
    expect(Atomics.load(flag, 1)).toBe(4);

    // Closing ends what is pending on every thread, and the pool refuses work afterwards.
    Atomics.store(flag, 0, 0);
    const pending = [pool.all('SELECT 1 AS one'), pool.all('SELECT 2 AS two'), pool.all('SELECT 3 AS three')];
    await expect.poll(() => Atomics.load(flag, 1), { timeout: 20_000 }).toBe(6);
    const ended = Promise.all(pending.map((p) => expect(p).rejects.toMatchObject({ code: 'database' })));
    await pool.close();
    await ended;
    await expect(pool.all('SELECT 1')).rejects.toMatchObject({ code: 'database' });

    // The shares of a split statement go to thread `shard % threads`, the rest to the least busy.
    const pinned = openSqlReader(db, { hold: gate, threads: 2 });
    const shares = [pinned.all('SELECT @shard AS s', { shard: 1 }), pinned.all('SELECT @shard AS s', { shard: 3 }), pinned.all('SELECT 0 AS s')];
    expect(pinned.waitingPerThread).toEqual([1, 2]);
    Atomics.store(flag, 0, 1);
    Atomics.notify(flag, 0);
    expect(await Promise.all(shares)).toEqual([[{ s: 1 }], [{ s: 3 }], [{ s: 0 }]]);
    await pinned.close();
  });

  it('falls back to the inline reader for an in-memory database', () => {
    const db = openDatabase(':memory:', { notice: () => {} });
    cleanups.push(() => {
      db.close();
    });
    expect(openSqlReader(db).kind).toBe('inline');
  });

  it('serves the dashboard from the worker in the built receiver, and a CLI export through it exits', async () => {
    const receiver = await startReceiver({ env: { ADMIN_TOKEN } });
    cleanups.push(() => receiver.stop());
    await receiver.addUser('built@example.org');
    const page = await send(`${receiver.url}/admin/?view=users`, { method: 'GET', headers: bearer(ADMIN_TOKEN) });
    expect(page.status).toBe(200);
    expect(page.text).toContain('built@example.org');
    const csv = await receiver.cli(['export', 'usage', '--format', 'csv']);
    expect(csv.split('\n')[0]).toContain('email');
  });
});
